package einvoice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"ihos"
)

// Client calls the finance e-invoice platform. Set BaseURL, AppID and Key;
// a Client is safe for concurrent use.
type Client struct {
	// BaseURL is the service prefix: a request goes to BaseURL +
	// service name, e.g. "http://10.1.2.3:8081/medical-web/api/medical/"
	// + "invoiceEBillOutpatient". A missing final slash is added.
	BaseURL string
	AppID   string // 调用方应用账号, issued by the platform
	Key     string // 签名密钥: a secret, never logged
	// HTTP is the client used; nil means a client without its own timeout
	// (Timeout bounds every call instead).
	HTTP *http.Client
	// Timeout bounds one call; 0 means DefaultTimeout.
	Timeout time.Duration
	// Logger receives one line per call (service, result, elapsed); nil
	// means no logging. Bodies are never logged: they hold names and ID
	// numbers.
	Logger *slog.Logger
	// Now is the clock for busDateTime; nil means time.Now.
	Now func() time.Time
}

// DefaultTimeout bounds a call when Client.Timeout is 0.
const DefaultTimeout = 15 * time.Second

// maxBody bounds an answer; a bill answer carries a QR picture (a few KB).
const maxBody = 4 << 20

// PlatformError is the cause of an error answer (result ≠ S0000): errors.As
// it out of the returned *ihos.Error to see the platform's code.
type PlatformError struct {
	Service string
	Result  string
	Message string
}

func (e *PlatformError) Error() string {
	return fmt.Sprintf("einvoice %s: result %s: %s", e.Service, e.Result, e.Message)
}

// unavailableMsg is the message for every call whose outcome is unknown.
const unavailableMsg = "财政电子票据平台暂时无法连接"

func errUnavailable(cause error) error {
	return &ihos.Error{Code: ihos.EUnavailable, Message: unavailableMsg, Err: cause}
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Call sends one request to service and decodes the answer's message (the
// business JSON) into out (nil to ignore it). The errors:
//
//   - the platform cannot be reached, times out, answers an HTTP error or
//     something that is not a well-formed, correctly signed envelope:
//     EUnavailable "财政电子票据平台暂时无法连接". The request may or may not
//     have been carried out: unknown is not "not issued". Callers keep the
//     busNo and ask Query later (a retry of the same issue with the same
//     busNo is safe too, since the platform answers it with the same bill);
//   - result ResultNotFound: ENotFound;
//   - any other result ≠ S0000: EInvalid with the platform's message and a
//     *PlatformError as cause.
//
// Answers are verified when they carry a sign (sign over the client's
// appid and the answer's data and noise, as requests are signed); an answer
// without a sign is accepted, as some deployments do not sign answers.
func (c *Client) Call(ctx context.Context, service string, in, out any) (err error) {
	began := time.Now()
	result := ""
	defer func() {
		if c.Logger == nil {
			return
		}
		attrs := []any{"platform_service", service, "result", result, "elapsed_ms", time.Since(began).Milliseconds()}
		if err != nil {
			c.Logger.WarnContext(ctx, "einvoice call failed", append(attrs, "err", err.Error())...)
		} else {
			c.Logger.InfoContext(ctx, "einvoice call", attrs...)
		}
	}()

	endpoint, err := c.endpoint(service)
	if err != nil {
		return &ihos.Error{Code: ihos.EUnavailable, Message: "财政电子票据平台地址未配置或不正确，请联系信息科", Err: err}
	}
	if c.AppID == "" || c.Key == "" {
		return &ihos.Error{Code: ihos.EUnavailable, Message: "财政电子票据平台账号未配置，请联系信息科",
			Err: errors.New("einvoice: AppID or Key not set")}
	}
	env, err := Seal(c.AppID, c.Key, in)
	if err != nil {
		return ihos.Internal(fmt.Errorf("einvoice: encode %s: %w", service, err))
	}
	body, err := json.Marshal(env)
	if err != nil {
		return ihos.Internal(err)
	}

	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return errUnavailable(err)
	}
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return errUnavailable(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return errUnavailable(fmt.Errorf("read answer: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		return errUnavailable(fmt.Errorf("platform answered HTTP %s", resp.Status))
	}
	var ans Envelope
	if err := json.Unmarshal(raw, &ans); err != nil || ans.Data == "" {
		return errUnavailable(fmt.Errorf("answer is not the envelope: %v (%d bytes)", err, len(raw)))
	}
	if ans.Sign != "" && !ans.Verify(c.AppID, c.Key) {
		// Most often the key is wrong on our side, and the platform's
		// refusal says so; its text is shown, but the outcome stays
		// unknown, since nothing in an unverified answer can be trusted.
		msg := "财政电子票据平台返回的数据验签失败，请检查应用账号和密钥"
		if text := unverifiedText(ans); text != "" {
			msg += "（平台返回：" + ihos.Truncate(text, 100) + "）"
		}
		return &ihos.Error{Code: ihos.EUnavailable, Message: msg, Err: errors.New("answer sign does not verify")}
	}
	data, err := ans.Decode()
	if err != nil {
		return errUnavailable(fmt.Errorf("answer data is not base64: %w", err))
	}
	var rd ResultData
	if err := json.Unmarshal(data, &rd); err != nil || rd.Result == "" {
		return errUnavailable(fmt.Errorf("answer data is not {result, message}: %v", err))
	}
	result = rd.Result
	msg, err := rd.DecodeMessage()
	if err != nil {
		// Some platforms put a failure text in message without base64.
		msg = []byte(rd.Message)
	}
	if rd.Result != ResultOK {
		text := strings.TrimSpace(string(msg))
		if !utf8.ValidString(text) || text == "" {
			text = "未说明原因（" + rd.Result + "）"
		}
		pe := &PlatformError{Service: service, Result: rd.Result, Message: text}
		code := ihos.EInvalid
		if rd.Result == ResultNotFound {
			code = ihos.ENotFound
		}
		return &ihos.Error{Code: code, Message: "财政电子票据平台返回：" + ihos.Truncate(text, 200), Err: pe}
	}
	if out != nil {
		if err := json.Unmarshal(msg, out); err != nil {
			return &ihos.Error{Code: ihos.EUnavailable, Message: "财政电子票据平台返回的数据无法识别，请联系信息科",
				Err: fmt.Errorf("decode %s message: %w", service, err)}
		}
	}
	return nil
}

// unverifiedText is the failure text of an answer whose sign did not
// verify, "" when it is not a readable failure.
func unverifiedText(ans Envelope) string {
	data, err := ans.Decode()
	if err != nil {
		return ""
	}
	var rd ResultData
	if json.Unmarshal(data, &rd) != nil || rd.Result == ResultOK {
		return ""
	}
	msg, err := rd.DecodeMessage()
	if err != nil || !utf8.Valid(msg) {
		return ""
	}
	return strings.TrimSpace(string(msg))
}

func (c *Client) endpoint(service string) (string, error) {
	base := strings.TrimSpace(c.BaseURL)
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("einvoice: BaseURL %q is not an absolute URL", c.BaseURL)
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base + service, nil
}

// IssueOutpatient issues an outpatient bill (invoiceEBillOutpatient). The
// request is checked first (EInvalid with the fields at fault); see Call
// for the errors of the call. On EUnavailable the bill may exist: call
// Query(BusNo), or repeat IssueOutpatient with the same BusNo.
func (c *Client) IssueOutpatient(ctx context.Context, o Outpatient) (Bill, error) {
	return c.issue(ctx, ServiceOutpatient, o)
}

// IssueRegistration issues a registration bill (invEBillRegistration); as
// IssueOutpatient.
func (c *Client) IssueRegistration(ctx context.Context, r Registration) (Bill, error) {
	return c.issue(ctx, ServiceRegistration, r)
}

func (c *Client) issue(ctx context.Context, service string, o Outpatient) (Bill, error) {
	if o.BusDateTime == "" {
		o.BusDateTime = FormatTime(c.now())
	}
	if err := CheckOutpatient(o); err != nil {
		return Bill{}, err
	}
	var a IssueAnswer
	if err := c.Call(ctx, service, o, &a); err != nil {
		return Bill{}, err
	}
	if a.BusNo == "" {
		a.BusNo = o.BusNo
	}
	b, err := a.bill()
	if err != nil {
		return Bill{}, err
	}
	return b, nil
}

// Query returns the bill issued for busNo (getEBillByBusNo), with
// WrittenOff set when it has been written off. ENotFound means the platform
// has no bill for busNo: only then is it safe to issue under a new busNo.
// EUnavailable means nothing is known.
func (c *Client) Query(ctx context.Context, busNo string) (Bill, error) {
	busNo = strings.TrimSpace(busNo)
	if busNo == "" {
		return Bill{}, ihos.Invalid(map[string]string{"busNo": "业务流水号不能为空"})
	}
	var a IssueAnswer
	if err := c.Call(ctx, ServiceQuery, QueryReq{BusNo: busNo}, &a); err != nil {
		return Bill{}, err
	}
	if a.BusNo == "" {
		a.BusNo = busNo
	}
	return a.bill()
}

// WriteOff writes off (红冲) a bill, issuing its red bill. A bill is written
// off once: a second write-off is refused by the platform (EInvalid). After
// EUnavailable, Query the original busNo: Bill.WrittenOff tells whether the
// write-off happened.
func (c *Client) WriteOff(ctx context.Context, w WriteOffReq) (Scarlet, error) {
	if w.BusDateTime == "" {
		w.BusDateTime = FormatTime(c.now())
	}
	fields := map[string]string{}
	req := func(v, field, msg string) {
		if strings.TrimSpace(v) == "" {
			fields[field] = msg
		}
	}
	req(w.BillBatchCode, "billBatchCode", "票据代码不能为空")
	req(w.BillNo, "billNo", "票据号码不能为空")
	req(w.Reason, "reason", "冲红原因不能为空")
	req(w.Operator, "operator", "经办人不能为空")
	req(w.PlaceCode, "placeCode", "开票点编码不能为空")
	if _, err := ParseTime(w.BusDateTime); err != nil || len(w.BusDateTime) != 17 {
		fields["busDateTime"] = "业务发生时间应为 yyyyMMddHHmmssSSS"
	}
	if len(fields) > 0 {
		return Scarlet{}, ihos.Invalid(fields)
	}
	var a WriteOffAnswer
	if err := c.Call(ctx, ServiceWriteOff, w, &a); err != nil {
		return Scarlet{}, err
	}
	if a.EScarletBillBatchCode == "" || a.EScarletBillNo == "" {
		return Scarlet{}, &ihos.Error{Code: ihos.EUnavailable, Message: "财政电子票据平台返回的数据无法识别，请联系信息科",
			Err: errors.New("writeOffEBill answer without eScarletBillBatchCode/eScarletBillNo")}
	}
	s := Scarlet{BatchCode: a.EScarletBillBatchCode, No: a.EScarletBillNo, Random: a.EScarletRandom,
		PictureURL: a.PictureURL, PictureNetURL: a.PictureNetURL}
	s.CreatedAt, _ = ParseTime(a.CreateTime)
	s.QRCode, s.QRImage = qrOf(a.BillQRCode, a.PictureNetURL, a.PictureURL)
	return s, nil
}

// bill turns an answer into a Bill.
func (a IssueAnswer) bill() (Bill, error) {
	if a.BillBatchCode == "" || a.BillNo == "" {
		return Bill{}, &ihos.Error{Code: ihos.EUnavailable, Message: "财政电子票据平台返回的数据无法识别，请联系信息科",
			Err: errors.New("answer without billBatchCode/billNo")}
	}
	b := Bill{BusNo: a.BusNo, BatchCode: a.BillBatchCode, No: a.BillNo, Random: a.Random,
		PictureURL: a.PictureURL, PictureNetURL: a.PictureNetURL, TotalAmt: a.TotalAmt}
	b.CreatedAt, _ = ParseTime(a.CreateTime)
	b.QRCode, b.QRImage = qrOf(a.BillQRCode, a.PictureNetURL, a.PictureURL)
	if a.State == StateWrittenOff || a.EScarletBillNo != "" {
		s := &Scarlet{BatchCode: a.EScarletBillBatchCode, No: a.EScarletBillNo, Random: a.EScarletRandom}
		s.CreatedAt, _ = ParseTime(a.EScarletCreateTime)
		b.WrittenOff = s
	}
	return b, nil
}

// pngMagic starts every PNG file.
var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// qrOf decides the QR text and picture from billQRCode (see Bill.QRCode).
func qrOf(billQRCode, netURL, url string) (text string, png []byte) {
	if b, err := decodeBase64(billQRCode); err == nil && bytes.HasPrefix(b, pngMagic) {
		png = b
	} else if s := strings.TrimSpace(billQRCode); s != "" && utf8.ValidString(s) {
		return s, nil
	}
	if netURL != "" {
		return netURL, png
	}
	return url, png
}

// CheckOutpatient validates an issue request as the platform would, so a
// mistake is reported before the call: required fields, non-negative
// amounts, the pay channels adding up to the total, and the charge
// categories adding up to the total when given. BusDateTime must be set.
func CheckOutpatient(o Outpatient) error {
	f := map[string]string{}
	req := func(v, field, msg string) {
		if strings.TrimSpace(v) == "" {
			f[field] = msg
		}
	}
	req(o.BusNo, "busNo", "业务流水号不能为空")
	if len(o.BusNo) > 50 {
		f["busNo"] = "业务流水号不能超过 50 个字符"
	}
	req(o.BusType, "busType", "业务标识不能为空")
	req(o.Payer, "payer", "交款人不能为空")
	req(o.PlaceCode, "placeCode", "开票点编码不能为空")
	req(o.Payee, "payee", "收费员不能为空")
	req(o.Author, "author", "票据编制人不能为空")
	if _, err := ParseTime(o.BusDateTime); err != nil || len(o.BusDateTime) != 17 {
		f["busDateTime"] = "业务发生时间应为 yyyyMMddHHmmssSSS"
	}
	if o.TotalAmt <= 0 {
		f["totalAmt"] = "开票总金额应大于 0"
	}
	for name, v := range map[string]Amount{"accountPay": o.AccountPay, "fundPay": o.FundPay,
		"otherfundPay": o.OtherFundPay, "ownPay": o.OwnPay, "selfCashPay": o.SelfCashPay} {
		if v < 0 {
			f[name] = "金额不能为负数"
		}
	}
	if len(o.PayChannelDetail) == 0 {
		f["payChannelDetail"] = "交费渠道不能为空"
	} else {
		var sum Amount
		for _, p := range o.PayChannelDetail {
			if strings.TrimSpace(p.PayChannelCode) == "" {
				f["payChannelDetail"] = "交费渠道编码不能为空"
			}
			sum += p.PayChannelValue
		}
		if sum != o.TotalAmt && f["payChannelDetail"] == "" {
			f["payChannelDetail"] = fmt.Sprintf("交费渠道金额合计 %s 元与开票总金额 %s 元不一致", sum.Yuan(), o.TotalAmt.Yuan())
		}
	}
	if len(o.ChargeDetail) > 0 {
		var sum Amount
		for _, c := range o.ChargeDetail {
			if c.ChargeCode == "" || c.ChargeName == "" {
				f["chargeDetail"] = "收费项目代码和名称不能为空"
			}
			if c.Number != "" && checkQuantity(c.Number) != nil {
				f["chargeDetail"] = "收费项目数量不正确：" + ihos.Truncate(string(c.Number), 20)
			}
			sum += c.Amt
		}
		if sum != o.TotalAmt && f["chargeDetail"] == "" {
			f["chargeDetail"] = fmt.Sprintf("收费项目金额合计 %s 元与开票总金额 %s 元不一致", sum.Yuan(), o.TotalAmt.Yuan())
		}
	} else {
		f["chargeDetail"] = "收费项目不能为空"
	}
	for _, l := range o.ListDetail {
		if l.Code == "" || l.Name == "" {
			f["listDetail"] = "清单项目编码和名称不能为空"
		}
		if l.Number != "" && checkQuantity(l.Number) != nil {
			f["listDetail"] = "清单项目数量不正确：" + ihos.Truncate(string(l.Number), 20)
		}
	}
	if len(f) > 0 {
		return ihos.Invalid(f)
	}
	return nil
}
