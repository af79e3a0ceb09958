package kiosk

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"ihos"
	"ihos/internal/auth"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
)

// fakeHIS answers from memory.
type fakeHIS struct {
	mu       sync.Mutex
	down     bool
	patients []ihos.HISPatient
	visitOf  map[string]string // visit number → HIS id
	visits   map[string][]ihos.HISVisit
	fees     map[string][]ihos.HISFee
	reports  map[string][]ihos.HISReport
}

func (h *fakeHIS) err() error {
	if h.down {
		return ihos.Errorf(ihos.EUnavailable, "HIS 无法连接")
	}
	return nil
}

func (h *fakeHIS) FindPatients(_ context.Context, id ihos.PatientIdentifier) ([]ihos.HISPatient, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.err(); err != nil {
		return nil, err
	}
	var out []ihos.HISPatient
	for _, p := range h.patients {
		if id.Type == ihos.IDResident && p.IDNumber == id.Value || id.Type == ihos.IDVisitNo && h.visitOf[id.Value] == p.HISID {
			out = append(out, p)
		}
	}
	return out, nil
}

func (h *fakeHIS) VisitHistory(_ context.Context, pid string, since time.Time) ([]ihos.HISVisit, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.visits[pid], h.err()
}

func (h *fakeHIS) UnpaidFees(_ context.Context, pid string) ([]ihos.HISFee, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fees[pid], h.err()
}

func (h *fakeHIS) Reports(_ context.Context, pid string, since time.Time) ([]ihos.HISReport, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reports[pid], h.err()
}

// demoHIS has 张三 (P000001) with a visit today, two fees and two reports.
func demoHIS() *fakeHIS {
	today := time.Now().In(ihos.Shanghai)
	p := ihos.HISPatient{HISID: "P000001", Name: "张三", Sex: "M", BirthDate: "1990-03-07", IDNumber: "110101199003078515", Phone: "13800138000"}
	return &fakeHIS{
		patients: []ihos.HISPatient{p},
		visitOf:  map[string]string{"V20250101001": "P000001"},
		visits: map[string][]ihos.HISVisit{"P000001": {{VisitNo: "V20250101001", DepartmentName: "心血管内科", DoctorName: "王建国",
			VisitedAt: today, QueueNo: "012", TimeSlot: "09:00-09:30", FeeFen: 5000, Status: ihos.VisitRegistered}}},
		fees: map[string][]ihos.HISFee{"P000001": {
			{FeeID: "F1", ItemName: "血常规", Quantity: "1", AmountFen: 2500, CreatedAt: today},
			{FeeID: "F2", ItemName: "阿司匹林肠溶片", Quantity: "2", AmountFen: 1830, CreatedAt: today},
		}},
		reports: map[string][]ihos.HISReport{"P000001": {
			{ReportNo: "L0001", Kind: ihos.CatalogLab, ServiceName: "血常规", DepartmentName: "检验科", DoctorName: "李检", ResultStatus: "F",
				ReportedAt: today.Add(-time.Hour), Observations: []ihos.HISObservation{{Name: "白细胞", Value: "11.2", Units: "10^9/L", Range: "3.5-9.5", Flag: "H"}}},
			{ReportNo: "E0002", Kind: ihos.CatalogExam, ServiceName: "胸部正位片", ResultStatus: "P", ReportedAt: today.Add(-2 * time.Hour), Conclusion: "双肺未见明显异常"},
		}},
	}
}

// fakePrinter keeps the tickets it was given.
type fakePrinter struct {
	mu      sync.Mutex
	jobs    []fakeJob
	status  string // what JobStatus answers; "" is printed
	lastErr string
}

type fakeJob struct {
	id, printer, source, patient string
	ticket                       Ticket
}

func (p *fakePrinter) Print(_ context.Context, printerID string, t Ticket, title, source, patientRef string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := ihos.NewID()
	p.jobs = append(p.jobs, fakeJob{id: id, printer: printerID, source: source, patient: patientRef, ticket: t})
	return id, nil
}

func (p *fakePrinter) JobStatus(_ context.Context, id string) (string, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status == "" {
		return JobPrinted, "", nil
	}
	return p.status, p.lastErr, nil
}

func (p *fakePrinter) PatientJobs(_ context.Context, ref string, limit int) ([]PrintedTicket, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []PrintedTicket
	for i := len(p.jobs) - 1; i >= 0; i-- {
		if j := p.jobs[i]; j.patient == ref {
			out = append(out, PrintedTicket{JobID: j.id, Kind: j.ticket.TicketKind(), Title: j.ticket.TicketKind(), Status: JobPrinted, CreatedAt: time.Now()})
		}
	}
	return out, nil
}

func (p *fakePrinter) Reprint(_ context.Context, id, source string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, j := range p.jobs {
		if j.id == id {
			n := j
			n.id, n.source = ihos.NewID(), source
			p.jobs = append(p.jobs, n)
			return n.id, nil
		}
	}
	return "", ihos.Errorf(ihos.ENotFound, "no job")
}

type fakeVouchers map[string]string

func (v fakeVouchers) Resolve(_ context.Context, qr string) (string, string, error) {
	if id, ok := v[qr]; ok {
		return id, "", nil
	}
	return "", "", ihos.Errorf(ihos.EInvalid, "凭证无效")
}

// rig is a kiosk service on a test server with a clock the test moves.
type rig struct {
	t       *testing.T
	db      *sqldb.DB
	svc     *Service
	his     *fakeHIS
	printer *fakePrinter
	srv     *httptest.Server
	clock   time.Time
	clockMu sync.Mutex
	admin   context.Context
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, db: sqldbtest.SQLite(t), his: demoHIS(), printer: &fakePrinter{}, clock: time.Now()}
	r.svc = New(r.db, r.his, r.printer, nil, "演示人民医院")
	r.svc.Now = func() time.Time { r.clockMu.Lock(); defer r.clockMu.Unlock(); return r.clock }
	mux := http.NewServeMux()
	r.svc.Routes(mux)
	r.srv = httptest.NewServer(web.Middleware(mux))
	t.Cleanup(r.srv.Close)
	r.admin = ihos.WithActor(context.Background(), ihos.Actor{UserID: "u1", Username: "admin", Role: auth.RoleHospitalAdmin})
	return r
}

func (r *rig) advance(d time.Duration) {
	r.clockMu.Lock()
	r.clock = r.clock.Add(d)
	r.clockMu.Unlock()
}

// addKiosk registers a kiosk as the console's resource form would.
func (r *rig) addKiosk(name, printerID string, idle int) string {
	r.t.Helper()
	return addKiosk(r.t, r.db, name, printerID, idle)
}

func addKiosk(t testing.TB, db *sqldb.DB, name, printerID string, idle int) string {
	t.Helper()
	id := ihos.NewID()
	now := ihos.FormatTime(time.Now())
	var printer any
	if printerID != "" {
		printer = printerID
	}
	if _, err := db.Exec(`INSERT INTO kiosks (id, name, location, printer_id, idle_seconds, created_at, updated_at) VALUES (?, ?, '门诊大厅', ?, ?, ?, ?)`,
		id, name, printer, idle, now, now); err != nil {
		t.Fatal(err)
	}
	return id
}

// device is a kiosk browser: a cookie jar and the patient session header.
type device struct {
	r       *rig
	c       *http.Client
	session string
}

func (r *rig) device() *device {
	jar, _ := cookiejar.New(nil)
	return &device{r: r, c: &http.Client{Jar: jar}}
}

// call sends a request and decodes the JSON answer into out (when not nil);
// it returns the status and the error message of a failed call.
func (d *device) call(method, path string, in, out any) (int, string) {
	d.r.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, d.r.srv.URL+path, body)
	req.Header.Set("X-Kiosk", "1")
	if d.session != "" {
		req.Header.Set("X-Kiosk-Session", d.session)
	}
	res, err := d.c.Do(req)
	if err != nil {
		d.r.t.Fatal(err)
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
			d.r.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return res.StatusCode, ""
}

// pair pairs the device with kiosk id.
func (d *device) pair(id string) {
	d.r.t.Helper()
	code, err := d.r.svc.NewPairingCode(d.r.admin, id)
	if err != nil {
		d.r.t.Fatal(err)
	}
	var st statusView
	if status, msg := d.call("POST", "/kiosk/api/pair", map[string]string{"code": code}, &st); status != 200 || st.State != StateReady {
		d.r.t.Fatalf("pair: %d %q %+v", status, msg, st)
	}
}

func (d *device) identify(method, value string) (*Overview, int, string) {
	d.r.t.Helper()
	var o Overview
	status, msg := d.call("POST", "/kiosk/api/identify", map[string]string{"method": method, "value": value}, &o)
	if status == 200 {
		d.session = o.Session
		return &o, status, ""
	}
	return nil, status, msg
}
