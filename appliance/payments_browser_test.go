package appliance_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ihos"
	"ihos/internal/browsertest"
	"ihos/internal/sqldb"
)

// replicaPayment is a payments row as replication writes it on the appliance.
type replicaPayment struct {
	id, dept, doctor, channel, bt, status, subject string
	total, fund, account, cash, refunded           int64
	paid                                           time.Time
}

func insertReplicaPayment(t *testing.T, db *sqldb.DB, p replicaPayment) {
	t.Helper()
	ctx := context.Background()
	created := p.paid.Add(-2 * time.Minute)
	var paid any
	if p.status != ihos.PaymentClosed {
		paid = ihos.FormatTime(p.paid)
	}
	_, err := db.ExecContext(ctx, `INSERT INTO payments (id, hospital_id, business_type, business_id, patient_id, doctor_id,
		department_id, channel, subject, total, fund_pay, account_pay, cash_pay, refunded, refunding, status, out_trade_no, insurance_key,
		ins_status, cash_status, transaction_id, needs_confirm, ending, deadline, attempts, last_error, version, created_at, paid_at, updated_at)
		VALUES (?, 'H1', ?, ?, 'P-demo-1', ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, '', 'none', 'done', ?, 0, '', ?, 0, '', 1, ?, ?, ?)`,
		p.id, p.bt, "B-"+p.id, p.doctor, p.dept, p.channel, p.subject, p.total, p.fund, p.account, p.cash, p.refunded, p.status,
		"T"+p.id, "WX"+p.id, ihos.FormatTime(created.Add(30*time.Minute)), ihos.FormatTime(created), paid, ihos.FormatTime(p.paid))
	if err != nil {
		t.Fatal(err)
	}
	history := []struct{ from, to, reason string }{{"", ihos.PaymentCreated, "created"}, {ihos.PaymentCreated, ihos.PaymentPaying, "pay_started"}}
	if paid != nil {
		history = append(history, struct{ from, to, reason string }{ihos.PaymentPaying, ihos.PaymentPaid, "paid"})
	}
	if p.status == ihos.PaymentRefunded {
		history = append(history, struct{ from, to, reason string }{ihos.PaymentPaid, ihos.PaymentRefunded, "refund_succeeded"})
		_, err := db.ExecContext(ctx, `INSERT INTO refunds (id, hospital_id, payment_id, out_refund_no, amount, fund_part, account_part, cash_part,
			status, ins_status, cash_status, reason, created_by, created_at, done_at, updated_at)
			VALUES (?, 'H1', ?, ?, ?, ?, ?, ?, 'succeeded', 'done', 'done', '患者取消就诊', 'yiwuke', ?, ?, ?)`,
			"R"+p.id, p.id, "RF"+p.id, p.total, p.fund, p.account, p.cash,
			ihos.FormatTime(p.paid.Add(time.Hour)), ihos.FormatTime(p.paid.Add(time.Hour+time.Minute)), ihos.FormatTime(p.paid.Add(time.Hour+time.Minute)))
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, h := range history {
		_, err := db.ExecContext(ctx, `INSERT INTO payment_events (id, hospital_id, payment_id, from_status, to_status, reason, actor, at)
			VALUES (?, 'H1', ?, ?, ?, ?, 'system', ?)`, ihos.NewID(), p.id, h.from, h.to, h.reason, ihos.FormatTime(created.Add(time.Duration(i)*time.Minute)))
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestPaymentConsoleBrowser drives 支付订单查询 and 医保运营统计 as the hospital
// admin on a demo appliance whose replica holds a few payments: the list,
// a filter by status, a refunded payment's detail with its history and
// refund, the statistics of the period, and the export links, fetched with
// the page's session.
func TestPaymentConsoleBrowser(t *testing.T) {
	b := browsertest.New(t)
	dir := t.TempDir()
	in := startAppliance(t, filepath.Join(dir, "data"), filepath.Join(dir, "creds.json"))
	db := in.app.Node.DB
	ctx := context.Background()
	creds := in.creds["console_hospital_admin"]

	deptID := func(name string) string {
		var id string
		if err := db.QueryRowContext(ctx, `SELECT id FROM departments WHERE name = ? AND deleted_at IS NULL`, name).Scan(&id); err != nil {
			t.Fatalf("department %s: %v", name, err)
		}
		return id
	}
	cardio, peds := deptID("心血管内科"), deptID("儿科")
	var doctor, doctorName string
	if err := db.QueryRowContext(ctx, `SELECT id, name FROM staff WHERE kind = 'doctor' AND department_id = ? AND deleted_at IS NULL ORDER BY job_no LIMIT 1`, cardio).Scan(&doctor, &doctorName); err != nil {
		t.Fatalf("a cardiology doctor: %v", err)
	}
	now := time.Now().Truncate(time.Second)
	rows := []replicaPayment{
		{id: "pay-1", dept: cardio, doctor: doctor, channel: ihos.ChannelInsuranceMobile, bt: ihos.PayPrescription, status: ihos.PaymentPaid,
			subject: "处方费用", total: 12800, fund: 8000, account: 2000, cash: 2800, paid: now.Add(-2 * time.Hour)},
		{id: "pay-2", dept: peds, channel: ihos.ChannelSelfPay, bt: ihos.PayConsultation, status: ihos.PaymentPaid,
			subject: "图文问诊", total: 3000, cash: 3000, paid: now.Add(-3 * time.Hour)},
		{id: "pay-3", dept: cardio, doctor: doctor, channel: ihos.ChannelInsuranceSite, bt: ihos.PayVisitFee, status: ihos.PaymentRefunded,
			subject: "挂号费", total: 5000, fund: 3000, account: 1000, cash: 1000, refunded: 5000, paid: now.Add(-26 * time.Hour)},
		{id: "pay-4", dept: peds, channel: ihos.ChannelSelfPay, bt: ihos.PayConsultation, status: ihos.PaymentClosed,
			subject: "图文问诊", total: 2000, cash: 2000, paid: now.Add(-time.Hour)},
	}
	for _, p := range rows {
		insertReplicaPayment(t, db, p)
	}

	p := consolePage{t, b}
	text, load, count := p.text, p.load, p.count

	b.Run(chromedp.Navigate(in.srv.URL+"/console/login"),
		chromedp.SendKeys(chromedp.ID("username"), creds.Username), chromedp.SendKeys(chromedp.ID("password"), creds.Password))
	load("#login")

	// 支付订单查询: every payment, newest first, with names and amounts in yuan.
	load(`nav.sidebar a[href="/console/x/payments"]`)
	if got := text("main.content h1"); got != "支付订单查询" {
		t.Fatalf("heading %q", got)
	}
	if n := count("#payments tbody tr[data-id]"); n != len(rows) {
		t.Errorf("%d payments listed, want %d", n, len(rows))
	}
	first := text("#payments tbody tr[data-id]")
	for _, want := range []string{"图文问诊", "儿科", "自费支付", "¥20.00", "已关闭"} {
		if !strings.Contains(first, want) {
			t.Errorf("first row lacks %q: %q", want, first)
		}
	}
	if got := text(`#payments tr[data-id="pay-1"]`); !strings.Contains(got, "心血管内科") || !strings.Contains(got, doctorName) ||
		!strings.Contains(got, "¥128.00") || !strings.Contains(got, "¥80.00") || !strings.Contains(got, "医保移动支付") {
		t.Errorf("pay-1 row %q", got)
	}
	b.Screenshot("payments-list")

	// Filtered by status: the refunded one only.
	b.Run(chromedp.SetValue(chromedp.CSS(`#payment-filters select[name=status]`), ihos.PaymentRefunded))
	load("#payment-search")
	if n := count("#payments tbody tr[data-id]"); n != 1 || count(`#payments tr[data-status="refunded"]`) != 1 {
		t.Errorf("refunded filter: %d rows", n)
	}
	if got := text("#payment-total"); got != "1" {
		t.Errorf("total %q", got)
	}
	b.Screenshot("payments-refunded")

	// Its detail: the history and the refund.
	load("#payments a.detail")
	if got := text("#detail-status"); got != "已退款" {
		t.Errorf("detail status %q", got)
	}
	if got := text("#payment-detail"); !strings.Contains(got, "Tpay-3") || !strings.Contains(got, "¥30.00 / ¥10.00 / ¥10.00") || !strings.Contains(got, "医保电子凭证") || !strings.Contains(got, "无 / 完成") {
		t.Errorf("detail %q", got)
	}
	if got := text("#payment-events"); !strings.Contains(got, "创建订单") || !strings.Contains(got, "支付成功") || !strings.Contains(got, "已支付 → 已退款") {
		t.Errorf("history %q", got)
	}
	if got := text("#payment-refunds"); !strings.Contains(got, "RFpay-3") || !strings.Contains(got, "退款成功") || !strings.Contains(got, "患者取消就诊") {
		t.Errorf("refunds %q", got)
	}
	b.Screenshot("payment-detail")
	load("#back-to-list")
	if n := count("#payments tbody tr[data-id]"); n != 1 {
		t.Errorf("back to the filtered list: %d rows", n)
	}

	// 医保运营统计 for the days of the payments.
	load(`nav.sidebar a[href="/console/x/payment_stats"]`)
	if got := text("main.content h1"); got != "医保运营统计" {
		t.Fatalf("heading %q", got)
	}
	day := func(t time.Time) string { return t.In(ihos.Shanghai).Format(time.DateOnly) }
	b.Run(chromedp.Navigate(in.srv.URL + "/console/x/payment_stats?from=" + day(now.Add(-26*time.Hour)) + "&to=" + day(now)))
	for sel, want := range map[string]string{"#stats-count": "3", "#stats-total": "¥208.00", "#stats-fund": "¥110.00",
		"#stats-account": "¥30.00", "#stats-cash": "¥68.00", "#stats-refunded": "¥50.00"} {
		if got := text(sel); got != want {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	if got := text(`#stats-departments tr[data-key="` + cardio + `"]`); !strings.Contains(got, "心血管内科") || !strings.Contains(got, "¥178.00") {
		t.Errorf("cardiology %q", got)
	}
	if got := text("#stats-note"); !strings.Contains(got, "只统计已收款的订单") {
		t.Errorf("note %q", got)
	}
	if n := count("#stats-days tbody tr[data-key]"); n < 2 {
		t.Errorf("%d days", n)
	}
	b.Screenshot("payment-stats")

	// The export links answer with the page's session (and not without one).
	fetch := func(sel string) string {
		return browsertest.Get(b, chromedp.Evaluate[string](`fetch(document.querySelector(`+strconv.Quote(sel)+`).href).then(async r => {
			const b = new Uint8Array(await r.arrayBuffer());
			return r.status + ' ' + r.headers.get('content-type') + ' ' + String.fromCharCode(b[0], b[1]) + ' ' + b.length;
		})`, chromedp.EvalAwaitPromise))
	}
	for _, sel := range []string{"#stats-export-csv", "#stats-export-xlsx"} {
		got := fetch(sel)
		if !strings.HasPrefix(got, "200 ") {
			t.Errorf("%s: %s", sel, got)
		}
		if strings.HasSuffix(sel, "xlsx") && !strings.Contains(got, "spreadsheetml.sheet PK ") {
			t.Errorf("%s is not a zip: %s", sel, got)
		}
	}
	b.Run(chromedp.Navigate(in.srv.URL + "/console/x/payments"))
	for _, sel := range []string{"#export-csv", "#export-xlsx"} {
		if got := fetch(sel); !strings.HasPrefix(got, "200 ") {
			t.Errorf("%s: %s", sel, got)
		}
	}
	p.needsSession("#export-csv")

	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("browser console errors: %v", errs)
	}
}
