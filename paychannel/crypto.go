package paychannel

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
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
)

// AuthScheme is the authentication type of the Authorization header.
const AuthScheme = "WECHATPAY2-SHA256-RSA2048"

// The headers the channel signs its answers and notifies with.
const (
	HeaderTimestamp = "Wechatpay-Timestamp"
	HeaderNonce     = "Wechatpay-Nonce"
	HeaderSignature = "Wechatpay-Signature"
	HeaderSerial    = "Wechatpay-Serial"
	HeaderRequestID = "Request-ID"
)

// AlgorithmAESGCM is the only resource encryption algorithm: AES-256-GCM
// under the 32-byte APIv3 key, a 12-byte nonce and a 16-byte tag after the
// ciphertext.
const AlgorithmAESGCM = "AEAD_AES_256_GCM"

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

// Sign returns base64(SHA256withRSA(msg)), PKCS #1 v1.5 as the channel uses.
func Sign(key *rsa.PrivateKey, msg string) (string, error) {
	h := sha256.Sum256([]byte(msg))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, h[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verify checks a signature made by Sign.
func Verify(pub *rsa.PublicKey, msg, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("signature is not base64: %w", err)
	}
	h := sha256.Sum256([]byte(msg))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig)
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
	MchID     string
	Nonce     string
	Timestamp int64
	SerialNo  string
	Signature string
}

// String formats the header value.
func (a Auth) String() string {
	return fmt.Sprintf(`%s mchid="%s",nonce_str="%s",timestamp="%d",serial_no="%s",signature="%s"`,
		AuthScheme, a.MchID, a.Nonce, a.Timestamp, a.SerialNo, a.Signature)
}

// ParseAuth reads an Authorization header value. The five parameters may
// come in any order, as the channel documents.
func ParseAuth(h string) (Auth, error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || scheme != AuthScheme {
		return Auth{}, errors.New("authorization scheme is not " + AuthScheme)
	}
	var a Auth
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

// EncryptResource encrypts plaintext under the 32-byte APIv3 key.
func EncryptResource(apiV3Key []byte, originalType, associatedData string, plaintext []byte) (Resource, error) {
	aead, err := newGCM(apiV3Key)
	if err != nil {
		return Resource{}, err
	}
	nonce := NewNonce()[:12]
	ct := aead.Seal(nil, []byte(nonce), plaintext, []byte(associatedData))
	return Resource{OriginalType: originalType, Algorithm: AlgorithmAESGCM, Ciphertext: base64.StdEncoding.EncodeToString(ct),
		AssociatedData: associatedData, Nonce: nonce}, nil
}

// DecryptResource decrypts and authenticates r under the APIv3 key.
func DecryptResource(apiV3Key []byte, r Resource) ([]byte, error) {
	if r.Algorithm != AlgorithmAESGCM {
		return nil, fmt.Errorf("unsupported algorithm %q", r.Algorithm)
	}
	aead, err := newGCM(apiV3Key)
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

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("APIv3 key has %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ParsePrivateKeyPEM reads an RSA private key in PKCS #8 ("PRIVATE KEY", as
// the merchant's apiclient_key.pem) or PKCS #1 ("RSA PRIVATE KEY") PEM.
func ParsePrivateKeyPEM(b []byte) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	switch blk.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("key is %T, want RSA", k)
		}
		return rk, nil
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(blk.Bytes)
	}
	return nil, fmt.Errorf("PEM block %q is not a private key", blk.Type)
}

// MarshalPrivateKeyPEM writes key as PKCS #8 PEM.
func MarshalPrivateKeyPEM(key *rsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err) // cannot fail for an RSA key
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// MarshalPublicKeyPEM writes pub as PKIX "PUBLIC KEY" PEM.
func MarshalPublicKeyPEM(pub *rsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePublicKeyPEM reads an RSA public key from a "PUBLIC KEY" PEM (the
// channel's public-key mode) or a "CERTIFICATE" PEM (a platform
// certificate). serial is the certificate's serial number in upper-case hex,
// the form Wechatpay-Serial carries; "" for a bare key.
func ParsePublicKeyPEM(b []byte) (pub *rsa.PublicKey, serial string, err error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, "", errors.New("no PEM block")
	}
	var k any
	switch blk.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(blk.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(blk.Bytes)
		if err == nil {
			k, serial = cert.PublicKey, CertSerial(cert)
		}
	default:
		return nil, "", fmt.Errorf("PEM block %q is neither a public key nor a certificate", blk.Type)
	}
	if err != nil {
		return nil, "", err
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, "", fmt.Errorf("key is %T, want RSA", k)
	}
	return rk, serial, nil
}

// CertSerial is a certificate's serial number as the channel writes it:
// upper-case hex without separators.
func CertSerial(cert *x509.Certificate) string {
	return strings.ToUpper(cert.SerialNumber.Text(16))
}
