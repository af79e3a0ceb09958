package paychannel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"ihos"
)

// Notify is a verified, decrypted notify: exactly one of Transaction and
// Refund is set.
//
// The channel sends a notify at least once: the same ID can arrive twice,
// and a payment notify can arrive before the create call has returned. The
// receiver must dedupe (by out_trade_no / out_refund_no and state, not by
// ID alone), and must answer 2xx only after the result is stored durably
// (NotifyAck); anything else makes the channel send it again.
type Notify struct {
	ID          string // the notify's id; the same on every retry of one event
	CreateTime  string
	EventType   string // EventTransactionSuccess, EventRefundSuccess, …
	Summary     string
	Transaction *Transaction  // payment notifies
	Refund      *RefundNotice // refund notifies
}

// ParseNotify reads a notify the channel POSTed to a notify_url: it checks
// the platform signature over the raw body, refuses a Wechatpay-Timestamp
// more than MaxClockSkew from our clock (a replayed or forged request),
// decrypts the resource with APIv3Key and checks it is for this merchant.
//
// Errors: EForbidden for a signature that does not verify, a stale
// timestamp, another merchant's notify or a resource that does not decrypt
// (a tampered ciphertext fails GCM authentication); EInvalid for a body
// that is not a notify. Answer the channel with NotifyAck(w, err).
func (c *Client) ParseNotify(r *http.Request) (Notify, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return Notify{}, &ihos.Error{Code: ihos.EInvalid, Message: "支付通知读取失败", Err: err}
	}
	if err := c.verify(r.Header, body); err != nil {
		msg := "支付通知签名验证失败，已拒绝"
		if errors.Is(err, errStale) {
			msg = "支付通知时间戳已过期（可能是重放），已拒绝"
		}
		return Notify{}, &ihos.Error{Code: ihos.EForbidden, Message: msg, Err: err}
	}
	var nb NotifyBody
	if err := json.Unmarshal(body, &nb); err != nil || nb.EventType == "" {
		return Notify{}, &ihos.Error{Code: ihos.EInvalid, Message: "支付通知格式不正确", Err: fmt.Errorf("notify body: %v", err)}
	}
	plain, err := DecryptResource(c.APIv3Key, nb.Resource)
	if err != nil {
		return Notify{}, &ihos.Error{Code: ihos.EForbidden, Message: "支付通知解密失败（密文被篡改或密钥不符），已拒绝", Err: err}
	}
	n := Notify{ID: nb.ID, CreateTime: nb.CreateTime, EventType: nb.EventType, Summary: nb.Summary}
	wrongMerchant := &ihos.Error{Code: ihos.EForbidden, Message: "支付通知不属于本商户，已拒绝"}
	switch {
	case strings.HasPrefix(nb.EventType, "TRANSACTION."):
		var t Transaction
		if err := json.Unmarshal(plain, &t); err != nil || t.OutTradeNo == "" {
			return Notify{}, &ihos.Error{Code: ihos.EInvalid, Message: "支付通知内容不正确", Err: fmt.Errorf("transaction: %v", err)}
		}
		if t.MchID != c.MchID || c.AppID != "" && t.AppID != c.AppID {
			wrongMerchant.Err = fmt.Errorf("notify for mchid %q appid %q", t.MchID, t.AppID)
			return Notify{}, wrongMerchant
		}
		n.Transaction = &t
	case strings.HasPrefix(nb.EventType, "REFUND."):
		var rn RefundNotice
		if err := json.Unmarshal(plain, &rn); err != nil || rn.OutRefundNo == "" {
			return Notify{}, &ihos.Error{Code: ihos.EInvalid, Message: "退款通知内容不正确", Err: fmt.Errorf("refund: %v", err)}
		}
		if rn.MchID != c.MchID {
			wrongMerchant.Err = fmt.Errorf("notify for mchid %q", rn.MchID)
			return Notify{}, wrongMerchant
		}
		n.Refund = &rn
	default:
		return Notify{}, &ihos.Error{Code: ihos.EInvalid, Message: "不支持的通知类型：" + ihos.Truncate(nb.EventType, 40)}
	}
	return n, nil
}

// NotifyAck answers the channel: 204 when err is nil (the notify is stored;
// stop sending it), otherwise HTTP 500 with {"code":"FAIL"} so that the
// channel sends it again later, or 401 for a notify refused as forged.
func NotifyAck(w http.ResponseWriter, err error) {
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	status := http.StatusInternalServerError
	if ihos.ErrorCode(err) == ihos.EForbidden || ihos.ErrorCode(err) == ihos.EInvalid {
		status = http.StatusUnauthorized
	}
	b, _ := json.Marshal(ErrorBody{Code: "FAIL", Message: ihos.ErrorMessage(err)})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
