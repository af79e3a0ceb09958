package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"ihos"
)

var han = regexp.MustCompile(`\p{Han}`)

// fuzzFields covers every field type normalize handles.
var fuzzFields = []Field{
	{Name: "text", Type: Text, Max: 8},
	{Name: "default_text", Type: Text},
	{Name: "long", Type: LongText, Max: 50},
	{Name: "int", Type: Int, Min: 0, Max: 9999},
	{Name: "signed", Type: Int, Min: -5, Max: 5},
	{Name: "money", Type: Money},
	{Name: "bool", Type: Bool},
	{Name: "enum", Type: Enum, Options: []Option{{"临床", "临床"}, {"a b", "a b"}}},
	{Name: "ref", Type: Ref, Ref: "x"},
	{Name: "phone", Type: Phone},
	{Name: "id_number", Type: IDNumber},
}

// checkNormalized asserts what normalize promises about its output.
func checkNormalized(t *testing.T, f *Field, in, v any, msg string) {
	t.Helper()
	if msg != "" {
		if v != nil || !han.MatchString(msg) {
			t.Fatalf("%s(%#v): value %#v with message %q", f.Name, in, v, msg)
		}
		return
	}
	switch f.Type {
	case Int, Money:
		n, ok := v.(int64)
		if !ok || n < int64(f.Min) || (f.Max != 0 && n > int64(f.Max)) {
			t.Fatalf("%s(%#v) = %#v, outside %d..%d", f.Name, in, v, f.Min, f.Max)
		}
		return
	case Bool:
		if _, ok := v.(bool); !ok {
			t.Fatalf("%s(%#v) = %#v, not a bool", f.Name, in, v)
		}
		return
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s(%#v) = %#v, not a string", f.Name, in, v)
	}
	max := f.Max
	if max == 0 {
		max = 100
		if f.Type == LongText {
			max = 2000
		}
	}
	if !utf8.ValidString(s) || s != strings.TrimSpace(s) || utf8.RuneCountInString(s) > max {
		t.Fatalf("%s(%#v) = %q: invalid, untrimmed or longer than %d", f.Name, in, s, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) && (f.Type != LongText || !strings.ContainsRune("\n\r\t", r)) {
			t.Fatalf("%s(%#v) = %q: control character %U", f.Name, in, s, r)
		}
	}
	if s == "" {
		return
	}
	switch f.Type {
	case Enum:
		if s != "临床" && s != "a b" {
			t.Fatalf("%s(%#v) = %q: not an option", f.Name, in, s)
		}
	case Phone:
		if !mobileRE.MatchString(s) && !landlineRE.MatchString(s) {
			t.Fatalf("%s(%#v) = %q: not a phone number", f.Name, in, s)
		}
	case IDNumber:
		if checkIDNumber(s) != "" || s != strings.ToUpper(s) {
			t.Fatalf("%s(%#v) = %q: not a valid ID number", f.Name, in, s)
		}
	}
}

// FuzzNormalize validates arbitrary values against every field type, both as a
// JSON value (as the API decodes a body) and as raw text (as a list filter
// arrives): no panic, and what is accepted is of the field's type and rules.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		`"心血管内科"`, `"  trimmed  "`, `""`, `null`, `true`, `false`, `0`, `1`, `-1`, `9999`, `10000`,
		`1.5`, `1e400`, `-1e400`, `99999999999999999999999`, `9007199254740993`, `"12"`, `" 7 "`,
		`[]`, `{}`, `["临床"]`, `{"a":1}`, `"临床"`, `"a b"`, `"是"`, `"否"`, `"yes"`, `"ON"`,
		`"13912345678"`, `"139 1234 5678"`, `"020-87654321-123"`, `"0201234567"`,
		`"11010519491231002X"`, `"11010519491231002x"`, `"110105194902300021"`, `"110105210001010021"`, `"１１０１０５"`,
		`"a\u0000b"`, `"a\nb\tc"`, `"\u202e\u200b"`, `"𠀀😀"`, "\"\xff\xfe\"", `"' OR 1=1 --"`, `"%_!"`,
		`"` + strings.Repeat("长", 101) + `"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		decoded := dec.Decode(&v) == nil
		for i := range fuzzFields {
			fl := &fuzzFields[i]
			if decoded {
				out, msg := normalize(fl, v)
				checkNormalized(t, fl, v, out, msg)
			}
			out, msg := normalize(fl, string(raw))
			checkNormalized(t, fl, string(raw), out, msg)
		}
		if len(raw) == 18 {
			checkIDNumber(string(raw)) // must not panic on any 18 bytes
		}
	})
}

// FuzzParseQuery parses arbitrary list query strings: no panic; failures are
// invalid-input errors with Chinese field messages; what is accepted has sane
// pages and no reserved names among the filters.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"q=心血管&page=2&page_size=10&sort=-code", "page=0", "page=-1", "page=abc", "page=99999999999999999999",
		"page_size=1e3", "q=%FF%FE", "q=%00", "q=' OR 1=1 --", "q=%25&kind=doctor&kind=nurse", "csrf_token=x&enabled=1",
		"a=%zz&b=;c", "=1&&&=", "sort=" + strings.Repeat("x", 200),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		vals, _ := url.ParseQuery(raw)
		q, err := ParseQuery(vals)
		if err != nil {
			var e *ihos.Error
			if !errors.As(err, &e) || e.Code != ihos.EInvalid || len(e.Fields) == 0 {
				t.Fatalf("ParseQuery(%q): %v", raw, err)
			}
			for k, m := range e.Fields {
				if !han.MatchString(m) {
					t.Fatalf("ParseQuery(%q): field %s message %q", raw, k, m)
				}
			}
			return
		}
		if q.Page < 0 || q.PageSize < 0 || !utf8.ValidString(q.Q) {
			t.Fatalf("ParseQuery(%q) = %+v", raw, q)
		}
		for _, k := range []string{"q", "page", "page_size", "sort", "csrf_token"} {
			if _, ok := q.Filters[k]; ok {
				t.Fatalf("ParseQuery(%q): reserved %s among filters", raw, k)
			}
		}
	})
}
