package e2e

import (
	"context"
	"crypto/rand"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/appliance"
	"ihos/certs"
	"ihos/cloud"
	"ihos/insurance/inssim"
	"ihos/insurance/mobile/mobilesim"
	"ihos/insurance/settle"
	"ihos/internal/node"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
	"ihos/payments"
)

// insRig is a cloud and an enrolled appliance whose insurance line reaches
// the mobile payment centre simulator, over real sockets: the cloud asks the
// appliance through the sync RPC, the centre notifies the appliance.
type insRig struct {
	*system
	mob *mobilesim.Sim
	ins *inssim.Sim
}

func startInsurance(t *testing.T, cloudDatabase string) *insRig {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	orgKey, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const appID, appSecret, orgCodg = "1GE2EAPPID00000000000000000000", "E2ESECRET0000000000000000000000X", "H11010500123"
	mob, err := mobilesim.Start(ctx, mobilesim.Config{AppID: appID, AppSecret: appSecret, OrgCodg: orgCodg, OrgPub: &orgKey.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mob.Close() })
	ins, err := inssim.Start(ctx, inssim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ins.Close() })
	keyPEM, err := certs.MarshalPrivateKeyPEM(orgKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "org-key.pem")
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	der, err := smx509.MarshalPKIXPublicKey(mob.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	// The centre's key as a credentials file holds it: one line, "\n" escaped.
	centrePub := strings.ReplaceAll(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "\n", `\n`)

	// QueryAfter is long: a payment that completes within seconds did so by
	// the notify and the appliance's call back, not by the resolver's query.
	c, err := cloud.New(ctx, cloud.Config{Config: node.Config{DataDir: filepath.Join(dir, "cloud"), Database: cloudDatabase, LogLevel: "error"},
		LeafListen: "127.0.0.1:0", PayChannel: cloud.PayChannelConfig{QueryAfter: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	cs := httptest.NewServer(web.Middleware(c.Handler))
	code, err := c.Hospitals.Add(ctx, "h1", "示例市第一人民医院")
	if err != nil {
		t.Fatal(err)
	}
	appDir := filepath.Join(dir, "appliance")
	if _, err := appliance.Enroll(ctx, appDir, cs.URL, code.Code); err != nil {
		t.Fatal(err)
	}
	acfg := appliance.Config{Config: node.Config{DataDir: appDir, LogLevel: "error"}, Demo: true,
		Credentials: filepath.Join(dir, "creds.json"), CloudLeaf: code.LeafURL}
	acfg.Insurance.Mobile = appliance.InsuranceMobileConfig{URL: mob.URL(), AppID: appID, AppSecret: appSecret, OrgCodg: orgCodg,
		OrgKeyFile: keyFile, CentrePub: centrePub}
	acfg.Insurance.URL = ins.URL()
	a, err := appliance.New(ctx, acfg)
	if err != nil {
		cs.Close()
		c.Close()
		t.Fatal(err)
	}
	as := httptest.NewServer(web.Middleware(a.Handler))
	t.Cleanup(func() { as.Close(); cs.Close(); a.Close(); c.Close() })
	mob.SetNotifyURL(as.URL + settle.NotifyPath)
	return &insRig{system: &system{cloud: c, appliance: a, cloudURL: cs.URL, appURL: as.URL}, mob: mob, ins: ins}
}

// quote asks the cloud for a mobile pre-settlement for 张三, as the phone
// does after the insurance authorisation in WeChat.
func (r *insRig) quote(t *testing.T, amount int64) (settle.Quote, string) {
	t.Helper()
	auth, err := r.mob.Authorize("110101199003078515")
	if err != nil {
		t.Fatal(err)
	}
	var q settle.Quote
	body := map[string]any{"hospital_id": "h1", "patient_id": "pat-zs", "pay_auth_no": auth.PayAuthNo, "uld_latlnt": auth.UldLatlnt, "amount": amount}
	eventually(t, 15*time.Second, "a quote through the appliance (once linked)", func() bool {
		return r.callCloud(t, "POST", "/api/pay/insurance/quote", body, &q) == http.StatusOK
	})
	return q, auth.PayAuthNo
}

func (r *insRig) order(t *testing.T, q settle.Quote, payAuthNo, businessID string) payments.PayResult {
	t.Helper()
	var res payments.PayResult
	code := r.callCloud(t, "POST", "/api/pay/orders", map[string]any{"hospital_id": "h1", "business_type": ihos.PayConsultation,
		"business_id": businessID, "patient_id": "pat-zs", "amount": q.Total, "channel": ihos.ChannelInsuranceMobile,
		"quote_id": q.ID, "pay_auth_no": payAuthNo}, &res)
	if code != http.StatusOK || res.Payment == nil {
		t.Fatalf("order: %d %+v", code, res)
	}
	return res
}

// A phone pays a consultation with 医保移动支付: the cloud gets the quote and
// settles through the appliance (6201/6202 at the centre), the payment ends
// paid with the centre's fund and account split, and the settlement
// replicates to the cloud. A refund goes back the same way (6203). A
// settlement the centre answers "pending" is completed by its 6302 notify to
// the appliance, which tells the cloud at once.
func TestInsuranceMobilePaymentThroughAppliance(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testInsuranceMobilePayment(t, "") })
	t.Run("mysql", func(t *testing.T) { testInsuranceMobilePayment(t, sqldbtest.MySQLDSN(t)) })
}

func testInsuranceMobilePayment(t *testing.T, dsn string) {
	r := startInsurance(t, dsn)
	q, payAuthNo := r.quote(t, 10000)
	if q.Split != (ihos.Split{Fund: 7000, Account: 3000}) || q.Total != 10000 {
		t.Fatalf("quote %+v", q)
	}
	res := r.order(t, q, payAuthNo, "C-1")
	p := res.Payment
	if p.Status != ihos.PaymentPaid || p.FundPay != 7000 || p.AccountPay != 3000 || p.CashPay != 0 || p.Channel != ihos.ChannelInsuranceMobile {
		t.Fatalf("payment %+v", p)
	}
	var payOrdID string
	eventually(t, 10*time.Second, "the settlement replicated to the cloud", func() bool {
		return r.cloud.Node.DB.QueryRow(`SELECT setl_id FROM insurance_settlements WHERE kind = 'settle' AND leg_key = ? AND status = 'settled'
			AND fund_pay = 7000 AND account_pay = 3000 AND hospital_id = 'h1'`, p.InsuranceKey).Scan(&payOrdID) == nil
	})
	if o, ok := r.mob.Order(payOrdID); !ok || o.OrdStas != mobilesim.StasSettled || o.FundFen != 7000 || o.AcctFen != 3000 {
		t.Fatalf("centre order %+v", o)
	}
	// The state (with the patient's tokens) stays on the appliance.
	var state string
	r.cloud.Node.DB.QueryRow(`SELECT state FROM insurance_settlements WHERE leg_key = ?`, p.InsuranceKey).Scan(&state)
	if strings.Contains(state, payAuthNo) {
		t.Fatal("the flow state reached the cloud")
	}

	var refund ihos.Refund
	if code := r.callCloud(t, "POST", "/api/admin/payments/"+p.ID+"/refunds", map[string]any{"amount": 10000, "reason": "患者取消"}, &refund); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("refund: %d %+v", code, refund)
	}
	if refund.Status != ihos.RefundSucceeded {
		t.Fatalf("refund %+v", refund)
	}
	if o, _ := r.mob.Order(payOrdID); o.RefdFund != 7000 || o.RefdAcct != 3000 || o.OrdStas != mobilesim.StasRefunded {
		t.Fatalf("centre order after the refund %+v", o)
	}

	// Pending at the centre: the notify settles it, the appliance tells the cloud.
	if err := r.mob.SetMode(mobilesim.Mode{Name: mobilesim.ModeUp, PendingFor: 200 * time.Millisecond, Notify: mobilesim.NotifyNormal}); err != nil {
		t.Fatal(err)
	}
	q2, auth2 := r.quote(t, 2000)
	res = r.order(t, q2, auth2, "C-2")
	if res.Payment.Status != ihos.PaymentPaying {
		t.Fatalf("pending payment %+v", res.Payment)
	}
	var got ihos.Payment
	eventually(t, 10*time.Second, "the notified payment paid in the cloud", func() bool {
		return r.callCloud(t, "GET", "/api/pay/orders/"+res.Payment.ID, nil, &got) == http.StatusOK && got.Status == ihos.PaymentPaid
	})
	if got.FundPay != 1400 || got.AccountPay != 600 || got.CashPay != 0 {
		t.Fatalf("notified payment %+v", got)
	}
}

// The kiosk's 展码 path through the cloud: the e-voucher's pre-settlement
// (1101 … 2206 on the appliance), the settlement (2207) when the order is
// paid, the day's 3201 check asked from the cloud, and the refund (2208).
func TestInsuranceSitePaymentThroughAppliance(t *testing.T) {
	r := startInsurance(t, "")
	tok, err := r.ins.IssueECToken("110101199003078515", 0)
	if err != nil {
		t.Fatal(err)
	}
	var q settle.Quote
	body := map[string]any{"hospital_id": "h1", "patient_id": "pat-zs", "channel": ihos.ChannelInsuranceSite, "ec_token": tok.QR, "amount": 20000}
	eventually(t, 15*time.Second, "a quote through the appliance (once linked)", func() bool {
		return r.callCloud(t, "POST", "/api/pay/insurance/quote", body, &q) == http.StatusOK
	})
	// 职工医保: 50.00 deductible, then 70 % of the rest; the account pays the remainder.
	if q.Split != (ihos.Split{Fund: 10500, Account: 9500}) {
		t.Fatalf("quote %+v", q)
	}
	var res payments.PayResult
	code := r.callCloud(t, "POST", "/api/pay/orders", map[string]any{"hospital_id": "h1", "business_type": ihos.PayClinicOrder,
		"business_id": "B-1", "patient_id": "pat-zs", "channel": ihos.ChannelInsuranceSite, "quote_id": q.ID}, &res)
	if code != http.StatusOK || res.Payment == nil || res.Payment.Status != ihos.PaymentPaid || res.Payment.FundPay != 10500 || res.Payment.AccountPay != 9500 {
		t.Fatalf("order: %d %+v", code, res.Payment)
	}
	if s := r.ins.Settlements(); len(s) != 1 || s[0].Status != inssim.SetlSettled || s[0].FundFen != 10500 {
		t.Fatalf("platform %+v", s)
	}
	day := time.Now().In(ihos.Shanghai).Format("2006-01-02")
	var st settle.Statement
	if code := r.callCloud(t, "GET", "/api/admin/insurance/statement?hospital_id=h1&day="+day, nil, &st); code != http.StatusOK || !st.Balanced {
		t.Fatalf("statement: %d %+v", code, st)
	}
	var refund ihos.Refund
	if code := r.callCloud(t, "POST", "/api/admin/payments/"+res.Payment.ID+"/refunds", map[string]any{"amount": 20000, "reason": "退费"}, &refund); code >= 300 || refund.Status != ihos.RefundSucceeded {
		t.Fatalf("refund: %d %+v", code, refund)
	}
	if s := r.ins.Settlements(); s[0].Status != inssim.SetlCancelled {
		t.Fatalf("platform after the refund %+v", s)
	}
}
