package hl7

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// crJoin joins segments with CR, the way Encode writes them.
func crJoin(segs ...string) string { return strings.Join(segs, "\r") }

func mustParse(t *testing.T, s string) *Message {
	t.Helper()
	m, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return m
}

func mustEncode(t *testing.T, m *Message) string {
	t.Helper()
	b, err := m.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return string(b)
}

// sameMessage reports whether a and b hold the same delimiters, segment names and
// values.
func sameMessage(a, b *Message) bool {
	if a.Delims != b.Delims || len(a.Segments) != len(b.Segments) {
		return false
	}
	for i := range a.Segments {
		sa, sb := a.Segments[i], b.Segments[i]
		if sa.Name != sb.Name || !reflect.DeepEqual(sa.Fields, sb.Fields) {
			return false
		}
	}
	return true
}

// dump shows a message's values for failure messages.
func dump(m *Message) string {
	var b strings.Builder
	for _, s := range m.Segments {
		fmt.Fprintf(&b, "%s %q\n", s.Name, s.Fields)
	}
	return b.String()
}

func parseErrorCode(t *testing.T, err error) string {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *ParseError", err, err)
	}
	return pe.Code
}

const adt = `MSH|^~\&|HIS|H1|IHOS|IHOS|20240315090000+0800||ADT^A04^ADT_A01|C1|P|2.5.1`

func TestSegmentSeparators(t *testing.T) {
	segs := []string{adt, "EVN|A04", "PID|1||P1^^^HIS^PI||张三"}
	want := crJoin(segs...)
	inputs := map[string]string{
		"CR":                 strings.Join(segs, "\r"),
		"LF":                 strings.Join(segs, "\n"),
		"CRLF":               strings.Join(segs, "\r\n"),
		"mixed":              segs[0] + "\r\n" + segs[1] + "\n" + segs[2],
		"final CR":           want + "\r",
		"trailing blanks":    strings.Join(segs, "\r\n") + "\r\n\r\n  \t\n\n",
		"blank lines inside": segs[0] + "\r\r\n\n" + segs[1] + "\r \r" + segs[2],
		"BOM and blanks":     "\xef\xbb\xbf \r\n\t" + want,
		"leading CRLF":       "\r\n\r\n" + want,
	}
	for name, in := range inputs {
		m := mustParse(t, in)
		if len(m.Segments) != 3 {
			t.Errorf("%s: %d segments, want 3", name, len(m.Segments))
		}
		if got := mustEncode(t, m); got != want {
			t.Errorf("%s: Encode = %q, want %q", name, got, want)
		}
	}
}

func TestStructure(t *testing.T) {
	m := mustParse(t, crJoin(adt,
		`PID|Field1|Component1^Component2|Component1^Sub-Component1&Sub-Component2^Component3|Repeat1~Repeat2`,
		`NTE|1||x|||`))
	pid := m.Segment("PID")
	want := []Field{
		{{{"PID"}}},
		{{{"Field1"}}},
		{{{"Component1"}, {"Component2"}}},
		{{{"Component1"}, {"Sub-Component1", "Sub-Component2"}, {"Component3"}}},
		{{{"Repeat1"}}, {{"Repeat2"}}},
	}
	if !reflect.DeepEqual(pid.Fields, want) {
		t.Errorf("PID fields = %q, want %q", pid.Fields, want)
	}
	nte := m.Segment("NTE")
	if len(nte.Fields) != 7 {
		t.Errorf("NTE has %d fields, want 7 (empty trailing fields kept)", len(nte.Fields))
	}
	msh := m.Segments[0]
	if msh.Get("1") != "|" || msh.Get("2") != `^~\&` || msh.Get("9") != "ADT" || msh.Get("9-3") != "ADT_A01" {
		t.Errorf("MSH-1 %q MSH-2 %q MSH-9 %q", msh.Get("1"), msh.Get("2"), msh.Raw(9))
	}
	if typ, trig, st := m.Type(); typ != "ADT" || trig != "A04" || st != "ADT_A01" {
		t.Errorf("Type() = %q %q %q", typ, trig, st)
	}
	if m.ControlID() != "C1" {
		t.Errorf("ControlID() = %q", m.ControlID())
	}
	// Appending to a parsed container must not overwrite its neighbour.
	f := pid.Fields[2]
	f[0] = append(f[0], Component{"extra"})
	if pid.Get("3-1") != "Component1" {
		t.Errorf("append to PID-2 changed PID-3: %q", pid.Raw(3))
	}
}

func TestCustomDelimiters(t *testing.T) {
	// python-hl7's non-standard separators, with the MSH-9 and MSH-10 Parse requires.
	in := crJoin(`MSH$%~\&$GHH LAB$$$$$$ADT%A01$X1`, `PID$$$555-44-4444$$EVERYWOMAN%EVE%E%%%L`)
	m := mustParse(t, in)
	if m.Delims != (Delimiters{'$', '%', '~', '\\', '&'}) {
		t.Fatalf("Delims = %q", m.Delims)
	}
	if got := m.Get("PID-5-2"); got != "EVE" {
		t.Errorf("PID-5-2 = %q", got)
	}
	if got := m.Get("MSH-9-2"); got != "A01" {
		t.Errorf("MSH-9-2 = %q", got)
	}
	if got := mustEncode(t, m); got != in {
		t.Errorf("Encode = %q, want %q", got, in)
	}
	m.Set("PID-6", "a$b%c|d")
	if got := m.Segment("PID").Raw(6); got != `a\F\b\S\c|d` {
		t.Errorf("Raw(6) = %q", got)
	}
}

func TestTruncationCharacter(t *testing.T) {
	in := crJoin(`MSH|^~\&#|A|B|C|D|20240101||ADT^A01|X1|P|2.7`, `NTE|1||50# bag\P\x`)
	m := mustParse(t, in)
	if got := m.Get("MSH-2"); got != `^~\&#` {
		t.Errorf("MSH-2 = %q", got)
	}
	if got := m.Get("NTE-3"); got != "50# bag#x" {
		t.Errorf("NTE-3 = %q", got)
	}
	want := crJoin(`MSH|^~\&#|A|B|C|D|20240101||ADT^A01|X1|P|2.7`, `NTE|1||50# bag#x`)
	if got := mustEncode(t, m); got != want {
		t.Errorf("Encode = %q, want %q", got, want)
	}
}

func TestShortEncodingCharacters(t *testing.T) {
	for _, tc := range []struct {
		in    string
		delim Delimiters
		get   map[string]string
	}{
		{
			in:    crJoin(`MSH|^~\|A||||||ADT^A01|X1`, `PID|1||a&b^c~d`),
			delim: Delimiters{'|', '^', '~', '\\', 0},
			get:   map[string]string{"PID-3-1": "a&b", "PID-3(2)": "d"},
		},
		{
			in:    crJoin(`MSH|^~|A||||||ADT^A01|X1`, `PID|1||a\F\&b^c~d`),
			delim: Delimiters{'|', '^', '~', 0, 0},
			get:   map[string]string{"PID-3-1": `a\F\&b`, "PID-3-2": "c", "PID-3(2)-1": "d"},
		},
		{
			in:    crJoin(`MSH|^|A||||||ADT^A01|X1`, `PID|1||a~b^c`),
			delim: Delimiters{'|', '^', 0, 0, 0},
			get:   map[string]string{"PID-3": "a~b", "PID-3-2": "c", "MSH-9-2": "A01"},
		},
		{
			in:    crJoin(`MSH||A||||||ADT^A01|X1`, `PID|1||a~b^c`),
			delim: Delimiters{Field: '|'},
			get:   map[string]string{"PID-3": "a~b^c", "MSH-9": "ADT^A01"},
		},
	} {
		m := mustParse(t, tc.in)
		if m.Delims != tc.delim {
			t.Errorf("%q: Delims = %q, want %q", tc.in, m.Delims, tc.delim)
		}
		for path, want := range tc.get {
			if got := m.Get(path); got != want {
				t.Errorf("%q: %s = %q, want %q", tc.in, path, got, want)
			}
		}
		if got := mustEncode(t, m); got != tc.in {
			t.Errorf("Encode = %q, want %q", got, tc.in)
		}
	}
	// Without an escape character a delimiter in a value cannot be written.
	m := mustParse(t, crJoin(`MSH|^~|A||||||ADT^A01|X1`, `PID|1`))
	m.Set("PID-2", "a|b")
	if _, err := m.Encode(); err == nil {
		t.Error("Encode of a value holding '|' without an escape character succeeded")
	}
}

func TestInvalidDelimiters(t *testing.T) {
	for _, in := range []string{
		`MSH|^^\&|A||||||ADT^A01|X1`,      // repeated
		`MSH|^~\&#x|A||||||ADT^A01|X1`,    // six characters
		`MSH|^~\&^|A||||||ADT^A01|X1`,     // truncation equal to a delimiter
		`MSHA^~\&A||||||ADT^A01|X1`,       // letter as field separator
		"MSH\x01^~\\&\x01A",               // control character
		"MSH|^~\\\xe5&|A||||||ADT^A01|X1", // non-ASCII
		`MSH|^ \&|A||||||ADT^A01|X1`,      // space
	} {
		_, err := Parse([]byte(in))
		if err == nil {
			t.Errorf("Parse(%q) succeeded", in)
			continue
		}
		if code := parseErrorCode(t, err); code != CodeDataType {
			t.Errorf("Parse(%q): code %s, want 102", in, code)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`a\F\b`:                  "a|b",
		`\S\\T\\R\\E\`:           `^&~\`,
		`\X41\`:                  "A",
		`\Xe5bca0e4b889\`:        "张三",
		`a\.br\b`:                "a\nb",
		`\H\bold\N\ text`:        "bold text",
		`\Zfoo\x`:                `\Zfoo\x`,
		`\.sp2\`:                 `\.sp2\`,
		`\C2842\`:                `\C2842\`,
		`unterminated\F`:         `unterminated\F`,
		`\X4\`:                   `\X4\`,
		`\XZZ\`:                  `\XZZ\`,
		`\Xff\`:                  `\Xff\`, // not UTF-8: kept
		`\P\`:                    `\P\`,   // no truncation character declared
		`\\`:                     `\\`,
		`C:\E\dir\E\file`:        `C:\dir\file`,
		`\X0D0A\`:                "\r\n",
		`x\F\\S\y\`:              `x|^y\`,
		`\E\X41\E\`:              `\X41\`,
		`\T\\.br\\H\\N\\.br\end`: "&\n\nend",
	} {
		m := mustParse(t, crJoin(adt, "NTE|1||"+in))
		if got := m.Get("NTE-3"); got != want {
			t.Errorf("%s decodes to %q, want %q", in, got, want)
		}
	}
}

func TestEscapeOnEncode(t *testing.T) {
	m := New("ORU", "R01", "ORU_R01", "C1")
	m.Set("NTE-3", "a|b^c~d\\e&f\ng\rh\ti\x00j\x0bk\x1cl#m张")
	nte := m.Segment("NTE")
	want := `a\F\b\S\c\R\d\E\e\T\f\.br\g\X0D\h` + "\ti" + `\X00\j\X0B\k\X1C\l#m张`
	if got := nte.Raw(3); got != want {
		t.Errorf("Raw = %q, want %q", got, want)
	}
	enc := mustEncode(t, m)
	if strings.ContainsAny(enc, "\x0b\x1c\n") {
		t.Errorf("encoded message holds a frame byte or LF: %q", enc)
	}
	back := mustParse(t, enc)
	if got := back.Get("NTE-3"); got != m.Get("NTE-3") {
		t.Errorf("round trip = %q, want %q", got, m.Get("NTE-3"))
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code string
	}{
		{"", CodeSegmentSequence},
		{"   \r\n", CodeSegmentSequence},
		{"PID|1", CodeSegmentSequence},
		{"msh|^~\\&", CodeSegmentSequence},
		{"MSH", CodeRequiredField},
		{`MSH|^~\&|A|B|C|D|||`, CodeRequiredField},
		{`MSH|^~\&|A|B|C|D|||^A01|X1`, CodeRequiredField},
		{`MSH|^~\&|A|B|C|D|||ADT^A01|`, CodeRequiredField},
		{`MSH|^~\&|A|B|C|D|||ADT^A01`, CodeRequiredField},
		{crJoin(adt, "pid|1"), CodeSegmentSequence},
		{crJoin(adt, "PI|1"), CodeSegmentSequence},
		{crJoin(adt, "PIDX|1"), CodeSegmentSequence},
		{crJoin(adt, "1ID|1"), CodeSegmentSequence},
		{crJoin(adt, " PID|1"), CodeSegmentSequence},
		{crJoin(adt, "PID|1", "MSH|^~\\&|A"), CodeSegmentSequence},
		{crJoin(adt, "BHS|^~\\&|A"), CodeSegmentSequence},
		{crJoin(adt, "PID|1||\xff\xfe"), CodeDataType},
		{adt + "||||||UNICODE UTF-16", CodeUnsupportedMessageType},
		{adt + "||||||8859/5", CodeUnsupportedMessageType},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil {
			t.Errorf("Parse(%q) succeeded", tc.in)
			continue
		}
		if code := parseErrorCode(t, err); code != tc.code {
			t.Errorf("Parse(%q): code %s (%v), want %s", tc.in, code, err, tc.code)
		}
	}
	// Segment names: Z-segments and digits pass.
	m := mustParse(t, crJoin(adt, "ZPI|1|x", "Z01|2", "PV1|1", "ZZZ"))
	if len(m.All("Z01")) != 1 || m.Get("ZPI-2") != "x" || m.Segment("ZZZ") == nil {
		t.Errorf("Z-segments not parsed: %d segments", len(m.Segments))
	}
}

func TestCharsetNames(t *testing.T) {
	for name, gb := range map[string]bool{
		"": false, "UNICODE UTF-8": false, "utf-8": false, "UTF8": false, "ASCII": false, "UNICODE": false,
		"GB 18030-2000": true, "gb18030": true, "GBK": true, "gbk": true, "CHINESE": true, "Chinese": true,
		"GB2312": true, "gb 18030_2000": true,
	} {
		cs, ok := lookupCharset(name)
		if !ok {
			t.Errorf("%q not supported", name)
			continue
		}
		if (cs.enc != nil) != gb {
			t.Errorf("%q: GB 18030 = %v, want %v", name, cs.enc != nil, gb)
		}
	}
	for _, name := range []string{"UNICODE UTF-16", "BIG-5", "KS X 1001", "ISO IR87", "EBCDIC"} {
		if _, ok := lookupCharset(name); ok {
			t.Errorf("%q accepted", name)
		}
	}
}

func TestGB18030(t *testing.T) {
	for _, name := range []string{CharsetGB18030, "GB18030", "GBK", "chinese"} {
		m := New("RDE", "O11", "RDE_O11", "C1")
		m.Set("MSH-4", "廣東葉區診所")
		m.Set("MSH-18", name)
		m.Set("PID-5", "张三")
		m.Set("RXE-2-2", "阿莫西林胶囊")
		m.Set("NTE-3", "東|診\\葉~區^")
		enc := mustEncode(t, m)
		zhang, _ := simplifiedchinese.GB18030.NewEncoder().String("张三")
		if !strings.Contains(enc, "|"+zhang) || strings.Contains(enc, "张三") {
			t.Errorf("%s: message not in GB 18030: %q", name, enc)
		}
		back := mustParse(t, enc)
		if !sameMessage(m, back) {
			t.Errorf("%s: round trip differs:\n%s\n%s", name, dump(m), dump(back))
		}
		if back.Get("MSH-4") != "廣東葉區診所" || back.Get("RXE-2-2") != "阿莫西林胶囊" || back.Get("NTE-3") != "東|診\\葉~區^" {
			t.Errorf("%s: values %q %q %q", name, back.Get("MSH-4"), back.Get("RXE-2-2"), back.Get("NTE-3"))
		}
		if again := mustEncode(t, back); again != enc {
			t.Errorf("%s: re-encoding differs", name)
		}
	}
	// GB 18030 bytes declared as UTF-8 (or not declared) are rejected, not misread.
	m := New("ADT", "A04", "", "C1")
	m.Set("PID-5", "张三")
	m.Set("MSH-18", "GB18030")
	enc := mustEncode(t, m)
	undeclared := bytes.Replace([]byte(enc), []byte("GB18030"), nil, 1)
	if _, err := Parse(undeclared); err == nil || parseErrorCode(t, err) != CodeDataType {
		t.Errorf("GB 18030 without MSH-18: err = %v", err)
	}
	// \X..\ in a GB 18030 message spells GB 18030 bytes.
	m = mustParse(t, string(mustEncodeGB(t, crJoin(adt+"||||||GB 18030-2000", `NTE|1||\XD5C5C8FD\`))))
	if got := m.Get("NTE-3"); got != "张三" {
		t.Errorf(`\XD5C5C8FD\ = %q, want 张三`, got)
	}
}

func mustEncodeGB(t *testing.T, s string) []byte {
	t.Helper()
	b, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLatin1(t *testing.T) {
	m := New("ADT", "A04", "", "C1")
	m.Set("MSH-18", "8859/1")
	m.Set("PID-5-1", "Müller")
	m.Set("PID-5-2", "José")
	enc := mustEncode(t, m)
	if !strings.Contains(enc, "M\xfcller") {
		t.Errorf("not Latin-1: %q", enc)
	}
	if back := mustParse(t, enc); back.Get("PID-5-2") != "José" {
		t.Errorf("PID-5-2 = %q", back.Get("PID-5-2"))
	}
	m.Set("PID-6", "张")
	if _, err := m.Encode(); err == nil {
		t.Error("encoding 张 in Latin-1 succeeded")
	}
}

func TestGetSet(t *testing.T) {
	m := mustParse(t, crJoin(adt,
		`PID|1||P1^^^HIS^PI~110101199003078515^^^CHN^NNCHN||张^三&x||19900307`,
		`OBX|1|NM|WBC^白细胞||6.5`, `OBX|2|NM|RBC^红细胞||4.8`))
	for path, want := range map[string]string{
		"PID-3":         "P1",
		"PID-3-4":       "HIS",
		"PID-3(2)":      "110101199003078515",
		"PID-3(2)-5":    "NNCHN",
		"PID-3(3)":      "",
		"PID-5":         "张",
		"PID-5-2":       "三",
		"PID-5-2-2":     "x",
		"PID-5-2-3":     "",
		"PID-5-1-1":     "张",
		"PID(1)-7":      "19900307",
		"PID(2)-7":      "",
		"PID-99":        "",
		"PID.3.5":       "PI",
		"OBX(2)-3-2":    "红细胞",
		"OBX(2)-5":      "4.8",
		"OBX-5":         "6.5",
		"MSH-9-2":       "A04",
		"MSH-1":         "|",
		"MSH-2":         `^~\&`,
		"PID-0":         "PID",
		"NTE-1":         "",
		"PID":           "",
		"PID-":          "",
		"PID-x":         "",
		"PID-3()":       "",
		"PID-3(0)":      "",
		"PID(0)-3":      "",
		"PID-3-0":       "",
		"pid-3":         "",
		"PID-3-1-1-1":   "",
		"PID-999999999": "",
	} {
		if got := m.Get(path); got != want {
			t.Errorf("Get(%q) = %q, want %q", path, got, want)
		}
	}
	m.Set("PID-5-2-2", "y")
	m.Set("PID-3(3)-1", "1101A0000123")
	m.Set("PID-3(3)-5", "HC")
	m.Set("OBX(4)-5", "x")
	m.Set("PV1-3-9", "消化内科")
	if got := m.Segment("PID").Raw(5); got != "张^三&y" {
		t.Errorf("PID-5 = %q", got)
	}
	if got := m.Segment("PID").Raw(3); got != "P1^^^HIS^PI~110101199003078515^^^CHN^NNCHN~1101A0000123^^^^HC" {
		t.Errorf("PID-3 = %q", got)
	}
	if n := len(m.All("OBX")); n != 4 {
		t.Errorf("%d OBX after Set(OBX(4)-5), want 4", n)
	}
	if last := m.Segments[len(m.Segments)-1]; last.Name != "PV1" || last.Raw(3) != "^^^^^^^^消化内科" {
		t.Errorf("last segment %s %q", last.Name, last.Raw(3))
	}
	if got := m.Segments[len(m.Segments)-2].Raw(5); got != "x" {
		t.Errorf("OBX(4)-5 = %q", got)
	}
	// A field-level Set replaces only the first component.
	m.Set("PID-5", "李")
	if got := m.Segment("PID").Raw(5); got != "李^三&y" {
		t.Errorf("PID-5 = %q", got)
	}
	for _, bad := range []string{"PID", "PID-0", "pid-3", "PID-3-0", "PID-x", "PID(0)-1", "3"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Set(%q) did not panic", bad)
				}
			}()
			m.Set(bad, "v")
		}()
	}
	if enc := mustEncode(t, m); !sameMessage(m, mustParse(t, enc)) {
		t.Error("round trip after Set differs")
	}
}

func TestRepetitions(t *testing.T) {
	m := mustParse(t, crJoin(adt, `PID|1||a~b~||||`, `PV1|||~`))
	pid, pv1 := m.Segment("PID"), m.Segment("PV1")
	for _, tc := range []struct {
		s    *Segment
		f, n int
	}{{pid, 1, 1}, {pid, 3, 3}, {pid, 4, 0}, {pid, 99, 0}, {pid, -1, 0}, {pv1, 3, 2}, {pv1, 1, 0}} {
		if got := tc.s.Repetitions(tc.f); got != tc.n {
			t.Errorf("%s.Repetitions(%d) = %d, want %d", tc.s.Name, tc.f, got, tc.n)
		}
	}
}

func TestNew(t *testing.T) {
	m := New("ADT", "A04", "ADT_A01", "")
	msh := m.Segments[0]
	if len(m.Segments) != 1 || m.Delims != DefaultDelimiters {
		t.Fatalf("New: %d segments, delims %q", len(m.Segments), m.Delims)
	}
	if !regexp.MustCompile(`^\d{14}\+0800$`).MatchString(msh.Get("7")) {
		t.Errorf("MSH-7 = %q", msh.Get("7"))
	}
	if id := m.ControlID(); !regexp.MustCompile(`^\d{14}[0-9A-Z]{6}$`).MatchString(id) {
		t.Errorf("generated control id %q", id)
	}
	enc := mustEncode(t, m)
	want := regexp.MustCompile(`^MSH\|\^~\\&\|IHOS\|IHOS\|\|\|\d{14}\+0800\|\|ADT\^A04\^ADT_A01\|\w{20}\|P\|2\.5\.1\|\|\|\|\|\|UNICODE UTF-8$`)
	if !want.MatchString(enc) {
		t.Errorf("New encodes to %q", enc)
	}
	if got := mustEncode(t, New("ACK", "", "", "X")); !strings.Contains(got, "||ACK|X|") {
		t.Errorf("empty trigger and structure: %q", got)
	}
	if NewControlID() == NewControlID() {
		t.Error("two control ids alike")
	}
}

func TestAck(t *testing.T) {
	req := mustParse(t, string(mustEncodeGB(t, crJoin(
		`MSH$%~\&$HIS%1.2.3%ISO$医院$IHOS$IHOS$20240315$$ORU%R01%ORU_R01$MSG-7$T$2.5$$$$$$GB18030`,
		`PID$1`))))
	a := Ack(req, AckAccept, "", "")
	for path, want := range map[string]string{
		"MSH-3": "IHOS", "MSH-5": "HIS", "MSH-5-2": "1.2.3", "MSH-6": "医院",
		"MSH-9": "ACK", "MSH-9-2": "R01", "MSH-9-3": "ACK", "MSH-11": "T", "MSH-12": "2.5",
		"MSH-18": "GB18030", "MSA-1": "AA", "MSA-2": "MSG-7",
	} {
		if got := a.Get(path); got != want {
			t.Errorf("ACK %s = %q, want %q", path, got, want)
		}
	}
	if a.Delims != req.Delims {
		t.Errorf("ACK delimiters %q, want the request's", a.Delims)
	}
	if a.ControlID() == "" || a.ControlID() == "MSG-7" {
		t.Errorf("ACK control id %q", a.ControlID())
	}
	if a.Segment("ERR") != nil {
		t.Error("AA with an ERR segment")
	}
	enc := mustEncode(t, a)
	gbHospital, _ := simplifiedchinese.GB18030.NewEncoder().String("医院")
	if !strings.Contains(enc, gbHospital) {
		t.Errorf("ACK not in the request's character set: %q", enc)
	}
	// The ACK must not share storage with the request.
	a.Set("MSH-5-2", "changed")
	if req.Get("MSH-3-2") != "1.2.3" {
		t.Error("setting the ACK changed the request")
	}

	e := Ack(req, AckError, "订单不存在", CodeUnknownKey)
	for path, want := range map[string]string{
		"MSA-1": "AE", "MSA-3": "订单不存在", "ERR-3-1": "204", "ERR-3-2": "Unknown key identifier",
		"ERR-3-3": "HL70357", "ERR-4": "E", "ERR-8": "订单不存在",
	} {
		if got := e.Get(path); got != want {
			t.Errorf("AE %s = %q, want %q", path, got, want)
		}
	}
	if got := Ack(req, CommitReject, "x", "").Get("ERR-3"); got != CodeInternal {
		t.Errorf("default error code %q", got)
	}
	n := Ack(nil, AckReject, "x", CodeSegmentSequence)
	if n.Get("MSA-2") != "" || n.Get("MSH-9") != "ACK" {
		t.Errorf("Ack(nil): %q", mustEncode(t, n))
	}
	mustEncode(t, n)
}

func TestNak(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want map[string]string
	}{
		{
			raw: `MSH|^~\&|HIS^x|H1|IHOS|IHOS|20240101||ORU^R01^ORU_R01||P|2.5.1` + "\rPID|1",
			want: map[string]string{"MSH-3": "IHOS", "MSH-5": "HIS", "MSH-6": "H1", "MSH-9-2": "R01",
				"MSA-1": "AR", "MSA-2": "", "ERR-3": "101", "ERR-8": "MSH-10 missing"},
		},
		{
			raw:  "\r\nMSH|^~\\&|A\\F\\B||||||ADT^A01|C\\S\\9|P\rpid|",
			want: map[string]string{"MSH-5": "A|B", "MSA-2": "C^9", "MSH-9-2": "A01"},
		},
		{
			raw:  "garbage",
			want: map[string]string{"MSH-3": "IHOS", "MSA-2": "", "MSA-1": "AR"},
		},
		{
			raw:  "",
			want: map[string]string{"MSA-1": "AR"},
		},
		{
			raw:  "MSH|^~\\&|A\xffB||||||ADT^A01|X\xff1",
			want: map[string]string{"MSH-5": "A\uFFFDB", "MSA-2": "X\uFFFD1"},
		},
		{
			raw:  string(mustEncodeGB(t, `MSH|^~\&|廣東診所||||||ORU^R01|编号1|P|2.5|||||CHN|GB 18030-2000`)),
			want: map[string]string{"MSH-5": "廣東診所", "MSA-2": "编号1", "MSH-18": "GB 18030-2000"},
		},
		{
			raw:  "MSH|^~\\&|" + strings.Repeat("x", 5000) + "||||||ADT^A01|1",
			want: map[string]string{"MSH-5": strings.Repeat("x", maxRecovered), "MSA-2": "1"},
		},
	} {
		n := Nak([]byte(tc.raw), AckReject, CodeRequiredField, "MSH-10 missing")
		for path, want := range tc.want {
			if got := n.Get(path); got != want {
				t.Errorf("Nak(%.40q) %s = %q, want %q", tc.raw, path, got, want)
			}
		}
		enc := mustEncode(t, n)
		mustParse(t, enc)
	}
}

func TestEncodeErrors(t *testing.T) {
	bad := map[string]func(m *Message){
		"no segments":      func(m *Message) { m.Segments = nil },
		"first not MSH":    func(m *Message) { m.Segments[0].Name = "PID" },
		"bad name":         func(m *Message) { m.Add("pid") },
		"long name":        func(m *Message) { m.Add("PIDX") },
		"second MSH":       func(m *Message) { m.Add("MSH") },
		"batch header":     func(m *Message) { m.Add("BHS") },
		"nil segment":      func(m *Message) { m.Segments = append(m.Segments, nil) },
		"bad delimiters":   func(m *Message) { m.Delims.Component = '|' },
		"gap in MSH-2":     func(m *Message) { m.Delims.Repetition = 0 },
		"charset":          func(m *Message) { m.Set("MSH-18", "UNICODE UTF-16") },
		"invalid UTF-8":    func(m *Message) { m.Set("PID-5", "\xff") },
		"no sub separator": func(m *Message) { m.Delims.SubComponent = 0; m.Set("PID-5-1-2", "x") },
	}
	for name, spoil := range bad {
		m := New("ADT", "A01", "", "C1")
		m.Set("PID-1", "1")
		spoil(m)
		if b, err := m.Encode(); err == nil {
			t.Errorf("%s: Encode succeeded: %q", name, b)
		}
	}
}

// TestRoundTripProperty checks Parse(Encode(m)) == m for random messages whose values
// are full of delimiters, escape-like text, control characters and Chinese.
func TestRoundTripProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		m := randomMessage(r)
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("#%d: Encode: %v\n%q", i, err, dump(m))
		}
		back, err := Parse(enc)
		if err != nil {
			t.Fatalf("#%d: Parse(Encode(m)): %v\n%q", i, err, enc)
		}
		if !sameMessage(m, back) {
			t.Fatalf("#%d: Parse(Encode(m)) differs\n%q\n%s\n%s", i, enc, dump(m), dump(back))
		}
		again, err := back.Encode()
		if err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("#%d: Encode(Parse(x)) != x for canonical x (err %v)\n%q\n%q", i, err, enc, again)
		}
	}
}

var pieces = []string{
	"a", "Z", "0", " ", "张", "三", "阿莫西林胶囊", "東", "診", "é", "😀", "|", "^", "~", "\\", "&", "#", "$", "%",
	"\r", "\n", "\r\n", "\t", "\x00", "\x0b", "\x1c", "\x7f", `\.br\`, `\H\`, `\X41\`, `\F\`, `\E`, "MSH", "\ufeff",
}

func randomText(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(5) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func randomField(r *rand.Rand) Field {
	f := make(Field, 1+r.IntN(3)*r.IntN(2))
	for i := range f {
		f[i] = make(Repetition, 1+r.IntN(4)*r.IntN(2))
		for j := range f[i] {
			f[i][j] = make(Component, 1+r.IntN(3)*r.IntN(2))
			for k := range f[i][j] {
				f[i][j][k] = randomText(r)
			}
		}
	}
	return f
}

var delimiterSets = []Delimiters{DefaultDelimiters, {'$', '%', '~', '\\', '&'}, {'|', '^', '~', '!', '&'}, {'#', '*', '@', '+', '='}}

func randomMessage(r *rand.Rand) *Message {
	m := &Message{Delims: delimiterSets[r.IntN(len(delimiterSets))]}
	msh := m.Add("MSH")
	for range r.IntN(20) {
		msh.Fields = append(msh.Fields, randomField(r))
	}
	msh.Set("9-1", "ORU"+randomText(r))
	msh.Set("10", "C"+randomText(r))
	msh.Set("18", []string{"", CharsetUTF8, CharsetGB18030, "GBK", "utf-8"}[r.IntN(5)])
	names := []string{"PID", "PV1", "OBX", "NTE", "ZPI", "Z01", "ERR"}
	for range r.IntN(6) {
		s := m.Add(names[r.IntN(len(names))])
		for range r.IntN(12) {
			s.Fields = append(s.Fields, randomField(r))
		}
	}
	return m
}

func TestParseTimestamp(t *testing.T) {
	want := time.Date(2026, 11, 26, 4, 30, 15, 0, time.UTC)
	for in, w := range map[string]time.Time{
		"20261126123015+0800": want, "20261126123015": want, "20261126043015+0000": want,
		"20261126123015.1234+0800": want, "20261126": time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC),
		"": {}, "2026112": {}, "abc": {},
	} {
		if got := ParseTimestamp(in); !got.Equal(w) {
			t.Errorf("ParseTimestamp(%q) = %v, want %v", in, got, w)
		}
	}
	if got := ParseTimestamp(Timestamp(want)); !got.Equal(want) {
		t.Errorf("round trip %v", got)
	}
}
