package certs

// Fuzz targets for everything that takes bytes from outside: certificates and
// keys uploaded through the console or returned by a signing server, signatures
// to verify, SM4 ciphertexts from HIS/insurance peers. The property is always
// "no panic, and a failure is an EInvalid error with a message"; where the
// format allows a stronger one it is checked too. Seeds come from the unit tests
// and testdata. Run e.g.:
//
//	go test ./certs -run '^$' -fuzz FuzzParseCertificate -fuzztime 30s

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"ihos"
)

// wantUsableError fails unless err is an EInvalid *ihos.Error with a message.
func wantUsableError(t *testing.T, err error) {
	t.Helper()
	var e *ihos.Error
	if !errors.As(err, &e) || e.Code != ihos.EInvalid || e.Message == "" {
		t.Fatalf("error is not an EInvalid *ihos.Error with a message: %#v", err)
	}
}

func FuzzParseCertificate(f *testing.F) {
	key := gmtKey(f)
	c, err := SelfSignedSM2("fuzz 种子", key, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec, err := smx509.CreateCertificate(rand.Reader, &smx509.Certificate{SerialNumber: big.NewInt(7)}, &smx509.Certificate{SerialNumber: big.NewInt(7)}, p256.Public(), p256)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c.Raw)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	f.Add([]byte(base64.StdEncoding.EncodeToString(c.Raw)))
	f.Add(ec)
	f.Add(readTestdata(f, "openssl-sm2-cert.pem"))
	f.Add(readTestdata(f, "openssl-sm2-key.pem"))
	f.Add(c.Raw[:len(c.Raw)/2])
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{0x30, 0x80})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		cert, err := ParseCertificate(in)
		if err != nil {
			wantUsableError(t, err)
			return
		}
		// Whatever parses can be used: its signature checked, its key used.
		_ = cert.CheckSignatureFrom(cert)
		_ = VerifyData(cert.PublicKey, []byte("x"), []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	})
}

func FuzzParsePrivateKeyPEM(f *testing.F) {
	sm2Key := gmtKey(f)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, k := range []crypto.Signer{sm2Key, p256} {
		b, err := MarshalPrivateKeyPEM(k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	sec1, _ := smx509.MarshalSM2PrivateKey(sm2Key)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "SM2 PRIVATE KEY", Bytes: sec1}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x00}}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30, 0x00}}))
	f.Add(readTestdata(f, "openssl-sm2-key.pem"))
	f.Add(readTestdata(f, "openssl-sm2-eckey.pem"))
	f.Add(readTestdata(f, "openssl-sm2-cert.pem"))
	f.Add([]byte("not a key"))
	f.Fuzz(func(t *testing.T, in []byte) {
		k, err := ParsePrivateKeyPEM(in)
		if err != nil {
			wantUsableError(t, err)
			return
		}
		// A key that parses signs (or says why not) and round-trips.
		if _, err := SignData(k, []byte("x")); err != nil {
			wantUsableError(t, err)
		}
		if out, err := MarshalPrivateKeyPEM(k); err == nil {
			back, err := ParsePrivateKeyPEM(out)
			if err != nil || !samePublicKey(back.Public(), k.Public()) {
				t.Fatalf("re-encoded key does not parse back: %v", err)
			}
		}
	})
}

var (
	fuzzKeysOnce sync.Once
	fuzzP256     *ecdsa.PrivateKey
)

// FuzzVerifyData feeds garbled data and signatures to VerifyData against fixed
// SM2 (the GM/T 0003.5 example key), P-256 and RSA-2048 keys. A signature that
// verifies must still verify after any change to the data: checked by appending
// a byte.
func FuzzVerifyData(f *testing.F) {
	key := gmtKey(f)
	fuzzKeysOnce.Do(func() { fuzzP256, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader) })
	rk := testRSAKey(f)
	data := []byte(gmtM)
	f.Add(data, derSig(f, bigHex(gmtR), bigHex(gmtS)))
	f.Add(data, append(be32(bigHex(gmtR)), be32(bigHex(gmtS))...))
	for _, k := range []crypto.Signer{key, fuzzP256, rk} {
		sig, err := SignData(k, data)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, sig)
	}
	f.Add(readTestdata(f, "openssl-sm2.data"), readTestdata(f, "openssl-sm2.sig"))
	f.Add([]byte{}, []byte{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01})
	f.Add([]byte{}, []byte{})
	pubs := []crypto.PublicKey{key.Public(), fuzzP256.Public(), rk.Public()}
	f.Fuzz(func(t *testing.T, data, sig []byte) {
		for _, pub := range pubs {
			err := VerifyData(pub, data, sig)
			if err != nil {
				wantUsableError(t, err)
				continue
			}
			if VerifyData(pub, append(bytes.Clone(data), 0), sig) == nil {
				t.Fatalf("signature %x verifies for both %x and %x00", sig, data, data)
			}
		}
		if pub, ok := pubs[0].(*ecdsa.PublicKey); ok && sm2.IsSM2PublicKey(pub) {
			if err := VerifySM2WithUID(pub, data, data, sig); err != nil {
				wantUsableError(t, err)
			}
		}
	})
}

// FuzzSM4CBCDecrypt: garbled key, iv or ciphertext never panics, and whatever
// decrypts re-encrypts to the same ciphertext (CBC with PKCS#7 is a bijection
// between valid paddings and ciphertexts for a given key and iv).
func FuzzSM4CBCDecrypt(f *testing.F) {
	key := unhex(f, "0123456789abcdeffedcba9876543210")
	iv := unhex(f, "000102030405060708090a0b0c0d0e0f")
	ct, _ := SM4CBCEncrypt(key, iv, unhex(f, "aaaaaaaabbbbbbbbccccccccddddddddeeeeeeeeffffffffaaaaaaaabbbbbbbb"))
	f.Add(key, iv, ct)
	f.Add(key, iv, ct[:16])
	f.Add(key, iv, ct[:15])
	f.Add(key, iv, []byte{})
	f.Add(key[:8], iv, ct)
	f.Add(key, iv[:8], ct)
	empty, _ := SM4CBCEncrypt(key, iv, nil)
	f.Add(key, iv, empty)
	f.Fuzz(func(t *testing.T, key, iv, ct []byte) {
		pt, err := SM4CBCDecrypt(key, iv, ct)
		if err != nil {
			wantUsableError(t, err)
			return
		}
		again, err := SM4CBCEncrypt(key, iv, pt)
		if err != nil || !bytes.Equal(again, ct) {
			t.Fatalf("decrypt then encrypt: %x, %v; want %x", again, err, ct)
		}
	})
}
