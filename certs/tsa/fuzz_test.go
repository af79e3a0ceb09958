package tsa_test

import (
	"math/big"
	"strings"
	"testing"

	"ihos/certs/cms/cmstest"
	"ihos/certs/tsa"
)

// FuzzRespond: whatever the request, Respond answers with a TimeStampResp
// that parses; a granted one carries a token that verifies for the imprint.
func FuzzRespond(f *testing.F) {
	fix := fx(f, cmstest.SM2)
	for _, alg := range [][]int{{2, 16, 840, 1, 101, 3, 4, 2, 1}, {1, 2, 156, 10197, 1, 401}} {
		for _, certReq := range []bool{false, true} {
			req, err := tsa.NewRequest(make([]byte, 32), alg, big.NewInt(42), certReq)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(req)
		}
	}
	req, _ := tsa.NewRequest(make([]byte, 64), tsa.OIDSHA512, nil, false)
	f.Add(req)
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, req []byte) {
		resp, err := fix.auth.Respond(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		st, err := tsa.ParseResponse(resp)
		if err != nil {
			t.Fatal(err)
		}
		switch st.Status {
		case 0:
			if st.Token == nil {
				t.Fatal("granted without a token")
			}
		case 2:
			if len(st.Failures) != 1 || st.Failures[0] == tsa.SystemFailure {
				t.Fatalf("rejection %v %q", st.Failures, st.Text)
			}
		default:
			t.Fatalf("status %d", st.Status)
		}
	})
}

// FuzzVerifyToken: tsa.Verify on mangled tokens never panics.
func FuzzVerifyToken(f *testing.F) {
	fix := fx(f, cmstest.SM2)
	data := []byte("签名值")
	for _, k := range cmstest.Kinds {
		token, err := fx(f, k).auth.Stamp(ctx, data)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(token, data)
	}
	roots := append(fix.roots(), fx(f, cmstest.RSA).ca.Cert, fx(f, cmstest.ECDSA).ca.Cert)
	f.Fuzz(func(t *testing.T, token, data []byte) {
		info, err := tsa.Verify(token, data, roots)
		if err != nil && strings.Contains(err.Error(), "内部解析异常") {
			t.Fatalf("recovered panic: %v", err)
		}
		if err == nil && (info.Signer == nil || info.GenTime.IsZero() || info.Serial == nil) {
			t.Fatalf("verified without fields: %+v", info)
		}
	})
}
