package paysim

import (
	"encoding/json"
	"net/http"
	"time"

	"ihos/paychannel"
)

// refund is the channel's record of one refund.
type refund struct {
	MchID         string    `json:"mchid"`
	OutRefundNo   string    `json:"out_refund_no"`
	RefundID      string    `json:"refund_id"`
	OutTradeNo    string    `json:"out_trade_no"`
	TransactionID string    `json:"transaction_id"`
	Reason        string    `json:"reason,omitempty"`
	NotifyURL     string    `json:"notify_url,omitempty"`
	Status        string    `json:"status"`
	Refund        int64     `json:"refund"`
	Total         int64     `json:"total"`
	Attempts      int       `json:"attempts"`
	Created       time.Time `json:"created"`
	SuccessTime   time.Time `json:"success_time"`
}

func (f *refund) answer() paychannel.Refund {
	return paychannel.Refund{RefundID: f.RefundID, OutRefundNo: f.OutRefundNo, TransactionID: f.TransactionID,
		OutTradeNo: f.OutTradeNo, Channel: "ORIGINAL", UserReceivedAccount: "支付用户零钱", SuccessTime: beijing(f.SuccessTime),
		CreateTime: beijing(f.Created), Status: f.Status,
		Amount: paychannel.RefundAmount{Refund: f.Refund, Total: f.Total, Currency: "CNY", PayerTotal: f.Total, PayerRefund: f.Refund}}
}

func (f *refund) notice() paychannel.RefundNotice {
	return paychannel.RefundNotice{MchID: f.MchID, OutTradeNo: f.OutTradeNo, TransactionID: f.TransactionID,
		OutRefundNo: f.OutRefundNo, RefundID: f.RefundID, RefundStatus: f.Status, SuccessTime: beijing(f.SuccessTime),
		UserReceivedAccount: "支付用户零钱",
		Amount:              paychannel.RefundAmount{Refund: f.Refund, Total: f.Total, PayerTotal: f.Total, PayerRefund: f.Refund}}
}

// refund handles a refund request. The same out_refund_no again returns
// the same refund; one that ended ABNORMAL is tried again.
func (s *Sim) refund(r *http.Request, m Merchant, body []byte) answer {
	var req paychannel.RefundRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "请求体不是合法的 JSON："+err.Error())
	}
	if !validNo(req.OutRefundNo, 64) {
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "out_refund_no 须为 6-64 位字母、数字或 _-|*")
	}
	if req.Amount.Refund <= 0 {
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "退款金额必须大于 0")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var o *order
	if req.OutTradeNo != "" {
		o = s.orders[key(m.MchID, req.OutTradeNo)]
	} else if req.TransactionID != "" {
		for _, x := range s.orders {
			if x.MchID == m.MchID && x.TransactionID == req.TransactionID {
				o = x
				break
			}
		}
	}
	if o == nil {
		return apiError(http.StatusNotFound, paychannel.CodeResourceMissing, "订单不存在")
	}
	if f, ok := s.refunds[key(m.MchID, req.OutRefundNo)]; ok {
		if f.OutTradeNo != o.OutTradeNo || f.Refund != req.Amount.Refund {
			return apiError(http.StatusBadRequest, paychannel.CodeInvalidRequest, "退款单号已存在，且退款信息与原退款不一致")
		}
		if f.Status == paychannel.RefundAbnormal {
			f.Status = paychannel.RefundProcessing
			s.save(f)
			s.counts["refund_retry"]++
			s.scheduleRefund(f)
		}
		return answer{http.StatusOK, f.answer()}
	}
	if o.State != paychannel.TradeSuccess && o.State != paychannel.TradeRefund {
		return apiError(http.StatusBadRequest, paychannel.CodeInvalidRequest, "订单未支付，不能退款")
	}
	if req.Amount.Total != o.Total {
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "订单金额与原订单金额不一致")
	}
	var refunded int64
	for _, f := range s.refunds {
		if f.MchID == m.MchID && f.OutTradeNo == o.OutTradeNo && f.Status != paychannel.RefundClosed {
			refunded += f.Refund
		}
	}
	if refunded+req.Amount.Refund > o.Total {
		return apiError(http.StatusBadRequest, paychannel.CodeInvalidRequest, "申请退款金额超过订单可退金额")
	}
	f := &refund{MchID: m.MchID, OutRefundNo: req.OutRefundNo, RefundID: s.nextID("5030"), OutTradeNo: o.OutTradeNo,
		TransactionID: o.TransactionID, Reason: req.Reason, NotifyURL: req.NotifyURL, Status: paychannel.RefundProcessing,
		Refund: req.Amount.Refund, Total: o.Total, Created: s.cfg.Now().UTC().Truncate(time.Second)}
	s.refunds[key(m.MchID, f.OutRefundNo)] = f
	s.save(f)
	if o.State == paychannel.TradeSuccess {
		o.State = paychannel.TradeRefund
		s.save(o)
	}
	s.scheduleRefund(f)
	return answer{http.StatusOK, f.answer()}
}

// scheduleRefund ends a PROCESSING refund after the mode's refund delay:
// ABNORMAL while the mode's RefundAbnormal count lasts, else SUCCESS. Call
// with s.mu held.
func (s *Sim) scheduleRefund(f *refund) {
	delay := time.Duration(s.mode.RefundDelayMS) * time.Millisecond
	mchid, no := f.MchID, f.OutRefundNo
	if s.closed {
		return
	}
	s.bg.Add(1) // the timer below is owned by the background group
	go func() {
		defer s.bg.Done()
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.quit:
				t.Stop()
				return
			}
		}
		s.finishRefund(mchid, no)
	}()
}

func (s *Sim) finishRefund(mchid, no string) {
	s.mu.Lock()
	f := s.refunds[key(mchid, no)]
	if f.Status != paychannel.RefundProcessing {
		s.mu.Unlock()
		return
	}
	f.Attempts++
	event, summary := paychannel.EventRefundSuccess, "退款成功"
	if s.mode.RefundAbnormal > 0 {
		s.mode.RefundAbnormal--
		f.Status = paychannel.RefundAbnormal
		event, summary = paychannel.EventRefundAbnormal, "退款异常"
		s.counts["refund_abnormal"]++
	} else {
		f.Status = paychannel.RefundSuccess
		f.SuccessTime = s.cfg.Now().UTC().Truncate(time.Second)
		s.counts["refunded"]++
	}
	s.save(f)
	n := f.notice()
	m := s.merchants[mchid]
	url := f.NotifyURL
	s.mu.Unlock()
	if url != "" {
		s.notify(m, url, event, summary, "refund", n, false)
	}
}

func (s *Sim) queryRefund(r *http.Request, m Merchant, _ []byte) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.refunds[key(m.MchID, r.PathValue("no"))]
	if !ok {
		return apiError(http.StatusNotFound, paychannel.CodeResourceMissing, "退款单不存在")
	}
	return answer{http.StatusOK, f.answer()}
}
