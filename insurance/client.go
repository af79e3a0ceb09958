package insurance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ihos"
	"ihos/internal/pii"
)

// Institution is what identifies the hospital to the platform: the envelope
// fields that are the same on every call. The insurance bureau issues them
// when the hospital is connected.
type Institution struct {
	Code           string // fixmedins_code, 12 characters
	Name           string // fixmedins_name
	MdtrtareaAdmvs string // mdtrtarea_admvs: the hospital's insurance area, 6 digits
	RecerSysCode   string // recer_sys_code
	DevNo          string // dev_no
	DevSafeInfo    string // dev_safe_info
	// Cainfo and Signtype are sent as configured. REFERENCE.md says signtype
	// is SM2/SM3 and cainfo holds up to 1024 characters, but not what is
	// signed or how; where a province requires message signatures, that is
	// still to be built.
	Cainfo   string
	Signtype string
	// SignNo is the sign-in number from transaction 9001 (sign_no). 9001
	// is not implemented yet: set it from configuration, or leave it empty
	// where the gateway does not check it.
	SignNo string
	// FundIncludesAcct says the province counts the personal account in
	// fund_pay_sumamt (public integrations report both conventions; see
	// CheckSplit). The national field list, and the simulator, leave it out.
	FundIncludesAcct bool

	// PaasID and PaasToken, when set, add the gateway headers x-tif-paasid,
	// x-tif-timestamp, x-tif-nonce and x-tif-signature =
	// hex(SHA-256(timestamp + PaasToken + nonce + timestamp)), as
	// REFERENCE.md describes. PaasToken is a secret: it is never logged.
	PaasID    string
	PaasToken string
}

// Operator is who starts a call (opter_type, opter, opter_name).
type Operator struct {
	Type string // OpterClerk, OpterKiosk or OpterMobile
	ID   string
	Name string
}

// Client calls the national medical insurance platform. The zero value is
// not usable: set BaseURL and Fixmedins. A Client is safe for concurrent use.
type Client struct {
	// BaseURL is the platform's address. A bare host ("http://10.1.2.3:8080")
	// gets ServicePath appended; a URL with a path is used as it is, for
	// provinces whose gateway has its own path.
	BaseURL   string
	Fixmedins Institution
	// Operator is the default operator; CallOptions.Operator overrides it
	// per call (the kiosk and a window clerk share one Client).
	Operator Operator
	// HTTP is the client used; nil means a client without its own timeout
	// (Timeout bounds every call instead).
	HTTP *http.Client
	// Timeout bounds one call, from sending to the decoded answer; 0 means
	// DefaultTimeout. A shorter deadline in the context wins.
	Timeout time.Duration
	// Logger receives one line per call (infno, msgid, infcode, elapsed)
	// and, at debug level, the bodies with personal data masked.
	Logger *slog.Logger
	// Observe, when set, is called after every call with its record, the
	// bodies masked; a call log table can be fed from here.
	Observe func(context.Context, Exchange)
	// Now is the clock for msgid and inf_time; nil means time.Now.
	Now func() time.Time

	seqOnce sync.Once
	seq     atomic.Uint32
}

// DefaultTimeout bounds a call when Client.Timeout is 0. The kiosk waits
// for 1101 with a patient standing in front of it, so a hung platform must
// turn into a clear message quickly.
const DefaultTimeout = 15 * time.Second

// maxBody bounds an answer read from the platform.
const maxBody = 8 << 20

// Exchange is the record of one call, for a call log. Request and Response
// are the bodies with personal data masked (MaskJSON).
type Exchange struct {
	At          time.Time
	Infno       string
	MsgID       string
	InfRefMsgID string
	Infcode     int  // 0 or -1 when the platform answered; 0 with Err set when it did not
	Answered    bool // the platform's envelope came back: Infcode is its answer
	Elapsed     time.Duration
	Request     string
	Response    string
	Err         string // what went wrong, for the log; empty on success
}

// CallOptions are per-call envelope settings.
type CallOptions struct {
	// MsgID is the msgid to send. Empty means a new one (NewMsgID). A
	// caller that must be able to repeat one business action under the
	// same msgid (a settlement whose answer was lost) stores a msgid from
	// NewMsgID first and passes it on every attempt.
	MsgID string
	// InsuplcAdmdvs is the insured's area (from 1101 insuinfo); REFERENCE.md
	// requires it on every call that carries psn_no. Empty for 1101.
	InsuplcAdmdvs string
	// Operator overrides Client.Operator when its Type is set.
	Operator Operator
}

// PlatformError is the cause of an error answer (infcode -1): errors.As it
// out of the returned *ihos.Error to see the platform's own words.
type PlatformError struct {
	Infno       string
	MsgID       string
	InfRefMsgID string
	Infcode     int
	ErrMsg      string
}

func (e *PlatformError) Error() string {
	return fmt.Sprintf("insurance %s msgid %s: infcode %d: %s", e.Infno, e.MsgID, e.Infcode, e.ErrMsg)
}

// errUnavailable is the error for every failure to get an answer: the
// patient or clerk can do nothing but try again or pay out of pocket.
func errUnavailable(cause error) error {
	return &ihos.Error{Code: ihos.EUnavailable, Message: "医保系统暂时无法连接，请稍后重试", Err: cause}
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// NewMsgID returns a new msgid: fixmedins_code + yyyyMMddHHmmss (Beijing
// time) + a four-digit sequence. The sequence starts at a random value in
// each process, so the hospital's two servers calling in the same second
// are unlikely to collide; within one process 10,000 calls a second are
// unique.
func (c *Client) NewMsgID() string {
	c.seqOnce.Do(func() {
		var b [4]byte
		rand.Read(b[:])
		c.seq.Store(binary.BigEndian.Uint32(b[:]) % 10000)
	})
	return FormatMsgID(c.Fixmedins.Code, c.now(), c.seq.Add(1))
}

// endpoint is the URL requests are posted to.
func (c *Client) endpoint() (string, error) {
	u, err := url.Parse(strings.TrimSpace(c.BaseURL))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("insurance: BaseURL %q is not an absolute URL", c.BaseURL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = ServicePath
	}
	return u.String(), nil
}

// Call sends one transaction with a new msgid and decodes its output into
// output (a pointer; nil to ignore it). See CallWith.
func (c *Client) Call(ctx context.Context, infno string, input any, output any) (*Response, error) {
	return c.CallWith(ctx, CallOptions{}, infno, input, output)
}

// CallWith sends one transaction. The errors:
//
//   - the platform cannot be reached, times out, answers with an HTTP error
//     or with something that is not the envelope: EUnavailable "医保系统暂时无法连接，请稍后重试";
//   - infcode -1: EInvalid with the platform's err_msg in the message and a
//     *PlatformError as cause; the Response is returned too, so the caller
//     can record inf_refmsgid. Which refusals are conflicts (a settlement
//     already made) is the business code's call, from PlatformError;
//   - the output does not decode into output: EUnavailable, Response returned.
func (c *Client) CallWith(ctx context.Context, opts CallOptions, infno string, input any, output any) (*Response, error) {
	return c.call(ctx, opts, infno, input, output, nil)
}

// call is CallWith with a check of the decoded output: verify runs before the
// call is recorded, so an answer that fails it (settlement amounts that do
// not add up) is in the call log with the reason, and its error is returned
// together with the Response.
func (c *Client) call(ctx context.Context, opts CallOptions, infno string, input any, output any, verify func() error) (resp *Response, err error) {
	if len(infno) != 4 {
		return nil, ihos.Errorf(ihos.EInvalid, "医保交易编号不正确：%s", ihos.Truncate(infno, 16))
	}
	endpoint, err := c.endpoint()
	if err != nil {
		return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "医保接口地址未配置或不正确，请联系信息科", Err: err}
	}
	in, err := json.Marshal(input)
	if err != nil {
		return nil, ihos.Internal(fmt.Errorf("insurance: encode %s input: %w", infno, err))
	}
	op := c.Operator
	if opts.Operator.Type != "" {
		op = opts.Operator
	}
	msgid := opts.MsgID
	if msgid == "" {
		msgid = c.NewMsgID()
	}
	f := c.Fixmedins
	req := Request{
		Infno: infno, MsgID: msgid,
		MdtrtareaAdmvs: f.MdtrtareaAdmvs, InsuplcAdmdvs: opts.InsuplcAdmdvs,
		RecerSysCode: f.RecerSysCode, DevNo: f.DevNo, DevSafeInfo: f.DevSafeInfo,
		Cainfo: f.Cainfo, Signtype: f.Signtype, Infver: InfVer,
		OpterType: op.Type, Opter: op.ID, OpterName: op.Name,
		InfTime:       c.now().In(ihos.Shanghai).Format(InfTimeFormat),
		FixmedinsCode: f.Code, FixmedinsName: f.Name, SignNo: f.SignNo,
		Input: in,
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, ihos.Internal(fmt.Errorf("insurance: encode envelope: %w", err))
	}

	ex := Exchange{At: c.now(), Infno: infno, MsgID: msgid}
	began := time.Now() // not c.now(): a test clock must not distort the elapsed time
	var raw []byte
	defer func() {
		ex.Elapsed = time.Since(began)
		if resp != nil {
			ex.InfRefMsgID, ex.Infcode, ex.Answered = resp.InfRefMsgID, int(resp.Infcode), true
		}
		if err != nil {
			var ie *ihos.Error
			if errors.As(err, &ie) && ie.Err != nil {
				ex.Err = ie.Message + ": " + ie.Err.Error()
			} else {
				ex.Err = err.Error()
			}
		}
		c.record(ctx, ex, body, raw)
	}()

	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(cctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, errUnavailable(err)
	}
	hreq.Header.Set("Content-Type", "application/json;charset=utf-8")
	hreq.Header.Set("Accept", "application/json")
	if f.PaasID != "" || f.PaasToken != "" {
		setGatewayHeaders(hreq.Header, f.PaasID, f.PaasToken, c.now())
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	hresp, err := hc.Do(hreq)
	if err != nil {
		return nil, errUnavailable(err)
	}
	defer hresp.Body.Close()
	raw, err = io.ReadAll(io.LimitReader(hresp.Body, maxBody))
	if err != nil {
		return nil, errUnavailable(fmt.Errorf("read answer: %w", err))
	}
	if hresp.StatusCode != http.StatusOK {
		return nil, errUnavailable(fmt.Errorf("platform answered HTTP %s", hresp.Status))
	}
	var r Response
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, errUnavailable(fmt.Errorf("answer is not the envelope: %w", err))
	}
	r.MsgID = msgid
	resp = &r
	if r.Infcode != InfcodeOK {
		msg := strings.TrimSpace(r.ErrMsg)
		if msg == "" {
			msg = "未说明原因（infcode " + strconv.Itoa(int(r.Infcode)) + "）"
		}
		return resp, &ihos.Error{Code: ihos.EInvalid, Message: "医保平台返回：" + ihos.Truncate(msg, 200),
			Err: &PlatformError{Infno: infno, MsgID: msgid, InfRefMsgID: r.InfRefMsgID, Infcode: int(r.Infcode), ErrMsg: r.ErrMsg}}
	}
	if output != nil && len(r.Output) > 0 && string(r.Output) != "null" {
		if err := json.Unmarshal(r.Output, output); err != nil {
			return resp, &ihos.Error{Code: ihos.EUnavailable, Message: "医保平台返回的数据无法识别，请联系信息科",
				Err: fmt.Errorf("decode %s output: %w", infno, err)}
		}
	}
	if verify != nil {
		if err := verify(); err != nil {
			return resp, err
		}
	}
	return resp, nil
}

// setGatewayHeaders adds the x-tif-* headers the insurance gateway checks.
// The nonce is random hex, the timestamp Unix seconds: REFERENCE.md gives the
// signature formula but not these two formats.
func setGatewayHeaders(h http.Header, paasID, paasToken string, now time.Time) {
	var nb [8]byte
	rand.Read(nb[:])
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := hex.EncodeToString(nb[:])
	sum := sha256.Sum256([]byte(ts + paasToken + nonce + ts))
	h.Set("x-tif-paasid", paasID)
	h.Set("x-tif-timestamp", ts)
	h.Set("x-tif-nonce", nonce)
	h.Set("x-tif-signature", hex.EncodeToString(sum[:]))
}

// record logs a finished call and hands it to Observe.
func (c *Client) record(ctx context.Context, ex Exchange, reqBody, respBody []byte) {
	if c.Logger == nil && c.Observe == nil {
		return
	}
	ex.Request = MaskJSON(reqBody)
	if len(respBody) > 0 {
		ex.Response = MaskJSON(respBody)
	}
	if c.Logger != nil {
		attrs := []any{"infno", ex.Infno, "msgid", ex.MsgID, "inf_refmsgid", ex.InfRefMsgID,
			"infcode", ex.Infcode, "elapsed_ms", ex.Elapsed.Milliseconds()}
		if ex.Err != "" {
			c.Logger.WarnContext(ctx, "insurance call failed", append(attrs, "err", ex.Err)...)
		} else {
			c.Logger.InfoContext(ctx, "insurance call", attrs...)
		}
		c.Logger.DebugContext(ctx, "insurance call bodies", "msgid", ex.MsgID, "request", ex.Request, "response", ex.Response)
	}
	if c.Observe != nil {
		c.Observe(ctx, ex)
	}
}

// Keys whose values MaskJSON hides, and how much of each it keeps.
var maskedKeys = map[string][2]int{
	"certno":        {6, 2}, // ID numbers: area code and the last two
	"mdtrt_cert_no": {4, 4}, // an e-voucher token, an ID number or a card number
	"card_sn":       {0, 0},
	"psn_name":      {1, 0},
	"emp_name":      {2, 0},
	"ecToken":       {4, 4},
	"idNo":          {6, 2},
	"userName":      {1, 0},
	"dev_safe_info": {0, 0},
	"cainfo":        {0, 0},
	"sign_no":       {0, 0},
	"payAuthNo":     {0, 0},
	"payToken":      {0, 0},
}

// MaskJSON returns the JSON text b with the values of personal and secret
// keys (certno, mdtrt_cert_no, psn_name, ecToken, cainfo …) masked at any
// depth, for logs. Text that is not JSON is replaced by a note, since it
// could hold anything.
func MaskJSON(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Sprintf("(%d bytes, not JSON)", len(b))
	}
	out, err := json.Marshal(maskValue(v))
	if err != nil {
		return "(unprintable)"
	}
	return string(out)
}

func maskValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if keep, ok := maskedKeys[k]; ok {
				if s, isStr := x.(string); isStr && s != "" {
					t[k] = pii.Mask(s, keep[0], keep[1])
					continue
				}
			}
			t[k] = maskValue(x)
		}
	case []any:
		for i := range t {
			t[i] = maskValue(t[i])
		}
	}
	return v
}
