package hl7

import (
	"math/rand/v2"
	"strings"
	"time"
)

// Delimiters are the five special characters of an ER7-encoded message, declared by
// MSH-1 (Field) and MSH-2 (the others, in the order Component, Repetition, Escape,
// SubComponent). A zero byte means the message declares no such delimiter, which
// happens when a sender writes MSH-2 shorter than four characters.
type Delimiters struct{ Field, Component, Repetition, Escape, SubComponent byte }

// DefaultDelimiters are the delimiters HL7 recommends and nearly every system uses.
var DefaultDelimiters = Delimiters{'|', '^', '~', '\\', '&'}

// encodingCharacters returns MSH-2 as these delimiters spell it. It stops at the first
// missing delimiter: MSH-2 is positional, so a later one could not be written.
func (d Delimiters) encodingCharacters() string {
	b := make([]byte, 0, 4)
	for _, c := range [...]byte{d.Component, d.Repetition, d.Escape, d.SubComponent} {
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// validDelimiter reports whether c may serve as a delimiter: printable ASCII that is
// neither a letter, a digit nor a space. Letters and digits would make segment names
// ambiguous, and non-ASCII bytes could be part of a multi-byte character.
func validDelimiter(c byte) bool {
	switch {
	case c <= ' ' || c >= 0x7f:
		return false
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return false
	}
	return true
}

// check reports whether d can be written: a valid field separator, the other
// delimiters valid or absent, absent ones only after present ones, and no two equal.
func (d Delimiters) check() bool {
	if !validDelimiter(d.Field) {
		return false
	}
	var seen [256]bool
	seen[d.Field] = true
	missing := false
	for _, c := range [...]byte{d.Component, d.Repetition, d.Escape, d.SubComponent} {
		if c == 0 {
			missing = true
			continue
		}
		if missing || !validDelimiter(c) || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// Message is one HL7 v2 message: its delimiters and its segments in order. The first
// segment of a message that Parse returns, or that New makes, is MSH.
type Message struct {
	Delims   Delimiters
	Segments []*Segment
}

// Segment holds decoded (unescaped) values. Fields[0] is the segment name; Fields[n] is
// field n (1-based, as HL7 numbers them). For MSH, Fields[1] is the field separator
// ("|") and Fields[2] the encoding characters ("^~\\&"), so MSH-9 is Fields[9] as in the
// standard. Encode writes MSH-1 and MSH-2 from Message.Delims, not from these fields, and
// writes the segment's Name, not Fields[0]: change the delimiters through Delims.
type Segment struct {
	Name   string
	Fields []Field

	// delims points at the owning message's Delims, so that Raw can re-encode a field
	// with the delimiters the message will be written with. Nil means the defaults.
	delims *Delimiters
}

// Field is a field's repetitions, separated by '~' in the default encoding.
type Field []Repetition

// Repetition is one occurrence of a field: its components ('^').
type Repetition []Component

// Component is a component's sub-components ('&'), each decoded text.
type Component []string

// Values New writes into MSH.
const (
	// Application is written into MSH-3 (sending application) and MSH-4 (sending
	// facility) of messages made by New.
	Application = "IHOS"
	// Version is the HL7 version New declares in MSH-12; the interface profile is
	// written against v2.5.1.
	Version = "2.5.1"
	// CharsetUTF8 is the MSH-18 value New writes.
	CharsetUTF8 = "UNICODE UTF-8"
	// CharsetGB18030 is the MSH-18 value HL7 table 0211 gives GB 18030.
	CharsetGB18030 = "GB 18030-2000"
)

// beijing is UTC+8. China has had no daylight saving time since 1991, so a fixed zone is
// exact, and it needs no time zone database (Windows appliances may not have one).
var beijing = time.FixedZone("CST", 8*3600)

// TimestampFormat is the layout of the HL7 TS values this package writes (MSH-7):
// Beijing time with its offset, as the hospital systems expect, e.g. 20240315143000+0800.
const TimestampFormat = "20060102150405-0700"

// Timestamp formats t as an HL7 TS in Beijing time.
func Timestamp(t time.Time) string { return t.In(beijing).Format(TimestampFormat) }

// ParseTimestamp reads an HL7 TS/DT of any precision (yyyy to
// yyyyMMddHHmmss, fractions ignored); a missing offset means Beijing time. It
// returns the zero time when s is empty or unreadable: a missing time in a
// message is the caller's decision, not a parse failure.
func ParseTimestamp(s string) time.Time {
	s = strings.TrimSpace(s)
	zone := ""
	if i := strings.IndexAny(s, "+-"); i > 0 {
		s, zone = s[:i], s[i:]
	}
	if i := strings.IndexByte(s, '.'); i > 0 {
		s = s[:i]
	}
	layout := map[int]string{4: "2006", 6: "200601", 8: "20060102", 10: "2006010215", 12: "200601021504", 14: "20060102150405"}[len(s)]
	if layout == "" {
		return time.Time{}
	}
	if zone != "" {
		if t, err := time.Parse(layout+"-0700", s+zone); err == nil {
			return t.UTC()
		}
	}
	t, err := time.ParseInLocation(layout, s, beijing)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// NewControlID returns a fresh message control id (MSH-10) for messages this package
// makes itself, such as acknowledgements: Beijing time to the second followed by six
// random characters, 20 characters in all, which is the length v2.5 allows MSH-10.
// Readable in logs, roughly time-ordered, and 36^6 ids a second make a clash unlikely.
func NewControlID() string {
	b := make([]byte, 0, 20)
	b = time.Now().In(beijing).AppendFormat(b, "20060102150405")
	for range 6 {
		b = append(b, idAlphabet[rand.N(len(idAlphabet))])
	}
	return string(b)
}

// New returns a message with only an MSH segment: default delimiters, MSH-3 and MSH-4
// "IHOS", MSH-7 now (Beijing time, see TimestampFormat), MSH-9
// msgType^trigger^structure (empty parts at the end left out), MSH-10 controlID (a new
// NewControlID when empty), MSH-11 "P" (production), MSH-12 "2.5.1" and MSH-18
// "UNICODE UTF-8".
func New(msgType, trigger, structure, controlID string) *Message {
	m := &Message{Delims: DefaultDelimiters}
	msh := m.Add("MSH")
	if controlID == "" {
		controlID = NewControlID()
	}
	msh.Set("3", Application)
	msh.Set("4", Application)
	msh.Set("7", Timestamp(time.Now()))
	msh.Set("9-1", msgType)
	if trigger != "" {
		msh.Set("9-2", trigger)
	}
	if structure != "" {
		msh.Set("9-3", structure)
	}
	msh.Set("10", controlID)
	msh.Set("11", "P")
	msh.Set("12", Version)
	msh.Set("18", CharsetUTF8)
	return m
}

// Add appends a new, empty segment named name and returns it. A new MSH segment gets
// MSH-1 and MSH-2 from m.Delims.
func (m *Message) Add(name string) *Segment {
	s := &Segment{Name: name, Fields: []Field{value(name)}, delims: &m.Delims}
	if name == "MSH" {
		s.Fields = append(s.Fields, value(byteString(m.Delims.Field)), value(m.Delims.encodingCharacters()))
	}
	m.Segments = append(m.Segments, s)
	return s
}

// value returns a field holding the single value v.
func value(v string) Field { return Field{Repetition{Component{v}}} }

// Segment returns the first segment named name, or nil.
func (m *Message) Segment(name string) *Segment {
	for _, s := range m.Segments {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// All returns the segments named name, in message order.
func (m *Message) All(name string) []*Segment {
	var all []*Segment
	for _, s := range m.Segments {
		if s.Name == name {
			all = append(all, s)
		}
	}
	return all
}

// Type returns the message type, trigger event and message structure from MSH-9
// (e.g. "ORU", "R01", "ORU_R01"). Older versions leave the structure out; it is then "".
func (m *Message) Type() (msgType, trigger, structure string) {
	msh := m.Segment("MSH")
	if msh == nil {
		return "", "", ""
	}
	return msh.Get("9-1"), msh.Get("9-2"), msh.Get("9-3")
}

// ControlID returns MSH-10, the id the sender gave the message and the one its
// acknowledgement quotes in MSA-2.
func (m *Message) ControlID() string {
	if msh := m.Segment("MSH"); msh != nil {
		return msh.Get("10")
	}
	return ""
}

// Charset returns the character set MSH-18 declares (its first repetition), "" when
// none is declared.
func (m *Message) Charset() string {
	if msh := m.Segment("MSH"); msh != nil {
		return msh.Get("18")
	}
	return ""
}

// Repetitions returns how many repetitions field n has: 0 when the field is absent or
// empty, so a loop from 1 to Repetitions visits only values that are there.
func (s *Segment) Repetitions(field int) int {
	if field < 0 || field >= len(s.Fields) {
		return 0
	}
	f := s.Fields[field]
	if len(f) == 1 && emptyRepetition(f[0]) {
		return 0
	}
	return len(f)
}

func emptyRepetition(r Repetition) bool {
	for _, c := range r {
		for _, v := range c {
			if v != "" {
				return false
			}
		}
	}
	return true
}
