package payments

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"ihos"
	"ihos/sync"
)

// Entities declares the payment data the appliance receives (cloud-owned).
// business_key only enforces "one active payment per business" in the cloud.
func Entities() []sync.Entity {
	return []sync.Entity{
		{Name: "payments", Table: "payments", Owner: sync.Cloud, Local: []string{"business_key"}},
		{Name: "payment_events", Table: "payment_events", Owner: sync.Cloud},
		{Name: "refunds", Table: "refunds", Owner: sync.Cloud},
	}
}

const paymentCols = `id, hospital_id, business_type, business_id, patient_id, doctor_id, department_id, channel, subject,
	total, fund_pay, account_pay, cash_pay, refunded, refunding, status, out_trade_no, insurance_key, ins_status, cash_status,
	transaction_id, needs_confirm, ending, deadline, next_query_at, attempts, last_error, created_at, paid_at, updated_at, version`

type scanner interface{ Scan(...any) error }

func scanPayment(row scanner) (*ihos.Payment, error) {
	var p ihos.Payment
	var deadline, created, updated string
	var next, paid sql.NullString
	var confirm int
	err := row.Scan(&p.ID, &p.HospitalID, &p.BusinessType, &p.BusinessID, &p.PatientID, &p.DoctorID, &p.DepartmentID, &p.Channel, &p.Subject,
		&p.Total, &p.FundPay, &p.AccountPay, &p.CashPay, &p.Refunded, &p.Refunding, &p.Status, &p.OutTradeNo, &p.InsuranceKey, &p.InsStatus, &p.CashStatus,
		&p.TransactionID, &confirm, &p.Ending, &deadline, &next, &p.Attempts, &p.LastError, &created, &paid, &updated, &p.Version)
	if err != nil {
		return nil, err
	}
	p.NeedsConfirm = confirm != 0
	p.Deadline = parseTime(deadline)
	p.NextQueryAt = parseTime(next.String)
	p.CreatedAt = parseTime(created)
	p.PaidAt = parseTime(paid.String)
	p.UpdatedAt = parseTime(updated)
	p.StatusLabel = ihos.PaymentStatusLabel(p.Status)
	return &p, nil
}

const refundCols = `id, hospital_id, payment_id, out_refund_no, request_key, amount, fund_part, account_part, cash_part, status,
	ins_status, cash_status, reason, attempts, next_query_at, last_error, created_by, created_at, done_at, updated_at`

func scanRefund(row scanner) (*ihos.Refund, error) {
	var r ihos.Refund
	var key, next, done sql.NullString
	var created, updated string
	err := row.Scan(&r.ID, &r.HospitalID, &r.PaymentID, &r.OutRefundNo, &key, &r.Amount, &r.FundPart, &r.AccountPart, &r.CashPart, &r.Status,
		&r.InsStatus, &r.CashStatus, &r.Reason, &r.Attempts, &next, &r.LastError, &r.CreatedBy, &created, &done, &updated)
	if err != nil {
		return nil, err
	}
	r.RequestKey = key.String
	r.CreatedAt = parseTime(created)
	r.DoneAt = parseTime(done.String)
	r.UpdatedAt = parseTime(updated)
	r.StatusLabel = ihos.RefundStatusLabel(r.Status)
	return &r, nil
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := ihos.ParseTime(s)
	return t
}

func formatTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ihos.FormatTime(t)
}

// businessKey is the value of the unique business_key column: set while a
// payment is active or holds money, so a business is never paid twice.
func businessKey(p *ihos.Payment) any {
	switch p.Status {
	case ihos.PaymentCreated, ihos.PaymentPaying, ihos.PaymentPaid, ihos.PaymentPartiallyRefunded:
		return p.BusinessType + ":" + p.BusinessID
	}
	return nil
}

var errNotFound = ihos.Errorf(ihos.ENotFound, "支付订单不存在")

// loadPayment reads a payment inside tx and locks it for the rest of tx.
func (s *Service) loadPayment(ctx context.Context, tx *sql.Tx, id string) (*ihos.Payment, error) {
	p, err := scanPayment(s.DB.TxQueryRow(ctx, tx, `SELECT `+paymentCols+` FROM payments WHERE id = ? AND deleted_at IS NULL`+s.DB.ForUpdate(), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	return p, err
}

// insertPayment writes a new payment.
func (s *Service) insertPayment(ctx context.Context, tx *sql.Tx, p *ihos.Payment) error {
	_, err := s.DB.TxExec(ctx, tx, `INSERT INTO payments (id, hospital_id, business_type, business_id, business_key, patient_id, doctor_id, department_id,
		channel, subject, total, fund_pay, account_pay, cash_pay, refunded, refunding, status, out_trade_no, insurance_key, ins_status, cash_status,
		transaction_id, needs_confirm, ending, deadline, next_query_at, attempts, last_error, version, created_at, paid_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, '', 0, '', ?, NULL, 0, '', 1, ?, NULL, ?)`,
		p.ID, p.HospitalID, p.BusinessType, p.BusinessID, businessKey(p), p.PatientID, p.DoctorID, p.DepartmentID,
		p.Channel, p.Subject, p.Total, p.FundPay, p.AccountPay, p.CashPay, p.Status, p.OutTradeNo, p.InsuranceKey, p.InsStatus, p.CashStatus,
		ihos.FormatTime(p.Deadline), ihos.FormatTime(p.CreatedAt), ihos.FormatTime(p.UpdatedAt))
	return err
}

// savePayment writes every mutable column of p and bumps its version.
func (s *Service) savePayment(ctx context.Context, tx *sql.Tx, p *ihos.Payment) error {
	p.Version++
	next := formatTime(p.NextQueryAt)
	if ihos.PaymentFinal(p.Status) && p.Ending == "" {
		next = nil
	}
	confirm := 0
	if p.NeedsConfirm {
		confirm = 1
	}
	_, err := s.DB.TxExec(ctx, tx, `UPDATE payments SET business_key = ?, fund_pay = ?, account_pay = ?, cash_pay = ?, refunded = ?, refunding = ?,
		status = ?, ins_status = ?, cash_status = ?, transaction_id = ?, needs_confirm = ?, ending = ?, next_query_at = ?, attempts = ?,
		last_error = ?, paid_at = ?, updated_at = ?, version = ? WHERE id = ?`,
		businessKey(p), p.FundPay, p.AccountPay, p.CashPay, p.Refunded, p.Refunding,
		p.Status, p.InsStatus, p.CashStatus, p.TransactionID, confirm, p.Ending, next, p.Attempts,
		ihos.Truncate(p.LastError, 500), formatTime(p.PaidAt), ihos.FormatTime(p.UpdatedAt), p.Version, p.ID)
	p.StatusLabel = ihos.PaymentStatusLabel(p.Status)
	return err
}

// Event is one entry of a payment's history.
type Event struct {
	ID         string          `json:"id"`
	PaymentID  string          `json:"payment_id"`
	RefundID   string          `json:"refund_id,omitempty"`
	FromStatus string          `json:"from_status"`
	ToStatus   string          `json:"to_status"`
	Reason     string          `json:"reason"`
	Detail     json.RawMessage `json:"detail,omitempty"`
	Actor      string          `json:"actor"`
	At         time.Time       `json:"at"`
}

// Event reasons.
const (
	ReasonCreated          = "created"
	ReasonPayStarted       = "pay_started"
	ReasonInsuranceSettled = "insurance_settled"
	ReasonInsurancePending = "insurance_pending"
	ReasonInsuranceFailed  = "insurance_failed"
	ReasonSplitChanged     = "split_changed"
	ReasonSplitConfirmed   = "split_confirmed"
	ReasonCashCreated      = "cash_created"
	ReasonCashUnknown      = "cash_unknown"
	ReasonPaid             = "paid"
	ReasonCashFailed       = "cash_failed"
	ReasonQueried          = "queried"
	ReasonCancelRequested  = "cancel_requested"
	ReasonDeadline         = "deadline"
	ReasonCashClosed       = "cash_closed"
	ReasonInsuranceReverse = "insurance_reversed"
	ReasonWoundDown        = "wound_down"
	ReasonAmountMismatch   = "amount_mismatch"
	ReasonRefundRequested  = "refund_requested"
	ReasonRefundLeg        = "refund_leg"
	ReasonRefundSucceeded  = "refund_succeeded"
	ReasonRefundFailed     = "refund_failed"
)

// addEvent appends one history entry inside tx.
func (s *Service) addEvent(ctx context.Context, tx *sql.Tx, p *ihos.Payment, refundID, from, reason string, detail any) (string, error) {
	id := ihos.NewID()
	var d any
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return "", err
		}
		d = string(b)
	}
	actor := ihos.System.Username
	if a, ok := ihos.ActorFrom(ctx); ok && a.Username != "" {
		actor = a.Username
	}
	_, err := s.DB.TxExec(ctx, tx, `INSERT INTO payment_events (id, hospital_id, payment_id, refund_id, from_status, to_status, reason, detail, actor, at, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
		id, p.HospitalID, p.ID, refundID, from, p.Status, reason, d, ihos.Truncate(actor, 64), ihos.FormatTime(s.now()))
	return id, err
}

// errUnchanged tells mutate that fn decided nothing needs writing.
var errUnchanged = errors.New("payments: unchanged")

// change is what a mutation did, for the history.
type change struct {
	reason string
	detail any
}

// mutate runs fn on the locked payment id and, unless fn returns
// errUnchanged, saves it with one history entry and captures both for the
// appliance. fn sees the payment as committed, so every decision is taken on
// the current state, whatever raced with it.
func (s *Service) mutate(ctx context.Context, id string, fn func(tx *sql.Tx, p *ihos.Payment) (change, error)) (*ihos.Payment, error) {
	var out *ihos.Payment
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		p, err := s.loadPayment(ctx, tx, id)
		if err != nil {
			return err
		}
		from := p.Status
		c, err := fn(tx, p)
		if errors.Is(err, errUnchanged) {
			out = p
			return nil
		}
		if errors.Is(err, errUnchangedButSave) {
			// Bookkeeping only (attempts, the next query): no history entry.
			p.UpdatedAt = s.now()
			if err := s.savePayment(ctx, tx, p); err != nil {
				return err
			}
			out = p
			return s.capture(ctx, tx, sync.Ref{Entity: "payments", ID: p.ID})
		}
		if err != nil {
			return err
		}
		if err := s.commitChange(ctx, tx, p, from, "", c); err != nil {
			return err
		}
		out = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.committed()
	return out, nil
}

// commitChange saves p, appends the event and captures them.
func (s *Service) commitChange(ctx context.Context, tx *sql.Tx, p *ihos.Payment, from, refundID string, c change) error {
	if err := ihos.CheckSplit(p.Total, p.Split()); err != nil {
		return ihos.Internal(err) // never written: a bug, not a user error
	}
	p.UpdatedAt = s.now()
	if err := s.savePayment(ctx, tx, p); err != nil {
		return err
	}
	ev, err := s.addEvent(ctx, tx, p, refundID, from, c.reason, c.detail)
	if err != nil {
		return err
	}
	refs := []sync.Ref{{Entity: "payments", ID: p.ID}, {Entity: "payment_events", ID: ev}}
	if refundID != "" {
		refs = append(refs, sync.Ref{Entity: "refunds", ID: refundID})
	}
	return s.capture(ctx, tx, refs...)
}

// Get returns a payment.
func (s *Service) Get(ctx context.Context, id string) (*ihos.Payment, error) {
	p, err := scanPayment(s.DB.QueryRowContext(ctx, `SELECT `+paymentCols+` FROM payments WHERE id = ? AND deleted_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, ihos.Internal(err)
	}
	return p, nil
}

// Events returns a payment's history, oldest first.
func (s *Service) Events(ctx context.Context, paymentID string) ([]Event, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, payment_id, refund_id, from_status, to_status, reason, detail, actor, at
		FROM payment_events WHERE payment_id = ? AND deleted_at IS NULL ORDER BY at, id`, paymentID)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var detail sql.NullString
		var at string
		if err := rows.Scan(&e.ID, &e.PaymentID, &e.RefundID, &e.FromStatus, &e.ToStatus, &e.Reason, &detail, &e.Actor, &at); err != nil {
			return nil, ihos.Internal(err)
		}
		if detail.Valid && detail.String != "" {
			e.Detail = json.RawMessage(detail.String)
		}
		e.At = parseTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Refunds returns a payment's refunds, oldest first.
func (s *Service) Refunds(ctx context.Context, paymentID string) ([]*ihos.Refund, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+refundCols+` FROM refunds WHERE payment_id = ? AND deleted_at IS NULL ORDER BY created_at, id`, paymentID)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	var out []*ihos.Refund
	for rows.Next() {
		r, err := scanRefund(rows)
		if err != nil {
			return nil, ihos.Internal(err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
