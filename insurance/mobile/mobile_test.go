package mobile_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"ihos"
	"ihos/insurance/mobile"
	"ihos/insurance/mobile/mobilesim"
)

const (
	appID     = "1GDEMOAPPID00000000000000000001"
	appSecret = "DEMOSECRET0123456789ABCDEFGHIJKL"
	orgCodg   = "H11010500123"
	zhangSan  = "110101199003078515" // 职工医保, account 1256.80
)

// book is the hospital side: the orders it placed and the settlements it
// booked from notifies.
type book struct {
	mu       sync.Mutex
	expected map[string]int64 // payOrdId → total fen
	settled  map[string]mobile.Notify
	applied  int
	bodies   [][]byte
}

func (b *book) expect(payOrdID string, total int64) {
	b.mu.Lock()
	b.expected[payOrdID] = total
	b.mu.Unlock()
}

func (b *book) apply(_ context.Context, n mobile.Notify) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	total, ok := b.expected[n.PayOrdID]
	if !ok {
		return ihos.Errorf(ihos.ENotFound, "医保支付订单不存在")
	}
	if int64(n.FeeSumamt) != total {
		return ihos.Errorf(ihos.EConflict, "医保结算金额不一致")
	}
	if _, done := b.settled[n.PayOrdID]; done {
		return nil // a repeated notify: already booked
	}
	b.settled[n.PayOrdID] = n
	b.applied++
	return nil
}

func (b *book) appliedCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.applied
}

func (b *book) settledNotify(id string) (mobile.Notify, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.settled[id]
	return n, ok
}

type env struct {
	c    *mobile.Client
	sim  *mobilesim.Sim
	book *book
	key  *sm2.PrivateKey // the centre's key, to forge "genuine" notifies
	hook string          // the hospital's notify URL
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func setup(t testing.TB) *env {
	t.Helper()
	orgKey, _ := sm2.GenerateKey(rand.Reader)
	centreKey, _ := sm2.GenerateKey(rand.Reader)
	logs := &syncBuffer{}
	bk := &book{expected: map[string]int64{}, settled: map[string]mobile.Notify{}}
	c := &mobile.Client{AppID: appID, AppSecret: appSecret, OrgCodg: orgCodg, Key: orgKey, CentrePub: &centreKey.PublicKey,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}
	h := c.NotifyHandler(bk.apply)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		bk.mu.Lock()
		bk.bodies = append(bk.bodies, body)
		bk.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hook.Close)
	sim, err := mobilesim.Start(context.Background(), mobilesim.Config{AppID: appID, AppSecret: appSecret, OrgCodg: orgCodg,
		OrgPub: &orgKey.PublicKey, Key: centreKey, NotifyURL: hook.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	c.BaseURL = sim.URL()
	return &env{c: c, sim: sim, book: bk, key: centreKey, hook: hook.URL, logs: logs}
}

func (e *env) upload(t testing.TB, idNumber, medOrgOrd string, fees ...int64) (auth mobilesim.Auth, payOrdID, payToken string) {
	t.Helper()
	auth, err := e.sim.Authorize(idNumber)
	if err != nil {
		t.Fatal(err)
	}
	in := mobile.FeeUpload{PsnNo: "", MedOrgOrd: medOrgOrd, IDNo: auth.IDNumber, UserName: auth.Name, IDType: "01",
		PayAuthNo: auth.PayAuthNo, UldLatlnt: auth.UldLatlnt, ECToken: auth.ECToken, MedType: "11", AcctUsedFlag: "1",
		Begntime: "2026-01-05 09:30:00", MdtrtCertType: "01"}
	for i, f := range fees {
		in.MedfeeSumamt += mobile.Yuan(f)
		in.FeeDetailList = append(in.FeeDetailList, mobile.FeeDetail{FeedetlSn: string(rune('1' + i)), MedListCodg: "XJ01",
			DetItemFeeSumamt: mobile.Yuan(f), Pric: mobile.Yuan(f), Cnt: "1"})
	}
	payOrdID, payToken, err = e.c.Upload6201(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	e.book.expect(payOrdID, int64(in.MedfeeSumamt))
	return auth, payOrdID, payToken
}

func (e *env) order(t testing.TB, auth mobilesim.Auth, payOrdID, payToken string) mobile.OrderResult {
	t.Helper()
	r, err := e.c.Order6202(context.Background(), mobile.OrderRequest{PayAuthNo: auth.PayAuthNo, PayOrdID: payOrdID,
		PayToken: payToken, OrgBizSer: ihos.NewID(), AcctUsedFlag: "1"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func waitFor(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantErr(t *testing.T, err error, code, msg string) {
	t.Helper()
	if err == nil || ihos.ErrorCode(err) != code || !strings.Contains(ihos.ErrorMessage(err), msg) {
		t.Fatalf("error = %v, want %s %q", err, code, msg)
	}
}

// 6201 → 6202 → 6302 notify → 6301, with the split checked.
func TestFullFlow(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	auth, id, tok := e.upload(t, zhangSan, "MO-0001", 10000, 2345)
	r := e.order(t, auth, id, tok)
	// 70 % of 123.45 = 86.415 → 86.41 fund; account 37.04 of 1256.80; no cash.
	if r.State != mobile.Settled || r.OrdStas != "6" || r.FeeSumamt != 12345 || r.FundPay != 8641 || r.PsnAcctPay != 3704 || r.OwnPayAmt != 0 {
		t.Fatalf("6202 = %+v", r)
	}
	if r.ExtData.PreSetl == nil || r.ExtData.PreSetl.AcctPay != 3704 || r.ExtData.PreSetl.Balc != 125680-3704 {
		t.Fatalf("preSetl = %+v", r.ExtData.PreSetl)
	}
	waitFor(t, "the 6302 notify", func() bool { _, ok := e.book.settledNotify(id); return ok })
	n, _ := e.book.settledNotify(id)
	if n.MedOrgOrd != "MO-0001" || n.FundPay != 8641 || n.PsnAcctPay != 3704 || n.CallType != "02" {
		t.Fatalf("notify = %+v", n)
	}
	q, err := e.c.Query6301(ctx, mobile.QueryRequest{PayOrdID: id, PayToken: tok, IDNo: zhangSan})
	if err != nil || q.State != mobile.Settled || q.FundPay != 8641 {
		t.Fatalf("6301 = %+v, %v", q, err)
	}
	if b, _ := e.sim.Balance(zhangSan); b != 125680-3704 {
		t.Fatalf("balance %d", b)
	}
	waitFor(t, "the notify answer", func() bool { ns := e.sim.Notifies(); return len(ns) == 1 && ns[0].Code != nil })
	if ns := e.sim.Notifies(); *ns[0].Code != 0 || ns[0].Message != "成功" {
		t.Fatalf("hospital answered %+v", ns[0])
	}
	// The account runs dry: the next bill is fund + what is left + cash.
	e.sim.SetBalance(zhangSan, 1000)
	auth, id, tok = e.upload(t, zhangSan, "MO-0002", 10000)
	r = e.order(t, auth, id, tok)
	if r.FundPay != 7000 || r.PsnAcctPay != 1000 || r.OwnPayAmt != 2000 {
		t.Fatalf("6202 with low balance = %+v", r)
	}
}

// The same orgBizSer twice is the first answer, paid once.
func TestOrderIdempotent(t *testing.T) {
	e := setup(t)
	auth, id, tok := e.upload(t, zhangSan, "MO-0003", 5000)
	req := mobile.OrderRequest{PayAuthNo: auth.PayAuthNo, PayOrdID: id, PayToken: tok, OrgBizSer: "BIZ-1", AcctUsedFlag: "1"}
	r1, err1 := e.c.Order6202(context.Background(), req)
	r2, err2 := e.c.Order6202(context.Background(), req)
	if err1 != nil || err2 != nil || r1.PayOrdID != r2.PayOrdID || r1.PsnAcctPay != r2.PsnAcctPay || r1.OrdStas != r2.OrdStas {
		t.Fatalf("%+v %v / %+v %v", r1, err1, r2, err2)
	}
	if b, _ := e.sim.Balance(zhangSan); b != 125680-1500 {
		t.Fatalf("balance %d after a repeated order", b)
	}
	req.OrgBizSer = "BIZ-2"
	_, err := e.c.Order6202(context.Background(), req)
	wantErr(t, err, ihos.EInvalid, "订单状态不允许支付")
}

// A result that stays pending, then settles; the notify follows.
func TestPendingThenSettled(t *testing.T) {
	e := setup(t)
	e.sim.SetMode(mobilesim.Mode{Name: mobilesim.ModeUp, PendingFor: 300 * time.Millisecond})
	auth, id, tok := e.upload(t, zhangSan, "MO-0004", 8000)
	r := e.order(t, auth, id, tok)
	if r.State != mobile.Pending || r.OrdStas != "1" {
		t.Fatalf("6202 = %+v", r)
	}
	q, err := e.c.Query6301(context.Background(), mobile.QueryRequest{PayOrdID: id, PayToken: tok})
	if err != nil || q.State != mobile.Pending {
		t.Fatalf("6301 right away = %+v, %v", q, err)
	}
	if _, ok := e.book.settledNotify(id); ok {
		t.Fatal("notified before settling")
	}
	waitFor(t, "settlement", func() bool {
		q, err = e.c.Query6301(context.Background(), mobile.QueryRequest{PayOrdID: id, PayToken: tok})
		return err == nil && q.State == mobile.Settled
	})
	waitFor(t, "the notify", func() bool { _, ok := e.book.settledNotify(id); return ok })
}

func TestFailedPayment(t *testing.T) {
	e := setup(t)
	e.sim.SetMode(mobilesim.Mode{Name: mobilesim.ModeUp, Fail: true})
	auth, id, tok := e.upload(t, zhangSan, "MO-0005", 8000)
	r := e.order(t, auth, id, tok)
	if r.State != mobile.Failed || r.OrdStas != "15" || r.FeeSumamt != 0 {
		t.Fatalf("6202 = %+v", r)
	}
	if b, _ := e.sim.Balance(zhangSan); b != 125680 {
		t.Fatalf("balance %d after a failed payment", b)
	}
}

// Partial then full refund; over-refunds refused; the account is credited.
func TestRefund(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	e.sim.SetBalance(zhangSan, 1000)
	auth, id, tok := e.upload(t, zhangSan, "MO-0006", 10000)
	r := e.order(t, auth, id, tok) // fund 70.00, account 10.00, cash 20.00
	if r.FundPay != 7000 || r.PsnAcctPay != 1000 || r.OwnPayAmt != 2000 {
		t.Fatalf("6202 = %+v", r)
	}
	// Part: the cash only.
	rf, err := e.c.Refund6203(ctx, mobile.RefundRequest{PayOrdID: id, AppRefdSn: "R1", TotlRefdAmt: 500, CashRefdAmt: 500, RefdType: mobile.RefdCash})
	if err != nil || rf.RefdStas != "SUCC" || rf.OrdStas != "10" || mobile.StateOf(rf.OrdStas) != mobile.Refunded {
		t.Fatalf("partial refund = %+v, %v", rf, err)
	}
	// The same appRefdSn again is the same refund, not a second one.
	if again, err := e.c.Refund6203(ctx, mobile.RefundRequest{PayOrdID: id, AppRefdSn: "R1", TotlRefdAmt: 500, CashRefdAmt: 500, RefdType: mobile.RefdCash}); err != nil || again != rf {
		t.Fatalf("repeated refund = %+v, %v", again, err)
	}
	_, err = e.c.Refund6203(ctx, mobile.RefundRequest{PayOrdID: id, AppRefdSn: "R2", TotlRefdAmt: 9600, FundRefdAmt: 7000, PsnAcctRefdAmt: 1000, CashRefdAmt: 1600})
	wantErr(t, err, ihos.EInvalid, "超过可退金额")
	_, err = e.c.Refund6203(ctx, mobile.RefundRequest{PayOrdID: id, AppRefdSn: "R3", TotlRefdAmt: 100, FundRefdAmt: 50})
	wantErr(t, err, ihos.EInvalid, "退款金额不一致")
	// The rest.
	rf, err = e.c.Refund6203(ctx, mobile.RefundRequest{PayOrdID: id, AppRefdSn: "R4", TotlRefdAmt: 9500, FundRefdAmt: 7000, PsnAcctRefdAmt: 1000, CashRefdAmt: 1500})
	if err != nil || rf.OrdStas != "7" {
		t.Fatalf("full refund = %+v, %v", rf, err)
	}
	if b, _ := e.sim.Balance(zhangSan); b != 1000 {
		t.Fatalf("balance %d after refunds", b)
	}
	_, err = e.c.Refund6203(ctx, mobile.RefundRequest{PayOrdID: id, AppRefdSn: "R5", TotlRefdAmt: 1, CashRefdAmt: 1, RefdType: mobile.RefdCash})
	wantErr(t, err, ihos.EInvalid, "不能退款")
	q, _ := e.c.Query6301(ctx, mobile.QueryRequest{PayOrdID: id})
	if q.State != mobile.Refunded {
		t.Fatalf("6301 after refund = %+v", q)
	}
}

func TestCancelUpload(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	auth, id, tok := e.upload(t, zhangSan, "MO-0007", 3000)
	cr, err := e.c.Cancel6401(ctx, mobile.CancelRequest{PayOrdID: id, PayToken: tok, MedOrgOrd: "MO-0007", Reason: "患者取消"})
	if err != nil || mobile.StateOf(cr.OrdStas) != mobile.Cancelled {
		t.Fatalf("6401 = %+v, %v", cr, err)
	}
	_, err = e.c.Order6202(ctx, mobile.OrderRequest{PayAuthNo: auth.PayAuthNo, PayOrdID: id, PayToken: tok})
	wantErr(t, err, ihos.EInvalid, "订单状态不允许支付")
	// Uploaded again after the cancel: allowed. A settled one cannot be cancelled.
	auth, id, tok = e.upload(t, zhangSan, "MO-0007", 3000)
	e.order(t, auth, id, tok)
	_, err = e.c.Cancel6401(ctx, mobile.CancelRequest{PayOrdID: id, PayToken: tok})
	wantErr(t, err, ihos.EInvalid, "请办理退款")
}

func TestRefusalsAndUnavailable(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	// An unknown payAuthNo and a suspended person.
	_, _, err := e.c.Upload6201(ctx, mobile.FeeUpload{PayAuthNo: "AUTHNONE", MedOrgOrd: "X", MedfeeSumamt: 100,
		FeeDetailList: []mobile.FeeDetail{{DetItemFeeSumamt: 100}}})
	wantErr(t, err, ihos.EInvalid, "医保移动支付返回：支付授权码 payAuthNo 无效")
	var ce *mobile.CentreError
	if !errors.As(err, &ce) || ce.Tx != "6201" || ce.Code != -1 {
		t.Fatalf("cause %v", err)
	}
	// A client with another key: the centre refuses the signature.
	other, _ := sm2.GenerateKey(rand.Reader)
	clone := func() *mobile.Client {
		return &mobile.Client{BaseURL: e.c.BaseURL, AppID: appID, AppSecret: appSecret, OrgCodg: orgCodg, Key: e.c.Key, CentrePub: e.c.CentrePub}
	}
	bad := clone()
	bad.Key = other
	_, err = bad.Query6301(ctx, mobile.QueryRequest{PayOrdID: "X"})
	wantErr(t, err, ihos.EInvalid, "验签")
	// A centre whose answer is not signed by the key we trust: unavailable.
	bad = clone()
	bad.CentrePub = &other.PublicKey
	_, err = bad.Query6301(ctx, mobile.QueryRequest{PayOrdID: "X"})
	wantErr(t, err, ihos.EUnavailable, "医保移动支付暂时无法连接")
	// Down, and nothing listening.
	e.sim.SetMode(mobilesim.Mode{Name: mobilesim.ModeDown})
	_, err = e.c.Query6301(ctx, mobile.QueryRequest{PayOrdID: "X"})
	wantErr(t, err, ihos.EUnavailable, "医保移动支付暂时无法连接")
	bad = clone()
	bad.BaseURL = "http://127.0.0.1:1"
	_, err = bad.Query6301(ctx, mobile.QueryRequest{PayOrdID: "X"})
	wantErr(t, err, ihos.EUnavailable, "医保移动支付暂时无法连接")
	// Slow beyond the timeout.
	e.sim.SetMode(mobilesim.Mode{Name: mobilesim.ModeSlow, Delay: time.Second})
	bad = clone()
	bad.Timeout = 100 * time.Millisecond
	_, err = bad.Query6301(ctx, mobile.QueryRequest{PayOrdID: "X"})
	wantErr(t, err, ihos.EUnavailable, "医保移动支付暂时无法连接")
}

// A centre (a fake one here) answering with amounts that do not add up.
func TestResultAmountMismatch(t *testing.T) {
	orgKey, _ := sm2.GenerateKey(rand.Reader)
	centreKey, _ := sm2.GenerateKey(rand.Reader)
	centre := mobile.Sealer{AppID: appID, AppSecret: appSecret, Key: centreKey, Peer: &orgKey.PublicKey}
	var answer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env, _ := centre.SealAnswer(0, "成功", json.RawMessage(answer))
		json.NewEncoder(w).Encode(env)
	}))
	defer srv.Close()
	logs := &syncBuffer{}
	c := &mobile.Client{BaseURL: srv.URL, AppID: appID, AppSecret: appSecret, OrgCodg: orgCodg, Key: orgKey,
		CentrePub: &centreKey.PublicKey, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	answer = `{"payOrdId":"P1","ordStas":"6","feeSumamt":100.00,"fundPay":70.00,"psnAcctPay":20.00,"ownPayAmt":10.01}`
	_, err := c.Query6301(context.Background(), mobile.QueryRequest{PayOrdID: "P1"})
	wantErr(t, err, ihos.EConflict, "医保结算金额不一致")
	if !strings.Contains(logs.String(), "6301 result refused") {
		t.Fatalf("not logged: %s", logs)
	}
	answer = `{"payOrdId":"P1","ordStas":"6","feeSumamt":100.001,"fundPay":70.00,"psnAcctPay":20.00,"ownPayAmt":10.00}`
	_, err = c.Query6301(context.Background(), mobile.QueryRequest{PayOrdID: "P1"})
	wantErr(t, err, ihos.EUnavailable, "暂时无法连接")
	answer = `{"payOrdId":"P2","ordStas":"6","feeSumamt":100.00,"fundPay":70.00,"psnAcctPay":20.00,"ownPayAmt":10.00}`
	_, err = c.Query6301(context.Background(), mobile.QueryRequest{PayOrdID: "P1"})
	wantErr(t, err, ihos.EUnavailable, "暂时无法连接")
}

// Forged, mismatched, replayed, stale and unknown-order notifies are refused,
// logged, and change nothing.
func TestNotifyRejections(t *testing.T) {
	e := setup(t)
	e.sim.SetMode(mobilesim.Mode{Name: mobilesim.ModeUp, Notify: mobilesim.NotifyNone})
	auth, id, tok := e.upload(t, zhangSan, "MO-0008", 10000)
	e.order(t, auth, id, tok)

	good := mobile.Notify{PayOrdID: id, CallType: "02", MedOrgOrd: "MO-0008", TraceTime: "20260105093000",
		FeeSumamt: 10000, FundPay: 7000, PsnAcctPay: 3000, SetlType: "ALL"}
	centre := mobile.Sealer{AppID: appID, AppSecret: appSecret, Key: e.key}
	post := func(n mobile.Notify, s mobile.Sealer) (int, string) {
		t.Helper()
		env, err := s.Seal(n)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(env)
		return postRaw(t, e.hook, body)
	}

	forger, _ := sm2.GenerateKey(rand.Reader)
	cases := []struct {
		name string
		n    mobile.Notify
		s    mobile.Sealer
		msg  string
	}{
		{"forged", good, mobile.Sealer{AppID: appID, AppSecret: appSecret, Key: forger}, "医保结算通知验签失败"},
		{"amounts", func() mobile.Notify { n := good; n.OwnPayAmt = 1; return n }(), centre, "医保结算金额不一致"},
		{"stale", good, mobile.Sealer{AppID: appID, AppSecret: appSecret, Key: e.key,
			Now: func() time.Time { return time.Now().Add(-10 * time.Minute) }}, "医保结算通知已过期或重复"},
		{"unknown order", func() mobile.Notify { n := good; n.PayOrdID = "ORD-UNKNOWN"; return n }(), centre, "医保支付订单不存在"},
		{"not what we charged", func() mobile.Notify {
			n := good
			n.FeeSumamt, n.FundPay = 20000, 17000
			return n
		}(), centre, "医保结算金额不一致"},
	}
	for _, c := range cases {
		code, msg := post(c.n, c.s)
		if code != -1 || msg != c.msg {
			t.Errorf("%s: answered %d %q, want -1 %q", c.name, code, msg, c.msg)
		}
	}
	if e.book.appliedCount() != 0 {
		t.Fatalf("%d notifies applied", e.book.appliedCount())
	}
	if got := strings.Count(e.logs.String(), "6302 notify"); got < len(cases) {
		t.Fatalf("%d refusals logged:\n%s", got, e.logs)
	}

	// The genuine one is booked; replaying its exact bytes is refused.
	env, _ := centre.Seal(good)
	body, _ := json.Marshal(env)
	if code, msg := postRaw(t, e.hook, body); code != 0 {
		t.Fatalf("genuine notify: %d %s", code, msg)
	}
	if code, msg := postRaw(t, e.hook, body); code != -1 || msg != "医保结算通知已过期或重复" {
		t.Fatalf("replayed notify: %d %q", code, msg)
	}
	if e.book.appliedCount() != 1 {
		t.Fatalf("%d applied", e.book.appliedCount())
	}
	// Garbage is refused too.
	if code, _ := postRaw(t, e.hook, []byte("not json")); code != -1 {
		t.Fatal("garbage accepted")
	}
}

func postRaw(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans mobile.Envelope
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || ans.Code == nil {
		t.Fatalf("answer: %v", err)
	}
	return *ans.Code, ans.Message
}

// Duplicated notifies are booked once; an early notify arrives before the
// 6202 answer.
func TestDuplicateAndEarlyNotify(t *testing.T) {
	e := setup(t)
	e.sim.SetMode(mobilesim.Mode{Name: mobilesim.ModeUp, Notify: mobilesim.NotifyDuplicate})
	auth, id, tok := e.upload(t, zhangSan, "MO-0009", 4000)
	e.order(t, auth, id, tok)
	waitFor(t, "two notifies answered", func() bool {
		n := 0
		for _, r := range e.sim.Notifies() {
			if r.PayOrdID == id && r.Code != nil && *r.Code == 0 {
				n++
			}
		}
		return n == 2
	})
	if e.book.appliedCount() != 1 {
		t.Fatalf("applied %d times", e.book.appliedCount())
	}

	e.sim.SetMode(mobilesim.Mode{Name: mobilesim.ModeUp, Notify: mobilesim.NotifyEarly})
	auth, id, tok = e.upload(t, zhangSan, "MO-0010", 4000)
	e.order(t, auth, id, tok)
	if _, ok := e.book.settledNotify(id); !ok {
		t.Fatal("early notify did not arrive before the 6202 answer")
	}
}

func TestControlAuthOverHTTP(t *testing.T) {
	e := setup(t)
	resp, err := http.Post(e.sim.URL()+"/control/auth", "application/json", strings.NewReader(`{"id_number":"`+zhangSan+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a mobilesim.Auth
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || a.Name != "张三" || !strings.HasPrefix(a.PayAuthNo, "AUTH") || a.UldLatlnt == "" || len(a.ECToken) != 40 {
		t.Fatalf("auth = %+v, %v", a, err)
	}
	resp2, err := http.Post(e.sim.URL()+"/control/settings", "application/json", strings.NewReader(`{"fund_ratio_pct": 50, "balances": {"`+zhangSan+`": 0}}`))
	if err != nil || resp2.StatusCode != 200 {
		t.Fatalf("settings: %v", err)
	}
	resp2.Body.Close()
	_, id, tok := e.upload(t, zhangSan, "MO-0011", 10000)
	r, err := e.c.Order6202(context.Background(), mobile.OrderRequest{PayAuthNo: a.PayAuthNo, PayOrdID: id, PayToken: tok})
	wantErr(t, err, ihos.EInvalid, "payAuthNo 与上传费用时不一致")
	_ = r
}

func BenchmarkUploadOrder(b *testing.B) {
	e := setup(b)
	e.sim.SetMode(mobilesim.Mode{Name: mobilesim.ModeUp, Notify: mobilesim.NotifyNone})
	e.sim.SetBalance(zhangSan, 1<<40)
	auth, err := e.sim.Authorize(zhangSan)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		in := mobile.FeeUpload{MedOrgOrd: "B-" + ihos.NewID(), IDNo: zhangSan, PayAuthNo: auth.PayAuthNo, AcctUsedFlag: "1",
			MedfeeSumamt: 12345, FeeDetailList: []mobile.FeeDetail{{FeedetlSn: "1", DetItemFeeSumamt: 12345}}}
		id, tok, err := e.c.Upload6201(ctx, in)
		if err != nil {
			b.Fatal(i, err)
		}
		if _, err := e.c.Order6202(ctx, mobile.OrderRequest{PayAuthNo: auth.PayAuthNo, PayOrdID: id, PayToken: tok}); err != nil {
			b.Fatal(err)
		}
	}
}
