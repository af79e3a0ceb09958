package svs

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"testing"
)

// An XML document signed through the API verifies at every level; one
// changed character fails; both operations are in the signature log.
func TestSignVerifyXML(t *testing.T) {
	e := newEnv(t, envOptions{})
	doc := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>门诊病历</title><recordTarget><patient><name>张三</name></patient></recordTarget></ClinicalDocument>`)
	var out struct {
		XML string `json:"xml"`
	}
	if st := e.post(e.token, "/api/svs/sign-xml", map[string]string{"data": b64s(doc)}, &out); st != http.StatusOK || out.XML == "" {
		t.Fatalf("sign-xml: HTTP %d", st)
	}
	signed, _ := base64.StdEncoding.DecodeString(out.XML)
	if !bytes.Contains(signed, []byte("<ds:Signature")) {
		t.Fatalf("no signature in %s", signed)
	}
	for level := 0; level <= 2; level++ {
		var v verifyOut
		if st := e.post(e.token, "/api/svs/verify-xml", map[string]any{"data": out.XML, "level": level}, &v); st != 200 || !v.Valid {
			t.Fatalf("verify-xml level %d: HTTP %d %+v", level, st, v)
		}
	}
	changed := bytes.Replace(signed, []byte("张三"), []byte("李四"), 1)
	var v verifyOut
	if st := e.post(e.token, "/api/svs/verify-xml", map[string]any{"data": b64s(changed), "level": 0}, &v); st != 200 || v.Valid || v.Reason == "" {
		t.Fatalf("changed XML: HTTP %d %+v", st, v)
	}
	if st := e.post(e.token, "/api/svs/sign-xml", map[string]string{"data": b64s([]byte("<!DOCTYPE x><x/>"))}, nil); st != http.StatusBadRequest {
		t.Fatalf("a DOCTYPE: HTTP %d", st)
	}
	if n := logCount(t, e.db, OpSignXML); n != 2 {
		t.Fatalf("%d sign_xml log rows, want 2 (one ok, one refused)", n)
	}
	if n := logCount(t, e.db, OpVerifyXML); n != 4 {
		t.Fatalf("%d verify_xml log rows, want 4", n)
	}
}
