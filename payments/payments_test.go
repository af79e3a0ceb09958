package payments

import (
	"context"
	"errors"
	"slices"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"ihos"
)

var bg = context.Background()

func paidNotify(p *ihos.Payment, txid string, at time.Time) Notify {
	return Notify{Source: NotifyChannel, ID: "N-" + p.OutTradeNo, OrderNo: p.OutTradeNo, State: ChannelPaid,
		Amount: p.CashPay, TransactionID: txid, SignedAt: at}
}

func TestSelfPaySuccess(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		p := e.create(t, ihos.ChannelSelfPay, 2500, nil)
		wantStatus(t, p, ihos.PaymentCreated)
		res, err := e.svc.Pay(bg, p.ID, PayRequest{PayerID: "openid"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Prepay == nil || res.Prepay.PrepayID == "" {
			t.Fatalf("no prepay: %+v", res)
		}
		wantStatus(t, res.Payment, ihos.PaymentPaying)
		txid := e.ch.pay(p.OutTradeNo)
		out, err := e.svc.ApplyNotify(bg, paidNotify(res.Payment, txid, e.clock.Now()))
		if err != nil || out != OutcomeApplied {
			t.Fatalf("notify: %s %v", out, err)
		}
		p = e.get(t, p.ID)
		wantStatus(t, p, ihos.PaymentPaid)
		if p.CashPay != 2500 || p.FundPay != 0 || p.TransactionID != txid || p.PaidAt.IsZero() {
			t.Fatalf("paid payment: %+v", p)
		}
		if got := e.reasons(t, p.ID); !slices.Equal(got, []string{ReasonCreated, ReasonPayStarted, ReasonPaid}) {
			t.Fatalf("history = %v", got)
		}
		// Paying again is a no-op; a new payment for the same business is refused.
		if r, err := e.svc.Pay(bg, p.ID, PayRequest{}); err != nil || r.Payment.Status != ihos.PaymentPaid {
			t.Fatalf("pay again: %v %v", r, err)
		}
		_, err = e.svc.Create(bg, NewPayment{HospitalID: "H1", BusinessType: p.BusinessType, BusinessID: p.BusinessID, Channel: ihos.ChannelSelfPay, Total: 2500})
		if ihos.ErrorCode(err) != ihos.EConflict || ihos.ErrorMessage(err) != "该订单已支付" {
			t.Fatalf("second payment of a paid business: %v", err)
		}
	})
}

func TestCreateIdempotent(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		n := NewPayment{HospitalID: "H1", BusinessType: ihos.PayPrescription, BusinessID: "RX1", Channel: ihos.ChannelSelfPay, Total: 100}
		var wg stdsync.WaitGroup
		ids := make([]string, 10)
		for i := range ids {
			wg.Go(func() {
				p, err := e.svc.Create(bg, n)
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = p.ID
			})
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("concurrent creates made different payments: %v", ids)
			}
		}
		// A cancelled payment frees the business.
		if _, err := e.svc.Cancel(bg, ids[0], CancelRequest{Reason: "不要了"}); err != nil {
			t.Fatal(err)
		}
		p, err := e.svc.Create(bg, n)
		if err != nil || p.ID == ids[0] {
			t.Fatalf("create after cancel: %v %v", p, err)
		}
		if _, err := e.svc.Create(bg, NewPayment{HospitalID: "H1", BusinessType: "bogus", BusinessID: "X", Channel: ihos.ChannelSelfPay, Total: 1}); ihos.ErrorCode(err) != ihos.EInvalid {
			t.Fatalf("bad business type: %v", err)
		}
	})
}

func TestUserCancel(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		p := e.create(t, ihos.ChannelSelfPay, 990, nil)
		if _, err := e.svc.Pay(bg, p.ID, PayRequest{}); err != nil {
			t.Fatal(err)
		}
		p, err := e.svc.Cancel(bg, p.ID, CancelRequest{Reason: "用户取消"})
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, p, ihos.PaymentCancelled)
		if e.ch.count("close") != 1 || e.ch.orders[p.OutTradeNo].state != ChannelClosed {
			t.Fatal("channel order not closed")
		}
		// A cancelled payment cannot be paid; a late notify is refused and logged.
		if _, err := e.svc.Pay(bg, p.ID, PayRequest{}); ihos.ErrorCode(err) != ihos.EConflict {
			t.Fatalf("pay after cancel: %v", err)
		}
		var audits int
		e.db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE resource = 'payments' AND record_id = ? AND action = 'cancel'`, p.ID).Scan(&audits)
		if audits != 1 {
			t.Fatalf("audit entries = %d", audits)
		}
	})
}

func TestCancelPaidInMeantime(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		p := e.create(t, ihos.ChannelSelfPay, 990, nil)
		e.svc.Pay(bg, p.ID, PayRequest{})
		e.ch.pay(p.OutTradeNo) // paid, notify not arrived yet
		p, err := e.svc.Cancel(bg, p.ID, CancelRequest{})
		if ihos.ErrorCode(err) != ihos.EConflict {
			t.Fatalf("cancel of a paid order: %v", err)
		}
		wantStatus(t, p, ihos.PaymentPaid)
	})
}

func TestTimeout(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		p := e.create(t, ihos.ChannelSelfPay, 500, nil)
		e.svc.Pay(bg, p.ID, PayRequest{})
		e.ch.queryLeft = 1000 // the patient never pays
		e.resolveFor(t, 40, func() bool { return e.get(t, p.ID).Status != ihos.PaymentPaying })
		p = e.get(t, p.ID)
		wantStatus(t, p, ihos.PaymentClosed)
		if e.ch.orders[p.OutTradeNo].state != ChannelClosed {
			t.Fatal("channel order left open")
		}
		got := e.reasons(t, p.ID)
		if !slices.Contains(got, ReasonDeadline) || !slices.Contains(got, ReasonCashClosed) || !slices.Contains(got, ReasonWoundDown) {
			t.Fatalf("history = %v", got)
		}
	})
}

func TestUnknownThenSuccess(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		p := e.create(t, ihos.ChannelSelfPay, 1200, nil)
		e.ch.createErr, e.ch.createLands = 1, true
		e.ch.queryErr, e.ch.queryLeft, e.ch.final = 2, 2, ChannelPaid
		res, err := e.svc.Pay(bg, p.ID, PayRequest{})
		if ihos.ErrorCode(err) != ihos.EUnavailable {
			t.Fatalf("pay with a lost create: %v", err)
		}
		wantStatus(t, res.Payment, ihos.PaymentPaying)
		e.resolveFor(t, 10, func() bool { return e.get(t, p.ID).Status == ihos.PaymentPaid })
		if q := e.ch.count("query"); q != 5 {
			t.Fatalf("queries = %d, want 5 (2 errors, 2 pending, 1 paid)", q)
		}
		if e.get(t, p.ID).Attempts != 4 {
			t.Fatalf("attempts = %d", e.get(t, p.ID).Attempts)
		}
	})
}

func TestUnknownThenFailure(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		p := e.create(t, ihos.ChannelSelfPay, 1200, nil)
		e.ch.createErr, e.ch.createLands = 1, true
		e.ch.queryErr, e.ch.final = 2, ChannelFailed
		e.svc.Pay(bg, p.ID, PayRequest{})
		e.resolveFor(t, 10, func() bool { return e.get(t, p.ID).Status != ihos.PaymentPaying })
		wantStatus(t, e.get(t, p.ID), ihos.PaymentFailed)
		// Failed frees the business for a new attempt.
		if _, err := e.svc.Create(bg, NewPayment{HospitalID: "H1", BusinessType: p.BusinessType, BusinessID: p.BusinessID, Channel: ihos.ChannelSelfPay, Total: 1200}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDuplicateNotify(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		p := e.create(t, ihos.ChannelSelfPay, 800, nil)
		r, _ := e.svc.Pay(bg, p.ID, PayRequest{})
		n := paidNotify(r.Payment, e.ch.pay(p.OutTradeNo), e.clock.Now())
		for i, want := range []string{OutcomeApplied, OutcomeDuplicate, OutcomeDuplicate} {
			out, err := e.svc.ApplyNotify(bg, n)
			if err != nil || out != want {
				t.Fatalf("notify %d: %s %v, want %s", i, out, err, want)
			}
		}
		// The same event under a new notify id (a resend by a different id) is
		// known already.
		n.ID = "other"
		if out, err := e.svc.ApplyNotify(bg, n); err != nil || out != OutcomeAlready {
			t.Fatalf("second id: %s %v", out, err)
		}
		if c := countOf(e.reasons(t, p.ID), ReasonPaid); c != 1 {
			t.Fatalf("paid %d times", c)
		}
	})
}

func TestNotifyBeforeReturn(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		p := e.create(t, ihos.ChannelSelfPay, 800, nil)
		e.ch.onCreate = func(o ChannelOrder) {
			// The patient pays and the notify lands before Create returns.
			txid := e.ch.pay(o.OutTradeNo)
			n := Notify{Source: NotifyChannel, ID: "early", OrderNo: o.OutTradeNo, State: ChannelPaid, Amount: o.Amount, TransactionID: txid}
			if out, err := e.svc.ApplyNotify(bg, n); err != nil || out != OutcomeApplied {
				t.Errorf("early notify: %s %v", out, err)
			}
		}
		r, err := e.svc.Pay(bg, p.ID, PayRequest{})
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, r.Payment, ihos.PaymentPaid)
		e.resolveFor(t, 2, func() bool { return true })
		if c := countOf(e.reasons(t, p.ID), ReasonPaid); c != 1 {
			t.Fatalf("paid %d times", c)
		}
	})
}

func TestRejectedNotifies(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		p := e.create(t, ihos.ChannelSelfPay, 800, nil)
		r, _ := e.svc.Pay(bg, p.ID, PayRequest{})
		txid := e.ch.pay(p.OutTradeNo)
		before := e.get(t, p.ID)
		now := e.clock.Now()
		cases := []struct {
			n    Notify
			want string
		}{
			{Notify{Source: NotifyChannel, ID: "a1", OrderNo: p.OutTradeNo, State: ChannelPaid, Amount: 1, TransactionID: txid, SignedAt: now}, OutcomeAmountMismatch},
			{Notify{Source: NotifyChannel, ID: "a2", OrderNo: "PNOSUCHORDER", State: ChannelPaid, Amount: 800, SignedAt: now}, OutcomeUnknownOrder},
			{Notify{Source: NotifyChannel, ID: "a3", OrderNo: p.OutTradeNo, State: ChannelPaid, Amount: 800, TransactionID: txid, SignedAt: now.Add(-time.Hour)}, OutcomeReplay},
			{Notify{Source: NotifyInsurance, ID: "a4", OrderNo: "INSX", State: InsSettled, SignedAt: now}, OutcomeUnknownOrder},
		}
		for _, c := range cases {
			out, err := e.svc.ApplyNotify(bg, c.n)
			if out != c.want || err == nil {
				t.Fatalf("%+v: outcome %s, err %v; want %s and an error", c.n, out, err, c.want)
			}
		}
		e.svc.RejectNotify(bg, NotifyChannel, "forged", "abc", "签名错误")
		after := e.get(t, p.ID)
		if after.Version != before.Version || after.Status != ihos.PaymentPaying {
			t.Fatalf("a rejected notify changed the payment: %+v", after)
		}
		var logged int
		e.db.QueryRow(`SELECT COUNT(*) FROM payment_notifies WHERE outcome LIKE 'rejected%' AND dedupe_key IS NULL`).Scan(&logged)
		if logged != 5 {
			t.Fatalf("rejections logged = %d, want 5", logged)
		}
		// The amount-mismatch id did not take the dedupe key: the real notify
		// with that id still applies.
		n := paidNotify(r.Payment, txid, now)
		n.ID = "a1"
		if out, err := e.svc.ApplyNotify(bg, n); err != nil || out != OutcomeApplied {
			t.Fatalf("real notify after rejections: %s %v", out, err)
		}
	})
}

func TestConcurrentNotifyAndResolver(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		p := e.create(t, ihos.ChannelSelfPay, 800, nil)
		r, _ := e.svc.Pay(bg, p.ID, PayRequest{})
		n := paidNotify(r.Payment, e.ch.pay(p.OutTradeNo), e.clock.Now())
		var applied, dup atomic.Int32
		var wg stdsync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				if i%5 == 0 {
					if _, err := e.svc.Resolve(bg, p.ID); err != nil {
						t.Error(err)
					}
					return
				}
				out, err := e.svc.ApplyNotify(bg, n)
				if err != nil {
					t.Error(err)
				}
				switch out {
				case OutcomeApplied:
					applied.Add(1)
				case OutcomeDuplicate, OutcomeAlready:
					dup.Add(1)
				}
			})
		}
		wg.Wait()
		if applied.Load() > 1 || applied.Load()+dup.Load() != 40 {
			t.Fatalf("applied %d, duplicate %d", applied.Load(), dup.Load())
		}
		wantStatus(t, e.get(t, p.ID), ihos.PaymentPaid)
		if c := countOf(e.reasons(t, p.ID), ReasonPaid); c != 1 {
			t.Fatalf("paid %d times", c)
		}
	})
}

func TestInsuranceSplit(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		split := ihos.Split{Fund: 6000, Account: 2500, Cash: 1500}
		e.ins.split = split
		p := e.create(t, ihos.ChannelInsuranceMobile, 10000, &split)
		r, err := e.svc.Pay(bg, p.ID, PayRequest{Auth: map[string]string{"payAuthNo": "A1"}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Payment.InsStatus != ihos.LegDone || r.Prepay == nil || e.ch.orders[p.OutTradeNo].amount != 1500 {
			t.Fatalf("after pay: %+v, channel order %+v", r.Payment, e.ch.orders[p.OutTradeNo])
		}
		e.svc.ApplyNotify(bg, paidNotify(r.Payment, e.ch.pay(p.OutTradeNo), e.clock.Now()))
		p = e.get(t, p.ID)
		wantStatus(t, p, ihos.PaymentPaid)
		if p.Split() != split || p.FundPay+p.AccountPay+p.CashPay != p.Total {
			t.Fatalf("split = %+v", p.Split())
		}
	})
}

func TestInsuranceFullyCovered(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		split := ihos.Split{Fund: 700, Account: 300}
		e.ins.split = split
		p := e.create(t, ihos.ChannelInsuranceSite, 1000, &split)
		r, err := e.svc.Pay(bg, p.ID, PayRequest{})
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, r.Payment, ihos.PaymentPaid)
		if e.ch.count("create") != 0 {
			t.Fatal("a cash order for nothing")
		}
	})
}

func TestInsuranceUnknownThenSuccess(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		split := ihos.Split{Fund: 600, Account: 0, Cash: 400}
		e.ins.split, e.ins.settleErr, e.ins.pending = split, 1, 2
		p := e.create(t, ihos.ChannelInsuranceMobile, 1000, &split)
		r, err := e.svc.Pay(bg, p.ID, PayRequest{})
		if err != nil || r.Prepay != nil || r.Payment.InsStatus != ihos.LegPending {
			t.Fatalf("pay with a lost settle: %+v %v", r, err)
		}
		e.resolveFor(t, 10, func() bool { return e.get(t, p.ID).InsStatus == ihos.LegDone })
		// The client comes back: the cash leg starts on the settled split.
		r, err = e.svc.Pay(bg, p.ID, PayRequest{})
		if err != nil || r.Prepay == nil {
			t.Fatalf("pay after settle: %+v %v", r, err)
		}
		e.svc.ApplyNotify(bg, paidNotify(r.Payment, e.ch.pay(p.OutTradeNo), e.clock.Now()))
		wantStatus(t, e.get(t, p.ID), ihos.PaymentPaid)
	})
}

func TestInsuranceFailureCancelsNothingTaken(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.ins.fail = true
		p := e.create(t, ihos.ChannelInsuranceMobile, 1000, nil)
		r, err := e.svc.Pay(bg, p.ID, PayRequest{})
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, r.Payment, ihos.PaymentFailed)
		if e.ch.count("create") != 0 {
			t.Fatal("cash leg started after a failed insurance leg")
		}
	})
}

func TestPreSettlementChanged(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		shown := ihos.Split{Fund: 5000, Account: 1000, Cash: 4000} // 2206
		final := ihos.Split{Fund: 4000, Account: 1000, Cash: 5000} // 2207
		e.ins.split = final
		p := e.create(t, ihos.ChannelInsuranceSite, 10000, &shown)
		r, err := e.svc.Pay(bg, p.ID, PayRequest{})
		var sc *SplitChanged
		if ihos.ErrorCode(err) != ihos.EConflict || !errors.As(err, &sc) || sc.After != final {
			t.Fatalf("pay with a changed split: %v", err)
		}
		if r.Payment.Split() != final || !r.Payment.NeedsConfirm || e.ch.count("create") != 0 {
			t.Fatalf("payment after the change: %+v", r.Payment)
		}
		// Confirming the old split is refused; confirming the new one pays.
		if _, err := e.svc.Pay(bg, p.ID, PayRequest{Confirm: &shown}); !errors.As(err, &sc) {
			t.Fatalf("confirm with the stale split: %v", err)
		}
		r, err = e.svc.Pay(bg, p.ID, PayRequest{Confirm: &final})
		if err != nil || r.Prepay == nil || e.ch.orders[p.OutTradeNo].amount != 5000 {
			t.Fatalf("confirmed pay: %+v %v", r, err)
		}
		e.svc.ApplyNotify(bg, paidNotify(r.Payment, e.ch.pay(p.OutTradeNo), e.clock.Now()))
		wantStatus(t, e.get(t, p.ID), ihos.PaymentPaid)
		if !slices.Contains(e.reasons(t, p.ID), ReasonSplitChanged) || !slices.Contains(e.reasons(t, p.ID), ReasonSplitConfirmed) {
			t.Fatalf("history = %v", e.reasons(t, p.ID))
		}
	})
}

func TestPreSettlementChangedDeclined(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		shown := ihos.Split{Fund: 5000, Cash: 5000}
		e.ins.split = ihos.Split{Fund: 3000, Cash: 7000}
		p := e.create(t, ihos.ChannelInsuranceSite, 10000, &shown)
		e.svc.Pay(bg, p.ID, PayRequest{})
		p, err := e.svc.Cancel(bg, p.ID, CancelRequest{Reason: "金额变化，不支付"})
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, p, ihos.PaymentCancelled)
		if !e.ins.reversed[p.InsuranceKey] {
			t.Fatal("settled insurance leg not reversed")
		}
	})
}

func TestTimeoutReversesInsurance(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		split := ihos.Split{Fund: 500, Cash: 500}
		e.ins.split = split
		p := e.create(t, ihos.ChannelInsuranceMobile, 1000, &split)
		e.svc.Pay(bg, p.ID, PayRequest{})
		e.ch.closeErr = 1 // the first close is lost too
		e.resolveFor(t, 45, func() bool { return e.get(t, p.ID).Status != ihos.PaymentPaying })
		p = e.get(t, p.ID)
		wantStatus(t, p, ihos.PaymentClosed)
		if !e.ins.reversed[p.InsuranceKey] || p.InsStatus != ihos.LegReversed || p.CashStatus != ihos.LegReversed {
			t.Fatalf("legs after close: %+v", p)
		}
	})
}

func paidSelfPay(t *testing.T, e *env, total int64) *ihos.Payment {
	t.Helper()
	p := e.create(t, ihos.ChannelSelfPay, total, nil)
	r, err := e.svc.Pay(bg, p.ID, PayRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ApplyNotify(bg, paidNotify(r.Payment, e.ch.pay(p.OutTradeNo), e.clock.Now())); err != nil {
		t.Fatal(err)
	}
	return e.get(t, p.ID)
}

func TestPartialRefund(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		p := paidSelfPay(t, e, 10000)
		ctx := ihos.WithActor(bg, ihos.Actor{UserID: "u1", Username: "cashier"})
		r, err := e.svc.Refund(ctx, p.ID, RefundRequest{Amount: 3000, Reason: "少发一盒药", RequestKey: "k1"})
		if err != nil || r.Status != ihos.RefundSucceeded || r.CashPart != 3000 {
			t.Fatalf("refund: %+v %v", r, err)
		}
		// The same request key returns the same refund.
		again, err := e.svc.Refund(ctx, p.ID, RefundRequest{Amount: 3000, Reason: "少发一盒药", RequestKey: "k1"})
		if err != nil || again.ID != r.ID || e.ch.count("refund") != 1 {
			t.Fatalf("repeated request: %+v %v (refund calls %d)", again, err, e.ch.count("refund"))
		}
		p = e.get(t, p.ID)
		wantStatus(t, p, ihos.PaymentPartiallyRefunded)
		if p.Refunded != 3000 || p.Refunding != 0 {
			t.Fatalf("refunded %d refunding %d", p.Refunded, p.Refunding)
		}
		if _, err := e.svc.Refund(ctx, p.ID, RefundRequest{Amount: 7001}); ihos.ErrorCode(err) != ihos.EConflict {
			t.Fatalf("refund beyond the total: %v", err)
		}
		var audits int
		e.db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE record_id = ? AND action = 'refund' AND actor_name = 'cashier'`, p.ID).Scan(&audits)
		if audits != 1 {
			t.Fatalf("refund audit entries = %d", audits)
		}
	})
}

func TestFullRefund(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		split := ihos.Split{Fund: 6000, Account: 1000, Cash: 3000}
		e.ins.split = split
		p := e.create(t, ihos.ChannelInsuranceMobile, 10000, &split)
		r, _ := e.svc.Pay(bg, p.ID, PayRequest{})
		e.svc.ApplyNotify(bg, paidNotify(r.Payment, e.ch.pay(p.OutTradeNo), e.clock.Now()))
		// A partial refund may take only cash.
		if _, err := e.svc.Refund(bg, p.ID, RefundRequest{Amount: 5000}); ihos.ErrorCode(err) != ihos.EConflict {
			t.Fatalf("partial refund into the fund: %v", err)
		}
		if rf, err := e.svc.Refund(bg, p.ID, RefundRequest{Amount: 1000}); err != nil || rf.CashPart != 1000 || rf.FundPart != 0 {
			t.Fatalf("cash partial refund: %+v %v", rf, err)
		}
		rf, err := e.svc.Refund(bg, p.ID, RefundRequest{Amount: 9000, Reason: "退号"})
		if err != nil || rf.Status != ihos.RefundSucceeded {
			t.Fatalf("full refund: %+v %v", rf, err)
		}
		if rf.FundPart != 6000 || rf.AccountPart != 1000 || rf.CashPart != 2000 {
			t.Fatalf("full refund split: %+v", rf)
		}
		ir := e.ins.refunds[rf.OutRefundNo]
		if ir.Fund != 6000 || ir.Account != 1000 || ir.PaymentKey != p.InsuranceKey {
			t.Fatalf("insurance refund: %+v", ir)
		}
		p = e.get(t, p.ID)
		wantStatus(t, p, ihos.PaymentRefunded)
		if p.Refunded != p.Total {
			t.Fatalf("refunded %d of %d", p.Refunded, p.Total)
		}
		if _, err := e.svc.Refund(bg, p.ID, RefundRequest{Amount: 1}); ihos.ErrorCode(err) != ihos.EConflict {
			t.Fatalf("refund of a refunded payment: %v", err)
		}
	})
}

func TestRefundFailureThenRetry(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		p := paidSelfPay(t, e, 5000)
		e.ch.refundFail = 1
		e.ch.refundErr = 0
		rf, err := e.svc.Refund(bg, p.ID, RefundRequest{Amount: 5000, Reason: "取消问诊"})
		if err != nil || rf.Status != ihos.RefundFailed {
			t.Fatalf("refund: %+v %v", rf, err)
		}
		wantStatus(t, e.get(t, p.ID), ihos.PaymentPaid)
		if e.get(t, p.ID).Refunding != 5000 {
			t.Fatal("failed refund released its reservation: it is retried, not abandoned")
		}
		e.ch.refundErr = 1 // the retry's answer is lost once
		e.resolveFor(t, 10, func() bool { return e.get(t, p.ID).Status == ihos.PaymentRefunded })
		for _, k := range e.ch.refundKeys {
			if k != rf.OutRefundNo {
				t.Fatalf("retry used a new refund number: %v", e.ch.refundKeys)
			}
		}
		rf, _ = e.svc.RefundByID(bg, rf.ID)
		if rf.Status != ihos.RefundSucceeded || e.get(t, p.ID).Refunded != 5000 {
			t.Fatalf("after retry: %+v", rf)
		}
	})
}

func TestRefundsNeverExceed(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		p := paidSelfPay(t, e, 10000)
		var ok atomic.Int32
		var wg stdsync.WaitGroup
		for range 25 {
			wg.Go(func() {
				if _, err := e.svc.Refund(bg, p.ID, RefundRequest{Amount: 1000}); err == nil {
					ok.Add(1)
				} else if ihos.ErrorCode(err) != ihos.EConflict {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		p = e.get(t, p.ID)
		if ok.Load() != 10 || p.Refunded != 10000 || p.Status != ihos.PaymentRefunded {
			t.Fatalf("%d refunds succeeded; refunded %d, status %s", ok.Load(), p.Refunded, p.Status)
		}
	})
}

func TestSplitCheck(t *testing.T) {
	if err := ihos.CheckSplit(100, ihos.Split{Fund: 50, Account: 20, Cash: 30}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []ihos.Split{{Fund: 50, Cash: 49}, {Fund: 101, Cash: -1}, {Cash: 101}} {
		if ihos.CheckSplit(100, s) == nil {
			t.Fatalf("%+v accepted", s)
		}
	}
	each(t, func(t *testing.T, e *env) {
		bad := ihos.Split{Fund: 10, Cash: 10}
		if _, err := e.svc.Create(bg, NewPayment{BusinessType: ihos.PayVisitFee, BusinessID: "B", Channel: ihos.ChannelInsuranceSite, Total: 100, PreSettlement: &bad}); ihos.ErrorCode(err) != ihos.EInvalid {
			t.Fatalf("unbalanced pre-settlement: %v", err)
		}
		// The centre answering an unbalanced split never becomes a payment:
		// the leg is reversed and the payment fails.
		e.ins.split = ihos.Split{Fund: 60, Cash: 30}
		p := e.create(t, ihos.ChannelInsuranceMobile, 100, nil)
		e.svc.Pay(bg, p.ID, PayRequest{})
		e.resolveFor(t, 3, func() bool { return e.get(t, p.ID).Status == ihos.PaymentFailed })
		if !e.ins.reversed[p.InsuranceKey] {
			t.Fatal("unbalanced leg not reversed")
		}
		// The database refuses an unbalanced row whatever the code does.
		if _, err := e.db.Exec(`UPDATE payments SET fund_pay = fund_pay + 1 WHERE id = ?`, p.ID); err == nil {
			t.Fatal("CHECK constraint did not refuse an unbalanced split")
		}
		if _, err := e.db.Exec(`UPDATE payments SET refunded = total + 1 WHERE id = ?`, p.ID); err == nil {
			t.Fatal("CHECK constraint did not refuse refunded > total")
		}
	})
}

func TestRunLoop(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.svc.Now = nil
		e.svc.QueryAfter, e.svc.PollEvery = time.Millisecond, 5*time.Millisecond
		p := e.create(t, ihos.ChannelSelfPay, 100, nil)
		e.svc.Pay(bg, p.ID, PayRequest{})
		e.ch.pay(p.OutTradeNo)
		ctx, cancel := context.WithCancel(bg)
		done := make(chan struct{})
		go func() { e.svc.Run(ctx); close(done) }()
		deadline := time.Now().Add(5 * time.Second)
		for e.get(t, p.ID).Status != ihos.PaymentPaid && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		<-done
		wantStatus(t, e.get(t, p.ID), ihos.PaymentPaid)
	})
}
