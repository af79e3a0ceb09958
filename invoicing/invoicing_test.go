package invoicing_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/einvoice"
	"ihos/einvoice/einvsim"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/invoicing"
	"ihos/sync"
)

const key = "invoicing-test-key"

type fixture struct {
	db       *sqldb.DB
	sim      *einvsim.Sim
	svc      *invoicing.Service
	captured int
}

func setup(t *testing.T) *fixture {
	t.Helper()
	db := sqldbtest.SQLite(t)
	sim, err := einvsim.Start(context.Background(), einvsim.Config{Key: key, Payee: "测试医院"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	f := &fixture{db: db, sim: sim}
	client := &einvoice.Client{BaseURL: sim.ServiceURL(), AppID: sim.AppID(), Key: key, Timeout: 2 * time.Second}
	f.svc = &invoicing.Service{DB: db, Platform: client, Hospital: "h1", PlaceCode: "001", Payee: "互联网医院",
		Backoff: func(int) time.Duration { return 0 },
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			for _, r := range refs {
				if r.Entity != "invoices" {
					t.Errorf("captured %s", r.Entity)
				}
			}
			f.captured += len(refs)
			return nil
		}}
	return f
}

// payment inserts a replicated payment row.
func (f *fixture) payment(t *testing.T, status string, total, fund, account, cash int64) string {
	t.Helper()
	id := ihos.NewID()
	now := ihos.FormatTime(time.Now())
	if _, err := f.db.Exec(`INSERT INTO payments (id, hospital_id, business_type, business_id, patient_id, channel, subject, total, fund_pay, account_pay, cash_pay,
		status, out_trade_no, deadline, created_at, paid_at, updated_at) VALUES (?, 'h1', ?, ?, 'pat1', ?, '在线问诊', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, ihos.PayConsultation, ihos.NewID(), ihos.ChannelInsuranceMobile, total, fund, account, cash, status, id[len(id)-32:], now, now, now, now); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) setPayment(t *testing.T, id, status string, refunded int64) {
	t.Helper()
	if _, err := f.db.Exec(`UPDATE payments SET status = ?, refunded = ? WHERE id = ?`, status, refunded, id); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) process(t *testing.T) int {
	t.Helper()
	n, err := f.svc.Process(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) invoice(t *testing.T, payment string) invoicing.Invoice {
	t.Helper()
	v, err := f.svc.ByPayment(context.Background(), payment)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestIssueAfterPaid(t *testing.T) {
	f := setup(t)
	now := ihos.FormatTime(time.Now())
	if _, err := f.db.Exec(`INSERT INTO patients (id, hospital_id, name, created_at, updated_at) VALUES ('pat1', 'h1', '张三', ?, ?)`, now, now); err != nil {
		t.Fatal(err)
	}
	paid := f.payment(t, ihos.PaymentPaid, 5000, 2000, 1000, 2000)
	f.payment(t, ihos.PaymentPaying, 3000, 0, 0, 3000) // not paid: no invoice
	if n := f.process(t); n != 1 {
		t.Fatalf("Process = %d operations, want 1", n)
	}
	v := f.invoice(t, paid)
	if v.Status != invoicing.StatusIssued || v.BillNo == "" || v.BillBatchCode == "" || v.Random == "" || v.BusNo != paid || v.Total != 5000 {
		t.Fatalf("invoice = %+v", v)
	}
	if !strings.Contains(v.QRCode, "/check?") {
		t.Errorf("QR code = %q, want the check page", v.QRCode)
	}
	bills := f.sim.Bills()
	if len(bills) != 1 || bills[0].Request.Payer != "张三" || bills[0].Request.TotalAmt != 5000 ||
		bills[0].Request.FundPay != 2000 || bills[0].Request.AccountPay != 1000 || bills[0].Request.SelfCashPay != 2000 {
		t.Fatalf("platform bills = %+v", bills)
	}
	if f.captured < 2 {
		t.Errorf("captured %d rows, want the pending and the issued", f.captured)
	}
	// A second pass has nothing to do.
	if n := f.process(t); n != 0 || len(f.sim.Bills()) != 1 {
		t.Fatalf("second pass: %d operations, %d bills", n, len(f.sim.Bills()))
	}

	// The API returns it.
	mux := http.NewServeMux()
	f.svc.Routes(mux, func(r *http.Request, perm string) (context.Context, error) {
		if perm != "payments.read" {
			t.Errorf("perm %s", perm)
		}
		return r.Context(), nil
	})
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/admin/invoices?payment="+paid, nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"qr_code":"http`) || !strings.Contains(rec.Body.String(), v.BillNo) {
		t.Fatalf("GET invoice: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/admin/invoices?payment=nope", nil))
	if rec.Code != 404 {
		t.Fatalf("GET unknown payment: %d %s", rec.Code, rec.Body)
	}
}

func TestUnavailableThenUp(t *testing.T) {
	f := setup(t)
	id := f.payment(t, ihos.PaymentPaid, 1250, 0, 0, 1250)
	f.sim.SetMode(einvsim.Mode{Name: einvsim.ModeDown})
	f.process(t)
	v := f.invoice(t, id)
	if v.Status != invoicing.StatusPending || v.Attempts != 1 || v.LastError == "" {
		t.Fatalf("after outage: %+v", v)
	}
	st, err := f.svc.Stats(context.Background())
	if err != nil || st.Pending != 1 || st.Attention != 1 || st.LastError == "" {
		t.Fatalf("stats = %+v, %v", st, err)
	}
	f.sim.SetMode(einvsim.Mode{Name: einvsim.ModeUp})
	f.process(t)
	v = f.invoice(t, id)
	if v.Status != invoicing.StatusIssued || v.Attempts != 0 || v.LastError != "" {
		t.Fatalf("after recovery: %+v", v)
	}
	if n := len(f.sim.Bills()); n != 1 {
		t.Fatalf("%d bills, want 1", n)
	}
}

// lossy issues on the platform and then reports the outcome unknown, as a
// lost answer would.
type lossy struct {
	invoicing.Platform
	lose    bool
	issues  int
	queries int
}

func (l *lossy) IssueOutpatient(ctx context.Context, o einvoice.Outpatient) (einvoice.Bill, error) {
	l.issues++
	b, err := l.Platform.IssueOutpatient(ctx, o)
	if l.lose {
		return einvoice.Bill{}, &ihos.Error{Code: ihos.EUnavailable, Message: "财政电子票据平台暂时无法连接", Err: errors.New("answer lost")}
	}
	return b, err
}

func (l *lossy) Query(ctx context.Context, busNo string) (einvoice.Bill, error) {
	l.queries++
	return l.Platform.Query(ctx, busNo)
}

func TestLostAnswerQueriesFirst(t *testing.T) {
	f := setup(t)
	l := &lossy{Platform: f.svc.Platform, lose: true}
	f.svc.Platform = l
	id := f.payment(t, ihos.PaymentPaid, 800, 0, 0, 800)
	f.process(t)
	if v := f.invoice(t, id); v.Status != invoicing.StatusPending {
		t.Fatalf("after lost answer: %+v", v)
	}
	l.lose = false
	f.process(t)
	v := f.invoice(t, id)
	if v.Status != invoicing.StatusIssued || v.BillNo == "" {
		t.Fatalf("after query: %+v", v)
	}
	if l.issues != 1 || l.queries != 1 {
		t.Fatalf("issues %d, queries %d; want 1 and 1 (found by query, not issued again)", l.issues, l.queries)
	}
	if n := len(f.sim.Bills()); n != 1 {
		t.Fatalf("%d bills, want 1", n)
	}
}

func TestFullRefundWritesOffOnce(t *testing.T) {
	f := setup(t)
	id := f.payment(t, ihos.PaymentPaid, 3000, 1000, 0, 2000)
	f.process(t)
	f.setPayment(t, id, ihos.PaymentPartiallyRefunded, 500)
	if n := f.process(t); n != 0 {
		t.Fatalf("partial refund: %d operations, want none (written off only on full refund)", n)
	}
	if v := f.invoice(t, id); v.Status != invoicing.StatusIssued {
		t.Fatalf("after partial refund: %+v", v)
	}
	f.setPayment(t, id, ihos.PaymentRefunded, 3000)
	st, _ := f.svc.Stats(context.Background())
	if st.WriteOffPending != 1 {
		t.Fatalf("stats = %+v, want one write-off pending", st)
	}
	f.process(t)
	v := f.invoice(t, id)
	if v.Status != invoicing.StatusWrittenOff || v.ScarletNo == "" || v.WrittenOffAt.IsZero() {
		t.Fatalf("after refund: %+v", v)
	}
	f.process(t)
	f.process(t)
	bills := f.sim.Bills()
	if len(bills) != 1 || bills[0].Red == nil || bills[0].Red.No != v.ScarletNo {
		t.Fatalf("platform bills = %+v", bills)
	}
	if v2 := f.invoice(t, id); v2.Version != v.Version {
		t.Fatalf("re-run changed the invoice: version %d → %d", v.Version, v2.Version)
	}
	st, _ = f.svc.Stats(context.Background())
	if st != (invoicing.Stats{}) {
		t.Fatalf("stats = %+v, want all zero", st)
	}
}

// A write-off the platform did but whose answer was lost is found by the
// query before the next attempt.
func TestWriteOffAlreadyDone(t *testing.T) {
	f := setup(t)
	id := f.payment(t, ihos.PaymentPaid, 3000, 0, 0, 3000)
	f.process(t)
	v := f.invoice(t, id)
	client := f.svc.Platform.(*einvoice.Client)
	if _, err := client.WriteOff(context.Background(), einvoice.WriteOffReq{BillBatchCode: v.BillBatchCode, BillNo: v.BillNo,
		Reason: "患者退费", Operator: "x", PlaceCode: "001"}); err != nil {
		t.Fatal(err)
	}
	f.setPayment(t, id, ihos.PaymentRefunded, 3000)
	f.process(t)
	v = f.invoice(t, id)
	if v.Status != invoicing.StatusWrittenOff || v.ScarletNo == "" {
		t.Fatalf("invoice = %+v", v)
	}
}

func TestRefundedBeforeIssue(t *testing.T) {
	f := setup(t)
	id := f.payment(t, ihos.PaymentPaid, 900, 0, 0, 900)
	f.sim.SetMode(einvsim.Mode{Name: einvsim.ModeDown})
	f.process(t) // pending, outcome unknown
	f.setPayment(t, id, ihos.PaymentRefunded, 900)
	f.sim.SetMode(einvsim.Mode{Name: einvsim.ModeUp})
	f.process(t)
	if v := f.invoice(t, id); v.Status != invoicing.StatusCancelled {
		t.Fatalf("invoice = %+v", v)
	}
	if n := len(f.sim.Bills()); n != 0 {
		t.Fatalf("%d bills, want none", n)
	}
	// Never paid-then-invoiced: a refunded payment without a row gets none.
	f.payment(t, ihos.PaymentRefunded, 700, 0, 0, 700)
	f.process(t)
	if n := len(f.sim.Bills()); n != 0 {
		t.Fatalf("%d bills, want none", n)
	}
}
