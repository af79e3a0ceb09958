package invoicing

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"ihos"
)

// Invoice is a payment's e-invoice as the appliance keeps it.
type Invoice struct {
	ID            string `json:"id"`
	HospitalID    string `json:"hospital_id"`
	PaymentID     string `json:"payment_id"`
	PatientID     string `json:"patient_id"`
	BusinessType  string `json:"business_type"`
	BusNo         string `json:"bus_no"`
	BillBatchCode string `json:"bill_batch_code"` // 票据代码
	BillNo        string `json:"bill_no"`         // 票据号码
	Random        string `json:"random"`          // 校验码
	// QRCode is the text to encode in the QR code shown and printed for the
	// patient: the platform's check page of the bill.
	QRCode        string    `json:"qr_code"`
	PictureURL    string    `json:"picture_url"`
	PictureNetURL string    `json:"picture_net_url"`
	Total         int64     `json:"total"`
	FundPay       int64     `json:"fund_pay"`
	AccountPay    int64     `json:"account_pay"`
	CashPay       int64     `json:"cash_pay"`
	Status        string    `json:"status"`
	StatusLabel   string    `json:"status_label"`
	ScarletBatch  string    `json:"scarlet_bill_batch_code,omitempty"` // 红票票据代码
	ScarletNo     string    `json:"scarlet_bill_no,omitempty"`
	ScarletRandom string    `json:"scarlet_random,omitempty"`
	IssuedAt      time.Time `json:"issued_at,omitzero"`
	WrittenOffAt  time.Time `json:"written_off_at,omitzero"`
	Attempts      int       `json:"attempts"`
	LastError     string    `json:"last_error,omitempty"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	Version       int64     `json:"version"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`

	issued, writtenOff, next, created, updated sql.NullString
}

const invoiceCols = `i.id, i.hospital_id, i.payment_id, i.patient_id, i.business_type, i.bus_no, i.bill_batch_code, i.bill_no, i.random,
	i.qr_code, i.picture_url, i.picture_net_url, i.total, i.fund_pay, i.account_pay, i.cash_pay, i.status,
	i.scarlet_bill_batch_code, i.scarlet_bill_no, i.scarlet_random, i.issued_at, i.written_off_at, i.attempts, i.last_error,
	i.next_attempt_at, i.version, i.created_at, i.updated_at`

func (v *Invoice) dest() []any {
	return []any{&v.ID, &v.HospitalID, &v.PaymentID, &v.PatientID, &v.BusinessType, &v.BusNo, &v.BillBatchCode, &v.BillNo, &v.Random,
		&v.QRCode, &v.PictureURL, &v.PictureNetURL, &v.Total, &v.FundPay, &v.AccountPay, &v.CashPay, &v.Status,
		&v.ScarletBatch, &v.ScarletNo, &v.ScarletRandom, &v.issued, &v.writtenOff, &v.Attempts, &v.LastError,
		&v.next, &v.Version, &v.created, &v.updated}
}

func (v *Invoice) finish() {
	v.IssuedAt = parseTime(v.issued.String)
	v.WrittenOffAt = parseTime(v.writtenOff.String)
	v.NextAttemptAt = parseTime(v.next.String)
	v.CreatedAt = parseTime(v.created.String)
	v.UpdatedAt = parseTime(v.updated.String)
	v.StatusLabel = StatusLabel(v.Status)
}

var errNotFound = ihos.Errorf(ihos.ENotFound, "电子票据不存在")

func (s *Service) one(ctx context.Context, where string, arg any) (Invoice, error) {
	var v Invoice
	err := s.DB.QueryRowContext(ctx, `SELECT `+invoiceCols+` FROM invoices i WHERE `+where+` AND i.deleted_at IS NULL`, arg).Scan(v.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return Invoice{}, errNotFound
	}
	if err != nil {
		return Invoice{}, err
	}
	v.finish()
	return v, nil
}

// Get returns an invoice by its ID.
func (s *Service) Get(ctx context.Context, id string) (Invoice, error) {
	return s.one(ctx, `i.id = ?`, id)
}

// ByPayment returns the invoice of a payment; ENotFound when it has none yet.
func (s *Service) ByPayment(ctx context.Context, paymentID string) (Invoice, error) {
	return s.one(ctx, `i.payment_id = ?`, paymentID)
}

// Stats are the counts the console raises an alarm on.
type Stats struct {
	Pending int `json:"pending"` // not issued yet (including outcome unknown)
	Failed  int `json:"failed"`  // refused by the platform, retrying
	// WriteOffPending counts issued invoices of fully refunded payments not
	// yet written off.
	WriteOffPending int `json:"write_off_pending"`
	// Attention counts pending, failed or write-off-pending invoices with
	// at least one failed attempt: what someone should look at.
	Attention int    `json:"attention"`
	LastError string `json:"last_error,omitempty"` // the latest failure's message
}

// Stats counts invoices that are not settled.
func (s *Service) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := s.DB.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(CASE WHEN i.status = ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN i.status = ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN i.status = ? AND p.status = ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN i.attempts > 0 THEN 1 ELSE 0 END), 0)
		FROM invoices i JOIN payments p ON p.id = i.payment_id
		WHERE i.deleted_at IS NULL AND (i.status IN (?, ?) OR (i.status = ? AND p.status = ?))`,
		StatusPending, StatusFailed, StatusIssued, ihos.PaymentRefunded,
		StatusPending, StatusFailed, StatusIssued, ihos.PaymentRefunded).Scan(&st.Pending, &st.Failed, &st.WriteOffPending, &st.Attention)
	if err != nil {
		return st, err
	}
	err = s.DB.QueryRowContext(ctx, `SELECT last_error FROM invoices WHERE last_error <> '' AND deleted_at IS NULL ORDER BY updated_at DESC LIMIT 1`).Scan(&st.LastError)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	return st, err
}
