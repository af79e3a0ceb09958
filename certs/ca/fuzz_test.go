package ca

import (
	"bytes"
	"encoding/asn1"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

// FuzzOCSPRequest feeds arbitrary bytes to the responder, as a POST body and
// as a GET path. It must never panic and must always answer a well-formed
// OCSPResponse: successful for requests it could parse, malformedRequest
// otherwise.
func FuzzOCSPRequest(f *testing.F) {
	c := newTestCA(f, Options{})
	cert := c.issue(f, KindStaff, "fuzz", sm2Key(f).Public())
	for _, h := range certIDHashAlgs {
		f.Add(ocspRequest(f, h, cert, c.Certificate(), []byte("nonce")))
	}
	req, _, _ := newOCSPRequest(cert, c.Certificate())
	f.Add(req)
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Add(bytes.Repeat([]byte{0x30, 0x82, 0xff, 0xff}, 8))
	h := c.Handler()
	f.Fuzz(func(t *testing.T, data []byte) {
		resp := c.respondOCSP(testCtx, data)
		var r struct {
			Status asn1.Enumerated
			Bytes  responseBytesASN1 `asn1:"explicit,tag:0,optional"`
		}
		if rest, err := asn1.Unmarshal(resp, &r); err != nil || len(rest) != 0 {
			t.Fatalf("response does not parse: %v", err)
		}
		if _, perr := parseOCSPRequest(data); (perr == nil) != (r.Status == ocspSuccessful) {
			t.Fatalf("parse error %v but status %d", perr, r.Status)
		}
		if r.Status == ocspSuccessful {
			if _, err := parseOCSPResponse(resp); err != nil {
				t.Fatalf("successful response does not parse: %v", err)
			}
		}
		// The GET form through the handler (no server: the handler directly).
		if len(data) < 2048 {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ca/ocsp/"+strings.ReplaceAll(base64.StdEncoding.EncodeToString(data), "+", "%2B"), nil))
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/ocsp-response" {
				t.Fatalf("GET: %d %s", w.Code, w.Header().Get("Content-Type"))
			}
		}
	})
}

// FuzzCheckCRL feeds mutated CRLs to CheckCRL: it must never panic, and it
// must accept only CRLs whose signed part is the one the CA signed.
func FuzzCheckCRL(f *testing.F) {
	c := newTestCA(f, Options{})
	good := c.issue(f, KindStaff, "good", sm2Key(f).Public())
	bad := c.issue(f, KindStaff, "bad", sm2Key(f).Public())
	empty, err := c.CRL(testCtx)
	if err != nil {
		f.Fatal(err)
	}
	if err := c.Revoke(testCtx, bad.SerialNumber, ReasonKeyCompromise); err != nil {
		f.Fatal(err)
	}
	full, err := c.CRL(testCtx)
	if err != nil {
		f.Fatal(err)
	}
	tbsOf := func(der []byte) string {
		rl, err := smx509.ParseRevocationList(der)
		if err != nil {
			f.Fatal(err)
		}
		return string(rl.RawTBSRevocationList)
	}
	emptyTBS, fullTBS := tbsOf(empty), tbsOf(full)
	for _, der := range [][]byte{empty, full} {
		f.Add(der)
		f.Add(der[:len(der)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x03, 0x30, 0x01, 0x00})
	issuer := c.Certificate()
	at := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, cert := range []*smx509.Certificate{good, bad} {
			revoked, _, _, err := CheckCRL(data, cert, issuer, at)
			if err != nil {
				continue
			}
			rl, perr := smx509.ParseRevocationList(data)
			if perr != nil {
				t.Fatalf("CheckCRL accepted what does not parse")
			}
			switch string(rl.RawTBSRevocationList) {
			case emptyTBS:
				if revoked {
					t.Fatalf("%s revoked on the empty CRL", cert.Subject.CommonName)
				}
			case fullTBS:
				if revoked != (cert == bad) {
					t.Fatalf("wrong status for %s", cert.Subject.CommonName)
				}
			default:
				t.Fatalf("CheckCRL accepted a CRL the CA did not sign (revoked=%v)", revoked)
			}
		}
	})
}

// FuzzOCSPResponse feeds arbitrary bytes to the OCSP client's parser and
// verifier: no panic, and nothing but a response the CA signed is accepted.
func FuzzOCSPResponse(f *testing.F) {
	c := newTestCA(f, Options{})
	cert := c.issue(f, KindStaff, "fuzz", sm2Key(f).Public())
	req := ocspRequest(f, certIDHashAlgs[0], cert, c.Certificate(), nil)
	resp := c.respondOCSP(testCtx, req)
	p, err := parseOCSPResponse(resp)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(resp)
	f.Add(statusOnlyResponse(ocspMalformedRequest))
	f.Add([]byte{})
	issuer := c.Certificate()
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := verifyOCSPResponse(data, cert, issuer, nil, now)
		if err != nil {
			return
		}
		q, perr := parseOCSPResponse(data)
		if perr != nil || !bytes.Equal(q.tbs, p.tbs) || a.Status != StatusGood {
			t.Fatalf("accepted a response the CA did not sign: %+v", a)
		}
	})
}
