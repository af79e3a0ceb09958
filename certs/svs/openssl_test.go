package svs

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenSSLVerifiesSign checks the contract other tools rely on: a
// signature from /api/svs/sign verifies with
//
//	openssl dgst -sm3 -verify pub.pem -signature sig -sigopt distid:1234567812345678 data
//
// with pub.pem taken from the returned certificate. It skips, saying why,
// where openssl or its SM2 support is missing.
func TestOpenSSLVerifiesSign(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not found in PATH: the OpenSSL check of /api/svs/sign is skipped")
	}
	if out, err := exec.Command(openssl, "list", "-digest-algorithms").CombinedOutput(); err != nil || !strings.Contains(strings.ToUpper(string(out)), "SM3") {
		t.Skipf("this openssl has no SM3: the OpenSSL check is skipped (%v)", err)
	}
	e := newEnv(t, envOptions{noTSA: true})
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		cmd := exec.Command(openssl, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for i, data := range [][]byte{[]byte("处方签名 OpenSSL 互通"), {}, make([]byte, 100_000)} {
		var sr signResponse
		if st := e.post(e.token, "/api/svs/sign", map[string]string{"data": b64s(data)}, &sr); st != 200 {
			t.Fatalf("sign: %d", st)
		}
		sig, _ := base64.StdEncoding.DecodeString(sr.Signature)
		write("data", data)
		write("sig", sig)
		write("cert.pem", []byte(sr.Cert))
		out, err := run("x509", "-in", "cert.pem", "-pubkey", "-noout", "-out", "pub.pem")
		if err != nil {
			if strings.Contains(out, "unsupported") || strings.Contains(out, "unknown") {
				t.Skipf("this openssl cannot read SM2 certificates: %s", out)
			}
			t.Fatalf("x509 -pubkey: %v\n%s", err, out)
		}
		out, err = run("dgst", "-sm3", "-verify", "pub.pem", "-signature", "sig", "-sigopt", "distid:1234567812345678", "data")
		if err != nil || !strings.Contains(out, "Verified OK") {
			t.Fatalf("case %d: openssl dgst -verify: %v\n%s", i, err, out)
		}
		// And a changed byte fails there too.
		if len(data) > 0 {
			bad := append([]byte(nil), data...)
			bad[0] ^= 1
			write("data", bad)
			if out, err := run("dgst", "-sm3", "-verify", "pub.pem", "-signature", "sig", "-sigopt", "distid:1234567812345678", "data"); err == nil || strings.Contains(out, "Verified OK") {
				t.Fatalf("case %d: openssl verified changed data:\n%s", i, out)
			}
		}
	}
}
