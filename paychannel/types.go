package paychannel

import "time"

// API paths, as the real channel has them. {x} is a path parameter.
const (
	PathJSAPI           = "/v3/pay/transactions/jsapi"
	PathNative          = "/v3/pay/transactions/native"
	PathQueryOutTradeNo = "/v3/pay/transactions/out-trade-no/" // + {out_trade_no}?mchid=…
	PathCloseSuffix     = "/close"                             // PathQueryOutTradeNo + {out_trade_no} + PathCloseSuffix
	PathRefunds         = "/v3/refund/domestic/refunds"        // POST; GET + "/" + {out_refund_no}
	PathTradeBill       = "/v3/bill/tradebill"                 // ?bill_date=2006-01-02&bill_type=ALL
	PathBillDownload    = "/v3/billdownload/file"              // ?token=…, the download_url the bill API returns
)

// Trade states (trade_state of a query and of a payment notify).
const (
	TradeSuccess    = "SUCCESS"    // paid
	TradeRefund     = "REFUND"     // paid, then (partly) refunded
	TradeNotPay     = "NOTPAY"     // not paid (yet)
	TradeClosed     = "CLOSED"     // closed unpaid; can never be paid
	TradeRevoked    = "REVOKED"    // revoked (payment-code trades)
	TradeUserPaying = "USERPAYING" // the patient is paying (entering a password); ask again
	TradePayError   = "PAYERROR"   // the payment failed (bank refused); nothing was taken
)

// Refund states.
const (
	RefundSuccess    = "SUCCESS"
	RefundProcessing = "PROCESSING"
	RefundClosed     = "CLOSED"
	RefundAbnormal   = "ABNORMAL" // the money could not go back (card cancelled…); retry with the same out_refund_no
)

// Trade types.
const (
	TradeTypeJSAPI  = "JSAPI"
	TradeTypeNative = "NATIVE"
)

// Notify event types.
const (
	EventTransactionSuccess = "TRANSACTION.SUCCESS"
	EventRefundSuccess      = "REFUND.SUCCESS"
	EventRefundAbnormal     = "REFUND.ABNORMAL"
	EventRefundClosed       = "REFUND.CLOSED"
)

// Channel error codes (the "code" of an error answer) that callers act on.
const (
	CodeParamError      = "PARAM_ERROR"
	CodeInvalidRequest  = "INVALID_REQUEST"
	CodeSignError       = "SIGN_ERROR"
	CodeSystemError     = "SYSTEM_ERROR"
	CodeOutTradeNoUsed  = "OUT_TRADE_NO_USED" // the same out_trade_no with other contents
	CodeOrderPaid       = "ORDERPAID"         // create or close of an order already paid
	CodeOrderClosed     = "ORDER_CLOSED"
	CodeOrderNotExist   = "ORDER_NOT_EXIST"
	CodeResourceMissing = "RESOURCE_NOT_EXISTS"
	CodeNotEnough       = "NOT_ENOUGH" // refund: merchant balance too low; retry later
	CodeFrequencyLimit  = "FREQUENCY_LIMITED"
	CodeNoStatement     = "NO_STATEMENT_EXIST" // no bill for that day
)

// Amount is an order amount in fen.
type Amount struct {
	Total         int64  `json:"total"`
	Currency      string `json:"currency,omitempty"` // "CNY"
	PayerTotal    int64  `json:"payer_total,omitempty"`
	PayerCurrency string `json:"payer_currency,omitempty"`
}

// Payer identifies the paying user of a JSAPI order.
type Payer struct {
	OpenID string `json:"openid"`
}

// OrderRequest is the body of a JSAPI or Native create call.
type OrderRequest struct {
	AppID       string `json:"appid"`
	MchID       string `json:"mchid"`
	Description string `json:"description"`
	OutTradeNo  string `json:"out_trade_no"`
	TimeExpire  string `json:"time_expire,omitempty"` // RFC 3339 with offset
	Attach      string `json:"attach,omitempty"`
	NotifyURL   string `json:"notify_url"`
	Amount      Amount `json:"amount"`
	Payer       *Payer `json:"payer,omitempty"` // JSAPI only
}

// Transaction is an order as the query answers it and a payment notify
// carries it (decrypted).
type Transaction struct {
	AppID          string `json:"appid"`
	MchID          string `json:"mchid"`
	OutTradeNo     string `json:"out_trade_no"`
	TransactionID  string `json:"transaction_id,omitempty"` // the channel's order number, once paid
	TradeType      string `json:"trade_type,omitempty"`
	TradeState     string `json:"trade_state"`
	TradeStateDesc string `json:"trade_state_desc"`
	BankType       string `json:"bank_type,omitempty"`
	Attach         string `json:"attach,omitempty"`
	SuccessTime    string `json:"success_time,omitempty"` // RFC 3339 with +08:00
	Payer          *Payer `json:"payer,omitempty"`
	Amount         Amount `json:"amount"`
}

// Paid reports whether the money was taken (SUCCESS, or REFUND: paid and
// refunded since). Only these two states mean money arrived.
func (t Transaction) Paid() bool { return t.TradeState == TradeSuccess || t.TradeState == TradeRefund }

// Final reports whether the state can no longer change by itself: paid,
// closed, revoked or failed. NOTPAY and USERPAYING are not final: ask again
// (or close the order, then ask again).
func (t Transaction) Final() bool {
	switch t.TradeState {
	case TradeSuccess, TradeRefund, TradeClosed, TradeRevoked, TradePayError:
		return true
	}
	return false
}

// SuccessAt parses SuccessTime; the zero time when unset.
func (t Transaction) SuccessAt() time.Time {
	ts, _ := time.Parse(time.RFC3339, t.SuccessTime)
	return ts
}

// RefundAmount is a refund's amounts in fen.
type RefundAmount struct {
	Refund      int64  `json:"refund"`
	Total       int64  `json:"total"`
	Currency    string `json:"currency,omitempty"`
	PayerTotal  int64  `json:"payer_total,omitempty"`
	PayerRefund int64  `json:"payer_refund,omitempty"`
}

// RefundRequest is the body of a refund create call.
type RefundRequest struct {
	TransactionID string       `json:"transaction_id,omitempty"`
	OutTradeNo    string       `json:"out_trade_no,omitempty"`
	OutRefundNo   string       `json:"out_refund_no"`
	Reason        string       `json:"reason,omitempty"`
	NotifyURL     string       `json:"notify_url,omitempty"`
	Amount        RefundAmount `json:"amount"`
}

// Refund is a refund as create and query answer it.
type Refund struct {
	RefundID            string       `json:"refund_id"`
	OutRefundNo         string       `json:"out_refund_no"`
	TransactionID       string       `json:"transaction_id"`
	OutTradeNo          string       `json:"out_trade_no"`
	Channel             string       `json:"channel"` // ORIGINAL: back to where the money came from
	UserReceivedAccount string       `json:"user_received_account"`
	SuccessTime         string       `json:"success_time,omitempty"`
	CreateTime          string       `json:"create_time"`
	Status              string       `json:"status"`
	Amount              RefundAmount `json:"amount"`
}

// RefundNotice is the decrypted resource of a refund notify (the channel
// names the state refund_status there).
type RefundNotice struct {
	MchID               string       `json:"mchid"`
	OutTradeNo          string       `json:"out_trade_no"`
	TransactionID       string       `json:"transaction_id"`
	OutRefundNo         string       `json:"out_refund_no"`
	RefundID            string       `json:"refund_id"`
	RefundStatus        string       `json:"refund_status"`
	SuccessTime         string       `json:"success_time,omitempty"`
	UserReceivedAccount string       `json:"user_received_account"`
	Amount              RefundAmount `json:"amount"`
}

// NotifyBody is the JSON body the channel POSTs to notify_url.
type NotifyBody struct {
	ID           string   `json:"id"`
	CreateTime   string   `json:"create_time"`
	EventType    string   `json:"event_type"`
	ResourceType string   `json:"resource_type"` // "encrypt-resource"
	Summary      string   `json:"summary"`
	Resource     Resource `json:"resource"`
}

// TradeBillAnswer is the answer of the trade bill API.
type TradeBillAnswer struct {
	HashType    string `json:"hash_type"` // "SHA1"
	HashValue   string `json:"hash_value"`
	DownloadURL string `json:"download_url"`
}

// ErrorBody is the body of an error answer.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// BillHeader is the header line of a trade bill (bill_type ALL), in the
// channel's column order. Every value line has the same columns, each value
// prefixed with "`" as the channel does so spreadsheets keep long numbers.
var BillHeader = []string{"交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识",
	"交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号", "商户退款单号", "退款金额",
	"充值券退款金额", "退款类型", "退款状态", "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注"}

// BillSummaryHeader is the header of the summary line after the rows.
var BillSummaryHeader = []string{"总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额", "申请退款总金额"}
