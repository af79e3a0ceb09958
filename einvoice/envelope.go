package einvoice

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"ihos"
)

// Version is the envelope version every request carries and the sign covers.
const Version = "1.0"

// Result codes of the decoded answer data.
const (
	// ResultOK is the platform's success code.
	ResultOK = "S0000"
	// ResultNotFound is what the simulator answers when getEBillByBusNo
	// finds no bill. The real platform's code for this case is not in
	// REFERENCE.md or the public samples; the client maps this one code to
	// ENotFound and every other failure to EInvalid.
	ResultNotFound = "E0404"
)

// Service names, appended to Client.BaseURL.
const (
	ServiceOutpatient   = "invoiceEBillOutpatient" // 门诊收费电子票据开具
	ServiceRegistration = "invEBillRegistration"   // 挂号电子票据开具
	ServiceHospitalized = "invEBillHospitalized"   // 住院电子票据开具 (not implemented by the client yet)
	ServiceWriteOff     = "writeOffEBill"          // 电子票据冲红
	// ServiceQuery looks up the bill issued for a busNo. The name is the one
	// public Bosssoft integrations call (request {busNo, busDateTime},
	// answer {billBatchCode, billNo, random, ...}); REFERENCE.md does not
	// list it.
	ServiceQuery = "getEBillByBusNo"
)

// TimeLayout is the platform's time format, yyyyMMddHHmmssSSS in Beijing
// time (busDateTime, createTime).
const TimeLayout = "20060102150405.000"

// FormatTime writes t as yyyyMMddHHmmssSSS, Beijing time.
func FormatTime(t time.Time) string {
	return strings.Replace(t.In(ihos.Shanghai).Format(TimeLayout), ".", "", 1)
}

// ParseTime reads a yyyyMMddHHmmssSSS time (Beijing). yyyyMMddHHmmss and
// "yyyy-MM-dd HH:mm:ss" are accepted too, as some platform versions send them.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case len(s) == 17 && isDigits(s):
		return time.ParseInLocation(TimeLayout, s[:14]+"."+s[14:], ihos.Shanghai)
	case len(s) == 14 && isDigits(s):
		return time.ParseInLocation("20060102150405", s, ihos.Shanghai)
	}
	return time.ParseInLocation("2006-01-02 15:04:05", s, ihos.Shanghai)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Envelope is the body of every request and answer: the business JSON in
// data as base64, a random noise, and the sign.
type Envelope struct {
	AppID   string `json:"appid"`
	Data    string `json:"data"`
	Noise   string `json:"noise"`
	Version string `json:"version"`
	Sign    string `json:"sign"`
}

// Sign is the upper-case hex MD5 of
// "appid=<appid>&data=<data>&noise=<noise>&key=<key>&version=<version>",
// data being the base64 text as sent. The same formula signs answers, with
// the caller's appid and the answer's data and noise.
func Sign(appID, data, noise, key, version string) string {
	sum := md5.Sum([]byte("appid=" + appID + "&data=" + data + "&noise=" + noise + "&key=" + key + "&version=" + version))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// NewNoise returns a random UUID (version 4) as 32 lower-case hex digits,
// the form public integrations send.
func NewNoise() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}

// Seal encodes payload as JSON, then base64 (standard alphabet, UTF-8),
// and signs it with a new noise.
func Seal(appID, key string, payload any) (Envelope, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return Envelope{}, err
	}
	e := Envelope{AppID: appID, Data: base64.StdEncoding.EncodeToString(b), Noise: NewNoise(), Version: Version}
	e.Sign = Sign(appID, e.Data, e.Noise, key, e.Version)
	return e, nil
}

// Verify reports whether e's sign is right for key, computed with appID
// (the caller's appid: answers may leave theirs out). The comparison
// ignores case, as MD5 hex is case-free.
func (e Envelope) Verify(appID, key string) bool {
	version := e.Version
	if version == "" {
		version = Version
	}
	return e.Sign != "" && strings.EqualFold(e.Sign, Sign(appID, e.Data, e.Noise, key, version))
}

// Decode base64-decodes e.Data.
func (e Envelope) Decode() ([]byte, error) {
	return decodeBase64(e.Data)
}

// decodeBase64 accepts the standard alphabet with or without padding and
// ignores line breaks, which Java's old BASE64Encoder inserts every 76
// characters.
func decodeBase64(s string) ([]byte, error) {
	s = strings.NewReplacer("\r", "", "\n", "", " ", "").Replace(s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// ResultData is the decoded data of an answer: the result code and the
// message, base64 of the business JSON on success and of an error text
// otherwise.
type ResultData struct {
	Result  string `json:"result"`
	Message string `json:"message"`
}

// NewResult builds the data of an answer: message is base64(text).
func NewResult(result string, message []byte) ResultData {
	return ResultData{Result: result, Message: base64.StdEncoding.EncodeToString(message)}
}

// DecodeMessage base64-decodes the message.
func (r ResultData) DecodeMessage() ([]byte, error) { return decodeBase64(r.Message) }

// Amount is money in fen. On the wire it is yuan with two decimals, written
// as a JSON number (12.50); reading accepts a number or a string and
// refuses more than two decimals, so an amount is never rounded.
type Amount int64

// MarshalJSON writes the amount in yuan, as a JSON number.
func (a Amount) MarshalJSON() ([]byte, error) {
	return []byte(ihos.FormatYuan(int64(a))), nil
}

// UnmarshalJSON reads yuan from a JSON number or string.
func (a *Amount) UnmarshalJSON(b []byte) error {
	s := string(bytes.TrimSpace(b))
	if s == "null" {
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if strings.ContainsAny(s, "eE") {
		return fmt.Errorf("amount %q: exponent not allowed", ihos.Truncate(s, 32))
	}
	fen, err := ihos.ParseYuan(s)
	if err != nil {
		return fmt.Errorf("amount %q: not yuan with at most two decimals", ihos.Truncate(s, 32))
	}
	*a = Amount(fen)
	return nil
}

// Yuan renders the amount as "12.50".
func (a Amount) Yuan() string { return ihos.FormatYuan(int64(a)) }

// checkQuantity validates a quantity (number): a plain positive decimal.
func checkQuantity(n json.Number) error {
	s := string(n)
	whole, frac, _ := strings.Cut(s, ".")
	if !isDigits(whole) || (frac != "" && !isDigits(frac)) || strings.Trim(s, "0.") == "" {
		return errors.New("not a positive decimal")
	}
	return nil
}
