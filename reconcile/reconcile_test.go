package reconcile

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/paychannel"
)

const day = "2026-11-20"

// at is a time on day, Shanghai.
func at(hour int) time.Time {
	return time.Date(2026, 11, 20, hour, 0, 0, 0, ihos.Shanghai)
}

func addPayment(t testing.TB, db *sqldb.DB, tx *sql.Tx, outTradeNo string, cash int64, cashStatus string, created, paid time.Time) string {
	t.Helper()
	id := ihos.NewID()
	status := ihos.PaymentPaying
	var paidAt any
	if cashStatus == ihos.LegDone {
		status, paidAt = ihos.PaymentPaid, ihos.FormatTime(paid)
	}
	_, err := db.TxExec(context.Background(), tx, `INSERT INTO payments (id, business_type, business_id, channel, total, cash_pay, status,
		out_trade_no, cash_status, deadline, created_at, paid_at, updated_at) VALUES (?, 'visit_fee', ?, 'selfpay', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, id, cash, cash, status, outTradeNo, cashStatus, ihos.FormatTime(created.Add(time.Hour)), ihos.FormatTime(created), paidAt, ihos.FormatTime(created))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func addRefund(t testing.TB, db *sqldb.DB, tx *sql.Tx, paymentID, outRefundNo string, cash int64, cashStatus string, created, done time.Time) {
	t.Helper()
	status := ihos.RefundPending
	var doneAt any
	if cashStatus == ihos.LegDone {
		status, doneAt = ihos.RefundSucceeded, ihos.FormatTime(done)
	}
	_, err := db.TxExec(context.Background(), tx, `INSERT INTO refunds (id, payment_id, out_refund_no, amount, cash_part, status, cash_status,
		created_at, done_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ihos.NewID(), paymentID, outRefundNo, cash, cash, status, cashStatus, ihos.FormatTime(created), doneAt, ihos.FormatTime(created))
	if err != nil {
		t.Fatal(err)
	}
}

func paid(key string, fen int64, when time.Time) paychannel.BillRow {
	return paychannel.BillRow{TradeTime: when, TransactionID: "T" + key, OutTradeNo: key, TradeState: paychannel.TradeSuccess,
		Settlement: fen, Total: fen, OutRefundNo: "0", RefundID: "0"}
}

func refunded(key, refundNo string, fen int64, when time.Time) paychannel.BillRow {
	return paychannel.BillRow{TradeTime: when, TransactionID: "T" + key, OutTradeNo: key, TradeState: paychannel.TradeRefund,
		RefundID: "F" + refundNo, OutRefundNo: refundNo, Refund: fen, RefundRequested: fen, RefundStatus: paychannel.RefundSuccess}
}

func billOf(rows ...paychannel.BillRow) func(context.Context, string) ([]paychannel.BillRow, error) {
	return func(_ context.Context, d string) ([]paychannel.BillRow, error) {
		if d != day {
			panic("asked for bill of " + d)
		}
		return rows, nil
	}
}

// one is the single run a one-hospital day yields.
func one(t testing.TB) func(runs []Run, err error) Run {
	return func(runs []Run, err error) Run {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 {
			t.Fatalf("%d runs, want 1: %+v", len(runs), runs)
		}
		return runs[0]
	}
}

func tx(t testing.TB, db *sqldb.DB, fn func(tx *sql.Tx)) {
	t.Helper()
	if err := db.Tx(context.Background(), func(tx *sql.Tx) error { fn(tx); return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestMatchedDay(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		tx(t, db, func(tx *sql.Tx) {
			p1 := addPayment(t, db, tx, "P1", 1000, ihos.LegDone, at(9), at(9))
			addPayment(t, db, tx, "P2", 2500, ihos.LegDone, at(1), at(23).Add(59*time.Minute))
			addPayment(t, db, tx, "P3", 700, ihos.LegFailed, at(10), time.Time{}) // never paid: on neither side
			addPayment(t, db, tx, "P4", 300, ihos.LegDone, at(-3), at(-2))        // the day before
			// Never completed: closed at the channel at its deadline (the cash
			// leg reversed); on neither side, so no mismatch.
			addPayment(t, db, tx, "P5", 900, ihos.LegReversed, at(10), time.Time{})
			addRefund(t, db, tx, p1, "R1", 400, ihos.LegDone, at(11), at(12))
		})
		r := &Reconciler{DB: db}
		run := one(t)(r.RunChannel(ctx, day, billOf(paid("P1", 1000, at(9)), paid("P2", 2500, at(23)), refunded("P1", "R1", 400, at(12)))))
		want := Tally{OursCount: 3, TheirsCount: 3, OursPay: 3500, OursRefund: 400, TheirsPay: 3500, TheirsRefund: 400, Matched: 3}
		if run.Status != RunDone || run.Mismatches != 0 || run.Tally != want {
			t.Fatalf("run = %+v, want done, no mismatches, tally %+v", run, want)
		}
		got, err := r.GetRun(ctx, "", day, Channel.Name)
		if err != nil || got.Tally != want || got.ID != run.ID || got.Status != RunDone {
			t.Fatalf("GetRun = %+v, %v", got, err)
		}
	})
}

func TestMismatchKinds(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		tx(t, db, func(tx *sql.Tx) {
			addPayment(t, db, tx, "PMATCH", 1000, ihos.LegDone, at(9), at(9))
			addPayment(t, db, tx, "PNOTTHEIRS", 500, ihos.LegDone, at(9), at(9))
			addPayment(t, db, tx, "PAMOUNT", 800, ihos.LegDone, at(9), at(9))
			addPayment(t, db, tx, "PPENDING", 700, ihos.LegPending, at(9), time.Time{})
			addPayment(t, db, tx, "POLDPENDING", 650, ihos.LegPending, at(-5), time.Time{}) // created the day before, still queried
			addPayment(t, db, tx, "PYESTERDAY", 600, ihos.LegDone, at(-2), at(-1))
			addPayment(t, db, tx, "PUNPAID", 100, ihos.LegPending, at(9), time.Time{}) // neither side: no mismatch
			p := addPayment(t, db, tx, "PR", 900, ihos.LegDone, at(-30), at(-30))
			addRefund(t, db, tx, p, "RPENDING", 300, ihos.LegPending, at(10), time.Time{})
			addRefund(t, db, tx, p, "RNOTTHEIRS", 200, ihos.LegDone, at(10), at(11))
		})
		bill := billOf(
			paid("PMATCH", 1000, at(9)), paid("PAMOUNT", 900, at(9)), paid("PPENDING", 700, at(9)),
			paid("POLDPENDING", 650, at(0)), paid("PYESTERDAY", 600, at(0)), paid("PSTRANGER", 300, at(9)),
			refunded("PR", "RPENDING", 300, at(10)), refunded("PR", "RSTRANGER", 50, at(10)))
		r := &Reconciler{DB: db}
		run := one(t)(r.RunChannel(ctx, day, bill))
		items, err := r.Items(ctx, run.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		type want struct{ kind, label, suggestion string }
		wants := map[string]want{
			"PNOTTHEIRS":  {MissingTheirs, "我方有、渠道无", "查询渠道订单，确认未支付后关闭"},
			"PSTRANGER":   {MissingOurs, "渠道有、我方无", "按渠道流水补记或原路退款"},
			"PAMOUNT":     {AmountDiffers, "金额不一致", "人工核对"},
			"PPENDING":    {StatusDiffers, "我方未支付而渠道已支付", "调用查询补记为已支付"},
			"POLDPENDING": {StatusDiffers, "我方未支付而渠道已支付", "调用查询补记为已支付"},
			"PYESTERDAY":  {OtherDay, "入账日期不一致", "跨日入账，核对两日账单，无需调账"},
			"RPENDING":    {StatusDiffers, "我方未退款而渠道已退款", "调用退款查询补记为已退款"},
			"RNOTTHEIRS":  {MissingTheirs, "我方有、渠道无", "查询渠道退款单，未退款则重新发起退款"},
			"RSTRANGER":   {MissingOurs, "渠道有、我方无", "按渠道流水补记或原路退款"},
		}
		if len(items) != len(wants) || run.Mismatches != int64(len(wants)) {
			t.Errorf("%d items (run says %d), want %d: %+v", len(items), run.Mismatches, len(wants), items)
		}
		for _, it := range items {
			w, ok := wants[it.Key]
			if !ok {
				t.Errorf("unexpected mismatch %+v", it)
				continue
			}
			if it.Kind != w.kind || it.Label != w.label || it.Suggestion != w.suggestion {
				t.Errorf("%s: got %s %q %q, want %s %q %q", it.Key, it.Kind, it.Label, it.Suggestion, w.kind, w.label, w.suggestion)
			}
		}
		for _, it := range items {
			if it.Key == "PAMOUNT" && (it.Ours == nil || *it.Ours != 800 || it.Theirs == nil || *it.Theirs != 900 || it.TheirsRef != "TPAMOUNT") {
				t.Errorf("amount item %+v", it)
			}
			if it.Key == "PSTRANGER" && (it.Ours != nil || it.Theirs == nil || *it.Theirs != 300) {
				t.Errorf("missing-ours item %+v", it)
			}
		}
		if run.Tally.Matched != 1 {
			t.Errorf("matched = %d, want 1", run.Tally.Matched)
		}
	})
}

func TestRerunReplacesItems(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		tx(t, db, func(tx *sql.Tx) {
			addPayment(t, db, tx, "PA", 1000, ihos.LegDone, at(9), at(9))
			addPayment(t, db, tx, "PB", 500, ihos.LegDone, at(9), at(9))
			addPayment(t, db, tx, "PC", 700, ihos.LegDone, at(9), at(9))
		})
		r := &Reconciler{DB: db}
		run1 := one(t)(r.RunChannel(ctx, day, billOf(paid("PA", 1000, at(9)))))
		items, _ := r.Items(ctx, run1.ID, false)
		if len(items) != 2 {
			t.Fatalf("first run: %d items, want 2", len(items))
		}
		var pb string
		admin := ihos.WithActor(ctx, ihos.Actor{UserID: "u1", Username: "admin"})
		for _, it := range items {
			if it.Key == "PB" {
				pb = it.ID
			}
		}
		if err := r.Resolve(admin, pb, "", "已在渠道后台确认未支付并关闭"); err != nil {
			t.Fatal(err)
		}
		if err := r.Resolve(admin, pb, "", "again"); ihos.ErrorCode(err) != ihos.EConflict {
			t.Errorf("second resolve: %v, want conflict", err)
		}

		// The same bill again: same run, the same two items (new rows), PB still resolved.
		run2 := one(t)(r.RunChannel(ctx, day, billOf(paid("PA", 1000, at(9)))))
		if run2.ID != run1.ID {
			t.Errorf("re-run got a new run id %s, want %s", run2.ID, run1.ID)
		}
		items, _ = r.Items(ctx, run2.ID, false)
		if len(items) != 2 {
			t.Fatalf("re-run: %d items, want 2", len(items))
		}
		for _, it := range items {
			if it.Key == "PB" && (it.ResolvedBy != "admin" || it.ResolvedAt.IsZero() || it.Note == "") {
				t.Errorf("resolution lost on re-run: %+v", it)
			}
			if it.Key == "PC" && it.ResolvedBy != "" {
				t.Errorf("PC resolved: %+v", it)
			}
		}

		// The corrected bill: the day is clean.
		run3 := one(t)(r.RunChannel(ctx, day, billOf(paid("PA", 1000, at(9)), paid("PB", 500, at(9)), paid("PC", 700, at(9)))))
		items, _ = r.Items(ctx, run3.ID, false)
		if len(items) != 0 || run3.Mismatches != 0 || run3.Tally.Matched != 3 {
			t.Fatalf("corrected re-run: run %+v, items %+v", run3, items)
		}
		// The vanished items are kept as deleted (the replica follows), and
		// a mismatch coming back is a new finding: no old resolution.
		var deleted int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reconcile_items WHERE run_id = ? AND deleted_at IS NOT NULL`, run3.ID).Scan(&deleted)
		if deleted != 2 {
			t.Errorf("%d deleted items, want 2", deleted)
		}
		run4 := one(t)(r.RunChannel(ctx, day, billOf(paid("PA", 1000, at(9)), paid("PC", 700, at(9)))))
		items, _ = r.Items(ctx, run4.ID, false)
		if len(items) != 1 || items[0].Key != "PB" || items[0].ResolvedBy != "" || !items[0].ResolvedAt.IsZero() {
			t.Errorf("PB back: %+v", items)
		}
		var n int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reconcile_runs`).Scan(&n)
		if n != 1 {
			t.Errorf("%d runs, want 1", n)
		}
	})
}

func TestFailedBillMarksRunFailed(t *testing.T) {
	db := sqldbtest.SQLite(t)
	r := &Reconciler{DB: db}
	ctx := context.Background()
	_, err := r.RunChannel(ctx, day, func(context.Context, string) ([]paychannel.BillRow, error) {
		return nil, ihos.Errorf(ihos.EUnavailable, "对账单校验失败，请稍后重新下载")
	})
	if err == nil {
		t.Fatal("no error")
	}
	run, err := r.GetRun(ctx, "", day, Channel.Name)
	if err != nil || run.Status != RunFailed || run.LastError == "" {
		t.Fatalf("run = %+v, %v", run, err)
	}
	if _, err := r.RunChannel(ctx, "2026-13-01", billOf()); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Errorf("bad day: %v", err)
	}
}

func TestMatchRejectsUnsortedSource(t *testing.T) {
	ours := &SliceSource{recs: []Record{{Kind: KindPayment, Key: "B"}, {Kind: KindPayment, Key: "A"}}}
	_, err := Match(ours, NewSliceSource(nil), func(Mismatch) error { return nil })
	if err == nil {
		t.Fatal("unsorted source accepted")
	}
	dup := &SliceSource{recs: []Record{{Kind: KindPayment, Key: "A"}, {Kind: KindPayment, Key: "A"}}}
	if _, err := Match(NewSliceSource(nil), dup, func(Mismatch) error { return nil }); err == nil {
		t.Fatal("repeated key accepted")
	}
}
