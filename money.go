package ihos

import (
	"strconv"
	"strings"
)

// FormatYuan writes an amount of fen as yuan with two decimals ("12.50",
// "-0.05"), the form HL7 messages, tickets and bills use. Integer arithmetic
// only: money never passes through a float.
func FormatYuan(fen int64) string {
	sign := ""
	u := uint64(fen)
	if fen < 0 {
		sign = "-"
		u = uint64(-fen)
	}
	frac := u % 100
	s := sign + strconv.FormatUint(u/100, 10) + "."
	if frac < 10 {
		s += "0"
	}
	return s + strconv.FormatUint(frac, 10)
}

// ParseYuan reads a decimal yuan amount ("12.5", "12.50", "-3", "+0.05") as
// fen. More than two decimals is an error unless the extra digits are zeros:
// an amount is never rounded silently.
func ParseYuan(s string) (int64, error) {
	bad := Errorf(EInvalid, "金额格式不正确：%s", Truncate(s, 32))
	s = strings.TrimSpace(s)
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	frac = strings.TrimRight(frac, "0")
	if whole == "" && frac == "" && !strings.Contains(s, "0") || len(frac) > 2 || len(whole) > 15 {
		return 0, bad
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return 0, bad
		}
	}
	var fen int64
	if whole != "" {
		w, err := strconv.ParseInt(whole, 10, 64)
		if err != nil {
			return 0, bad
		}
		fen = w * 100
	}
	for len(frac) < 2 {
		frac += "0"
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	fen += f
	if neg {
		fen = -fen
	}
	return fen, nil
}
