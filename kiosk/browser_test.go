package kiosk

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ihos"
	"ihos/drivers/escpos"
	"ihos/drivers/printersim"
	"ihos/his"
	"ihos/his/hissim"
	"ihos/internal/auth"
	"ihos/internal/browsertest"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
	"ihos/tickets"
)

// simPrinter prints at once on a printer simulator over TCP port 9100
// style, rendering with the built-in ticket templates: the part of package
// printing the kiosk relies on, without its queue.
type simPrinter struct {
	addr string
	mu   sync.Mutex
	jobs map[string]simJob
	seq  []string
}

type simJob struct {
	data    []byte
	title   string
	kind    string
	patient string
	at      time.Time
}

func (p *simPrinter) send(data []byte) error {
	c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write(data)
	return err
}

func (p *simPrinter) Print(_ context.Context, _ string, t Ticket, _, _, patientRef string) (string, error) {
	data, err := tickets.Render(t, tickets.Format{PaperMM: 80, CodePage: "GB18030"})
	if err != nil {
		return "", err
	}
	if err := p.send(data); err != nil {
		return "", err
	}
	title := tickets.Title(t.TicketKind())
	if r, ok := t.(tickets.Report); ok {
		title = r.Kind + "报告 " + r.ServiceName
	}
	if r, ok := t.(tickets.Registration); ok {
		title = "挂号凭条 " + r.Department
	}
	id := ihos.NewID()
	p.mu.Lock()
	p.jobs[id] = simJob{data: data, title: title, kind: t.TicketKind(), patient: patientRef, at: time.Now()}
	p.seq = append(p.seq, id)
	p.mu.Unlock()
	return id, nil
}

func (p *simPrinter) JobStatus(_ context.Context, id string) (string, string, error) {
	return JobPrinted, "", nil
}

func (p *simPrinter) PatientJobs(_ context.Context, ref string, limit int) ([]PrintedTicket, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []PrintedTicket
	for i := len(p.seq) - 1; i >= 0 && len(out) < limit; i-- {
		if j := p.jobs[p.seq[i]]; j.patient == ref {
			out = append(out, PrintedTicket{JobID: p.seq[i], Kind: j.kind, Title: j.title, Status: JobPrinted, CreatedAt: j.at})
		}
	}
	return out, nil
}

func (p *simPrinter) Reprint(_ context.Context, id, _ string) (string, error) {
	p.mu.Lock()
	j, ok := p.jobs[id]
	p.mu.Unlock()
	if !ok {
		return "", ihos.Errorf(ihos.ENotFound, "打印任务不存在")
	}
	if err := p.send(j.data); err != nil {
		return "", err
	}
	n := ihos.NewID()
	j.at = time.Now()
	p.mu.Lock()
	p.jobs[n] = j
	p.seq = append(p.seq, n)
	p.mu.Unlock()
	return n, nil
}

// TestKioskBrowser drives the kiosk page in chromium at 1280x800 against the
// HIS simulator over HL7 and a printer simulator: pairing, a wrong ID number,
// an unknown patient, a demo patient's fees and reports, printing a report
// and a registration slip, a reprint, the e-voucher path, a disabled kiosk
// and the idle timeout.
func TestKioskBrowser(t *testing.T) {
	b := browsertest.New(t)
	ctx := context.Background()
	db := sqldbtest.SQLite(t)
	sim, err := hissim.Start(ctx, hissim.Config{DataDir: t.TempDir(), ResultDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	adapter := his.NewHL7(sim.MLLPAddr())
	adapter.Start()
	t.Cleanup(func() { adapter.Close() })
	ps, err := printersim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })

	// A demo patient with a registration today, unpaid fees and a final
	// report within 30 days.
	var patient hissim.DemoPatient
	var report ihos.HISReport
	var visit ihos.HISVisit
	var feeTotal int64
	today := time.Now().In(ihos.Shanghai)
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, ihos.Shanghai)
	for _, p := range hissim.DemoPatients[:20] {
		visits, err := adapter.VisitHistory(ctx, p.HISID, today)
		if err != nil {
			t.Fatal(err)
		}
		reports, err := adapter.Reports(ctx, p.HISID, time.Now().AddDate(0, 0, -reportDays))
		if err != nil {
			t.Fatal(err)
		}
		fees, err := adapter.UnpaidFees(ctx, p.HISID)
		if err != nil {
			t.Fatal(err)
		}
		var final []ihos.HISReport
		for _, r := range reports {
			if r.ResultStatus != "P" {
				final = append(final, r)
			}
		}
		var open []ihos.HISVisit
		for _, v := range visits {
			if v.Status != ihos.VisitCancelled && !v.VisitedAt.Before(today) {
				open = append(open, v)
			}
		}
		if len(open) > 0 && len(final) > 0 && len(fees) > 0 {
			patient, report, visit = p, final[0], open[0]
			for _, f := range fees {
				feeTotal += f.AmountFen
			}
			break
		}
	}
	if patient.HISID == "" {
		t.Fatal("no demo patient has a visit today, a report within 30 days and unpaid fees")
	}
	t.Logf("patient %s %s: report %s %s, visit %s %s, fees ¥%s", patient.HISID, patient.Name, report.ReportNo, report.ServiceName,
		visit.VisitNo, visit.DepartmentName, ihos.FormatYuan(feeTotal))

	printer := &simPrinter{addr: ps.Addr(), jobs: map[string]simJob{}}
	svc := New(db, adapter, printer, fakeVouchers{"ectoken-demo-1": patient.IDNumber}, "演示人民医院")
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

	// Pairing.
	b.Run(chromedp.Navigate(srv.URL + "/kiosk/"))
	visible("#screen-unpaired")
	if got := text("#screen-unpaired h1"); got != "本机尚未登记" {
		t.Errorf("unpaired heading %q", got)
	}
	code, err := svc.NewPairingCode(admin, id)
	if err != nil {
		t.Fatal(err)
	}
	keys("pair-keypad", code[:3])
	b.Screenshot("unpaired")
	keys("pair-keypad", code[3:])
	click("#pair-submit")
	visible("#screen-start")
	if got := text("#kiosk-name"); !strings.Contains(got, "门诊大厅 1 号机") {
		t.Errorf("footer %q", got)
	}
	b.Screenshot("start")

	// A wrong check digit, then an unknown but valid number.
	click("#by-id")
	visible("#screen-input")
	bad := patient.IDNumber[:17] + string(otherCheck(patient.IDNumber[17]))
	keys("input-keypad", bad)
	click("#input-submit")
	waitText("#input-error", msgBadID)
	b.Screenshot("wrong-id")
	click(`#input-keypad button[data-key="clear"]`)
	unknown := "11010119800101001"
	unknown += string(ihos.IDCheckDigit(unknown))
	keys("input-keypad", unknown)
	click("#input-submit")
	waitText("#input-error", msgUnknown)
	b.Screenshot("unknown-patient")

	// The demo patient.
	click(`#input-keypad button[data-key="clear"]`)
	keys("input-keypad", patient.IDNumber)
	click("#input-submit")
	visible("#screen-home")
	if got, want := text("#patient-name"), maskName(patient.Name); got != want {
		t.Errorf("name %q, want %q", got, want)
	}
	if got := text("#fee-total"); got != ihos.FormatYuan(feeTotal) {
		t.Errorf("fee total %q, want %s", got, ihos.FormatYuan(feeTotal))
	}
	b.Screenshot("home")

	click("#tile-fees")
	visible("#screen-fees")
	if got := text("#fee-sum"); got != ihos.FormatYuan(feeTotal) {
		t.Errorf("fee sum %q", got)
	}
	if got := text("#pay-hint"); got != msgPayHint {
		t.Errorf("pay hint %q", got)
	}
	b.Screenshot("fees")
	click("#screen-fees button.back")

	click("#tile-reports")
	visible("#screen-reports")
	waitText("#report-list", report.ServiceName)
	b.Screenshot("reports")
	idx := browsertest.Get(b, chromedp.Evaluate[int](fmt.Sprintf(`(function(){var t=document.querySelectorAll('#report-list .item-title');
		for(var i=0;i<t.length;i++){if(t[i].textContent.indexOf(%q)>=0)return i+1;}return 0;})()`, report.ServiceName)))
	if idx == 0 {
		t.Fatal("report not in the list")
	}
	click(fmt.Sprintf("#report-list .item:nth-child(%d) .item-button", idx))
	visible("#screen-report")
	waitText("#report-title", report.ServiceName)
	b.Screenshot("report")
	click("#report-print")
	visible("#screen-printing")
	waitText("#print-title", "打印完成")
	b.Screenshot("printed")
	if got := ticketText(t, ps, 1); !strings.Contains(got, report.ServiceName) || !strings.Contains(got, patient.Name) {
		t.Errorf("printed report:\n%s", got)
	}
	click("#print-done")
	visible("#screen-report")
	click("#report-back")
	click("#screen-reports button.back")

	click("#tile-visits")
	visible("#screen-visits")
	waitText("#visit-list", visit.DepartmentName)
	b.Screenshot("visits")
	click("#visit-list .item-button")
	waitText("#print-title", "打印完成")
	if got := ticketText(t, ps, 2); !strings.Contains(got, visit.DepartmentName) || !strings.Contains(got, visit.VisitNo) {
		t.Errorf("printed registration slip:\n%s", got)
	}
	click("#print-done")
	click("#screen-visits button.back")

	click("#tile-reprint")
	visible("#screen-reprint")
	waitText("#ticket-list", "挂号凭条")
	b.Screenshot("reprint")
	click("#ticket-list .item-button")
	waitText("#print-title", "打印完成")
	if got := ticketText(t, ps, 3); !strings.Contains(got, visit.DepartmentName) {
		t.Errorf("reprinted slip:\n%s", got)
	}
	saveTickets(t, ps, 3)
	click("#print-done")
	visible("#screen-reprint")
	click("#screen-reprint button.back")
	click("#logout")
	visible("#screen-start")

	// The e-voucher: the scanner types the code and Enter into the page.
	click("#by-voucher")
	visible("#screen-scan")
	b.Screenshot("scan")
	b.Run(chromedp.SendKeys(chromedp.CSS("#scan-input"), "ectoken-demo-1\r"))
	visible("#screen-home")
	click("#logout")
	visible("#screen-start")

	// Disabled in the console: the page says so, and so does every call.
	if err := svc.SetEnabled(admin, id, false); err != nil {
		t.Fatal(err)
	}
	b.Run(chromedp.Navigate(srv.URL + "/kiosk/"))
	visible("#screen-disabled")
	if got := text("#disabled-message"); got != msgDisabled {
		t.Errorf("disabled message %q", got)
	}
	b.Screenshot("disabled")
	if err := svc.SetEnabled(admin, id, true); err != nil {
		t.Fatal(err)
	}

	// The idle timeout: a countdown in the last 10 s, then the start screen.
	if _, err := db.Exec(`UPDATE kiosks SET idle_seconds = 15 WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	b.Run(chromedp.Navigate(srv.URL + "/kiosk/"))
	visible("#screen-start")
	click("#by-visit")
	visible("#screen-input")
	keys("input-keypad", "123")
	b.Timeout = 40 * time.Second
	visible("#countdown .dialog")
	if n := text("#countdown-n"); n == "" || len(n) > 2 {
		t.Errorf("countdown %q", n)
	}
	b.Screenshot("countdown")
	visible("#screen-start")
	if got := text("#input-display"); got != "" {
		t.Errorf("the input survived the timeout: %q", got)
	}
	// The wrong and the unknown ID number were refused with 400 and 404:
	// the browser logs those, and nothing else may fail.
	for _, e := range b.ConsoleErrors() {
		if !strings.Contains(e, "/kiosk/api/identify") || !strings.Contains(e, "status of 400") && !strings.Contains(e, "status of 404") {
			t.Errorf("browser console error: %s", e)
		}
	}
}

// otherCheck returns a check character that is not c.
func otherCheck(c byte) byte {
	if c == '1' {
		return '2'
	}
	return '1'
}

// ticketText waits for the n-th ticket (from 1) at the printer simulator and
// returns its text.
func ticketText(t *testing.T, ps *printersim.Sim, n int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
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

// saveTickets writes the first n tickets the printer simulator received as
// PNG next to the screenshots, when BROWSERTEST_SHOTS is set, to look at.
func saveTickets(t *testing.T, ps *printersim.Sim, n int) {
	t.Helper()
	root := os.Getenv("BROWSERTEST_SHOTS")
	if root == "" {
		return
	}
	dir := filepath.Join(root, t.Name())
	for i := range n {
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
