package mobile

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"ihos"
)

// Client calls the insurance mobile payment centre. Set BaseURL, AppID,
// AppSecret, OrgCodg, Key (the hospital's SM2 key, whose public key the
// centre holds) and CentrePub (the centre's public key). A Client is safe
// for concurrent use.
type Client struct {
	BaseURL   string
	AppID     string
	AppSecret string
	OrgCodg   string // the hospital's institution code (orgCodg)
	Key       *sm2.PrivateKey
	CentrePub *ecdsa.PublicKey
	HTTP      *http.Client // nil: a client with Timeout

	// Timeout bounds one call; 0 means DefaultTimeout.
	Timeout time.Duration
	// NotifyWindow is how far a 6302 notify's timestamp may be from now;
	// 0 means DefaultNotifyWindow. A notify seen once is refused again
	// within the window (a replay); outside it, it is refused as stale.
	NotifyWindow time.Duration
	// Logger receives a line per call and per refused notify; nil: none.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time // signData of notifies accepted, for replay detection
}

// DefaultTimeout bounds a call when Client.Timeout is 0.
const DefaultTimeout = 15 * time.Second

// DefaultNotifyWindow is the default Client.NotifyWindow.
const DefaultNotifyWindow = 5 * time.Minute

const maxBody = 4 << 20

// CentreError is the cause of a refusal by the centre (code ≠ 0): errors.As
// it out of the returned *ihos.Error to see the centre's words.
type CentreError struct {
	Tx      string
	Code    int
	Message string
}

func (e *CentreError) Error() string {
	return fmt.Sprintf("mobile payment %s: code %d: %s", e.Tx, e.Code, e.Message)
}

// errUnavailable is every failure to get a trustworthy answer. It never
// means "not paid": the order's state is unknown, query it again (6301).
func errUnavailable(cause error) error {
	return &ihos.Error{Code: ihos.EUnavailable, Message: "医保移动支付暂时无法连接", Err: cause}
}

func errAmounts(total, fund, acct, cash Yuan) error {
	return fmt.Errorf("total %s ≠ fund %s + account %s + cash %s", ihos.FormatYuan(int64(total)),
		ihos.FormatYuan(int64(fund)), ihos.FormatYuan(int64(acct)), ihos.FormatYuan(int64(cash)))
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) sealer() Sealer {
	return Sealer{AppID: c.AppID, AppSecret: c.AppSecret, Key: c.Key, Peer: c.CentrePub, Now: c.Now}
}

// call sends one transaction and decodes the verified answer into out.
func (c *Client) call(ctx context.Context, tx string, in, out any) (err error) {
	began := time.Now()
	defer func() {
		if c.Logger == nil {
			return
		}
		attrs := []any{"tx", tx, "elapsed_ms", time.Since(began).Milliseconds()}
		if err != nil {
			c.Logger.WarnContext(ctx, "mobile payment call failed", append(attrs, "err", err.Error())...)
		} else {
			c.Logger.InfoContext(ctx, "mobile payment call", attrs...)
		}
	}()
	base := strings.TrimRight(strings.TrimSpace(c.BaseURL), "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return &ihos.Error{Code: ihos.EUnavailable, Message: "医保移动支付地址未配置或不正确，请联系信息科",
			Err: fmt.Errorf("BaseURL %q", c.BaseURL)}
	}
	env, err := c.sealer().Seal(in)
	if err != nil {
		return err
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
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, base+Paths[tx], bytes.NewReader(body))
	if err != nil {
		return errUnavailable(err)
	}
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
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
		return errUnavailable(fmt.Errorf("centre answered HTTP %s", resp.Status))
	}
	var ans Envelope
	if err := json.Unmarshal(raw, &ans); err != nil {
		return errUnavailable(fmt.Errorf("answer is not the envelope: %w", err))
	}
	plain, err := c.sealer().Open(ans)
	if err != nil {
		// An answer we cannot trust is no answer: the state stays unknown.
		return errUnavailable(fmt.Errorf("answer refused: %w", err))
	}
	if ans.Code == nil {
		return errUnavailable(errors.New("answer has no code"))
	}
	if *ans.Code != 0 {
		msg := strings.TrimSpace(ans.Message)
		if msg == "" {
			msg = "未说明原因（code " + strconv.Itoa(*ans.Code) + "）"
		}
		return &ihos.Error{Code: ihos.EInvalid, Message: "医保移动支付返回：" + ihos.Truncate(msg, 200),
			Err: &CentreError{Tx: tx, Code: *ans.Code, Message: ans.Message}}
	}
	if out != nil {
		if len(plain) == 0 {
			return errUnavailable(errors.New("answer has no data"))
		}
		if err := json.Unmarshal(plain, out); err != nil {
			return errUnavailable(fmt.Errorf("decode %s data: %w", tx, err))
		}
	}
	return nil
}

// Upload6201 uploads the fees of an order (6201) and returns the centre's
// order id and token. OrgCodg is filled from the Client when empty.
func (c *Client) Upload6201(ctx context.Context, in FeeUpload) (payOrdID, payToken string, err error) {
	r, err := c.Upload(ctx, in)
	return r.PayOrdID, r.PayToken, err
}

// Upload is Upload6201 returning the whole answer, with the pre-settlement
// (ExtData.PreSetl) when the centre sent one; its amounts are checked
// (fund + account + cash = total, and the total is the one uploaded).
func (c *Client) Upload(ctx context.Context, in FeeUpload) (UploadResult, error) {
	if in.OrgCodg == "" {
		in.OrgCodg = c.OrgCodg
	}
	if in.PayAuthNo == "" {
		return UploadResult{}, ihos.Errorf(ihos.EInvalid, "缺少医保移动支付授权码（payAuthNo），请患者先完成医保授权")
	}
	if in.MedOrgOrd == "" {
		return UploadResult{}, ihos.Errorf(ihos.EInvalid, "缺少医院订单号（medOrgOrd）")
	}
	var sum Yuan
	for _, d := range in.FeeDetailList {
		sum += d.DetItemFeeSumamt
	}
	if len(in.FeeDetailList) == 0 || sum != in.MedfeeSumamt {
		return UploadResult{}, ihos.Errorf(ihos.EInvalid, "费用明细合计 %s 元与总金额 %s 元不一致",
			ihos.FormatYuan(int64(sum)), ihos.FormatYuan(int64(in.MedfeeSumamt)))
	}
	var out UploadResult
	if err := c.call(ctx, Tx6201, in, &out); err != nil {
		return UploadResult{}, err
	}
	if out.PayOrdID == "" || out.PayToken == "" {
		return UploadResult{}, errUnavailable(errors.New("6201 answer without payOrdId or payToken"))
	}
	if p := out.ExtData.PreSetl; p != nil {
		err := checkAmounts(p.MedfeeSumamt, p.FundPaySumamt, p.AcctPay, p.PsnCashPay)
		if err == nil && p.MedfeeSumamt != in.MedfeeSumamt {
			err = &ihos.Error{Code: ihos.EConflict, Message: "医保结算金额不一致",
				Err: fmt.Errorf("6201 pre-settlement total %s, uploaded %s", ihos.FormatYuan(int64(p.MedfeeSumamt)), ihos.FormatYuan(int64(in.MedfeeSumamt)))}
		}
		if err != nil {
			c.logRefusal(ctx, "6201 pre-settlement refused", out.PayOrdID, err)
			return UploadResult{}, err
		}
	}
	return out, nil
}

// Order6202 places the payment order (6202). The result's State says what
// to do: Settled (book it), Pending (query with Query6301 or wait for the
// 6302 notify), Failed. An EUnavailable error means the outcome is unknown:
// repeat with the same OrgBizSer, or query.
func (c *Client) Order6202(ctx context.Context, in OrderRequest) (OrderResult, error) {
	if in.OrgCodg == "" {
		in.OrgCodg = c.OrgCodg
	}
	if in.OrgBizSer == "" {
		in.OrgBizSer = ihos.NewID()
	}
	if in.PayOrdID == "" || in.PayToken == "" {
		return OrderResult{}, ihos.Errorf(ihos.EInvalid, "缺少医保支付订单号或令牌（payOrdId/payToken）")
	}
	return c.result(ctx, Tx6202, in, in.PayOrdID)
}

// Query6301 asks for an order's state (6301).
func (c *Client) Query6301(ctx context.Context, in QueryRequest) (OrderResult, error) {
	if in.OrgCodg == "" {
		in.OrgCodg = c.OrgCodg
	}
	if in.PayOrdID == "" {
		return OrderResult{}, ihos.Errorf(ihos.EInvalid, "缺少医保支付订单号（payOrdId）")
	}
	return c.result(ctx, Tx6301, in, in.PayOrdID)
}

// result runs 6202 or 6301 and checks the answer: the order must be the one
// asked for and the amounts must add up.
func (c *Client) result(ctx context.Context, tx string, in any, payOrdID string) (OrderResult, error) {
	var r OrderResult
	if err := c.call(ctx, tx, in, &r); err != nil {
		return OrderResult{}, err
	}
	if r.PayOrdID != payOrdID {
		return OrderResult{}, errUnavailable(fmt.Errorf("%s answered for order %q, asked %q", tx, r.PayOrdID, payOrdID))
	}
	if err := checkAmounts(r.FeeSumamt, r.FundPay, r.PsnAcctPay, r.OwnPayAmt); err != nil {
		c.logRefusal(ctx, tx+" result refused", payOrdID, err)
		return OrderResult{}, err
	}
	r.State = StateOf(r.OrdStas)
	return r, nil
}

// Refund6203 refunds a settled order, fully or in part (6203). The parts
// must add up to TotlRefdAmt; AppRefdTime defaults to now.
func (c *Client) Refund6203(ctx context.Context, in RefundRequest) (RefundResult, error) {
	if in.PayOrdID == "" || in.AppRefdSn == "" {
		return RefundResult{}, ihos.Errorf(ihos.EInvalid, "缺少医保支付订单号或退款流水号")
	}
	if in.TotlRefdAmt <= 0 {
		return RefundResult{}, ihos.Errorf(ihos.EInvalid, "退款金额应大于零")
	}
	if err := checkAmounts(in.TotlRefdAmt, in.FundRefdAmt, in.PsnAcctRefdAmt, in.CashRefdAmt); err != nil {
		return RefundResult{}, ihos.Errorf(ihos.EInvalid, "退款金额不一致：总额应等于统筹、个人账户与现金退款之和")
	}
	if in.RefdType == "" {
		in.RefdType = RefdAll
	}
	if in.AppRefdTime == "" {
		in.AppRefdTime = c.now().In(ihos.Shanghai).Format("20060102150405")
	}
	var r RefundResult
	if err := c.call(ctx, Tx6203, in, &r); err != nil {
		return RefundResult{}, err
	}
	if r.PayOrdID != in.PayOrdID || r.AppRefdSn != in.AppRefdSn {
		return RefundResult{}, errUnavailable(fmt.Errorf("6203 answered for %q/%q", r.PayOrdID, r.AppRefdSn))
	}
	if err := checkAmounts(r.TotlRefdAmt, r.FundRefdAmt, r.PsnAcctRefdAmt, r.CashRefdAmt); err != nil {
		c.logRefusal(ctx, "6203 result refused", in.PayOrdID, err)
		return RefundResult{}, err
	}
	return r, nil
}

// Cancel6401 cancels a fee upload that was not paid (6401; fields are this
// package's design, see CancelRequest).
func (c *Client) Cancel6401(ctx context.Context, in CancelRequest) (CancelResult, error) {
	if in.OrgCodg == "" {
		in.OrgCodg = c.OrgCodg
	}
	if in.PayOrdID == "" || in.PayToken == "" {
		return CancelResult{}, ihos.Errorf(ihos.EInvalid, "缺少医保支付订单号或令牌（payOrdId/payToken）")
	}
	var r CancelResult
	if err := c.call(ctx, Tx6401, in, &r); err != nil {
		return CancelResult{}, err
	}
	return r, nil
}

// ParseNotify6302 checks a 6302 notify body as it arrived from the centre
// and returns its content. Refused, with a logged reason:
//
//   - not the envelope, wrong appId, or a signature that is not the
//     centre's (a forged notify): EForbidden "医保结算通知验签失败";
//   - a timestamp further than NotifyWindow from now, or a notify already
//     accepted (same signature) within the window (a replay): EConflict
//     "医保结算通知已过期或重复";
//   - amounts that do not add up: EConflict "医保结算金额不一致".
//
// The centre may send the same settlement more than once, each time newly
// signed: those pass here, and the caller applies a notify idempotently by
// payOrdId (and must check that the order is its own and the amounts are
// those it expects: see NotifyHandler).
func (c *Client) ParseNotify6302(body []byte) (Notify, error) {
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		err = &ihos.Error{Code: ihos.EForbidden, Message: "医保结算通知验签失败", Err: fmt.Errorf("not the envelope: %w", err)}
		c.logRefusal(context.Background(), "6302 notify refused", "", err)
		return Notify{}, err
	}
	plain, err := c.sealer().Open(env)
	if err != nil || len(plain) == 0 {
		if err == nil {
			err = errors.New("no data")
		}
		err = &ihos.Error{Code: ihos.EForbidden, Message: "医保结算通知验签失败", Err: err}
		c.logRefusal(context.Background(), "6302 notify refused", "", err)
		return Notify{}, err
	}
	var n Notify
	if err := json.Unmarshal(plain, &n); err != nil || n.PayOrdID == "" {
		if err == nil {
			err = errors.New("no payOrdId")
		}
		err = &ihos.Error{Code: ihos.EInvalid, Message: "医保结算通知内容无法识别", Err: err}
		c.logRefusal(context.Background(), "6302 notify refused", "", err)
		return Notify{}, err
	}
	if err := c.checkFresh(env); err != nil {
		c.logRefusal(context.Background(), "6302 notify refused", n.PayOrdID, err)
		return Notify{}, err
	}
	if err := checkAmounts(n.FeeSumamt, n.FundPay, n.PsnAcctPay, n.OwnPayAmt); err != nil {
		c.logRefusal(context.Background(), "6302 notify refused", n.PayOrdID, err)
		return Notify{}, err
	}
	return n, nil
}

// checkFresh refuses a stale notify and remembers a fresh one's signature,
// refusing it the second time.
func (c *Client) checkFresh(env Envelope) error {
	window := c.NotifyWindow
	if window <= 0 {
		window = DefaultNotifyWindow
	}
	now := c.now()
	if d := now.Sub(env.Time()); d > window || d < -window {
		return &ihos.Error{Code: ihos.EConflict, Message: "医保结算通知已过期或重复",
			Err: fmt.Errorf("timestamp %s is %s from now", env.Time().UTC().Format(time.RFC3339), d.Round(time.Second))}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	for k, at := range c.seen {
		if now.Sub(at) > 2*window {
			delete(c.seen, k)
		}
	}
	if _, dup := c.seen[env.SignData]; dup {
		return &ihos.Error{Code: ihos.EConflict, Message: "医保结算通知已过期或重复", Err: errors.New("the same notify was accepted before")}
	}
	c.seen[env.SignData] = now
	return nil
}

func (c *Client) logRefusal(ctx context.Context, what, payOrdID string, err error) {
	if c.Logger != nil {
		c.Logger.WarnContext(ctx, what, "pay_ord_id", payOrdID, "err", err.Error())
	}
}

// NotifyHandler serves the hospital's 6302 notify URL. It checks the notify
// (ParseNotify6302) and hands it to apply, which must look the order up
// (ENotFound for an unknown order), check the amounts against what it
// expects (EConflict on a mismatch) and book the settlement idempotently. The
// centre gets a signed answer envelope: code 0 "成功" when apply returned
// nil, otherwise code -1 with the Chinese reason, and then nothing was
// changed. A refusal is logged.
func (c *Client) NotifyHandler(apply func(context.Context, Notify) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			return
		}
		n, err := c.ParseNotify6302(body)
		if err == nil {
			if err = apply(r.Context(), n); err != nil {
				c.logRefusal(r.Context(), "6302 notify not applied", n.PayOrdID, err)
			}
		}
		code, msg := 0, "成功"
		if err != nil {
			code, msg = -1, ihos.ErrorMessage(err)
		}
		env, serr := c.sealer().SealAnswer(code, msg, nil)
		if serr != nil {
			http.Error(w, "sign failed", http.StatusInternalServerError)
			return
		}
		b, _ := json.Marshal(env)
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.Write(b)
	})
}
