package xmldsig

// Fuzz targets for the two entry points that take documents from outside.
// Properties: no panic; a failure is an EInvalid *ihos.Error with a message;
// Canonicalize is idempotent; Verify never accepts content other than what was
// signed (whatever the fuzzer does to a signed document, a success means its
// canonical content without the Signature is one of the seeds' contents).
// Run e.g.:
//
//	go test ./certs/xmldsig -run '^$' -fuzz FuzzVerify -fuzztime 30s

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"ihos"
)

func wantUsableError(t *testing.T, err error) {
	t.Helper()
	var e *ihos.Error
	if !errors.As(err, &e) || e.Code != ihos.EInvalid || e.Message == "" {
		t.Fatalf("error is not an EInvalid *ihos.Error with a message: %#v", err)
	}
}

func FuzzCanonicalize(f *testing.F) {
	for _, v := range c14nVectors {
		f.Add([]byte(v.in))
	}
	f.Add([]byte(cdaDoc))
	f.Add([]byte(`<a xmlns="urn:a" xmlns:b="urn:b"><b:c b:d="&#x9;" xmlns=""/><?p x?></a>`))
	f.Add([]byte("<!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a>&e;</a>"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonicalize(in)
		if err != nil {
			wantUsableError(t, err)
			return
		}
		if len(in) > MaxDocumentSize {
			t.Fatalf("accepted %d bytes", len(in))
		}
		again, err := Canonicalize(out)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", out, in, err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent for %q:\n once: %q\ntwice: %q", in, out, again)
		}
	})
}

func FuzzVerify(f *testing.F) {
	ss := testSigners(f)
	valid := map[string]bool{}
	addSigned := func(doc []byte) {
		f.Add(doc)
		valid[string(canonicalWithoutSignature(f, doc))] = true
	}
	small := `<r xmlns:p="urn:p"><p:a b="1">x</p:a></r>`
	for _, s := range ss {
		addSigned(mustSign(f, cdaDoc, s, Options{}))
		addSigned(mustSign(f, small, s, Options{}))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "xmlsec-*.xml"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			addSigned(b)
		}
	}
	f.Add([]byte(cdaDoc))
	f.Add([]byte("<r/>"))
	sm2Cert := ss[0].cert
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, c := range []bool{false, true} {
			cert := sm2Cert
			if !c {
				cert = nil
			}
			got, err := Verify(in, cert)
			if err != nil {
				wantUsableError(t, err)
				continue
			}
			if got == nil {
				t.Fatal("no certificate and no error")
			}
			if !valid[string(canonicalWithoutSignature(t, in))] {
				t.Fatalf("Verify accepted content that was never signed:\n%s", in)
			}
		}
	})
}
