package hl7

import (
	"errors"
	"fmt"
	"strings"
)

// Encode writes the message in ER7: segments separated by '\r' (none after the last),
// values escaped as the package comment describes, MSH-1 and MSH-2 from m.Delims, in
// the character set MSH-18 names. It fails when the first segment is not MSH, a segment
// name is invalid, a batch segment follows the first, the delimiters are invalid, MSH-18
// names a character set this package does not know or one that cannot represent a
// value (Chinese in ISO 8859-1), a value is not valid UTF-8, or the message needs a
// delimiter that MSH-2 does not declare.
func (m *Message) Encode() ([]byte, error) {
	if len(m.Segments) == 0 || m.Segments[0] == nil || m.Segments[0].Name != "MSH" {
		return nil, errors.New("hl7: the first segment must be MSH")
	}
	d := m.Delims
	if !d.check() {
		return nil, fmt.Errorf("hl7: invalid delimiters %q", []byte{d.Field, d.Component, d.Repetition, d.Escape, d.SubComponent})
	}
	msh := m.Segments[0]
	name := msh.Get("18")
	cs, ok := lookupCharset(strings.TrimSpace(name))
	if !ok {
		return nil, fmt.Errorf("hl7: MSH-18: unsupported character set %q", name)
	}
	e := newEncoder(d)
	size := 0
	for _, s := range m.Segments {
		if s != nil {
			size += 4 + 16*len(s.Fields)
		}
	}
	b := make([]byte, 0, size)
	var err error
	for i, s := range m.Segments {
		if s == nil {
			return nil, fmt.Errorf("hl7: segment %d is nil", i+1)
		}
		if !validName(s.Name) {
			return nil, fmt.Errorf("hl7: segment %d: invalid segment name %q", i+1, s.Name)
		}
		if i > 0 {
			if headerName(s.Name) {
				return nil, fmt.Errorf("hl7: segment %d: %s inside a message", i+1, s.Name)
			}
			b = append(b, '\r')
		}
		b = append(b, s.Name...)
		first := 1
		if i == 0 {
			b = append(b, d.Field)
			b = append(b, d.encodingCharacters()...)
			b = append(b, truncation(s, d)...)
			first = 3
		}
		for n := first; n < len(s.Fields); n++ {
			b = append(b, d.Field)
			if b, err = e.field(b, s.Fields[n]); err != nil {
				return nil, fmt.Errorf("%w (%s-%d)", err, s.Name, n)
			}
		}
	}
	if b, err = cs.encode(b); err != nil {
		return nil, fmt.Errorf("hl7: MSH-18 %q: %w", name, err)
	}
	return b, nil
}

// truncation returns the v2.7 truncation character that follows the four encoding
// characters in MSH-2 (Fields[2]), or "" when there is none or it cannot be written.
func truncation(msh *Segment, d Delimiters) string {
	enc := d.encodingCharacters()
	if len(enc) != 4 || len(msh.Fields) < 3 {
		return ""
	}
	v := msh.Get("2")
	if len(v) != 5 || v[:4] != enc {
		return ""
	}
	t := v[4]
	if !validDelimiter(t) || t == d.Field || strings.IndexByte(enc, t) >= 0 {
		return ""
	}
	return v[4:]
}

// Raw returns field n as it is written in a message, escaped and with its separators,
// for callers that need all of a field rather than one value. It uses the delimiters of
// the message the segment belongs to (the defaults for a segment made by hand), and
// returns "" when the field is absent. A value that cannot be escaped (see Encode) is
// written as it is.
func (s *Segment) Raw(field int) string {
	if field < 0 || field >= len(s.Fields) {
		return ""
	}
	d := DefaultDelimiters
	if s.delims != nil {
		d = *s.delims
	}
	if s.Name == "MSH" && (field == 1 || field == 2) {
		return s.Get(fmt.Sprint(field))
	}
	b, err := newEncoder(d).field(nil, s.Fields[field])
	if err == nil {
		return string(b)
	}
	// Unescapable: write the values as they are, with the separators that exist.
	b = b[:0]
	sep := func(c byte) {
		if c != 0 {
			b = append(b, c)
		}
	}
	for ri, r := range s.Fields[field] {
		if ri > 0 {
			sep(d.Repetition)
		}
		for ci, c := range r {
			if ci > 0 {
				sep(d.Component)
			}
			for si, v := range c {
				if si > 0 {
					sep(d.SubComponent)
				}
				b = append(b, v...)
			}
		}
	}
	return string(b)
}
