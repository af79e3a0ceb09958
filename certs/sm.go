package certs

// SM2/SM3/SM4 primitives the signing service builds on (GM/T 0029 style signing
// server, PKCS#7 per GM/T 0010), on github.com/emmansun/gmsm. The functions are
// deliberately few and explicit: every caller gets the same choices (SM3withSM2
// with the GM/T 0009 default user id, DER r‖s signatures, SM4 with PKCS#7
// padding or standard GCM), so signatures and ciphertexts made here interoperate
// with OpenSSL 3, hospital CA signing servers and regulators' verifiers without
// per-call tuning. Errors a user could see are *ihos.Error with a Chinese message;
// the technical cause is kept in Err for the log.

import (
	"bytes"
	"crypto"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"
	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"ihos"
)

// DefaultUID is the SM2 user identity (distinguishing id) that GM/T 0009 fixes for
// when the parties have agreed on no other. SignData and VerifyData always use it,
// because that is what signing servers, CFCA/hospital CA tools and OpenSSL's
// `-sigopt distid:1234567812345678` expect. Note that OpenSSL 3.0 does NOT apply it
// by default in dgst/pkeyutl: the distid must be given explicitly there.
const DefaultUID = "1234567812345678"

// Limits on untrusted input.
const (
	// maxCertInput bounds what ParseCertificate and ParsePrivateKeyPEM accept. Real
	// certificates and keys are a few KB (an RSA-8192 key is ~6.5 KB of PEM); the
	// bound keeps a hostile upload from costing memory and parse time.
	maxCertInput = 64 << 10
	// maxUIDLen is the longest SM2 user id: Z carries its length in bits in 16 bits.
	maxUIDLen = 0x1fff
	sm4KeyLen = 16
	// gcmNonceLen and gcmTagLen are the RFC 8998 / NIST SP 800-38D defaults; other
	// sizes are refused so every peer computes the same thing.
	gcmNonceLen = 12
	gcmTagLen   = 16
)

// ErrSignatureInvalid is the cause (errors.Is) of every VerifyData /
// VerifySM2WithUID error that says the signature is malformed or does not match.
// Errors about the key itself (unsupported type, point not on the curve) do not
// wrap it, so callers can tell "this document was tampered with" from "this
// certificate cannot be used".
var ErrSignatureInvalid = errors.New("certs: invalid signature")

// GenerateSM2Key returns a new SM2 key on the SM2 recommended curve (GB/T 32918.5),
// from crypto/rand.
func GenerateSM2Key() (*sm2.PrivateKey, error) {
	k, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		return nil, ihos.Internal(fmt.Errorf("certs: generate SM2 key: %w", err))
	}
	return k, nil
}

// SM3Sum returns the SM3 hash (GB/T 32905) of data.
func SM3Sum(data []byte) [32]byte { return sm3.Sum(data) }

// SignData signs data with the key's natural algorithm, so a caller holding any
// supported key gets the one signature form verifiers expect for it:
//
//   - SM2 (*sm2.PrivateKey, an *ecdsa.PrivateKey on the SM2 curve, or an opaque
//     crypto.Signer whose public key is SM2): SM3withSM2 per GB/T 32918.2 with Z
//     computed over DefaultUID; the signature is DER SEQUENCE{r, s}.
//   - RSA (≥ 2048 bits): PKCS#1 v1.5 over SHA-256.
//   - ECDSA on P-256/P-384/P-521: ASN.1 DER over SHA-256.
//
// Data is the message itself, never a pre-computed digest.
func SignData(key crypto.Signer, data []byte) ([]byte, error) {
	if key == nil {
		return nil, ihos.Errorf(ihos.EInvalid, "缺少签名私钥")
	}
	switch k := key.(type) {
	case *sm2.PrivateKey:
		if k == nil {
			return nil, ihos.Errorf(ihos.EInvalid, "缺少签名私钥")
		}
		return signSM2(k, []byte(DefaultUID), data)
	case *ecdsa.PrivateKey:
		if k == nil {
			return nil, ihos.Errorf(ihos.EInvalid, "缺少签名私钥")
		}
		if k.Curve == sm2.P256() {
			sk, err := new(sm2.PrivateKey).FromECPrivateKey(k)
			if err != nil {
				return nil, invalid(err, "SM2 私钥无效")
			}
			return signSM2(sk, []byte(DefaultUID), data)
		}
	}

	if k, ok := key.(*rsa.PrivateKey); ok && k == nil {
		return nil, ihos.Errorf(ihos.EInvalid, "缺少签名私钥")
	}
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		if pub == nil || pub.Curve == nil {
			return nil, ihos.Errorf(ihos.EInvalid, "签名私钥没有公钥")
		}
		if pub.Curve == sm2.P256() {
			return signOpaqueSM2(key, pub, data)
		}
		if err := checkECDSACurve(pub); err != nil {
			return nil, err
		}
		h := sha256.Sum256(data)
		sig, err := key.Sign(rand.Reader, h[:], crypto.SHA256)
		if err != nil {
			return nil, invalid(err, "ECDSA 签名失败：私钥无效")
		}
		return sig, nil
	case *rsa.PublicKey:
		if pub == nil || pub.N == nil {
			return nil, ihos.Errorf(ihos.EInvalid, "签名私钥没有公钥")
		}
		if bits := pub.N.BitLen(); bits < minRSABits {
			return nil, ihos.Errorf(ihos.EInvalid, "RSA 私钥只有 %d 位，签名至少需要 %d 位", bits, minRSABits)
		}
		h := sha256.Sum256(data)
		sig, err := key.Sign(rand.Reader, h[:], crypto.SHA256)
		if err != nil {
			return nil, invalid(err, "RSA 签名失败：私钥无效")
		}
		return sig, nil
	default:
		return nil, errUnsupportedKey(pub)
	}
}

// signOpaqueSM2 signs with an SM2 key held elsewhere (an HSM or a USB key behind a
// crypto.Signer). gmsm's convention for such signers is raw data plus an
// SM2SignerOption carrying the uid; since a third-party signer may ignore the
// option, the result is verified before it is returned.
func signOpaqueSM2(key crypto.Signer, pub *ecdsa.PublicKey, data []byte) ([]byte, error) {
	sig, err := key.Sign(rand.Reader, data, sm2.NewSM2SignerOption(true, []byte(DefaultUID)))
	if err != nil {
		return nil, invalid(err, "SM2 签名失败")
	}
	if err := VerifySM2WithUID(pub, []byte(DefaultUID), data, sig); err != nil {
		return nil, invalid(err, "SM2 签名设备返回的签名无法验证，请检查签名设备")
	}
	return sig, nil
}

// SignSM2WithUID signs data with SM3withSM2 using the given user id in Z (GB/T
// 32918.2 §5.5 / GM/T 0009 §8). It is for peers that agreed on another id than
// DefaultUID (some provincial platforms use the signer's ID number or email). An
// empty uid means DefaultUID, as in GM/T 0009 and gmsm.
func SignSM2WithUID(key *sm2.PrivateKey, uid, data []byte) ([]byte, error) {
	if key == nil {
		return nil, ihos.Errorf(ihos.EInvalid, "缺少签名私钥")
	}
	if len(uid) == 0 {
		uid = []byte(DefaultUID)
	}
	return signSM2(key, uid, data)
}

// signSM2 computes e = SM3(Z ‖ data) itself and signs e. gmsm's own "sign the raw
// message" path refuses an empty message, although SM3withSM2 over empty data is
// well defined; hashing here keeps SignData total over its input.
func signSM2(key *sm2.PrivateKey, uid, data []byte) ([]byte, error) {
	if len(uid) > maxUIDLen {
		return nil, errUIDTooLong(len(uid))
	}
	e, err := sm2.CalculateSM2Hash(&key.PublicKey, data, uid)
	if err != nil {
		return nil, invalid(err, "SM2 私钥无效")
	}
	// opts nil: e is already the digest, no second Z is mixed in.
	sig, err := sm2.SignASN1(rand.Reader, key, e, nil)
	if err != nil {
		return nil, invalid(err, "SM2 签名失败：私钥无效")
	}
	return sig, nil
}

// VerifyData verifies a signature made by SignData (or by any conforming
// implementation: OpenSSL, a signing server, a hospital CA) over data with pub:
// SM3withSM2 over DefaultUID for SM2 keys, PKCS#1 v1.5 SHA-256 for RSA, ASN.1
// ECDSA SHA-256 for P-256/P-384/P-521. It returns nil, or an EInvalid error whose
// Chinese message says what is wrong; malformed or mismatching signatures wrap
// ErrSignatureInvalid. It does not panic on any input.
func VerifyData(pub crypto.PublicKey, data, sig []byte) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil || k.X == nil || k.Y == nil {
			return ihos.Errorf(ihos.EInvalid, "缺少验签公钥")
		}
		if k.Curve == sm2.P256() {
			return verifySM2(k, []byte(DefaultUID), data, sig)
		}
		return verifyECDSA(k, data, sig)
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return ihos.Errorf(ihos.EInvalid, "缺少验签公钥")
		}
		return verifyRSA(k, data, sig)
	case nil:
		return ihos.Errorf(ihos.EInvalid, "缺少验签公钥")
	default:
		return errUnsupportedKey(pub)
	}
}

// VerifySM2WithUID verifies an SM3withSM2 signature whose Z was computed over uid
// (empty uid: DefaultUID). See SignSM2WithUID.
func VerifySM2WithUID(pub *ecdsa.PublicKey, uid, data, sig []byte) error {
	if pub == nil || pub.Curve == nil || pub.X == nil || pub.Y == nil {
		return ihos.Errorf(ihos.EInvalid, "缺少验签公钥")
	}
	if pub.Curve != sm2.P256() {
		return ihos.Errorf(ihos.EInvalid, "公钥不是 SM2 公钥（曲线 %s）", pub.Curve.Params().Name)
	}
	if len(uid) == 0 {
		uid = []byte(DefaultUID)
	}
	return verifySM2(pub, uid, data, sig)
}

func verifySM2(pub *ecdsa.PublicKey, uid, data, sig []byte) error {
	if len(uid) > maxUIDLen {
		return errUIDTooLong(len(uid))
	}
	if err := checkECSignature(sig, pub.Curve.Params().N, "SM2"); err != nil {
		return err
	}
	// CalculateSM2Hash rejects a public key that is not a point on the curve.
	e, err := sm2.CalculateSM2Hash(pub, data, uid)
	if err != nil {
		return invalid(err, "SM2 公钥无效：不是曲线上的点")
	}
	if !sm2.VerifyASN1(pub, e, sig) {
		return invalid(ErrSignatureInvalid, "SM2 签名验证失败：签名与原文、公钥或用户标识（UID）不匹配")
	}
	return nil
}

func verifyECDSA(pub *ecdsa.PublicKey, data, sig []byte) error {
	if err := checkECDSACurve(pub); err != nil {
		return err
	}
	if _, err := pub.Bytes(); err != nil {
		return invalid(err, "ECDSA 公钥无效：不是曲线上的点")
	}
	if err := checkECSignature(sig, pub.Curve.Params().N, "ECDSA"); err != nil {
		return err
	}
	h := sha256.Sum256(data)
	if !ecdsa.VerifyASN1(pub, h[:], sig) {
		return invalid(ErrSignatureInvalid, "ECDSA 签名验证失败：签名与原文或公钥不匹配")
	}
	return nil
}

func verifyRSA(pub *rsa.PublicKey, data, sig []byte) error {
	if len(sig) == 0 {
		return invalid(ErrSignatureInvalid, "签名为空")
	}
	if len(sig) != pub.Size() {
		return invalid(ErrSignatureInvalid, "RSA 签名长度应为 %d 字节，实际为 %d 字节", pub.Size(), len(sig))
	}
	h := sha256.Sum256(data)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
		if errors.Is(err, rsa.ErrVerification) {
			return invalid(ErrSignatureInvalid, "RSA 签名验证失败：签名与原文或公钥不匹配")
		}
		// Anything else is about the key (too small, bad exponent).
		return invalid(err, "RSA 公钥无法用于验签")
	}
	return nil
}

// checkECSignature checks that sig is exactly one strict-DER SEQUENCE{r, s} with
// 1 ≤ r, s < n, so a garbled signature is reported as malformed instead of as a
// mismatch, and the algorithm name tells the user which format was expected.
func checkECSignature(sig []byte, n *big.Int, alg string) error {
	if len(sig) == 0 {
		return invalid(ErrSignatureInvalid, "签名为空")
	}
	var (
		inner cryptobyte.String
		r, s  = new(big.Int), new(big.Int)
	)
	in := cryptobyte.String(sig)
	if !in.ReadASN1(&inner, cbasn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(r) || !inner.ReadASN1Integer(s) || !inner.Empty() {
		return invalid(ErrSignatureInvalid, "签名格式错误：不是 DER 编码的 %s 签名值 SEQUENCE{r, s}（若是 64 字节 r‖s 裸签名，请先转换为 DER）", alg)
	}
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(n) >= 0 || s.Cmp(n) >= 0 {
		return invalid(ErrSignatureInvalid, "签名格式错误：%s 签名值 r 或 s 超出取值范围", alg)
	}
	return nil
}

func checkECDSACurve(pub *ecdsa.PublicKey) error {
	switch pub.Curve {
	case elliptic.P256(), elliptic.P384(), elliptic.P521():
		return nil
	}
	name := "未知"
	if p := pub.Curve.Params(); p != nil && p.Name != "" {
		name = p.Name
	}
	return ihos.Errorf(ihos.EInvalid, "不支持的椭圆曲线 %s（支持 SM2、P-256、P-384、P-521）", name)
}

func errUnsupportedKey(k any) error {
	return ihos.Errorf(ihos.EInvalid, "不支持的密钥类型 %T（支持 SM2、RSA、ECDSA）", k)
}

func errUIDTooLong(n int) error {
	return ihos.Errorf(ihos.EInvalid, "SM2 用户标识（UID）过长：%d 字节，最多 %d 字节", n, maxUIDLen)
}

// newSM4 checks the key length and returns the SM4 block cipher.
func newSM4(key []byte) (cipher.Block, error) {
	if len(key) != sm4KeyLen {
		return nil, ihos.Errorf(ihos.EInvalid, "SM4 密钥长度应为 16 字节，实际为 %d 字节", len(key))
	}
	b, err := sm4.NewCipher(key)
	if err != nil {
		return nil, invalid(err, "SM4 密钥无效")
	}
	return b, nil
}

// SM4CBCEncrypt encrypts plaintext with SM4-CBC and PKCS#7 padding: the format HIS,
// medical-insurance and many CA interfaces exchange, and what `openssl enc
// -sm4-cbc` produces. CBC has no integrity protection; prefer SM4GCMSeal unless a
// peer requires CBC, and never reuse an iv with the same key.
func SM4CBCEncrypt(key, iv, plaintext []byte) ([]byte, error) {
	b, err := newSM4(key)
	if err != nil {
		return nil, err
	}
	if len(iv) != sm4.BlockSize {
		return nil, ihos.Errorf(ihos.EInvalid, "SM4-CBC 初始向量（IV）长度应为 16 字节，实际为 %d 字节", len(iv))
	}
	// Pad into a fresh buffer: the caller's slice (and its spare capacity) is
	// never written.
	n := sm4.BlockSize - len(plaintext)%sm4.BlockSize
	out := make([]byte, len(plaintext)+n)
	copy(out, plaintext)
	for i := len(plaintext); i < len(out); i++ {
		out[i] = byte(n)
	}
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, out)
	return out, nil
}

// SM4CBCDecrypt reverses SM4CBCEncrypt. A length that is not a positive multiple
// of 16 or bad padding is an error (never a panic). The padding check runs in
// constant time, but the distinct error is still a padding oracle: do not return
// it to an unauthenticated remote party.
func SM4CBCDecrypt(key, iv, ciphertext []byte) ([]byte, error) {
	b, err := newSM4(key)
	if err != nil {
		return nil, err
	}
	if len(iv) != sm4.BlockSize {
		return nil, ihos.Errorf(ihos.EInvalid, "SM4-CBC 初始向量（IV）长度应为 16 字节，实际为 %d 字节", len(iv))
	}
	if len(ciphertext) == 0 || len(ciphertext)%sm4.BlockSize != 0 {
		return nil, ihos.Errorf(ihos.EInvalid, "SM4-CBC 密文长度应为 16 字节的正整数倍，实际为 %d 字节", len(ciphertext))
	}
	out := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, ciphertext)
	n, ok := pkcs7PadLen(out)
	if !ok {
		return nil, ihos.Errorf(ihos.EInvalid, "SM4-CBC 解密失败：填充无效（密钥、IV 不符或密文已损坏）")
	}
	return out[:len(out)-n], nil
}

// pkcs7PadLen returns the PKCS#7 padding length of a decrypted buffer (whose
// length is a positive multiple of the block size), examining the whole last
// block whatever its content, so the time taken does not depend on the padding.
func pkcs7PadLen(buf []byte) (int, bool) {
	last := buf[len(buf)-sm4.BlockSize:]
	n := int(last[sm4.BlockSize-1])
	good := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, sm4.BlockSize)
	for i := 0; i < sm4.BlockSize; i++ {
		// Bytes at positions ≥ BlockSize-n must equal n.
		inPad := subtle.ConstantTimeLessOrEq(sm4.BlockSize-n, i)
		eq := subtle.ConstantTimeByteEq(last[i], byte(n))
		good &= eq | (inPad ^ 1)
	}
	return n, good == 1
}

func newSM4GCM(key, nonce []byte) (cipher.AEAD, error) {
	b, err := newSM4(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != gcmNonceLen {
		return nil, ihos.Errorf(ihos.EInvalid, "SM4-GCM 随机数（nonce）长度应为 12 字节，实际为 %d 字节", len(nonce))
	}
	aead, err := cipher.NewGCMWithTagSize(b, gcmTagLen)
	if err != nil {
		return nil, ihos.Internal(fmt.Errorf("certs: SM4-GCM: %w", err))
	}
	return aead, nil
}

// SM4GCMSeal encrypts and authenticates plaintext (and authenticates aad) with
// standard GCM over SM4 (RFC 8998; 12-byte nonce, 16-byte tag appended to the
// ciphertext). The nonce must never repeat under one key.
func SM4GCMSeal(key, nonce, plaintext, aad []byte) ([]byte, error) {
	aead, err := newSM4GCM(key, nonce)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, nonce, plaintext, aad), nil
}

// SM4GCMOpen authenticates and decrypts what SM4GCMSeal produced. Any change to
// ciphertext, tag, nonce, aad or key gives an error and no plaintext.
func SM4GCMOpen(key, nonce, ciphertext, aad []byte) ([]byte, error) {
	aead, err := newSM4GCM(key, nonce)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < gcmTagLen {
		return nil, ihos.Errorf(ihos.EInvalid, "SM4-GCM 密文过短：%d 字节，至少应有 16 字节认证标签", len(ciphertext))
	}
	pt, err := aead.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, invalid(err, "SM4-GCM 解密失败：密文、附加数据或密钥不符（数据可能被篡改）")
	}
	return pt, nil
}

// MarshalPrivateKeyPEM returns key as unencrypted PKCS#8 PEM ("PRIVATE KEY"): the
// one format OpenSSL 3, gmsm and Java (Bouncy Castle) all read for SM2, RSA and
// ECDSA keys. SM2 keys are written as id-ecPublicKey on curve 1.2.156.10197.1.301,
// as OpenSSL does.
func MarshalPrivateKeyPEM(key crypto.Signer) ([]byte, error) {
	switch k := key.(type) {
	case *sm2.PrivateKey:
		if k == nil {
			return nil, ihos.Errorf(ihos.EInvalid, "缺少私钥")
		}
	case *ecdsa.PrivateKey:
		if k == nil {
			return nil, ihos.Errorf(ihos.EInvalid, "缺少私钥")
		}
		if k.Curve == sm2.P256() {
			break
		}
		if err := checkECDSACurve(&k.PublicKey); err != nil {
			return nil, err
		}
	case *rsa.PrivateKey:
		if k == nil {
			return nil, ihos.Errorf(ihos.EInvalid, "缺少私钥")
		}
	default:
		return nil, errUnsupportedKey(key)
	}
	der, err := smx509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, invalid(err, "私钥无法编码为 PKCS#8")
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der}), nil
}

// pemSM2Key is the PEM type OpenSSL 3.0 writes for an SM2 key in the traditional
// format (`openssl ec -in k.pem`): a SEC 1 ECPrivateKey on the SM2 curve.
const pemSM2Key = "SM2 PRIVATE KEY"

// ParsePrivateKeyPEM parses the first private key in PEM b: PKCS#8 ("PRIVATE KEY",
// what OpenSSL 3 writes), SEC 1 ("EC PRIVATE KEY" on SM2 or NIST curves, as older
// tools and `openssl ecparam -genkey` write, or "SM2 PRIVATE KEY", as `openssl ec`
// writes for SM2) or PKCS#1 ("RSA PRIVATE KEY"). It
// returns *sm2.PrivateKey for SM2 keys, *ecdsa.PrivateKey (P-256/384/521) or
// *rsa.PrivateKey. Encrypted keys are refused with a hint: the key file must be
// decrypted by the operator, never by a password in the configuration.
func ParsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	if len(b) > maxCertInput {
		return nil, ihos.Errorf(ihos.EInvalid, "私钥文件过大：%d 字节，最多 %d 字节", len(b), maxCertInput)
	}
	rest := b
	for sawPEM := false; ; sawPEM = true {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil && sawPEM {
			return nil, ihos.Errorf(ihos.EInvalid, "PEM 中没有私钥")
		}
		if blk == nil {
			return nil, ihos.Errorf(ihos.EInvalid, "不是 PEM 格式的私钥（应以 -----BEGIN PRIVATE KEY----- 开头）")
		}
		if _, enc := blk.Headers["Proc-Type"]; enc || blk.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, ihos.Errorf(ihos.EInvalid, "私钥已加密，不支持：请先用 openssl pkey -in 原文件 -out 新文件 解密后再导入")
		}
		var (
			k   any
			err error
		)
		switch blk.Type {
		case pemECParams, pemCert:
			continue // a key file may carry curve parameters or the certificate too
		case pemPKCS8:
			k, err = smx509.ParsePKCS8PrivateKey(blk.Bytes)
		case pemECKey, pemSM2Key:
			k, err = smx509.ParseTypedECPrivateKey(blk.Bytes)
		case pemRSAKey:
			k, err = smx509.ParsePKCS1PrivateKey(blk.Bytes)
		default:
			return nil, ihos.Errorf(ihos.EInvalid, "PEM 块类型 %q 不是私钥", blk.Type)
		}
		if err != nil {
			return nil, invalid(err, "私钥格式错误，无法解析（%s）", blk.Type)
		}
		switch k := k.(type) {
		case *sm2.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			if err := checkECDSACurve(&k.PublicKey); err != nil {
				return nil, err
			}
			return k, nil
		case *rsa.PrivateKey:
			return k, nil
		}
		return nil, errUnsupportedKey(k)
	}
}

// ParseCertificate parses one X.509 certificate (SM2, RSA or ECDSA) given as PEM
// (the first CERTIFICATE block), DER, or bare base64 of the DER — the form GM/T
// 0029 signing servers (SVS_ExportCert) and hospital CA APIs return. Input over
// 64 KB or that is none of these is refused with a Chinese message.
func ParseCertificate(b []byte) (*smx509.Certificate, error) {
	if len(b) > maxCertInput {
		return nil, ihos.Errorf(ihos.EInvalid, "证书过大：%d 字节，最多 %d 字节", len(b), maxCertInput)
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, ihos.Errorf(ihos.EInvalid, "证书为空")
	}
	var der []byte
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		rest := trimmed
		for der == nil {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				return nil, ihos.Errorf(ihos.EInvalid, "PEM 中没有证书（CERTIFICATE）块")
			}
			if blk.Type == pemCert {
				der = blk.Bytes
			}
		}
	case b[0] == 0x30:
		// DER: a SEQUENCE. (The base64 of a certificate starts with 'M', never '0'.)
		// b itself, untrimmed: DER may legitimately end in bytes that look like spaces.
		der = b
	default:
		decoded, err := base64.StdEncoding.DecodeString(string(removeSpace(trimmed)))
		if err != nil {
			return nil, invalid(err, "证书格式无法识别：应为 PEM、DER 或 Base64 编码的证书")
		}
		der = decoded
	}
	c, err := smx509.ParseCertificate(der)
	if err != nil {
		return nil, invalid(err, "证书内容损坏或格式错误，无法解析")
	}
	return c, nil
}

// removeSpace drops ASCII whitespace (line breaks in base64 text).
func removeSpace(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			out = append(out, c)
		}
	}
	return out
}

// SelfSignedSM2 makes a self-signed SM2-with-SM3 CA certificate for cn, valid from
// an hour ago (appliance clocks run slow) for validFor. It is for tests, demo
// installs and tools; production signing certificates come from a licensed CA.
// Key usage: digital signature, non-repudiation (content commitment) and
// certificate signing, so the same certificate can sign documents in a demo and
// issue test certificates.
func SelfSignedSM2(cn string, key *sm2.PrivateKey, validFor time.Duration) (*smx509.Certificate, error) {
	if key == nil {
		return nil, ihos.Errorf(ihos.EInvalid, "缺少 SM2 私钥")
	}
	if cn == "" {
		return nil, ihos.Errorf(ihos.EInvalid, "证书主题名称（CN）不能为空")
	}
	if validFor <= 0 {
		return nil, ihos.Errorf(ihos.EInvalid, "证书有效期必须大于零")
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, ihos.Internal(err)
	}
	start := now().Add(-backdate).UTC().Truncate(time.Second)
	tmpl := &smx509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             start,
		NotAfter:              start.Add(backdate + validFor),
		SignatureAlgorithm:    smx509.SM2WithSM3,
		KeyUsage:              smx509.KeyUsageDigitalSignature | smx509.KeyUsageContentCommitment | smx509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, invalid(err, "无法生成 SM2 自签名证书")
	}
	c, err := smx509.ParseCertificate(der)
	if err != nil {
		return nil, ihos.Internal(fmt.Errorf("certs: parse new certificate: %w", err))
	}
	return c, nil
}
