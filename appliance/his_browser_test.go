package appliance_test

import (
	"context"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"ihos"
	"ihos/appliance"
	"ihos/his"
	"ihos/his/hissim"
	"ihos/internal/auth"
	"ihos/internal/browsertest"
	"ihos/internal/node"
	"ihos/internal/web"
)

// TestHISConsoleBrowser drives the HIS 接口 page against a demo appliance
// linked to the HIS simulator: a catalogue refresh, a message the HIS refuses
// raising the alarm, re-sending it once the HIS recovers, the message log with
// the HL7 text, and the catalogue list.
func TestHISConsoleBrowser(t *testing.T) {
	b := browsertest.New(t)
	dir := t.TempDir()
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	sim, err := hissim.Start(ctx, hissim.Config{DataDir: filepath.Join(dir, "his"), ResultsTo: listen, ResultDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	credFile := filepath.Join(dir, "creds.json")
	a, err := appliance.New(ctx, appliance.Config{
		Config: node.Config{DataDir: filepath.Join(dir, "data"), HTTP: "127.0.0.1:0"}, Demo: true, Credentials: credFile,
		HIS: appliance.HISConfig{MLLP: sim.MLLPAddr(), Listen: listen},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	srv := httptest.NewServer(web.Middleware(a.Handler))
	t.Cleanup(srv.Close)
	password := consoleCredential(t, credFile, "console")
	dctx, stopDialogs := context.WithCancel(b.Ctx)
	t.Cleanup(stopDialogs)
	go func() { // accept every confirm()
		for _, err := range chromedp.Events(dctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			chromedp.Call(dctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	text := func(sel string) string {
		t.Helper()
		return strings.TrimSpace(browsertest.Get(b, chromedp.Text(chromedp.CSS(sel))))
	}
	load := func(sel string) {
		t.Helper()
		browsertest.Get(b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel))))
	}

	b.Run(chromedp.Navigate(srv.URL+"/console/login"),
		chromedp.SendKeys(chromedp.ID("username"), "admin"), chromedp.SendKeys(chromedp.ID("password"), password))
	load("#login")
	load(`nav.sidebar a[href="/console/x/his"]`)
	if got := text("main.content h1"); got != "HIS 接口" {
		t.Fatalf("heading %q", got)
	}
	load("#refresh-catalog")
	if got := text(".flash"); got != "HIS 目录已刷新" {
		t.Errorf("after refresh: %q", got)
	}
	var n int
	a.Node.DB.QueryRow(`SELECT COUNT(*) FROM his_catalog`).Scan(&n)
	if n < 650 {
		t.Fatalf("%d catalogue items after the refresh", n)
	}

	// The HIS refuses a prescription: the page shows the alarm and the reason.
	sim.SetMode(hissim.Mode{Name: "error", AckCode: "AE", Text: "该患者本日已停诊"})
	admin := ihos.WithActor(ctx, ihos.Actor{UserID: "t", Username: "doctor-test", Role: auth.RoleSysAdmin})
	var drug string
	a.Node.DB.QueryRow(`SELECT code FROM his_catalog WHERE kind = 'DRUG' AND flags = '' ORDER BY code LIMIT 1`).Scan(&drug)
	p := hissim.DemoPatients[0]
	orders, err := a.HIS.PlaceOrder(admin, his.OrderRequest{Kind: ihos.CatalogDrug, Patient: ihos.HISPatient{HISID: p.HISID, Name: p.Name},
		DoctorCode: "D1001", DoctorName: "演示医生", Items: []ihos.HISOrderLine{{Code: drug, Quantity: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.Node.DB.QueryRow(`SELECT COUNT(*) FROM his_outbox WHERE status = 'failed'`).Scan(&n); n == 0; a.Node.DB.QueryRow(`SELECT COUNT(*) FROM his_outbox WHERE status = 'failed'`).Scan(&n) {
		if time.Now().After(deadline) {
			t.Fatal("the refused message never failed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Run(chromedp.Navigate(srv.URL + "/console/x/his"))
	if got := text("#his-alarm"); !strings.Contains(got, "1 条消息被 HIS 拒绝") {
		t.Errorf("alarm %q", got)
	}
	if got := text("#outbox"); !strings.Contains(got, "该患者本日已停诊") || !strings.Contains(got, "处方 OMP^O09") || !strings.Contains(got, "doctor-test") {
		t.Errorf("outbox table %q", got)
	}
	b.Screenshot("his-refused")

	sim.SetMode(hissim.Mode{Name: "up"})
	load(`#outbox button[type=submit]`) // 重新发送
	if got := text(".flash"); got != "已重新加入发送队列" {
		t.Errorf("after resend: %q", got)
	}
	deadline = time.Now().Add(10 * time.Second)
	var status string
	for a.Node.DB.QueryRow(`SELECT status FROM his_orders WHERE id = ?`, orders[0].ID).Scan(&status); status != his.OrderAccepted; a.Node.DB.QueryRow(`SELECT status FROM his_orders WHERE id = ?`, orders[0].ID).Scan(&status) {
		if time.Now().After(deadline) {
			t.Fatalf("order status %q after the resend", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Run(chromedp.Navigate(srv.URL + "/console/x/his?type=OMP%5EO09"))
	if got := text("#outbox"); !strings.Contains(got, "没有待处理的消息") {
		t.Errorf("outbox after the resend: %q", got)
	}
	if got := text("#his-log tbody"); !strings.Contains(got, "OMP^O09") || !strings.Contains(got, "AA") || !strings.Contains(got, "AE") {
		t.Errorf("log %q", got)
	}
	b.Run(chromedp.Click(chromedp.CSS("#his-log details summary")))
	if got := text("#his-log pre.hl7"); !strings.Contains(got, "MSH|^~\\&|") || !strings.Contains(got, "RXO|") {
		t.Errorf("logged HL7 %q", got)
	}
	b.Screenshot("his-log")

	b.Run(chromedp.Navigate(srv.URL + "/console/r/his_catalog?kind=DRUG"))
	if got := text("main.content"); !strings.Contains(got, "药品") || !strings.Contains(got, "¥") {
		t.Errorf("catalogue page %q", ihos.Truncate(got, 300))
	}
	b.Screenshot("his-catalog")
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("browser console errors: %v", errs)
	}
}
