package paychannel

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"ihos"
)

// BillRow is one line of a daily trade bill. A payment is one row with
// TradeState SUCCESS (Settlement and Total set); a refund is one row with
// TradeState REFUND on the day it succeeded (Refund and RefundRequested set,
// Fee negative: the fee given back). Amounts are fen.
type BillRow struct {
	TradeTime       time.Time // Beijing time of the payment or the refund
	AppID           string
	MchID           string
	SubMchID        string
	DeviceInfo      string
	TransactionID   string
	OutTradeNo      string
	OpenID          string
	TradeType       string
	TradeState      string // SUCCESS or REFUND
	BankType        string
	Currency        string
	Settlement      int64 // 应结订单金额
	Coupon          int64 // 代金券金额
	RefundID        string
	OutRefundNo     string
	Refund          int64 // 退款金额
	CouponRefund    int64 // 充值券退款金额
	RefundType      string
	RefundStatus    string
	Description     string
	Attach          string
	Fee             int64  // 手续费
	Rate            string // 费率, "0.60%"
	Total           int64  // 订单金额
	RefundRequested int64  // 申请退款金额
	RateNote        string
}

// BillSummary is the summary line of a bill.
type BillSummary struct {
	Count           int64
	Settlement      int64
	Refund          int64
	CouponRefund    int64
	Fee             int64
	Total           int64
	RefundRequested int64
}

// Summarize adds up rows as the summary line does.
func Summarize(rows []BillRow) BillSummary {
	s := BillSummary{Count: int64(len(rows))}
	for _, r := range rows {
		s.Settlement += r.Settlement
		s.Refund += r.Refund
		s.CouponRefund += r.CouponRefund
		s.Fee += r.Fee
		s.Total += r.Total
		s.RefundRequested += r.RefundRequested
	}
	return s
}

// billTime is how the bill writes times (Beijing time).
const billTime = "2006-01-02 15:04:05"

// FormatBill writes rows as the channel's bill file: the header, one line
// per row with every value prefixed by "`", the summary header and the
// summary line.
func FormatBill(rows []BillRow) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(BillHeader)
	tick := func(vs ...string) []string {
		for i := range vs {
			vs[i] = "`" + vs[i]
		}
		return vs
	}
	y := ihos.FormatYuan
	for _, r := range rows {
		w.Write(tick(r.TradeTime.In(ihos.Shanghai).Format(billTime), r.AppID, r.MchID, r.SubMchID, r.DeviceInfo,
			r.TransactionID, r.OutTradeNo, r.OpenID, r.TradeType, r.TradeState, r.BankType, r.Currency,
			y(r.Settlement), y(r.Coupon), r.RefundID, r.OutRefundNo, y(r.Refund), y(r.CouponRefund), r.RefundType,
			r.RefundStatus, r.Description, r.Attach, y(r.Fee), r.Rate, y(r.Total), y(r.RefundRequested), r.RateNote))
	}
	s := Summarize(rows)
	w.Write(BillSummaryHeader)
	w.Write(tick(fmt.Sprint(s.Count), y(s.Settlement), y(s.Refund), y(s.CouponRefund), y(s.Fee), y(s.Total), y(s.RefundRequested)))
	w.Flush()
	return buf.Bytes()
}

// ParseBill reads a bill file and checks that its summary line adds up.
func ParseBill(b []byte) ([]BillRow, BillSummary, error) {
	rd := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))))
	rd.FieldsPerRecord = -1
	recs, err := rd.ReadAll()
	if err != nil {
		return nil, BillSummary{}, err
	}
	if len(recs) < 3 || len(recs[0]) != len(BillHeader) || recs[0][0] != BillHeader[0] {
		return nil, BillSummary{}, errors.New("not a trade bill: header missing")
	}
	var rows []BillRow
	i := 1
	for ; i < len(recs) && recs[i][0] != BillSummaryHeader[0]; i++ {
		rec := recs[i]
		if len(rec) != len(BillHeader) {
			return nil, BillSummary{}, fmt.Errorf("line %d has %d columns, want %d", i+1, len(rec), len(BillHeader))
		}
		v := make([]string, len(rec))
		for j, f := range rec {
			v[j] = strings.TrimPrefix(f, "`")
		}
		var r BillRow
		var errs []error
		fen := func(s string) int64 {
			n, err := ihos.ParseYuan(s)
			errs = append(errs, err)
			return n
		}
		r.TradeTime, err = time.ParseInLocation(billTime, v[0], ihos.Shanghai)
		errs = append(errs, err)
		r.AppID, r.MchID, r.SubMchID, r.DeviceInfo, r.TransactionID, r.OutTradeNo, r.OpenID = v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		r.TradeType, r.TradeState, r.BankType, r.Currency = v[8], v[9], v[10], v[11]
		r.Settlement, r.Coupon, r.RefundID, r.OutRefundNo = fen(v[12]), fen(v[13]), v[14], v[15]
		r.Refund, r.CouponRefund, r.RefundType, r.RefundStatus = fen(v[16]), fen(v[17]), v[18], v[19]
		r.Description, r.Attach, r.Fee, r.Rate = v[20], v[21], fen(v[22]), v[23]
		r.Total, r.RefundRequested, r.RateNote = fen(v[24]), fen(v[25]), v[26]
		if err := errors.Join(errs...); err != nil {
			return nil, BillSummary{}, fmt.Errorf("line %d: %w", i+1, err)
		}
		rows = append(rows, r)
	}
	if i+1 >= len(recs) || len(recs[i+1]) != len(BillSummaryHeader) {
		return nil, BillSummary{}, errors.New("summary line missing")
	}
	v := make([]int64, len(BillSummaryHeader))
	for j, f := range recs[i+1] {
		f = strings.TrimPrefix(f, "`")
		if j == 0 {
			_, err = fmt.Sscan(f, &v[0])
		} else {
			v[j], err = ihos.ParseYuan(f)
		}
		if err != nil {
			return nil, BillSummary{}, fmt.Errorf("summary column %s: %v", BillSummaryHeader[j], err)
		}
	}
	got := BillSummary{v[0], v[1], v[2], v[3], v[4], v[5], v[6]}
	if want := Summarize(rows); got != want {
		return nil, BillSummary{}, fmt.Errorf("summary %+v does not add up: rows give %+v", got, want)
	}
	return rows, got, nil
}

// Bill downloads the trade bill (bill_type ALL) of one day, date
// "2006-01-02" in Beijing time: it asks for the download URL, downloads the
// file, checks its SHA-1 against the hash the signed answer gave and that
// its summary adds up. A day without trades (CodeNoStatement) is an empty
// bill, not an error. Reconcile by out_trade_no / out_refund_no.
func (c *Client) Bill(ctx context.Context, date string) ([]BillRow, error) {
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		return nil, ihos.Invalid(map[string]string{"bill_date": "账单日期格式应为 2006-01-02"})
	}
	var ans TradeBillAnswer
	err := c.do(ctx, "trade bill", http.MethodGet, PathTradeBill+"?bill_date="+url.QueryEscape(date)+"&bill_type=ALL", nil, &ans)
	if ChannelCode(err) == CodeNoStatement {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if ans.DownloadURL == "" || !strings.EqualFold(ans.HashType, "SHA1") {
		return nil, unavailable("trade bill", fmt.Errorf("answer %+v: no download_url or unknown hash_type", ans))
	}
	// The file itself is not signed: the hash in the signed answer vouches
	// for it.
	body, status, _, err := c.send(ctx, "bill download", http.MethodGet, ans.DownloadURL, nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, unavailable("bill download", fmt.Errorf("HTTP %d", status))
	}
	sum := sha1.Sum(body)
	if !strings.EqualFold(hex.EncodeToString(sum[:]), ans.HashValue) {
		return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "对账单校验失败，请稍后重新下载",
			Err: fmt.Errorf("bill %s: sha1 %x, answer says %s", date, sum, ans.HashValue)}
	}
	rows, _, err := ParseBill(body)
	if err != nil {
		return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "对账单格式不正确，请稍后重新下载", Err: err}
	}
	return rows, nil
}
