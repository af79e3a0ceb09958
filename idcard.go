package ihos

// Resident identity card numbers (GB 11643-1999): 6 digits of area code, 8 of
// birth date, 3 of sequence (odd for men, even for women) and a check
// character computed with ISO 7064 MOD 11-2. The kiosk, the patient pages and
// the HIS simulator all check numbers with these two functions.

var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

const idCheckChars = "10X98765432"

// IDCheckDigit returns the check character for the first 17 digits of an ID
// number, or 0 when they are not 17 decimal digits.
func IDCheckDigit(first17 string) byte {
	if len(first17) != 17 {
		return 0
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := first17[i]
		if c < '0' || c > '9' {
			return 0
		}
		sum += int(c-'0') * idWeights[i]
	}
	return idCheckChars[sum%11]
}

// ValidIDNumber reports whether s is an 18-character ID number whose check
// character is right (an upper- or lower-case X both count as X).
func ValidIDNumber(s string) bool {
	if len(s) != 18 {
		return false
	}
	want := IDCheckDigit(s[:17])
	got := s[17]
	if got == 'x' {
		got = 'X'
	}
	return want != 0 && got == want
}
