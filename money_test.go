package ihos

import "testing"

func TestYuan(t *testing.T) {
	for fen, want := range map[int64]string{0: "0.00", 5: "0.05", 1250: "12.50", -5: "-0.05", -123456: "-1234.56", 100: "1.00"} {
		if got := FormatYuan(fen); got != want {
			t.Errorf("FormatYuan(%d) = %q, want %q", fen, got, want)
		}
		back, err := ParseYuan(want)
		if err != nil || back != fen {
			t.Errorf("ParseYuan(%q) = %d, %v; want %d", want, back, err, fen)
		}
	}
	for in, want := range map[string]int64{"12.5": 1250, "12": 1200, "+0.05": 5, ".5": 50, "3.100": 310, " 7.00 ": 700, "0": 0} {
		if got, err := ParseYuan(in); err != nil || got != want {
			t.Errorf("ParseYuan(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "1.234", "abc", "1,00", "1e3", "--1", "1.2.3", "9999999999999999"} {
		if _, err := ParseYuan(in); err == nil {
			t.Errorf("ParseYuan(%q) succeeded", in)
		}
	}
}
