package payments

import (
	"context"
	"time"

	"ihos"
)

// The external legs are reached through the small interfaces below; the lead
// adapts the real clients (paychannel, insurance/mobile, insurance through the
// sync RPC) to them. Every call carries an idempotency key stored before the
// call, so a retry after an unknown outcome asks the same question again.

// Channel is the online payment channel for the cash leg (self-pay),
// WeChat-Pay-like. Calls are idempotent by OutTradeNo and OutRefundNo.
//
// An error from any method means the outcome is unknown: the payment service
// never reads it as "not paid" or "not refunded"; it asks again (Query,
// QueryRefund) until the channel gives a final answer.
type Channel interface {
	// Create opens (or, for an OutTradeNo it already knows, returns again)
	// the channel order the patient pays on their phone.
	Create(ctx context.Context, o ChannelOrder) (ChannelCreated, error)
	// Query returns the order's state at the channel.
	Query(ctx context.Context, outTradeNo string) (ChannelState, error)
	// Close closes an unpaid order so it can no longer be paid. Closing an
	// order that does not exist or is already closed succeeds; the service
	// queries afterwards to learn whether it was paid in the meantime.
	Close(ctx context.Context, outTradeNo string) error
	// Refund asks for money back on a paid order. A failed refund is
	// re-submitted with the same OutRefundNo, as the channel requires.
	Refund(ctx context.Context, r ChannelRefund) (RefundState, error)
	// QueryRefund returns a refund's state.
	QueryRefund(ctx context.Context, outRefundNo string) (RefundState, error)
}

// ChannelOrder is a cash-leg order.
type ChannelOrder struct {
	OutTradeNo  string
	Amount      int64 // fen
	Description string
	PayerID     string // the patient's id at the channel (openid), when known
	ExpireAt    time.Time
	Attach      string // the payment id, echoed back by the channel
}

// ChannelCreated is what the client needs to pay: handed through to the phone
// or the kiosk unchanged.
type ChannelCreated struct {
	PrepayID  string            `json:"prepay_id"`
	PayParams map[string]string `json:"pay_params,omitempty"` // signed parameters for the payment UI
	CodeURL   string            `json:"code_url,omitempty"`   // a QR code to scan (kiosk)
}

// Channel order states.
const (
	ChannelPending  = "pending"   // not paid yet (NOTPAY, USERPAYING)
	ChannelPaid     = "paid"      // SUCCESS
	ChannelFailed   = "failed"    // PAYERROR: this order will not be paid
	ChannelClosed   = "closed"    // CLOSED, REVOKED
	ChannelNotFound = "not_found" // ORDERNOTEXIST: the create never arrived
)

// ChannelState is an order's state at the channel.
type ChannelState struct {
	State         string
	Amount        int64 // fen actually paid, for ChannelPaid
	TransactionID string
	PaidAt        time.Time
}

// ChannelRefund is a refund of a cash leg.
type ChannelRefund struct {
	OutTradeNo  string
	OutRefundNo string
	Amount      int64 // this refund
	Total       int64 // the order's amount
	Reason      string
}

// Refund leg states (channel and insurance).
const (
	LegResultPending   = "pending"   // PROCESSING: ask again
	LegResultSucceeded = "succeeded" // SUCCESS
	LegResultFailed    = "failed"    // ABNORMAL, CLOSED: re-submit with the same key
	RefundNotFound     = "not_found" // QueryRefund: the refund never arrived; submit it (same key)
)

// RefundState is a refund leg's state.
type RefundState struct {
	State    string
	Amount   int64
	RefundID string
	Message  string
}

// Insurance is the insurance leg (fund + personal account): 医保移动支付
// 6201/6202/6301/6203 or the national platform 2206/2207/2208, run by the
// appliance through the sync RPC in production. Calls are idempotent by key
// (the adapter derives msgid, orgBizSer and the like from it and keeps them,
// so a repeated call or a query finds the same settlement).
//
// An error means the outcome is unknown; a result with State InsPending means
// the centre has not decided yet (ordStas 0–2, 17–25): either way the service
// queries again.
type Insurance interface {
	// Settle runs the leg for an order and returns the final split.
	Settle(ctx context.Context, o InsuranceOrder) (InsuranceResult, error)
	// Query returns the state of the settlement or refund named by key.
	Query(ctx context.Context, key string) (InsuranceResult, error)
	// Refund returns the fund and account parts of a settled leg.
	Refund(ctx context.Context, r InsuranceRefund) (InsuranceResult, error)
	// Reverse cancels a leg that is unfinished, or settled but abandoned
	// (the cash leg never completed). nil means reversed; reversing a leg that
	// was never settled succeeds.
	Reverse(ctx context.Context, key string) error
}

// InsuranceOrder asks for an insurance settlement.
type InsuranceOrder struct {
	Key          string // idempotency key of the leg
	PaymentID    string
	HospitalID   string
	PatientID    string
	BusinessType string
	BusinessID   string
	Channel      string // ihos.ChannelInsuranceMobile or ihos.ChannelInsuranceSite
	Total        int64
	// Auth carries what the phone or kiosk got from the insurance app
	// (payAuthNo, uldLatlnt, ecToken…), passed through opaque.
	Auth map[string]string
}

// Insurance leg states.
const (
	InsPending  = "pending"
	InsSettled  = "settled"
	InsFailed   = "failed"
	InsRefunded = "refunded" // for refund keys
	InsReversed = "reversed"
	InsNotFound = "not_found" // Query: nothing under this key (the call never arrived)
)

// InsuranceResult is the state of a settlement or an insurance refund.
type InsuranceResult struct {
	State        string
	Split        ihos.Split // fund, account and cash of the whole order as settled
	SettlementID string     // setl_id / payOrdId
	Message      string
}

// InsuranceRefund returns the insurance parts of a settlement.
type InsuranceRefund struct {
	Key        string // idempotency key of this refund (the refund's out_refund_no)
	PaymentKey string // the settlement's key
	Fund       int64
	Account    int64
	Total      int64 // the settlement's total
	Reason     string
}
