package kiosk

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ihos"
	"ihos/drivers/printersim"
	"ihos/internal/auth"
	"ihos/internal/browsertest"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
)

// TestKioskPayBrowser drives paying at the kiosk in chromium at 1280x800:
// ticking fees, the e-voucher pre-settlement and its confirmation, the cash
// QR code, paid, the receipt and the e-invoice printed on the printer
// simulator; then a self-paid payment cancelled, and one left to time out.
func TestKioskPayBrowser(t *testing.T) {
	b := browsertest.New(t)
	ctx := context.Background()
	db := sqldbtest.SQLite(t)
	ps, err := printersim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	his := demoHIS()
	his.fees["P000001"] = append(his.fees["P000001"], ihos.HISFee{FeeID: "F3", ItemName: "胸部CT平扫", Quantity: "1", AmountFen: 30000, CreatedAt: time.Now()})
	cashier := newCashier()
	printer := &simPrinter{addr: ps.Addr(), jobs: map[string]simJob{}}
	svc := New(db, his, printer, fakeVouchers{"ec-zhangsan": "110101199003078515"}, "演示人民医院")
	svc.Cashier = cashier
	mux := http.NewServeMux()
	svc.Routes(mux)
	srv := httptest.NewServer(web.Middleware(mux))
	t.Cleanup(srv.Close)
	id := addKiosk(t, db, "门诊大厅 1 号机", "printer-1", 60)
	admin := ihos.WithActor(ctx, ihos.Actor{UserID: "u1", Username: "admin", Role: auth.RoleHospitalAdmin})

	b.Run(chromedp.EmulateViewport(1280, 800))
	text, visible, click, waitText := b.Text, b.Visible, b.Click, b.WaitText
	keys := func(pad, s string) {
		t.Helper()
		for _, c := range s {
			click(fmt.Sprintf(`#%s button[data-key="%c"]`, pad, c))
		}
	}
	lastPayment := func() string {
		t.Helper()
		cashier.mu.Lock()
		defer cashier.mu.Unlock()
		if len(cashier.pays) == 0 {
			t.Fatal("no payment")
		}
		for id, p := range cashier.payments {
			if p.Status == ihos.PaymentPaying {
				return id
			}
		}
		t.Fatal("no open payment")
		return ""
	}

	b.Run(chromedp.Navigate(srv.URL + "/kiosk/"))
	visible("#screen-unpaired")
	code, err := svc.NewPairingCode(admin, id)
	if err != nil {
		t.Fatal(err)
	}
	keys("pair-keypad", code)
	click("#pair-submit")
	visible("#screen-start")
	click("#by-id")
	keys("input-keypad", "110101199003078515")
	click("#input-submit")
	visible("#screen-home")

	// The fees, all ticked; unticking one changes the total.
	click("#tile-fees")
	visible("#screen-fees")
	waitText("#fee-sum", "343.30")
	waitText("#fee-count", "已选 3 项")
	b.Screenshot("pay-fees")
	click(`#fee-list tr[data-fee="F2"]`)
	waitText("#fee-sum", "325.00")
	waitText("#fee-count", "已选 2 项")
	b.Screenshot("pay-fees-two")

	// The e-voucher for 血常规 and the CT: scanned, pre-settled, confirmed.
	click("#pay-insurance")
	visible("#screen-scan")
	b.Run(chromedp.SendKeys(chromedp.CSS("#scan-input"), "ec-zhangsan\r"))
	visible("#screen-payconfirm")
	waitText("#confirm-total", "325.00")
	if got := []string{text("#confirm-fund"), text("#confirm-account"), text("#confirm-cash")}; strings.Join(got, " ") != "195.00 10.00 120.00" {
		t.Errorf("split on the screen %v", got)
	}
	b.Screenshot("pay-confirm-insurance")
	click("#confirm-pay")
	visible("#screen-payqr")
	waitText("#qr-cash", "120.00")
	for deadline := time.Now().Add(10 * time.Second); !browsertest.Get(b, chromedp.Evaluate[bool](
		`document.getElementById('pay-qr').complete && document.getElementById('pay-qr').naturalWidth > 200`)); {
		if time.Now().After(deadline) {
			t.Fatal("the QR code image did not load")
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitText("#qr-progress", "正在等待支付")
	b.Screenshot("pay-qr")
	pid := lastPayment()
	cashier.set(pid, ihos.PaymentPaid)
	visible("#screen-payresult")
	waitText("#result-title", "支付成功")
	waitText("#result-receipt", "缴费凭条已打印")
	waitText("#result-invoice", "正在开具电子票据")
	b.Screenshot("pay-paid")
	cashier.issue(pid)
	waitText("#result-invoice", "电子票据已打印")
	b.Screenshot("pay-printed")
	receipt := ticketText(t, ps, 1)
	for _, want := range []string{"门诊缴费凭条", "张三", "血常规", "胸部CT平扫", "医保统筹支付", "195.00", "个人账户支付", "10.00", "个人现金支付", "120.00"} {
		if !strings.Contains(receipt, want) {
			t.Errorf("receipt lacks %q:\n%s", want, receipt)
		}
	}
	invoice := ticketText(t, ps, 2)
	for _, want := range []string{"医疗门诊收费电子票据", "0003267841", "8a3f2c", "325.00"} {
		if !strings.Contains(invoice, want) {
			t.Errorf("invoice lacks %q:\n%s", want, invoice)
		}
	}
	if qr := ps.Tickets()[1].QRCodes; len(qr) != 1 || !strings.Contains(qr[0], "0003267841") {
		t.Errorf("invoice QR %v", qr)
	}
	saveTickets(t, ps, 2)
	click("#result-done")
	visible("#screen-fees")
	// What was paid is no longer offered.
	waitText("#fee-sum", "18.30")
	if got := text("#fee-list"); strings.Contains(got, "血常规") || !strings.Contains(got, "阿司匹林肠溶片") {
		t.Errorf("fees after paying: %q", got)
	}

	// Self-pay, cancelled on the QR screen.
	click("#pay-self")
	visible("#screen-payconfirm")
	waitText("#confirm-cash", "18.30")
	b.Screenshot("pay-confirm-self")
	click("#confirm-pay")
	visible("#screen-payqr")
	b.Screenshot("pay-qr-self")
	click("#qr-cancel")
	visible("#screen-payresult")
	waitText("#result-title", "支付已取消")
	b.Screenshot("pay-cancelled")
	click("#result-done")
	visible("#screen-fees")
	// The fees are read again when the screen returns; a tap before they
	// are there selects nothing.
	waitText("#fee-sum", "18.30")

	// Left alone on the QR screen: the countdown runs out and the payment
	// is cancelled.
	svc.PayWindow = 6 * time.Second
	click("#pay-self")
	visible("#screen-payconfirm")
	click("#confirm-pay")
	visible("#screen-payqr")
	pid = lastPayment()
	b.Timeout = 30 * time.Second
	waitText("#result-title", "支付已取消")
	waitText("#result-detail", "支付超时")
	b.Screenshot("pay-timeout")
	cashier.mu.Lock()
	status := cashier.payments[pid].Status
	cashier.mu.Unlock()
	if status != ihos.PaymentCancelled {
		t.Errorf("payment after the countdown: %s", status)
	}
	if n := len(ps.Tickets()); n != 2 {
		t.Errorf("%d tickets printed, want the receipt and the invoice", n)
	}
	for _, e := range b.ConsoleErrors() {
		t.Errorf("browser console error: %s", e)
	}
}
