package paychannel

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"ihos"
)

// Client calls the payment channel's merchant API. Set BaseURL, MchID,
// AppID, SerialNo, Key, PlatformKey and APIv3Key; the rest is optional. A
// Client is safe for concurrent use.
type Client struct {
	// BaseURL is the channel's address, "https://api.mch.weixin.qq.com" or
	// the simulator's "http://127.0.0.1:8097".
	BaseURL string
	MchID   string // merchant number (mchid)
	AppID   string // the mini-program / official account the orders belong to
	// SerialNo is the serial number of the merchant API certificate whose
	// private key is Key; the channel picks the key to verify with by it.
	SerialNo string
	// Key is the merchant's API private key; it signs every request, and
	// its type chooses the algorithm: an RSA-2048 key (*rsa.PrivateKey)
	// signs WECHATPAY2-SHA256-RSA2048, an SM2 key (*sm2.PrivateKey, the
	// channel's 国密 option) WECHATPAY2-SM2-WITH-SM3, and then the channel
	// answers with SM2 signatures and encrypts notifies with SM4-GCM.
	Key crypto.Signer
	// PaySignKey signs the JSAPI payment parameters, which wx.requestPayment
	// accepts only as RSA (signType "RSA"); nil means Key, which must then
	// be RSA. An SM2 merchant sets it to its RSA API key.
	PaySignKey *rsa.PrivateKey
	// PlatformKey verifies the channel's answers and notifies: the
	// platform certificate's key of Key's algorithm (*rsa.PublicKey, or an
	// SM2 *ecdsa.PublicKey). PlatformSerial, when set, must equal their
	// Wechatpay-Serial header (the channel rotates keys by serial; a
	// different serial is refused).
	PlatformKey    crypto.PublicKey
	PlatformSerial string
	// APIv3Key is the 32-byte symmetric key that notify resources are
	// encrypted with.
	APIv3Key []byte
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client
	// Timeout bounds one call; 0 means DefaultTimeout. A shorter deadline
	// in the context wins.
	Timeout time.Duration
	// Logger receives one line per call (method, path, status, code,
	// elapsed); nil means none. Bodies are never logged.
	Logger *slog.Logger
	// Now is the clock for request timestamps and the replay window; nil
	// means time.Now.
	Now func() time.Time
}

// DefaultTimeout bounds a call when Client.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// MaxClockSkew is how far a notify's or an answer's Wechatpay-Timestamp may
// be from our clock. Older notifies are refused as replays.
const MaxClockSkew = 5 * time.Minute

// maxBody bounds an answer or a notify body read.
const maxBody = 16 << 20

// Order is what a create call needs. OutTradeNo is the idempotency key: the
// same OutTradeNo with the same contents returns the same order (prepay_id
// or code_url) however often it is sent; with different contents the
// channel refuses it (CodeOutTradeNoUsed, EConflict).
type Order struct {
	OutTradeNo  string // 6–32 characters: letters, digits, _ - | * only
	Description string // shown to the patient in the payment sheet and bill
	Total       int64  // fen, > 0
	NotifyURL   string // where payment notifies are POSTed (https, no query in production)
	// TimeExpire is when the order can no longer be paid; zero means the
	// channel's default. The payment service must still Close an order it
	// abandons before telling the patient "not paid".
	TimeExpire time.Time
	Attach     string // returned as is in query and notify
	OpenID     string // JSAPI: the payer's openid under AppID; ignored by Native
}

// ChannelError is the cause of an error answer: errors.As it out of the
// returned *ihos.Error to see the channel's code.
type ChannelError struct {
	Op      string // e.g. "create jsapi"
	Status  int    // HTTP status
	Code    string // e.g. CodeOutTradeNoUsed
	Message string // the channel's own words
}

func (e *ChannelError) Error() string {
	return fmt.Sprintf("paychannel %s: HTTP %d %s: %s", e.Op, e.Status, e.Code, e.Message)
}

// ChannelCode returns the channel's error code carried by err, or "".
func ChannelCode(err error) string {
	var ce *ChannelError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return ""
}

// CreateJSAPI creates a JSAPI (mini-program / official account) order and
// returns its prepay_id; JSAPIPayParams turns it into what wx.requestPayment
// needs.
//
// An error never means "not paid" nor "not created": with EUnavailable the
// order may exist (and may even be paid). Query by OutTradeNo, or create
// again with the same OutTradeNo, which is safe.
func (c *Client) CreateJSAPI(ctx context.Context, o Order) (prepayID string, err error) {
	req, err := c.orderRequest(o)
	if err != nil {
		return "", err
	}
	if o.OpenID == "" {
		return "", ihos.Invalid(map[string]string{"openid": "JSAPI 支付需要付款人的 openid"})
	}
	req.Payer = &Payer{OpenID: o.OpenID}
	var out struct {
		PrepayID string `json:"prepay_id"`
	}
	if err := c.do(ctx, "create jsapi", http.MethodPost, PathJSAPI, req, &out); err != nil {
		return "", err
	}
	if out.PrepayID == "" {
		return "", unavailable("create jsapi", errors.New("answer lacks prepay_id"))
	}
	return out.PrepayID, nil
}

// CreateNative creates a Native order and returns its code_url, the text of
// the QR code the kiosk shows and the patient scans. Errors as CreateJSAPI.
func (c *Client) CreateNative(ctx context.Context, o Order) (codeURL string, err error) {
	req, err := c.orderRequest(o)
	if err != nil {
		return "", err
	}
	var out struct {
		CodeURL string `json:"code_url"`
	}
	if err := c.do(ctx, "create native", http.MethodPost, PathNative, req, &out); err != nil {
		return "", err
	}
	if out.CodeURL == "" {
		return "", unavailable("create native", errors.New("answer lacks code_url"))
	}
	return out.CodeURL, nil
}

func (c *Client) orderRequest(o Order) (*OrderRequest, error) {
	fields := map[string]string{}
	if !validOutNo(o.OutTradeNo, 32) {
		fields["out_trade_no"] = "商户订单号须为 6 至 32 位字母、数字或 _-|*"
	}
	if o.Total <= 0 {
		fields["total"] = "支付金额必须大于 0"
	}
	if strings.TrimSpace(o.Description) == "" {
		fields["description"] = "请填写商品描述"
	}
	if o.NotifyURL == "" {
		fields["notify_url"] = "请填写支付结果通知地址"
	}
	if len(fields) > 0 {
		return nil, ihos.Invalid(fields)
	}
	req := &OrderRequest{AppID: c.AppID, MchID: c.MchID, Description: o.Description, OutTradeNo: o.OutTradeNo,
		Attach: o.Attach, NotifyURL: o.NotifyURL, Amount: Amount{Total: o.Total, Currency: "CNY"}}
	if !o.TimeExpire.IsZero() {
		req.TimeExpire = o.TimeExpire.In(ihos.Shanghai).Format(time.RFC3339)
	}
	return req, nil
}

// validOutNo checks an out_trade_no / out_refund_no as the channel does.
func validOutNo(s string, max int) bool {
	if len(s) < 6 || len(s) > max {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("_-|*", r)) {
			return false
		}
	}
	return true
}

// Query asks for the order's state. This is the source of truth after any
// doubt (a lost answer, a missing notify, a timeout): only Paid() means the
// money arrived; NOTPAY and USERPAYING mean ask again later or Close.
// An order the channel does not know is ENotFound (CodeOrderNotExist).
func (c *Client) Query(ctx context.Context, outTradeNo string) (Transaction, error) {
	var t Transaction
	p := PathQueryOutTradeNo + url.PathEscape(outTradeNo) + "?mchid=" + url.QueryEscape(c.MchID)
	err := c.do(ctx, "query", http.MethodGet, p, nil, &t)
	return t, err
}

// Close closes an unpaid order so it can never be paid. Closing a closed
// order succeeds; closing a paid one fails with EConflict (CodeOrderPaid):
// the patient paid after all, so the payment must be kept (or refunded),
// never forgotten. After an EUnavailable, Query.
func (c *Client) Close(ctx context.Context, outTradeNo string) error {
	p := PathQueryOutTradeNo + url.PathEscape(outTradeNo) + PathCloseSuffix
	return c.do(ctx, "close", http.MethodPost, p, map[string]string{"mchid": c.MchID}, nil)
}

// RefundOrder is what a refund needs. OutRefundNo is the idempotency key:
// the same OutRefundNo again returns the same refund (and retries it if it
// ended ABNORMAL); it never refunds twice.
type RefundOrder struct {
	OutTradeNo  string
	OutRefundNo string
	Reason      string // shown to the patient
	NotifyURL   string // where refund notifies go; "" means none
	Refund      int64  // fen to give back, > 0
	Total       int64  // fen, the original order's total: the channel checks it
}

// Refund asks for a refund. The answer is usually PROCESSING: the result
// comes by notify or QueryRefund. An error never means "not refunded": after
// EUnavailable, QueryRefund (ENotFound there means it was never received, and
// the same OutRefundNo may be sent again).
func (c *Client) Refund(ctx context.Context, r RefundOrder) (Refund, error) {
	fields := map[string]string{}
	if !validOutNo(r.OutRefundNo, 64) {
		fields["out_refund_no"] = "商户退款单号须为 6 至 64 位字母、数字或 _-|*"
	}
	if r.OutTradeNo == "" {
		fields["out_trade_no"] = "请填写原商户订单号"
	}
	if r.Refund <= 0 || r.Refund > r.Total {
		fields["refund"] = "退款金额必须大于 0 且不超过原订单金额"
	}
	if len(fields) > 0 {
		return Refund{}, ihos.Invalid(fields)
	}
	req := RefundRequest{OutTradeNo: r.OutTradeNo, OutRefundNo: r.OutRefundNo, Reason: r.Reason, NotifyURL: r.NotifyURL,
		Amount: RefundAmount{Refund: r.Refund, Total: r.Total, Currency: "CNY"}}
	var out Refund
	err := c.do(ctx, "refund", http.MethodPost, PathRefunds, req, &out)
	return out, err
}

// QueryRefund asks for a refund's state by out_refund_no; ENotFound
// (CodeResourceMissing) when the channel never received it.
func (c *Client) QueryRefund(ctx context.Context, outRefundNo string) (Refund, error) {
	var out Refund
	err := c.do(ctx, "query refund", http.MethodGet, PathRefunds+"/"+url.PathEscape(outRefundNo), nil, &out)
	return out, err
}

// PayParams are the arguments of wx.requestPayment for a JSAPI order.
type PayParams struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"`
	NonceStr  string `json:"nonceStr"`
	Package   string `json:"package"` // "prepay_id=…"
	SignType  string `json:"signType"`
	PaySign   string `json:"paySign"`
}

// JSAPIPayParams signs the mini-program's payment call for prepayID.
func (c *Client) JSAPIPayParams(prepayID string) (PayParams, error) {
	key := c.PaySignKey
	if key == nil {
		key, _ = c.Key.(*rsa.PrivateKey)
	}
	if key == nil {
		return PayParams{}, ihos.Internal(errors.New("paychannel: JSAPI payment parameters need an RSA key (Client.PaySignKey)"))
	}
	p := PayParams{AppID: c.AppID, TimeStamp: strconv.FormatInt(c.now().Unix(), 10), NonceStr: NewNonce(),
		Package: "prepay_id=" + prepayID, SignType: "RSA"}
	sig, err := Sign(key, p.AppID+"\n"+p.TimeStamp+"\n"+p.NonceStr+"\n"+p.Package+"\n")
	if err != nil {
		return PayParams{}, ihos.Internal(err)
	}
	p.PaySign = sig
	return p, nil
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// unavailable is the error for every outcome that leaves the result unknown.
func unavailable(op string, cause error) *ihos.Error {
	return &ihos.Error{Code: ihos.EUnavailable, Message: "支付渠道暂时无法连接，请稍后再试", Err: fmt.Errorf("paychannel %s: %w", op, cause)}
}

// do sends one signed request and verifies and decodes the answer into out
// (nil: the body is ignored).
func (c *Client) do(ctx context.Context, op, method, pathQuery string, in, out any) error {
	body, status, hdr, err := c.send(ctx, op, method, pathQuery, in)
	if err != nil {
		return err
	}
	if err := c.verify(hdr, body); err != nil {
		// A 5xx from a proxy in front of the channel is not signed; either
		// way the outcome is unknown.
		return unavailable(op, fmt.Errorf("HTTP %d answer not verified: %w", status, err))
	}
	if status/100 != 2 {
		var eb ErrorBody
		json.Unmarshal(body, &eb)
		return channelError(op, status, eb)
	}
	if out == nil || status == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return unavailable(op, fmt.Errorf("answer is not JSON: %w", err))
	}
	return nil
}

// send signs and sends one request and reads the answer.
func (c *Client) send(ctx context.Context, op, method, pathQuery string, in any) ([]byte, int, http.Header, error) {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, 0, nil, ihos.Internal(err)
		}
		body = b
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	u := pathQuery
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") { // a download_url is absolute
		u = strings.TrimRight(c.BaseURL, "/") + pathQuery
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, 0, nil, ihos.Internal(err)
	}
	auth := Auth{Scheme: SchemeOf(c.Key), MchID: c.MchID, Nonce: NewNonce(), Timestamp: c.now().Unix(), SerialNo: c.SerialNo}
	// Sign what goes on the wire: the path as the request will carry it.
	auth.Signature, err = Sign(c.Key, RequestMessage(method, req.URL.RequestURI(), auth.Timestamp, auth.Nonce, body))
	if err != nil {
		return nil, 0, nil, ihos.Internal(err)
	}
	req.Header.Set("Authorization", auth.String())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "ihos-paychannel/1")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		c.log(op, method, pathQuery, 0, "", start, err)
		return nil, 0, nil, unavailable(op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		c.log(op, method, pathQuery, resp.StatusCode, "", start, err)
		return nil, 0, nil, unavailable(op, err)
	}
	code := ""
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		json.Unmarshal(b, &eb)
		code = eb.Code
	}
	c.log(op, method, pathQuery, resp.StatusCode, code, start, nil)
	return b, resp.StatusCode, resp.Header, nil
}

func (c *Client) log(op, method, path string, status int, code string, start time.Time, err error) {
	if c.Logger == nil {
		return
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	attrs := []any{"op", op, "method", method, "path", path, "status", status, "elapsed_ms", time.Since(start).Milliseconds()}
	if code != "" {
		attrs = append(attrs, "code", code)
	}
	if err != nil {
		c.Logger.Warn("paychannel call failed", append(attrs, "err", err)...)
		return
	}
	c.Logger.Info("paychannel call", attrs...)
}

// verify checks the Wechatpay-* signature headers of an answer or notify.
func (c *Client) verify(h http.Header, body []byte) error {
	ts, nonce, sig, serial := h.Get(HeaderTimestamp), h.Get(HeaderNonce), h.Get(HeaderSignature), h.Get(HeaderSerial)
	if ts == "" || nonce == "" || sig == "" {
		return errors.New("no signature headers")
	}
	if c.PlatformKey == nil {
		return errors.New("Client.PlatformKey is not set")
	}
	// The channel answers in the algorithm of the request: an answer
	// signed otherwise is not the channel's.
	if st, want := h.Get(HeaderSignatureType), SchemeOf(c.Key); st != want && (st != "" || want != AuthScheme) {
		return fmt.Errorf("%w: signature type %q, want %q", errBadSignature, st, want)
	}
	if c.PlatformSerial != "" && serial != c.PlatformSerial {
		return fmt.Errorf("signed with serial %q, want %q", serial, c.PlatformSerial)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q is not a number", ts)
	}
	if d := c.now().Sub(time.Unix(sec, 0)); d > MaxClockSkew || d < -MaxClockSkew {
		return fmt.Errorf("%w: timestamp %s is %v from our clock", errStale, ts, d.Round(time.Second))
	}
	if err := Verify(c.PlatformKey, ResponseMessage(ts, nonce, body), sig); err != nil {
		return fmt.Errorf("%w: %v", errBadSignature, err)
	}
	return nil
}

var (
	errStale        = errors.New("stale or replayed")
	errBadSignature = errors.New("bad signature")
)

// channelError maps an error answer to the application error.
func channelError(op string, status int, eb ErrorBody) error {
	ce := &ChannelError{Op: op, Status: status, Code: eb.Code, Message: eb.Message}
	e := &ihos.Error{Err: ce}
	switch {
	case status >= 500 || status == http.StatusTooManyRequests || eb.Code == CodeSystemError ||
		eb.Code == CodeFrequencyLimit || eb.Code == CodeNotEnough:
		e.Code, e.Message = ihos.EUnavailable, "支付渠道繁忙，请稍后再试"
	case eb.Code == CodeOutTradeNoUsed:
		e.Code, e.Message = ihos.EConflict, "商户订单号已用于另一笔不同的订单"
	case eb.Code == CodeOrderPaid:
		e.Code, e.Message = ihos.EConflict, "该订单已支付"
	case eb.Code == CodeOrderClosed:
		e.Code, e.Message = ihos.EConflict, "该订单已关闭，请重新下单"
	case status == http.StatusNotFound || eb.Code == CodeOrderNotExist || eb.Code == CodeResourceMissing:
		e.Code, e.Message = ihos.ENotFound, "支付渠道中没有这笔记录"
	case status == http.StatusUnauthorized || eb.Code == CodeSignError:
		e.Code, e.Message = ihos.EInternal, "支付渠道拒绝了商户签名，请检查商户证书配置"
	default:
		msg := eb.Message
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d", status)
		}
		e.Code, e.Message = ihos.EInvalid, "支付渠道拒绝了请求："+msg
	}
	return e
}
