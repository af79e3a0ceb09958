package paysim

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"ihos"
	"ihos/paychannel"
)

// order is the channel's record of one order.
type order struct {
	MchID         string    `json:"mchid"`
	AppID         string    `json:"appid"`
	OutTradeNo    string    `json:"out_trade_no"`
	TradeType     string    `json:"trade_type"`
	State         string    `json:"state"`
	Description   string    `json:"description"`
	Attach        string    `json:"attach,omitempty"`
	NotifyURL     string    `json:"notify_url"`
	OpenID        string    `json:"openid,omitempty"`
	PrepayID      string    `json:"prepay_id,omitempty"`
	CodeURL       string    `json:"code_url,omitempty"`
	TransactionID string    `json:"transaction_id,omitempty"`
	BankType      string    `json:"bank_type,omitempty"`
	Total         int64     `json:"total"`
	Created       time.Time `json:"created"`
	TimeExpire    time.Time `json:"time_expire"`
	SuccessTime   time.Time `json:"success_time"`
}

var stateDesc = map[string]string{
	paychannel.TradeSuccess:    "支付成功",
	paychannel.TradeRefund:     "转入退款",
	paychannel.TradeNotPay:     "订单未支付",
	paychannel.TradeClosed:     "已关闭",
	paychannel.TradeRevoked:    "已撤销",
	paychannel.TradeUserPaying: "用户支付中（输入密码）",
	paychannel.TradePayError:   "支付失败，请重新下单支付",
}

// beijing formats t as the channel does: RFC 3339 in +08:00.
func beijing(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(ihos.Shanghai).Format(time.RFC3339)
}

// transaction is the order as query and notify show it.
func (o *order) transaction() paychannel.Transaction {
	t := paychannel.Transaction{AppID: o.AppID, MchID: o.MchID, OutTradeNo: o.OutTradeNo, TransactionID: o.TransactionID,
		TradeType: o.TradeType, TradeState: o.State, TradeStateDesc: stateDesc[o.State], BankType: o.BankType,
		Attach: o.Attach, SuccessTime: beijing(o.SuccessTime), Amount: paychannel.Amount{Total: o.Total, Currency: "CNY"}}
	if o.State == paychannel.TradeSuccess || o.State == paychannel.TradeRefund {
		t.Amount.PayerTotal, t.Amount.PayerCurrency = o.Total, "CNY"
		t.Payer = &paychannel.Payer{OpenID: o.OpenID}
	}
	return t
}

func key(mchid, no string) string { return mchid + "/" + no }

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// nextID returns a channel number: prefix, Beijing date and a 16-digit
// serial, 28 digits like the real transaction_id. Call with s.mu held.
func (s *Sim) nextID(prefix string) string {
	s.seq++
	return prefix + s.cfg.Now().In(ihos.Shanghai).Format("20060102") + fmt.Sprintf("%016d", s.seq)
}

// expire closes an unpaid order whose time_expire has passed. Call with
// s.mu held; it reports whether the order changed.
func (s *Sim) expire(o *order) bool {
	if (o.State == paychannel.TradeNotPay || o.State == paychannel.TradePayError) && !o.TimeExpire.IsZero() && s.cfg.Now().After(o.TimeExpire) {
		o.State = paychannel.TradeClosed
		return true
	}
	return false
}

func validNo(s string, max int) bool {
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

// create handles JSAPI and Native orders.
func (s *Sim) create(m Merchant, body []byte, tradeType string) answer {
	var req paychannel.OrderRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "请求体不是合法的 JSON："+err.Error())
	}
	var expire time.Time
	switch {
	case req.MchID != m.MchID:
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "mchid 与请求的商户号不一致")
	case req.AppID != m.AppID:
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "appid 和 mch_id 不匹配")
	case !validNo(req.OutTradeNo, 32):
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "out_trade_no 须为 6-32 位字母、数字或 _-|*")
	case strings.TrimSpace(req.Description) == "" || len(req.Description) > 127:
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "description 不能为空且不超过 127 字节")
	case req.Amount.Total <= 0:
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "amount.total 必须大于 0")
	case req.Amount.Currency != "" && req.Amount.Currency != "CNY":
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "amount.currency 只支持 CNY")
	case !strings.HasPrefix(req.NotifyURL, "http://") && !strings.HasPrefix(req.NotifyURL, "https://"):
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "notify_url 必须是 http(s) 地址")
	case tradeType == paychannel.TradeTypeJSAPI && (req.Payer == nil || req.Payer.OpenID == ""):
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "JSAPI 下单需要 payer.openid")
	case req.TimeExpire != "":
		t, err := time.Parse(time.RFC3339, req.TimeExpire)
		if err != nil {
			return apiError(http.StatusBadRequest, paychannel.CodeParamError, "time_expire 格式不正确，应为 RFC 3339")
		}
		expire = t
	}
	openID := ""
	if req.Payer != nil {
		openID = req.Payer.OpenID
	}

	now := s.cfg.Now()
	s.mu.Lock()
	k := key(m.MchID, req.OutTradeNo)
	if o, ok := s.orders[k]; ok {
		// The same out_trade_no again: the same order when nothing
		// differs, as the idempotency key promises.
		if s.expire(o) {
			s.save(o)
		}
		same := o.TradeType == tradeType && o.Total == req.Amount.Total && o.Description == req.Description &&
			(tradeType != paychannel.TradeTypeJSAPI || o.OpenID == openID)
		state := o.State
		a := answer{http.StatusOK, createAnswer(o)}
		s.mu.Unlock()
		switch {
		case !same:
			return apiError(http.StatusBadRequest, paychannel.CodeOutTradeNoUsed, "商户订单号重复")
		case state == paychannel.TradeSuccess || state == paychannel.TradeRefund:
			return apiError(http.StatusBadRequest, paychannel.CodeOrderPaid, "该订单已支付")
		case state == paychannel.TradeClosed:
			return apiError(http.StatusBadRequest, paychannel.CodeOrderClosed, "订单已关闭")
		}
		s.count("create_repeat")
		return a
	}
	if expire.IsZero() {
		expire = now.Add(2 * time.Hour)
	}
	o := &order{MchID: m.MchID, AppID: m.AppID, OutTradeNo: req.OutTradeNo, TradeType: tradeType, State: paychannel.TradeNotPay,
		Description: req.Description, Attach: req.Attach, NotifyURL: req.NotifyURL, OpenID: openID,
		Total: req.Amount.Total, Created: now.UTC(), TimeExpire: expire.UTC()}
	if tradeType == paychannel.TradeTypeJSAPI {
		o.PrepayID = "wx" + now.In(ihos.Shanghai).Format("02150405") + randHex(26)
	} else {
		o.CodeURL = "weixin://wxpay/bizpayurl?pr=" + randHex(9)
	}
	s.orders[k] = o
	s.save(o)
	a := answer{http.StatusOK, createAnswer(o)}
	mode := s.mode
	s.mu.Unlock()

	switch {
	case mode.AutoPay && mode.EarlyNotify:
		// The patient pays and the notify arrives before the create answer.
		s.pay(m.MchID, req.OutTradeNo, "", "", true)
	case mode.AutoPay:
		s.later(time.Duration(mode.AutoPayDelayMS)*time.Millisecond, func() { s.pay(m.MchID, req.OutTradeNo, "", "", false) })
	}
	return a
}

func createAnswer(o *order) any {
	if o.TradeType == paychannel.TradeTypeJSAPI {
		return map[string]string{"prepay_id": o.PrepayID}
	}
	return map[string]string{"code_url": o.CodeURL}
}

func (s *Sim) query(r *http.Request, m Merchant, _ []byte) answer {
	if mch := r.URL.Query().Get("mchid"); mch != m.MchID {
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "mchid 参数缺失或与请求商户号不一致")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[key(m.MchID, r.PathValue("no"))]
	if !ok {
		return apiError(http.StatusNotFound, paychannel.CodeOrderNotExist, "订单不存在")
	}
	if s.expire(o) {
		s.save(o)
	}
	return answer{http.StatusOK, o.transaction()}
}

func (s *Sim) closeOrder(r *http.Request, m Merchant, body []byte) answer {
	var req struct {
		MchID string `json:"mchid"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.MchID != m.MchID {
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "请求体须包含与请求商户号一致的 mchid")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[key(m.MchID, r.PathValue("no"))]
	if !ok {
		return apiError(http.StatusNotFound, paychannel.CodeOrderNotExist, "订单不存在")
	}
	switch o.State {
	case paychannel.TradeSuccess, paychannel.TradeRefund:
		return apiError(http.StatusBadRequest, paychannel.CodeOrderPaid, "订单已支付，不能关闭")
	case paychannel.TradeClosed:
	default:
		o.State = paychannel.TradeClosed
		s.save(o)
	}
	return answer{http.StatusNoContent, nil}
}

// pay is the patient paying: result "" means the mode's PayResult. With a
// USERPAYING time the order waits in USERPAYING first. sync delivers the
// first notify attempt before returning (the early notify).
func (s *Sim) pay(mchid, outTradeNo, result, openID string, sync bool) (paychannel.Transaction, error) {
	s.mu.Lock()
	o, ok := s.orders[key(mchid, outTradeNo)]
	if !ok {
		s.mu.Unlock()
		return paychannel.Transaction{}, fmt.Errorf("订单 %s 不存在", outTradeNo)
	}
	if s.expire(o) {
		s.save(o)
	}
	mode := s.mode
	if result == "" {
		result = mode.PayResult
	}
	switch o.State {
	case paychannel.TradeClosed, paychannel.TradeRevoked:
		s.mu.Unlock()
		return paychannel.Transaction{}, fmt.Errorf("订单 %s 已关闭，不能支付", outTradeNo)
	case paychannel.TradeNotPay, paychannel.TradePayError:
	default: // paid or being paid: paying again takes nothing
		t := o.transaction()
		s.mu.Unlock()
		return t, nil
	}
	if openID != "" && o.OpenID == "" {
		o.OpenID = openID
	}
	if mode.UserPayingMS > 0 && !sync {
		o.State = paychannel.TradeUserPaying
		s.save(o)
		t := o.transaction()
		s.mu.Unlock()
		s.later(time.Duration(mode.UserPayingMS)*time.Millisecond, func() { s.finishPay(mchid, outTradeNo, result, false) })
		return t, nil
	}
	s.mu.Unlock()
	return s.finishPay(mchid, outTradeNo, result, sync)
}

// finishPay ends a payment with result SUCCESS or PAYERROR and notifies a
// success.
func (s *Sim) finishPay(mchid, outTradeNo, result string, sync bool) (paychannel.Transaction, error) {
	s.mu.Lock()
	o := s.orders[key(mchid, outTradeNo)]
	if o.State != paychannel.TradeNotPay && o.State != paychannel.TradeUserPaying && o.State != paychannel.TradePayError {
		t := o.transaction() // closed meanwhile, or already paid
		s.mu.Unlock()
		return t, nil
	}
	if result == paychannel.TradePayError {
		o.State = paychannel.TradePayError
		s.save(o)
		t := o.transaction()
		s.counts["pay_error"]++
		s.mu.Unlock()
		return t, nil
	}
	o.State = paychannel.TradeSuccess
	o.TransactionID = s.nextID("4200")
	o.SuccessTime = s.cfg.Now().UTC().Truncate(time.Second)
	o.BankType = "OTHERS"
	if o.OpenID == "" {
		h := sha256.Sum256([]byte(o.OutTradeNo))
		o.OpenID = "oSim" + hex.EncodeToString(h[:12])
	}
	s.save(o)
	s.counts["paid"]++
	t := o.transaction()
	m := s.merchants[mchid]
	url := o.NotifyURL
	s.mu.Unlock()
	s.notify(m, url, paychannel.EventTransactionSuccess, "支付成功", "transaction", t, sync)
	return t, nil
}
