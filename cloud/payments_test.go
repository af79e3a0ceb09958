package cloud_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"ihos"
	"ihos/appliance"
	"ihos/cloud"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/paychannel"
	"ihos/paychannel/paysim"
	"ihos/payments"
)

// The keys are made once per test binary: RSA-2048 generation is slow.
var payKeys struct {
	once                      stdsync.Once
	merchant, platform, wrong *rsa.PrivateKey
}

func keysForPay(t testing.TB) {
	payKeys.once.Do(func() {
		for _, k := range []**rsa.PrivateKey{&payKeys.merchant, &payKeys.platform, &payKeys.wrong} {
			var err error
			if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		}
	})
}

const (
	testMchID  = "1900000109"
	testAppID  = "wxd678efh567hg6787"
	testSerial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
	testAPIv3  = "0123456789abcdef0123456789abcdef"
	testHosp   = "h1"
)

// payRig is the payment channel simulator and a cloud wired to it, over
// real sockets: the cloud calls the simulator's API, the simulator POSTs its
// notifies to the cloud's HTTP server.
type payRig struct {
	t      testing.TB
	sim    *paysim.Sim
	app    *cloud.App
	url    string // the cloud's base URL
	token  string // the command-line token: staff-level access
	client *paychannel.Client
	hc     *http.Client
	code   *cloud.Code // hospital h1's enrollment code
}

// newPayRig starts the simulator and a cloud on dsn ("" = SQLite); adjust
// may change the channel configuration (timeouts).
func newPayRig(t testing.TB, dsn string, adjust func(*cloud.PayChannelConfig)) *payRig {
	return newPayRigLeaf(t, dsn, "", adjust)
}

// newPayRigLeaf is newPayRig with the cloud accepting hospital links on
// leafListen ("" = none); the rig's code enrolls hospital h1.
func newPayRigLeaf(t testing.TB, dsn, leafListen string, adjust func(*cloud.PayChannelConfig)) *payRig {
	t.Helper()
	keysForPay(t)
	ctx := context.Background()
	dir := t.TempDir()
	sim, err := paysim.Start(ctx, paysim.Config{PlatformKey: payKeys.platform,
		NotifyRetry: []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, time.Second, 2 * time.Second},
		Merchants: []paysim.Merchant{{MchID: testMchID, AppID: testAppID, SerialNo: testSerial,
			PublicKey: &payKeys.merchant.PublicKey, APIv3Key: []byte(testAPIv3)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	keyFile := filepath.Join(dir, "merchant_key.pem")
	if err := os.WriteFile(keyFile, paychannel.MarshalPrivateKeyPEM(payKeys.merchant), 0o600); err != nil {
		t.Fatal(err)
	}
	// The cloud's server must exist before the cloud does: its address is
	// the notify_url the cloud gives the channel.
	var handler atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	pc := cloud.PayChannelConfig{URL: sim.URL(), MchID: testMchID, AppID: testAppID, SerialNo: testSerial,
		MerchantKey: keyFile, APIv3Key: testAPIv3, PlatformCertURL: sim.URL() + "/control/platform.pem",
		NotifyURL: srv.URL + "/api/pay/notify"}
	if adjust != nil {
		adjust(&pc)
	}
	app, err := cloud.New(ctx, cloud.Config{Config: node.Config{DataDir: filepath.Join(dir, "cloud"), HTTP: "127.0.0.1:0", LogLevel: "error", Database: dsn},
		LeafListen: leafListen, PayChannel: pc})
	if err != nil {
		t.Fatalf("cloud.New: %v", err)
	}
	t.Cleanup(app.Close)
	handler.Store(web.Middleware(app.Handler))
	code, err := app.Hospitals.Add(ctx, testHosp, "示例市第一人民医院")
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(filepath.Join(app.Node.Config.DataDir, node.CLITokenFile))
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	r := &payRig{t: t, sim: sim, app: app, url: srv.URL, code: code, token: strings.TrimSpace(string(token)), hc: &http.Client{Transport: tr},
		client: &paychannel.Client{BaseURL: sim.URL(), MchID: testMchID, AppID: testAppID, SerialNo: testSerial, Key: payKeys.merchant,
			PlatformKey: &payKeys.platform.PublicKey, APIv3Key: []byte(testAPIv3)}}
	return r
}

// call calls the cloud's API as staff (the command-line token) and decodes
// the answer into out; it returns the status.
func (r *payRig) call(method, path string, body, out any) int {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.url+path, rd)
	req.Header.Set(node.CLITokenHeader, r.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			r.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

var businessSeq atomic.Int64

// order creates and pays a self-pay order through POST /api/pay/orders.
func (r *payRig) order(amount int64, openid string) payments.PayResult {
	r.t.Helper()
	var res payments.PayResult
	req := cloud.OrderRequest{HospitalID: testHosp, BusinessType: ihos.PayConsultation, BusinessID: fmt.Sprint("C", businessSeq.Add(1)),
		PatientID: "P1", Amount: amount, Subject: "图文问诊（王医生）", OpenID: openid}
	if code := r.call("POST", "/api/pay/orders", req, &res); code != 200 || res.Payment == nil {
		r.t.Fatalf("create order: %d %+v", code, res)
	}
	return res
}

func (r *payRig) get(id string) *ihos.Payment {
	r.t.Helper()
	var p ihos.Payment
	if code := r.call("GET", "/api/pay/orders/"+id, nil, &p); code != 200 {
		r.t.Fatalf("get %s: %d", id, code)
	}
	return &p
}

// waitStatus waits until the payment has status.
func (r *payRig) waitStatus(id, status string, within time.Duration) *ihos.Payment {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		p := r.get(id)
		if p.Status == status {
			return p
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("payment %s is %s (cash %s, last error %q), want %s within %v", id, p.Status, p.CashStatus, p.LastError, status, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *payRig) count(q string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.app.Node.DB.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (r *payRig) mode(m paysim.Mode) {
	r.t.Helper()
	if err := r.sim.SetMode(m); err != nil {
		r.t.Fatal(err)
	}
}

// TestPayThroughChannel runs the self-pay journeys through the cloud and the
// channel simulator, on SQLite and (with IHOS_MYSQL_DSN) on MariaDB.
func TestPayThroughChannel(t *testing.T) {
	for _, c := range []struct {
		engine string
		dsn    func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"mysql", freshMySQL},
	} {
		t.Run(c.engine, func(t *testing.T) {
			r := newPayRig(t, c.dsn(t), func(pc *cloud.PayChannelConfig) {
				pc.PayTimeout = 3 * time.Second
				pc.QueryAfter = 200 * time.Millisecond
			})
			t.Run("PaidByNotify", r.testPaidByNotify)
			t.Run("EarlyAndDuplicateNotify", r.testEarlyDuplicate)
			t.Run("UserPayingThenQuery", r.testUserPaying)
			t.Run("ClosedAtDeadline", r.testDeadline)
			t.Run("Refunds", r.testRefunds)
			t.Run("RefundAbnormalRetried", r.testRefundAbnormal)
			t.Run("ForgedNotify", r.testForged)
			t.Run("Cancel", r.testCancel)
			t.Run("AdminList", r.testAdminList)
		})
	}
}

// A JSAPI order is paid at the channel; its notify makes it paid.
func (r *payRig) testPaidByNotify(t *testing.T) {
	r.t = t
	r.mode(paysim.Mode{})
	res := r.order(2500, "oPatient1")
	p := res.Payment
	if p.Status != ihos.PaymentPaying || res.Prepay == nil || res.Prepay.PrepayID == "" || res.Prepay.PayParams["paySign"] == "" ||
		res.Prepay.PayParams["package"] != "prepay_id="+res.Prepay.PrepayID {
		t.Fatalf("after create: %+v %+v", p, res.Prepay)
	}
	if _, err := r.sim.Pay("", p.OutTradeNo, ""); err != nil {
		t.Fatal(err)
	}
	paid := r.waitStatus(p.ID, ihos.PaymentPaid, 3*time.Second)
	if paid.TransactionID == "" || paid.CashPay != 2500 || paid.CashStatus != ihos.LegDone {
		t.Fatalf("paid: %+v", paid)
	}
	if n := r.count(`SELECT COUNT(*) FROM payment_notifies WHERE payment_id = ? AND outcome = ?`, p.ID, payments.OutcomeApplied); n != 1 {
		t.Fatalf("applied notifies = %d", n)
	}
	// The kiosk's order: no openid, a QR code.
	res = r.order(800, "")
	if res.Prepay == nil || !strings.HasPrefix(res.Prepay.CodeURL, "weixin://") {
		t.Fatalf("native order: %+v", res.Prepay)
	}
	// Every change is captured for the hospital's appliance (the outbox is
	// drained into the hub as it goes; its sequence counts the captures the
	// relay numbered, sync_capture holds the ones it has not yet).
	if n := r.count(`SELECT CAST(value AS SIGNED) + (SELECT COUNT(*) FROM sync_capture) FROM sync_state WHERE name = 'outbox_seq'`); n < 4 {
		t.Fatalf("captured %d changes", n)
	}
}

// The channel notifies before the create call returns, and then twice more:
// the payment is paid once.
func (r *payRig) testEarlyDuplicate(t *testing.T) {
	r.t = t
	r.mode(paysim.Mode{AutoPay: true, EarlyNotify: true, DuplicateNotify: 2})
	res := r.order(1200, "oPatient2")
	p := r.waitStatus(res.Payment.ID, ihos.PaymentPaid, 3*time.Second)
	deadline := time.Now().Add(3 * time.Second)
	for r.count(`SELECT COUNT(*) FROM payment_notifies WHERE order_no = ? AND outcome = ?`, p.OutTradeNo, payments.OutcomeDuplicate) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("duplicates not seen")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := r.count(`SELECT COUNT(*) FROM payment_notifies WHERE order_no = ? AND outcome = ?`, p.OutTradeNo, payments.OutcomeApplied); n != 1 {
		t.Fatalf("applied %d times", n)
	}
	if n := r.count(`SELECT COUNT(*) FROM payment_events WHERE payment_id = ? AND reason = ?`, p.ID, payments.ReasonPaid); n != 1 {
		t.Fatalf("paid events = %d", n)
	}
}

// The patient is still entering the password (USERPAYING) and no notify
// comes: the resolver's queries find the payment once it succeeds.
func (r *payRig) testUserPaying(t *testing.T) {
	r.t = t
	r.mode(paysim.Mode{AutoPay: true, UserPayingMS: 700, NoNotify: true})
	res := r.order(3000, "oPatient3")
	time.Sleep(400 * time.Millisecond) // past the first query (200 ms): USERPAYING
	if p := r.get(res.Payment.ID); p.Status != ihos.PaymentPaying {
		t.Fatalf("while USERPAYING: %s", p.Status)
	}
	p := r.waitStatus(res.Payment.ID, ihos.PaymentPaid, 4*time.Second)
	var detail string
	if err := r.app.Node.DB.QueryRowContext(context.Background(), `SELECT detail FROM payment_events WHERE payment_id = ? AND reason = ?`, p.ID, payments.ReasonPaid).Scan(&detail); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail, `"source":"query"`) || r.count(`SELECT COUNT(*) FROM payment_notifies WHERE payment_id = ?`, p.ID) != 0 {
		t.Fatalf("paid by %s", detail)
	}
}

// A payment never paid is closed at its deadline, at the channel too, and
// can no longer be paid there.
func (r *payRig) testDeadline(t *testing.T) {
	r.t = t
	r.mode(paysim.Mode{})
	res := r.order(500, "")
	p := r.waitStatus(res.Payment.ID, ihos.PaymentClosed, 8*time.Second)
	if p.CashStatus != ihos.LegReversed {
		t.Fatalf("closed: %+v", p)
	}
	tx, err := r.client.Query(context.Background(), p.OutTradeNo)
	if err != nil || tx.TradeState != paychannel.TradeClosed {
		t.Fatalf("at the channel: %+v %v", tx, err)
	}
	if _, err := r.sim.Pay("", p.OutTradeNo, ""); err == nil {
		t.Fatal("a closed order was paid")
	}
}

func (r *payRig) paid(amount int64) *ihos.Payment {
	r.t.Helper()
	r.mode(paysim.Mode{AutoPay: true})
	res := r.order(amount, "oPatient4")
	return r.waitStatus(res.Payment.ID, ihos.PaymentPaid, 3*time.Second)
}

func (r *payRig) refund(id string, amount int64, key string) *ihos.Refund {
	r.t.Helper()
	var ref ihos.Refund
	if code := r.call("POST", "/api/admin/payments/"+id+"/refunds", map[string]any{"amount": amount, "reason": "患者取消问诊", "request_key": key}, &ref); code != 201 {
		r.t.Fatalf("refund: %d %+v", code, ref)
	}
	return &ref
}

func (r *payRig) waitRefund(id, status string, within time.Duration) *ihos.Refund {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		found, err := r.refundByID(id)
		if err != nil {
			r.t.Fatal(err)
		}
		if found.Status == status {
			return found
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("refund %s is %s (%q), want %s", id, found.Status, found.LastError, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *payRig) refundByID(id string) (*ihos.Refund, error) {
	var paymentID string
	if err := r.app.Node.DB.QueryRowContext(context.Background(), `SELECT payment_id FROM refunds WHERE id = ?`, id).Scan(&paymentID); err != nil {
		return nil, err
	}
	var d payments.Detail
	if code := r.call("GET", "/api/admin/payments/"+paymentID, nil, &d); code != 200 {
		return nil, fmt.Errorf("detail: %d", code)
	}
	for _, f := range d.Refunds {
		if f.ID == id {
			return f, nil
		}
	}
	return nil, fmt.Errorf("refund %s not in the detail", id)
}

// A partial refund, then the rest, each through the channel and its refund
// notify.
func (r *payRig) testRefunds(t *testing.T) {
	r.t = t
	p := r.paid(1000)
	r.mode(paysim.Mode{RefundDelayMS: 50, NoNotify: false})
	first := r.refund(p.ID, 300, "k1")
	r.waitRefund(first.ID, ihos.RefundSucceeded, 3*time.Second)
	if got := r.get(p.ID); got.Status != ihos.PaymentPartiallyRefunded || got.Refunded != 300 {
		t.Fatalf("after the partial refund: %s refunded %d", got.Status, got.Refunded)
	}
	if again := r.refund(p.ID, 300, "k1"); again.ID != first.ID {
		t.Fatalf("the same request key made a second refund")
	}
	second := r.refund(p.ID, 700, "k2")
	r.waitRefund(second.ID, ihos.RefundSucceeded, 3*time.Second)
	if got := r.get(p.ID); got.Status != ihos.PaymentRefunded || got.Refunded != 1000 {
		t.Fatalf("after the full refund: %s refunded %d", got.Status, got.Refunded)
	}
	if n := r.count(`SELECT COUNT(*) FROM payment_notifies WHERE source = ? AND payment_id = ? AND outcome = ?`, payments.NotifyRefund, p.ID, payments.OutcomeApplied); n != 2 {
		t.Fatalf("applied refund notifies = %d", n)
	}
	var ref ihos.Refund
	if code := r.call("POST", "/api/admin/payments/"+p.ID+"/refunds", map[string]any{"amount": 1, "reason": "多退"}, &ref); code != 409 {
		t.Fatalf("refund beyond the total: %d", code)
	}
}

// The channel cannot return the money at first (ABNORMAL): the resolver
// re-submits the refund with the same number and it succeeds.
func (r *payRig) testRefundAbnormal(t *testing.T) {
	r.t = t
	p := r.paid(900)
	r.mode(paysim.Mode{RefundAbnormal: 1})
	ref := r.refund(p.ID, 900, "")
	done := r.waitRefund(ref.ID, ihos.RefundSucceeded, 6*time.Second)
	if done.Attempts < 2 {
		t.Fatalf("attempts = %d", done.Attempts)
	}
	// At least once: when the ABNORMAL notify overtakes the refund call's
	// PROCESSING answer, the answer puts the leg back to pending and the next
	// query records the failure a second time.
	if n := r.count(`SELECT COUNT(*) FROM payment_events WHERE payment_id = ? AND reason = ?`, p.ID, payments.ReasonRefundFailed); n < 1 {
		t.Fatalf("refund_failed events = %d", n)
	}
	if got := r.get(p.ID); got.Status != ihos.PaymentRefunded {
		t.Fatalf("payment %s", got.Status)
	}
}

// A notify signed with a key that is not the platform's is refused with 401
// and changes nothing, even when its resource is encrypted correctly.
func (r *payRig) testForged(t *testing.T) {
	r.t = t
	r.mode(paysim.Mode{})
	res := r.order(4000, "oPatient5")
	p := res.Payment
	tx := paychannel.Transaction{AppID: testAppID, MchID: testMchID, OutTradeNo: p.OutTradeNo, TransactionID: "4200FORGED",
		TradeType: "JSAPI", TradeState: paychannel.TradeSuccess, SuccessTime: time.Now().Format(time.RFC3339), Amount: paychannel.Amount{Total: 4000}}
	plain, _ := json.Marshal(tx)
	resource, err := paychannel.EncryptResource([]byte(testAPIv3), "transaction", "transaction", plain)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(paychannel.NotifyBody{ID: "forged-1", CreateTime: time.Now().Format(time.RFC3339), EventType: paychannel.EventTransactionSuccess,
		ResourceType: "encrypt-resource", Summary: "支付成功", Resource: resource})
	send := func(key *rsa.PrivateKey) int {
		ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), paychannel.NewNonce()
		sig, err := paychannel.Sign(key, paychannel.ResponseMessage(ts, nonce, body))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", r.url+"/api/pay/notify", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(paychannel.HeaderTimestamp, ts)
		req.Header.Set(paychannel.HeaderNonce, nonce)
		req.Header.Set(paychannel.HeaderSignature, sig)
		req.Header.Set(paychannel.HeaderSerial, r.sim.PlatformSerial())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send(payKeys.wrong); code != http.StatusUnauthorized {
		t.Fatalf("forged notify: %d", code)
	}
	if got := r.get(p.ID); got.Status != ihos.PaymentPaying || got.TransactionID != "" {
		t.Fatalf("after the forged notify: %+v", got)
	}
	if n := r.count(`SELECT COUNT(*) FROM payment_notifies WHERE outcome = ?`, payments.OutcomeBadSignature); n < 1 {
		t.Fatalf("forged notify not logged")
	}
	// A tampered body under a real signature of another body is refused too.
	orig := body
	body = bytes.Replace(orig, []byte("forged-1"), []byte("forged-2"), 1)
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), paychannel.NewNonce()
	sig, _ := paychannel.Sign(payKeys.platform, paychannel.ResponseMessage(ts, nonce, orig))
	req, _ := http.NewRequest("POST", r.url+"/api/pay/notify", bytes.NewReader(body))
	req.Header.Set(paychannel.HeaderTimestamp, ts)
	req.Header.Set(paychannel.HeaderNonce, nonce)
	req.Header.Set(paychannel.HeaderSignature, sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tampered notify: %d", resp.StatusCode)
	}
	if got := r.get(p.ID); got.Status != ihos.PaymentPaying {
		t.Fatalf("after the tampered notify: %s", got.Status)
	}
	// Cancel it so it does not linger for the deadline.
	r.call("POST", "/api/pay/orders/"+p.ID+"/cancel", map[string]string{"reason": "测试结束"}, nil)
}

// The patient gives up: the order is closed at the channel and cannot be
// paid there any more.
func (r *payRig) testCancel(t *testing.T) {
	r.t = t
	r.mode(paysim.Mode{})
	res := r.order(650, "")
	var p ihos.Payment
	if code := r.call("POST", "/api/pay/orders/"+res.Payment.ID+"/cancel", map[string]string{"reason": "不想看了"}, &p); code != 200 || p.Status != ihos.PaymentCancelled {
		t.Fatalf("cancel: %d %+v", code, p)
	}
	if _, err := r.sim.Pay("", p.OutTradeNo, ""); err == nil {
		t.Fatal("a cancelled order was paid")
	}
	// The same business can be paid again afterwards.
	var again payments.PayResult
	req := cloud.OrderRequest{HospitalID: testHosp, BusinessType: p.BusinessType, BusinessID: p.BusinessID, PatientID: p.PatientID, Amount: 650}
	if code := r.call("POST", "/api/pay/orders", req, &again); code != 200 || again.Payment.ID == p.ID {
		t.Fatalf("pay again: %d %+v", code, again.Payment)
	}
	r.call("POST", "/api/pay/orders/"+again.Payment.ID+"/cancel", nil, nil)
}

// The console's list shows every payment with its amounts and status.
func (r *payRig) testAdminList(t *testing.T) {
	r.t = t
	var page payments.Page
	if code := r.call("GET", "/api/admin/payments?page_size=200", nil, &page); code != 200 {
		t.Fatalf("list: %d", code)
	}
	var raw struct {
		Items []map[string]any `json:"items"`
	}
	r.call("GET", "/api/admin/payments?page_size=200", nil, &raw)
	if page.Total < 10 || len(page.Items) != page.Total || len(raw.Items) != page.Total {
		t.Fatalf("list: total %d items %d", page.Total, len(page.Items))
	}
	statuses := map[string]int{}
	for i, it := range page.Items {
		statuses[it.Status]++
		for _, k := range []string{"total", "fund_pay", "account_pay", "cash_pay", "status", "status_label"} {
			if _, ok := raw.Items[i][k]; !ok {
				t.Fatalf("item lacks %s: %v", k, raw.Items[i])
			}
		}
		if it.FundPay+it.AccountPay+it.CashPay != it.Total || it.Channel != ihos.ChannelSelfPay {
			t.Fatalf("item %+v", it.Payment)
		}
	}
	for _, s := range []string{ihos.PaymentPaid, ihos.PaymentClosed, ihos.PaymentCancelled, ihos.PaymentRefunded, ihos.PaymentPartiallyRefunded} {
		if statuses[s] == 0 && s != ihos.PaymentPartiallyRefunded {
			t.Fatalf("no %s payment in the list: %v", s, statuses)
		}
	}
	var paidOnly payments.Page
	r.call("GET", "/api/admin/payments?status=paid", nil, &paidOnly)
	if paidOnly.Total != statuses[ihos.PaymentPaid] {
		t.Fatalf("status filter: %d, want %d", paidOnly.Total, statuses[ihos.PaymentPaid])
	}
	// Without credentials the list is refused.
	resp, err := http.Get(r.url + "/api/admin/payments")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous list: %d", resp.StatusCode)
	}
}

// Without a configured channel the service still lists, and creating a
// self-pay payment says why it cannot, recording nothing.
func TestPayWithoutChannel(t *testing.T) {
	a, err := cloud.New(context.Background(), cloud.Config{Config: node.Config{DataDir: t.TempDir(), HTTP: "127.0.0.1:0", LogLevel: "error"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Hospitals.Add(context.Background(), testHosp, "示例医院"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.Middleware(a.Handler))
	defer srv.Close()
	token, _ := os.ReadFile(filepath.Join(a.Node.Config.DataDir, node.CLITokenFile))
	r := &payRig{t: t, app: a, url: srv.URL, token: strings.TrimSpace(string(token)), hc: http.DefaultClient}
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
		Message string `json:"message"`
	}
	code := r.call("POST", "/api/pay/orders", cloud.OrderRequest{HospitalID: testHosp, BusinessType: ihos.PayVisitFee, BusinessID: "V1", PatientID: "P1", Amount: 100}, &e)
	if code != http.StatusServiceUnavailable || !strings.Contains(e.Error.Message+e.Message, "尚未配置在线支付渠道") {
		t.Fatalf("create without channel: %d %+v", code, e)
	}
	var page payments.Page
	if code := r.call("GET", "/api/admin/payments", nil, &page); code != 200 || page.Total != 0 {
		t.Fatalf("list: %d %+v", code, page)
	}
	// An unknown hospital is refused before anything else.
	if code := r.call("POST", "/api/pay/orders", cloud.OrderRequest{HospitalID: "nope", BusinessType: ihos.PayVisitFee, BusinessID: "V1", Amount: 100}, nil); code != 400 {
		t.Fatalf("unknown hospital: %d", code)
	}
}

// A payment made in the cloud reaches the hospital's appliance, whose
// console lists it from its replica.
func TestPaymentReachesAppliance(t *testing.T) {
	r := newPayRigLeaf(t, "", "127.0.0.1:0", nil)
	ctx := context.Background()
	appDir := filepath.Join(t.TempDir(), "appliance")
	if _, err := appliance.Enroll(ctx, appDir, r.url, r.code.Code); err != nil {
		t.Fatal(err)
	}
	a, err := appliance.New(ctx, appliance.Config{Config: node.Config{DataDir: appDir, LogLevel: "error"},
		CloudLeaf: r.code.LeafURL})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	as := httptest.NewServer(web.Middleware(a.Handler))
	defer as.Close()
	r.mode(paysim.Mode{AutoPay: true})
	p := r.waitStatus(r.order(1800, "oPatient9").Payment.ID, ihos.PaymentPaid, 3*time.Second)
	token, err := os.ReadFile(filepath.Join(appDir, node.CLITokenFile))
	if err != nil {
		t.Fatal(err)
	}
	onAppliance := &payRig{t: t, url: as.URL, token: strings.TrimSpace(string(token)), hc: http.DefaultClient}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var page payments.Page
		onAppliance.call("GET", "/api/admin/payments", nil, &page)
		if len(page.Items) == 1 && page.Items[0].ID == p.ID && page.Items[0].Status == ihos.PaymentPaid && page.Items[0].CashPay == 1800 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appliance lists %+v", page.Items)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
