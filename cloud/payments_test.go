package cloud_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ihos"
	"ihos/cloud"
	"ihos/cloud/cloudtest"
	"ihos/internal/web"
	"ihos/paychannel"
	"ihos/paychannel/paysim"
	"ihos/payments"
)

// payRig is the payment channel simulator and a cloud wired to it, over
// real sockets: the cloud calls the simulator's API, the simulator POSTs its
// notifies to the cloud's HTTP server.
type payRig struct {
	parts
	sim    *paysim.Sim
	client *paychannel.Client
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
	return payRigOf(cloudtest.Start(t, cloudtest.Options{DSN: dsn, LeafListen: leafListen, Pay: true, AdjustPay: adjust, MaxIdleConnsPerHost: 256}))
}

func payRigOf(c *cloudtest.Cloud) *payRig {
	return &payRig{parts: partsOf(c), sim: c.Pay, client: c.PayClient, code: c.Code}
}

// call calls the cloud's API as staff (the command-line token) and decodes
// the answer, success or refusal, into out; it returns the status.
func (r *payRig) call(method, path string, body, out any) int {
	r.t.Helper()
	resp, err := r.Send(method, path, body, r.CLI())
	if err != nil {
		r.t.Fatal(err)
	}
	if out != nil && len(resp.Body) > 0 {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			r.t.Fatalf("%s %s: %d %s: %v", method, path, resp.Status, resp.Body, err)
		}
	}
	return resp.Status
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
	r.PayMode(m)
}

// TestPayThroughChannel runs the self-pay journeys through the cloud and the
// channel simulator, on SQLite and (with IHOS_MYSQL_DSN) on MariaDB.
func TestPayThroughChannel(t *testing.T) {
	cloudtest.Engines(t, func(t *testing.T, dsn string) {
		r := newPayRig(t, dsn, func(pc *cloud.PayChannelConfig) {
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
	tx := paychannel.Transaction{AppID: cloudtest.AppID, MchID: cloudtest.MchID, OutTradeNo: p.OutTradeNo, TransactionID: "4200FORGED",
		TradeType: "JSAPI", TradeState: paychannel.TradeSuccess, SuccessTime: time.Now().Format(time.RFC3339), Amount: paychannel.Amount{Total: 4000}}
	plain, _ := json.Marshal(tx)
	resource, err := paychannel.EncryptResource([]byte(cloudtest.APIv3), "transaction", "transaction", plain)
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
	if code := send(cloudtest.PayKeys().Wrong); code != http.StatusUnauthorized {
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
	sig, _ := paychannel.Sign(cloudtest.PayKeys().Platform, paychannel.ResponseMessage(ts, nonce, orig))
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
	r := payRigOf(cloudtest.Start(t, cloudtest.Options{}))
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
	a, appDir := enrollAppliance(t, r.url, r.code)
	as := httptest.NewServer(web.Middleware(a.Handler))
	defer as.Close()
	r.mode(paysim.Mode{AutoPay: true})
	p := r.waitStatus(r.order(1800, "oPatient9").Payment.ID, ihos.PaymentPaid, 3*time.Second)
	onAppliance := payRigOf(cloudtest.Dial(t, as.URL, appDir))
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
