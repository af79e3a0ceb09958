package cms_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"ihos/certs/cms"
	"ihos/certs/cms/cmstest"
)

// verifyWithOpenSSL runs `openssl cms -verify` on p7 and returns its output
// and error. content nil means attached: the content openssl writes out must
// then equal want.
func verifyWithOpenSSL(t *testing.T, openssl, dir string, p7, content, want []byte, extra ...string) (string, error) {
	t.Helper()
	cmstest.WriteFile(t, dir, "sig.p7", p7)
	args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.p7"}
	if content != nil {
		cmstest.WriteFile(t, dir, "data", content)
		args = append(args, "-content", "data", "-out", os.DevNull)
	} else {
		args = append(args, "-out", "out.bin")
	}
	args = append(args, extra...)
	out, err := cmstest.Run(t, openssl, dir, args...)
	if err == nil && content == nil {
		got, rerr := os.ReadFile(filepath.Join(dir, "out.bin"))
		if rerr != nil || !bytes.Equal(got, want) {
			t.Fatalf("openssl wrote %d bytes of content, want %d", len(got), len(want))
		}
	}
	return out, err
}

// (1) `openssl cms -verify` accepts our CMS-profile RSA and ECDSA signatures,
// detached and attached, with and without attributes, with a time-stamp.
func TestOpenSSLVerifiesOurs(t *testing.T) {
	openssl, version := cmstest.OpenSSL(t)
	t.Log(version)
	content := emr(5000)
	ts := testTSA(t, cmstest.SM2)
	for _, k := range []cmstest.Kind{cmstest.RSA, cmstest.ECDSA} {
		p := testPKI(t, k)
		dir := t.TempDir()
		cmstest.WriteCert(t, dir, "ca.pem", p.ca.Cert)
		for _, o := range []cms.SignOptions{
			{Detached: true}, {}, {Detached: true, NoAttributes: true}, {NoAttributes: true}, {Detached: true, Timestamp: ts.Stamp},
		} {
			p7, err := cms.Sign(ctx, content, p.leaf.Cert, p.leaf.Key, o)
			if err != nil {
				t.Fatal(err)
			}
			var given []byte
			if o.Detached {
				given = content
			}
			out, err := verifyWithOpenSSL(t, openssl, dir, p7, given, content, "-CAfile", "ca.pem")
			if err != nil || !strings.Contains(out, "Verification successful") {
				t.Fatalf("%s %+v: openssl cms -verify: %v\n%s", k, o, err, out)
			}
			if o.Detached {
				changed := bytes.Clone(content)
				changed[100] ^= 1
				if out, err := verifyWithOpenSSL(t, openssl, dir, p7, changed, nil, "-CAfile", "ca.pem"); err == nil {
					t.Fatalf("%s: openssl accepted changed content: %s", k, out)
				}
			}
		}
	}
}

// zaEmptyID is Z of GB/T 32918.2 with an empty user id (ENTL = 0), which
// OpenSSL 3.0 uses when no distinguishing id is set.
func zaEmptyID(pub *ecdsa.PublicKey) []byte {
	params := sm2.P256().Params()
	a := new(big.Int).Sub(params.P, big.NewInt(3))
	h := sm3.New()
	h.Write([]byte{0, 0})
	for _, v := range []*big.Int{a, params.B, params.Gx, params.Gy, pub.X, pub.Y} {
		h.Write(v.FillBytes(make([]byte, 32)))
	}
	return h.Sum(nil)
}

// emptyIDSigner signs SM2 with an empty user id instead of 1234567812345678,
// or, with noZ, over SM3(M) without Z at all. It exists only to show what
// OpenSSL 3.0 does; the project never signs so.
type emptyIDSigner struct {
	k   *sm2.PrivateKey
	noZ bool
}

func (s emptyIDSigner) Public() crypto.PublicKey { return s.k.Public() }

func (s emptyIDSigner) Sign(r io.Reader, msg []byte, _ crypto.SignerOpts) ([]byte, error) {
	h := sm3.New()
	if !s.noZ {
		h.Write(zaEmptyID(&s.k.PublicKey))
	}
	h.Write(msg)
	return s.k.Sign(r, h.Sum(nil), crypto.Hash(0)) // a digest, not SM2SignerOption: signed as is
}

// (1, SM2) OpenSSL 3.0 cannot verify a GM/T 0009 SM2 CMS signature, and this
// test shows exactly why: it uses an empty SM2 user id where GM/T 0009 (and
// every Chinese CA and signing server) uses 1234567812345678 — for the
// certificate chain and for the SignerInfo alike, and `openssl cms` has no
// option to set it. Our structure and algorithm identifiers are accepted:
// the same SignedData signed with an empty id verifies.
func TestOpenSSLSM2CMSDiagnosis(t *testing.T) {
	openssl, version := cmstest.OpenSSL(t)
	t.Log(version)
	p := testPKI(t, cmstest.SM2)
	dir := t.TempDir()
	cmstest.WriteCert(t, dir, "ca.pem", p.ca.Cert)
	cmstest.WriteCert(t, dir, "leaf.pem", p.leaf.Cert)
	content := emr(3000)
	p7, err := cms.Sign(ctx, content, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Profile: cms.CMS, Detached: true})
	if err != nil {
		t.Fatal(err)
	}
	out, err := verifyWithOpenSSL(t, openssl, dir, p7, content, nil, "-CAfile", "ca.pem")
	if err == nil {
		t.Logf("%s verifies our SM2 CMS signature (default user id): %s", version, out)
		return
	}
	t.Logf("%s refuses our SM2 CMS signature:\n%s", version, out)

	// The certificate: refused without a distinguishing id, accepted with the GM/T 0009 one.
	if out, err := cmstest.Run(t, openssl, dir, "verify", "-CAfile", "ca.pem", "leaf.pem"); err == nil {
		t.Fatalf("expected openssl verify to refuse the SM2 certificate without -vfyopt: %s", out)
	}
	if out, err := cmstest.Run(t, openssl, dir, "verify", "-vfyopt", "distid:1234567812345678", "-CAfile", "ca.pem", "leaf.pem"); err != nil {
		t.Fatalf("openssl verify -vfyopt distid:1234567812345678: %v\n%s", err, out)
	}
	// The SignerInfo: refused even without chain checks; accepted when signed with an empty id.
	if out, err := verifyWithOpenSSL(t, openssl, dir, p7, content, nil, "-noverify"); err == nil {
		t.Fatalf("expected -noverify to refuse the default-id signature: %s", out)
	}
	// With signed attributes OpenSSL computes SM3(Z‖attributes) with an empty id;
	// without them it verifies the bare SM3(content), without Z.
	for _, o := range []cms.SignOptions{{Profile: cms.CMS, Detached: true}, {Profile: cms.CMS}, {Profile: cms.CMS, Detached: true, NoAttributes: true}} {
		empty := emptyIDSigner{k: p.leaf.Key.(*sm2.PrivateKey), noZ: o.NoAttributes}
		p7e, err := cms.Sign(ctx, content, p.leaf.Cert, empty, o)
		if err != nil {
			t.Fatal(err)
		}
		var given []byte
		if o.Detached {
			given = content
		}
		if out, err := verifyWithOpenSSL(t, openssl, dir, p7e, given, content, "-noverify"); err != nil {
			t.Fatalf("%+v: the empty-id signature should verify with -noverify: %v\n%s", o, err, out)
		}
		// And the project, rightly, refuses the empty id.
		if _, err := cms.Verify(p7e, given); !errors.Is(err, cms.ErrBadSignature) {
			t.Fatalf("empty-id signature in the project: %v", err)
		}
	}
	t.Log("diagnosis confirmed: OpenSSL 3.0 checks SM2 certificates and CMS signed attributes with an empty user id, " +
		"and attribute-less CMS signatures over SM3(content) without Z; `openssl cms` cannot set the id")
}

// openSSLPKI makes a self-signed certificate and key with openssl.
func openSSLPKI(t *testing.T, openssl, dir string, kind cmstest.Kind) (certPath, keyPath string) {
	t.Helper()
	keyPath, certPath = string(kind)+".key", string(kind)+".pem"
	var gen []string
	switch kind {
	case cmstest.RSA:
		gen = []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keyPath}
	case cmstest.ECDSA:
		gen = []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyPath}
	case cmstest.SM2:
		gen = []string{"genpkey", "-algorithm", "SM2", "-out", keyPath}
	}
	if out, err := cmstest.Run(t, openssl, dir, gen...); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	req := []string{"req", "-new", "-x509", "-key", keyPath, "-subj", "/C=CN/CN=openssl " + string(kind), "-days", "30", "-out", certPath,
		"-addext", "keyUsage=critical,digitalSignature,nonRepudiation"}
	if kind == cmstest.SM2 {
		req = append(req, "-sm3", "-sigopt", "distid:1234567812345678")
	} else {
		req = append(req, "-sha256")
	}
	if out, err := cmstest.Run(t, openssl, dir, req...); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return certPath, keyPath
}

// (2) SignedData made by `openssl cms -sign` verifies in the project.
func TestOpenSSLSignedVerifiesHere(t *testing.T) {
	openssl, version := cmstest.OpenSSL(t)
	t.Log(version)
	content := emr(4000)
	for _, k := range cmstest.Kinds {
		t.Run(string(k), func(t *testing.T) {
			dir := t.TempDir()
			certPath, keyPath := openSSLPKI(t, openssl, dir, k)
			cmstest.WriteFile(t, dir, "data", content)
			md := "sha256"
			if k == cmstest.SM2 {
				md = "sm3"
			}
			for _, extra := range [][]string{nil, {"-nodetach"}, {"-noattr"}, {"-keyid"}, {"-nodetach", "-stream", "-noattr"}} {
				args := append([]string{"cms", "-sign", "-binary", "-md", md, "-signer", certPath, "-inkey", keyPath, "-in", "data", "-outform", "DER", "-out", "sig.p7"}, extra...)
				out, err := cmstest.Run(t, openssl, dir, args...)
				if err != nil {
					if k == cmstest.SM2 && strings.Contains(out, "illegal zero content") {
						// OpenSSL 3.0 crypto/cms/cms_sd.c, cms_sd_asn1_ctrl: for a key that is
						// neither "EC"/"DSA" nor "RSA" (SM2 keys are their own type in 3.0)
						// without a legacy ASN1 method it returns 1 without setting the
						// SignerInfo's signatureAlgorithm, so encoding fails on the empty
						// OBJECT IDENTIFIER. Later OpenSSL maps provider keys through
						// OBJ_find_sigid_by_algs (SM3, SM2) → SM2-with-SM3.
						t.Logf("%s cannot make SM2 CMS signatures, as expected of 3.0 (`openssl %s`): %s", version, strings.Join(args, " "), lineWith(out, "illegal zero content"))
						return
					}
					t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				p7, err := os.ReadFile(filepath.Join(dir, "sig.p7"))
				if err != nil {
					t.Fatal(err)
				}
				detached := !contains(extra, "-nodetach")
				var given []byte
				if detached {
					given = content
				}
				s, err := cms.Verify(p7, given)
				if err != nil {
					t.Fatalf("%v: %v", extra, err)
				}
				if !bytes.Equal(s.Content, content) || s.Profile != cms.CMS || s.Signer.Subject.CommonName != "openssl "+string(k) {
					t.Fatalf("%v: got %d bytes, profile %v, signer %v", extra, len(s.Content), s.Profile, s.Signer.Subject)
				}
				changed := append(bytes.Clone(content), '\n')
				if detached {
					if _, err := cms.Verify(p7, changed); err == nil {
						t.Fatalf("%v: changed content verified", extra)
					}
				}
			}
		})
	}
}

// An SM2 key and certificate made by openssl work in the project: the
// certificate's self-signature (made with distid 1234567812345678) checks,
// and the key signs GM and CMS SignedData.
func TestOpenSSLSM2KeyAndCertificate(t *testing.T) {
	openssl, _ := cmstest.OpenSSL(t)
	dir := t.TempDir()
	certPath, keyPath := openSSLPKI(t, openssl, dir, cmstest.SM2)
	certPEM, _ := os.ReadFile(filepath.Join(dir, certPath))
	keyPEM, _ := os.ReadFile(filepath.Join(dir, keyPath))
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		t.Fatal("no PEM")
	}
	cert, err := smx509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Fatalf("openssl's SM2 self-signature: %v", err)
	}
	k, err := smx509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		t.Fatalf("key %T", k)
	}
	for _, profile := range []cms.Profile{cms.GM, cms.CMS} {
		p7, err := cms.Sign(ctx, []byte("门诊病历"), cert, key, cms.SignOptions{Profile: profile})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cms.Verify(p7, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(s)
}
