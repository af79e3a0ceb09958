package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ihos"
	"ihos/appliance"
	"ihos/billpay"
	"ihos/cloud"
	"ihos/his/hissim"
	"ihos/internal/node"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
	"ihos/paychannel"
	"ihos/paychannel/paysim"
	"ihos/payments"
)

// payStack is the cloud with the payment channel simulator, and an enrolled
// appliance with the HIS simulator: every link a real socket.
type payStack struct {
	*system
	pay *paysim.Sim
}

// opts adjust the appliance's configuration (more simulators).
func startPayStack(t *testing.T, cloudDatabase string, opts ...func(*appliance.Config)) *payStack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	merchant, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const mchID, appID, serial, apiv3 = "1900000109", "wxd678efh567hg6787", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", "0123456789abcdef0123456789abcdef"
	ps, err := paysim.Start(ctx, paysim.Config{NotifyRetry: []time.Duration{0, 50 * time.Millisecond, 200 * time.Millisecond, time.Second},
		Merchants: []paysim.Merchant{{MchID: mchID, AppID: appID, SerialNo: serial, PublicKey: &merchant.PublicKey, APIv3Key: []byte(apiv3)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	keyFile := filepath.Join(dir, "merchant_key.pem")
	if err := os.WriteFile(keyFile, paychannel.MarshalPrivateKeyPEM(merchant), 0o600); err != nil {
		t.Fatal(err)
	}
	// The cloud's address is its notify_url: the server exists before the cloud.
	var handler atomic.Value
	cs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.Load().(http.Handler).ServeHTTP(w, r) }))
	t.Cleanup(cs.Close)
	c, err := cloud.New(ctx, cloud.Config{Config: node.Config{DataDir: filepath.Join(dir, "cloud"), Database: cloudDatabase, LogLevel: "error"}, LeafListen: "127.0.0.1:0",
		PayChannel: cloud.PayChannelConfig{URL: ps.URL(), MchID: mchID, AppID: appID, SerialNo: serial, MerchantKey: keyFile, APIv3Key: apiv3,
			PlatformCertURL: ps.URL() + "/control/platform.pem", NotifyURL: cs.URL + "/api/pay/notify", QueryAfter: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	handler.Store(web.Middleware(c.Handler))
	code, err := c.Hospitals.Add(ctx, "h1", "示例市第一人民医院")
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	appDir := filepath.Join(dir, "appliance")
	if _, err := appliance.Enroll(ctx, appDir, cs.URL, code.Code); err != nil {
		c.Close()
		t.Fatal(err)
	}
	acfg := appliance.Config{Config: node.Config{DataDir: appDir, LogLevel: "error"}, Demo: true, Credentials: filepath.Join(dir, "creds.json"), CloudLeaf: code.LeafURL}
	sim, err := hissim.Start(ctx, hissim.Config{DataDir: filepath.Join(dir, "his"), ResultDelay: -1})
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	acfg.HIS.MLLP = sim.MLLPAddr()
	for _, o := range opts {
		o(&acfg)
	}
	a, err := appliance.New(ctx, acfg)
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	as := httptest.NewServer(web.Middleware(a.Handler))
	t.Cleanup(func() { as.Close(); a.Close(); c.Close() })
	return &payStack{system: &system{cloud: c, appliance: a, cloudURL: cs.URL, appURL: as.URL, his: sim}, pay: ps}
}

// 诊间支付 from end to end: a demo patient's unpaid HIS fee (from an offline
// visit) is listed through the cloud, paid self-pay at the channel
// simulator, posted by the appliance to the HIS simulator, which no longer
// lists it as unpaid; a full refund posts the credit. The postings reach the
// cloud. The kiosk's calls over the sync link create, follow and cancel a
// payment of another patient.
func TestBillPayEndToEnd(t *testing.T) {
	for _, c := range []struct {
		engine string
		dsn    func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"mysql", func(t *testing.T) string { return sqldbtest.MySQLDSN(t) }},
	} {
		t.Run(c.engine, func(t *testing.T) { testBillPay(t, startPayStack(t, c.dsn(t))) })
	}
}

func testBillPay(t *testing.T, s *payStack) {
	ctx := context.Background()
	patient := hissim.DemoPatients[0].HISID
	var bill billpay.Bill
	eventually(t, 20*time.Second, "the unpaid fees through the cloud", func() bool {
		return s.callCloud(t, "GET", "/api/pay/bills?hospital_id=h1&his_patient_id="+patient, nil, &bill) == http.StatusOK && len(bill.Fees) > 0
	})
	fee := bill.Fees[0]
	if fee.ItemName == "" || fee.AmountFen <= 0 || fee.PaymentID != "" {
		t.Fatalf("fee %+v", fee)
	}
	var errBody map[string]any
	if code := s.callCloud(t, "POST", "/api/pay/bills", billpay.CreateRequest{HospitalID: "h1", HISPatientID: patient, OpenID: "oZhangSan"}, &errBody); code != http.StatusBadRequest {
		t.Fatalf("an empty selection: %d %v", code, errBody)
	}
	var res payments.PayResult
	if code := s.callCloud(t, "POST", "/api/pay/bills", billpay.CreateRequest{HospitalID: "h1", HISPatientID: patient, FeeIDs: []string{fee.FeeID},
		OpenID: "oZhangSan"}, &res); code != http.StatusOK || res.Payment == nil || res.Prepay == nil || res.Prepay.PrepayID == "" {
		t.Fatalf("create: %d %+v", code, res)
	}
	p := res.Payment
	if p.Total != fee.AmountFen || p.BusinessType != ihos.PayOutpatientBill {
		t.Fatalf("payment %+v", p)
	}
	if _, err := s.pay.Pay("", p.OutTradeNo, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the payment paid", func() bool {
		var got ihos.Payment
		return s.callCloud(t, "GET", "/api/pay/orders/"+p.ID, nil, &got) == http.StatusOK && got.Status == ihos.PaymentPaid
	})
	// The appliance posts the fee; the HIS settles it.
	cloudCount := func(q string, args ...any) int {
		var n int
		if err := s.cloud.Node.DB.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	took := eventually(t, 20*time.Second, "the charge accepted by the HIS, in the cloud", func() bool {
		return cloudCount(`SELECT COUNT(*) FROM bill_postings WHERE payment_id = ? AND kind = 'charge' AND status = 'accepted' AND amount_fen = ? AND hospital_id = 'h1'`,
			p.ID, p.Total) == 1
	})
	t.Logf("paid → DFT^P03 accepted → posting in the cloud in %v", took)
	if got := s.his.Received("DFT^P03"); len(got) != 1 || got[0].PatientHISID != patient || got[0].AckCode != "AA" {
		t.Fatalf("the HIS received %+v", got)
	}
	left, err := s.appliance.HIS.HIS.UnpaidFees(ctx, patient)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(left, func(f ihos.HISFee) bool { return f.FeeID == fee.FeeID }) {
		t.Fatalf("the HIS still lists %s as unpaid", fee.FeeID)
	}
	if code := s.callCloud(t, "GET", "/api/pay/bills?hospital_id=h1&his_patient_id="+patient, nil, &bill); code != http.StatusOK ||
		slices.ContainsFunc(bill.Fees, func(f billpay.Fee) bool { return f.FeeID == fee.FeeID }) {
		t.Fatalf("after paying: %d %+v", code, bill)
	}
	// A full refund is credited to the HIS once.
	var ref ihos.Refund
	if code := s.callCloud(t, "POST", "/api/admin/payments/"+p.ID+"/refunds", map[string]any{"amount": p.Total, "reason": "患者退药", "request_key": "r1"}, &ref); code != http.StatusCreated {
		t.Fatalf("refund: %d %+v", code, ref)
	}
	eventually(t, 20*time.Second, "the credit accepted by the HIS, in the cloud", func() bool {
		return cloudCount(`SELECT COUNT(*) FROM bill_postings WHERE payment_id = ? AND kind = 'credit' AND refund_id = ? AND status = 'accepted' AND amount_fen = ?`,
			p.ID, ref.ID, -p.Total) == 1
	})
	if got := s.his.Received("DFT^P03"); len(got) != 2 {
		t.Fatalf("the HIS received %d fee messages", len(got))
	}
	time.Sleep(300 * time.Millisecond)
	if n := cloudCount(`SELECT COUNT(*) FROM bill_postings WHERE payment_id = ?`, p.ID); n != 2 {
		t.Fatalf("%d postings", n)
	}

	// The kiosk: over the link, for its own hospital.
	var other string
	var kbill billpay.Bill
	for _, dp := range hissim.DemoPatients[3:] {
		if err := s.appliance.Link.Call(ctx, "h1", billpay.RPCFees, map[string]string{"his_patient_id": dp.HISID}, &kbill); err != nil {
			t.Fatal(err)
		}
		if len(kbill.Fees) > 0 {
			other = dp.HISID
			break
		}
	}
	if other == "" {
		t.Fatal("no demo patient with unpaid fees")
	}
	var kres payments.PayResult
	if err := s.appliance.Link.Call(ctx, "h1", billpay.RPCCreate, billpay.CreateRequest{HospitalID: "elsewhere", HISPatientID: other,
		FeeIDs: []string{kbill.Fees[0].FeeID}, Source: billpay.SourceKiosk}, &kres); err != nil {
		t.Fatal(err)
	}
	if kres.Payment == nil || kres.Payment.HospitalID != "h1" || kres.Prepay == nil || !strings.HasPrefix(kres.Prepay.CodeURL, "weixin://") {
		t.Fatalf("kiosk create: %+v", kres)
	}
	var kp ihos.Payment
	if err := s.appliance.Link.Call(ctx, "h1", billpay.RPCGet, map[string]any{"payment_id": kres.Payment.ID, "refresh": true}, &kp); err != nil || kp.Status != ihos.PaymentPaying {
		t.Fatalf("kiosk get: %v %+v", err, kp)
	}
	if err := s.appliance.Link.Call(ctx, "h1", billpay.RPCCancel, map[string]any{"payment_id": kres.Payment.ID}, &kp); err != nil || kp.Status != ihos.PaymentCancelled {
		t.Fatalf("kiosk cancel: %v %+v", err, kp)
	}
}
