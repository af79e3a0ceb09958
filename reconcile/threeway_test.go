package reconcile

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/paychannel"
	"ihos/sync"
)

const hosp = "h1"

// exec runs one statement in tx or fails the test.
func exec(t testing.TB, db *sqldb.DB, tx *sql.Tx, q string, args ...any) {
	t.Helper()
	if _, err := db.TxExec(context.Background(), tx, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// addInsPayment adds a payment of hospital paid wholly by insurance (fund +
// account) under the insurance key key.
func addInsPayment(t testing.TB, db *sqldb.DB, tx *sql.Tx, key, hospital string, fund, account int64, insStatus string, created, paidAt time.Time) string {
	t.Helper()
	id := ihos.NewID()
	status := ihos.PaymentPaying
	var paid any
	if insStatus == ihos.LegDone {
		status, paid = ihos.PaymentPaid, ihos.FormatTime(paidAt)
	}
	if insStatus == ihos.LegReversed {
		status = ihos.PaymentClosed
	}
	exec(t, db, tx, `INSERT INTO payments (id, hospital_id, business_type, business_id, channel, total, fund_pay, account_pay, cash_pay, status,
		out_trade_no, insurance_key, ins_status, deadline, created_at, paid_at, updated_at) VALUES (?, ?, 'visit_fee', ?, 'insurance_site', ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, hospital, id, fund+account, fund, account, status, "O"+key, key, insStatus, ihos.FormatTime(created.Add(time.Hour)), ihos.FormatTime(created), paid, ihos.FormatTime(created))
	return id
}

func addInsRefund(t testing.TB, db *sqldb.DB, tx *sql.Tx, paymentID, hospital, outRefundNo string, fund, account int64, insStatus string, created, doneAt time.Time) {
	t.Helper()
	status := ihos.RefundPending
	var done any
	if insStatus == ihos.LegDone {
		status, done = ihos.RefundSucceeded, ihos.FormatTime(doneAt)
	}
	exec(t, db, tx, `INSERT INTO refunds (id, hospital_id, payment_id, out_refund_no, amount, fund_part, account_part, cash_part, status, ins_status,
		created_at, done_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)`,
		ihos.NewID(), hospital, paymentID, outRefundNo, fund+account, fund, account, status, insStatus, ihos.FormatTime(created), done, ihos.FormatTime(created))
}

// addSettlement adds what the appliance recorded at the centre.
func addSettlement(t testing.TB, db *sqldb.DB, tx *sql.Tx, kind, legKey, hospital string, fund, account int64, status, onDay string) {
	t.Helper()
	now := ihos.FormatTime(at(12))
	exec(t, db, tx, `INSERT INTO insurance_settlements (id, hospital_id, kind, leg_key, channel, status, total, fund_pay, account_pay, cash_pay,
		setl_id, day, state, settled_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'insurance_site', ?, ?, ?, ?, 0, ?, ?, '{}', ?, ?, ?)`,
		ihos.NewID(), hospital, kind, legKey, status, fund+account, fund, account, "S"+legKey, onDay, now, now, now)
}

// addBill adds an outpatient bill (诊间支付) payment; id is the key the HIS
// side uses.
func addBill(t testing.TB, db *sqldb.DB, tx *sql.Tx, id, hospital string, total int64, status string, created, paidAt time.Time) {
	t.Helper()
	var paid any
	if status == ihos.PaymentPaid || status == ihos.PaymentPartiallyRefunded || status == ihos.PaymentRefunded {
		paid = ihos.FormatTime(paidAt)
	}
	exec(t, db, tx, `INSERT INTO payments (id, hospital_id, business_type, business_id, channel, total, cash_pay, status, out_trade_no,
		cash_status, deadline, created_at, paid_at, updated_at) VALUES (?, ?, ?, ?, 'selfpay', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, hospital, ihos.PayOutpatientBill, id, total, total, status, "O"+id, map[bool]string{true: ihos.LegDone, false: ihos.LegPending}[paid != nil],
		ihos.FormatTime(created.Add(time.Hour)), ihos.FormatTime(created), paid, ihos.FormatTime(created))
}

func addBillRefund(t testing.TB, db *sqldb.DB, tx *sql.Tx, id, paymentID, hospital string, amount int64, doneAt time.Time) {
	t.Helper()
	exec(t, db, tx, `INSERT INTO refunds (id, hospital_id, payment_id, out_refund_no, amount, cash_part, status, cash_status, created_at, done_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 'succeeded', 'done', ?, ?, ?)`,
		id, hospital, paymentID, "R"+id, amount, amount, ihos.FormatTime(doneAt), ihos.FormatTime(doneAt), ihos.FormatTime(doneAt))
}

// addPosting adds what the appliance posted to the HIS (amount negative for
// a credit).
func addPosting(t testing.TB, db *sqldb.DB, tx *sql.Tx, paymentID, refundID, hospital, status string, amount int64, onDay string) {
	t.Helper()
	kind := "charge"
	if refundID != "" {
		kind = "credit"
	}
	now := ihos.FormatTime(at(12))
	exec(t, db, tx, `INSERT INTO bill_postings (id, hospital_id, payment_id, refund_id, kind, his_message_id, status, amount_fen, day, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ihos.NewID(), hospital, paymentID, refundID, kind, "M"+paymentID+refundID, status, amount, onDay, now, now)
}

type wantItem struct{ kind, label, suggestion string }

// checkItems compares a run's items by key with want.
func checkItems(t *testing.T, items []Item, want map[string]wantItem) {
	t.Helper()
	if len(items) != len(want) {
		t.Errorf("%d items, want %d", len(items), len(want))
	}
	for _, it := range items {
		w, ok := want[it.Key]
		if !ok {
			t.Errorf("unexpected mismatch %+v", it)
			continue
		}
		if it.Kind != w.kind || it.Label != w.label || it.Suggestion != w.suggestion {
			t.Errorf("%s: got %s %q %q, want %s %q %q", it.Key, it.Kind, it.Label, it.Suggestion, w.kind, w.label, w.suggestion)
		}
	}
}

func byKey(items []Item, key string) Item {
	for _, it := range items {
		if it.Key == key {
			return it
		}
	}
	return Item{}
}

func TestInsuranceSide(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		yesterday := "2026-11-19"
		tx(t, db, func(tx *sql.Tx) {
			p := addInsPayment(t, db, tx, "IMATCH", hosp, 1000, 200, ihos.LegDone, at(9), at(9))
			addSettlement(t, db, tx, "settle", "IMATCH", hosp, 1000, 200, "settled", day)
			addInsPayment(t, db, tx, "IPARTS", hosp, 1000, 200, ihos.LegDone, at(9), at(9))
			addSettlement(t, db, tx, "settle", "IPARTS", hosp, 1100, 100, "settled", day) // same sum, other parts
			addInsPayment(t, db, tx, "INOTTHEIRS", hosp, 500, 0, ihos.LegDone, at(9), at(9))
			addSettlement(t, db, tx, "settle", "ISTRANGER", hosp, 300, 0, "settled", day)
			// The order never completed: we reversed the leg, the centre still has it settled.
			addInsPayment(t, db, tx, "IREVERSED", hosp, 800, 0, ihos.LegReversed, at(10), time.Time{})
			addSettlement(t, db, tx, "settle", "IREVERSED", hosp, 800, 0, "settled", day)
			// Reversed on both sides: nothing moved.
			addInsPayment(t, db, tx, "IBOTHREVERSED", hosp, 800, 0, ihos.LegReversed, at(10), time.Time{})
			addSettlement(t, db, tx, "settle", "IBOTHREVERSED", hosp, 800, 0, "reversed", day)
			// Settled at the centre at 23:59, paid (the cash leg) after midnight: each side's day differs.
			addInsPayment(t, db, tx, "ILATE", hosp, 700, 0, ihos.LegDone, at(-1), at(-1))
			addSettlement(t, db, tx, "settle", "ILATE", hosp, 700, 0, "settled", day)
			addInsPayment(t, db, tx, "IEARLY", hosp, 600, 0, ihos.LegDone, at(9), at(9))
			addSettlement(t, db, tx, "settle", "IEARLY", hosp, 600, 0, "settled", yesterday)
			addInsRefund(t, db, tx, p, hosp, "RINS", 500, 100, ihos.LegDone, at(11), at(11))
			addSettlement(t, db, tx, "refund", "RINS", hosp, 500, 100, "refunded", day)
			addInsRefund(t, db, tx, p, hosp, "RINSMISSING", 100, 0, ihos.LegDone, at(11), at(11))
			addSettlement(t, db, tx, "presettle", "QUOTE1", hosp, 100, 0, "quoted", day) // not a settlement: ignored
		})
		var asked []string
		r := &Reconciler{DB: db, Hospitals: func() []string { return []string{hosp} },
			Statement: func(_ context.Context, hospital, d string) (bool, string, error) {
				asked = append(asked, hospital+" "+d)
				return false, "险种 310：不平（医保 ¥30.00，本院 ¥29.00）", nil
			}}
		run := one(t)(r.RunInsurance(ctx, day))
		if !slices.Equal(asked, []string{hosp + " " + day}) {
			t.Errorf("statement asked %v", asked)
		}
		if run.HospitalID != hosp || run.Source != Insurance.Name || run.StmtStatus != StmtUnbalanced || !strings.Contains(run.StmtDetail, "不平") {
			t.Errorf("run %+v", run)
		}
		items, err := r.Items(ctx, run.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		checkItems(t, items, map[string]wantItem{
			"IPARTS":      {AmountDiffers, "统筹或个账金额不一致", "核对统筹与个账金额，必要时冲正后重新结算"},
			"INOTTHEIRS":  {MissingTheirs, "我方有、医保无", "向医保中心查询结算结果，未结算则关闭订单并退还已收现金"},
			"ISTRANGER":   {MissingOurs, "医保有、我方无", "向医保中心查询并冲正"},
			"IREVERSED":   {StatusDiffers, "我方未结算而医保已结算", "向医保中心查询并冲正"},
			"ILATE":       {OtherDay, "入账日期不一致", "跨日结算，核对两日明细，无需调账"},
			"IEARLY":      {OtherDay, "入账日期不一致", "跨日结算，核对两日明细，无需调账"},
			"RINSMISSING": {MissingTheirs, "我方有、医保无", "向医保中心查询退费结果，未退则重新发起医保退费"},
			day:           {Unbalanced, "医保中心总额对账（3201）不平", "下载医保对账明细（3202）逐笔核对"},
		})
		if it := byKey(items, "IPARTS"); it.Detail != "我方 统筹 ¥10.00，个账 ¥2.00；对方 统筹 ¥11.00，个账 ¥1.00" || *it.Ours != 1200 || *it.Theirs != 1200 {
			t.Errorf("parts item %+v", it)
		}
		if it := byKey(items, day); it.RecordKind != KindStatement || !strings.Contains(it.Detail, "险种 310") || it.Ours != nil || it.Theirs != nil {
			t.Errorf("statement item %+v", it)
		}
		if it := byKey(items, "IREVERSED"); it.OursStatus != ihos.PaymentClosed || it.TheirsStatus != "settled" || it.TheirsRef != "SIREVERSED" {
			t.Errorf("reversed item %+v", it)
		}
		// Matched: IMATCH and RINS; IEARLY's pair is of the day before at the centre.
		if run.Tally.Matched != 2 || run.Mismatches != 8 {
			t.Errorf("tally %+v, %d mismatches", run.Tally, run.Mismatches)
		}

		// The centre cannot be asked: the run says so and lists no statement item.
		r.Statement = func(context.Context, string, string) (bool, string, error) {
			return false, "", ihos.Errorf(ihos.EUnavailable, "医院系统暂时无法连接，请稍后再试")
		}
		run = one(t)(r.RunInsurance(ctx, day))
		if run.StmtStatus != StmtUnchecked || !strings.Contains(run.StmtDetail, "医院系统暂时无法连接") || run.Mismatches != 7 {
			t.Errorf("unchecked run %+v", run)
		}
		r.Statement = func(context.Context, string, string) (bool, string, error) { return true, "险种 310 平", nil }
		run = one(t)(r.RunInsurance(ctx, day))
		if run.StmtStatus != StmtBalanced || run.Mismatches != 7 {
			t.Errorf("balanced run %+v", run)
		}
	})
}

func TestHISSide(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		tx(t, db, func(tx *sql.Tx) {
			addBill(t, db, tx, "HMATCH", hosp, 3000, ihos.PaymentPartiallyRefunded, at(9), at(9))
			addPosting(t, db, tx, "HMATCH", "", hosp, "accepted", 3000, day)
			addBill(t, db, tx, "HMISSING", hosp, 2000, ihos.PaymentPaid, at(9), at(9))
			addBill(t, db, tx, "HREFUSED", hosp, 2000, ihos.PaymentPaid, at(9), at(9))
			addPosting(t, db, tx, "HREFUSED", "", hosp, "refused", 2000, day)
			addBill(t, db, tx, "HQUEUED", hosp, 2000, ihos.PaymentPaid, at(9), at(9))
			addPosting(t, db, tx, "HQUEUED", "", hosp, "queued", 2000, day)
			addBill(t, db, tx, "HAMOUNT", hosp, 3000, ihos.PaymentPaid, at(9), at(9))
			addPosting(t, db, tx, "HAMOUNT", "", hosp, "accepted", 2900, day)
			addPosting(t, db, tx, "HSTRANGER", "", hosp, "accepted", 100, day)
			addBill(t, db, tx, "HUNPAID", hosp, 500, ihos.PaymentPaying, at(9), time.Time{})
			addPosting(t, db, tx, "HUNPAID", "", hosp, "accepted", 500, day)
			addBill(t, db, tx, "HVISIT", hosp, 500, ihos.PaymentPaid, at(9), at(9)) // not a bill: not the HIS side's
			addBillRefund(t, db, tx, "HR1", "HMATCH", hosp, 1000, at(15))
			addPosting(t, db, tx, "HMATCH", "HR1", hosp, "accepted", -1000, day)
			addBillRefund(t, db, tx, "HR2", "HMATCH", hosp, 500, at(16))
			addBillRefund(t, db, tx, "HR3", "HMATCH", hosp, 200, at(16))
			addPosting(t, db, tx, "HMATCH", "HR3", hosp, "refused", -200, day)
		})
		// HVISIT is a visit fee: make it one.
		if _, err := db.ExecContext(ctx, `UPDATE payments SET business_type = 'visit_fee' WHERE id = 'HVISIT'`); err != nil {
			t.Fatal(err)
		}
		r := &Reconciler{DB: db, Hospitals: func() []string { return []string{hosp} }}
		run := one(t)(r.RunHIS(ctx, day))
		items, err := r.Items(ctx, run.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		checkItems(t, items, map[string]wantItem{
			"HMISSING":  {MissingTheirs, "我方已收费、HIS 未记费", "重发费用消息"},
			"HQUEUED":   {MissingTheirs, "我方已收费、HIS 未记费", "重发费用消息"},
			"HREFUSED":  {Refused, "HIS 拒收费用消息", "核对费用明细后重发费用消息"},
			"HAMOUNT":   {AmountDiffers, "金额不一致", "人工核对费用明细，按差额补发或冲销"},
			"HSTRANGER": {MissingOurs, "HIS 已记费、我方无收费", "在 HIS 冲销该费用，或向患者补收"},
			"HUNPAID":   {StatusDiffers, "HIS 已记费而我方未收款", "查询支付结果，未收款则在 HIS 冲销该费用"},
			"HR2":       {MissingTheirs, "我方已退费、HIS 未冲销", "重发退费冲销消息"},
			"HR3":       {Refused, "HIS 拒收退费冲销消息", "核对退费明细后重发冲销消息"},
		})
		if it := byKey(items, "HQUEUED"); it.TheirsStatus != "queued" || it.TheirsRef != "MHQUEUED" {
			t.Errorf("queued item %+v", it)
		}
		want := Tally{OursCount: 8, OursPay: 3000 + 2000 + 2000 + 2000 + 3000, OursRefund: 1700,
			TheirsCount: 5, TheirsPay: 3000 + 2900 + 100 + 500, TheirsRefund: 1000, Matched: 2}
		if run.Tally != want {
			t.Errorf("tally %+v, want %+v", run.Tally, want)
		}
	})
}

// TestHospitals: one match covers every hospital; each gets its own run,
// every listed hospital one even without records, and a bill row nobody
// knows goes to the only hospital, or with several to the unattributed
// run "" that is never captured for replication.
func TestHospitals(t *testing.T) {
	db := sqldbtest.SQLite(t)
	ctx := context.Background()
	tx(t, db, func(tx *sql.Tx) {
		addPayment(t, db, tx, "PH1", 1000, ihos.LegDone, at(9), at(9))
		addPayment(t, db, tx, "PH2", 2000, ihos.LegDone, at(9), at(9))
		addPayment(t, db, tx, "PH2MISSING", 300, ihos.LegDone, at(9), at(9))
	})
	db.ExecContext(ctx, `UPDATE payments SET hospital_id = 'h1' WHERE out_trade_no = 'PH1'`)
	db.ExecContext(ctx, `UPDATE payments SET hospital_id = 'h2' WHERE out_trade_no <> 'PH1'`)
	captured := map[string][]string{} // hospital of the captured run -> entities
	r := &Reconciler{DB: db, Hospitals: func() []string { return []string{"h1", "h2", "h3"} },
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			for _, ref := range refs {
				var h string
				if err := tx.QueryRowContext(ctx, `SELECT hospital_id FROM `+ref.Entity+` WHERE id = ?`, ref.ID).Scan(&h); err != nil {
					return err
				}
				if h == "" {
					return errors.New("captured a row without a hospital")
				}
				captured[h] = append(captured[h], ref.Entity)
			}
			return nil
		}}
	bill := billOf(paid("PH1", 1000, at(9)), paid("PH2", 2000, at(9)), paid("PSTRANGER", 50, at(9)))
	runs, err := r.RunChannel(ctx, day, bill)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Run{}
	for _, run := range runs {
		got[run.HospitalID] = run
	}
	if len(runs) != 4 || got["h1"].Tally.Matched != 1 || got["h1"].Mismatches != 0 || got["h2"].Mismatches != 1 ||
		got["h2"].Tally.OursPay != 2300 || got["h3"].Status != RunDone || got["h3"].Tally != (Tally{}) ||
		got[""].Mismatches != 1 || got[""].Tally.TheirsPay != 50 {
		t.Fatalf("runs %+v", runs)
	}
	if len(captured["h1"]) == 0 || !slices.Contains(captured["h2"], "reconcile_items") || len(captured["h3"]) == 0 {
		t.Errorf("captured %v", captured)
	}
	listed, err := r.Runs(ctx, day, "h2")
	if err != nil || len(listed) != 1 || listed[0].ID != got["h2"].ID {
		t.Errorf("runs of h2: %+v, %v", listed, err)
	}

	// One hospital: the stranger is its, and the unattributed run of before
	// is replaced by an empty one rather than left showing it.
	r.Hospitals = func() []string { return []string{"h1"} }
	db.ExecContext(ctx, `UPDATE payments SET hospital_id = 'h1'`)
	runs, err = r.RunChannel(ctx, day, bill)
	if err != nil {
		t.Fatal(err)
	}
	got = map[string]Run{}
	for _, run := range runs {
		got[run.HospitalID] = run
	}
	run := got["h1"]
	items, _ := r.Items(ctx, run.ID, false)
	if len(items) != 2 || byKey(items, "PSTRANGER").HospitalID != "h1" || run.Tally.TheirsPay != 3050 {
		t.Errorf("one hospital: run %+v items %+v", run, items)
	}
	if u, ok := got[""]; !ok || u.Mismatches != 0 || u.Tally != (Tally{}) {
		t.Errorf("unattributed run of before: %+v (present %v)", u, ok)
	}
	if u, err := r.GetRun(ctx, "", day, Channel.Name); err != nil || u.Mismatches != 0 {
		t.Errorf("stored unattributed run %+v %v", u, err)
	}
}

// TestRunDay runs the three sides of a day; without a channel the channel
// is skipped, and asked for explicitly it is refused.
func TestRunDay(t *testing.T) {
	db := sqldbtest.SQLite(t)
	ctx := context.Background()
	r := &Reconciler{DB: db, Hospitals: func() []string { return []string{hosp} }}
	runs, err := r.RunDay(ctx, day, "")
	if err != nil || len(runs) != 2 || runs[0].Source != Insurance.Name || runs[1].Source != HIS.Name {
		t.Fatalf("runs %+v, %v", runs, err)
	}
	if runs[0].StmtStatus != StmtUnchecked {
		t.Errorf("insurance run without a statement check: %+v", runs[0])
	}
	if _, err := r.RunDay(ctx, day, Channel.Name); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Errorf("channel without a bill: %v", err)
	}
	if _, err := r.RunDay(ctx, day, "bank"); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Errorf("unknown source: %v", err)
	}
	r.Bill = func(context.Context, string) ([]paychannel.BillRow, error) { return nil, nil }
	runs, err = r.RunDay(ctx, day, "")
	if err != nil || len(runs) != 3 || runs[0].Source != Channel.Name {
		t.Fatalf("runs %+v, %v", runs, err)
	}
	listed, err := r.Runs(ctx, day, "")
	if err != nil || len(listed) != 3 || listed[0].Source != Channel.Name || listed[2].Source != HIS.Name {
		t.Errorf("listed %+v, %v", listed, err)
	}
	if got := Yesterday(time.Date(2026, 11, 20, 17, 0, 0, 0, time.UTC)); got != "2026-11-20" { // 01:00 on the 21st in Shanghai
		t.Errorf("yesterday %s", got)
	}
}
