package hissim

import "ihos"

// makeIDNumber builds a valid ID number from an area code, a birth date
// (yyyyMMdd) and a three-digit sequence.
func makeIDNumber(area, birth string, seq int) string {
	first := area + birth + threeDigits(seq)
	return first + string(ihos.IDCheckDigit(first))
}

func threeDigits(n int) string {
	n %= 1000
	return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
}
