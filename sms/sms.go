// Package sms sends verification codes by text message through an SMS
// platform, and package smssim simulates that platform.
//
// The wire format is modelled on Aliyun's Dysmsapi SendSms (API version
// 2017-05-25, "RPC" signature style), the most common platform Chinese
// hospitals' SMS vendors copy:
//
//   - POST to the endpoint with an application/x-www-form-urlencoded body
//     holding the common parameters Action=SendSms, Version=2017-05-25,
//     Format=JSON, AccessKeyId, SignatureMethod=HMAC-SHA1,
//     SignatureVersion=1.0, SignatureNonce, Timestamp (ISO 8601 UTC,
//     2006-01-02T15:04:05Z) and the action's PhoneNumbers, SignName (the
//     approved 短信签名, e.g. 示例医院), TemplateCode (the approved template,
//     e.g. SMS_123456789 "您的验证码为：${code}，5分钟内有效") and
//     TemplateParam (a JSON object, {"code":"123456"}), plus Signature.
//   - Signature is base64(HMAC-SHA1(AccessKeySecret+"&", StringToSign))
//     where StringToSign = "POST&%2F&" + percentEncode(canonical query), the
//     canonical query being every other parameter sorted by name and joined
//     as name=value&… with RFC 3986 percent-encoding (space %20, * %2A,
//     ~ unencoded).
//   - The answer is JSON {"Code","Message","BizId","RequestId"}; Code "OK"
//     means accepted. The refusals we model: isv.MOBILE_NUMBER_ILLEGAL,
//     isv.BUSINESS_LIMIT_CONTROL (the platform's own rate limit),
//     isv.SMS_SIGNATURE_ILLEGAL, isv.SMS_TEMPLATE_ILLEGAL,
//     InvalidAccessKeyId.NotFound, SignatureDoesNotMatch,
//     SignatureNonceUsed and InvalidTimeStamp.Expired (more than 15 minutes off).
//
// Only single-number verification-code sends are implemented: that is all
// the patient sign-up needs.
package sms

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"ihos"
)

// Sender sends a verification code to a mainland mobile number.
type Sender interface {
	SendCode(ctx context.Context, phone, code string) error
}

// Wire constants of the modelled API.
const (
	Action    = "SendSms"
	Version   = "2017-05-25"
	SigMethod = "HMAC-SHA1"
	SigVer    = "1.0"
	// MaxSkew is how far a request's Timestamp may be from the platform's clock.
	MaxSkew = 15 * time.Minute
)

// Answer is the platform's JSON answer.
type Answer struct {
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	BizID     string `json:"BizId,omitempty"`
	RequestID string `json:"RequestId"`
}

// Client is the HTTP adapter to the SMS platform.
type Client struct {
	URL             string // the endpoint, e.g. https://dysmsapi.aliyuncs.com/
	AccessKeyID     string
	AccessKeySecret string
	SignName        string // 短信签名
	TemplateCode    string // the verification-code template; its variable is ${code}
	HTTP            *http.Client
	Now             func() time.Time
}

// SendCode sends code to phone with the verification-code template.
func (c *Client) SendCode(ctx context.Context, phone, code string) error {
	param, _ := json.Marshal(map[string]string{"code": code})
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	v := url.Values{
		"Action": {Action}, "Version": {Version}, "Format": {"JSON"}, "RegionId": {"cn-hangzhou"},
		"AccessKeyId": {c.AccessKeyID}, "SignatureMethod": {SigMethod}, "SignatureVersion": {SigVer},
		"SignatureNonce": {nonce()}, "Timestamp": {now().UTC().Format("2006-01-02T15:04:05Z")},
		"PhoneNumbers": {phone}, "SignName": {c.SignName}, "TemplateCode": {c.TemplateCode},
		"TemplateParam": {string(param)},
	}
	v.Set("Signature", Sign(c.AccessKeySecret, http.MethodPost, v))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, strings.NewReader(v.Encode()))
	if err != nil {
		return ihos.Internal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return &ihos.Error{Code: ihos.EUnavailable, Message: "短信平台暂时无法连接，请稍后再试", Err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	var a Answer
	if err := json.Unmarshal(body, &a); err != nil || a.Code == "" {
		return &ihos.Error{Code: ihos.EUnavailable, Message: "短信平台暂时无法使用，请稍后再试",
			Err: fmt.Errorf("sms: HTTP %d: %.200s", resp.StatusCode, body)}
	}
	return answerError(a)
}

// answerError turns a refusal into an error with a message for the patient;
// configuration faults (key, signature, template) are ours, not theirs.
func answerError(a Answer) error {
	err := fmt.Errorf("sms: %s: %s (RequestId %s)", a.Code, a.Message, a.RequestID)
	switch a.Code {
	case "OK":
		return nil
	case "isv.MOBILE_NUMBER_ILLEGAL":
		return &ihos.Error{Code: ihos.EInvalid, Message: "手机号码格式不正确", Fields: map[string]string{"phone": "手机号码格式不正确"}, Err: err}
	case "isv.BUSINESS_LIMIT_CONTROL":
		return &ihos.Error{Code: ihos.EForbidden, Message: "该手机号今日接收验证码次数过多，请稍后再试", Err: err}
	default:
		return &ihos.Error{Code: ihos.EUnavailable, Message: "短信发送失败，请稍后再试", Err: err}
	}
}

// Sign computes the Signature parameter of v (any Signature in v is ignored).
func Sign(secret, method string, v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = PercentEncode(k) + "=" + PercentEncode(v.Get(k))
	}
	toSign := method + "&" + PercentEncode("/") + "&" + PercentEncode(strings.Join(parts, "&"))
	m := hmac.New(sha1.New, []byte(secret+"&"))
	m.Write([]byte(toSign))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// PercentEncode is the RFC 3986 encoding the signature uses.
func PercentEncode(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	e = strings.ReplaceAll(e, "*", "%2A")
	return strings.ReplaceAll(e, "%7E", "~")
}

func nonce() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewCode returns a random 6-digit verification code (crypto/rand): the
// code a patient logs in with, or a doctor confirms their identity with.
func NewCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // the OS random source failing is not recoverable
	}
	return fmt.Sprintf("%06d", n.Int64())
}
