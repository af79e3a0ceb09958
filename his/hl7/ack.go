package hl7

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Acknowledgment codes for MSA-1 (HL7 table 0008): the A codes of original mode and
// application acknowledgements, the C codes of enhanced-mode commit acknowledgements.
const (
	AckAccept    = "AA"
	AckError     = "AE"
	AckReject    = "AR"
	CommitAccept = "CA"
	CommitError  = "CE"
	CommitReject = "CR"
)

// Ack returns the acknowledgement of req: ACK^<req's trigger>^ACK with sending and
// receiving application and facility swapped from req's MSH, a new control id, req's
// processing id (MSH-11), version (MSH-12) and character set (MSH-18, so the answer
// goes out in the encoding the sender used) and delimiters; MSA-1 code, MSA-2 req's
// control id, MSA-3 text. Unless code is AA or CA, an ERR segment follows: ERR-3 errCode
// (HL7 table 0357, CodeInternal when empty) with its table text, ERR-4 severity "E" and
// ERR-8 text. req may be nil, which gives an acknowledgement that quotes nothing.
func Ack(req *Message, code, text, errCode string) *Message {
	trigger, control := "", ""
	var rm *Segment
	if req != nil {
		_, trigger, _ = req.Type()
		control = req.ControlID()
		rm = req.Segment("MSH")
	}
	a := New("ACK", trigger, "ACK", "")
	msh := a.Segments[0]
	if req != nil && req.Delims.check() && req.Delims.SubComponent != 0 {
		a.Delims = req.Delims
		msh.Fields[1] = value(byteString(a.Delims.Field))
		msh.Fields[2] = value(a.Delims.encodingCharacters())
	}
	if rm != nil {
		for _, swap := range [...][2]int{{3, 5}, {4, 6}, {5, 3}, {6, 4}, {11, 11}, {12, 12}} {
			to, from := swap[0], swap[1]
			if from < len(rm.Fields) && rm.Repetitions(from) > 0 {
				for len(msh.Fields) <= to {
					msh.Fields = append(msh.Fields, value(""))
				}
				msh.Fields[to] = rm.Fields[from].Clone()
			}
		}
		if cs := rm.Get("18"); cs != "" {
			if _, ok := lookupCharset(strings.TrimSpace(cs)); ok {
				msh.Set("18", cs)
			}
		}
	}
	msa := a.Add("MSA")
	msa.Set("1", code)
	msa.Set("2", control)
	if text != "" {
		msa.Set("3", text)
	}
	if code != AckAccept && code != CommitAccept {
		if errCode == "" {
			errCode = CodeInternal
		}
		e := a.Add("ERR")
		e.Set("3-1", errCode)
		if name := codeText[errCode]; name != "" {
			e.Set("3-2", name)
			e.Set("3-3", "HL70357")
		}
		e.Set("4", "E")
		if text != "" {
			e.Set("8", text)
		}
	}
	return a
}

// maxRecovered bounds each value Nak copies from unparsable input, so that garbage
// cannot make the answer large.
const maxRecovered = 199

// Nak returns an acknowledgement (see Ack) for input that could not be parsed, taking
// from raw, best effort, what it can of the MSH line: applications and facilities,
// trigger event, control id, processing id, version and character set. It never
// panics, and the message it returns always encodes.
func Nak(raw []byte, code, errCode, text string) (nak *Message) {
	defer func() {
		if recover() != nil {
			nak = Ack(nil, code, text, errCode)
		}
	}()
	code = strings.ToValidUTF8(code, "\uFFFD")
	errCode = strings.ToValidUTF8(errCode, "\uFFFD")
	text = strings.ToValidUTF8(text, "\uFFFD")
	req := &Message{Delims: DefaultDelimiters}
	msh := req.Add("MSH")
	for n, v := range recoverHeader(raw) {
		if v != "" {
			msh.Set(n, v)
		}
	}
	return Ack(req, code, text, errCode)
}

// recoverHeader reads what it can of the MSH line in raw, keyed by the Segment.Set path
// the value belongs at.
func recoverHeader(raw []byte) map[string]string {
	out := map[string]string{}
	raw = trimLeading(raw)
	i := bytes.Index(raw[:min(len(raw), 4096)], []byte("MSH"))
	if i < 0 {
		return out
	}
	line := raw[i:]
	if j := bytes.IndexAny(line, "\r\n"); j >= 0 {
		line = line[:j]
	}
	line = line[:min(len(line), 1<<16)]
	if len(line) < 4 || !validDelimiter(line[3]) {
		return out
	}
	d := Delimiters{Field: line[3]}
	enc, _ := headerField(line, 2)
	slots := [...]*byte{&d.Component, &d.Repetition, &d.Escape, &d.SubComponent}
	for k := 0; k < len(enc) && k < 4; k++ {
		*slots[k] = enc[k]
	}
	if !d.check() {
		d = Delimiters{Field: d.Field}
	}
	cs := charset{}
	if f, ok := headerField(line, 18); ok {
		name := strings.TrimSpace(string(firstValue(f, d)))
		if c, known := lookupCharset(name); known {
			cs = c
			out["18"] = name
		}
	}
	get := func(n, comp int) string {
		f, ok := headerField(line, n)
		if !ok {
			return ""
		}
		if d.Repetition != 0 {
			if k := bytes.IndexByte(f, d.Repetition); k >= 0 {
				f = f[:k]
			}
		}
		if d.Component != 0 {
			for ; comp > 1; comp-- {
				k := bytes.IndexByte(f, d.Component)
				if k < 0 {
					return ""
				}
				f = f[k+1:]
			}
			if k := bytes.IndexByte(f, d.Component); k >= 0 {
				f = f[:k]
			}
		}
		if d.SubComponent != 0 {
			if k := bytes.IndexByte(f, d.SubComponent); k >= 0 {
				f = f[:k]
			}
		}
		v, ok := cs.decodeString(f)
		if !ok {
			v = strings.ToValidUTF8(string(f), "\uFFFD")
		}
		if d.Escape != 0 {
			v = unescape(v, d, 0, cs)
		}
		return truncate(v, maxRecovered)
	}
	for _, n := range [...]int{3, 4, 5, 6, 10, 11, 12} {
		out[itoa(n)] = get(n, 1)
	}
	out["9-1"] = get(9, 1)
	out["9-2"] = get(9, 2)
	return out
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return string([]byte{byte('0' + n/10), byte('0' + n%10)})
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
