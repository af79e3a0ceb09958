package hl7

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// unescape decodes the escape sequences in v, a sub-component as it stood in the
// message (after the message was converted to UTF-8). An escape sequence runs from one
// escape character to the next; the ones this package does not know are kept as they
// stand, and so is a lone escape character with no partner.
func unescape(v string, d Delimiters, trunc byte, cs charset) string {
	if d.Escape == 0 || strings.IndexByte(v, d.Escape) < 0 {
		return v
	}
	return string(appendUnescaped(make([]byte, 0, len(v)), v, d, trunc, cs))
}

// appendUnescaped appends v with its escape sequences decoded to b.
func appendUnescaped(b []byte, v string, d Delimiters, trunc byte, cs charset) []byte {
	e := d.Escape
	i := strings.IndexByte(v, e)
	if i < 0 {
		return append(b, v...)
	}
	b = append(b, v[:i]...)
	for i < len(v) {
		// v[i] is an escape character.
		j := strings.IndexByte(v[i+1:], e)
		if j < 0 {
			b = append(b, v[i:]...)
			break
		}
		j += i + 1
		if r, ok := escapeMeaning(v[i+1:j], d, trunc, cs); ok {
			b = append(b, r...)
		} else {
			b = append(b, v[i:j+1]...)
		}
		i = j + 1
		k := strings.IndexByte(v[i:], e)
		if k < 0 {
			b = append(b, v[i:]...)
			break
		}
		b = append(b, v[i:i+k]...)
		i += k
	}
	return b
}

// escapeMeaning returns the text the escape sequence with body seq (the part between
// the escape characters) stands for, and false for sequences this package keeps as
// they stand.
func escapeMeaning(seq string, d Delimiters, trunc byte, cs charset) (string, bool) {
	if len(seq) == 1 {
		var c byte
		switch seq[0] {
		case 'F':
			c = d.Field
		case 'S':
			c = d.Component
		case 'T':
			c = d.SubComponent
		case 'R':
			c = d.Repetition
		case 'E':
			c = d.Escape
		case 'P':
			c = trunc
		case 'H', 'N':
			return "", true // highlighting on and off: dropped
		}
		if c == 0 {
			return "", false
		}
		return byteString(c), true
	}
	if seq == ".br" {
		return "\n", true
	}
	if len(seq) >= 3 && len(seq)%2 == 1 && seq[0] == 'X' {
		raw := make([]byte, 0, len(seq)/2)
		for i := 1; i < len(seq); i += 2 {
			hi, ok1 := unhex(seq[i])
			lo, ok2 := unhex(seq[i+1])
			if !ok1 || !ok2 {
				return "", false
			}
			raw = append(raw, hi<<4|lo)
		}
		return cs.decodeString(raw)
	}
	return "", false
}

// oneByte holds every byte value, so that byteString can slice a one-byte string from
// it instead of allocating one.
var oneByte = func() string {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return string(b)
}()

// byteString returns the string of the single byte c (string(c) would give the UTF-8
// encoding of the rune c).
func byteString(c byte) string { return oneByte[int(c) : int(c)+1] }

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Kinds of bytes for the encoder.
const (
	kPlain = iota
	kField
	kComponent
	kRepetition
	kSub
	kEscape
	kLineFeed
	kCarriageReturn
	kControl
)

// encoder writes values with the delimiters of one message.
type encoder struct {
	d    Delimiters
	kind [256]uint8
}

func newEncoder(d Delimiters) *encoder {
	e := &encoder{d: d}
	for c := 0; c < 0x20; c++ {
		e.kind[c] = kControl
	}
	e.kind['\t'] = kPlain
	e.kind['\n'] = kLineFeed
	e.kind['\r'] = kCarriageReturn
	e.kind[d.Field] = kField
	if d.Component != 0 {
		e.kind[d.Component] = kComponent
	}
	if d.Repetition != 0 {
		e.kind[d.Repetition] = kRepetition
	}
	if d.SubComponent != 0 {
		e.kind[d.SubComponent] = kSub
	}
	if d.Escape != 0 {
		e.kind[d.Escape] = kEscape
	}
	return e
}

var (
	errNoEscape       = errors.New("hl7: a value holds a delimiter or line break but MSH-2 declares no escape character")
	errInvalidUTF8    = errors.New("hl7: a value is not valid UTF-8")
	errNoComponent    = errors.New("hl7: a field has components but MSH-2 declares no component separator")
	errNoRepetition   = errors.New("hl7: a field repeats but MSH-2 declares no repetition separator")
	errNoSubComponent = errors.New("hl7: a component has sub-components but MSH-2 declares no sub-component separator")
)

const hexDigits = "0123456789ABCDEF"

// value appends v, escaped.
func (e *encoder) value(b []byte, v string) ([]byte, error) {
	i := 0
	for i < len(v) && e.kind[v[i]] == kPlain {
		i++
	}
	if i == len(v) {
		if !utf8.ValidString(v) {
			return b, errInvalidUTF8
		}
		return append(b, v...), nil
	}
	if !utf8.ValidString(v) {
		return b, errInvalidUTF8
	}
	esc := e.d.Escape
	if esc == 0 {
		// Without an escape character, control characters other than the segment
		// terminators go out as they came in; anything else cannot be written.
		for ; i < len(v); i++ {
			if k := e.kind[v[i]]; k != kPlain && k != kControl {
				return b, errNoEscape
			}
		}
		return append(b, v...), nil
	}
	b = append(b, v[:i]...)
	for ; i < len(v); i++ {
		c := v[i]
		switch e.kind[c] {
		case kPlain:
			b = append(b, c)
		case kField:
			b = append(b, esc, 'F', esc)
		case kComponent:
			b = append(b, esc, 'S', esc)
		case kRepetition:
			b = append(b, esc, 'R', esc)
		case kSub:
			b = append(b, esc, 'T', esc)
		case kEscape:
			b = append(b, esc, 'E', esc)
		case kLineFeed:
			b = append(b, esc, '.', 'b', 'r', esc)
		case kCarriageReturn, kControl:
			b = append(b, esc, 'X', hexDigits[c>>4], hexDigits[c&15], esc)
		}
	}
	return b, nil
}

// field appends f, escaped, with its separators.
func (e *encoder) field(b []byte, f Field) ([]byte, error) {
	var err error
	for ri, r := range f {
		if ri > 0 {
			if e.d.Repetition == 0 {
				return b, errNoRepetition
			}
			b = append(b, e.d.Repetition)
		}
		for ci, c := range r {
			if ci > 0 {
				if e.d.Component == 0 {
					return b, errNoComponent
				}
				b = append(b, e.d.Component)
			}
			for si, s := range c {
				if si > 0 {
					if e.d.SubComponent == 0 {
						return b, errNoSubComponent
					}
					b = append(b, e.d.SubComponent)
				}
				if b, err = e.value(b, s); err != nil {
					return b, err
				}
			}
		}
	}
	return b, nil
}
