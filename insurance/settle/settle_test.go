package settle_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"ihos"
	"ihos/insurance"
	"ihos/insurance/inssim"
	"ihos/insurance/mobile"
	"ihos/insurance/mobile/mobilesim"
	"ihos/insurance/settle"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/payments"
)

const (
	zhangsan  = "110101199003078515" // 职工医保 with 1256.80 in the account
	appID     = "1GTESTAPPID0000000000000000000"
	appSecret = "TESTSECRET0000000000000000000000"
	orgCodg   = "H11010500123"
)

// rig is a settle.Service on a database with both centres' simulators over
// real sockets, and the appliance's notify endpoint.
type rig struct {
	t      *testing.T
	db     *sqldb.DB
	ins    *inssim.Sim
	mob    *mobilesim.Sim
	orgKey *sm2.PrivateKey
	svc    *settle.Service
	logs   *syncBuffer
	notify *httptest.Server
}

type syncBuffer struct {
	mu stdsync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newRig(t *testing.T, db *sqldb.DB) *rig {
	t.Helper()
	ctx := context.Background()
	ins, err := inssim.Start(ctx, inssim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ins.Close() })
	orgKey, _ := sm2.GenerateKey(rand.Reader)
	persons, err := mobilesim.DemoPersons()
	if err != nil {
		t.Fatal(err)
	}
	mob, err := mobilesim.Start(ctx, mobilesim.Config{AppID: appID, AppSecret: appSecret, OrgCodg: orgCodg, OrgPub: &orgKey.PublicKey, Persons: persons})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mob.Close() })
	r := &rig{t: t, db: db, ins: ins, mob: mob, orgKey: orgKey, logs: &syncBuffer{}}
	r.svc = r.service()
	var current stdsync.Mutex
	r.notify = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		current.Lock()
		svc := r.svc
		current.Unlock()
		mux := http.NewServeMux()
		svc.Routes(mux)
		mux.ServeHTTP(w, req)
	}))
	t.Cleanup(r.notify.Close)
	mob.SetNotifyURL(r.notify.URL + settle.NotifyPath)
	return r
}

// service is a new Service on the rig's database and simulators, as after
// a restart of the appliance.
func (r *rig) service() *settle.Service {
	log := slog.New(slog.NewTextHandler(r.logs, nil))
	return &settle.Service{DB: r.db, Hospital: "h1", Logger: log,
		National: &insurance.Client{BaseURL: r.ins.URL(), Timeout: 2 * time.Second,
			Fixmedins: insurance.Institution{Code: "H11010500001", Name: "示例市第一人民医院", MdtrtareaAdmvs: "110105"},
			Operator:  insurance.Operator{Type: insurance.OpterKiosk, ID: "kiosk", Name: "自助机"}},
		Mobile: &mobile.Client{BaseURL: r.mob.URL(), AppID: appID, AppSecret: appSecret, OrgCodg: orgCodg, Key: r.orgKey,
			CentrePub: r.mob.PublicKey(), Timeout: 2 * time.Second, Logger: log},
	}
}

var fees = []ihos.HISFee{
	{FeeID: "F1", ItemCode: "250101001", ItemName: "血常规", Quantity: "1", AmountFen: 2500, DepartmentCode: "XNK", DoctorCode: "D1001"},
	{FeeID: "F2", ItemCode: "YB86900001", ItemName: "阿莫西林胶囊", Quantity: "3", AmountFen: 4500},
	{FeeID: "F3", ItemCode: "ZF0001", ItemName: "病历本", Quantity: "1", AmountFen: 300},
}

func (r *rig) siteQuote() settle.Quote {
	r.t.Helper()
	tok, err := r.ins.IssueECToken(zhangsan, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	q, err := r.svc.Quote(context.Background(), settle.QuoteRequest{Channel: ihos.ChannelInsuranceSite, PatientID: "pat-1", ECToken: tok.QR, Fees: fees})
	if err != nil {
		r.t.Fatalf("site quote: %v", err)
	}
	if q.Total != 7300 || q.Split.Total() != q.Total || q.Split.Fund == 0 {
		r.t.Fatalf("quote %+v", q)
	}
	return q
}

func (r *rig) mobileQuote(total int64) settle.Quote {
	r.t.Helper()
	a, err := r.mob.Authorize(zhangsan)
	if err != nil {
		r.t.Fatal(err)
	}
	q, err := r.svc.Quote(context.Background(), settle.QuoteRequest{Channel: ihos.ChannelInsuranceMobile, PatientID: "pat-1",
		PayAuthNo: a.PayAuthNo, UldLatlnt: a.UldLatlnt, Total: total})
	if err != nil {
		r.t.Fatalf("mobile quote: %v", err)
	}
	// The simulator's fund pays 70 %; the account the rest (balance allowing).
	if want := (ihos.Split{Fund: total * 70 / 100, Account: total - total*70/100}); q.Split != want {
		r.t.Fatalf("mobile quote %+v, want split %+v", q, want)
	}
	return q
}

func order(q settle.Quote, key string) payments.InsuranceOrder {
	return payments.InsuranceOrder{Key: key, PaymentID: "pay-" + key, HospitalID: "h1", PatientID: "pat-1", Channel: q.Channel,
		Total: q.Total, Auth: map[string]string{"quote_id": q.ID}}
}

func (r *rig) count(q string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.db.QueryRow(q, args...).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

func (r *rig) sent(infno string) int {
	n := 0
	for _, q := range r.ins.Requests() {
		if q.Infno == infno {
			n++
		}
	}
	return n
}

func wantState(t *testing.T, res payments.InsuranceResult, err error, state string) {
	t.Helper()
	if err != nil || res.State != state {
		t.Fatalf("got %+v, %v; want state %s", res, err, state)
	}
}

// The kiosk's 展码 path: quote (1101 … 2206), settle (2207), refund (2208),
// each repeatable without a second call to the platform, and the day's
// 3201 check from the table.
func TestSiteQuoteSettleRefund(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		q := r.siteQuote()
		if got, err := r.svc.GetQuote(ctx, q.ID); err != nil || got.Split != q.Split {
			t.Fatalf("get quote %+v %v", got, err)
		}
		res, err := r.svc.Settle(ctx, order(q, "K1"))
		wantState(t, res, err, payments.InsSettled)
		if res.Split != q.Split || res.SettlementID == "" {
			t.Fatalf("settled %+v, quoted %+v", res, q)
		}
		again, err := r.svc.Settle(ctx, order(q, "K1"))
		wantState(t, again, err, payments.InsSettled)
		if again != res || r.sent(insurance.InfnoSettle) != 1 {
			t.Fatalf("repeat %+v, 2207 sent %d times", again, r.sent(insurance.InfnoSettle))
		}
		got, err := r.svc.Query(ctx, "K1")
		wantState(t, got, err, payments.InsSettled)
		// The same quote cannot be settled twice.
		res2, err := r.svc.Settle(ctx, order(q, "K2"))
		wantState(t, res2, err, payments.InsFailed)
		nf, err := r.svc.Query(ctx, "nothing")
		wantState(t, nf, err, payments.InsNotFound)

		day := time.Now().In(ihos.Shanghai).Format("2006-01-02")
		st, err := r.svc.Statement(ctx, day)
		if err != nil || !st.Balanced || len(st.Lines) != 2 {
			t.Fatalf("statement %+v %v", st, err)
		}

		// A partial insurance refund of a site settlement is refused; the
		// whole one cancels it (2208).
		part, err := r.svc.Refund(ctx, payments.InsuranceRefund{Key: "R0", PaymentKey: "K1", Fund: 1, Total: q.Total})
		wantState(t, part, err, payments.InsFailed)
		rf := payments.InsuranceRefund{Key: "R1", PaymentKey: "K1", Fund: res.Split.Fund, Account: res.Split.Account, Total: q.Total}
		rr, err := r.svc.Refund(ctx, rf)
		wantState(t, rr, err, payments.InsRefunded)
		rr, err = r.svc.Refund(ctx, rf)
		wantState(t, rr, err, payments.InsRefunded)
		if r.sent(insurance.InfnoSettleCancel) != 1 {
			t.Fatalf("2208 sent %d times", r.sent(insurance.InfnoSettleCancel))
		}
		if s := r.ins.Settlements(); len(s) != 1 || s[0].Status != inssim.SetlCancelled {
			t.Fatalf("platform %+v", s)
		}
		// Cancelled: left out of the day's totals, as the platform does.
		if st, err := r.svc.Statement(ctx, day); err != nil || !st.Balanced {
			t.Fatalf("statement after the refund %+v %v", st, err)
		}
		if n := r.count(`SELECT COUNT(*) FROM insurance_settlements WHERE kind = 'settle' AND status = 'refunded' AND day = ?`, day); n != 1 {
			t.Fatalf("settle rows refunded: %d", n)
		}
	})
}

// A 2207 whose answer is lost leaves the leg pending; Query repeats it
// under the same msgid and finds the settlement, once. A new Service on the
// same database (a restart) continues from the stored quote and state.
func TestSiteUnknownThenQueryAcrossRestart(t *testing.T) {
	r := newRig(t, sqldbtest.SQLite(t))
	ctx := context.Background()
	q := r.siteQuote()
	r.svc = r.service() // restart between quote and settle
	r.svc.National.Timeout = 200 * time.Millisecond
	if err := r.ins.SetMode(inssim.Mode{Name: inssim.ModeSettleSlow, Delay: time.Second}); err != nil {
		t.Fatal(err)
	}
	res, err := r.svc.Settle(ctx, order(q, "K1"))
	if ihos.ErrorCode(err) != ihos.EUnavailable || res.State != payments.InsPending {
		t.Fatalf("settle with the answer lost: %+v %v", res, err)
	}
	r.ins.SetMode(inssim.Mode{Name: inssim.ModeUp})
	r.svc = r.service() // restart while the outcome is unknown
	got, err := r.svc.Query(ctx, "K1")
	wantState(t, got, err, payments.InsSettled)
	if got.Split != q.Split {
		t.Fatalf("split %+v, quoted %+v", got.Split, q.Split)
	}
	s := r.ins.Settlements()
	if len(s) != 1 || s[0].Status != inssim.SetlSettled || s[0].SetlID != got.SettlementID {
		t.Fatalf("platform %+v", s)
	}
	msgids := map[string]bool{}
	for _, req := range r.ins.Requests() {
		if req.Infno == insurance.InfnoSettle {
			msgids[req.MsgID] = true
		}
	}
	// The simulator keeps only answered requests: the lost sending is not
	// listed, the repeat is, under the msgid stored before the first.
	var stored string
	r.db.QueryRow(`SELECT msgid FROM insurance_settlements WHERE leg_key = 'K1'`).Scan(&stored)
	if len(msgids) != 1 || !msgids[stored] {
		t.Fatalf("2207 msgids %v, stored %q", msgids, stored)
	}
}

// Reverse: a settled leg is cancelled (2208), one without an answer
// reversed (2601), one never sent is reversed already.
func TestSiteReverse(t *testing.T) {
	r := newRig(t, sqldbtest.SQLite(t))
	ctx := context.Background()
	if err := r.svc.Reverse(ctx, "never"); err != nil {
		t.Fatal(err)
	}
	q := r.siteQuote()
	res, err := r.svc.Settle(ctx, order(q, "K1"))
	wantState(t, res, err, payments.InsSettled)
	if err := r.svc.Reverse(ctx, "K1"); err != nil {
		t.Fatal(err)
	}
	got, err := r.svc.Query(ctx, "K1")
	wantState(t, got, err, payments.InsReversed)
	if err := r.svc.Reverse(ctx, "K1"); err != nil {
		t.Fatal(err)
	}
	q2 := r.siteQuote()
	r.svc.National.Timeout = 200 * time.Millisecond
	r.ins.SetMode(inssim.Mode{Name: inssim.ModeSettleSlow, Delay: time.Second})
	if _, err := r.svc.Settle(ctx, order(q2, "K2")); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Fatalf("settle: %v", err)
	}
	r.ins.SetMode(inssim.Mode{Name: inssim.ModeUp})
	if err := r.svc.Reverse(ctx, "K2"); err != nil {
		t.Fatal(err)
	}
	got, err = r.svc.Query(ctx, "K2")
	wantState(t, got, err, payments.InsFailed)
	s := r.ins.Settlements()
	if len(s) != 2 || s[0].Status != inssim.SetlCancelled || s[1].Status != inssim.SetlReversed {
		t.Fatalf("platform %+v", s)
	}
	if r.sent(insurance.InfnoReversal) != 1 {
		t.Fatalf("2601 sent %d times", r.sent(insurance.InfnoReversal))
	}
}

// 医保移动支付: quote (6201 with the pre-settlement), settle (6202), refund
// of the insurance parts (6203), each repeatable.
func TestMobileQuoteSettleRefund(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		q := r.mobileQuote(10000)
		r.svc = r.service() // restart between quote and settle
		res, err := r.svc.Settle(ctx, order(q, "M1"))
		wantState(t, res, err, payments.InsSettled)
		if res.Split != (ihos.Split{Fund: 7000, Account: 3000}) || res.SettlementID == "" {
			t.Fatalf("settled %+v", res)
		}
		again, err := r.svc.Settle(ctx, order(q, "M1"))
		wantState(t, again, err, payments.InsSettled)
		if again != res {
			t.Fatalf("repeat %+v", again)
		}
		o, _ := r.mob.Order(res.SettlementID)
		if o.OrdStas != mobilesim.StasSettled || o.FundFen != 7000 || o.AcctFen != 3000 {
			t.Fatalf("centre %+v", o)
		}
		rf := payments.InsuranceRefund{Key: "MR1", PaymentKey: "M1", Fund: 3500, Account: 1500, Total: 10000}
		rr, err := r.svc.Refund(ctx, rf)
		wantState(t, rr, err, payments.InsRefunded)
		rr, err = r.svc.Refund(ctx, rf)
		wantState(t, rr, err, payments.InsRefunded)
		got, err := r.svc.Query(ctx, "MR1")
		wantState(t, got, err, payments.InsRefunded)
		o, _ = r.mob.Order(res.SettlementID)
		if o.RefdFund != 3500 || o.RefdAcct != 1500 || o.OrdStas != mobilesim.StasPartRefd {
			t.Fatalf("centre after refund %+v", o)
		}
		over, err := r.svc.Refund(ctx, payments.InsuranceRefund{Key: "MR2", PaymentKey: "M1", Fund: 3501, Total: 10000})
		wantState(t, over, err, payments.InsFailed)
		// The settlement and the refund replicate with their amounts.
		if n := r.count(`SELECT COUNT(*) FROM insurance_settlements WHERE kind = 'refund' AND status = 'refunded' AND fund_pay = 3500 AND account_pay = 1500 AND total = 5000`); n != 1 {
			t.Fatalf("refund rows %d", n)
		}
	})
}

// A 6202 whose answer is lost (the centre never processed it): Query finds
// the order still uploaded (6301) and sends the same 6202 again. A pending
// 6202 (ordStas 1) is settled by a later Query.
func TestMobileUnknownAndPending(t *testing.T) {
	r := newRig(t, sqldbtest.SQLite(t))
	ctx := context.Background()
	r.mob.SetMode(mobilesim.Mode{Name: mobilesim.ModeUp, Notify: mobilesim.NotifyNone})
	q := r.mobileQuote(5000)
	r.svc.Mobile.Timeout = 200 * time.Millisecond
	r.mob.SetMode(mobilesim.Mode{Name: mobilesim.ModeSlow, Delay: time.Second, Notify: mobilesim.NotifyNone})
	res, err := r.svc.Settle(ctx, order(q, "M1"))
	if ihos.ErrorCode(err) != ihos.EUnavailable || res.State != payments.InsPending {
		t.Fatalf("settle with the answer lost: %+v %v", res, err)
	}
	r.mob.SetMode(mobilesim.Mode{Name: mobilesim.ModeUp, Notify: mobilesim.NotifyNone})
	r.svc = r.service()
	got, err := r.svc.Query(ctx, "M1")
	wantState(t, got, err, payments.InsSettled)
	if got.Split != (ihos.Split{Fund: 3500, Account: 1500}) {
		t.Fatalf("split %+v", got.Split)
	}

	q2 := r.mobileQuote(2000)
	r.mob.SetMode(mobilesim.Mode{Name: mobilesim.ModeUp, PendingFor: 300 * time.Millisecond, Notify: mobilesim.NotifyNone})
	res, err = r.svc.Settle(ctx, order(q2, "M2"))
	wantState(t, res, err, payments.InsPending)
	time.Sleep(400 * time.Millisecond)
	got, err = r.svc.Query(ctx, "M2")
	wantState(t, got, err, payments.InsSettled)
}

// The 6302 notify settles a pending leg once; a forged or replayed notify is
// refused, logged and changes nothing.
func TestMobileNotify(t *testing.T) {
	r := newRig(t, sqldbtest.SQLite(t))
	ctx := context.Background()
	q := r.mobileQuote(5000)
	r.mob.SetMode(mobilesim.Mode{Name: mobilesim.ModeUp, PendingFor: 100 * time.Millisecond, Notify: mobilesim.NotifyNormal})
	res, err := r.svc.Settle(ctx, order(q, "M1"))
	wantState(t, res, err, payments.InsPending)
	deadline := time.Now().Add(5 * time.Second)
	for r.count(`SELECT COUNT(*) FROM insurance_settlements WHERE leg_key = 'M1' AND status = 'settled'`) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the notify did not settle the leg; notifies %+v", r.mob.Notifies())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var ns []mobilesim.NotifyRecord
	for len(ns) == 0 || ns[0].Code == nil {
		ns = r.mob.Notifies()
		time.Sleep(10 * time.Millisecond)
	}
	if *ns[0].Code != 0 {
		t.Fatalf("notify answered %+v", ns[0])
	}
	got, err := r.svc.Query(ctx, "M1")
	wantState(t, got, err, payments.InsSettled)
	if got.Split != (ihos.Split{Fund: 3500, Account: 1500}) {
		t.Fatalf("split %+v", got.Split)
	}

	post := func(body []byte) int {
		t.Helper()
		resp, err := http.Post(r.notify.URL+settle.NotifyPath, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var env mobile.Envelope
		if err := json.Unmarshal(b, &env); err != nil || env.Code == nil {
			t.Fatalf("answer %s", b)
		}
		return *env.Code
	}
	// Replayed: the very notify the centre sent.
	if code := post(ns[0].Body); code == 0 {
		t.Fatal("a replayed notify was accepted")
	}
	// Forged: another key signs a notify with other amounts.
	forger, _ := sm2.GenerateKey(rand.Reader)
	env, err := mobile.Sealer{AppID: appID, AppSecret: appSecret, Key: forger, Peer: &r.orgKey.PublicKey}.Seal(mobile.Notify{
		PayOrdID: got.SettlementID, CallType: mobile.CallTypeSettle, FeeSumamt: 5000, FundPay: 5000, SetlType: "ALL"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(env)
	if code := post(body); code == 0 {
		t.Fatal("a forged notify was accepted")
	}
	got, err = r.svc.Query(ctx, "M1")
	wantState(t, got, err, payments.InsSettled)
	if got.Split != (ihos.Split{Fund: 3500, Account: 1500}) {
		t.Fatalf("split changed to %+v", got.Split)
	}
	if logs := r.logs.String(); !strings.Contains(logs, "6302 notify refused") {
		t.Fatalf("refusals not logged: %s", logs)
	}
}

// Reverse of a mobile leg: settled → the insurance parts are refunded
// (6203); uploaded but never paid → the upload is cancelled (6401).
func TestMobileReverse(t *testing.T) {
	r := newRig(t, sqldbtest.SQLite(t))
	ctx := context.Background()
	q := r.mobileQuote(4000)
	res, err := r.svc.Settle(ctx, order(q, "M1"))
	wantState(t, res, err, payments.InsSettled)
	if err := r.svc.Reverse(ctx, "M1"); err != nil {
		t.Fatal(err)
	}
	got, err := r.svc.Query(ctx, "M1")
	wantState(t, got, err, payments.InsReversed)
	o, _ := r.mob.Order(res.SettlementID)
	if o.RefdFund != o.FundFen || o.RefdAcct != o.AcctFen {
		t.Fatalf("centre %+v", o)
	}

	q2 := r.mobileQuote(4000)
	r.svc.Mobile.Timeout = 200 * time.Millisecond
	r.mob.SetMode(mobilesim.Mode{Name: mobilesim.ModeSlow, Delay: time.Second})
	if _, err := r.svc.Settle(ctx, order(q2, "M2")); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Fatalf("settle: %v", err)
	}
	r.mob.SetMode(mobilesim.Mode{Name: mobilesim.ModeUp})
	if err := r.svc.Reverse(ctx, "M2"); err != nil {
		t.Fatal(err)
	}
	got, err = r.svc.Query(ctx, "M2")
	wantState(t, got, err, payments.InsFailed)
	var st struct {
		SetlID string
	}
	r.db.QueryRow(`SELECT setl_id FROM insurance_settlements WHERE leg_key = 'M2'`).Scan(&st.SetlID)
	o, _ = r.mob.Order(st.SetlID)
	if o.OrdStas != mobilesim.StasCancelled {
		t.Fatalf("centre %+v", o)
	}
}

// Without a client for the channel the leg is refused before anything is
// recorded; a settle without a quote fails and is recorded as failed.
func TestUnavailableAndBadQuote(t *testing.T) {
	r := newRig(t, sqldbtest.SQLite(t))
	ctx := context.Background()
	none := &settle.Service{DB: r.db, Hospital: "h1"}
	_, err := none.Quote(ctx, settle.QuoteRequest{Channel: ihos.ChannelInsuranceMobile, PayAuthNo: "x", Total: 100})
	if ihos.ErrorCode(err) != ihos.EUnavailable || !strings.Contains(ihos.ErrorMessage(err), "医保移动支付暂不可用") {
		t.Fatalf("quote without a client: %v", err)
	}
	res, err := r.svc.Settle(ctx, payments.InsuranceOrder{Key: "B1", Channel: ihos.ChannelInsuranceMobile, Total: 100})
	wantState(t, res, err, payments.InsFailed)
	got, err := r.svc.Query(ctx, "B1")
	wantState(t, got, err, payments.InsFailed)
}

// A 2208 the platform refuses fails the refund; the payment service
// re-submits it under the same key, and the new attempt goes out under a new
// msgid (the platform would repeat its refusal for the old one).
func TestSiteRefundRefusedThenResubmitted(t *testing.T) {
	r := newRig(t, sqldbtest.SQLite(t))
	ctx := context.Background()
	q := r.siteQuote()
	res, err := r.svc.Settle(ctx, order(q, "K1"))
	wantState(t, res, err, payments.InsSettled)
	rf := payments.InsuranceRefund{Key: "R1", PaymentKey: "K1", Fund: res.Split.Fund, Account: res.Split.Account, Total: q.Total}
	r.ins.SetMode(inssim.Mode{Name: inssim.ModeError, Text: "医保中心日终处理中"})
	rr, err := r.svc.Refund(ctx, rf)
	wantState(t, rr, err, payments.InsFailed)
	if !strings.Contains(rr.Message, "日终处理中") {
		t.Fatalf("message %q", rr.Message)
	}
	r.ins.SetMode(inssim.Mode{Name: inssim.ModeUp})
	rr, err = r.svc.Refund(ctx, rf)
	wantState(t, rr, err, payments.InsRefunded)
	msgids := map[string]bool{}
	for _, req := range r.ins.Requests() {
		if req.Infno == insurance.InfnoSettleCancel {
			msgids[req.MsgID] = true
		}
	}
	if len(msgids) != 2 {
		t.Fatalf("2208 msgids %v", msgids)
	}
	if s := r.ins.Settlements(); s[0].Status != inssim.SetlCancelled {
		t.Fatalf("platform %+v", s)
	}
}
