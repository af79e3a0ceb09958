package paychannel

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"
	"github.com/emmansun/gmsm/smx509"

	"ihos/certs"
)

// The two authentication types of the Authorization header, and the value
// of an answer's or a notify's Wechatpay-Signature-Type header. The
// algorithm follows the merchant's API key: an RSA-2048 key signs
// SHA256withRSA, an SM2 key (the channel's 国密 option) signs SM2 with SM3
// over the default user id 1234567812345678 (DER r‖s). The signed message
// is the same for both.
const (
	AuthScheme    = "WECHATPAY2-SHA256-RSA2048"
	AuthSchemeSM2 = "WECHATPAY2-SM2-WITH-SM3"
)

// The headers the channel signs its answers and notifies with.
const (
	HeaderTimestamp = "Wechatpay-Timestamp"
	HeaderNonce     = "Wechatpay-Nonce"
	HeaderSignature = "Wechatpay-Signature"
	HeaderSerial    = "Wechatpay-Serial"
	HeaderRequestID = "Request-ID"
	// HeaderSignatureType names the algorithm of Wechatpay-Signature:
	// AuthScheme or AuthSchemeSM2. Absent means AuthScheme.
	HeaderSignatureType = "Wechatpay-Signature-Type"
)

// The resource encryption algorithms, each with a 12-byte nonce and a
// 16-byte tag after the ciphertext. AlgorithmAESGCM is AES-256-GCM under the
// 32-byte APIv3 key; AlgorithmSM4GCM (国密 merchants) is SM4-GCM under the
// first 128 bits of SM3(APIv3 key).
const (
	AlgorithmAESGCM = "AEAD_AES_256_GCM"
	AlgorithmSM4GCM = "AEAD_SM4_GCM"
)

// SchemeOf is the authentication type a key signs with: AuthScheme for an
// RSA key, AuthSchemeSM2 for an SM2 key; "" for any other key.
func SchemeOf(key any) string {
	switch k := key.(type) {
	case *rsa.PrivateKey, *rsa.PublicKey:
		return AuthScheme
	case *sm2.PrivateKey:
		return AuthSchemeSM2
	case *ecdsa.PublicKey:
		if k != nil && k.Curve == sm2.P256() {
			return AuthSchemeSM2
		}
	}
	return ""
}

// ResourceAlgorithm is the notify encryption that goes with a scheme.
func ResourceAlgorithm(scheme string) string {
	if scheme == AuthSchemeSM2 {
		return AlgorithmSM4GCM
	}
	return AlgorithmAESGCM
}

// RequestMessage is the string a merchant signs for one request: method,
// path with query, Unix timestamp, nonce and body, each ending in "\n".
// The body is the exact bytes sent ("" for GET).
func RequestMessage(method, pathQuery string, timestamp int64, nonce string, body []byte) string {
	return method + "\n" + pathQuery + "\n" + strconv.FormatInt(timestamp, 10) + "\n" + nonce + "\n" + string(body) + "\n"
}

// ResponseMessage is the string the channel signs for an answer or a notify:
// the Wechatpay-Timestamp and Wechatpay-Nonce header values and the exact
// body bytes, each ending in "\n".
func ResponseMessage(timestamp, nonce string, body []byte) string {
	return timestamp + "\n" + nonce + "\n" + string(body) + "\n"
}

// Sign returns the base64 signature of msg: SHA256withRSA (PKCS #1 v1.5)
// with an RSA key, SM2 with SM3 and the default user id (DER) with an SM2
// key.
func Sign(key crypto.Signer, msg string) (string, error) {
	var sig []byte
	var err error
	switch k := key.(type) {
	case *rsa.PrivateKey:
		h := sha256.Sum256([]byte(msg))
		sig, err = rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:])
	case *sm2.PrivateKey:
		sig, err = certs.SignData(k, []byte(msg))
	default:
		return "", fmt.Errorf("paychannel: cannot sign with a %T key", key)
	}
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verify checks a signature made by Sign with the private key of pub.
func Verify(pub crypto.PublicKey, msg, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		h := sha256.Sum256([]byte(msg))
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig)
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != sm2.P256() {
			break
		}
		return certs.VerifySM2WithUID(k, nil, []byte(msg), sig)
	}
	return fmt.Errorf("paychannel: cannot verify with a %T key", pub)
}

// NewNonce returns a random 32-character upper-case hex string, the form of
// nonce_str and Wechatpay-Nonce.
func NewNonce() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// Auth is the content of an Authorization header.
type Auth struct {
	Scheme    string // AuthScheme ("" means it) or AuthSchemeSM2
	MchID     string
	Nonce     string
	Timestamp int64
	SerialNo  string
	Signature string
}

// String formats the header value.
func (a Auth) String() string {
	scheme := a.Scheme
	if scheme == "" {
		scheme = AuthScheme
	}
	return fmt.Sprintf(`%s mchid="%s",nonce_str="%s",timestamp="%d",serial_no="%s",signature="%s"`,
		scheme, a.MchID, a.Nonce, a.Timestamp, a.SerialNo, a.Signature)
}

// ParseAuth reads an Authorization header value. The five parameters may
// come in any order, as the channel documents.
func ParseAuth(h string) (Auth, error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || scheme != AuthScheme && scheme != AuthSchemeSM2 {
		return Auth{}, errors.New("authorization scheme is neither " + AuthScheme + " nor " + AuthSchemeSM2)
	}
	a := Auth{Scheme: scheme}
	seen := map[string]bool{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return Auth{}, fmt.Errorf("malformed authorization parameter %q", part)
		}
		v = v[1 : len(v)-1]
		seen[k] = true
		switch k {
		case "mchid":
			a.MchID = v
		case "nonce_str":
			a.Nonce = v
		case "serial_no":
			a.SerialNo = v
		case "signature":
			a.Signature = v
		case "timestamp":
			ts, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Auth{}, fmt.Errorf("timestamp %q is not a number", v)
			}
			a.Timestamp = ts
		}
	}
	for _, k := range []string{"mchid", "nonce_str", "timestamp", "serial_no", "signature"} {
		if !seen[k] {
			return Auth{}, fmt.Errorf("authorization lacks %s", k)
		}
	}
	return a, nil
}

// Resource is an encrypted object in a notify (and in the certificate
// download of the real channel).
type Resource struct {
	OriginalType   string `json:"original_type"` // "transaction" or "refund"
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"` // base64 of ciphertext || tag
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"` // 12 characters, used as the GCM nonce bytes
}

// EncryptResource encrypts plaintext under the 32-byte APIv3 key with
// AlgorithmAESGCM.
func EncryptResource(apiV3Key []byte, originalType, associatedData string, plaintext []byte) (Resource, error) {
	return EncryptResourceWith(AlgorithmAESGCM, apiV3Key, originalType, associatedData, plaintext)
}

// EncryptResourceWith encrypts plaintext with algorithm (AlgorithmAESGCM or
// AlgorithmSM4GCM) under the key derived from the APIv3 key.
func EncryptResourceWith(algorithm string, apiV3Key []byte, originalType, associatedData string, plaintext []byte) (Resource, error) {
	aead, err := newAEAD(algorithm, apiV3Key)
	if err != nil {
		return Resource{}, err
	}
	nonce := NewNonce()[:12]
	ct := aead.Seal(nil, []byte(nonce), plaintext, []byte(associatedData))
	return Resource{OriginalType: originalType, Algorithm: algorithm, Ciphertext: base64.StdEncoding.EncodeToString(ct),
		AssociatedData: associatedData, Nonce: nonce}, nil
}

// DecryptResource decrypts and authenticates r under the APIv3 key, with
// the algorithm r names.
func DecryptResource(apiV3Key []byte, r Resource) ([]byte, error) {
	aead, err := newAEAD(r.Algorithm, apiV3Key)
	if err != nil {
		return nil, err
	}
	if len(r.Nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("nonce has %d bytes, want %d", len(r.Nonce), aead.NonceSize())
	}
	ct, err := base64.StdEncoding.DecodeString(r.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("ciphertext is not base64: %w", err)
	}
	return aead.Open(nil, []byte(r.Nonce), ct, []byte(r.AssociatedData))
}

// newAEAD returns the resource cipher: AES-256-GCM keyed by the APIv3 key
// itself, or SM4-GCM keyed by the first 16 bytes of its SM3 digest (SM4
// keys are 128 bits).
func newAEAD(algorithm string, apiV3Key []byte) (cipher.AEAD, error) {
	if len(apiV3Key) != 32 {
		return nil, fmt.Errorf("APIv3 key has %d bytes, want 32", len(apiV3Key))
	}
	var block cipher.Block
	var err error
	switch algorithm {
	case AlgorithmAESGCM:
		block, err = aes.NewCipher(apiV3Key)
	case AlgorithmSM4GCM:
		k := sm3.Sum(apiV3Key)
		block, err = sm4.NewCipher(k[:16])
	default:
		return nil, fmt.Errorf("unsupported algorithm %q", algorithm)
	}
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ParsePrivateKeyPEM reads a merchant or platform private key: RSA in
// PKCS #8 ("PRIVATE KEY", as the merchant's apiclient_key.pem) or PKCS #1
// ("RSA PRIVATE KEY"), or SM2 in PKCS #8 or SEC 1 (the 国密 certificate's
// key). It returns *rsa.PrivateKey or *sm2.PrivateKey.
func ParsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	k, err := certs.ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, err
	}
	if SchemeOf(k) == "" {
		return nil, fmt.Errorf("key is %T, want RSA or SM2", k)
	}
	return k, nil
}

// MarshalPrivateKeyPEM writes an RSA or SM2 key as PKCS #8 PEM.
func MarshalPrivateKeyPEM(key crypto.Signer) []byte {
	der, err := smx509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err) // cannot fail for an RSA or SM2 key
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// MarshalPublicKeyPEM writes an RSA or SM2 public key as PKIX "PUBLIC KEY" PEM.
func MarshalPublicKeyPEM(pub crypto.PublicKey) []byte {
	der, err := smx509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePublicKeyPEM reads an RSA or SM2 public key from a "PUBLIC KEY" PEM
// (the channel's public-key mode) or a "CERTIFICATE" PEM (a platform
// certificate). serial is the certificate's serial number in upper-case hex,
// the form Wechatpay-Serial carries; "" for a bare key. The key is
// *rsa.PublicKey or an *ecdsa.PublicKey on the SM2 curve.
func ParsePublicKeyPEM(b []byte) (pub crypto.PublicKey, serial string, err error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, "", errors.New("no PEM block")
	}
	var k any
	switch blk.Type {
	case "PUBLIC KEY":
		k, err = smx509.ParsePKIXPublicKey(blk.Bytes)
	case "CERTIFICATE":
		var cert *smx509.Certificate
		cert, err = smx509.ParseCertificate(blk.Bytes)
		if err == nil {
			k, serial = cert.PublicKey, strings.ToUpper(cert.SerialNumber.Text(16))
		}
	default:
		return nil, "", fmt.Errorf("PEM block %q is neither a public key nor a certificate", blk.Type)
	}
	if err != nil {
		return nil, "", err
	}
	if SchemeOf(k) == "" {
		return nil, "", fmt.Errorf("key is %T, want RSA or SM2", k)
	}
	return k, serial, nil
}

// CertSerial is a certificate's serial number as the channel writes it:
// upper-case hex without separators.
func CertSerial(cert *x509.Certificate) string {
	return strings.ToUpper(cert.SerialNumber.Text(16))
}
