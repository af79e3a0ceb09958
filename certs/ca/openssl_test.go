package ca

import (
	"context"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

// TestOpenSSLInterop checks the CA's certificates, CRL and OCSP responses with
// the openssl command line (OpenSSL 3), for an SM2 CA and an ECDSA P-256 CA.
//
// What OpenSSL 3.0 does with SM2 (found by this test, see the logs):
//   - certificates: `openssl verify` fails ("certificate signature failure")
//     unless told the GM/T default signer id: -vfyopt distid:1234567812345678;
//   - CRLs and OCSP responses: OpenSSL 3.0 verifies their SM2 signatures with
//     no signer id and has no option to set one (`openssl crl` and `openssl
//     ocsp` have no -vfyopt), so it reports "verify failure" / "CRL signature
//     failure" / "Response Verify Failure" for any SM2 CRL or response signed
//     per GM/T 0009 (openssl's own `openssl ca -gencrl -sigopt
//     distid:1234567812345678` CRLs fail the same way). The test checks those
//     signatures with `openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt
//     distid:1234567812345678` instead, and that openssl parses them and reads
//     the right statuses. With the ECDSA CA every openssl check passes.
func TestOpenSSLInterop(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not found in PATH: skipping the OpenSSL interop test (apt-get install openssl)")
	}
	out, _ := exec.Command("openssl", "version").CombinedOutput()
	t.Logf("%s", strings.TrimSpace(string(out)))
	algs, _ := exec.Command("openssl", "list", "-public-key-algorithms").CombinedOutput()
	hasSM2 := strings.Contains(string(algs), "SM2")

	for _, alg := range []string{KeySM2, KeyECDSA} {
		t.Run(alg, func(t *testing.T) {
			if alg == KeySM2 && !hasSM2 {
				t.Skip("this openssl has no SM2 (openssl list -public-key-algorithms): skipping the SM2 interop test")
			}
			sm2CA := alg == KeySM2
			c := newTestCA(t, Options{KeyAlgorithm: alg})
			good := c.issue(t, KindStaff, "interop-good", sm2Key(t).Public())
			bad := c.issue(t, KindStaff, "interop-revoked", sm2Key(t).Public())
			device := c.issue(t, KindDevice, "interop-device", ecKey(t).Public())
			rsaCert := c.issue(t, KindStaff, "interop-rsa", rsaKey(t).Public())
			tsa := c.issue(t, KindTSA, "interop-tsa", sm2Key(t).Public())
			if err := c.Revoke(testCtx, bad.SerialNumber, ReasonKeyCompromise); err != nil {
				t.Fatal(err)
			}
			crl, err := c.CRL(testCtx)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			path := func(n string) string { return filepath.Join(dir, n) }
			writePEM := func(n, typ string, der []byte) {
				if err := os.WriteFile(path(n), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			writePEM("ca.pem", "CERTIFICATE", c.Certificate().Raw)
			writePEM("good.pem", "CERTIFICATE", good.Raw)
			writePEM("revoked.pem", "CERTIFICATE", bad.Raw)
			writePEM("device.pem", "CERTIFICATE", device.Raw)
			writePEM("rsa.pem", "CERTIFICATE", rsaCert.Raw)
			writePEM("tsa.pem", "CERTIFICATE", tsa.Raw)
			writePEM("crl.pem", "X509 CRL", crl)
			os.WriteFile(path("crl.der"), crl, 0o644)
			pub, _ := smx509.MarshalPKIXPublicKey(c.Certificate().PublicKey)
			writePEM("capub.pem", "PUBLIC KEY", pub)

			run := func(args ...string) (string, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, "openssl", args...)
				cmd.Dir = dir
				b, err := cmd.CombinedOutput()
				return string(b), err
			}
			mustRun := func(want string, args ...string) string {
				t.Helper()
				out, err := run(args...)
				if err != nil || !strings.Contains(out, want) {
					t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				t.Logf("OK   openssl %s → %q", strings.Join(args, " "), want)
				return out
			}
			mustFail := func(want string, args ...string) {
				t.Helper()
				out, err := run(args...)
				if err == nil || !strings.Contains(out, want) {
					t.Fatalf("openssl %s: want failure with %q, got %v\n%s", strings.Join(args, " "), want, err, out)
				}
				t.Logf("FAIL openssl %s → %q (expected)", strings.Join(args, " "), want)
			}
			// openssl crl reports the signature check on stderr but exits 0 either way.
			mustSay := func(want string, args ...string) {
				t.Helper()
				out, err := run(args...)
				if !strings.Contains(out, want) {
					t.Fatalf("openssl %s: want %q, got %v\n%s", strings.Join(args, " "), want, err, out)
				}
				t.Logf("SAYS openssl %s → %q (exit %v)", strings.Join(args, " "), want, err)
			}
			// Verifies an SM2 signature the way GM/T 0009 defines it (SM3 with Z over the default id).
			pkeyVerify := func(name string, tbs, sig []byte) {
				t.Helper()
				os.WriteFile(path(name+".tbs"), tbs, 0o644)
				os.WriteFile(path(name+".sig"), sig, 0o644)
				mustRun("Signature Verified Successfully", "pkeyutl", "-verify", "-pubin", "-inkey", "capub.pem", "-rawin",
					"-digest", "sm3", "-pkeyopt", "distid:1234567812345678", "-in", name+".tbs", "-sigfile", name+".sig")
			}

			// Certificates.
			vfy := []string{"verify"}
			if sm2CA {
				mustFail("certificate signature failure", "verify", "-CAfile", "ca.pem", "good.pem")
				vfy = append(vfy, "-vfyopt", "distid:1234567812345678")
			}
			for _, f := range []string{"good.pem", "revoked.pem", "device.pem", "rsa.pem", "tsa.pem"} {
				mustRun(f+": OK", append(vfy, "-CAfile", "ca.pem", f)...)
			}
			mustRun("tsa.pem: OK", append(vfy, "-purpose", "timestampsign", "-CAfile", "ca.pem", "tsa.pem")...)
			mustRun("device.pem: OK", append(vfy, "-purpose", "sslserver", "-CAfile", "ca.pem", "device.pem")...)

			// The CRL.
			text := mustRun("Revoked Certificates:", "crl", "-in", "crl.der", "-inform", "DER", "-noout", "-text")
			if !strings.Contains(strings.ToUpper(text), strings.ToUpper(bad.SerialNumber.Text(16))) || !strings.Contains(text, "Key Compromise") {
				t.Fatalf("openssl crl -text does not list the revoked serial with its reason:\n%s", text)
			}
			if sm2CA {
				mustSay("verify failure", "crl", "-in", "crl.der", "-inform", "DER", "-CAfile", "ca.pem", "-noout")
				mustFail("CRL signature failure", append(vfy, "-crl_check", "-CRLfile", "crl.pem", "-CAfile", "ca.pem", "revoked.pem")...)
				rl, _ := smx509.ParseRevocationList(crl)
				pkeyVerify("crl", rl.RawTBSRevocationList, rl.Signature)
			} else {
				mustSay("verify OK", "crl", "-in", "crl.der", "-inform", "DER", "-CAfile", "ca.pem", "-noout")
				mustFail("certificate revoked", "verify", "-crl_check", "-CRLfile", "crl.pem", "-CAfile", "ca.pem", "revoked.pem")
				mustRun("good.pem: OK", "verify", "-crl_check", "-CRLfile", "crl.pem", "-CAfile", "ca.pem", "good.pem")
			}

			// OCSP, over HTTP to the handler, with openssl's default SHA-1
			// CertIDs and a nonce, then SHA-256 and SM3 CertIDs.
			url := c.srv.URL + "/ca/ocsp"
			for _, digest := range []string{"", "-sha256", "-sm3"} {
				args := []string{"ocsp", "-issuer", "ca.pem", "-cert", "good.pem", "-cert", "revoked.pem", "-url", url,
					"-CAfile", "ca.pem", "-resp_text", "-respout", "resp.der"}
				if digest != "" {
					args = append(args[:1], append([]string{digest}, args[1:]...)...)
				}
				out, err := run(args...)
				t.Logf("openssl %s (exit %v):\n%s", strings.Join(args, " "), err, firstLines(out, 3))
				for _, want := range []string{"good.pem: good", "revoked.pem: revoked", "Reason: keyCompromise"} {
					if !strings.Contains(out, want) {
						t.Fatalf("openssl ocsp %s: missing %q\n%s", digest, want, out)
					}
				}
				if strings.Contains(out, "nonce") && strings.Contains(strings.ToLower(out), "warning") {
					t.Fatalf("openssl complains about the nonce:\n%s", out)
				}
				if sm2CA {
					if !strings.Contains(out, "Response Verify Failure") {
						t.Logf("note: this openssl verified an SM2 OCSP response")
					}
					resp, _ := os.ReadFile(path("resp.der"))
					p, err := parseOCSPResponse(resp)
					if err != nil {
						t.Fatal(err)
					}
					pkeyVerify("ocsp", p.tbs, p.signature)
				} else if !strings.Contains(out, "Response verify OK") {
					t.Fatalf("openssl did not verify the ECDSA OCSP response:\n%s", out)
				}
			}
		})
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
