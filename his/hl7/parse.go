package hl7

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Error codes of HL7 table 0357 (message error condition codes), for ParseError.Code,
// ERR-3 and the errCode arguments of Ack and Nak.
const (
	CodeAccepted                = "0"
	CodeSegmentSequence         = "100"
	CodeRequiredField           = "101"
	CodeDataType                = "102"
	CodeTableValue              = "103"
	CodeUnsupportedMessageType  = "200"
	CodeUnsupportedEvent        = "201"
	CodeUnsupportedProcessingID = "202"
	CodeUnsupportedVersion      = "203"
	CodeUnknownKey              = "204"
	CodeDuplicateKey            = "205"
	CodeRecordLocked            = "206"
	CodeInternal                = "207"
)

// codeText is the text table 0357 gives each code, written into ERR-3-2.
var codeText = map[string]string{
	CodeAccepted:                "Message accepted",
	CodeSegmentSequence:         "Segment sequence error",
	CodeRequiredField:           "Required field missing",
	CodeDataType:                "Data type error",
	CodeTableValue:              "Table value not found",
	CodeUnsupportedMessageType:  "Unsupported message type",
	CodeUnsupportedEvent:        "Unsupported event code",
	CodeUnsupportedProcessingID: "Unsupported processing id",
	CodeUnsupportedVersion:      "Unsupported version id",
	CodeUnknownKey:              "Unknown key identifier",
	CodeDuplicateKey:            "Duplicate key identifier",
	CodeRecordLocked:            "Application record locked",
	CodeInternal:                "Application internal error",
}

// ParseError says why Parse rejected a message. Code is from HL7 table 0357 so that the
// receiver can answer with it: "100" segment sequence or name, "101" required field
// missing, "102" data type (bad delimiters, bytes invalid in the character set), "200"
// unsupported character set.
type ParseError struct {
	Code   string
	Reason string
}

func (e *ParseError) Error() string { return "hl7: " + e.Reason + " (error " + e.Code + ")" }

func parseError(code, format string, args ...any) *ParseError {
	return &ParseError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Parse decodes one ER7-encoded message (see the package comment for what it accepts).
// The result does not refer to data, which the caller may reuse. Errors are *ParseError.
func Parse(data []byte) (*Message, error) {
	data = trimLeading(data)
	if len(data) < 3 || string(data[:3]) != "MSH" {
		return nil, parseError(CodeSegmentSequence, "message does not start with MSH")
	}
	header := data
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		header = data[:i]
	}
	if len(header) < 4 {
		return nil, parseError(CodeRequiredField, "MSH-1 (field separator) is missing")
	}
	p := &parser{}
	if err := p.readDelimiters(header); err != nil {
		return nil, err
	}
	raw18, _ := headerField(header, 18)
	name := string(firstValue(raw18, p.d))
	if p.d.Escape != 0 {
		name = unescape(name, p.d, p.trunc, charset{})
	}
	cs, ok := lookupCharset(strings.TrimSpace(name))
	if !ok {
		return nil, parseError(CodeUnsupportedMessageType, "MSH-18: unsupported character set %q", name)
	}
	p.cs = cs
	var text string
	if cs.enc == nil {
		if !utf8.Valid(data) {
			return nil, parseError(CodeDataType, "message is not valid UTF-8; MSH-18 must name its character set (e.g. GB 18030-2000)")
		}
		text = string(data)
	} else {
		decoded, err := cs.decode(data)
		if err != nil {
			return nil, parseError(CodeDataType, "MSH-18 %q: %v", name, err)
		}
		text = string(decoded)
	}
	m, err := p.parse(text)
	if err != nil {
		return nil, err
	}
	msh := m.Segments[0]
	// Encode picks the character set from the decoded MSH-18; make sure it picks this
	// one, or the message could not be written back as it was read.
	if again, _ := lookupCharset(strings.TrimSpace(msh.Get("18"))); again != cs {
		return nil, parseError(CodeUnsupportedMessageType, "MSH-18: unsupported character set %q", msh.Get("18"))
	}
	if msh.Get("9") == "" {
		return nil, parseError(CodeRequiredField, "MSH-9 (message type) is missing")
	}
	if msh.Get("10") == "" {
		return nil, parseError(CodeRequiredField, "MSH-10 (message control id) is missing")
	}
	return m, nil
}

// trimLeading drops what may precede MSH: white space (some senders start with a line
// break left over from the previous frame) and a UTF-8 or GB 18030 byte-order mark.
func trimLeading(b []byte) []byte {
	for {
		switch {
		case len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n'):
			b = b[1:]
		case bytes.HasPrefix(b, []byte("\xef\xbb\xbf")):
			b = b[3:]
		case bytes.HasPrefix(b, []byte("\x84\x31\x95\x33")):
			b = b[4:]
		default:
			return b
		}
	}
}

// firstValue cuts a raw field down to its first repetition's first component's first
// sub-component: what Segment.Get returns for the field.
func firstValue(raw []byte, d Delimiters) []byte {
	for _, c := range [...]byte{d.Repetition, d.Component, d.SubComponent} {
		if c == 0 {
			continue
		}
		if i := bytes.IndexByte(raw, c); i >= 0 {
			raw = raw[:i]
		}
	}
	return raw
}

// Character classes of the parser's lookup table.
const (
	cData = iota
	cField
	cRepetition
	cComponent
	cSub
	cEscape
	cEOL
)

// parser holds the state of one Parse. The containers of all segments are cut from
// four arrays (subs, comps, reps, fields) sized up front by counting delimiters (each
// count is an upper bound, see parse), with full slice expressions so that a caller
// appending to one container reallocates it instead of overwriting its neighbour.
type parser struct {
	d     Delimiters
	trunc byte // the truncation character of v2.7, or 0
	cs    charset
	class [256]uint8

	// The arrays have their final length; ns, nc, nr and nf count the elements used.
	subs   []string
	comps  []Component
	reps   []Repetition
	fields []Field

	ns, nc, nr, nf int

	// Values with escape sequences are decoded one after another into arena, and
	// patches say which sub-component gets which stretch of it once all are decoded:
	// one allocation for all of them instead of one each.
	arena   []byte
	patches []patch
}

type patch struct{ sub, start, end int }

// readDelimiters reads MSH-1 and MSH-2 from the (still raw) MSH line.
func (p *parser) readDelimiters(header []byte) error {
	fs := header[3]
	if !validDelimiter(fs) {
		return parseError(CodeDataType, "MSH-1: %q cannot be a field separator", fs)
	}
	enc, _ := headerField(header, 2)
	if len(enc) > 5 {
		return parseError(CodeDataType, "MSH-2 %q: more than five encoding characters", enc)
	}
	d := Delimiters{Field: fs}
	slots := [...]*byte{&d.Component, &d.Repetition, &d.Escape, &d.SubComponent}
	valid := true
	for i := 0; i < len(enc) && i < 4; i++ {
		*slots[i] = enc[i]
		valid = valid && validDelimiter(enc[i])
	}
	if !valid || !d.check() {
		return parseError(CodeDataType, "MSH-2 %q: invalid or repeated encoding characters", enc)
	}
	if len(enc) == 5 {
		t := enc[4]
		if !validDelimiter(t) || bytes.IndexByte(enc[:4], t) >= 0 || t == fs {
			return parseError(CodeDataType, "MSH-2 %q: invalid truncation character", enc)
		}
		p.trunc = t
	}
	p.d = d
	return nil
}

func (p *parser) parse(text string) (*Message, error) {
	d := p.d
	p.class[d.Field] = cField
	nLines := strings.Count(text, "\r") + strings.Count(text, "\n") + 1
	// A segment has one field more than it has field separators, MSH one more again
	// (MSH-1 is a separator that also counts as a field).
	count := func(c byte) int { return strings.Count(text, byteString(c)) }
	nFields := nLines + count(d.Field) + 1
	nReps := nFields
	if d.Repetition != 0 {
		p.class[d.Repetition] = cRepetition
		nReps += count(d.Repetition)
	}
	nComps := nReps
	if d.Component != 0 {
		p.class[d.Component] = cComponent
		nComps += count(d.Component)
	}
	nSubs := nComps
	if d.SubComponent != 0 {
		p.class[d.SubComponent] = cSub
		nSubs += count(d.SubComponent)
	}
	if d.Escape != 0 {
		p.class[d.Escape] = cEscape
	}
	p.class['\r'] = cEOL
	p.class['\n'] = cEOL
	var patches [64]patch
	p.patches = patches[:0]
	p.subs = make([]string, nSubs)
	p.comps = make([]Component, nComps)
	p.reps = make([]Repetition, nReps)
	p.fields = make([]Field, nFields)

	m := &Message{Delims: d}
	segs := make([]Segment, 0, nLines)
	m.Segments = make([]*Segment, 0, nLines)
	for pos := 0; pos < len(text); {
		// Skip line ends and lines of nothing but blanks.
		blank := pos
		for blank < len(text) && (text[blank] == ' ' || text[blank] == '\t') {
			blank++
		}
		if blank == len(text) {
			break
		}
		if text[blank] == '\r' || text[blank] == '\n' {
			pos = blank + 1
			continue
		}
		segs = append(segs, Segment{delims: &m.Delims})
		s := &segs[len(segs)-1]
		var err error
		pos, err = p.segment(text, pos, len(segs), s)
		if err != nil {
			return nil, err
		}
		m.Segments = append(m.Segments, s)
	}
	if len(p.patches) > 0 {
		decoded := string(p.arena)
		for _, pt := range p.patches {
			p.subs[pt.sub] = decoded[pt.start:pt.end]
		}
	}
	return m, nil
}

// segment parses the segment starting at text[pos] into s and returns the position of
// its line end. n is its 1-based position in the message.
func (p *parser) segment(text string, pos, n int, s *Segment) (int, error) {
	end := pos + 3
	if end > len(text) || !validName(text[pos:end]) ||
		(end < len(text) && p.class[text[end]] != cField && p.class[text[end]] != cEOL) {
		name := text[pos:]
		if i := strings.IndexAny(name, "\r\n"); i >= 0 {
			name = name[:i]
		}
		if i := strings.IndexByte(name, p.d.Field); i >= 0 {
			name = name[:i]
		}
		if len(name) > 10 {
			name = name[:10] + "..."
		}
		return 0, parseError(CodeSegmentSequence, "segment %d: invalid segment name %q", n, name)
	}
	s.Name = text[pos:end]
	if n > 1 && headerName(s.Name) {
		return 0, parseError(CodeSegmentSequence, "segment %d: %s inside a message (split batches before parsing)", n, s.Name)
	}
	fieldStart := p.nf
	p.single(s.Name)
	i := end
	if n == 1 && i < len(text) && p.class[text[i]] == cField {
		// MSH-1 is the separator itself and MSH-2 the encoding characters: both are
		// kept as they stand, neither split nor unescaped.
		p.single(text[i : i+1])
		i++
		j := i
		for j < len(text) && p.class[text[j]] != cField && p.class[text[j]] != cEOL {
			j++
		}
		p.single(text[i:j])
		i = j
	}
	if i < len(text) && p.class[text[i]] == cField {
		i = p.fieldsFrom(text, i+1)
	}
	s.Fields = p.fields[fieldStart:p.nf:p.nf]
	return i, nil
}

// single adds a field holding the single value v, taken as it stands.
func (p *parser) single(v string) {
	p.subs[p.ns] = v
	p.comps[p.nc] = p.subs[p.ns : p.ns+1 : p.ns+1]
	p.reps[p.nr] = p.comps[p.nc : p.nc+1 : p.nc+1]
	p.fields[p.nf] = p.reps[p.nr : p.nr+1 : p.nr+1]
	p.ns++
	p.nc++
	p.nr++
	p.nf++
}

// fieldsFrom parses the fields that start at text[i] up to the end of the line, and
// returns the position of the line end. It is the parser's inner loop, so it keeps its
// state in locals.
func (p *parser) fieldsFrom(text string, i int) int {
	class := &p.class
	subs, comps, reps, fields := p.subs, p.comps, p.reps, p.fields
	ns, nc, nr, nf := p.ns, p.nc, p.nr, p.nf
	sub0, comp0, rep0 := ns, nc, nr // where the open component, repetition and field start
	start, esc := i, false
	for {
		k := uint8(cEOL)
		for ; i < len(text); i++ {
			k = class[text[i]]
			if k == cData {
				continue
			}
			if k == cEscape {
				esc = true
				continue
			}
			break
		}
		if i == len(text) {
			k = cEOL
		}
		v := text[start:i]
		if esc {
			from := len(p.arena)
			p.arena = appendUnescaped(p.arena, v, p.d, p.trunc, p.cs)
			p.patches = append(p.patches, patch{ns, from, len(p.arena)})
			v, esc = "", false
		}
		subs[ns] = v
		ns++
		start = i + 1
		if k != cSub {
			comps[nc] = subs[sub0:ns:ns]
			nc++
			sub0 = ns
			if k != cComponent {
				reps[nr] = comps[comp0:nc:nc]
				nr++
				comp0 = nc
				if k != cRepetition {
					fields[nf] = reps[rep0:nr:nr]
					nf++
					rep0 = nr
					if k == cEOL {
						break
					}
				}
			}
		}
		i++
	}
	p.ns, p.nc, p.nr, p.nf = ns, nc, nr, nf
	return i
}

// validName reports whether name is a segment name: three characters, an upper-case
// letter followed by upper-case letters or digits (Z-segments included).
func validName(name string) bool {
	if len(name) != 3 || name[0] < 'A' || name[0] > 'Z' {
		return false
	}
	for i := 1; i < 3; i++ {
		c := name[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// headerName reports whether a segment is one that may only start a message, batch or
// file, or end a batch or file: such a segment after the first one means the input is
// a batch, not a message.
func headerName(name string) bool {
	switch name {
	case "MSH", "BHS", "BTS", "FHS", "FTS":
		return true
	}
	return false
}
