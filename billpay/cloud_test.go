package billpay_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"ihos"
	"ihos/billpay"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/payments"
	"ihos/sync"
)

type cloudRig struct {
	db       *sqldb.DB
	ch       *channel
	pay      *payments.Service
	bp       *billpay.Cloud
	captured atomic.Int64
}

func newCloud(t *testing.T, db *sqldb.DB, fees billpay.FeeSource) *cloudRig {
	c := &cloudRig{db: db, ch: newChannel()}
	c.pay = &payments.Service{DB: db, Channel: c.ch, QueryAfter: time.Hour}
	c.bp = &billpay.Cloud{DB: db, Payments: c.pay, HIS: fees, Known: func(h string) bool { return h == "h1" },
		Capture: func(_ context.Context, _ *sql.Tx, refs ...sync.Ref) error {
			for _, r := range refs {
				if r.Entity != "bill_items" {
					t.Errorf("captured %s", r.Entity)
				}
			}
			c.captured.Add(int64(len(refs)))
			return nil
		}}
	return c
}

func wantError(t *testing.T, err error, code, text string) {
	t.Helper()
	if err == nil || ihos.ErrorCode(err) != code {
		t.Fatalf("error %v, want %s", err, code)
	}
	msg := ihos.ErrorMessage(err)
	var e *ihos.Error
	if errors.As(err, &e) {
		for _, v := range e.Fields {
			msg += " " + v
		}
	}
	if !strings.Contains(msg, text) {
		t.Fatalf("error %q, want it to say %q", msg, text)
	}
}

func feeIDs(fees []ihos.HISFee) []string {
	var ids []string
	for _, f := range fees {
		ids = append(ids, f.FeeID)
	}
	return ids
}

// A selection is checked against the fees the HIS lists now and refused,
// in Chinese, when it is empty, repeats a fee, names one the HIS does not
// list, or lacks what the channel needs.
func TestCreateRefusesBadSelections(t *testing.T) {
	r := startHIS(t)
	c := newCloud(t, sqldbtest.SQLite(t), r)
	ctx := context.Background()
	patient, fees := r.patientWithFees(t, 1)
	ok := billpay.CreateRequest{HospitalID: "h1", HISPatientID: patient, FeeIDs: []string{fees[0].FeeID}, OpenID: "oP1"}
	for _, tc := range []struct {
		name       string
		change     func(*billpay.CreateRequest)
		code, text string
	}{
		{"empty", func(r *billpay.CreateRequest) { r.FeeIDs = nil }, ihos.EInvalid, "请至少选择一项费用"},
		{"twice", func(r *billpay.CreateRequest) { r.FeeIDs = append(r.FeeIDs, r.FeeIDs[0]) }, ihos.EInvalid, "选择了两次"},
		{"unknown fee", func(r *billpay.CreateRequest) { r.FeeIDs = append(r.FeeIDs, "F99999999") }, ihos.EInvalid, "F99999999"},
		{"another patient's fee", func(r *billpay.CreateRequest) { r.HISPatientID = "P000003" }, ihos.EInvalid, "不存在或已缴清"},
		{"unknown hospital", func(r *billpay.CreateRequest) { r.HospitalID = "h9" }, ihos.EInvalid, "医院不存在"},
		{"no patient", func(r *billpay.CreateRequest) { r.HISPatientID = "" }, ihos.EInvalid, "HIS 患者编号"},
		{"bad channel", func(r *billpay.CreateRequest) { r.Channel = "cash" }, ihos.EInvalid, "支付方式无效"},
		{"phone without openid", func(r *billpay.CreateRequest) { r.OpenID = "" }, ihos.EInvalid, "openid"},
		{"bad source", func(r *billpay.CreateRequest) { r.Source = "fax" }, ihos.EInvalid, "来源"},
		{"patient not linked", func(r *billpay.CreateRequest) { r.PatientID = "someone" }, ihos.EConflict, "尚未关联"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := ok
			req.FeeIDs = slices.Clone(ok.FeeIDs)
			tc.change(&req)
			_, err := c.bp.Create(ctx, req)
			wantError(t, err, tc.code, tc.text)
		})
	}
	if n := count(t, c.db, `SELECT COUNT(*) FROM payments`); n != 0 {
		t.Fatalf("%d payments made by refused requests", n)
	}
	if _, err := c.bp.Fees(ctx, "h1", ""); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Fatalf("fees without a patient: %v", err)
	}
}

// A selection becomes one payment of the fees' sum; sending it again finds
// that payment; a fee in it cannot be paid in another selection while it is
// under way or once paid; a cancelled or refunded payment lets its fees go.
func TestCreatePayAndHolds(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		r := startHIS(t)
		c := newCloud(t, db, r)
		ctx := context.Background()
		patient, fees := r.patientWithFees(t, 2)
		f1, f2 := fees[0], fees[1]
		req := billpay.CreateRequest{HospitalID: "h1", HISPatientID: patient, FeeIDs: []string{f2.FeeID, f1.FeeID}, OpenID: "oP1"}
		res, err := c.bp.Create(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		p := res.Payment
		if p.Total != f1.AmountFen+f2.AmountFen || p.BusinessType != ihos.PayOutpatientBill || p.Status != ihos.PaymentPaying ||
			p.BusinessID != billpay.BusinessID("h1", patient, []string{f1.FeeID, f2.FeeID}) || p.Channel != ihos.ChannelSelfPay {
			t.Fatalf("payment %+v", p)
		}
		if res.Prepay == nil || res.Prepay.PrepayID == "" || res.Prepay.CodeURL != "" || !strings.Contains(p.Subject, "等 2 项") {
			t.Fatalf("a phone payment: %+v %q", res.Prepay, p.Subject)
		}
		items, err := c.bp.Items(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{f1.FeeID, f2.FeeID}
		slices.Sort(ids)
		if len(items) != 2 || items[0].FeeID != ids[0] || items[1].FeeID != ids[1] || items[0].AmountFen+items[1].AmountFen != p.Total ||
			items[0].HISPatientID != patient || items[0].ItemName == "" || c.captured.Load() != 2 {
			t.Fatalf("items %+v, captured %d", items, c.captured.Load())
		}
		// The same selection again (the answer was lost): the same payment.
		req.FeeIDs = []string{f1.FeeID, f2.FeeID}
		again, err := c.bp.Create(ctx, req)
		if err != nil || again.Payment.ID != p.ID {
			t.Fatalf("again: %v %+v", err, again)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM bill_items WHERE payment_id = ?`, p.ID); n != 2 {
			t.Fatalf("%d items after the repeat", n)
		}
		// The same selection another way, or an overlapping one: refused.
		_, err = c.bp.Create(ctx, billpay.CreateRequest{HospitalID: "h1", HISPatientID: patient, FeeIDs: []string{f1.FeeID}, OpenID: "oP1"})
		wantError(t, err, ihos.EConflict, "正在另一笔订单中支付")
		_, err = c.bp.Create(ctx, billpay.CreateRequest{HospitalID: "h1", HISPatientID: patient, FeeIDs: req.FeeIDs, Source: billpay.SourceKiosk})
		if err != nil {
			t.Fatalf("the kiosk resuming the phone's payment: %v", err)
		}
		bill, err := c.bp.Fees(ctx, "h1", patient)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range bill.Fees {
			if (f.FeeID == f1.FeeID || f.FeeID == f2.FeeID) && f.PaymentID != p.ID {
				t.Fatalf("fee under way listed as %+v", f)
			}
		}
		// Paid: no second payment for those fees, and the list leaves them out
		// although the HIS, not told yet, still lists them.
		c.ch.pay(p.OutTradeNo)
		if p, err = c.pay.Resolve(ctx, p.ID); err != nil || p.Status != ihos.PaymentPaid {
			t.Fatalf("resolve: %v %+v", err, p)
		}
		_, err = c.bp.Create(ctx, req)
		wantError(t, err, ihos.EConflict, "已支付")
		_, err = c.bp.Create(ctx, billpay.CreateRequest{HospitalID: "h1", HISPatientID: patient, FeeIDs: []string{f2.FeeID}, OpenID: "oP1"})
		wantError(t, err, ihos.EConflict, "已支付")
		bill, err = c.bp.Fees(ctx, "h1", patient)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range bill.Fees {
			if f.FeeID == f1.FeeID || f.FeeID == f2.FeeID {
				t.Fatalf("a paid fee is still listed: %+v", f)
			}
		}
		// Refunded in full: the fees may be paid again (the HIS lists them).
		if _, err := c.pay.Refund(ctx, p.ID, payments.RefundRequest{Amount: p.Total, Reason: "测试退款"}); err != nil {
			t.Fatal(err)
		}
		res, err = c.bp.Create(ctx, billpay.CreateRequest{HospitalID: "h1", HISPatientID: patient, FeeIDs: []string{f1.FeeID}, Source: billpay.SourceKiosk})
		if err != nil {
			t.Fatalf("after the refund: %v", err)
		}
		if res.Prepay == nil || !strings.HasPrefix(res.Prepay.CodeURL, "weixin://") {
			t.Fatalf("the kiosk gets a QR code: %+v", res.Prepay)
		}
		// Cancelled: its fee is free again.
		if _, err := c.pay.Cancel(ctx, res.Payment.ID, payments.CancelRequest{Reason: "患者放弃"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.bp.Create(ctx, req); err != nil {
			t.Fatalf("after the cancel: %v", err)
		}
	})
}

// Overlapping selections sent at the same time: one payment gets each fee.
func TestConcurrentSelections(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		r := startHIS(t)
		c := newCloud(t, db, r)
		patient, fees := r.patientWithFees(t, 2)
		sels := [][]string{feeIDs(fees[:2]), feeIDs(fees[:1]), feeIDs(fees[1:2]), feeIDs(fees[:2])}
		var wg stdsync.WaitGroup
		var okCount atomic.Int64
		for i := range 12 {
			wg.Go(func() {
				_, err := c.bp.Create(context.Background(), billpay.CreateRequest{HospitalID: "h1", HISPatientID: patient, FeeIDs: sels[i%len(sels)], OpenID: "o"})
				switch {
				case err == nil:
					okCount.Add(1)
				case ihos.ErrorCode(err) != ihos.EConflict:
					t.Errorf("create: %v", err)
				}
			})
		}
		wg.Wait()
		if okCount.Load() == 0 {
			t.Fatal("no selection got through")
		}
		for _, f := range fees[:2] {
			if n := count(t, db, `SELECT COUNT(*) FROM bill_items b JOIN payments p ON p.id = b.payment_id WHERE b.fee_id = ? AND p.status IN ('created', 'paying')`, f.FeeID); n > 1 {
				t.Fatalf("fee %s is in %d live payments", f.FeeID, n)
			}
		}
		if n := count(t, db, `SELECT COUNT(*) FROM payments p WHERE p.status IN ('created', 'paying') AND NOT EXISTS (SELECT 1 FROM bill_items b WHERE b.payment_id = p.id)`); n != 0 {
			t.Fatalf("%d live payments without items", n)
		}
	})
}
