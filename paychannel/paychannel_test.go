package paychannel_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"ihos"
	"ihos/paychannel"
	"ihos/paychannel/paysim"
)

// Keys are generated once per test binary: RSA-2048 generation takes about
// 50 ms each.
var (
	keysOnce                 sync.Once
	platformKey, merchantKey *rsa.PrivateKey
	otherKey                 *rsa.PrivateKey
)

func keys(t testing.TB) {
	keysOnce.Do(func() {
		var err error
		for _, k := range []**rsa.PrivateKey{&platformKey, &merchantKey, &otherKey} {
			if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		}
	})
}

const (
	mchid    = "1900000109"
	appid    = "wxd678efh567hg6787"
	serialNo = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
)

var apiV3Key = []byte("0123456789abcdef0123456789abcdef")

// received is one notify as the merchant's endpoint got it.
type received struct {
	header http.Header
	body   []byte
	n      paychannel.Notify
	err    error
}

type env struct {
	sim       *paysim.Sim
	c         *paychannel.Client
	notifyURL string
	got       chan received
	// fail, when set, makes the endpoint answer 500 to the next notifies.
	mu   sync.Mutex
	fail int
}

func newEnv(t testing.TB, cfg paysim.Config) *env {
	keys(t)
	return newEnvWith(t, cfg, merchantKey)
}

// newEnvWith is newEnv with the merchant's API key apiKey: merchantKey, or
// an SM2 key for the channel's 国密 option (merchantKey then signs only the
// JSAPI pay parameters).
func newEnvWith(t testing.TB, cfg paysim.Config, apiKey crypto.Signer) *env {
	keys(t)
	if cfg.PlatformKey == nil && cfg.DBPath == "" {
		cfg.PlatformKey = platformKey
	}
	if cfg.NotifyRetry == nil {
		cfg.NotifyRetry = []time.Duration{0, 50 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond}
	}
	cfg.Merchants = []paysim.Merchant{{MchID: mchid, AppID: appid, SerialNo: serialNo, PublicKey: apiKey.Public(), APIv3Key: apiV3Key}}
	sim, err := paysim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	e := &env{sim: sim, got: make(chan received, 100)}
	e.c = &paychannel.Client{BaseURL: sim.URL(), MchID: mchid, AppID: appid, SerialNo: serialNo, Key: apiKey, PaySignKey: merchantKey,
		PlatformKey: sim.PlatformKey(), PlatformSerial: sim.PlatformSerial(), APIv3Key: apiV3Key}
	if paychannel.SchemeOf(apiKey) == paychannel.AuthSchemeSM2 {
		e.c.PlatformKey, e.c.PlatformSerial = sim.PlatformSM2Key(), sim.PlatformSM2Serial()
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		n, err := e.c.ParseNotify(r)
		e.mu.Lock()
		fail := e.fail > 0
		if fail {
			e.fail--
		}
		e.mu.Unlock()
		if fail && err == nil {
			err = ihos.Errorf(ihos.EUnavailable, "数据库暂时不可用")
		}
		select {
		case e.got <- received{r.Header.Clone(), body, n, err}:
		default:
		}
		paychannel.NotifyAck(w, err)
	}))
	t.Cleanup(srv.Close)
	e.notifyURL = srv.URL + "/pay/notify"
	return e
}

func (e *env) next(t testing.TB) received {
	t.Helper()
	select {
	case r := <-e.got:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no notify arrived")
		return received{}
	}
}

func (e *env) order(no string, total int64) paychannel.Order {
	return paychannel.Order{OutTradeNo: no, Description: "示范医院-复诊咨询费", Total: total, NotifyURL: e.notifyURL, OpenID: "oPatient001"}
}

func wantCode(t testing.TB, err error, code, channelCode string) {
	t.Helper()
	if ihos.ErrorCode(err) != code || channelCode != "" && paychannel.ChannelCode(err) != channelCode {
		t.Fatalf("err = %v, want %s / %s", err, code, channelCode)
	}
	if code != "" && !strings.ContainsFunc(ihos.ErrorMessage(err), func(r rune) bool { return r >= 0x4e00 && r <= 0x9fff }) {
		t.Fatalf("message %q is not Chinese", ihos.ErrorMessage(err))
	}
}

func controlPay(t testing.TB, e *env, no string) paychannel.Transaction {
	t.Helper()
	resp, err := http.Post(e.sim.URL()+"/control/pay", "application/json", strings.NewReader(`{"out_trade_no":"`+no+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr paychannel.Transaction
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&tr) != nil {
		t.Fatalf("control pay %s: HTTP %d", no, resp.StatusCode)
	}
	return tr
}

func TestSignatures(t *testing.T) {
	keys(t)
	a := paychannel.Auth{Scheme: paychannel.AuthScheme, MchID: mchid, Nonce: paychannel.NewNonce(), Timestamp: 1554208460, SerialNo: serialNo}
	msg := paychannel.RequestMessage("POST", "/v3/pay/transactions/native", a.Timestamp, a.Nonce, []byte(`{"a":1}`))
	if msg != "POST\n/v3/pay/transactions/native\n1554208460\n"+a.Nonce+"\n{\"a\":1}\n" {
		t.Fatalf("message %q", msg)
	}
	var err error
	if a.Signature, err = paychannel.Sign(merchantKey, msg); err != nil {
		t.Fatal(err)
	}
	got, err := paychannel.ParseAuth(a.String())
	if err != nil || got != a {
		t.Fatalf("ParseAuth(%s) = %+v, %v", a, got, err)
	}
	if err := paychannel.Verify(&merchantKey.PublicKey, msg, a.Signature); err != nil {
		t.Fatal(err)
	}
	if paychannel.Verify(&otherKey.PublicKey, msg, a.Signature) == nil || paychannel.Verify(&merchantKey.PublicKey, msg+"x", a.Signature) == nil {
		t.Fatal("wrong key or message verified")
	}

	e := newEnv(t, paysim.Config{})
	ctx := context.Background()
	// The channel refuses a request signed with another key.
	bad := *e.c
	bad.Key = otherKey
	_, err = bad.CreateNative(ctx, e.order("SIGN000001", 100))
	wantCode(t, err, ihos.EInternal, paychannel.CodeSignError)
	// A request signed ten minutes ago is refused (a replayed request).
	old := paychannel.Auth{MchID: mchid, Nonce: paychannel.NewNonce(), Timestamp: time.Now().Add(-10 * time.Minute).Unix(), SerialNo: serialNo}
	path := paychannel.PathQueryOutTradeNo + "SIGN000001?mchid=" + mchid
	old.Signature, _ = paychannel.Sign(merchantKey, paychannel.RequestMessage("GET", path, old.Timestamp, old.Nonce, nil))
	req, _ := http.NewRequest("GET", e.sim.URL()+path, nil)
	req.Header.Set("Authorization", old.String())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var eb paychannel.ErrorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || eb.Code != paychannel.CodeSignError {
		t.Fatalf("stale request: HTTP %d %+v", resp.StatusCode, eb)
	}
	// The client refuses answers not signed by the platform key it trusts.
	forged := *e.c
	forged.PlatformKey, forged.PlatformSerial = &otherKey.PublicKey, ""
	_, err = forged.CreateNative(ctx, e.order("SIGN000002", 100))
	wantCode(t, err, ihos.EUnavailable, "")
	wrongSerial := *e.c
	wrongSerial.PlatformSerial = "ABCDEF"
	_, err = wrongSerial.Query(ctx, "SIGN000002")
	wantCode(t, err, ihos.EUnavailable, "")
	// Nothing was lost: the order the forged answer was about exists.
	if tr, err := e.c.Query(ctx, "SIGN000002"); err != nil || tr.TradeState != paychannel.TradeNotPay {
		t.Fatalf("query = %+v, %v", tr, err)
	}
}

func TestPayAndRefund(t *testing.T) {
	e := newEnv(t, paysim.Config{})
	ctx := context.Background()
	o := e.order("ORD20260101000001", 12550)
	code, err := e.c.CreateNative(ctx, o)
	if err != nil || !strings.HasPrefix(code, "weixin://wxpay/bizpayurl?pr=") {
		t.Fatalf("create = %q, %v", code, err)
	}
	again, err := e.c.CreateNative(ctx, o)
	if err != nil || again != code {
		t.Fatalf("re-create = %q, %v; want %q", again, err, code)
	}
	other := o
	other.Total = 12500
	_, err = e.c.CreateNative(ctx, other)
	wantCode(t, err, ihos.EConflict, paychannel.CodeOutTradeNoUsed)
	_, err = e.c.CreateJSAPI(ctx, o)
	wantCode(t, err, ihos.EConflict, paychannel.CodeOutTradeNoUsed)

	tr, err := e.c.Query(ctx, o.OutTradeNo)
	if err != nil || tr.TradeState != paychannel.TradeNotPay || tr.Paid() || tr.Final() || tr.Amount.Total != 12550 {
		t.Fatalf("query before paying = %+v, %v", tr, err)
	}
	_, err = e.c.Query(ctx, "NOSUCHORDER1")
	wantCode(t, err, ihos.ENotFound, paychannel.CodeOrderNotExist)

	controlPay(t, e, o.OutTradeNo)
	r := e.next(t)
	if r.err != nil || r.n.EventType != paychannel.EventTransactionSuccess || r.n.Transaction == nil ||
		r.n.Transaction.OutTradeNo != o.OutTradeNo || r.n.Transaction.TradeState != paychannel.TradeSuccess ||
		r.n.Transaction.Amount.Total != 12550 || r.n.Transaction.Amount.PayerTotal != 12550 || r.n.Transaction.TransactionID == "" {
		t.Fatalf("notify = %+v %+v, %v", r.n, r.n.Transaction, r.err)
	}
	tr, err = e.c.Query(ctx, o.OutTradeNo)
	if err != nil || !tr.Paid() || tr.TransactionID != r.n.Transaction.TransactionID || tr.SuccessAt().IsZero() {
		t.Fatalf("query after paying = %+v, %v", tr, err)
	}
	// Paying again takes nothing: no second notify, same transaction.
	if tr2 := controlPay(t, e, o.OutTradeNo); tr2.TransactionID != tr.TransactionID {
		t.Fatalf("second pay = %+v", tr2)
	}
	_, err = e.c.CreateNative(ctx, o)
	wantCode(t, err, ihos.EConflict, paychannel.CodeOrderPaid)
	wantCode(t, e.c.Close(ctx, o.OutTradeNo), ihos.EConflict, paychannel.CodeOrderPaid)

	// Refunds.
	ro := paychannel.RefundOrder{OutTradeNo: o.OutTradeNo, OutRefundNo: "RF20260101000001", Reason: "患者取消复诊", NotifyURL: e.notifyURL, Refund: 5000, Total: 12550}
	rf, err := e.c.Refund(ctx, ro)
	if err != nil || rf.Status != paychannel.RefundProcessing || rf.RefundID == "" || rf.Amount.Refund != 5000 {
		t.Fatalf("refund = %+v, %v", rf, err)
	}
	r = e.next(t)
	if r.err != nil || r.n.EventType != paychannel.EventRefundSuccess || r.n.Refund == nil || r.n.Refund.OutRefundNo != ro.OutRefundNo ||
		r.n.Refund.RefundStatus != paychannel.RefundSuccess || r.n.Refund.Amount.Refund != 5000 {
		t.Fatalf("refund notify = %+v, %v", r.n, r.err)
	}
	rq, err := e.c.QueryRefund(ctx, ro.OutRefundNo)
	if err != nil || rq.Status != paychannel.RefundSuccess || rq.RefundID != rf.RefundID {
		t.Fatalf("query refund = %+v, %v", rq, err)
	}
	// The same out_refund_no again is the same refund, not a second one.
	rf2, err := e.c.Refund(ctx, ro)
	if err != nil || rf2.RefundID != rf.RefundID || rf2.Status != paychannel.RefundSuccess {
		t.Fatalf("repeated refund = %+v, %v", rf2, err)
	}
	// More than what is left is refused; exactly what is left is fine.
	over := ro
	over.OutRefundNo, over.Refund = "RF20260101000002", 7551
	_, err = e.c.Refund(ctx, over)
	wantCode(t, err, ihos.EInvalid, paychannel.CodeInvalidRequest)
	over.Refund = 7550
	if _, err := e.c.Refund(ctx, over); err != nil {
		t.Fatal(err)
	}
	e.next(t)
	unknown := ro
	unknown.OutTradeNo, unknown.OutRefundNo = "NOSUCHORDER1", "RF20260101000003"
	_, err = e.c.Refund(ctx, unknown)
	wantCode(t, err, ihos.ENotFound, paychannel.CodeResourceMissing)
	_, err = e.c.QueryRefund(ctx, "RF20260101000003")
	wantCode(t, err, ihos.ENotFound, paychannel.CodeResourceMissing)
	if tr, _ := e.c.Query(ctx, o.OutTradeNo); tr.TradeState != paychannel.TradeRefund || !tr.Paid() {
		t.Fatalf("query after refund = %+v", tr)
	}

	// JSAPI: same prepay_id on re-create, then closed and never payable.
	j := e.order("ORD20260101000002", 800)
	prepay, err := e.c.CreateJSAPI(ctx, j)
	if err != nil || !strings.HasPrefix(prepay, "wx") {
		t.Fatalf("jsapi = %q, %v", prepay, err)
	}
	if again, _ := e.c.CreateJSAPI(ctx, j); again != prepay {
		t.Fatalf("re-create jsapi = %q, want %q", again, prepay)
	}
	pp, err := e.c.JSAPIPayParams(prepay)
	if err != nil || pp.Package != "prepay_id="+prepay ||
		paychannel.Verify(&merchantKey.PublicKey, pp.AppID+"\n"+pp.TimeStamp+"\n"+pp.NonceStr+"\n"+pp.Package+"\n", pp.PaySign) != nil {
		t.Fatalf("pay params = %+v, %v", pp, err)
	}
	for range 2 { // closing twice is fine
		if err := e.c.Close(ctx, j.OutTradeNo); err != nil {
			t.Fatal(err)
		}
	}
	if tr, _ := e.c.Query(ctx, j.OutTradeNo); tr.TradeState != paychannel.TradeClosed || !tr.Final() || tr.Paid() {
		t.Fatalf("closed = %+v", tr)
	}
	if _, err := e.sim.Pay("", j.OutTradeNo, ""); err == nil {
		t.Fatal("a closed order was paid")
	}
	_, err = e.c.CreateJSAPI(ctx, j)
	wantCode(t, err, ihos.EConflict, paychannel.CodeOrderClosed)

	// Input the channel would refuse is refused before sending.
	_, err = e.c.CreateNative(ctx, paychannel.Order{OutTradeNo: "x", NotifyURL: e.notifyURL})
	wantCode(t, err, ihos.EInvalid, "")
}

func TestNotifyRejected(t *testing.T) {
	e := newEnv(t, paysim.Config{})
	ctx := context.Background()
	o := e.order("ORD20260101000101", 300)
	if _, err := e.c.CreateNative(ctx, o); err != nil {
		t.Fatal(err)
	}
	controlPay(t, e, o.OutTradeNo)
	good := e.next(t)
	if good.err != nil {
		t.Fatal(good.err)
	}
	parse := func(c *paychannel.Client, h http.Header, body []byte) error {
		r := httptest.NewRequest(http.MethodPost, "/pay/notify", bytes.NewReader(body))
		r.Header = h
		_, err := c.ParseNotify(r)
		return err
	}
	if err := parse(e.c, good.header, good.body); err != nil {
		t.Fatalf("the genuine notify again: %v", err)
	}
	// Replayed six minutes later.
	later := *e.c
	later.Now = func() time.Time { return time.Now().Add(6 * time.Minute) }
	wantCode(t, parse(&later, good.header, good.body), ihos.EForbidden, "")

	// Forged: signed with another key.
	forge := func(key *rsa.PrivateKey, body []byte) http.Header {
		h := good.header.Clone()
		ts, nonce := h.Get(paychannel.HeaderTimestamp), paychannel.NewNonce()
		sig, _ := paychannel.Sign(key, paychannel.ResponseMessage(ts, nonce, body))
		h.Set(paychannel.HeaderNonce, nonce)
		h.Set(paychannel.HeaderSignature, sig)
		return h
	}
	wantCode(t, parse(e.c, forge(otherKey, good.body), good.body), ihos.EForbidden, "")
	// The body changed after signing (amount raised).
	changed := bytes.Replace(good.body, []byte(`"TRANSACTION.SUCCESS"`), []byte(`"TRANSACTION.SUCCESS" `), 1)
	wantCode(t, parse(e.c, good.header, changed), ihos.EForbidden, "")
	// Tampered ciphertext, even correctly signed (the platform key leaked):
	// GCM authentication fails.
	var nb paychannel.NotifyBody
	json.Unmarshal(good.body, &nb)
	ct, _ := base64.StdEncoding.DecodeString(nb.Resource.Ciphertext)
	ct[3] ^= 1
	nb.Resource.Ciphertext = base64.StdEncoding.EncodeToString(ct)
	tampered, _ := json.Marshal(nb)
	wantCode(t, parse(e.c, forge(platformKey, tampered), tampered), ihos.EForbidden, "")
	// A notify encrypted for another merchant key does not decrypt either.
	res, _ := paychannel.EncryptResource([]byte("ffffffffffffffffffffffffffffffff"), "transaction", "transaction", []byte(`{}`))
	nb.Resource = res
	other, _ := json.Marshal(nb)
	wantCode(t, parse(e.c, forge(platformKey, other), other), ihos.EForbidden, "")
	// No signature at all.
	h := good.header.Clone()
	h.Del(paychannel.HeaderSignature)
	wantCode(t, parse(e.c, h, good.body), ihos.EForbidden, "")
}

func TestEarlyAndDuplicateNotify(t *testing.T) {
	e := newEnv(t, paysim.Config{})
	ctx := context.Background()
	if err := e.sim.SetMode(paysim.Mode{AutoPay: true, EarlyNotify: true, DuplicateNotify: 1}); err != nil {
		t.Fatal(err)
	}
	o := e.order("ORD20260101000201", 990)
	if _, err := e.c.CreateJSAPI(ctx, o); err != nil {
		t.Fatal(err)
	}
	// The notify was delivered before the create call returned.
	select {
	case r := <-e.got:
		if r.err != nil || r.n.Transaction.OutTradeNo != o.OutTradeNo || !r.n.Transaction.Paid() {
			t.Fatalf("early notify = %+v, %v", r.n, r.err)
		}
		dup := e.next(t)
		if dup.err != nil || dup.n.ID != r.n.ID || dup.n.Transaction.TransactionID != r.n.Transaction.TransactionID {
			t.Fatalf("duplicate = %+v, %v; first %+v", dup.n, dup.err, r.n)
		}
	default:
		t.Fatal("no notify before the create answer")
	}
}

func TestUserPayingAndPayError(t *testing.T) {
	e := newEnv(t, paysim.Config{})
	ctx := context.Background()
	e.sim.SetMode(paysim.Mode{UserPayingMS: 200})
	o := e.order("ORD20260101000301", 500)
	e.c.CreateNative(ctx, o)
	if tr := controlPay(t, e, o.OutTradeNo); tr.TradeState != paychannel.TradeUserPaying {
		t.Fatalf("pay = %+v", tr)
	}
	if tr, _ := e.c.Query(ctx, o.OutTradeNo); tr.TradeState != paychannel.TradeUserPaying || tr.Final() {
		t.Fatalf("query = %+v", tr)
	}
	if r := e.next(t); r.err != nil || r.n.Transaction.OutTradeNo != o.OutTradeNo {
		t.Fatalf("notify = %+v, %v", r.n, r.err)
	}
	if tr, _ := e.c.Query(ctx, o.OutTradeNo); tr.TradeState != paychannel.TradeSuccess {
		t.Fatalf("query = %+v", tr)
	}

	e.sim.SetMode(paysim.Mode{UserPayingMS: 100, PayResult: paychannel.TradePayError})
	o2 := e.order("ORD20260101000302", 500)
	e.c.CreateNative(ctx, o2)
	controlPay(t, e, o2.OutTradeNo)
	deadline := time.Now().Add(3 * time.Second)
	for {
		tr, err := e.c.Query(ctx, o2.OutTradeNo)
		if err != nil {
			t.Fatal(err)
		}
		if tr.TradeState == paychannel.TradePayError && tr.Final() && !tr.Paid() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s", tr.TradeState)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRefundAbnormalThenRetry(t *testing.T) {
	e := newEnv(t, paysim.Config{})
	ctx := context.Background()
	o := e.order("ORD20260101000401", 2000)
	e.c.CreateNative(ctx, o)
	controlPay(t, e, o.OutTradeNo)
	e.next(t)
	e.sim.SetMode(paysim.Mode{RefundAbnormal: 1})
	ro := paychannel.RefundOrder{OutTradeNo: o.OutTradeNo, OutRefundNo: "RF20260101000401", NotifyURL: e.notifyURL, Refund: 2000, Total: 2000}
	if _, err := e.c.Refund(ctx, ro); err != nil {
		t.Fatal(err)
	}
	if r := e.next(t); r.err != nil || r.n.EventType != paychannel.EventRefundAbnormal || r.n.Refund.RefundStatus != paychannel.RefundAbnormal {
		t.Fatalf("notify = %+v, %v", r.n, r.err)
	}
	if rq, _ := e.c.QueryRefund(ctx, ro.OutRefundNo); rq.Status != paychannel.RefundAbnormal {
		t.Fatalf("query = %+v", rq)
	}
	if _, err := e.c.Refund(ctx, ro); err != nil { // the retry
		t.Fatal(err)
	}
	if r := e.next(t); r.err != nil || r.n.EventType != paychannel.EventRefundSuccess {
		t.Fatalf("notify = %+v, %v", r.n, r.err)
	}
	if rq, _ := e.c.QueryRefund(ctx, ro.OutRefundNo); rq.Status != paychannel.RefundSuccess {
		t.Fatalf("query = %+v", rq)
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t, paysim.Config{})
	ctx := context.Background()
	e.c.Timeout = 300 * time.Millisecond
	o := e.order("ORD20260101000501", 100)

	// Done, then the answer is lost: unknown outcome, the order exists.
	e.sim.SetMode(paysim.Mode{Faults: []paysim.Fault{{Op: "create", Kind: paysim.FaultErrorAfter, Count: 1}}})
	_, err := e.c.CreateNative(ctx, o)
	wantCode(t, err, ihos.EUnavailable, paychannel.CodeSystemError)
	if tr, err := e.c.Query(ctx, o.OutTradeNo); err != nil || tr.TradeState != paychannel.TradeNotPay {
		t.Fatalf("query = %+v, %v", tr, err)
	}
	if _, err := e.c.CreateNative(ctx, o); err != nil { // the safe retry
		t.Fatal(err)
	}

	for _, kind := range []string{paysim.FaultDrop, paysim.FaultTimeout, paysim.FaultError} {
		e.sim.SetMode(paysim.Mode{Faults: []paysim.Fault{{Op: "query", Kind: kind}}})
		start := time.Now()
		_, err := e.c.Query(ctx, o.OutTradeNo)
		wantCode(t, err, ihos.EUnavailable, "")
		if time.Since(start) > 2*time.Second {
			t.Fatalf("%s took %v", kind, time.Since(start))
		}
	}
	// timeout_after on a refund: accepted, answer lost, found by query.
	e.sim.SetMode(paysim.Mode{})
	controlPay(t, e, o.OutTradeNo)
	e.next(t)
	e.sim.SetMode(paysim.Mode{Faults: []paysim.Fault{{Op: "refund", Kind: paysim.FaultTimeoutAfter, Count: 1}}})
	ro := paychannel.RefundOrder{OutTradeNo: o.OutTradeNo, OutRefundNo: "RF20260101000501", Refund: 100, Total: 100}
	_, err = e.c.Refund(ctx, ro)
	wantCode(t, err, ihos.EUnavailable, "")
	if rq, err := e.c.QueryRefund(ctx, ro.OutRefundNo); err != nil || rq.Amount.Refund != 100 {
		t.Fatalf("query refund = %+v, %v", rq, err)
	}
	// The channel unreachable.
	down := *e.c
	down.BaseURL = "http://127.0.0.1:1"
	_, err = down.Query(ctx, o.OutTradeNo)
	wantCode(t, err, ihos.EUnavailable, "")
	if ihos.ErrorMessage(err) != "支付渠道暂时无法连接，请稍后再试" {
		t.Fatalf("message %q", ihos.ErrorMessage(err))
	}
}

func TestNotifyRetriedUntilAcknowledged(t *testing.T) {
	e := newEnv(t, paysim.Config{})
	ctx := context.Background()
	e.mu.Lock()
	e.fail = 2
	e.mu.Unlock()
	o := e.order("ORD20260101000601", 100)
	e.c.CreateNative(ctx, o)
	controlPay(t, e, o.OutTradeNo)
	var ids []string
	for range 3 {
		r := e.next(t)
		ids = append(ids, r.n.ID)
	}
	if ids[0] == "" || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("ids %v", ids)
	}
	var statuses []int
	for deadline := time.Now().Add(2 * time.Second); len(statuses) < 3 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		statuses = statuses[:0] // the sim records an attempt just after the answer
		for _, a := range e.sim.Notifies() {
			statuses = append(statuses, a.Status)
		}
	}
	if len(statuses) != 3 || statuses[0] != 500 || statuses[1] != 500 || statuses[2] != 204 {
		t.Fatalf("attempts %v", statuses)
	}
}

func TestBill(t *testing.T) {
	e := newEnv(t, paysim.Config{})
	ctx := context.Background()
	today := time.Now().In(ihos.Shanghai).Format(time.DateOnly)
	rows, err := e.c.Bill(ctx, today)
	if err != nil || rows != nil {
		t.Fatalf("empty day = %v, %v", rows, err)
	}
	var paid int64
	for i, total := range []int64{12550, 800, 3333} {
		o := e.order("ORD2026010100070"+string(rune('1'+i)), total)
		o.Description = "门诊缴费,含逗号" // a comma inside a value survives the CSV
		if _, err := e.c.CreateNative(ctx, o); err != nil {
			t.Fatal(err)
		}
		controlPay(t, e, o.OutTradeNo)
		e.next(t)
		paid += total
	}
	e.c.CreateNative(ctx, e.order("ORD20260101000799", 100)) // never paid: not in the bill
	if _, err := e.c.Refund(ctx, paychannel.RefundOrder{OutTradeNo: "ORD20260101000701", OutRefundNo: "RF20260101000701", NotifyURL: e.notifyURL, Refund: 2550, Total: 12550}); err != nil {
		t.Fatal(err)
	}
	e.next(t)
	rows, err = e.c.Bill(ctx, today)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	s := paychannel.Summarize(rows)
	if s.Settlement != paid || s.Refund != 2550 || s.Total != paid || s.Settlement-s.Refund != paid-2550 {
		t.Fatalf("summary %+v, paid %d", s, paid)
	}
	for _, r := range rows {
		if r.Description != "门诊缴费,含逗号" || r.MchID != mchid || r.TransactionID == "" {
			t.Fatalf("row %+v", r)
		}
		if r.TradeState == paychannel.TradeRefund && (r.OutRefundNo != "RF20260101000701" || r.Refund != 2550 || r.Fee != -15) {
			t.Fatalf("refund row %+v", r)
		}
		if r.TradeState == paychannel.TradeSuccess && r.OutTradeNo == "ORD20260101000701" && r.Fee != 75 {
			t.Fatalf("payment row %+v", r)
		}
	}
	// A bill whose summary does not add up is refused.
	file := paychannel.FormatBill(rows)
	if _, _, err := paychannel.ParseBill(bytes.Replace(file, []byte("`33.33"), []byte("`33.34"), 1)); err == nil {
		t.Fatal("a bill that does not add up was accepted")
	}
	if _, err := e.c.Bill(ctx, "2026-13-01"); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Fatalf("bad date: %v", err)
	}
}

func TestPersistence(t *testing.T) {
	keys(t)
	db := t.TempDir() + "/pay-sim.db"
	e := newEnv(t, paysim.Config{DBPath: db})
	ctx := context.Background()
	o := e.order("ORD20260101000801", 4200)
	e.c.CreateNative(ctx, o)
	controlPay(t, e, o.OutTradeNo)
	e.next(t)
	serial := e.sim.PlatformSerial()
	if err := e.sim.Close(); err != nil {
		t.Fatal(err)
	}

	sim2, err := paysim.Start(ctx, paysim.Config{DBPath: db})
	if err != nil {
		t.Fatal(err)
	}
	defer sim2.Close()
	if sim2.PlatformSerial() != serial {
		t.Fatalf("platform serial %s after restart, want %s", sim2.PlatformSerial(), serial)
	}
	c := *e.c
	c.BaseURL = sim2.URL()
	tr, err := c.Query(ctx, o.OutTradeNo)
	if err != nil || !tr.Paid() {
		t.Fatalf("query after restart = %+v, %v", tr, err)
	}
	rows, err := c.Bill(ctx, time.Now().In(ihos.Shanghai).Format(time.DateOnly))
	if err != nil || len(rows) != 1 || rows[0].Settlement != 4200 {
		t.Fatalf("bill after restart = %+v, %v", rows, err)
	}
}
