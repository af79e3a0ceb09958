package cms_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/asn1"
	"errors"
	"math/rand/v2"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/emmansun/gmsm/pkcs7"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs/cms"
	"ihos/certs/cms/cmstest"
	"ihos/certs/tsa"
)

var ctx = context.Background()

func outerType(t *testing.T, p7 []byte) (outer, inner asn1.ObjectIdentifier) {
	t.Helper()
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(p7, &ci); err != nil {
		t.Fatal(err)
	}
	var sd struct {
		Version int
		Digests asn1.RawValue
		Encap   struct {
			Type asn1.ObjectIdentifier
			Rest asn1.RawValue `asn1:"optional,explicit,tag:0"`
		}
		Rest []asn1.RawValue `asn1:""`
	}
	_, _ = asn1.Unmarshal(ci.Content.Bytes, &sd)
	return ci.Type, sd.Encap.Type
}

func TestRoundTrip(t *testing.T) {
	content := emr(2000)
	for _, k := range cmstest.Kinds {
		p := testPKI(t, k)
		for _, profile := range []cms.Profile{cms.GM, cms.CMS} {
			for _, detached := range []bool{false, true} {
				for _, noAttr := range []bool{false, true} {
					name := string(k) + "/" + profile.String()
					if detached {
						name += "/detached"
					}
					if noAttr {
						name += "/noattr"
					}
					t.Run(name, func(t *testing.T) {
						before := time.Now().Add(-time.Second)
						p7, err := cms.Sign(ctx, content, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Profile: profile, Detached: detached, NoAttributes: noAttr})
						if err != nil {
							t.Fatal(err)
						}
						wantProfile := profile
						if k != cmstest.SM2 {
							wantProfile = cms.CMS // GM is for SM2 keys only
						}
						outer, inner := outerType(t, p7)
						if wantProfile == cms.GM && (!outer.Equal(cms.OIDGMSignedData) || !inner.Equal(cms.OIDGMData)) ||
							wantProfile == cms.CMS && (!outer.Equal(cms.OIDSignedData) || !inner.Equal(cms.OIDData)) {
							t.Fatalf("content types %v / %v for profile %v", outer, inner, wantProfile)
						}
						var given []byte
						if detached {
							given = content
						}
						s, err := cms.Verify(p7, given)
						if err != nil {
							t.Fatal(err)
						}
						if !s.Signer.Equal(p.leaf.Cert) || !bytes.Equal(s.Content, content) || s.Profile != wantProfile || s.Detached != detached {
							t.Fatalf("got signer %v, %d bytes, profile %v, detached %v", s.Signer.Subject, len(s.Content), s.Profile, s.Detached)
						}
						if noAttr != s.SigningTime.IsZero() {
							t.Fatalf("signing time %v with noattr %v", s.SigningTime, noAttr)
						}
						if !noAttr && (s.SigningTime.Before(before) || s.SigningTime.After(time.Now()) || s.SigningTime.Location() != time.UTC) {
							t.Fatalf("signing time %v", s.SigningTime)
						}
						if len(s.Certificates) != 1 || s.Timestamp != nil || len(s.Signature) == 0 {
							t.Fatalf("%d certificates, timestamp %x", len(s.Certificates), s.Timestamp)
						}
					})
				}
			}
		}
	}
}

func TestEmptyContent(t *testing.T) {
	p := testPKI(t, cmstest.SM2)
	for _, detached := range []bool{false, true} {
		p7, err := cms.Sign(ctx, []byte{}, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Detached: detached})
		if err != nil {
			t.Fatal(err)
		}
		var given []byte
		if detached {
			given = []byte{}
		}
		s, err := cms.Verify(p7, given)
		if err != nil || len(s.Content) != 0 {
			t.Fatalf("detached=%v: %v", detached, err)
		}
		if _, err := cms.Verify(p7, []byte("x")); err == nil {
			t.Fatal("other content verified")
		}
	}
}

func TestChangedContentFails(t *testing.T) {
	content := emr(4000)
	for _, k := range cmstest.Kinds {
		p := testPKI(t, k)
		for _, noAttr := range []bool{false, true} {
			p7, err := cms.Sign(ctx, content, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Detached: true, NoAttributes: noAttr})
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range []int{0, len(content) / 2, len(content) - 1} {
				changed := bytes.Clone(content)
				changed[i] ^= 0x01
				_, err := cms.Verify(p7, changed)
				want := cms.ErrContentChanged
				if noAttr {
					want = cms.ErrBadSignature // without attributes only the signature can tell
				}
				if !errors.Is(err, want) {
					t.Fatalf("%s noattr=%v byte %d: got %v, want %v", k, noAttr, i, err, want)
				}
			}
			if _, err := cms.Verify(p7, nil); !errors.Is(err, cms.ErrNoContent) {
				t.Fatalf("no content: %v", err)
			}
			if _, err := cms.Verify(p7, content[:len(content)-1]); err == nil {
				t.Fatal("a shortened content verified")
			}
		}
	}
	// The message shown to a user.
	p := testPKI(t, cmstest.SM2)
	p7, _ := cms.Sign(ctx, content, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Detached: true})
	_, err := cms.Verify(p7, append(bytes.Clone(content), ' '))
	if got := ihos.ErrorMessage(err); got != "签名验证失败：内容已被修改" || ihos.ErrorCode(err) != ihos.EInvalid {
		t.Fatalf("message %q code %q", got, ihos.ErrorCode(err))
	}
	// Attached content with a different detached copy.
	p7, _ = cms.Sign(ctx, content, p.leaf.Cert, p.leaf.Key, cms.SignOptions{})
	if _, err := cms.Verify(p7, []byte("其他内容")); !errors.Is(err, cms.ErrContentChanged) {
		t.Fatalf("attached vs other detached: %v", err)
	}
	if _, err := cms.Verify(p7, content); err != nil {
		t.Fatalf("attached with the same detached copy: %v", err)
	}
}

func TestTamperedSignatureFails(t *testing.T) {
	content := emr(1000)
	for _, k := range cmstest.Kinds {
		p := testPKI(t, k)
		for _, noAttr := range []bool{false, true} {
			p7, err := cms.Sign(ctx, content, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Detached: true, NoAttributes: noAttr})
			if err != nil {
				t.Fatal(err)
			}
			s, err := cms.Verify(p7, content)
			if err != nil {
				t.Fatal(err)
			}
			at := bytes.Index(p7, s.Signature)
			if at < 0 {
				t.Fatal("signature value not found")
			}
			// The last byte of the value: for (EC)DSA/SM2 the low byte of s,
			// so the DER stays well-formed and only the check can fail.
			bad := bytes.Clone(p7)
			bad[at+len(s.Signature)-1] ^= 0x40
			if _, err := cms.Verify(bad, content); !errors.Is(err, cms.ErrBadSignature) {
				t.Fatalf("%s noattr=%v: %v", k, noAttr, err)
			}
			if noAttr {
				continue
			}
			// A changed signed attribute (the signing time's last digit).
			s2 := bytes.Clone(p7)
			st, _ := asn1.Marshal(s.SigningTime)
			i := bytes.Index(s2, st)
			if i < 0 {
				t.Fatal("signing time not found")
			}
			s2[i+len(st)-2] ^= 0x01 // a digit: '0'↔'1' … stays a valid time
			if _, err := cms.Verify(s2, content); !errors.Is(err, cms.ErrBadSignature) {
				t.Fatalf("%s changed signing time: %v", k, err)
			}
		}
	}
}

func TestGarbledInputFailsCleanly(t *testing.T) {
	content := emr(1500)
	p := testPKI(t, cmstest.SM2)
	ts := testTSA(t, cmstest.SM2)
	p7, err := cms.Sign(ctx, content, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Timestamp: ts.Stamp})
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(p7); n++ {
		if _, err := cms.Verify(p7[:n], nil); err == nil {
			t.Fatalf("a SignedData cut to %d of %d bytes verified", n, len(p7))
		}
	}
	if _, err := cms.Verify(append(bytes.Clone(p7), 0), nil); !errors.Is(err, cms.ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		bad := bytes.Clone(p7)
		for j := 0; j < 1+r.IntN(4); j++ {
			bad[r.IntN(len(bad))] = byte(r.Uint32())
		}
		_, _ = cms.Verify(bad, nil) // must not panic
	}
	for _, in := range [][]byte{nil, {}, {0x30}, {0x30, 0x80}, {0x30, 0x84, 0xff, 0xff, 0xff, 0xff}, bytes.Repeat([]byte{0x30, 0x80}, 5000), []byte("-----BEGIN PKCS7-----")} {
		if _, err := cms.Verify(in, nil); err == nil {
			t.Fatalf("%x verified", in)
		}
	}
	big := make([]byte, cms.MaxSize+1)
	if _, err := cms.Verify(big, nil); !errors.Is(err, cms.ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	// Not a SignedData at all: a certificate.
	if _, err := cms.Verify(p.leaf.Cert.Raw, nil); err == nil {
		t.Fatal("a certificate verified")
	}
}

func TestTimestampInProcess(t *testing.T) {
	content := emr(10 << 10)
	for _, k := range cmstest.Kinds {
		t.Run(string(k), func(t *testing.T) {
			p := testPKI(t, cmstest.SM2)
			auth := testTSA(t, k)
			p7, err := cms.Sign(ctx, content, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Detached: true, Timestamp: auth.Stamp})
			if err != nil {
				t.Fatal(err)
			}
			s, err := cms.Verify(p7, content)
			if err != nil {
				t.Fatal(err)
			}
			if s.Timestamp == nil {
				t.Fatal("no timestamp")
			}
			roots := []*smx509.Certificate{testPKI(t, k).ca.Cert}
			info, err := tsa.Verify(s.Timestamp, s.Signature, roots)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(info.GenTime); d < -time.Second || d > 10*time.Second {
				t.Fatalf("genTime %v", info.GenTime)
			}
			if !info.Signer.Equal(auth.Cert) {
				t.Fatal("wrong TSA signer")
			}
			if _, err := tsa.Verify(s.Timestamp, content, roots); !errors.Is(err, tsa.ErrDataChanged) {
				t.Fatalf("timestamp against the content instead of the signature: %v", err)
			}
		})
	}
}

func TestTimestampOverHTTP(t *testing.T) {
	auth := testTSA(t, cmstest.SM2)
	srv := httptest.NewServer(auth.Handler())
	defer srv.Close()
	content := emr(3000)
	p := testPKI(t, cmstest.RSA)
	for _, alg := range []asn1.ObjectIdentifier{tsa.OIDSM3, tsa.OIDSHA256} {
		p7, err := cms.Sign(ctx, content, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Timestamp: tsa.Client(srv.Client(), srv.URL, alg)})
		if err != nil {
			t.Fatal(err)
		}
		s, err := cms.Verify(p7, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := tsa.Verify(s.Timestamp, s.Signature, []*smx509.Certificate{testPKI(t, cmstest.SM2).ca.Cert})
		if err != nil {
			t.Fatal(err)
		}
		if !info.HashAlg.Equal(alg) {
			t.Fatalf("imprint algorithm %v, want %v", info.HashAlg, alg)
		}
	}
	// A TSA that refuses (clock not synchronised) makes Sign fail.
	refusing := &tsa.Authority{Cert: auth.Cert, Key: auth.Key, Ready: func() error { return errors.New("尚未与时间源同步") }}
	srv2 := httptest.NewServer(refusing.Handler())
	defer srv2.Close()
	_, err := cms.Sign(ctx, content, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Timestamp: tsa.Client(srv2.Client(), srv2.URL, nil)})
	if !errors.Is(err, tsa.ErrRejected) {
		t.Fatalf("refusing TSA: %v", err)
	}
}

func TestChainAndNoCertificates(t *testing.T) {
	root := testPKI(t, cmstest.SM2).ca
	inter := root.Intermediate(t, cmstest.SM2, "测试中级 CA")
	leaf := inter.Leaf(t, cmstest.SM2, "王护士")
	content := []byte(`{"处方":"阿莫西林胶囊 0.25g×24"}`)
	p7, err := cms.Sign(ctx, content, leaf.Cert, leaf.Key, cms.SignOptions{Chain: []*smx509.Certificate{inter.Cert, leaf.Cert, root.Cert}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := cms.Verify(p7, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Certificates) != 3 || !s.Signer.Equal(leaf.Cert) {
		t.Fatalf("%d certificates (want 3, duplicates dropped)", len(s.Certificates))
	}
	pool := smx509.NewCertPool()
	pool.AddCert(root.Cert)
	inters := smx509.NewCertPool()
	for _, c := range s.Certificates {
		inters.AddCert(c)
	}
	if _, err := s.Signer.Verify(smx509.VerifyOptions{Roots: pool, Intermediates: inters, KeyUsages: []smx509.ExtKeyUsage{smx509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("chain: %v", err)
	}

	bare, err := cms.Sign(ctx, content, leaf.Cert, leaf.Key, cms.SignOptions{NoCertificates: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Verify(bare, nil); !errors.Is(err, cms.ErrSignerNotFound) {
		t.Fatalf("without certificates: %v", err)
	}
	if _, err := cms.VerifyWith(bare, nil, cms.VerifyOptions{Certificates: []*smx509.Certificate{root.Cert, leaf.Cert}}); err != nil {
		t.Fatalf("with the certificate given: %v", err)
	}
}

func TestSignRefusals(t *testing.T) {
	sm2p, rsap := testPKI(t, cmstest.SM2), testPKI(t, cmstest.RSA)
	if _, err := cms.Sign(ctx, []byte("x"), sm2p.leaf.Cert, rsap.leaf.Key, cms.SignOptions{}); !errors.Is(err, cms.ErrKeyMismatch) {
		t.Fatalf("key of another certificate: %v", err)
	}
	if _, err := cms.Sign(ctx, []byte("x"), sm2p.leaf.Cert, cmstest.Key(t, cmstest.SM2), cms.SignOptions{}); !errors.Is(err, cms.ErrKeyMismatch) {
		t.Fatalf("another SM2 key: %v", err)
	}
	if _, err := cms.Sign(ctx, []byte("x"), nil, rsap.leaf.Key, cms.SignOptions{}); err == nil {
		t.Fatal("no certificate")
	}
	if _, err := cms.Sign(ctx, []byte("x"), sm2p.leaf.Cert, sm2p.leaf.Key, cms.SignOptions{Profile: cms.Profile(7)}); err == nil {
		t.Fatal("unknown profile")
	}
	failing := func(context.Context, []byte) ([]byte, error) { return nil, errors.New("down") }
	if _, err := cms.Sign(ctx, []byte("x"), sm2p.leaf.Cert, sm2p.leaf.Key, cms.SignOptions{Timestamp: failing}); err == nil {
		t.Fatal("a failing timestamp was ignored")
	}
	garbage := func(context.Context, []byte) ([]byte, error) { return []byte("not DER"), nil }
	if _, err := cms.Sign(ctx, []byte("x"), sm2p.leaf.Cert, sm2p.leaf.Key, cms.SignOptions{Timestamp: garbage}); err == nil {
		t.Fatal("a garbage timestamp was embedded")
	}
}

// A plain *ecdsa.PrivateKey on the SM2 curve signs as SM2.
func TestSM2AsECDSAKey(t *testing.T) {
	p := testPKI(t, cmstest.SM2)
	ek := &p.leaf.Key.(*sm2.PrivateKey).PrivateKey
	var _ *ecdsa.PrivateKey = ek
	p7, err := cms.Sign(ctx, []byte("病历"), p.leaf.Cert, ek, cms.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Verify(p7, nil); err != nil {
		t.Fatal(err)
	}
}

// gmsm's pkcs7 package is an independent implementation: each side verifies
// what the other signed.
func TestCrossCheckWithGmsmPKCS7(t *testing.T) {
	content := emr(1200)
	for _, k := range cmstest.Kinds {
		p := testPKI(t, k)
		for _, profile := range []cms.Profile{cms.GM, cms.CMS} {
			if k != cmstest.SM2 && profile == cms.GM {
				continue
			}
			ours, err := cms.Sign(ctx, content, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Profile: profile})
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := pkcs7.Parse(ours)
			if err != nil {
				t.Fatalf("%s %v: gmsm parse: %v", k, profile, err)
			}
			if k == cmstest.SM2 && profile == cms.CMS {
				// gmsm v0.44.0 does not know SM2-with-SM3 (1.2.156.10197.1.501),
				// the signatureAlgorithm OpenSSL 3 writes; it knows SM2-1 only.
				if err := theirs.Verify(); err == nil {
					t.Log("gmsm now verifies 1.2.156.10197.1.501")
				}
				continue
			}
			if err := theirs.Verify(); err != nil {
				t.Fatalf("%s %v: gmsm verify: %v", k, profile, err)
			}
		}
		// Signed by gmsm.
		var sd *pkcs7.SignedData
		var err error
		if k == cmstest.SM2 {
			sd, err = pkcs7.NewSMSignedData(content)
		} else {
			sd, err = pkcs7.NewSignedData(content)
			sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := sd.AddSigner(p.leaf.Cert, p.leaf.Key, pkcs7.SignerInfoConfig{}); err != nil {
			t.Fatal(err)
		}
		sd.Detach()
		der, err := sd.Finish()
		if err != nil {
			t.Fatal(err)
		}
		s, err := cms.Verify(der, content)
		if err != nil {
			t.Fatalf("%s: gmsm-signed: %v", k, err)
		}
		if want := map[bool]cms.Profile{true: cms.GM, false: cms.CMS}[k == cmstest.SM2]; s.Profile != want {
			t.Fatalf("profile %v", s.Profile)
		}
		if _, err := cms.Verify(der, append(bytes.Clone(content), '!')); !errors.Is(err, cms.ErrContentChanged) {
			t.Fatalf("gmsm-signed, changed: %v", err)
		}
	}
}

// Streaming producers write BER: indefinite lengths, the content in chunks.
func TestBERInput(t *testing.T) {
	content := emr(3000)
	p := testPKI(t, cmstest.SM2)
	der, err := cms.Sign(ctx, content, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Profile: cms.CMS})
	if err != nil {
		t.Fatal(err)
	}
	elems := func(b []byte) [][]byte {
		var out [][]byte
		for len(b) > 0 {
			var v asn1.RawValue
			rest, err := asn1.Unmarshal(b, &v)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v.FullBytes)
			b = rest
		}
		return out
	}
	indef := func(tag byte, parts ...[]byte) []byte {
		out := []byte{tag, 0x80}
		for _, p := range parts {
			out = append(out, p...)
		}
		return append(out, 0, 0)
	}
	inner := func(b []byte) []byte { var v asn1.RawValue; asn1.Unmarshal(b, &v); return v.Bytes }
	ci := elems(inner(der))          // OID, [0]
	sd := elems(inner(inner(ci[1]))) // version, digests, encap, certs, signerInfos
	encap := elems(inner(sd[2]))     // eContentType, [0]
	half := len(content) / 2
	chunk1, _ := asn1.Marshal(content[:half])
	chunk2, _ := asn1.Marshal(content[half:])
	ber := indef(0x30, ci[0], indef(0xa0, indef(0x30, sd[0], sd[1],
		indef(0x30, encap[0], indef(0xa0, indef(0x24, chunk1, chunk2))), sd[3], sd[4])))
	s, err := cms.Verify(ber, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Content, content) {
		t.Fatal("content not joined")
	}
	ber[len(ber)-20] ^= 0xff
	if _, err := cms.Verify(ber, nil); err == nil {
		t.Fatal("changed BER verified")
	}
}
