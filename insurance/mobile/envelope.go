package mobile

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	gmcipher "github.com/emmansun/gmsm/cipher"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm4"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"ihos"
	"ihos/certs"
)

// Envelope constants.
const (
	EncTypeSM4  = "SM4"
	SignTypeSM2 = "SM2"
	Version     = "2.0.1"
)

// Envelope is the transport envelope of every message between the hospital
// and the mobile payment centre, in both directions:
//
//	{"appId", "encData", "encType": "SM4", "signData", "signType": "SM2",
//	 "timestamp": <ms>, "version": "2.0.1"}
//
// Answers (and the hospital's answer to a 6302 notify) add code and message;
// REFERENCE.md does not name the answer fields, so code (0 = success) and
// message are this package's assumption, chosen because the public
// implementations answer that way. Code is a pointer so that a request,
// which has none, leaves it out.
type Envelope struct {
	AppID     string `json:"appId"`
	Code      *int   `json:"code,omitempty"`
	Message   string `json:"message,omitempty"`
	EncData   string `json:"encData"`
	EncType   string `json:"encType"`
	SignData  string `json:"signData"`
	SignType  string `json:"signType"`
	Timestamp int64  `json:"timestamp"` // Unix milliseconds
	Version   string `json:"version"`
}

// Time is the envelope's timestamp.
func (e Envelope) Time() time.Time { return time.UnixMilli(e.Timestamp) }

// DeriveSM4Key returns the SM4 key of the data encryption: the first 16
// characters of the upper-case hex of SM4-ECB/PKCS#7(key = the first 16
// bytes of appID, data = appSecret), taken as 16 ASCII bytes. This is the
// derivation REFERENCE.md describes; only the first cipher block matters, so
// the padding of appSecret does not change the key.
func DeriveSM4Key(appID, appSecret string) ([]byte, error) {
	if len(appID) < 16 {
		return nil, ihos.Errorf(ihos.EInvalid, "医保移动支付 appId 至少 16 位，实际 %d 位", len(appID))
	}
	if appSecret == "" {
		return nil, ihos.Errorf(ihos.EInvalid, "医保移动支付 appSecret 未配置")
	}
	ct, err := sm4ECBEncrypt([]byte(appID[:16]), []byte(appSecret))
	if err != nil {
		return nil, err
	}
	return []byte(strings.ToUpper(hex.EncodeToString(ct))[:16]), nil
}

// EncryptData returns encData for plaintext: upper-case hex of
// SM4-ECB/PKCS#7 under key (from DeriveSM4Key).
func EncryptData(key, plaintext []byte) (string, error) {
	ct, err := sm4ECBEncrypt(key, plaintext)
	if err != nil {
		return "", err
	}
	return strings.ToUpper(hex.EncodeToString(ct)), nil
}

// DecryptData reverses EncryptData (either hex case is read).
func DecryptData(key []byte, encData string) ([]byte, error) {
	ct, err := hex.DecodeString(encData)
	if err != nil || len(ct) == 0 || len(ct)%sm4.BlockSize != 0 {
		return nil, ihos.Errorf(ihos.EInvalid, "医保移动支付报文 encData 不是有效的 SM4 密文")
	}
	b, err := sm4.NewCipher(key)
	if err != nil {
		return nil, ihos.Errorf(ihos.EInvalid, "SM4 密钥无效")
	}
	out := make([]byte, len(ct))
	gmcipher.NewECBDecrypter(b).CryptBlocks(out, ct)
	n := int(out[len(out)-1])
	if n < 1 || n > sm4.BlockSize || !bytes.Equal(out[len(out)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		return nil, ihos.Errorf(ihos.EInvalid, "医保移动支付报文解密失败（密钥不符或密文损坏）")
	}
	return out[:len(out)-n], nil
}

func sm4ECBEncrypt(key, plaintext []byte) ([]byte, error) {
	b, err := sm4.NewCipher(key)
	if err != nil {
		return nil, ihos.Errorf(ihos.EInvalid, "SM4 密钥长度应为 16 字节，实际为 %d 字节", len(key))
	}
	n := sm4.BlockSize - len(plaintext)%sm4.BlockSize
	out := make([]byte, len(plaintext)+n)
	copy(out, plaintext)
	for i := len(plaintext); i < len(out); i++ {
		out[i] = byte(n)
	}
	gmcipher.NewECBEncrypter(b).CryptBlocks(out, out)
	return out, nil
}

// SigningString is the text signed with SM3withSM2 (user id = appSecret).
//
// REFERENCE.md gives it as the sorted `appId=…&data=…&…&version=2.0.1&key=
// <appSecret>`. This package reads that as follows, in line with the public
// implementation it comes from: every top-level envelope field except
// signData and encData, plus "data", sorted by name (byte order), each as
// name=value, fields with an empty value left out, joined by "&", and
// "&key=" + appSecret appended. "data" is the plaintext JSON of the message
// (what encData encrypts) in canonical form: object keys sorted at every
// depth, no insignificant space, no HTML escaping, numbers exactly as
// written. With no data (an error answer) the data field is left out. So a
// request signs
//
//	appId=…&data={…}&encType=SM4&signType=SM2&timestamp=…&version=2.0.1&key=…
//
// and an answer additionally code=… and message=… in their sorted places.
// (The public JavaScript variant also turns numbers into strings and drops
// empty members inside data; this package keeps data as it is, because the
// 2.0.1 reading in REFERENCE.md says nothing of it.)
func SigningString(e Envelope, data []byte, appSecret string) ([]byte, error) {
	pairs := map[string]string{
		"appId": e.AppID, "message": e.Message, "encType": e.EncType,
		"signType": e.SignType, "version": e.Version,
	}
	if e.Timestamp != 0 {
		pairs["timestamp"] = strconv.FormatInt(e.Timestamp, 10)
	}
	if e.Code != nil {
		pairs["code"] = strconv.Itoa(*e.Code)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		c, err := CanonicalJSON(data)
		if err != nil {
			return nil, err
		}
		pairs["data"] = string(c)
	}
	names := make([]string, 0, len(pairs))
	for k, v := range pairs {
		if v != "" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(pairs[k])
		b.WriteByte('&')
	}
	b.WriteString("key=")
	b.WriteString(appSecret)
	return b.Bytes(), nil
}

// CanonicalJSON rewrites JSON text with sorted keys, compact, without HTML
// escaping, numbers kept as written.
func CanonicalJSON(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, ihos.Errorf(ihos.EInvalid, "医保移动支付报文 data 不是合法的 JSON")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // maps are written with sorted keys
		return nil, ihos.Errorf(ihos.EInvalid, "医保移动支付报文 data 无法规范化")
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// asciiJSON escapes every non-ASCII character of JSON text as \uXXXX (UTF-16
// surrogate pairs beyond the BMP), as the public implementation does before
// encrypting, so the ciphertext does not depend on the peer's text encoding.
func asciiJSON(b []byte) []byte {
	var out bytes.Buffer
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r < utf8.RuneSelf:
			out.WriteByte(b[0])
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&out, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&out, `\u%04x`, r)
		}
		b = b[size:]
	}
	return out.Bytes()
}

// Sealer makes and opens envelopes for one side: AppID and AppSecret are
// shared by both sides; Key signs what this side sends; Peer verifies what
// the other side sends. The hospital's Sealer has the hospital key and the
// centre's public key, the centre's the other way round.
type Sealer struct {
	AppID     string
	AppSecret string
	Key       *sm2.PrivateKey
	Peer      *ecdsa.PublicKey
	Now       func() time.Time // nil: time.Now
}

func (s Sealer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Seal puts data (marshalled to JSON) into a signed, encrypted request
// envelope.
func (s Sealer) Seal(data any) (Envelope, error) { return s.seal(nil, "", data) }

// SealAnswer puts an answer into an envelope: code 0 and data for success,
// another code and message for a refusal (data nil).
func (s Sealer) SealAnswer(code int, message string, data any) (Envelope, error) {
	return s.seal(&code, message, data)
}

func (s Sealer) seal(code *int, message string, data any) (Envelope, error) {
	if s.Key == nil {
		return Envelope{}, ihos.Errorf(ihos.EInvalid, "医保移动支付签名私钥未配置")
	}
	e := Envelope{AppID: s.AppID, Code: code, Message: message, EncType: EncTypeSM4, SignType: SignTypeSM2,
		Timestamp: s.now().UnixMilli(), Version: Version}
	var plain []byte
	if data != nil {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(data); err != nil {
			return Envelope{}, ihos.Internal(fmt.Errorf("mobile: encode data: %w", err))
		}
		plain = bytes.TrimRight(b.Bytes(), "\n")
		key, err := DeriveSM4Key(s.AppID, s.AppSecret)
		if err != nil {
			return Envelope{}, err
		}
		if e.EncData, err = EncryptData(key, asciiJSON(plain)); err != nil {
			return Envelope{}, err
		}
	}
	msg, err := SigningString(e, plain, s.AppSecret)
	if err != nil {
		return Envelope{}, err
	}
	sig, err := certs.SignSM2WithUID(s.Key, []byte(s.AppSecret), msg)
	if err != nil {
		return Envelope{}, err
	}
	e.SignData = base64.StdEncoding.EncodeToString(sig)
	return e, nil
}

// Open checks an envelope from the peer and returns its plaintext data (nil
// when it carries none): the appId must be ours, encType SM4, signType SM2,
// the data must decrypt, and signData must be the peer's SM3withSM2
// signature over SigningString. signData is base64 of the DER signature;
// a bare 64-byte r‖s (as some JavaScript SDKs send) is accepted too. Every
// failure is EInvalid; Open does not look at the timestamp (see
// Envelope.Time).
func (s Sealer) Open(e Envelope) ([]byte, error) {
	if e.AppID != s.AppID {
		return nil, ihos.Errorf(ihos.EInvalid, "医保移动支付报文 appId 不符")
	}
	if e.EncType != EncTypeSM4 || e.SignType != SignTypeSM2 {
		return nil, ihos.Errorf(ihos.EInvalid, "医保移动支付报文加密或签名方式不支持：%s/%s", ihos.Truncate(e.EncType, 8), ihos.Truncate(e.SignType, 8))
	}
	if s.Peer == nil {
		return nil, ihos.Errorf(ihos.EInvalid, "医保移动支付验签公钥未配置")
	}
	var plain []byte
	if e.EncData != "" {
		key, err := DeriveSM4Key(s.AppID, s.AppSecret)
		if err != nil {
			return nil, err
		}
		if plain, err = DecryptData(key, e.EncData); err != nil {
			return nil, err
		}
	}
	sig, err := base64.StdEncoding.DecodeString(e.SignData)
	if err != nil || len(sig) == 0 {
		return nil, ihos.Errorf(ihos.EInvalid, "医保移动支付报文签名格式不正确")
	}
	if len(sig) == 64 {
		sig = rawToDER(sig)
	}
	msg, err := SigningString(e, plain, s.AppSecret)
	if err != nil {
		return nil, err
	}
	if err := certs.VerifySM2WithUID(s.Peer, []byte(s.AppSecret), msg, sig); err != nil {
		return nil, &ihos.Error{Code: ihos.EInvalid, Message: "医保移动支付报文验签失败", Err: err}
	}
	return plain, nil
}

// rawToDER turns a 64-byte r‖s signature into DER SEQUENCE{r, s}.
func rawToDER(sig []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(sig[:32]))
		b.AddASN1BigInt(new(big.Int).SetBytes(sig[32:]))
	})
	der, _ := b.Bytes()
	return der
}
