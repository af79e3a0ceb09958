package ihos

import "time"

// Payment statuses (docs/decisions/0012). A payment starts created, is paying
// while any leg is outstanding or its outcome unknown, and ends paid, failed,
// cancelled (by the patient) or closed (at its deadline). Refunds then move a
// paid payment to partially_refunded and refunded.
const (
	PaymentCreated           = "created"
	PaymentPaying            = "paying"
	PaymentPaid              = "paid"
	PaymentFailed            = "failed"
	PaymentCancelled         = "cancelled"
	PaymentClosed            = "closed"
	PaymentPartiallyRefunded = "partially_refunded"
	PaymentRefunded          = "refunded"
)

// PaymentStatusLabel is the Chinese name of a payment status for the console.
func PaymentStatusLabel(status string) string {
	switch status {
	case PaymentCreated:
		return "待支付"
	case PaymentPaying:
		return "支付中"
	case PaymentPaid:
		return "已支付"
	case PaymentFailed:
		return "支付失败"
	case PaymentCancelled:
		return "已取消"
	case PaymentClosed:
		return "已关闭"
	case PaymentPartiallyRefunded:
		return "部分退款"
	case PaymentRefunded:
		return "已退款"
	}
	return status
}

// PaymentActive reports whether a payment in status may still take money: a
// second payment for the same business waits for it.
func PaymentActive(status string) bool { return status == PaymentCreated || status == PaymentPaying }

// PaymentFinal reports whether status ends the paying phase (refunds may still
// follow a paid one).
func PaymentFinal(status string) bool { return !PaymentActive(status) }

// Business types: every payable thing goes through one payment service.
const (
	PayVisitFee           = "visit_fee"           // 挂号费
	PayConsultation       = "consultation"        // 问诊费
	PayClinicOrder        = "clinic_order"        // 便民门诊
	PayPrescription       = "prescription"        // 处方
	PayNursingOrder       = "nursing_order"       // 护理服务
	PayNursingConsumables = "nursing_consumables" // 护理耗材
	PayDeliveryFee        = "delivery_fee"        // 配送费
	PayOutpatientBill     = "outpatient_bill"     // 诊间支付
)

// BusinessTypeLabels names each business type in Chinese.
var BusinessTypeLabels = map[string]string{
	PayVisitFee:           "挂号费",
	PayConsultation:       "问诊费",
	PayClinicOrder:        "便民门诊",
	PayPrescription:       "处方",
	PayNursingOrder:       "护理服务",
	PayNursingConsumables: "护理耗材",
	PayDeliveryFee:        "配送费",
	PayOutpatientBill:     "诊间支付",
}

// Payment channels: how the patient pays.
const (
	ChannelSelfPay         = "selfpay"          // the online payment channel only
	ChannelInsuranceMobile = "insurance_mobile" // 医保移动支付 (6201/6202) plus the cash leg
	ChannelInsuranceSite   = "insurance_site"   // the national platform (2206/2207, 展码) plus the cash leg
)

// ChannelLabels names each channel in Chinese.
var ChannelLabels = map[string]string{
	ChannelSelfPay:         "自费支付",
	ChannelInsuranceMobile: "医保移动支付",
	ChannelInsuranceSite:   "医保电子凭证",
}

// Split is how a total divides between the insurance fund, the personal
// account and cash, in fen.
type Split struct {
	Fund    int64 `json:"fund_pay"`
	Account int64 `json:"account_pay"`
	Cash    int64 `json:"cash_pay"`
}

// Total is the sum of the parts.
func (s Split) Total() int64 { return s.Fund + s.Account + s.Cash }

// CheckSplit verifies the money rule every settlement must satisfy: no part is
// negative and fund + account + cash = total.
func CheckSplit(total int64, s Split) error {
	if total < 0 || s.Fund < 0 || s.Account < 0 || s.Cash < 0 {
		return Errorf(EInvalid, "金额不能为负数")
	}
	if s.Total() != total {
		return Errorf(EConflict, "医保基金 %s + 个人账户 %s + 现金 %s 不等于总额 %s",
			FormatYuan(s.Fund), FormatYuan(s.Account), FormatYuan(s.Cash), FormatYuan(total))
	}
	return nil
}

// Payment is one payable order and what has been paid and refunded on it.
type Payment struct {
	ID            string `json:"id"`
	HospitalID    string `json:"hospital_id"`
	BusinessType  string `json:"business_type"`
	BusinessID    string `json:"business_id"`
	PatientID     string `json:"patient_id"`
	DoctorID      string `json:"doctor_id"`
	DepartmentID  string `json:"department_id"`
	Channel       string `json:"channel"`
	Subject       string `json:"subject"`
	Total         int64  `json:"total"`
	FundPay       int64  `json:"fund_pay"`
	AccountPay    int64  `json:"account_pay"`
	CashPay       int64  `json:"cash_pay"`
	Refunded      int64  `json:"refunded"`  // refunds that succeeded
	Refunding     int64  `json:"refunding"` // refunds under way
	Status        string `json:"status"`
	StatusLabel   string `json:"status_label"`
	OutTradeNo    string `json:"out_trade_no"`
	InsuranceKey  string `json:"insurance_key,omitempty"`
	InsStatus     string `json:"insurance_status"` // LegNone, LegPending, LegDone, LegFailed, LegReversed
	CashStatus    string `json:"cash_status"`
	TransactionID string `json:"transaction_id,omitempty"`
	// NeedsConfirm is set when the insurance settled a split other than the
	// one the patient saw: the cash leg waits for the patient to accept it.
	NeedsConfirm bool `json:"needs_confirm"`
	// Ending is the final status a payment being wound down (closing the cash
	// order, reversing the insurance leg) will take: cancelled, closed or failed.
	Ending      string    `json:"ending,omitempty"`
	Deadline    time.Time `json:"deadline"`
	NextQueryAt time.Time `json:"next_query_at,omitzero"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	PaidAt      time.Time `json:"paid_at,omitzero"`
	UpdatedAt   time.Time `json:"updated_at"`
	Version     int64     `json:"version"`
}

// Split returns the payment's current split.
func (p *Payment) Split() Split {
	return Split{Fund: p.FundPay, Account: p.AccountPay, Cash: p.CashPay}
}

// HasInsurance reports whether the payment has an insurance leg.
func (p *Payment) HasInsurance() bool { return p.Channel != ChannelSelfPay }

// Leg statuses: the state of one external leg (insurance or cash) of a
// payment or refund.
const (
	LegNone     = "none"     // not started (or not needed)
	LegPending  = "pending"  // asked; outcome not final yet (queried until it is)
	LegDone     = "done"     // settled / paid / refunded
	LegFailed   = "failed"   // definitively failed
	LegReversed = "reversed" // undone: insurance reversed, cash order closed
)

// Refund statuses.
const (
	RefundPending   = "pending"   // sent or about to be; outcome not final yet
	RefundSucceeded = "succeeded" // every leg returned the money
	RefundFailed    = "failed"    // a leg failed; the resolver re-submits it with the same refund number
)

// RefundStatusLabel is the Chinese name of a refund status.
func RefundStatusLabel(status string) string {
	switch status {
	case RefundPending:
		return "退款中"
	case RefundSucceeded:
		return "退款成功"
	case RefundFailed:
		return "退款失败（重试中）"
	}
	return status
}

// Refund is money going back to the patient by the payment's original route:
// the fund and account parts through the insurance centre, the cash part
// through the payment channel.
type Refund struct {
	ID          string    `json:"id"`
	HospitalID  string    `json:"hospital_id"`
	PaymentID   string    `json:"payment_id"`
	OutRefundNo string    `json:"out_refund_no"`
	RequestKey  string    `json:"request_key,omitempty"`
	Amount      int64     `json:"amount"`
	FundPart    int64     `json:"fund_part"`
	AccountPart int64     `json:"account_part"`
	CashPart    int64     `json:"cash_part"`
	Status      string    `json:"status"`
	StatusLabel string    `json:"status_label"`
	InsStatus   string    `json:"insurance_status"`
	CashStatus  string    `json:"cash_status"`
	Reason      string    `json:"reason"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error,omitempty"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	DoneAt      time.Time `json:"done_at,omitzero"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// RefundSplit divides a refund of amount over a payment's remaining parts.
// The rule (docs/decisions/0012): cash goes back first, through the channel,
// so a partial refund touches only the cash part; the fund and account parts
// go back only with the whole remainder (the centre reverses a settlement as a
// whole), so a partial refund larger than the remaining cash is refused: the
// staff refund in full and the business is settled again.
//
// cashTaken is the cash part of the payment's refunds that succeeded or are
// under way.
func RefundSplit(p *Payment, cashTaken, amount int64) (Split, error) {
	remaining := p.Total - p.Refunded - p.Refunding
	if amount <= 0 {
		return Split{}, Errorf(EInvalid, "退款金额必须大于 0")
	}
	if amount > remaining {
		return Split{}, Errorf(EConflict, "退款金额 %s 超过可退金额 %s", FormatYuan(amount), FormatYuan(remaining))
	}
	cashLeft := p.CashPay - cashTaken
	if amount == remaining {
		return Split{Fund: p.FundPay, Account: p.AccountPay, Cash: cashLeft}, nil
	}
	if amount <= cashLeft {
		return Split{Cash: amount}, nil
	}
	return Split{}, Errorf(EConflict, "医保结算的订单只能部分退还现金部分（最多 %s），医保基金和个人账户须全额退款", FormatYuan(cashLeft))
}
