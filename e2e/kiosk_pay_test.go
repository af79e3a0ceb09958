package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/appliance"
	"ihos/drivers/printersim"
	"ihos/einvoice/einvsim"
	"ihos/his/hissim"
	"ihos/insurance"
	"ihos/insurance/inssim"
	"ihos/internal/web"
)

// kioskClient is the kiosk's browser: a cookie jar (the pairing) and the
// patient session header.
type kioskClient struct {
	t       *testing.T
	base    string
	c       *http.Client
	session string
}

func (k *kioskClient) call(method, path string, in, out any) (int, string) {
	k.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, k.base+path, body)
	req.Header.Set("X-Kiosk", "1")
	if k.session != "" {
		req.Header.Set("X-Kiosk-Session", k.session)
	}
	res, err := k.c.Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		var e web.ErrorBody
		json.Unmarshal(b, &e)
		return res.StatusCode, e.Message
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			k.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return res.StatusCode, ""
}

// Paying at the kiosk, from end to end over real sockets: the patient shows
// the e-voucher (展码), the appliance pre-settles the HIS fee with the
// national platform simulator (1101, 2201–2206), the cloud creates the
// payment (billpay.create over the link), the insurance leg settles back on
// the appliance (2207), the cash part is a Native QR paid at the channel
// simulator; the kiosk prints the receipt, the e-invoice is issued by the
// finance platform simulator and printed, and the fee is posted to the HIS.
func TestKioskPaysHISFeeWithInsuranceAndQR(t *testing.T) {
	ctx := context.Background()
	ins, err := inssim.Start(ctx, inssim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ins.Close() })
	const einvKey = "e2e-einvoice-signing-key"
	einv, err := einvsim.Start(ctx, einvsim.Config{Key: einvKey, Payee: "示例市第一人民医院"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { einv.Close() })
	printer, err := printersim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { printer.Close() })
	s := startPayStack(t, "", func(c *appliance.Config) {
		c.Insurance.URL = ins.URL()
		c.EInvoice = appliance.EInvoiceConfig{URL: einv.ServiceURL(), AppID: einv.AppID(), Key: einvKey}
		c.DemoPrinter = printer.Addr()
	})
	a := s.appliance

	// Pair the demo kiosk as IT would, with a code from the console.
	var kioskID string
	if err := a.Node.DB.QueryRowContext(ctx, `SELECT id FROM kiosks WHERE name = '门诊大厅 1 号机'`).Scan(&kioskID); err != nil {
		t.Fatal(err)
	}
	code, err := a.Kiosk.NewPairingCode(ihos.WithActor(ctx, ihos.System), kioskID)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	k := &kioskClient{t: t, base: s.appURL, c: &http.Client{Jar: jar}}
	if status, msg := k.call("POST", "/kiosk/api/pair", map[string]string{"code": code}, nil); status != http.StatusOK {
		t.Fatalf("pair: %d %s", status, msg)
	}

	// A patient with 城乡居民医保 (no personal account: the fund pays part,
	// the rest is cash) who owes the HIS fees.
	var patient hissim.DemoPatient
	for _, p := range hissim.DemoPatients {
		person, ok := ins.Person(p.IDNumber)
		if !ok || person.Insutype != insurance.InsutypeResident || p.HISID == inssim.PausedHISID {
			continue
		}
		if fees, err := a.HIS.HIS.UnpaidFees(ctx, p.HISID); err == nil && len(fees) > 0 {
			patient = p
			break
		}
	}
	if patient.HISID == "" {
		t.Fatal("no resident-insured demo patient owes fees")
	}
	tok, err := ins.IssueECToken(patient.IDNumber, 0)
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		Session string `json:"session"`
		Pay     bool   `json:"pay"`
		Fees    []struct {
			FeeID  string `json:"fee_id"`
			Item   string `json:"item"`
			Amount string `json:"amount"`
		} `json:"fees"`
	}
	if status, msg := k.call("POST", "/kiosk/api/identify", map[string]string{"method": "voucher", "value": tok.QR}, &o); status != http.StatusOK {
		t.Fatalf("identify by e-voucher: %d %s", status, msg)
	}
	k.session = o.Session
	if !o.Pay || len(o.Fees) == 0 || o.Fees[0].FeeID == "" {
		t.Fatalf("overview: %+v", o)
	}
	fee := o.Fees[0]

	// The pre-settlement the patient is shown.
	var q struct {
		QuoteID string `json:"quote_id"`
		Total   string `json:"total"`
		Fund    string `json:"fund"`
		Account string `json:"account"`
		Cash    string `json:"cash"`
	}
	if status, msg := k.call("POST", "/kiosk/api/pay/quote", map[string]any{"fee_ids": []string{fee.FeeID}, "ec_token": tok.QR}, &q); status != http.StatusOK {
		t.Fatalf("quote: %d %s", status, msg)
	}
	if q.Total != fee.Amount || q.Fund == "0.00" || q.Cash == "0.00" {
		t.Fatalf("quote %+v for fee %+v: want an insurance part and a cash part", q, fee)
	}
	t.Logf("pre-settlement of %s 元: fund %s, account %s, cash %s", q.Total, q.Fund, q.Account, q.Cash)

	type payView struct {
		PaymentID string `json:"payment_id"`
		Status    string `json:"status"`
		Message   string `json:"message"`
		Fund      string `json:"fund"`
		Account   string `json:"account"`
		Cash      string `json:"cash"`
		QR        string `json:"qr"`
		Receipt   string `json:"receipt"`
		Invoice   string `json:"invoice"`
	}
	var pv payView
	if status, msg := k.call("POST", "/kiosk/api/pay", map[string]string{"quote_id": q.QuoteID}, &pv); status != http.StatusOK {
		t.Fatalf("pay: %d %s", status, msg)
	}
	if pv.PaymentID == "" || pv.Status != ihos.PaymentPaying || pv.QR == "" || pv.Cash != q.Cash || pv.Fund != q.Fund {
		t.Fatalf("payment started %+v", pv)
	}
	var again payView
	// A double tap is the same payment, or refused while it is under way.
	switch status, msg := k.call("POST", "/kiosk/api/pay", map[string]string{"quote_id": q.QuoteID}, &again); {
	case status == http.StatusOK && again.PaymentID != pv.PaymentID:
		t.Fatalf("a second tap made payment %s besides %s", again.PaymentID, pv.PaymentID)
	case status != http.StatusOK && status != http.StatusConflict:
		t.Fatalf("a second tap: %d %s", status, msg)
	}

	// The patient scans the QR code and pays the cash part.
	var outTradeNo string
	if err := s.cloud.Node.DB.QueryRowContext(ctx, `SELECT out_trade_no FROM payments WHERE id = ?`, pv.PaymentID).Scan(&outTradeNo); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pay.Pay("", outTradeNo, ""); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 60*time.Second, "paid, receipt and e-invoice printed", func() bool {
		k.call("GET", "/kiosk/api/pay/"+pv.PaymentID, nil, &pv)
		return pv.Status == ihos.PaymentPaid && pv.Receipt == "printed" && pv.Invoice == "printed"
	})
	t.Logf("channel paid → receipt and e-invoice printed in %v", took)

	// Two tickets: the receipt with the split and the e-invoice with its QR.
	tickets := printer.Tickets()
	if len(tickets) != 2 {
		t.Fatalf("%d tickets printed, want 2", len(tickets))
	}
	receipt, invoice := strings.Join(tickets[0].Lines, "\n"), strings.Join(tickets[1].Lines, "\n")
	for _, want := range []string{"医保统筹", q.Fund, q.Cash, outTradeNo} {
		if !strings.Contains(receipt, want) {
			t.Errorf("receipt lacks %q:\n%s", want, receipt)
		}
	}
	bills := einv.Bills()
	if len(bills) != 1 {
		t.Fatalf("%d e-invoices issued, want 1", len(bills))
	}
	if !strings.Contains(invoice, bills[0].No) {
		t.Errorf("e-invoice ticket lacks bill number %s:\n%s", bills[0].No, invoice)
	}

	// The insurance leg was settled once at the platform, the fee posted to
	// the HIS once.
	if n := len(ins.Settlements()); n != 1 {
		t.Errorf("%d settlements at the insurance platform, want 1", n)
	}
	eventually(t, 20*time.Second, "the fee posted to the HIS", func() bool {
		var n int
		a.Node.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM bill_postings WHERE payment_id = ? AND kind = 'charge' AND status = 'accepted'`, pv.PaymentID).Scan(&n)
		return n == 1
	})
	left, err := a.HIS.HIS.UnpaidFees(ctx, patient.HISID)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range left {
		if f.FeeID == fee.FeeID {
			t.Fatalf("the HIS still lists %s as unpaid", fee.FeeID)
		}
	}
}
