package hl7

import (
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// charset is a character set a message may declare in MSH-18. enc is nil for UTF-8 and
// its subset ASCII, which need no conversion.
type charset struct {
	enc encoding.Encoding
}

// lookupCharset maps an MSH-18 value to a character set. Senders spell the names of
// HL7 table 0211 loosely ("GB18030", "gb 18030-2000", "UTF-8"), so case, spaces,
// hyphens and underscores are ignored. GBK and GB2312 are subsets of GB 18030, and
// "CHINESE" is what some Chinese HIS put there; all three are read as GB 18030. ASCII and
// an unqualified "UNICODE" are read as UTF-8: by the time MSH-18 is found the header has
// been read as ASCII, which rules out the 16- and 32-bit forms.
func lookupCharset(name string) (charset, bool) {
	var buf [32]byte
	n := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == ' ' || c == '-' || c == '_':
			continue
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		if n == len(buf) {
			return charset{}, false // longer than any name below
		}
		buf[n] = c
		n++
	}
	switch string(buf[:n]) {
	case "", "UNICODEUTF8", "UTF8", "UNICODE", "ASCII", "USASCII":
		return charset{}, true
	case "GB180302000", "GB180302005", "GB180302022", "GB18030", "GBK", "GB2312", "CHINESE", "CP936":
		return charset{enc: simplifiedchinese.GB18030}, true
	case "8859/1", "ISO88591", "LATIN1":
		return charset{enc: charmap.ISO8859_1}, true
	}
	return charset{}, false
}

// decode converts b from the character set to UTF-8.
func (cs charset) decode(b []byte) ([]byte, error) {
	if cs.enc == nil {
		return b, nil
	}
	return cs.enc.NewDecoder().Bytes(b)
}

// decodeString is decode for text already in a string (escape sequence payloads). For
// UTF-8 it reports false when the bytes are not valid UTF-8.
func (cs charset) decodeString(b []byte) (string, bool) {
	if cs.enc == nil {
		if !utf8.Valid(b) {
			return "", false
		}
		return string(b), true
	}
	out, err := cs.enc.NewDecoder().Bytes(b)
	if err != nil {
		return "", false
	}
	return string(out), true
}

// encode converts UTF-8 text to the character set.
func (cs charset) encode(b []byte) ([]byte, error) {
	if cs.enc == nil {
		return b, nil
	}
	return cs.enc.NewEncoder().Bytes(b)
}

// headerField returns field n of an MSH line in its raw (still escaped, still encoded)
// form, and whether the line has that field. The line is still in the sender's character
// set, so when it is not valid UTF-8 it is walked as GB 18030, whose trail bytes can
// equal '|' or '\' (in UTF-8 no byte of a multi-byte character is ASCII). n >= 2.
func headerField(line []byte, n int) ([]byte, bool) {
	if len(line) < 4 {
		return nil, false
	}
	fs := line[3]
	gb := !utf8.Valid(line)
	field := 2 // the text after MSH and its field separator is MSH-2
	start := 4
	for i := 4; i < len(line); {
		c := line[i]
		if c == fs {
			if field == n {
				return line[start:i], true
			}
			field++
			start = i + 1
			i++
			continue
		}
		i += gbCharLen(line[i:], gb)
	}
	if field == n {
		return line[start:], true
	}
	return nil, false
}

// gbCharLen is the length of the character at the start of b: one byte unless gb is set
// and b starts with a GB 18030 lead byte, in which case it is two or four bytes (cut
// short at the end of b).
func gbCharLen(b []byte, gb bool) int {
	if !gb || b[0] < 0x81 || b[0] == 0xff || len(b) < 2 {
		return 1
	}
	if b[1] >= '0' && b[1] <= '9' {
		return min(4, len(b))
	}
	return 2
}
