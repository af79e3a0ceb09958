package hl7

import "fmt"

// A location is a parsed terser path. All numbers are 1-based; rep, comp and sub
// default to 1 and occ to 1.
type location struct {
	seg                        string
	occ, field, rep, comp, sub int
}

// maxIndex bounds the numbers in a path, so that a mistyped path cannot make Set
// allocate without limit.
const maxIndex = 1 << 16

// parsePath reads a terser path: "SEG(occurrence)-field(repetition)-component-
// subcomponent" when withSegment is set, the same without "SEG(occurrence)-" when it is
// not. Occurrence and repetition are optional. '.' is accepted in place of '-', as
// some tools write paths that way ("PID.3.1").
func parsePath(path string, withSegment bool) (location, bool) {
	loc := location{occ: 1, rep: 1, comp: 1, sub: 1}
	i := 0
	if withSegment {
		if len(path) < 3 || !validName(path[:3]) {
			return loc, false
		}
		loc.seg = path[:3]
		i = 3
		if i < len(path) && path[i] == '(' {
			var ok bool
			if loc.occ, i, ok = parenNumber(path, i); !ok {
				return loc, false
			}
		}
		if i >= len(path) || (path[i] != '-' && path[i] != '.') {
			return loc, false
		}
		i++
	}
	var ok bool
	if loc.field, i, ok = number(path, i, 0); !ok {
		return loc, false
	}
	if i < len(path) && path[i] == '(' {
		if loc.rep, i, ok = parenNumber(path, i); !ok {
			return loc, false
		}
	}
	for _, p := range [...]*int{&loc.comp, &loc.sub} {
		if i == len(path) {
			return loc, true
		}
		if path[i] != '-' && path[i] != '.' {
			return loc, false
		}
		if *p, i, ok = number(path, i+1, 1); !ok {
			return loc, false
		}
	}
	return loc, i == len(path)
}

// number reads a decimal number at path[i] that is at least low and at most maxIndex.
func number(path string, i, low int) (int, int, bool) {
	n, start := 0, i
	for i < len(path) && '0' <= path[i] && path[i] <= '9' {
		n = n*10 + int(path[i]-'0')
		if n > maxIndex {
			return 0, i, false
		}
		i++
	}
	return n, i, i > start && n >= low
}

// parenNumber reads "(n)", n >= 1, at path[i].
func parenNumber(path string, i int) (int, int, bool) {
	n, i, ok := number(path, i+1, 1)
	if !ok || i >= len(path) || path[i] != ')' {
		return 0, i, false
	}
	return n, i + 1, true
}

// Get returns the value a terser path addresses, "" when the path is malformed or the
// value is absent. Paths are "SEG(occurrence)-field(repetition)-component-subcomponent",
// all 1-based, occurrence and repetition optional: "PID-3", "PID-3(2)-1", "OBX(3)-5",
// "PID-5-1-1", "MSH-9-2". A path that stops at a field or component addresses its first
// component and sub-component, as HAPI's Terser does: Get("PID-5") of "张^三" is "张".
// Use Segment.Raw for a whole field.
func (m *Message) Get(path string) string {
	loc, ok := parsePath(path, true)
	if !ok {
		return ""
	}
	s := m.occurrence(loc.seg, loc.occ)
	if s == nil {
		return ""
	}
	return s.get(loc)
}

// Set stores value at the terser path (see Get), creating the segment, field,
// repetition, component and sub-component as needed; a missing occurrence of a segment
// is made by appending segments of that name to the end of the message. Like Get, a
// path that stops at a field or component sets its first component and sub-component
// and leaves the others. Set panics on a malformed path, as that is a programming error
// that must not silently lose data.
func (m *Message) Set(path, value string) {
	loc, ok := parsePath(path, true)
	if !ok || loc.field == 0 {
		panic(fmt.Sprintf("hl7: malformed path %q", path))
	}
	s := m.occurrence(loc.seg, loc.occ)
	if s == nil {
		n := len(m.All(loc.seg))
		for ; n < loc.occ; n++ {
			s = m.Add(loc.seg)
		}
	}
	s.set(loc, value)
}

// occurrence returns the occ-th segment named name, or nil.
func (m *Message) occurrence(name string, occ int) *Segment {
	for _, s := range m.Segments {
		if s.Name == name {
			if occ--; occ == 0 {
				return s
			}
		}
	}
	return nil
}

// Get returns the value at path, a terser path without the segment: "3", "3-1",
// "3(2)-1", "5-1-2". Field 0 is the segment name. See Message.Get.
func (s *Segment) Get(path string) string {
	if len(path) == 1 && '0' <= path[0] && path[0] <= '9' {
		// "3", "5": the commonest paths, read for every OBX of a result.
		return s.get(location{field: int(path[0] - '0'), occ: 1, rep: 1, comp: 1, sub: 1})
	}
	loc, ok := parsePath(path, false)
	if !ok {
		return ""
	}
	return s.get(loc)
}

// Set stores value at path, a terser path without the segment. See Message.Set.
func (s *Segment) Set(path, value string) {
	loc, ok := parsePath(path, false)
	if !ok || loc.field == 0 {
		panic(fmt.Sprintf("hl7: malformed path %q", path))
	}
	s.set(loc, value)
}

func (s *Segment) get(loc location) string {
	if loc.field == 0 {
		return s.Name
	}
	if loc.field >= len(s.Fields) {
		return ""
	}
	f := s.Fields[loc.field]
	if loc.rep > len(f) {
		return ""
	}
	r := f[loc.rep-1]
	if loc.comp > len(r) {
		return ""
	}
	c := r[loc.comp-1]
	if loc.sub > len(c) {
		return ""
	}
	return c[loc.sub-1]
}

func (s *Segment) set(loc location, value string) {
	if len(s.Fields) == 0 {
		s.Fields = append(s.Fields, Field{Repetition{Component{s.Name}}})
	}
	for len(s.Fields) <= loc.field {
		s.Fields = append(s.Fields, Field{Repetition{Component{""}}})
	}
	f := s.Fields[loc.field]
	for len(f) < loc.rep {
		f = append(f, Repetition{Component{""}})
	}
	r := f[loc.rep-1]
	for len(r) < loc.comp {
		r = append(r, Component{""})
	}
	c := r[loc.comp-1]
	for len(c) < loc.sub {
		c = append(c, "")
	}
	c[loc.sub-1] = value
	r[loc.comp-1] = c
	f[loc.rep-1] = r
	s.Fields[loc.field] = f
}

// Clone returns a deep copy of f, for moving a field into another message without the
// two sharing storage.
func (f Field) Clone() Field {
	if f == nil {
		return nil
	}
	out := make(Field, len(f))
	for i, r := range f {
		out[i] = make(Repetition, len(r))
		for j, c := range r {
			out[i][j] = append(Component(nil), c...)
		}
	}
	return out
}
