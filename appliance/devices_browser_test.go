package appliance_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"ihos"
	"ihos/appliance"
	"ihos/drivers/escpos"
	"ihos/drivers/printersim"
	"ihos/his/hissim"
	"ihos/insurance/inssim"
	"ihos/internal/auth"
	"ihos/internal/browsertest"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/printing"
	"ihos/recorder"
	"ihos/recorder/recordersim"
)

// demoKiosk is the kiosk the demo data registers (appliance/devices.go).
const demoKiosk = "门诊大厅 1 号机"

// deviceRig is a demo appliance with its devices' counterparts: the HIS
// simulator over HL7/MLLP, a printer simulator as the demo printer and the
// insurance platform simulator.
type deviceRig struct {
	app      *appliance.App
	srv      *httptest.Server
	his      *hissim.Sim
	printer  *printersim.Sim
	ins      *inssim.Sim
	credFile string
}

// startDeviceRig starts the simulators and a demo appliance wired to them,
// served through the production middleware. The recorder watches an empty
// folder of the test, not the machine's /media.
func startDeviceRig(t *testing.T) *deviceRig {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	hs, err := hissim.Start(ctx, hissim.Config{DataDir: filepath.Join(dir, "his"), ResultDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Close() })
	ps, err := printersim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	is, err := inssim.Start(ctx, inssim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { is.Close() })
	watch := filepath.Join(dir, "media")
	if err := os.MkdirAll(watch, 0o755); err != nil {
		t.Fatal(err)
	}
	credFile := filepath.Join(dir, "creds.json")
	a, err := appliance.New(ctx, appliance.Config{
		Config: node.Config{DataDir: filepath.Join(dir, "data"), HTTP: "127.0.0.1:0", LogLevel: "warn"}, Demo: true, Credentials: credFile,
		HIS:         appliance.HISConfig{MLLP: hs.MLLPAddr()},
		Insurance:   appliance.InsuranceConfig{URL: is.URL()},
		Recorder:    appliance.RecorderConfig{WatchRoots: []string{watch}},
		DemoPrinter: ps.Addr(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	srv := httptest.NewServer(web.Middleware(a.Handler))
	t.Cleanup(srv.Close)
	return &deviceRig{app: a, srv: srv, his: hs, printer: ps, ins: is, credFile: credFile}
}

// demoKioskID returns the id of the demo kiosk.
func (r *deviceRig) demoKioskID(t *testing.T) string {
	t.Helper()
	ks, err := r.app.Kiosk.Kiosks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if k.Name == demoKiosk {
			return k.ID
		}
	}
	t.Fatalf("no demo kiosk among %+v", ks)
	return ""
}

// waitTicket waits for the n-th ticket (from 1) at the printer simulator
// and returns its text lines joined.
func waitTicket(t *testing.T, ps *printersim.Sim, n int) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if ts := ps.Tickets(); len(ts) >= n {
			return strings.Join(ts[n-1].Lines, "\n")
		}
		if time.Now().After(deadline) {
			t.Fatalf("ticket %d never printed (%d so far)", n, len(ps.Tickets()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// saveSimTickets writes the tickets the printer simulator received as PNG
// next to the screenshots, when BROWSERTEST_SHOTS is set, to look at.
func saveSimTickets(t *testing.T, ps *printersim.Sim) {
	t.Helper()
	root := os.Getenv("BROWSERTEST_SHOTS")
	if root == "" {
		return
	}
	dir := filepath.Join(root, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range ps.Tickets() {
		png, err := ps.PNG(i, escpos.Width80mm)
		if err != nil {
			t.Errorf("ticket %d: %v", i+1, err)
			continue
		}
		path := filepath.Join(dir, fmt.Sprintf("ticket-%d.png", i+1))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Error(err)
		}
		t.Logf("ticket image %s", path)
	}
}

// TestKioskOnApplianceBrowser drives the kiosk page of a demo appliance in
// chromium at 1280x800, through the appliance's own wiring: the HIS
// simulator answers over HL7, tickets go through the durable print queue to
// a printer simulator on TCP, and the e-voucher is resolved by the insurance
// simulator (code 1101). It pairs the demo kiosk, refuses a wrong and an
// unknown ID number, shows 张三's visit, fees and reports, prints a lab
// report and the registration slip, identifies him again by e-voucher,
// reprints, and finally sees the kiosk disabled through the console API.
func TestKioskOnApplianceBrowser(t *testing.T) {
	b := browsertest.New(t)
	rig := startDeviceRig(t)
	ctx := context.Background()
	a, ps := rig.app, rig.printer
	admin := ihos.WithActor(ctx, ihos.Actor{UserID: "t-admin", Username: "yiwuke", Role: auth.RoleHospitalAdmin})

	// 张三 (P000001): today's registration, reports and fees as the HIS has them.
	patient := hissim.DemoPatients[0]
	if patient.HISID != "P000001" || patient.Name != "张三" {
		t.Fatalf("first demo patient %+v", patient)
	}
	visits, err := a.HIS.TodayVisits(ctx, patient.HISID)
	if err != nil {
		t.Fatal(err)
	}
	var visit ihos.HISVisit
	for _, v := range visits {
		if v.Status != ihos.VisitCancelled {
			visit = v
			break
		}
	}
	if visit.VisitNo == "" {
		t.Fatalf("张三 has no registration today: %+v", visits)
	}
	fees, err := a.HIS.UnpaidFees(ctx, patient.HISID)
	if err != nil {
		t.Fatal(err)
	}
	var feeTotal int64
	for _, f := range fees {
		feeTotal += f.AmountFen
	}
	reports, err := a.HIS.Reports(ctx, patient.HISID, time.Now().AddDate(0, 0, -30))
	if err != nil {
		t.Fatal(err)
	}
	var report ihos.HISReport
	for _, r := range reports {
		if r.Kind == ihos.CatalogLab && r.ResultStatus != "P" {
			report = r
			break
		}
	}
	if report.ReportNo == "" {
		t.Fatalf("张三 has no final lab report within 30 days: %d reports", len(reports))
	}
	t.Logf("张三: visit %s %s, %d unpaid fees ¥%s, %d reports, printing %s %s", visit.VisitNo, visit.DepartmentName,
		len(fees), ihos.FormatYuan(feeTotal), len(reports), report.ReportNo, report.ServiceName)

	b.Run(chromedp.EmulateViewport(1280, 800))
	text, visible, click, waitText := b.Text, b.Visible, b.Click, b.WaitText
	keys := func(pad, s string) {
		t.Helper()
		for _, c := range s {
			click(fmt.Sprintf(`#%s button[data-key="%c"]`, pad, c))
		}
	}
	// printed waits for the kiosk to say the ticket is out.
	printed := func(shot string) {
		t.Helper()
		visible("#screen-printing")
		waitText("#print-title", "打印完成")
		b.Screenshot(shot)
	}

	// Pairing the demo kiosk with a code from the console's service.
	b.Run(chromedp.Navigate(rig.srv.URL + "/kiosk/"))
	visible("#screen-unpaired")
	b.Screenshot("unpaired")
	code, err := a.Kiosk.NewPairingCode(admin, rig.demoKioskID(t))
	if err != nil {
		t.Fatal(err)
	}
	keys("pair-keypad", code)
	click("#pair-submit")
	visible("#screen-start")
	if got := text("#kiosk-name"); !strings.Contains(got, demoKiosk) {
		t.Errorf("footer %q", got)
	}
	if got := text("#hospital"); got == "" {
		t.Error("no hospital name in the header")
	}
	b.Screenshot("start")

	// A wrong check digit, then a valid number the HIS does not know.
	click("#by-id")
	visible("#screen-input")
	check := byte('1')
	if patient.IDNumber[17] == '1' {
		check = '2'
	}
	keys("input-keypad", patient.IDNumber[:17]+string(check))
	click("#input-submit")
	waitText("#input-error", "身份证号码有误，请核对后重新输入")
	b.Screenshot("wrong-id")
	click(`#input-keypad button[data-key="clear"]`)
	unknown := "11010119800101001"
	unknown += string(ihos.IDCheckDigit(unknown))
	keys("input-keypad", unknown)
	click("#input-submit")
	waitText("#input-error", "未找到您的就诊档案，请到人工窗口办理")
	b.Screenshot("unknown-patient")

	// 张三 by ID number: today's visit, the unpaid fees, the reports.
	click(`#input-keypad button[data-key="clear"]`)
	keys("input-keypad", patient.IDNumber)
	click("#input-submit")
	visible("#screen-home")
	if got := text("#patient-name"); got != "张*" {
		t.Errorf("patient name %q, want 张*", got)
	}
	if got := text("#count-visits"); got != strconv.Itoa(len(visits)) {
		t.Errorf("today's visits %q, want %d", got, len(visits))
	}
	if got := text("#fee-total"); got != ihos.FormatYuan(feeTotal) {
		t.Errorf("fee total %q, want %s", got, ihos.FormatYuan(feeTotal))
	}
	if got := text("#count-reports"); got != strconv.Itoa(len(reports)) {
		t.Errorf("reports %q, want %d", got, len(reports))
	}
	b.Screenshot("home")

	click("#tile-fees")
	visible("#screen-fees")
	if got := text("#fee-sum"); got != ihos.FormatYuan(feeTotal) {
		t.Errorf("fee sum %q", got)
	}
	for _, f := range fees {
		if got := text("#fee-list"); !strings.Contains(got, f.ItemName) {
			t.Errorf("fee %s not listed: %q", f.ItemName, got)
		}
	}
	b.Screenshot("fees")
	click("#screen-fees button.back")

	// The lab report, printed through the print queue.
	click("#tile-reports")
	visible("#screen-reports")
	waitText("#report-list", report.ServiceName)
	b.Screenshot("reports")
	idx := browsertest.Get(b, chromedp.Evaluate[int](fmt.Sprintf(`(function(){var t=document.querySelectorAll('#report-list .item-title');
		for(var i=0;i<t.length;i++){if(t[i].textContent.indexOf(%q)>=0)return i+1;}return 0;})()`, report.ServiceName)))
	if idx == 0 {
		t.Fatal("the report is not in the list")
	}
	click(fmt.Sprintf("#report-list .item:nth-child(%d) .item-button", idx))
	visible("#screen-report")
	waitText("#report-title", report.ServiceName)
	b.Screenshot("report")
	click("#report-print")
	printed("report-printed")
	if got := waitTicket(t, ps, 1); !strings.Contains(got, report.ServiceName) || !strings.Contains(got, patient.Name) {
		t.Errorf("printed report lacks %q or %q:\n%s", report.ServiceName, patient.Name, got)
	}
	click("#print-done")
	visible("#screen-report")
	click("#report-back")
	visible("#screen-reports")
	click("#screen-reports button.back")

	// The registration slip.
	click("#tile-visits")
	visible("#screen-visits")
	waitText("#visit-list", visit.VisitNo)
	b.Screenshot("visits")
	click("#visit-list .item-button")
	printed("slip-printed")
	if got := waitTicket(t, ps, 2); !strings.Contains(got, visit.VisitNo) || !strings.Contains(got, patient.Name) ||
		!strings.Contains(got, visit.DepartmentName) {
		t.Errorf("printed registration slip lacks %s, %s or %s:\n%s", visit.VisitNo, patient.Name, visit.DepartmentName, got)
	}
	click("#print-done")
	visible("#screen-visits")
	click("#screen-visits button.back")
	visible("#screen-home")
	click("#logout")
	visible("#screen-start")

	// The e-voucher: the scanner types the QR code's text and Enter.
	tok, err := rig.ins.IssueECToken(patient.IDNumber, 0)
	if err != nil {
		t.Fatal(err)
	}
	click("#by-voucher")
	visible("#screen-scan")
	b.Screenshot("scan")
	b.Run(chromedp.SendKeys(chromedp.CSS("#scan-input"), tok.QR+"\r"))
	visible("#screen-home")
	if got := text("#patient-name"); got != "张*" {
		t.Errorf("patient by e-voucher %q, want 张*", got)
	}
	if got := text("#count-tickets"); got != "2" {
		t.Errorf("tickets to reprint %q, want 2", got)
	}
	b.Screenshot("voucher-home")

	// 补打: the latest ticket once more.
	click("#tile-reprint")
	visible("#screen-reprint")
	waitText("#ticket-list", "挂号")
	b.Screenshot("reprint")
	click("#ticket-list .item-button")
	printed("reprinted")
	if got := waitTicket(t, ps, 3); !strings.Contains(got, visit.VisitNo) {
		t.Errorf("reprinted ticket lacks %s:\n%s", visit.VisitNo, got)
	}
	click("#print-done")
	visible("#screen-reprint")
	saveSimTickets(t, ps)
	time.Sleep(300 * time.Millisecond)
	if n := len(ps.Tickets()); n != 3 {
		t.Errorf("%d tickets at the printer, want 3", n)
	}
	// All three went through the print queue, from this kiosk, the last a reprint.
	jobs, err := a.Printing.PatientJobs(ctx, patient.HISID, 10)
	if err != nil {
		t.Fatal(err)
	}
	kioskID := rig.demoKioskID(t)
	if len(jobs) != 3 || jobs[0].ReprintOf == "" {
		t.Errorf("queue jobs of 张三: %+v", jobs)
	}
	for _, j := range jobs {
		if j.Status != printing.StatusPrinted || j.Source != "kiosk:"+kioskID {
			t.Errorf("job %s %q: status %s, source %s", j.ID, j.Title, j.Status, j.Source)
		}
	}

	// Disabled by a hospital admin through the console API.
	in := &instance{app: a, srv: rig.srv, creds: readCreds(t, rig.credFile)}
	hadmin := in.login(t, "console_hospital_admin")
	if status, body := hadmin.do("POST", "/api/admin/kiosks/"+rig.demoKioskID(t)+"/disable", nil); status != http.StatusOK {
		t.Fatalf("disable the kiosk: %d %s", status, body)
	}
	b.Run(chromedp.Navigate(rig.srv.URL + "/kiosk/"))
	visible("#screen-disabled")
	if got := text("#disabled-message"); !strings.Contains(got, "本机暂停服务") {
		t.Errorf("disabled message %q", got)
	}
	b.Screenshot("disabled")

	// The wrong and the unknown ID number were refused with 400 and 404:
	// the browser logs those, and nothing else may fail.
	for _, e := range b.ConsoleErrors() {
		if !strings.Contains(e, "/kiosk/api/identify") || !strings.Contains(e, "status of 400") && !strings.Contains(e, "status of 404") {
			t.Errorf("browser console error: %s", e)
		}
	}
}

// TestDeviceConsolePagesBrowser drives the device pages of the console as the
// hospital admin: 打印机 with the live status of the demo printer (online,
// then out of paper) and a test page, 票据模板 with an edit whose preview
// image follows, 自助机 with a pairing code, and 工作记录仪录像 with clips of a
// simulated recorder.
func TestDeviceConsolePagesBrowser(t *testing.T) {
	b := browsertest.New(t)
	rig := startDeviceRig(t)
	ctx := context.Background()
	a, ps := rig.app, rig.printer
	creds := readCreds(t, rig.credFile)["console_hospital_admin"]

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
	// until polls a JavaScript condition for up to d.
	until := func(what, cond string, d time.Duration) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !browsertest.Get(b, chromedp.Evaluate[bool](cond)) {
			if time.Now().After(deadline) {
				b.Screenshot("failure")
				t.Fatalf("%s: not within %v (%s)", what, d, cond)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	b.Run(chromedp.Navigate(rig.srv.URL+"/console/login"),
		chromedp.SendKeys(chromedp.ID("username"), creds.Username), chromedp.SendKeys(chromedp.ID("password"), creds.Password))
	load("#login")
	for _, p := range []string{"printing", "tickets", "kiosk", "recorder"} {
		if n := browsertest.Get(b, chromedp.Evaluate[int](`document.querySelectorAll('nav.sidebar a[href="/console/x/`+p+`"]').length`)); n != 1 {
			t.Errorf("sidebar links to /console/x/%s: %d", p, n)
		}
	}

	// 打印机: the demo printer online, then out of paper.
	load(`nav.sidebar a[href="/console/x/printing"]`)
	if got := text("main.content h1"); got != "打印机" {
		t.Fatalf("heading %q", got)
	}
	// The printer's state as the page shows it; the live part is swapped in every 5 s.
	printerIs := func(state string) string {
		return `(function(){var e=document.querySelector('#printers tbody tr[data-printer] [data-state]');return !!e&&e.dataset.state===` + strconv.Quote(state) + `})()`
	}
	until("the demo printer online", printerIs("online"), 15*time.Second)
	if got := text("#printers tbody"); !strings.Contains(got, "门诊大厅自助机打印机") || !strings.Contains(got, "在线") || !strings.Contains(got, ps.Addr()) {
		t.Errorf("printers %q", got)
	}
	b.Screenshot("printer-online")
	ps.SetMode(printersim.PaperOut)
	start := time.Now()
	until("缺纸 on the page", printerIs("paper_out"), 15*time.Second)
	t.Logf("paper out shown after %v", time.Since(start).Round(100*time.Millisecond))
	if got := text("#printers [data-state]"); got != "缺纸" {
		t.Errorf("paper-out label %q", got)
	}
	b.Screenshot("printer-paper-out")
	ps.SetMode(printersim.Online)
	until("the demo printer back online", printerIs("online"), 15*time.Second)

	// 测试打印: the test page arrives at the simulator.
	before := len(ps.Tickets())
	load(`#printers button[type=submit]`)
	if got := text(".flash"); !strings.Contains(got, "测试页已加入打印队列") {
		t.Errorf("flash after the test print %q", got)
	}
	if got := waitTicket(t, ps, before+1); !strings.Contains(got, "打印机测试页") || !strings.Contains(got, "门诊大厅自助机打印机") {
		t.Errorf("test page:\n%s", got)
	}
	b.Run(chromedp.Reload())
	until("the test job printed", `!!document.querySelector('#jobs tbody tr[data-status="printed"]')`, 10*time.Second)
	b.Screenshot("printer-test-printed")
	saveSimTickets(t, ps)

	// 票据模板: the receipt with one more line; the preview follows the draft.
	load(`nav.sidebar a[href="/console/x/tickets"]`)
	load(`#ticket-kinds a[data-kind="receipt"]`)
	if got := text("main.content h1"); got != "票据模板" {
		t.Fatalf("heading %q", got)
	}
	until("the preview loaded", `(function(){var i=document.getElementById('ticket-image');return i.complete&&i.naturalWidth>0})()`, 10*time.Second)
	if w := browsertest.Get(b, chromedp.Evaluate[int](`document.getElementById('ticket-image').naturalWidth`)); w != 576 {
		t.Errorf("80 mm preview %d dots wide, want 576", w)
	}
	src := browsertest.Get(b, chromedp.Evaluate[string](`document.getElementById('ticket-image').src`))
	b.Screenshot("tickets-receipt")
	const added = "@center 祝您早日康复"
	// The caret goes before the cut at the end, and the line is typed there.
	b.Run(chromedp.Evaluate[chromedp.Void](`(function(){var s=document.getElementById('ticket-source');var i=s.value.lastIndexOf('@cut');
		s.focus();s.setSelectionRange(i,i);})()`))
	b.Run(chromedp.KeyEvent(added + "\n"))
	if got := browsertest.Get(b, chromedp.Value(chromedp.ID("ticket-source"))); !strings.Contains(got, added+"\n@cut") {
		t.Fatalf("template after typing:\n%s", got)
	}
	until("the preview image changed", `(function(){var i=document.getElementById('ticket-image');return i.src!==`+strconv.Quote(src)+`&&i.complete&&i.naturalWidth>0})()`, 10*time.Second)
	if w := browsertest.Get(b, chromedp.Evaluate[int](`document.getElementById('ticket-image').naturalWidth`)); w != 576 {
		t.Errorf("80 mm draft preview %d dots wide, want 576", w)
	}
	if msg := text("#ticket-error"); msg != "" {
		t.Errorf("draft error %q", msg)
	}
	b.Screenshot("tickets-receipt-draft")
	load("#ticket-save")
	if got := text(".flash"); !strings.Contains(got, "模板已保存") {
		t.Errorf("flash after saving %q", got)
	}
	tpl, err := a.Tickets.Template(ctx, "receipt")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tpl.Source, added) || tpl.Default {
		t.Errorf("saved template (default %v):\n%s", tpl.Default, tpl.Source)
	}
	if got := text("#ticket-history"); !strings.Contains(got, creds.Username) {
		t.Errorf("history %q", got)
	}
	b.Screenshot("tickets-receipt-saved")

	// 自助机: a pairing code for the demo kiosk.
	load(`nav.sidebar a[href="/console/x/kiosk"]`)
	if got := text("#kiosks"); !strings.Contains(got, demoKiosk) || !strings.Contains(got, "未配对") {
		t.Errorf("kiosks %q", got)
	}
	load(`#kiosks button.pair`)
	if got := text(".flash"); !strings.Contains(got, "配对码已生成") {
		t.Errorf("flash after the pairing code %q", got)
	}
	code := text("#kiosks .pairing-code b.code")
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		t.Errorf("pairing code %q", code)
	}
	b.Screenshot("kiosks-code")
	// The code pairs a device.
	k, _, err := a.Kiosk.Pair(ctx, code, "127.0.0.1")
	if err != nil || k.Name != demoKiosk {
		t.Errorf("pairing with the console's code: %v %+v", err, k)
	}

	// 工作记录仪录像: a folder of a simulated recorder imported.
	folder := filepath.Join(t.TempDir(), "DSJ")
	clips, err := recordersim.Generate(folder, recordersim.Options{Count: 4, MinSize: 64 << 10, MaxSize: 256 << 10,
		Start: time.Now().Add(-2 * time.Hour).Truncate(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	admin := ihos.WithActor(ctx, ihos.Actor{UserID: "t-admin", Username: creds.Username, Role: auth.RoleHospitalAdmin})
	imp, err := a.Recorder.ImportFolder(admin, folder, recorder.SourceUpload)
	if err != nil {
		t.Fatal(err)
	}
	if imp.FilesNew != len(clips) {
		t.Errorf("import %+v, want %d new", imp, len(clips))
	}
	load(`nav.sidebar a[href="/console/x/recorder"]`)
	if got := text("main.content h1"); got != "工作记录仪录像" {
		t.Fatalf("heading %q", got)
	}
	if n := browsertest.Get(b, chromedp.Evaluate[int](`document.querySelectorAll('#recordings tbody tr[data-id]').length`)); n != len(clips) {
		t.Errorf("%d recordings listed, want %d", n, len(clips))
	}
	if got := text("#recordings tbody"); !strings.Contains(got, "DSJ-A1-0007") || !strings.Contains(got, filepath.Base(clips[0].Path)) {
		t.Errorf("recordings %q", ihos.Truncate(got, 400))
	}
	if got := text("#rec-imports tbody"); !strings.Contains(got, "控制台上传") || !strings.Contains(got, "已完成") {
		t.Errorf("imports %q", got)
	}
	b.Screenshot("recorder")
	load(`#recordings tbody tr[data-id] a`)
	newest := filepath.Base(clips[len(clips)-1].Path) // the list is newest first
	if got := text("#player"); !strings.Contains(got, "录像播放") || !strings.Contains(got, newest) {
		t.Errorf("player heading %q, want %s", got, newest)
	}
	if src := browsertest.Get(b, chromedp.Evaluate[string](`(document.getElementById('rec-video')||{}).src||''`)); !strings.Contains(src, "/api/recorder/recordings/") {
		t.Errorf("video src %q", src)
	}
	b.Screenshot("recorder-play")

	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("browser console errors: %v", errs)
	}
}
