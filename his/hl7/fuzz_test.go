package hl7

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse and Nak. Neither may panic; Parse errors
// must be *ParseError; a message Parse accepts must encode, parse back to the same
// values and encode again to the same bytes; and a NAK must always encode and parse.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.hl7")
	for _, file := range files {
		f.Add(readTestdata(f, filepath.Base(file)))
	}
	f.Add([]byte("MSH|^~\\&#|A||||||ADT^A01|1\rNTE|1||\\P\\\\X0D\\\\.br\\\\H\\x"))
	f.Add([]byte("MSH|^~|A||||||ADT^A01|1\nZ01|a\\b&c"))
	f.Fuzz(func(t *testing.T, data []byte) {
		nak := Nak(data, AckReject, CodeSegmentSequence, "fuzz")
		nb, err := nak.Encode()
		if err != nil {
			t.Fatalf("NAK does not encode: %v", err)
		}
		if _, err := Parse(nb); err != nil {
			t.Fatalf("NAK does not parse: %v\n%q", err, nb)
		}

		m, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Code == "" {
				t.Fatalf("error %v (%T) is not a *ParseError with a code", err, err)
			}
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("accepted message does not encode: %v\n%s", err, dump(m))
		}
		back, err := Parse(enc)
		if err != nil {
			t.Fatalf("Parse(Encode(m)): %v\n%q", err, enc)
		}
		if !sameMessage(m, back) {
			t.Fatalf("Parse(Encode(m)) != m\n%q\n%s\n%s", enc, dump(m), dump(back))
		}
		again, err := back.Encode()
		if err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("encoding is not stable (err %v)\n%q\n%q", err, enc, again)
		}
	})
}
