package paysim

import (
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"slices"
	"time"

	"ihos"
	"ihos/paychannel"
)

// feeRate is the simulated channel fee: 0.60 %, rounded half up to the fen.
const feeRate = "0.60%"

func fee(fen int64) int64 { return (fen*6 + 500) / 1000 }

// billRows builds the day's bill from the channel's own records: a row for
// every payment that succeeded that day (Beijing time) and one for every
// refund that succeeded that day. Call with s.mu held.
func (s *Sim) billRows(mchid string, day time.Time) []paychannel.BillRow {
	start := day
	end := day.AddDate(0, 0, 1)
	in := func(t time.Time) bool { return !t.IsZero() && !t.Before(start) && t.Before(end) }
	var rows []paychannel.BillRow
	for _, o := range s.orders {
		if o.MchID != mchid || !in(o.SuccessTime) {
			continue
		}
		rows = append(rows, paychannel.BillRow{TradeTime: o.SuccessTime, AppID: o.AppID, MchID: o.MchID, SubMchID: "0",
			TransactionID: o.TransactionID, OutTradeNo: o.OutTradeNo, OpenID: o.OpenID, TradeType: o.TradeType,
			TradeState: paychannel.TradeSuccess, BankType: o.BankType, Currency: "CNY", Settlement: o.Total,
			RefundID: "0", OutRefundNo: "0", Description: o.Description, Attach: o.Attach, Fee: fee(o.Total),
			Rate: feeRate, Total: o.Total})
	}
	for _, f := range s.refunds {
		if f.MchID != mchid || f.Status != paychannel.RefundSuccess || !in(f.SuccessTime) {
			continue
		}
		o := s.orders[key(f.MchID, f.OutTradeNo)]
		rows = append(rows, paychannel.BillRow{TradeTime: f.SuccessTime, AppID: o.AppID, MchID: o.MchID, SubMchID: "0",
			TransactionID: o.TransactionID, OutTradeNo: o.OutTradeNo, OpenID: o.OpenID, TradeType: o.TradeType,
			TradeState: paychannel.TradeRefund, BankType: o.BankType, Currency: "CNY", RefundID: f.RefundID,
			OutRefundNo: f.OutRefundNo, Refund: f.Refund, RefundType: "ORIGINAL", RefundStatus: paychannel.RefundSuccess,
			Description: o.Description, Attach: o.Attach, Fee: -fee(f.Refund), Rate: feeRate, RefundRequested: f.Refund})
	}
	slices.SortFunc(rows, func(a, b paychannel.BillRow) int {
		if c := a.TradeTime.Compare(b.TradeTime); c != 0 {
			return c
		}
		return compareStrings(a.OutTradeNo+a.OutRefundNo, b.OutTradeNo+b.OutRefundNo)
	})
	return rows
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// tradeBill answers GET /v3/bill/tradebill: the SHA-1 of the bill file and
// a URL to download it from. Today's bill is the day so far (the real
// channel has a day's bill from 10:00 the next day).
func (s *Sim) tradeBill(r *http.Request, m Merchant, _ []byte) answer {
	q := r.URL.Query()
	day, err := time.ParseInLocation(time.DateOnly, q.Get("bill_date"), ihos.Shanghai)
	if err != nil {
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "bill_date 格式应为 yyyy-MM-DD")
	}
	if t := q.Get("bill_type"); t != "" && t != "ALL" {
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "模拟渠道只支持 bill_type=ALL")
	}
	if day.After(s.cfg.Now()) {
		return apiError(http.StatusBadRequest, paychannel.CodeParamError, "账单日期不能是将来的日期")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := s.billRows(m.MchID, day)
	if len(rows) == 0 {
		return apiError(http.StatusBadRequest, paychannel.CodeNoStatement, "该日期无交易，账单不存在")
	}
	file := paychannel.FormatBill(rows)
	token := randHex(32)
	s.bills[token] = file
	s.billOrder = append(s.billOrder, token)
	if len(s.billOrder) > 100 {
		delete(s.bills, s.billOrder[0])
		s.billOrder = s.billOrder[1:]
	}
	sum := sha1.Sum(file)
	return answer{http.StatusOK, paychannel.TradeBillAnswer{HashType: "SHA1", HashValue: hex.EncodeToString(sum[:]),
		DownloadURL: s.url + paychannel.PathBillDownload + "?token=" + token}}
}

// billDownload serves a bill file. The request is signed like any other;
// the file is not (the hash in the signed bill answer vouches for it).
func (s *Sim) billDownload(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		return
	}
	if _, bad := s.authenticate(r, body); bad != "" {
		s.writeSigned(w, r, apiError(http.StatusUnauthorized, paychannel.CodeSignError, bad))
		return
	}
	s.mu.Lock()
	file, ok := s.bills[r.URL.Query().Get("token")]
	s.mu.Unlock()
	if !ok {
		s.writeSigned(w, r, apiError(http.StatusNotFound, paychannel.CodeResourceMissing, "下载链接无效或已过期"))
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Write(file)
}
