package prescriptions_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"ihos"
	"ihos/his"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/payments"
	"ihos/prescriptions"
)

// fakePayments records the payments asked for; the tests mark them paid in
// the payments table, as the payment service does when the channel says so.
type fakePayments struct {
	db      *sqldb.DB
	created []payments.NewPayment
}

func (p *fakePayments) Create(ctx context.Context, n payments.NewPayment) (*ihos.Payment, error) {
	p.created = append(p.created, n)
	id := ihos.NewID()
	now := ihos.FormatTime(time.Now())
	if _, err := p.db.ExecContext(ctx, `INSERT INTO payments (id, hospital_id, business_type, business_id, patient_id, channel, subject, total, fund_pay, account_pay, cash_pay,
		status, out_trade_no, deadline, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?)`,
		id, n.HospitalID, n.BusinessType, n.BusinessID, n.PatientID, n.Channel, n.Subject, n.Total, n.Total, ihos.PaymentCreated, id[len(id)-32:], now, now, now); err != nil {
		return nil, err
	}
	return &ihos.Payment{ID: id, Total: n.Total, Status: ihos.PaymentCreated}, nil
}

func (p *fakePayments) Pay(ctx context.Context, id string, req payments.PayRequest) (*payments.PayResult, error) {
	return &payments.PayResult{}, nil
}

// flakyHIS fails its first calls (the link down, an answer lost) and then
// places each key once, as the appliance does (his.OrderRequest.Key).
type flakyHIS struct {
	fail   int
	calls  int
	placed map[string][]his.Order
	last   his.OrderRequest
}

func (h *flakyHIS) PlaceOrder(ctx context.Context, hospital string, req his.OrderRequest) ([]his.Order, error) {
	h.calls++
	h.last = req
	if h.calls <= h.fail {
		return nil, ihos.Errorf(ihos.EUnavailable, "医院系统暂时无法连接，请稍后再试")
	}
	if req.Key == "" {
		return nil, errors.New("no key")
	}
	if o, ok := h.placed[req.Key]; ok {
		return o, nil
	}
	var out []his.Order
	for i := range req.Items {
		out = append(out, his.Order{ID: his.KeyedOrderNo(req.Key, i), Kind: req.Kind, Status: his.OrderQueued})
	}
	h.placed[req.Key] = out
	return out, nil
}

// Paying: refused until approved; the amount is the approved price; once
// the payment is paid the worker marks it paid and sends it to the HIS,
// retrying while the HIS cannot be reached, and never places it twice.
func TestPayThenSentToHIS(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := admin
		pay := &fakePayments{db: db}
		h := &flakyHIS{fail: 2, placed: map[string][]his.Order{}}
		f.svc.Payments, f.svc.HIS = pay, h

		v := f.Visit(f.patient("1970-01-01", false), true)
		p, err := f.svc.Create(ctx, doctor, draft(v.ID))
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Pay(ctx, p.ID, "")
		refused(t, "paying a draft", err, ihos.EConflict, "处方尚未经药师审核通过，不能支付")
		if p, err = f.svc.Sign(ctx, doctor, p.ID, pin); err == nil {
			p, err = f.svc.Submit(ctx, doctor, p.ID)
		}
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Pay(ctx, p.ID, "")
		refused(t, "paying under review", err, ihos.EConflict, "药师审核")
		if len(pay.created) != 0 {
			t.Fatalf("payments made before approval: %+v", pay.created)
		}
		if p, err = f.svc.Approve(ctx, pharmacist, p.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Pay(ctx, p.ID, "openid-1"); err != nil {
			t.Fatal(err)
		}
		if len(pay.created) != 1 || pay.created[0].Total != p.TotalFen || pay.created[0].BusinessType != ihos.PayPrescription || pay.created[0].BusinessID != p.ID {
			t.Fatalf("payment %+v, want %d fen for %s", pay.created, p.TotalFen, p.ID)
		}
		// Unpaid: the worker leaves it approved.
		if _, err := f.svc.Process(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.svc.Get(ctx, p.ID); got.Status != prescriptions.StatusApproved {
			t.Fatalf("unpaid prescription moved to %s", got.Status)
		}
		f.Exec(`UPDATE payments SET status = ?, paid_at = ? WHERE business_id = ?`, ihos.PaymentPaid, ihos.FormatTime(time.Now()), p.ID)
		// The HIS is unreachable for two passes: the prescription stays paid
		// and is sent on the pass after.
		for i := 0; i < 2; i++ {
			if _, err := f.svc.Process(ctx); ihos.ErrorCode(errors.Unwrap(err)) != ihos.EUnavailable && ihos.ErrorCode(err) != ihos.EUnavailable {
				t.Fatalf("pass %d with the HIS down: %v", i, err)
			}
			if got, _ := f.svc.Get(ctx, p.ID); got.Status != prescriptions.StatusPaid {
				t.Fatalf("pass %d: %s", i, got.Status)
			}
		}
		if _, err := f.svc.Process(ctx); err != nil {
			t.Fatal(err)
		}
		got, _ := f.svc.Get(ctx, p.ID)
		if got.Status != prescriptions.StatusSentToHIS || len(got.HISOrders) != 1 || got.HISOrders[0] != his.KeyedOrderNo(p.ID, 0) || got.PaymentID == "" {
			t.Fatalf("after the HIS is back: %+v", got)
		}
		var fees int64
		for _, f := range h.last.Fees {
			fees += f.AmountFen
		}
		if h.last.Key != p.ID || len(h.last.Fees) != len(h.last.Items) || fees != p.TotalFen || h.last.Fees[0].FeeID != p.ID+"-1" {
			t.Fatalf("the order sent: %+v", h.last)
		}
		calls := h.calls
		if _, err := f.svc.Process(ctx); err != nil || h.calls != calls {
			t.Fatalf("a sent prescription is sent again: %d calls, %v", h.calls, err)
		}
		if len(h.placed) != 1 {
			t.Fatalf("placed %d orders", len(h.placed))
		}
		_, err = f.svc.Pay(ctx, p.ID, "")
		refused(t, "paying again", err, ihos.EConflict, "处方已支付")
	})
}

// The guardian rule asks the account that made the booking: a child whose
// booking came from an account not marked their guardian is refused, even
// though another account is.
func TestGuardianIsTheBookingAccount(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := admin
		child := time.Now().AddDate(-3, 0, 0).Format(time.DateOnly)
		patient := f.patient(child, true) // ACC1's holder is the guardian
		now := ihos.FormatTime(f.Now)
		f.Exec(`INSERT INTO patient_members (id, account_id, hospital_id, patient_id, relation, guardian, birth_date, created_at, updated_at) VALUES (?, 'ACC2', ?, ?, 'other', 0, ?, ?, ?)`,
			ihos.NewID(), hospital, patient, child, now, now)
		book := func(account string) string {
			v := f.Visit(patient, true)
			f.Exec(`INSERT INTO bookings (id, hospital_id, slot_id, schedule_id, staff_id, department_id, patient_id, visit_type, start_at, end_at, status, account_id, version, created_at, updated_at)
				VALUES (?, ?, 'S:0', 'S', ?, 'DEP1', ?, 'text', ?, ?, 'booked', ?, 1, ?, ?)`, v.BookingID, hospital, doctor, patient, now, now, account, now, now)
			return v.ID
		}
		_, err := f.svc.Create(ctx, doctor, draft(book("ACC2")))
		refused(t, "booked by a non-guardian account", err, ihos.EForbidden, "监护人")
		if _, err := f.svc.Create(ctx, doctor, draft(book("ACC1"))); err != nil {
			t.Fatalf("booked by the guardian's account: %v", err)
		}
	})
}
