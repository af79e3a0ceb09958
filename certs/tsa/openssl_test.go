package tsa_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ihos/certs/cms/cmstest"
	"ihos/certs/tsa"
)

// (3) OpenSSL parses our responses (`openssl ts -reply -text`), verifies them
// (`openssl ts -verify`), and our authority answers requests made by
// `openssl ts -query`.
func TestOpenSSLTimeStamps(t *testing.T) {
	openssl, version := cmstest.OpenSSL(t)
	t.Log(version)
	data := emrText()
	for _, k := range cmstest.Kinds {
		for _, md := range []string{"sha256", "sm3"} {
			t.Run(string(k)+"/"+md, func(t *testing.T) {
				f := fx(t, k)
				dir := t.TempDir()
				cmstest.WriteFile(t, dir, "data", data)
				cmstest.WriteCert(t, dir, "ca.pem", f.ca.Cert)
				cmstest.WriteCert(t, dir, "tsa.pem", f.tsa.Cert)
				run := func(args ...string) (string, error) { return cmstest.Run(t, openssl, dir, args...) }

				if out, err := run("ts", "-query", "-data", "data", "-"+md, "-cert", "-out", "req.tsq"); err != nil {
					t.Fatalf("ts -query: %v\n%s", err, out)
				}
				req, _ := os.ReadFile(filepath.Join(dir, "req.tsq"))
				resp, err := f.auth.Respond(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				st, err := tsa.ParseResponse(resp)
				if err != nil || st.Status != 0 {
					t.Fatalf("our answer to openssl's request: %v %+v", err, st)
				}
				if _, err := tsa.Verify(st.Token, data, f.roots()); err != nil {
					t.Fatalf("our token for openssl's request: %v", err)
				}
				cmstest.WriteFile(t, dir, "resp.der", resp)

				out, err := run("ts", "-reply", "-in", "resp.der", "-text")
				if err != nil || !strings.Contains(out, "Status: Granted.") || !strings.Contains(out, "Policy OID: 1.3.6.1.4.1.32473.1.1") ||
					!strings.Contains(out, "Accuracy: 0x01 seconds") {
					t.Fatalf("ts -reply -text: %v\n%s", err, out)
				}

				out, err = run("ts", "-verify", "-data", "data", "-in", "resp.der", "-CAfile", "ca.pem", "-untrusted", "tsa.pem")
				out2, err2 := run("ts", "-verify", "-queryfile", "req.tsq", "-in", "resp.der", "-CAfile", "ca.pem", "-untrusted", "tsa.pem")
				if k != cmstest.SM2 {
					if err != nil || !strings.Contains(out, "Verification: OK") {
						t.Fatalf("ts -verify -data: %v\n%s", err, out)
					}
					if err2 != nil || !strings.Contains(out2, "Verification: OK") {
						t.Fatalf("ts -verify -queryfile: %v\n%s", err2, out2)
					}
					// A changed file fails.
					cmstest.WriteFile(t, dir, "data2", append(bytes.Clone(data), '.'))
					if out, err := run("ts", "-verify", "-data", "data2", "-in", "resp.der", "-CAfile", "ca.pem", "-untrusted", "tsa.pem"); err == nil {
						t.Fatalf("openssl verified a changed file: %s", out)
					}
					return
				}
				if err == nil {
					t.Logf("%s verifies our SM2 time-stamp: %s", version, out)
					return
				}
				// SM2: the same cause as for CMS (see the cms package's
				// TestOpenSSLSM2CMSDiagnosis): OpenSSL 3.0 checks SM2
				// signatures with an empty user id, and `openssl ts` cannot set it.
				t.Logf("%s refuses our SM2 time-stamp (empty SM2 user id in OpenSSL 3.0):\n%s", version, strings.TrimSpace(out))
				if !strings.Contains(out, "certificate signature failure") && !strings.Contains(out, "signature failure") {
					t.Fatalf("unexpected refusal: %s", out)
				}
			})
		}
	}
}

// A rejection is readable by OpenSSL too.
func TestOpenSSLReadsRejection(t *testing.T) {
	openssl, _ := cmstest.OpenSSL(t)
	f := fx(t, cmstest.SM2)
	dir := t.TempDir()
	cmstest.WriteFile(t, dir, "data", []byte("x"))
	if out, err := cmstest.Run(t, openssl, dir, "ts", "-query", "-data", "data", "-sha1", "-out", "req.tsq"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	req, _ := os.ReadFile(filepath.Join(dir, "req.tsq"))
	resp, err := f.auth.Respond(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	cmstest.WriteFile(t, dir, "resp.der", resp)
	out, err := cmstest.Run(t, openssl, dir, "ts", "-reply", "-in", "resp.der", "-text")
	if err != nil || !strings.Contains(out, "Status: Rejected.") || !strings.Contains(out, "unrecognized or unsupported algorithm identifier") {
		t.Fatalf("%v\n%s", err, out)
	}
}

// Tokens made by OpenSSL's own TSA verify in the project: ESS v1 (SHA-1)
// and v2 (SHA-256), ordering, a TSA name, an accuracy with milli- and
// microseconds.
func TestOpenSSLTokensVerifyHere(t *testing.T) {
	openssl, _ := cmstest.OpenSSL(t)
	data := emrText()
	for _, k := range []cmstest.Kind{cmstest.RSA, cmstest.ECDSA} {
		for _, essAlg := range []string{"sha1", "sha256"} {
			t.Run(string(k)+"/ess-"+essAlg, func(t *testing.T) {
				f := fx(t, k)
				dir := t.TempDir()
				cmstest.WriteFile(t, dir, "data", data)
				cmstest.WriteCert(t, dir, "ca.pem", f.ca.Cert)
				cmstest.WriteCert(t, dir, "tsa.pem", f.tsa.Cert)
				cmstest.WriteKey(t, dir, "tsa.key", f.tsa.Key)
				cmstest.WriteFile(t, dir, "serial", []byte("0A\n")) // openssl issues the next one, 0x0B
				cmstest.WriteFile(t, dir, "tsa.cnf", []byte(`[ tsa ]
default_tsa = tsa1
[ tsa1 ]
serial = ./serial
signer_cert = ./tsa.pem
certs = ./ca.pem
signer_key = ./tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1, millisecs:500, microsecs:100
clock_precision_digits = 3
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = `+essAlg+"\n"))
				run := func(args ...string) (string, error) { return cmstest.Run(t, openssl, dir, args...) }
				if out, err := run("ts", "-query", "-data", "data", "-sha256", "-cert", "-out", "req.tsq"); err != nil {
					t.Fatalf("%v\n%s", err, out)
				}
				if out, err := run("ts", "-reply", "-config", "tsa.cnf", "-queryfile", "req.tsq", "-out", "resp.der"); err != nil {
					t.Fatalf("openssl TSA: %v\n%s", err, out)
				}
				resp, _ := os.ReadFile(filepath.Join(dir, "resp.der"))
				st, err := tsa.ParseResponse(resp)
				if err != nil || st.Status != 0 {
					t.Fatalf("%v %+v", err, st)
				}
				info, err := tsa.Verify(st.Token, data, f.roots())
				if err != nil {
					t.Fatal(err)
				}
				if info.Serial.Int64() != 11 || info.Policy.String() != "1.2.3.4.1" || info.Accuracy.Microseconds() != 1_500_100 {
					t.Fatalf("info %+v", info)
				}
				if _, err := tsa.Verify(st.Token, data[1:], f.roots()); !errors.Is(err, tsa.ErrDataChanged) {
					t.Fatalf("changed: %v", err)
				}
			})
		}
	}
}

func emrText() []byte {
	return []byte(strings.Repeat(`{"科室":"儿科","主诉":"发热两天","处理":"对乙酰氨基酚混悬滴剂"}`+"\n", 40))
}
