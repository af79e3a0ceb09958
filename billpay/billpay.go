// Package billpay is 诊间支付: a patient pays the outpatient fees the HIS
// holds for them (prescriptions, exams, offline visits included) from the
// phone or at the kiosk, by self-pay or insurance, and the HIS is told.
//
// It has two halves, one on each side of the sync link:
//
//   - In the cloud, Cloud lists the patient's unpaid fees (the appliance asks
//     the HIS, his.unpaid_fees over the sync RPC) and turns a selection into a
//     payment of business type ihos.PayOutpatientBill through the payment
//     service, with one bill_items row per fee (cloud-owned, replicated).
//   - On the appliance, Poster posts every paid outpatient-bill payment to the
//     HIS once, as a DFT^P03 whose lines name the HIS fees they settle
//     (FT1-23), and a credit once per succeeded refund, recording each in
//     bill_postings (appliance-owned, replicated) with the HIS's answer.
//
// # Rules
//
//   - The fees are read fresh from the HIS when the payment is created: a fee
//     the HIS no longer lists as unpaid cannot be paid.
//   - A selection is one business: its id is derived from the hospital, the
//     HIS patient and the sorted fee ids, so the payment service's "one active
//     or paid payment per business" keeps the same selection from being paid
//     twice, however often it is sent.
//   - One HIS fee is in at most one payment that may take or holds the money,
//     whatever the selections: bill_items.hold_key is unique and is released
//     only once its payment ended without money (failed, cancelled, closed) or
//     was refunded in full.
//   - The appliance enqueues the HIS message in the transaction that records
//     the posting, and bill_postings is unique per payment, kind and refund:
//     each is posted exactly once, restarts and repeated passes included.
package billpay

import (
	"strings"
	"time"

	"ihos"
	"ihos/sync"
)

// Entities declares the replicated tables: the items a payment pays
// (cloud-owned; hold_key stays in the cloud) and the postings to the HIS
// (appliance-owned).
func Entities() []sync.Entity {
	return []sync.Entity{
		{Name: "bill_items", Table: "bill_items", Owner: sync.Cloud, Local: []string{"hold_key"}},
		{Name: "bill_postings", Table: "bill_postings", Owner: sync.Appliance},
	}
}

// Posting kinds.
const (
	KindCharge = "charge" // the payment's fees, posted once it is paid
	KindCredit = "credit" // a succeeded refund, as negative lines
)

// Posting statuses, following the HIS's answer to the message.
const (
	StatusQueued   = "queued"   // in the HIS queue, not answered yet
	StatusAccepted = "accepted" // the HIS answered AA
	StatusRefused  = "refused"  // the HIS answered AE or AR (or staff cancelled the message)
)

// StatusLabel is the Chinese name of a posting status.
func StatusLabel(status string) string {
	switch status {
	case StatusQueued:
		return "待入账"
	case StatusAccepted:
		return "已入账"
	case StatusRefused:
		return "HIS 拒收"
	}
	return status
}

// Item is one HIS fee a payment pays.
type Item struct {
	ID             string    `json:"id"`
	HospitalID     string    `json:"hospital_id"`
	PaymentID      string    `json:"payment_id"`
	HISPatientID   string    `json:"his_patient_id"`
	FeeID          string    `json:"fee_id"`
	VisitNo        string    `json:"visit_no"`
	ItemCode       string    `json:"item_code"`
	ItemName       string    `json:"item_name"`
	Quantity       string    `json:"quantity"`
	AmountFen      int64     `json:"amount_fen"`
	DepartmentCode string    `json:"department_code"`
	DoctorCode     string    `json:"doctor_code"`
	CreatedAt      time.Time `json:"created_at"`
}

// Posting is one message to the HIS about a payment.
type Posting struct {
	ID           string    `json:"id"`
	HospitalID   string    `json:"hospital_id"`
	PaymentID    string    `json:"payment_id"`
	RefundID     string    `json:"refund_id"`
	Kind         string    `json:"kind"`
	HISMessageID string    `json:"his_message_id"`
	Status       string    `json:"status"`
	StatusText   string    `json:"status_text,omitempty"`
	AmountFen    int64     `json:"amount_fen"`
	Day          string    `json:"day"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Sources of a payment request: the patient's phone pays the cash leg in the
// WeChat-like JSAPI (openid), the kiosk shows a Native order's QR code.
const (
	SourcePhone = "phone"
	SourceKiosk = "kiosk"
)

// holdKey is the value of bill_items.hold_key for a fee of a hospital.
func holdKey(hospital, feeID string) string { return hospital + ":" + feeID }

// day is the Asia/Shanghai calendar day of t.
func day(t time.Time) string { return t.In(ihos.Shanghai).Format("2006-01-02") }

func parseTime(s string) time.Time {
	t, _ := ihos.ParseTime(strings.TrimSpace(s))
	return t
}
