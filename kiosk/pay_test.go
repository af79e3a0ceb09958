package kiosk

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"ihos"
	"ihos/drivers/escpos"
	"ihos/tickets"
)

// fakeCashier is the payment service and the insurance as the kiosk sees
// them: quotes pre-settle 60 % to the fund and up to ¥10 from the account;
// payments stay paying until the test pays, fails or closes them.
type fakeCashier struct {
	mu       sync.Mutex
	quotes   []QuoteRequest
	pays     []PayRequest
	cancels  []string
	payments map[string]*ihos.Payment
	codes    map[string]string
	invoices map[string]Invoice
	payDelay time.Duration // how long Pay takes (a slow insurance settlement)
	// settle is the split the insurance settles on Pay; nil: the quoted one.
	settle func(ihos.Split) ihos.Split
	down   bool
}

func newCashier() *fakeCashier {
	return &fakeCashier{payments: map[string]*ihos.Payment{}, codes: map[string]string{}, invoices: map[string]Invoice{}}
}

func presettle(total int64) ihos.Split {
	fund := total * 6 / 10
	account := min(total-fund, 1000)
	return ihos.Split{Fund: fund, Account: account, Cash: total - fund - account}
}

func (c *fakeCashier) Quote(_ context.Context, q QuoteRequest) (Quote, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return Quote{}, ihos.Errorf(ihos.EUnavailable, "医保系统暂时无法连接")
	}
	c.quotes = append(c.quotes, q)
	if q.ECToken == "" {
		return Quote{Total: q.Total, Split: ihos.Split{Cash: q.Total}}, nil
	}
	return Quote{ID: "Q-" + ihos.NewID(), Total: q.Total, Split: presettle(q.Total), ExpiresAt: time.Now().Add(time.Hour)}, nil
}

func (c *fakeCashier) Pay(_ context.Context, p PayRequest) (Started, error) {
	time.Sleep(c.payDelay)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pays = append(c.pays, p)
	split := p.Split
	if c.settle != nil {
		split = c.settle(split)
	}
	channel := ihos.ChannelSelfPay
	if p.ECToken != "" {
		channel = ihos.ChannelInsuranceSite
	}
	id := ihos.NewID()
	pay := &ihos.Payment{ID: id, BusinessType: ihos.PayOutpatientBill, Channel: channel, Total: p.Total,
		FundPay: split.Fund, AccountPay: split.Account, CashPay: split.Cash, Status: ihos.PaymentPaying,
		OutTradeNo: "P" + strings.ReplaceAll(id, "-", "")[:20], Deadline: time.Now().Add(15 * time.Minute)}
	if split != p.Split {
		pay.NeedsConfirm = true
	}
	st := Started{PaymentID: id, Status: pay.Status, Split: split, Deadline: pay.Deadline}
	if split.Cash == 0 {
		pay.Status, pay.PaidAt = ihos.PaymentPaid, time.Now()
		st.Status = pay.Status
	} else if !pay.NeedsConfirm {
		st.CodeURL = "weixin://wxpay/bizpayurl?pr=" + id[:8]
	}
	c.payments[id] = pay
	return st, nil
}

func (c *fakeCashier) Status(_ context.Context, id string) (ihos.Payment, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.payments[id]
	if !ok {
		return ihos.Payment{}, ihos.Errorf(ihos.ENotFound, "支付订单不存在")
	}
	return *p, nil
}

func (c *fakeCashier) Cancel(_ context.Context, id string) (ihos.Payment, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancels = append(c.cancels, id)
	p, ok := c.payments[id]
	if !ok {
		return ihos.Payment{}, ihos.Errorf(ihos.ENotFound, "支付订单不存在")
	}
	if ihos.PaymentActive(p.Status) {
		p.Status = ihos.PaymentCancelled
	}
	return *p, nil
}

func (c *fakeCashier) Invoice(_ context.Context, id string) (Invoice, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	inv, ok := c.invoices[id]
	if !ok {
		return Invoice{}, ihos.Errorf(ihos.ENotFound, "未开票")
	}
	return inv, nil
}

// set changes a payment as the payment service would.
func (c *fakeCashier) set(id, status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.payments[id]
	p.Status = status
	if status == ihos.PaymentPaid {
		p.PaidAt = time.Now()
	}
}

func (c *fakeCashier) issue(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invoices[id] = Invoice{Status: InvoiceIssued, BillCode: "11060125", BillNo: "0003267841", CheckCode: "8a3f2c",
		QRCode: "https://pjcy.example.gov.cn/check?no=0003267841", IssuedAt: time.Now(), Payee: "收费处"}
}

func (c *fakeCashier) counts() (quotes, pays, cancels int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.quotes), len(c.pays), len(c.cancels)
}

// payRig is a paired kiosk with a cashier and 张三 identified.
func payRig(t *testing.T, idle int) (*rig, *device, *fakeCashier) {
	t.Helper()
	r := newRig(t)
	c := newCashier()
	r.svc.Cashier = c
	r.svc.Vouchers = fakeVouchers{"ec-zhangsan": "110101199003078515", "ec-lisi": "110101199003078523"}
	r.his.patients = append(r.his.patients, ihos.HISPatient{HISID: "P2", Name: "李四", IDNumber: "110101199003078523"})
	r.his.fees["P2"] = []ihos.HISFee{{FeeID: "F9", ItemName: "胸部CT", Quantity: "1", AmountFen: 30000}}
	id := r.addKiosk("1 号机", "printer-1", idle)
	d := r.device()
	d.pair(id)
	o, status, msg := d.identify(ByIDNumber, "110101199003078515")
	if status != 200 {
		t.Fatalf("identify: %d %q", status, msg)
	}
	if !o.Pay || o.PayHint != msgPayHere || o.Fees[0].FeeID != "F1" {
		t.Fatalf("overview with a cashier: %+v", o)
	}
	return r, d, c
}

func (d *device) quote(token string, fees ...string) (quoteView, int, string) {
	d.r.t.Helper()
	var q quoteView
	status, msg := d.call("POST", "/kiosk/api/pay/quote", map[string]any{"fee_ids": fees, "ec_token": token}, &q)
	return q, status, msg
}

func (d *device) pay(quoteID string) (payView, int, string) {
	d.r.t.Helper()
	var v payView
	status, msg := d.call("POST", "/kiosk/api/pay", map[string]string{"quote_id": quoteID}, &v)
	return v, status, msg
}

func (d *device) poll(id string) payView {
	d.r.t.Helper()
	var v payView
	if status, msg := d.call("GET", "/kiosk/api/pay/"+id, nil, &v); status != 200 {
		d.r.t.Fatalf("poll %s: %d %q", id, status, msg)
	}
	return v
}

// printed decodes the ESC/POS of the i-th job the fake printer got.
func printed(t *testing.T, r *rig, i int) *escpos.Ticket {
	t.Helper()
	r.printer.mu.Lock()
	tk := r.printer.jobs[i].ticket
	r.printer.mu.Unlock()
	b, err := tickets.Render(tk, tickets.Format{PaperMM: 80, CodePage: "GB18030"})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := escpos.Decode(b, "GB18030")
	if err != nil {
		t.Fatal(err)
	}
	return dec
}

func jobCount(r *rig) int {
	r.printer.mu.Lock()
	defer r.printer.mu.Unlock()
	return len(r.printer.jobs)
}

// hasLines checks that every want is within one line of the ticket.
func hasLines(t *testing.T, what string, tk *escpos.Ticket, want ...string) {
	t.Helper()
	text := strings.Join(tk.Lines, "\n")
	for _, w := range want {
		ok := false
		for _, l := range tk.Lines {
			if strings.Contains(strings.Join(strings.Fields(l), " "), w) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s: no line with %q in\n%s", what, w, text)
		}
	}
}

func TestPaySelfPay(t *testing.T) {
	r, d, c := payRig(t, 60)
	q, status, msg := d.quote("", "F1", "F2")
	if status != 200 || q.Total != "43.30" || q.Cash != "43.30" || q.Fund != "0.00" || q.Insurance || q.Count != 2 {
		t.Fatalf("quote: %d %q %+v", status, msg, q)
	}
	if got := c.quotes[0]; got.HISPatientID != "P000001" || got.Total != 4330 || len(got.Fees) != 2 || got.FeeIDs[1] != "F2" || got.ECToken != "" {
		t.Errorf("quote request %+v", got)
	}
	v, status, msg := d.pay(q.QuoteID)
	if status != 200 || v.Status != ihos.PaymentPaying || v.QR == "" || v.Cash != "43.30" || v.ExpiresIn != int(payWindow/time.Second) {
		t.Fatalf("pay: %d %q %+v", status, msg, v)
	}
	if p := c.pays[0]; p.Key != q.QuoteID || p.Split.Cash != 4330 || p.HISPatientID != "P000001" {
		t.Errorf("pay request %+v", p)
	}
	// The QR code is an image of the channel's code URL.
	res, err := d.c.Get(r.srv.URL + v.QR)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("qr: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if img, err := png.Decode(bytes.NewReader(b)); err != nil || img.Bounds().Dx() < 200 {
		t.Fatalf("qr image: %v", err)
	}
	// Another device (not this kiosk) cannot fetch it.
	other := r.device()
	if res, err := other.c.Get(r.srv.URL + v.QR); err != nil || res.StatusCode != 403 {
		t.Errorf("qr from an unpaired device: %v %v", res.StatusCode, err)
	}

	if v = d.poll(v.PaymentID); v.Status != ihos.PaymentPaying || v.Receipt != "" || jobCount(r) != 0 {
		t.Fatalf("waiting: %+v", v)
	}
	c.set(v.PaymentID, ihos.PaymentPaid)
	v = d.poll(v.PaymentID)
	if v.Status != ihos.PaymentPaid || v.QR != "" || v.Receipt != JobPrinted || v.Invoice != "" {
		t.Fatalf("paid: %+v", v)
	}
	for range 3 {
		d.poll(v.PaymentID)
	}
	if n := jobCount(r); n != 1 {
		t.Fatalf("%d jobs after paying, want the receipt only", n)
	}
	rc := printed(t, r, 0)
	hasLines(t, "receipt", rc, "演示人民医院", "门诊缴费凭条", "患者姓名：张三", "血常规", "阿司匹林肠溶片", "合计 ￥43.30",
		"医保统筹支付 ￥0.00", "个人账户支付 ￥0.00", "个人现金支付 ￥43.30", "支付渠道 自费支付", "收费员 自助机 1 号机",
		"收据号："+c.payments[v.PaymentID].OutTradeNo)
	if j := r.printer.jobs[0]; j.printer != "printer-1" || j.patient != "P000001" || !strings.HasPrefix(j.source, "kiosk:") {
		t.Errorf("receipt job %+v", j)
	}

	c.issue(v.PaymentID)
	v = d.poll(v.PaymentID)
	if v.Invoice != JobPrinted {
		t.Fatalf("invoice issued: %+v", v)
	}
	for range 3 {
		d.poll(v.PaymentID)
	}
	if n := jobCount(r); n != 2 {
		t.Fatalf("%d jobs, want the receipt and the invoice once each", n)
	}
	inv := printed(t, r, 1)
	hasLines(t, "invoice", inv, "医疗门诊收费电子票据", "票据代码：11060125", "票据号码：0003267841", "校验码：8a3f2c", "交款人：张三",
		"合计 ￥43.30", "个人现金支付 ￥43.30")
	if len(inv.QRCodes) != 1 || inv.QRCodes[0] != "https://pjcy.example.gov.cn/check?no=0003267841" {
		t.Errorf("invoice QR %v", inv.QRCodes)
	}
	// The printed tickets are offered for reprinting through the usual path.
	var o Overview
	d.call("GET", "/kiosk/api/overview", nil, &o)
	if len(o.Tickets) != 2 {
		t.Fatalf("tickets %+v", o.Tickets)
	}
	// The HIS still lists the fees until the payment is posted to it: the
	// kiosk does not offer them again.
	if len(o.Fees) != 0 || o.FeeTotal != "0.00" {
		t.Errorf("fees after paying them: %+v %s", o.Fees, o.FeeTotal)
	}
	if _, status, msg := d.quote("", "F1"); status != 409 || msg != msgFeeGone {
		t.Errorf("paying a paid fee again: %d %q", status, msg)
	}
	var job jobView
	if status, msg := d.call("POST", "/kiosk/api/reprint", map[string]string{"job_id": o.Tickets[1].JobID}, &job); status != 200 {
		t.Fatalf("reprint: %d %q", status, msg)
	}
	if _, ok := r.printer.jobs[2].ticket.(tickets.Receipt); !ok {
		t.Errorf("reprinted %T", r.printer.jobs[2].ticket)
	}
	// A paid payment's QR code is gone; paying the same quote again is the
	// same payment, not a second one.
	if res, _ := d.c.Get(r.srv.URL + "/kiosk/api/pay/" + v.PaymentID + "/qr.png"); res.StatusCode != 404 {
		t.Errorf("qr of a paid payment: %d", res.StatusCode)
	}
	if again, status, _ := d.pay(q.QuoteID); status != 200 || again.PaymentID != v.PaymentID {
		t.Errorf("pay again: %d %+v", status, again)
	}
	if _, pays, _ := c.counts(); pays != 1 {
		t.Errorf("%d Pay calls", pays)
	}
	got := strings.Join(auditActions(t, r, r.printer.jobs[0].source[len("kiosk:"):]), "; ")
	if strings.Count(got, "print kiosk:1 号机") != 3 {
		t.Errorf("audit: %s", got)
	}
}

func TestPayInsurance(t *testing.T) {
	r, d, c := payRig(t, 60)
	// 4330: fund 2598, account 1000, cash 732.
	q, status, msg := d.quote("ec-zhangsan", "F1", "F2")
	if status != 200 || !q.Insurance || q.Fund != "25.98" || q.Account != "10.00" || q.Cash != "7.32" || q.Total != "43.30" {
		t.Fatalf("quote: %d %q %+v", status, msg, q)
	}
	if c.quotes[0].ECToken != "ec-zhangsan" || c.quotes[0].IDNumber != "110101199003078515" {
		t.Errorf("quote request %+v", c.quotes[0])
	}
	v, status, msg := d.pay(q.QuoteID)
	if status != 200 || v.QR == "" || v.Cash != "7.32" || v.Fund != "25.98" {
		t.Fatalf("pay: %d %q %+v", status, msg, v)
	}
	if p := c.pays[0]; p.QuoteID != c.payments[v.PaymentID].ID && p.QuoteID == "" || p.Split != presettle(4330) || p.ECToken != "ec-zhangsan" {
		t.Errorf("pay request %+v", p)
	}
	c.set(v.PaymentID, ihos.PaymentPaid)
	if v = d.poll(v.PaymentID); v.Status != ihos.PaymentPaid || v.Receipt != JobPrinted {
		t.Fatalf("paid %+v", v)
	}
	hasLines(t, "receipt", printed(t, r, 0), "合计 ￥43.30", "医保统筹支付 ￥25.98", "个人账户支付 ￥10.00", "个人现金支付 ￥7.32",
		"支付渠道 医保电子凭证+扫码支付")

	// Another person's voucher, an unreadable one.
	// (F1 and F2 are paid now; F3 is new.)
	r.his.mu.Lock()
	r.his.fees["P000001"] = append(r.his.fees["P000001"], ihos.HISFee{FeeID: "F3", ItemName: "尿常规", Quantity: "1", AmountFen: 1500})
	r.his.mu.Unlock()
	if _, status, msg := d.quote("ec-lisi", "F3"); status != 403 || msg != msgOtherPerson {
		t.Errorf("another person's voucher: %d %q", status, msg)
	}
	if _, status, msg := d.quote("ec-stale", "F3"); status != 400 || msg != msgBadVoucher {
		t.Errorf("stale voucher: %d %q", status, msg)
	}
	c.mu.Lock()
	c.down = true
	c.mu.Unlock()
	if _, status, msg := d.quote("ec-zhangsan", "F3"); status != 503 || msg != "医保系统暂时无法连接" {
		t.Errorf("insurance down: %d %q", status, msg)
	}
}

func TestPayInsuranceOnly(t *testing.T) {
	r, d, c := payRig(t, 60)
	r.his.mu.Lock()
	r.his.fees["P000001"] = []ihos.HISFee{{FeeID: "F5", VisitNo: "V20250101001", ItemName: "门诊诊查费", Quantity: "1", AmountFen: 1000}}
	r.his.mu.Unlock()
	c.settle = func(s ihos.Split) ihos.Split { return s }
	// 1000: fund 600, account 400, cash 0.
	q, status, msg := d.quote("ec-zhangsan", "F5")
	if status != 200 || q.Cash != "0.00" || q.Account != "4.00" {
		t.Fatalf("quote: %d %q %+v", status, msg, q)
	}
	v, status, msg := d.pay(q.QuoteID)
	if status != 200 || v.Status != ihos.PaymentPaid || v.QR != "" || v.Receipt != JobPrinted {
		t.Fatalf("pay: %d %q %+v", status, msg, v)
	}
	d.poll(v.PaymentID)
	if n := jobCount(r); n != 1 {
		t.Fatalf("%d jobs", n)
	}
	hasLines(t, "receipt", printed(t, r, 0), "就诊号：V20250101001", "门诊诊查费", "医保统筹支付 ￥6.00", "个人账户支付 ￥4.00", "个人现金支付 ￥0.00",
		"支付渠道 医保电子凭证")
}

func TestPayCancelAndTimeout(t *testing.T) {
	r, d, c := payRig(t, 600)
	q, _, _ := d.quote("", "F1")
	v, _, _ := d.pay(q.QuoteID)
	var out payView
	if status, msg := d.call("POST", "/kiosk/api/pay/"+v.PaymentID+"/cancel", map[string]string{}, &out); status != 200 ||
		out.Status != ihos.PaymentCancelled || out.Message != "本次支付已取消，未扣费" || out.QR != "" {
		t.Fatalf("cancel: %d %q %+v", status, msg, out)
	}
	if res, _ := d.c.Get(r.srv.URL + v.QR); res.StatusCode != 404 {
		t.Errorf("qr after cancel: %d", res.StatusCode)
	}
	// After a cancel the patient may pay again, from a new quote.
	q, _, _ = d.quote("", "F1")
	v, status, msg := d.pay(q.QuoteID)
	if status != 200 {
		t.Fatalf("pay after cancel: %d %q", status, msg)
	}
	// The kiosk's window passes: the next poll cancels.
	r.advance(payWindow - time.Second)
	if v = d.poll(v.PaymentID); v.Status != ihos.PaymentPaying || v.ExpiresIn != 1 {
		t.Fatalf("before the window ends: %+v", v)
	}
	r.advance(2 * time.Second)
	v = d.poll(v.PaymentID)
	if v.Status != ihos.PaymentCancelled || v.Message != "支付超时，本次支付已取消" {
		t.Fatalf("after the window: %+v", v)
	}
	if _, _, cancels := c.counts(); cancels != 2 {
		t.Errorf("%d cancels", cancels)
	}
	// Closed at its deadline by the payment service.
	q, _, _ = d.quote("", "F2")
	v, _, _ = d.pay(q.QuoteID)
	c.set(v.PaymentID, ihos.PaymentClosed)
	if v = d.poll(v.PaymentID); v.Status != ihos.PaymentClosed || v.Message != "支付已超时关闭，请重新缴费" || v.QR != "" {
		t.Fatalf("closed: %+v", v)
	}
	// Failed.
	q, _, _ = d.quote("", "F2")
	v, _, _ = d.pay(q.QuoteID)
	c.set(v.PaymentID, ihos.PaymentFailed)
	if v = d.poll(v.PaymentID); v.Status != ihos.PaymentFailed || !strings.Contains(v.Message, "支付失败") {
		t.Fatalf("failed: %+v", v)
	}
	// Paid just before the cancel arrived: paid it is, and the receipt prints.
	q, _, _ = d.quote("", "F2")
	v, _, _ = d.pay(q.QuoteID)
	c.set(v.PaymentID, ihos.PaymentPaid)
	if d.call("POST", "/kiosk/api/pay/"+v.PaymentID+"/cancel", map[string]string{}, &out); out.Status != ihos.PaymentPaid || out.Receipt != JobPrinted {
		t.Fatalf("cancel of a paid payment: %+v", out)
	}
	if n := jobCount(r); n != 1 {
		t.Errorf("%d jobs", n)
	}
}

func TestPaySplitChanged(t *testing.T) {
	_, d, c := payRig(t, 60)
	c.settle = func(s ihos.Split) ihos.Split {
		return ihos.Split{Fund: s.Fund - 100, Account: s.Account, Cash: s.Cash + 100}
	}
	q, _, _ := d.quote("ec-zhangsan", "F1")
	v, status, msg := d.pay(q.QuoteID)
	if status != 200 || v.QR != "" {
		t.Fatalf("pay: %d %q %+v", status, msg, v)
	}
	if v = d.poll(v.PaymentID); v.Status != ihos.PaymentCancelled || v.Message != msgSplitDiffer {
		t.Fatalf("changed split: %+v", v)
	}
}

// TestPayAbandoned: the idle timeout (the session expires), logout and the
// next patient all cancel an unpaid payment.
func TestPayAbandoned(t *testing.T) {
	r, d, c := payRig(t, 60)
	waitCancels := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, _, got := c.counts(); got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("cancels: want %d", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	q, _, _ := d.quote("", "F1")
	v, _, _ := d.pay(q.QuoteID)
	r.advance(121 * time.Second)
	if status, msg := d.call("GET", "/kiosk/api/pay/"+v.PaymentID, nil, nil); status != 401 || msg != msgExpired {
		t.Fatalf("expired session: %d %q", status, msg)
	}
	waitCancels(1)
	if c.cancels[0] != v.PaymentID {
		t.Errorf("cancelled %v", c.cancels)
	}

	d.identify(ByIDNumber, "110101199003078515")
	q, _, _ = d.quote("", "F1")
	v, _, _ = d.pay(q.QuoteID)
	d.call("POST", "/kiosk/api/logout", map[string]string{}, nil)
	waitCancels(2)

	d.identify(ByIDNumber, "110101199003078515")
	q, _, _ = d.quote("", "F1")
	first, _, _ := d.pay(q.QuoteID)
	// The next patient at the same kiosk: the first one's payment is
	// cancelled and out of reach.
	d.identify(ByIDNumber, "110101199003078523")
	waitCancels(3)
	if status, msg := d.call("GET", "/kiosk/api/pay/"+first.PaymentID, nil, nil); status != 404 || msg != msgPayGone {
		t.Errorf("another patient polls the first one's payment: %d %q", status, msg)
	}
	if status, _ := d.call("POST", "/kiosk/api/pay/"+first.PaymentID+"/cancel", map[string]string{}, nil); status != 404 {
		t.Errorf("another patient cancels: %d", status)
	}
	// … and cannot pay the first one's fees, nor a fee id made up.
	if _, status, msg := d.quote("", "F1"); status != 409 || msg != msgFeeGone {
		t.Errorf("another patient's fee: %d %q", status, msg)
	}
	if _, status, msg := d.quote("", "F9", "F9"); status != 409 || msg != msgFeeGone {
		t.Errorf("a fee twice: %d %q", status, msg)
	}
	if _, status, msg := d.quote(""); status != 400 || msg != msgSelectFees {
		t.Errorf("no fee: %d %q", status, msg)
	}
	if _, status, _ := d.quote("", "F9"); status != 200 {
		t.Errorf("own fee: %d", status)
	}
	// A paid payment is not cancelled when the session ends.
	q, _, _ = d.quote("", "F9")
	v, _, _ = d.pay(q.QuoteID)
	c.set(v.PaymentID, ihos.PaymentPaid)
	d.poll(v.PaymentID)
	d.call("POST", "/kiosk/api/logout", map[string]string{}, nil)
	time.Sleep(100 * time.Millisecond)
	if _, _, n := c.counts(); n != 3 {
		t.Errorf("%d cancels after a paid payment's session ended", n)
	}
}

func TestPayDoubleTap(t *testing.T) {
	_, d, c := payRig(t, 60)
	c.payDelay = 200 * time.Millisecond
	q, _, _ := d.quote("", "F1", "F2")
	var wg sync.WaitGroup
	ids := make([]string, 4)
	for i := range ids {
		wg.Go(func() {
			var v payView
			if status, msg := d.call("POST", "/kiosk/api/pay", map[string]string{"quote_id": q.QuoteID}, &v); status != 200 {
				t.Errorf("tap %d: %d %q", i, status, msg)
			}
			ids[i] = v.PaymentID
		})
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] || id == "" {
			t.Fatalf("payments %v", ids)
		}
	}
	if _, pays, _ := c.counts(); pays != 1 {
		t.Errorf("%d Pay calls for one quote", pays)
	}
	// While it is open, no second payment starts.
	if _, status, msg := d.quote("", "F1"); status != 409 || msg != msgPayBusy {
		t.Errorf("quote while paying: %d %q", status, msg)
	}
	if _, status, msg := d.pay("another"); status != 409 || msg != msgPayBusy {
		t.Errorf("another pay while paying: %d %q", status, msg)
	}
	// Concurrent polls after paying print the receipt once.
	c.set(ids[0], ihos.PaymentPaid)
	for range 4 {
		wg.Go(func() { d.poll(ids[0]) })
	}
	wg.Wait()
	if n := jobCount(d.r); n != 1 {
		t.Errorf("%d receipts", n)
	}
	// A stale quote id is refused.
	if _, status, msg := d.pay("stale"); status != 409 || msg != msgQuoteGone {
		t.Errorf("stale quote: %d %q", status, msg)
	}
}

func TestPayUnavailable(t *testing.T) {
	r := newRig(t)
	id := r.addKiosk("1 号机", "printer-1", 60)
	d := r.device()
	d.pair(id)
	o, _, _ := d.identify(ByIDNumber, "110101199003078515")
	if o.Pay || o.PayHint != msgPayHint {
		t.Errorf("overview without a cashier: %+v", o)
	}
	if _, status, msg := d.quote("", "F1"); status != 503 || msg != msgNoCashier {
		t.Errorf("quote without a cashier: %d %q", status, msg)
	}
	if _, status, msg := d.pay("x"); status != 503 || msg != msgNoCashier {
		t.Errorf("pay without a cashier: %d %q", status, msg)
	}
	// A disabled kiosk refuses the payment calls, and cancels the payment.
	r.svc.Cashier = newCashier()
	q, _, _ := d.quote("", "F1")
	v, _, _ := d.pay(q.QuoteID)
	if err := r.svc.SetEnabled(r.admin, id, false); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path string }{{"POST", "/kiosk/api/pay/quote"}, {"POST", "/kiosk/api/pay"},
		{"GET", "/kiosk/api/pay/" + v.PaymentID}, {"POST", "/kiosk/api/pay/" + v.PaymentID + "/cancel"}, {"GET", "/kiosk/api/pay/" + v.PaymentID + "/qr.png"}} {
		if status, msg := d.call(c.method, c.path, map[string]string{}, nil); status != 403 || msg != msgDisabled {
			t.Errorf("%s %s on a disabled kiosk: %d %q", c.method, c.path, status, msg)
		}
	}
	// Without the X-Kiosk header nothing changes.
	req, _ := http.NewRequest("POST", r.srv.URL+"/kiosk/api/pay", strings.NewReader(`{}`))
	if res, err := d.c.Do(req); err != nil || res.StatusCode != 403 {
		t.Errorf("pay without the header: %v", err)
	}
	// A kiosk without a printer takes the payment and says where to get the receipt.
	id2 := r.addKiosk("2 号机", "", 60)
	d2 := r.device()
	d2.pair(id2)
	d2.identify(ByIDNumber, "110101199003078515")
	c := r.svc.Cashier.(*fakeCashier)
	q, _, _ = d2.quote("", "F1")
	v, _, _ = d2.pay(q.QuoteID)
	c.set(v.PaymentID, ihos.PaymentPaid)
	if v = d2.poll(v.PaymentID); v.Receipt != "none" || v.ReceiptMessage != msgNoPrinter || v.Invoice != "none" {
		t.Errorf("paid without a printer: %+v", v)
	}
}
