package escpos

import (
	"bytes"
	"testing"
)

func TestStatusRequest(t *testing.T) {
	for n := byte(1); n <= 4; n++ {
		if got := StatusRequest(n); !bytes.Equal(got, []byte{0x10, 0x04, n}) {
			t.Fatalf("n=%d: % X", n, got)
		}
	}
}

func TestParseStatus(t *testing.T) {
	// Bit layouts from the Epson ESC/POS reference for DLE EOT n.
	// Fixed bits: 0x12 (bits 1 and 4 set, bits 0 and 7 clear).
	type flags struct{ online, cover, near, out, err bool }
	tests := []struct {
		name string
		n, b byte
		want flags
	}{
		{"printer online", 1, 0x12, flags{online: true}},
		{"printer offline (bit 3)", 1, 0x1A, flags{}},
		{"printer online, drawer pin high (bit 2)", 1, 0x16, flags{online: true}},
		{"offline cause none", 2, 0x12, flags{}},
		{"cover open (bit 2)", 2, 0x16, flags{cover: true}},
		{"stopped by paper end (bit 5)", 2, 0x32, flags{out: true}},
		{"error occurred (bit 6)", 2, 0x52, flags{err: true}},
		{"cover open and paper end", 2, 0x36, flags{cover: true, out: true}},
		{"error cause none", 3, 0x12, flags{}},
		{"autocutter error (bit 3)", 3, 0x1A, flags{err: true}},
		{"unrecoverable (bit 5)", 3, 0x32, flags{err: true}},
		{"auto-recoverable (bit 6)", 3, 0x52, flags{err: true}},
		{"paper ok", 4, 0x12, flags{}},
		{"near end (bits 2,3)", 4, 0x1E, flags{near: true}},
		{"paper out (bits 5,6)", 4, 0x72, flags{out: true}},
		{"near end and out", 4, 0x7E, flags{near: true, out: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseStatus(tt.n, tt.b)
			if err != nil {
				t.Fatal(err)
			}
			got := flags{s.Online, s.CoverOpen, s.PaperNearEnd, s.PaperOut, s.Error}
			if got != tt.want {
				t.Fatalf("got %+v want %+v", got, tt.want)
			}
			var raw [4]byte
			raw[tt.n-1] = tt.b
			if s.Raw != raw {
				t.Fatalf("raw %v", s.Raw)
			}
		})
	}
}

func TestParseStatusInvalid(t *testing.T) {
	tests := []struct{ n, b byte }{
		{1, 0x00}, // fixed bits missing
		{1, 0x13}, // bit 0 set
		{2, 0x92}, // bit 7 set
		{3, 0x10}, // bit 1 clear
		{4, 0x02}, // bit 4 clear
		{1, 0xFF},
		{0, 0x12}, // invalid request
		{5, 0x12},
	}
	for _, tt := range tests {
		if _, err := ParseStatus(tt.n, tt.b); err == nil {
			t.Errorf("ParseStatus(%d, 0x%02X) accepted", tt.n, tt.b)
		}
	}
}

func TestMerge(t *testing.T) {
	must := func(n, b byte) Status {
		s, err := ParseStatus(n, b)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	m := Merge(must(1, 0x1A), must(2, 0x16), must(3, 0x12), must(4, 0x1E))
	if m.Online || !m.CoverOpen || !m.PaperNearEnd || m.PaperOut || m.Error {
		t.Fatalf("merge %+v", m)
	}
	if m.Raw != [4]byte{0x1A, 0x16, 0x12, 0x1E} {
		t.Fatalf("raw % X", m.Raw)
	}
	// A later answer for the same n replaces the earlier one.
	m = Merge(m, must(1, 0x12), must(4, 0x12))
	if !m.Online || m.PaperNearEnd || !m.CoverOpen {
		t.Fatalf("merge update %+v", m)
	}
	// Without an n=1 byte the printer is not known to be online.
	if Merge(must(4, 0x12)).Online || Merge().Online {
		t.Fatal("online without n=1")
	}
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range [][2]byte{{1, 0x12}, {2, 0x36}, {4, 0x7E}, {0, 0}, {9, 0xFF}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, n, b byte) {
		s, err := ParseStatus(n, b)
		if err != nil {
			return
		}
		if n < 1 || n > 4 || b&0x93 != 0x12 || s.Raw[n-1] != b {
			t.Fatalf("accepted n=%d b=0x%02X: %+v", n, b, s)
		}
		if Merge(s) != s {
			t.Fatalf("merge not idempotent: %+v", Merge(s))
		}
	})
}

func TestProcessIDCommand(t *testing.T) {
	var b bytes.Buffer
	p := New(&b, Options{})
	p.Line("x").Cut(false).ProcessID([4]byte{'0', '0', '4', '2'})
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	want := []byte{'x', 0x0A, 0x1D, 'V', 65, 0, 0x1D, 0x28, 0x48, 6, 0, 48, 48, '0', '0', '4', '2'}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("bytes % X, want % X", b.Bytes(), want)
	}
	// The decoder skips it and the ticket is unchanged.
	tk, err := Decode(b.Bytes(), "")
	if err != nil || len(tk.Lines) != 1 || tk.Lines[0] != "x" || tk.Cuts != 1 || len(tk.Items) != 2 {
		t.Fatalf("decoded %+v, %v", tk, err)
	}
	for _, id := range [][4]byte{{0x1F, '0', '0', '0'}, {'0', '0', '0', 0x7F}, {}} {
		if _, err := ProcessIDCommand(id); err == nil {
			t.Errorf("ProcessIDCommand(% X) accepted", id)
		}
		if err := New(&b, Options{}).ProcessID(id).Err(); err == nil {
			t.Errorf("ProcessID(% X) accepted", id)
		}
	}
	if cmd, err := ProcessIDCommand([4]byte{' ', '~', 'P', '1'}); err != nil || len(cmd) != 11 {
		t.Errorf("edge bytes: % X, %v", cmd, err)
	}
}

func TestParseProcessID(t *testing.T) {
	resp := []byte{0x37, 0x22, '0', '0', '4', '2', 0x00}
	id, n, ok := ParseProcessID(append(resp, 0x12))
	if !ok || n != 7 || id != [4]byte{'0', '0', '4', '2'} {
		t.Fatalf("complete: %q %d %v", id, n, ok)
	}
	for i := range len(resp) {
		if _, n, ok := ParseProcessID(resp[:i]); ok || n != 0 {
			t.Errorf("prefix of %d bytes: n=%d ok=%v, want 0, false", i, n, ok)
		}
	}
	for _, b := range [][]byte{
		{0x12},                                  // a status byte
		{0x37, 0x70, 0x40, 0x00},                // another header-to-NUL block
		{0x37, 0x22, '0', '0', '4', '2', 0x01},  // no NUL
		{0x37, 0x22, '0', 0x05, '4', '2', 0x00}, // not printable
		{0x37, 0x22, '0', '0', '4', '2', 0x12},  // status byte where the NUL should be
		{0x37, 0x22, 0x00, '0', '4', '2', 0x00}, // NUL too early
	} {
		if _, n, ok := ParseProcessID(b); ok || n != 1 {
			t.Errorf("% X: n=%d ok=%v, want 1, false", b, n, ok)
		}
	}
	// The response is never taken for status bytes: its header and
	// identifier do not have the fixed status bits.
	if IsStatusByte(0x37) || IsStatusByte(0x22) || IsStatusByte(0x00) || !IsStatusByte(0x12) || !IsStatusByte(0x7E) {
		t.Error("IsStatusByte")
	}
}
