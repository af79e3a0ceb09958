package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"ihos"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func bigHex(s string) *big.Int {
	n, ok := new(big.Int).SetString(strings.ReplaceAll(s, " ", ""), 16)
	if !ok {
		panic("bad hex " + s)
	}
	return n
}

// derSig encodes r, s as the DER SEQUENCE SignData produces.
func derSig(t testing.TB, r, s *big.Int) []byte {
	t.Helper()
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	der, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// wantBadSig asserts err is an EInvalid verification failure (ErrSignatureInvalid)
// whose Chinese message contains want.
func wantBadSig(t *testing.T, err error, want string) {
	t.Helper()
	wantCode(t, err, ihos.EInvalid)
	if !errors.Is(err, ErrSignatureInvalid) {
		t.Errorf("error does not wrap ErrSignatureInvalid: %v", err)
	}
	if msg := ihos.ErrorMessage(err); !strings.Contains(msg, want) {
		t.Errorf("message %q does not contain %q", msg, want)
	}
}

// wantInvalid asserts err is EInvalid, not a signature mismatch, with want in its message.
func wantInvalid(t *testing.T, err error, want string) {
	t.Helper()
	wantCode(t, err, ihos.EInvalid)
	if msg := ihos.ErrorMessage(err); !strings.Contains(msg, want) {
		t.Errorf("message %q does not contain %q", msg, want)
	}
}

// --- GB/T 32905 SM3 ---

func TestSM3PublishedVectors(t *testing.T) {
	// GB/T 32905-2016 Appendix A, examples 1 and 2.
	for _, tc := range []struct{ in, want string }{
		{"abc", "66c7f0f4 62eeedd9 d1f2d46b dc10e4e2 4167c487 5cf2f7a2 297da02b 8f4ba8e0"},
		{strings.Repeat("abcd", 16), "debe9ff9 2275b8a1 38604889 c18e5a4d 6fdb70e5 387e5765 293dcba3 9c0c5732"},
	} {
		got := SM3Sum([]byte(tc.in))
		if !bytes.Equal(got[:], unhex(t, tc.want)) {
			t.Errorf("SM3(%q) = %x", tc.in, got)
		}
	}
}

// --- GB/T 32907 SM4, draft-ribose-cfrg-sm4 CBC, RFC 8998 GCM ---

func TestSM4BlockPublishedVectors(t *testing.T) {
	// GB/T 32907-2016 Appendix A: example 1 (one encryption) and example 2
	// (the plaintext encrypted 1,000,000 times with the same key).
	key := unhex(t, "0123456789abcdeffedcba9876543210")
	b, err := newSM4(key)
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.Clone(key) // plaintext = key in the standard's examples
	b.Encrypt(buf, buf)
	if want := unhex(t, "681edf34d206965e86b3e94f536e4246"); !bytes.Equal(buf, want) {
		t.Fatalf("SM4 example 1 = %x, want %x", buf, want)
	}
	b.Decrypt(buf, buf)
	if !bytes.Equal(buf, key) {
		t.Fatalf("SM4 decrypt of example 1 = %x", buf)
	}
	for range 1_000_000 {
		b.Encrypt(buf, buf)
	}
	if want := unhex(t, "595298c7c6fd271f0402f804c33d3f66"); !bytes.Equal(buf, want) {
		t.Fatalf("SM4 example 2 (10^6 iterations) = %x, want %x", buf, want)
	}
}

func TestSM4CBCPublishedVectors(t *testing.T) {
	// draft-ribose-cfrg-sm4-10 Appendix A.2.2.1 and A.2.2.2 (SM4-CBC, two blocks,
	// no padding). SM4CBCEncrypt always pads (PKCS#7), so a 32-byte plaintext gets
	// a third block of sixteen 0x10 bytes; CBC leaves the first two blocks equal to
	// the published ones, and the third is SM4(K, C2 XOR 10…10).
	iv := unhex(t, "000102030405060708090a0b0c0d0e0f")
	pt := unhex(t, "aaaaaaaabbbbbbbbccccccccddddddddeeeeeeeeffffffffaaaaaaaabbbbbbbb")
	for _, tc := range []struct{ key, ct string }{
		{"0123456789abcdeffedcba9876543210", "78ebb11cc40b0a48312aaeb2040244cb4cb7016951909226979b0d15dc6a8f6d"},
		{"fedcba98765432100123456789abcdef", "0d3a6ddc2d21c698857215587b7bb59a91f2c147911a4144665e1fa1d40bae38"},
	} {
		key, want := unhex(t, tc.key), unhex(t, tc.ct)
		got, err := SM4CBCEncrypt(key, iv, pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 48 || !bytes.Equal(got[:32], want) {
			t.Fatalf("key %s: SM4-CBC = %x, want %x‖(pad block)", tc.key, got, want)
		}
		b, _ := newSM4(key)
		last := bytes.Repeat([]byte{0x10}, 16)
		for i := range last {
			last[i] ^= want[16+i]
		}
		b.Encrypt(last, last)
		if !bytes.Equal(got[32:], last) {
			t.Errorf("key %s: padding block %x, want %x", tc.key, got[32:], last)
		}
		back, err := SM4CBCDecrypt(key, iv, got)
		if err != nil || !bytes.Equal(back, pt) {
			t.Errorf("key %s: decrypt = %x, %v", tc.key, back, err)
		}
	}
}

func TestSM4GCMPublishedVector(t *testing.T) {
	// RFC 8998 Appendix A.1 (SM4-GCM test vector).
	key := unhex(t, "0123456789ABCDEFFEDCBA9876543210")
	nonce := unhex(t, "00001234567800000000ABCD")
	aad := unhex(t, "FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
	pt := unhex(t, "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"+
		"EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")
	ct := unhex(t, "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"+
		"D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D")
	tag := unhex(t, "83DE3541E4C2B58177E065A9BF7B62EC")
	want := append(bytes.Clone(ct), tag...)

	got, err := SM4GCMSeal(key, nonce, pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("SM4-GCM = %x\nwant      %x", got, want)
	}
	back, err := SM4GCMOpen(key, nonce, want, aad)
	if err != nil || !bytes.Equal(back, pt) {
		t.Fatalf("open = %x, %v", back, err)
	}
}

func TestSM4CBC(t *testing.T) {
	key, iv := make([]byte, 16), make([]byte, 16)
	rand.Read(key)
	rand.Read(iv)
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 1000} {
		pt := make([]byte, n, n+64) // spare capacity must stay untouched
		rand.Read(pt)
		spare := pt[:cap(pt)]
		before := bytes.Clone(spare)
		ct, err := SM4CBCEncrypt(key, iv, pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != (n/16+1)*16 {
			t.Errorf("len(ct) = %d for %d bytes", len(ct), n)
		}
		if !bytes.Equal(spare, before) {
			t.Error("SM4CBCEncrypt wrote into the caller's buffer")
		}
		back, err := SM4CBCDecrypt(key, iv, ct)
		if err != nil || !bytes.Equal(back, pt) {
			t.Fatalf("%d bytes: round trip %x, %v", n, back, err)
		}
	}

	// Bad input: errors, not panics.
	ct, _ := SM4CBCEncrypt(key, iv, []byte("处方"))
	wantInvalid(t, errOnly(SM4CBCEncrypt(key[:15], iv, nil)), "密钥长度")
	wantInvalid(t, errOnly(SM4CBCEncrypt(key, iv[:8], nil)), "IV")
	wantInvalid(t, errOnly(SM4CBCDecrypt(key, iv, nil)), "密文长度")
	wantInvalid(t, errOnly(SM4CBCDecrypt(key, iv, ct[:15])), "密文长度")
	wantInvalid(t, errOnly(SM4CBCDecrypt(key, nil, ct)), "IV")
	wantInvalid(t, errOnly(SM4CBCDecrypt(nil, iv, ct)), "密钥长度")

	// A block whose plaintext ends in each invalid padding form.
	b, _ := newSM4(key)
	for _, last := range [][]byte{
		append(bytes.Repeat([]byte{'x'}, 15), 0),       // padding length 0
		append(bytes.Repeat([]byte{'x'}, 15), 17),      // longer than a block
		append(bytes.Repeat([]byte{'x'}, 14), 3, 2),    // wrong, would be 2,2
		append(bytes.Repeat([]byte{'x'}, 13), 1, 3, 3), // one byte short
		bytes.Repeat([]byte{0xff}, 16),
	} {
		blk := make([]byte, 16)
		for i := range blk {
			blk[i] = last[i] ^ iv[i]
		}
		b.Encrypt(blk, blk)
		wantInvalid(t, errOnly(SM4CBCDecrypt(key, iv, blk)), "填充无效")
	}
}

// TestPKCS7PadLen compares the constant-time check with a plain one on every
// value of the last byte and many block contents.
func TestPKCS7PadLen(t *testing.T) {
	plain := func(blk []byte) (int, bool) {
		n := int(blk[15])
		if n < 1 || n > 16 {
			return 0, false
		}
		for _, c := range blk[16-n:] {
			if int(c) != n {
				return 0, false
			}
		}
		return n, true
	}
	blk := make([]byte, 16)
	for n := range 256 {
		for trial := range 64 {
			switch trial % 4 {
			case 0: // valid padding of n (if 1 ≤ n ≤ 16)
				rand.Read(blk)
				for i := max(0, 16-n); i < 16; i++ {
					blk[i] = byte(n)
				}
			case 1: // all n
				for i := range blk {
					blk[i] = byte(n)
				}
			default: // random with one padding byte changed
				rand.Read(blk)
				for i := max(0, 16-n); i < 16; i++ {
					blk[i] = byte(n)
				}
				blk[15-trial%16] ^= byte(1 + trial%7)
				blk[15] = byte(n)
			}
			wn, wok := plain(blk)
			gn, gok := pkcs7PadLen(blk)
			if wok != gok || (wok && wn != gn) {
				t.Fatalf("%x: got %d,%v want %d,%v", blk, gn, gok, wn, wok)
			}
		}
	}
}

func TestSM4GCM(t *testing.T) {
	key, nonce := make([]byte, 16), make([]byte, 12)
	rand.Read(key)
	rand.Read(nonce)
	pt, aad := []byte("复诊处方：阿莫西林胶囊"), []byte("rx-0001")
	ct, err := SM4GCMSeal(key, nonce, pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	if len(ct) != len(pt)+16 {
		t.Errorf("len = %d", len(ct))
	}
	if back, err := SM4GCMOpen(key, nonce, ct, aad); err != nil || !bytes.Equal(back, pt) {
		t.Fatalf("round trip: %q, %v", back, err)
	}
	if back, err := SM4GCMOpen(key, nonce, ct[len(pt):], nil); err == nil {
		t.Fatalf("tag alone opened: %q", back)
	}
	// Empty plaintext and aad work too.
	e, _ := SM4GCMSeal(key, nonce, nil, nil)
	if back, err := SM4GCMOpen(key, nonce, e, nil); err != nil || len(back) != 0 {
		t.Errorf("empty: %q, %v", back, err)
	}

	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		wantInvalid(t, errOnly(SM4GCMOpen(key, nonce, bad, aad)), "篡改")
	}
	wantInvalid(t, errOnly(SM4GCMOpen(key, nonce, ct, []byte("rx-0002"))), "篡改")
	otherNonce := bytes.Clone(nonce)
	otherNonce[0] ^= 1
	wantInvalid(t, errOnly(SM4GCMOpen(key, otherNonce, ct, aad)), "篡改")
	otherKey := bytes.Clone(key)
	otherKey[0] ^= 1
	wantInvalid(t, errOnly(SM4GCMOpen(otherKey, nonce, ct, aad)), "篡改")
	wantInvalid(t, errOnly(SM4GCMOpen(key, nonce, ct[:15], aad)), "过短")
	wantInvalid(t, errOnly(SM4GCMSeal(key, nonce[:8], pt, aad)), "nonce")
	wantInvalid(t, errOnly(SM4GCMOpen(key, make([]byte, 16), ct, aad)), "nonce")
	wantInvalid(t, errOnly(SM4GCMSeal(make([]byte, 32), nonce, pt, aad)), "密钥长度")
}

func errOnly[T any](_ T, err error) error { return err }

// --- SM2 published examples ---

// GM/T 0003.5-2012 / GB/T 32918.5-2017 Appendix A: signature example on the SM2
// recommended curve, user id 1234567812345678, message "message digest".
const (
	gmtD  = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
	gmtPx = "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
	gmtPy = "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
	gmtZ  = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3"
	gmtE  = "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640"
	gmtR  = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
	gmtS  = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
	gmtM  = "message digest"
)

// gmtKey returns the private key of the GM/T 0003.5 example.
func gmtKey(t testing.TB) *sm2.PrivateKey {
	t.Helper()
	k, err := sm2.NewPrivateKey(unhex(t, gmtD))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSM2PublishedVectorGMT00035(t *testing.T) {
	key := gmtKey(t)
	if key.X.Cmp(bigHex(gmtPx)) != 0 || key.Y.Cmp(bigHex(gmtPy)) != 0 {
		t.Fatalf("public key of d = (%x, %x), want the published point", key.X, key.Y)
	}
	pub := &key.PublicKey
	z, err := sm2.CalculateZA(pub, []byte(DefaultUID))
	if err != nil || !bytes.Equal(z, unhex(t, gmtZ)) {
		t.Fatalf("Z = %x, %v", z, err)
	}
	e := sm3.Sum(append(z, gmtM...))
	if !bytes.Equal(e[:], unhex(t, gmtE)) {
		t.Fatalf("e = %x", e)
	}

	sig := derSig(t, bigHex(gmtR), bigHex(gmtS))
	if err := VerifyData(pub, []byte(gmtM), sig); err != nil {
		t.Fatalf("published signature rejected: %v", err)
	}
	if err := VerifySM2WithUID(pub, []byte("1234567812345678"), []byte(gmtM), sig); err != nil {
		t.Fatalf("published signature rejected with explicit uid: %v", err)
	}
	// The published public key alone (as a verifier has it) works as well.
	pubOnly := &ecdsa.PublicKey{Curve: sm2.P256(), X: bigHex(gmtPx), Y: bigHex(gmtPy)}
	if err := VerifyData(pubOnly, []byte(gmtM), sig); err != nil {
		t.Fatalf("published signature rejected with the published point: %v", err)
	}
	wantBadSig(t, VerifyData(pubOnly, []byte("message digesT"), sig), "不匹配")
	wantBadSig(t, VerifySM2WithUID(pubOnly, []byte("ALICE123@YAHOO.COM"), []byte(gmtM), sig), "UID")
	wantBadSig(t, VerifyData(pubOnly, []byte(gmtM), derSig(t, bigHex(gmtR), new(big.Int).Add(bigHex(gmtS), big.NewInt(1)))), "不匹配")

	// Our signatures with the published key verify under the standard's Z.
	mine, err := SignData(key, []byte(gmtM))
	if err != nil {
		t.Fatal(err)
	}
	if !sm2.VerifyASN1(pub, e[:], mine) {
		t.Fatal("SignData signature does not verify against the published e")
	}
}

// Bouncy Castle SM2SignerTest.doSignerTestFpStandardSM3: SM2 recommended curve,
// user id "sm2test@example.com", message "hi chappy" (a published vector with a
// non-default user id on the real curve).
func TestSM2PublishedVectorBouncyCastleUID(t *testing.T) {
	k, err := sm2.NewPrivateKey(unhex(t, "110E7973206F68C19EE5F7328C036F26911C8C73B4E4F36AE3291097F8984FFC"))
	if err != nil {
		t.Fatal(err)
	}
	pub := &k.PublicKey
	sig := derSig(t, bigHex("05890B9077B92E47B17A1FF42A814280E556AFD92B4A98B9670BF8B1A274C2FA"),
		bigHex("E3ABBB8DB2B6ECD9B24ECCEA7F679FB9A4B1DB52F4AA985E443AD73237FA1993"))
	if err := VerifySM2WithUID(pub, []byte("sm2test@example.com"), []byte("hi chappy"), sig); err != nil {
		t.Fatalf("Bouncy Castle vector rejected: %v", err)
	}
	wantBadSig(t, VerifyData(pub, []byte("hi chappy"), sig), "UID")
	wantBadSig(t, VerifySM2WithUID(pub, []byte("sm2test@example.org"), []byte("hi chappy"), sig), "UID")
}

// refCurve is a short-Weierstrass curve y² = x³ + ax + b over F_p with affine
// big.Int arithmetic: a small, slow, test-only reference, because gmsm only
// implements the SM2 recommended curve and the GB/T 32918.2 example uses
// another one.
type refCurve struct{ p, a, b, n, gx, gy *big.Int }

// add returns P+Q; nil coordinates stand for the point at infinity.
func (c refCurve) add(x1, y1, x2, y2 *big.Int) (*big.Int, *big.Int) {
	if x1 == nil {
		return x2, y2
	}
	if x2 == nil {
		return x1, y1
	}
	var l *big.Int
	if x1.Cmp(x2) == 0 {
		if new(big.Int).Add(y1, y2).Mod(new(big.Int).Add(y1, y2), c.p).Sign() == 0 {
			return nil, nil
		}
		// λ = (3x² + a) / 2y
		num := new(big.Int).Mul(x1, x1)
		num.Mul(num, big.NewInt(3)).Add(num, c.a)
		den := new(big.Int).Lsh(y1, 1)
		l = num.Mul(num, den.ModInverse(den.Mod(den, c.p), c.p))
	} else {
		num := new(big.Int).Sub(y2, y1)
		den := new(big.Int).Sub(x2, x1)
		den.Mod(den, c.p)
		l = num.Mul(num, den.ModInverse(den, c.p))
	}
	l.Mod(l, c.p)
	x3 := new(big.Int).Mul(l, l)
	x3.Sub(x3, x1).Sub(x3, x2).Mod(x3, c.p)
	y3 := new(big.Int).Sub(x1, x3)
	y3.Mul(y3, l).Sub(y3, y1).Mod(y3, c.p)
	return x3, y3
}

func (c refCurve) mul(k, x, y *big.Int) (*big.Int, *big.Int) {
	var rx, ry *big.Int
	for i := k.BitLen() - 1; i >= 0; i-- {
		rx, ry = c.add(rx, ry, rx, ry)
		if k.Bit(i) == 1 {
			rx, ry = c.add(rx, ry, x, y)
		}
	}
	return rx, ry
}

func be32(n *big.Int) []byte { return n.FillBytes(make([]byte, 32)) }

// z computes Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA), GB/T 32918.2 §5.5.
func (c refCurve) z(uid []byte, px, py *big.Int) []byte {
	h := sm3.New()
	bits := len(uid) * 8
	h.Write([]byte{byte(bits >> 8), byte(bits)})
	h.Write(uid)
	for _, v := range []*big.Int{c.a, c.b, c.gx, c.gy, px, py} {
		h.Write(be32(v))
	}
	return h.Sum(nil)
}

// verify is GB/T 32918.2 §7.1 B1–B7.
func (c refCurve) verify(uid, msg []byte, px, py, r, s *big.Int) bool {
	one := big.NewInt(1)
	if r.Cmp(one) < 0 || r.Cmp(c.n) >= 0 || s.Cmp(one) < 0 || s.Cmp(c.n) >= 0 {
		return false
	}
	e := new(big.Int).SetBytes(sm3Bytes(append(c.z(uid, px, py), msg...)))
	tt := new(big.Int).Add(r, s)
	tt.Mod(tt, c.n)
	if tt.Sign() == 0 {
		return false
	}
	x1, y1 := c.mul(s, c.gx, c.gy)
	x2, y2 := c.mul(tt, px, py)
	x, _ := c.add(x1, y1, x2, y2)
	if x == nil {
		return false
	}
	rr := new(big.Int).Add(e, x)
	return rr.Mod(rr, c.n).Cmp(r) == 0
}

func sm3Bytes(b []byte) []byte { h := sm3.Sum(b); return h[:] }

// GB/T 32918.2-2016 Appendix A (= GM/T 0003.2-2012 Appendix A): the standard's
// signature example, on its 256-bit test curve over F_p (not the recommended
// curve), user id ALICE123@YAHOO.COM, message "message digest". gmsm cannot
// compute on that curve, so the example is checked with refCurve above; refCurve
// is itself checked against the GM/T 0003.5 example on the SM2 curve, and then
// used to cross-check gmsm's Z for the non-default id ALICE123@YAHOO.COM.
func TestSM2PublishedVectorGBT329182(t *testing.T) {
	test := refCurve{
		p:  bigHex("8542D69E 4C044F18 E8B92435 BF6FF7DE 45728391 5C45517D 722EDB8B 08F1DFC3"),
		a:  bigHex("787968B4 FA32C3FD 2417842E 73BBFEFF 2F3C848B 6831D7E0 EC65228B 3937E498"),
		b:  bigHex("63E4C6D3 B23B0C84 9CF84241 484BFE48 F61D59A5 B16BA06E 6E12D1DA 27C5249A"),
		n:  bigHex("8542D69E 4C044F18 E8B92435 BF6FF7DD 29772063 0485628D 5AE74EE7 C32E79B7"),
		gx: bigHex("421DEBD6 1B62EAB6 746434EB C3CC315E 32220B3B ADD50BDC 4C4E6C14 7FEDD43D"),
		gy: bigHex("0680512B CBB42C07 D47349D2 153B70C4 E5D7FDFC BFA36EA1 A85841B9 E46E09A2"),
	}
	uid := []byte("ALICE123@YAHOO.COM")
	d := bigHex("128B2FA8 BD433C6C 068C8D80 3DFF7979 2A519A55 171B1B65 0C23661D 15897263")
	px := bigHex("0AE4C779 8AA0F119 471BEE11 825BE462 02BB79E2 A5844495 E97C04FF 4DF2548A")
	py := bigHex("7C0240F8 8F1CD4E1 6352A73C 17B7F16F 07353E53 A176D684 A9FE0C6B B798E857")
	r := bigHex("40F1EC59 F793D9F4 9E09DCEF 49130D41 94F79FB1 EED2CAA5 5BACDB49 C4E755D1")
	s := bigHex("6FC6DAC3 2C5D5CF1 0C77DFB2 0F7C2EB6 67A45787 2FB09EC5 6327A67E C7DEEBE7")

	if x, y := test.mul(d, test.gx, test.gy); x.Cmp(px) != 0 || y.Cmp(py) != 0 {
		t.Fatalf("[d]G = (%x, %x), want the published public key", x, y)
	}
	if z := test.z(uid, px, py); !bytes.Equal(z, unhex(t, "F4A38489 E32B45B6 F876E3AC 2168CA39 2362DC8F 23459C1D 1146FC3D BFB7BC9A")) {
		t.Fatalf("ZA = %x", z)
	}
	if e := sm3Bytes(append(test.z(uid, px, py), gmtM...)); !bytes.Equal(e, unhex(t, "B524F552 CD82B8B0 28476E00 5C377FB1 9A87E6FC 682D48BB 5D42E3D9 B9EFFE76")) {
		t.Fatalf("e = %x", e)
	}
	if !test.verify(uid, []byte(gmtM), px, py, r, s) {
		t.Fatal("published GB/T 32918.2 signature rejected by the reference")
	}
	if test.verify([]byte("ALICE123@YAHOO.CN"), []byte(gmtM), px, py, r, s) || test.verify(uid, []byte(gmtM), px, py, s, r) {
		t.Fatal("reference accepts a wrong uid or swapped r, s")
	}

	// The reference on the SM2 curve reproduces the GM/T 0003.5 example ...
	p := sm2.P256().Params()
	rec := refCurve{p: p.P, a: new(big.Int).Sub(p.P, big.NewInt(3)), b: p.B, n: p.N, gx: p.Gx, gy: p.Gy}
	gpx, gpy := bigHex(gmtPx), bigHex(gmtPy)
	if z := rec.z([]byte(DefaultUID), gpx, gpy); !bytes.Equal(z, unhex(t, gmtZ)) {
		t.Fatalf("reference Z on the SM2 curve = %x", z)
	}
	if !rec.verify([]byte(DefaultUID), []byte(gmtM), gpx, gpy, bigHex(gmtR), bigHex(gmtS)) {
		t.Fatal("reference rejects the GM/T 0003.5 example")
	}
	// ... and agrees with gmsm for the id ALICE123@YAHOO.COM, both on Z and on a
	// signature SignSM2WithUID makes.
	key := gmtKey(t)
	z, err := sm2.CalculateZA(&key.PublicKey, uid)
	if err != nil || !bytes.Equal(z, rec.z(uid, gpx, gpy)) {
		t.Fatalf("gmsm Z for %s = %x, reference %x (%v)", uid, z, rec.z(uid, gpx, gpy), err)
	}
	sig, err := SignSM2WithUID(key, uid, []byte(gmtM))
	if err != nil {
		t.Fatal(err)
	}
	var rr, ss big.Int
	in := cryptobyte.String(sig)
	var inner cryptobyte.String
	if !in.ReadASN1(&inner, cbasn1.SEQUENCE) || !inner.ReadASN1Integer(&rr) || !inner.ReadASN1Integer(&ss) {
		t.Fatalf("signature is not DER: %x", sig)
	}
	if !rec.verify(uid, []byte(gmtM), gpx, gpy, &rr, &ss) {
		t.Fatal("reference rejects SignSM2WithUID's signature")
	}
}

// --- SignData / VerifyData ---

// opaqueSigner hides the key type, as an HSM-backed crypto.Signer does.
type opaqueSigner struct {
	crypto.Signer
	ignoreOpts bool // a broken device that signs the bytes it gets as a digest
}

func (o opaqueSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if o.ignoreOpts {
		return o.Signer.Sign(r, digest, crypto.Hash(0))
	}
	return o.Signer.Sign(r, digest, opts)
}

var (
	rsaKeyOnce sync.Once
	rsaKey     *rsa.PrivateKey
)

// testRSAKey is shared: 2048-bit generation takes a while.
func testRSAKey(t testing.TB) *rsa.PrivateKey {
	rsaKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

func TestSignVerifySM2(t *testing.T) {
	key, err := GenerateSM2Key()
	if err != nil {
		t.Fatal(err)
	}
	if !sm2.IsSM2PublicKey(key.Public()) {
		t.Fatalf("GenerateSM2Key returned a key on %s", key.Curve.Params().Name)
	}
	other, _ := GenerateSM2Key()
	pub := key.Public()
	for _, data := range [][]byte{nil, {}, []byte("a"), []byte("电子病历 EMR-0001"), bytes.Repeat([]byte{0xa5}, 1<<20)} {
		sig, err := SignData(key, data)
		if err != nil {
			t.Fatalf("SignData(%d bytes): %v", len(data), err)
		}
		if err := checkECSignature(sig, sm2.P256().Params().N, "SM2"); err != nil {
			t.Fatalf("signature is not DER r,s: %x", sig)
		}
		if err := VerifyData(pub, data, sig); err != nil {
			t.Fatalf("VerifyData(%d bytes): %v", len(data), err)
		}
		// The default uid and an explicit DefaultUID are the same thing.
		if err := VerifySM2WithUID(&key.PublicKey, []byte(DefaultUID), data, sig); err != nil {
			t.Fatalf("VerifySM2WithUID(default): %v", err)
		}
		if err := VerifySM2WithUID(&key.PublicKey, nil, data, sig); err != nil {
			t.Fatalf("VerifySM2WithUID(nil): %v", err)
		}
		if !sm2.VerifyASN1WithSM2(&key.PublicKey, nil, data, sig) {
			t.Fatal("gmsm's own verifier rejects the signature")
		}
		wantBadSig(t, VerifyData(other.Public(), data, sig), "不匹配")
		tampered := append(bytes.Clone(data), 0)
		wantBadSig(t, VerifyData(pub, tampered, sig), "不匹配")
		wantBadSig(t, VerifySM2WithUID(&key.PublicKey, []byte("1234567812345679"), data, sig), "UID")
	}

	data := []byte("处方 RX-0002")
	sig, _ := SignData(key, data)
	for i := range sig {
		bad := bytes.Clone(sig)
		bad[i] ^= 0x40
		err := VerifyData(pub, data, bad)
		if err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
		if !errors.Is(err, ErrSignatureInvalid) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 1
		wantBadSig(t, VerifyData(pub, bad, sig), "不匹配")
	}
	// Random nonces: two signatures of the same data differ, both verify.
	if sig2, _ := SignData(key, data); bytes.Equal(sig, sig2) {
		t.Error("two SM2 signatures are identical")
	}

	// Signatures with a custom uid.
	uid := []byte("110101199003077777")
	sigU, err := SignSM2WithUID(key, uid, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySM2WithUID(&key.PublicKey, uid, data, sigU); err != nil {
		t.Fatal(err)
	}
	wantBadSig(t, VerifyData(pub, data, sigU), "UID")
	wantBadSig(t, VerifySM2WithUID(&key.PublicKey, []byte("110101199003077778"), data, sigU), "UID")
	sigD, _ := SignSM2WithUID(key, nil, data)
	if err := VerifyData(pub, data, sigD); err != nil {
		t.Errorf("nil uid is not the default uid: %v", err)
	}
	long := bytes.Repeat([]byte{'u'}, 0x2000)
	wantInvalid(t, errOnly(SignSM2WithUID(key, long, data)), "过长")
	wantInvalid(t, VerifySM2WithUID(&key.PublicKey, long, data, sigU), "过长")
	if _, err := SignSM2WithUID(key, long[:0x1fff], data); err != nil {
		t.Errorf("8191-byte uid refused: %v", err)
	}

	// An SM2 key held as *ecdsa.PrivateKey, and behind an opaque crypto.Signer.
	ek := &key.PrivateKey
	sigE, err := SignData(ek, data)
	if err != nil || VerifyData(pub, data, sigE) != nil {
		t.Fatalf("SM2 key as *ecdsa.PrivateKey: %v", err)
	}
	sigO, err := SignData(opaqueSigner{Signer: key}, data)
	if err != nil || VerifyData(pub, data, sigO) != nil {
		t.Fatalf("opaque SM2 signer: %v", err)
	}
	_, err = SignData(opaqueSigner{Signer: key, ignoreOpts: true}, data)
	wantInvalid(t, err, "签名设备")
}

func TestSignVerifyRSAAndECDSA(t *testing.T) {
	data := []byte("检验报告 LAB-0001")
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk := testRSAKey(t)
	h := sha256.Sum256(data)

	for _, key := range []crypto.Signer{p256, p384, rk, opaqueSigner{Signer: p256}, opaqueSigner{Signer: rk}} {
		sig, err := SignData(key, data)
		if err != nil {
			t.Fatalf("%T: %v", key, err)
		}
		// The standard library agrees on the format: SHA-256, PKCS#1 v1.5 / ASN.1.
		switch pub := key.Public().(type) {
		case *rsa.PublicKey:
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
				t.Fatalf("not PKCS#1 v1.5 SHA-256: %v", err)
			}
		case *ecdsa.PublicKey:
			if !ecdsa.VerifyASN1(pub, h[:], sig) {
				t.Fatal("not ASN.1 ECDSA over SHA-256")
			}
		}
		if err := VerifyData(key.Public(), data, sig); err != nil {
			t.Fatalf("%T: %v", key, err)
		}
		wantBadSig(t, VerifyData(key.Public(), []byte("检验报告 LAB-0002"), sig), "不匹配")
		bad := bytes.Clone(sig)
		bad[len(bad)-1] ^= 1
		if err := VerifyData(key.Public(), data, bad); !errors.Is(err, ErrSignatureInvalid) {
			t.Fatalf("%T: tampered signature: %v", key, err)
		}
	}

	// Signatures checked against the wrong kind of key.
	sm2Key, _ := GenerateSM2Key()
	sm2Sig, _ := SignData(sm2Key, data)
	ecSig, _ := SignData(p256, data)
	rsaSig, _ := SignData(rk, data)
	wantBadSig(t, VerifyData(p256.Public(), data, sm2Sig), "ECDSA")
	wantBadSig(t, VerifyData(sm2Key.Public(), data, ecSig), "SM2")
	wantBadSig(t, VerifyData(rk.Public(), data, ecSig), "长度")
	wantBadSig(t, VerifyData(sm2Key.Public(), data, rsaSig), "DER")
	wantBadSig(t, VerifyData(rk.Public(), data, nil), "为空")

	// RSA below 2048 bits is not used for signing.
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	wantInvalid(t, errOnly(SignData(small, data)), "2048")
}

func TestVerifyDataBadInput(t *testing.T) {
	key := gmtKey(t)
	pub := &key.PublicKey
	data := []byte(gmtM)
	good := derSig(t, bigHex(gmtR), bigHex(gmtS))
	n := sm2.P256().Params().N

	// 64-byte raw r‖s (GM/T 0009's other encoding) gets a hint.
	raw := append(be32(bigHex(gmtR)), be32(bigHex(gmtS))...)
	wantBadSig(t, VerifyData(pub, data, raw), "r‖s")
	wantBadSig(t, VerifyData(pub, data, nil), "为空")
	wantBadSig(t, VerifyData(pub, data, append(bytes.Clone(good), 0)), "DER")
	wantBadSig(t, VerifyData(pub, data, good[:len(good)-1]), "DER")
	wantBadSig(t, VerifyData(pub, data, derSig(t, big.NewInt(0), bigHex(gmtS))), "范围")
	wantBadSig(t, VerifyData(pub, data, derSig(t, bigHex(gmtR), n)), "范围")
	wantBadSig(t, VerifyData(pub, data, derSig(t, big.NewInt(-1), bigHex(gmtS))), "范围")
	// Non-minimal INTEGER encoding (a leading 00 before a byte < 0x80): not DER.
	nonMin := []byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01}
	wantBadSig(t, VerifyData(pub, data, nonMin), "DER")

	// Key problems are reported as such, not as a bad signature.
	offCurve := &ecdsa.PublicKey{Curve: sm2.P256(), X: bigHex(gmtPx), Y: new(big.Int).Add(bigHex(gmtPy), big.NewInt(1))}
	err := VerifyData(offCurve, data, good)
	wantInvalid(t, err, "公钥无效")
	if errors.Is(err, ErrSignatureInvalid) {
		t.Error("an invalid key is reported as an invalid signature")
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	offP256 := &ecdsa.PublicKey{Curve: elliptic.P256(), X: p256.X, Y: new(big.Int).Add(p256.Y, big.NewInt(1))}
	wantInvalid(t, VerifyData(offP256, data, good), "公钥无效")
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	wantInvalid(t, VerifyData(p224.Public(), data, good), "P-224")
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	wantInvalid(t, VerifyData(edPub, data, good), "不支持")
	wantInvalid(t, errOnly(SignData(edKey, data)), "不支持")
	wantInvalid(t, VerifyData(nil, data, good), "缺少")
	wantInvalid(t, VerifyData((*ecdsa.PublicKey)(nil), data, good), "缺少")
	wantInvalid(t, VerifyData(&ecdsa.PublicKey{}, data, good), "缺少")
	wantInvalid(t, VerifyData((*rsa.PublicKey)(nil), data, good), "缺少")
	wantInvalid(t, VerifyData(&rsa.PublicKey{}, data, good), "缺少")
	wantInvalid(t, VerifySM2WithUID(&p256.PublicKey, nil, data, good), "不是 SM2")
	wantInvalid(t, VerifySM2WithUID(nil, nil, data, good), "缺少")
	wantInvalid(t, errOnly(SignData(nil, data)), "缺少")
	wantInvalid(t, errOnly(SignData((*sm2.PrivateKey)(nil), data)), "缺少")
	wantInvalid(t, errOnly(SignData((*ecdsa.PrivateKey)(nil), data)), "缺少")
	wantInvalid(t, errOnly(SignData((*rsa.PrivateKey)(nil), data)), "缺少")
	wantInvalid(t, errOnly(SignSM2WithUID(nil, nil, data)), "缺少")
	rsaPub := &testRSAKey(t).PublicKey
	wantBadSig(t, VerifyData(rsaPub, data, make([]byte, rsaPub.Size())), "不匹配")
	wantBadSig(t, VerifyData(rsaPub, data, bytes.Repeat([]byte{0xff}, rsaPub.Size())), "不匹配")
}

// --- keys ---

func TestPrivateKeyPEM(t *testing.T) {
	sm2Key, _ := GenerateSM2Key()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rk := testRSAKey(t)
	data := []byte("签名数据")

	for _, key := range []crypto.Signer{sm2Key, p256, p521, rk} {
		pemBytes, err := MarshalPrivateKeyPEM(key)
		if err != nil {
			t.Fatalf("%T: %v", key, err)
		}
		if !bytes.HasPrefix(pemBytes, []byte("-----BEGIN PRIVATE KEY-----\n")) {
			t.Fatalf("%T: not PKCS#8 PEM:\n%s", key, pemBytes)
		}
		back, err := ParsePrivateKeyPEM(pemBytes)
		if err != nil {
			t.Fatalf("%T: %v", key, err)
		}
		if !samePublicKey(back.Public(), key.Public()) {
			t.Fatalf("%T: round trip changed the key", key)
		}
		if _, ok := key.(*sm2.PrivateKey); ok {
			if _, ok := back.(*sm2.PrivateKey); !ok {
				t.Fatalf("SM2 key parsed as %T", back)
			}
		}
		sig, err := SignData(back, data)
		if err != nil || VerifyData(key.Public(), data, sig) != nil {
			t.Fatalf("%T: parsed key does not sign: %v", key, err)
		}
	}

	// An SM2 key held as *ecdsa.PrivateKey marshals the same way.
	a, _ := MarshalPrivateKeyPEM(sm2Key)
	b, _ := MarshalPrivateKeyPEM(&sm2Key.PrivateKey)
	if !bytes.Equal(a, b) {
		t.Error("SM2 key as *ecdsa.PrivateKey marshals differently")
	}

	// SEC 1 ("EC PRIVATE KEY", "SM2 PRIVATE KEY") and PKCS#1, with EC PARAMETERS first.
	sec1, err := smx509.MarshalSM2PrivateKey(sm2Key)
	if err != nil {
		t.Fatal(err)
	}
	ecParams := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d}})
	for _, typ := range []string{"EC PRIVATE KEY", "SM2 PRIVATE KEY"} {
		in := append(bytes.Clone(ecParams), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: sec1})...)
		k, err := ParsePrivateKeyPEM(in)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if sk, ok := k.(*sm2.PrivateKey); !ok || !sk.Equal(sm2Key) {
			t.Fatalf("%s parsed as %T", typ, k)
		}
	}
	p256der, _ := smx509.MarshalECPrivateKey(p256)
	if k, err := ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: p256der})); err != nil || !samePublicKey(k.Public(), p256.Public()) {
		t.Fatalf("P-256 SEC 1: %v", err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: smx509.MarshalPKCS1PrivateKey(rk)})
	if k, err := ParsePrivateKeyPEM(pkcs1); err != nil || !samePublicKey(k.Public(), rk.Public()) {
		t.Fatalf("PKCS#1: %v", err)
	}

	// OpenSSL-made files (see testdata/README.md).
	for _, f := range []string{"openssl-sm2-key.pem", "openssl-sm2-eckey.pem"} {
		k, err := ParsePrivateKeyPEM(readTestdata(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, ok := k.(*sm2.PrivateKey); !ok {
			t.Fatalf("%s parsed as %T", f, k)
		}
	}

	// Refusals, with Chinese messages.
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := smx509.MarshalPKCS8PrivateKey(edKey)
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{nil, "不是 PEM"},
		{[]byte("not a key"), "不是 PEM"},
		{pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x00}}), "格式错误"},
		{pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30, 0x00}}), "已加密"},
		{pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}}), "已加密"},
		{pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}), "不是私钥"},
		{pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER}), "不支持"},
		{readTestdata(t, "openssl-sm2-cert.pem"), "没有私钥"},
		{bytes.Repeat([]byte{'A'}, maxCertInput+1), "过大"},
	} {
		_, err := ParsePrivateKeyPEM(tc.in)
		wantInvalid(t, err, tc.want)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	wantInvalid(t, errOnly(MarshalPrivateKeyPEM(p224)), "P-224")
	wantInvalid(t, errOnly(MarshalPrivateKeyPEM(edKey)), "不支持")
	wantInvalid(t, errOnly(MarshalPrivateKeyPEM(nil)), "不支持")
	wantInvalid(t, errOnly(MarshalPrivateKeyPEM((*sm2.PrivateKey)(nil))), "缺少")
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// --- certificates ---

func TestSelfSignedSM2AndParseCertificate(t *testing.T) {
	key, _ := GenerateSM2Key()
	c, err := SelfSignedSM2("ihos 签名服务测试", key, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "ihos 签名服务测试" || c.SignatureAlgorithm != smx509.SM2WithSM3 {
		t.Errorf("subject %v, algorithm %v", c.Subject, c.SignatureAlgorithm)
	}
	if !c.IsCA || c.KeyUsage&smx509.KeyUsageContentCommitment == 0 || c.KeyUsage&smx509.KeyUsageCertSign == 0 {
		t.Errorf("IsCA %v, KeyUsage %v", c.IsCA, c.KeyUsage)
	}
	if !samePublicKey(c.PublicKey, key.Public()) {
		t.Error("certificate is not for the key")
	}
	if d := c.NotAfter.Sub(time.Now()); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("NotAfter in %v", d)
	}
	if !c.NotBefore.Before(time.Now()) {
		t.Errorf("NotBefore %v is in the future", c.NotBefore)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Fatalf("self-signature: %v", err)
	}
	pool := smx509.NewCertPool()
	pool.AddCert(c)
	if _, err := c.Verify(smx509.VerifyOptions{Roots: pool}); err != nil {
		t.Fatalf("chain: %v", err)
	}

	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	b64 := base64.StdEncoding.EncodeToString(c.Raw)
	var wrapped strings.Builder
	for i := 0; i < len(b64); i += 64 {
		wrapped.WriteString(b64[i:min(i+64, len(b64))] + "\r\n")
	}
	keyPEM, _ := MarshalPrivateKeyPEM(key)
	for name, in := range map[string][]byte{
		"PEM":             certPEM,
		"PEM after a key": append(bytes.Clone(keyPEM), certPEM...),
		"PEM, spaces":     append([]byte("\n  "), certPEM...),
		"DER":             c.Raw,
		"base64":          []byte(b64),
		"base64 wrapped":  []byte(wrapped.String()),
	} {
		got, err := ParseCertificate(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !got.Equal(c) {
			t.Fatalf("%s: parsed another certificate", name)
		}
	}

	// OpenSSL's certificate: parsed, self-signature verified (see also interop_test.go).
	oc, err := ParseCertificate(readTestdata(t, "openssl-sm2-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := oc.CheckSignatureFrom(oc); err != nil {
		t.Fatalf("OpenSSL certificate self-signature: %v", err)
	}
	if oc.Subject.CommonName != "OpenSSL SM2 测试证书" {
		t.Errorf("CN = %q", oc.Subject.CommonName)
	}
	ok, _ := ParsePrivateKeyPEM(readTestdata(t, "openssl-sm2-key.pem"))
	if !samePublicKey(oc.PublicKey, ok.Public()) {
		t.Error("OpenSSL certificate and key do not match")
	}
	if err := VerifyData(oc.PublicKey, readTestdata(t, "openssl-sm2.data"), readTestdata(t, "openssl-sm2.sig")); err != nil {
		t.Fatalf("OpenSSL signature: %v", err)
	}

	// Garbled and oversized input: clear errors.
	trunc := c.Raw[:len(c.Raw)-10]
	flipped := bytes.Clone(c.Raw)
	flipped[4] ^= 0xff
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "为空"},
		{"blank", []byte(" \n"), "为空"},
		{"truncated DER", trunc, "损坏"},
		{"garbled DER", flipped, "损坏"},
		{"trailing data", append(bytes.Clone(c.Raw), 0), "损坏"},
		{"not base64", []byte("这不是证书"), "无法识别"},
		{"base64 of garbage", []byte(base64.StdEncoding.EncodeToString([]byte("garbage"))), "损坏"},
		{"PEM without certificate", keyPEM, "没有证书"},
		{"broken PEM", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n"), "没有证书"},
		{"oversized", append(bytes.Clone(certPEM), bytes.Repeat([]byte{'\n'}, maxCertInput)...), "过大"},
	} {
		_, err := ParseCertificate(tc.in)
		if err == nil {
			t.Fatalf("%s: accepted", tc.name)
		}
		wantInvalid(t, err, tc.want)
	}

	wantInvalid(t, errOnly(SelfSignedSM2("", key, time.Hour)), "CN")
	wantInvalid(t, errOnly(SelfSignedSM2("x", key, 0)), "有效期")
	wantInvalid(t, errOnly(SelfSignedSM2("x", nil, time.Hour)), "缺少")
}

// --- benchmarks ---

// The figures are signatures (verifications) per second over a 1 KiB document,
// all goroutines together; run with -cpu 1,2 to see the scaling.
func BenchmarkSM2Sign(b *testing.B) {
	key := gmtKey(b)
	data := bytes.Repeat([]byte("电子处方"), 1024/12+1)[:1024]
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := SignData(key, data); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkSM2Verify(b *testing.B) {
	key := gmtKey(b)
	data := bytes.Repeat([]byte("电子处方"), 1024/12+1)[:1024]
	sig, err := SignData(key, data)
	if err != nil {
		b.Fatal(err)
	}
	pub := key.Public()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := VerifyData(pub, data, sig); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
