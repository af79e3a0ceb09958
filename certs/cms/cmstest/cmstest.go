// Package cmstest makes throwaway certificate hierarchies (SM2, RSA, ECDSA) for
// the tests of packages that sign with ihos/certs/cms and ihos/certs/tsa, and
// writes them as PEM for OpenSSL. It is for tests only.
package cmstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
)

// Kind is a key type.
type Kind string

const (
	SM2   Kind = "SM2"
	RSA   Kind = "RSA"
	ECDSA Kind = "ECDSA"
)

// Kinds lists every key type.
var Kinds = []Kind{SM2, RSA, ECDSA}

// Key makes a new private key of kind k (RSA 2048, ECDSA P-256).
func Key(tb testing.TB, k Kind) crypto.Signer {
	tb.Helper()
	var key crypto.Signer
	var err error
	switch k {
	case SM2:
		key, err = sm2.GenerateKey(rand.Reader)
	case RSA:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case ECDSA:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		tb.Fatalf("cmstest: unknown key kind %q", k)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// Issued is a certificate with its key.
type Issued struct {
	Cert *smx509.Certificate
	Key  crypto.Signer
}

// CA is a self-signed root that issues certificates.
type CA struct {
	Issued
	serial int64
}

var oidEKU = asn1.ObjectIdentifier{2, 5, 29, 37}
var oidTimeStamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}

// NewCA makes a root of kind k, valid from an hour ago for ten years.
func NewCA(tb testing.TB, k Kind, cn string) *CA {
	tb.Helper()
	key := Key(tb, k)
	tmpl := &smx509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"CN"}, Organization: []string{"测试医院"}, CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              smx509.KeyUsageCertSign | smx509.KeyUsageCRLSign | smx509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := smx509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &CA{Issued: Issued{Cert: cert, Key: key}, serial: 1}
}

// Leaf issues a signing certificate (digitalSignature, nonRepudiation, no EKU)
// with a key of kind k.
func (ca *CA) Leaf(tb testing.TB, k Kind, cn string) Issued {
	tb.Helper()
	return ca.issue(tb, k, cn, nil, smx509.KeyUsageDigitalSignature|smx509.KeyUsageContentCommitment, false)
}

// Intermediate issues a CA certificate under ca.
func (ca *CA) Intermediate(tb testing.TB, k Kind, cn string) *CA {
	tb.Helper()
	is := ca.issue(tb, k, cn, nil, smx509.KeyUsageCertSign|smx509.KeyUsageCRLSign, true)
	return &CA{Issued: is, serial: 1}
}

// TSA issues a time-stamping certificate: the only extended key usage is
// timeStamping, in a critical extension (RFC 3161 §2.3).
func (ca *CA) TSA(tb testing.TB, k Kind, cn string) Issued {
	tb.Helper()
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{oidTimeStamping})
	if err != nil {
		tb.Fatal(err)
	}
	ext := []pkix.Extension{{Id: oidEKU, Critical: true, Value: eku}}
	return ca.issue(tb, k, cn, ext, smx509.KeyUsageDigitalSignature|smx509.KeyUsageContentCommitment, false)
}

// IssueWith issues a certificate with extra extensions (e.g. a non-critical
// or a wrong extended key usage, for negative tests).
func (ca *CA) IssueWith(tb testing.TB, k Kind, cn string, ext []pkix.Extension) Issued {
	tb.Helper()
	return ca.issue(tb, k, cn, ext, smx509.KeyUsageDigitalSignature, false)
}

func (ca *CA) issue(tb testing.TB, k Kind, cn string, ext []pkix.Extension, ku smx509.KeyUsage, isCA bool) Issued {
	key := Key(tb, k)
	ca.serial++
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &smx509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(ca.serial)),
		Subject:               pkix.Name{Country: []string{"CN"}, Organization: []string{"测试医院"}, CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(2, 0, 0),
		KeyUsage:              ku,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		ExtraExtensions:       ext,
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := smx509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return Issued{Cert: cert, Key: key}
}

// WriteCert writes certificates as PEM to dir/name and returns the path.
func WriteCert(tb testing.TB, dir, name string, certs ...*smx509.Certificate) string {
	tb.Helper()
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return write(tb, dir, name, out)
}

// WriteKey writes a private key as PKCS#8 PEM to dir/name and returns the path.
func WriteKey(tb testing.TB, dir, name string, key crypto.Signer) string {
	tb.Helper()
	der, err := smx509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return write(tb, dir, name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// WriteFile writes b to dir/name and returns the path.
func WriteFile(tb testing.TB, dir, name string, b []byte) string {
	tb.Helper()
	return write(tb, dir, name, b)
}

func write(tb testing.TB, dir, name string, b []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// OpenSSL returns the path of an OpenSSL 3 command that has SM2 and SM3, and
// its version line; without one it skips the test, saying why.
func OpenSSL(tb testing.TB) (path, version string) {
	tb.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		tb.Skip("openssl not found in PATH: OpenSSL interoperability not tested (install the openssl package)")
	}
	out, err := exec.Command(path, "version").CombinedOutput()
	version = strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(version, "OpenSSL 3.") {
		tb.Skipf("%s is %q, not OpenSSL 3: OpenSSL interoperability not tested", path, version)
	}
	if out, err := exec.Command(path, "genpkey", "-algorithm", "SM2").CombinedOutput(); err != nil {
		tb.Skipf("%s has no SM2 (%v: %s): OpenSSL interoperability not tested", version, err, out)
	}
	if out, err := exec.Command(path, "dgst", "-sm3", "/dev/null").CombinedOutput(); err != nil {
		tb.Skipf("%s has no SM3 (%v: %s): OpenSSL interoperability not tested", version, err, out)
	}
	return path, version
}

// Run runs openssl with args in dir and returns its combined output.
func Run(tb testing.TB, openssl, dir string, args ...string) (string, error) {
	tb.Helper()
	cmd := exec.Command(openssl, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}
