package kiosk

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/audit"
	"ihos/internal/auth"
	"ihos/internal/console"
	"ihos/tickets"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the access log of every request
	os.Exit(m.Run())
}

func auditActions(t *testing.T, r *rig, id string) []string {
	t.Helper()
	entries, _, err := audit.List(r.admin, r.db, audit.Filter{Resource: "kiosks", RecordID: id, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(entries) - 1; i >= 0; i-- {
		out = append(out, entries[i].Action+" "+entries[i].ActorName)
	}
	return out
}

func TestPairing(t *testing.T) {
	r := newRig(t)
	id := r.addKiosk("门诊大厅 1 号机", "printer-1", 60)
	d := r.device()

	var st statusView
	if d.call("GET", "/kiosk/api/status", nil, &st); st.State != StateUnpaired {
		t.Fatalf("new device: %+v", st)
	}
	if status, msg := d.call("POST", "/kiosk/api/identify", map[string]string{"method": ByIDNumber, "value": "110101199003078515"}, nil); status != 403 || msg != msgUnpaired {
		t.Fatalf("identify unpaired: %d %q", status, msg)
	}
	code, err := r.svc.NewPairingCode(r.admin, id)
	if err != nil || len(code) != 6 {
		t.Fatalf("code %q %v", code, err)
	}
	if got := r.svc.pendingCodes("u1")[id]; got != code {
		t.Errorf("console shows %q, want %q", got, code)
	}
	if got := r.svc.pendingCodes("someone-else"); len(got) != 0 {
		t.Errorf("another user sees codes %v", got)
	}
	var stored string
	r.db.QueryRow(`SELECT pairing_code_hash FROM kiosks WHERE id = ?`, id).Scan(&stored)
	if stored == "" || strings.Contains(stored, code) {
		t.Errorf("stored code %q", stored)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if status, msg := d.call("POST", "/kiosk/api/pair", map[string]string{"code": wrong}, nil); status != 400 || !strings.Contains(msg, "配对码不正确") {
		t.Fatalf("wrong code: %d %q", status, msg)
	}
	// Without the X-Kiosk header (a form from another site) nothing happens.
	res, err := http.Post(r.srv.URL+"/kiosk/api/pair", "application/json", strings.NewReader(`{"code":"`+code+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("pair without header: %d", res.StatusCode)
	}
	d.pair(id) // a fresh code, as NewPairingCode replaces the first
	cookies := d.c.Jar.Cookies(mustURL(r.srv.URL + "/kiosk/"))
	if len(cookies) != 1 || cookies[0].Name != CookieName || len(cookies[0].Value) != 64 {
		t.Fatalf("cookies %v", cookies)
	}
	var hash string
	r.db.QueryRow(`SELECT device_token_hash FROM kiosks WHERE id = ?`, id).Scan(&hash)
	if hash != hashHex(cookies[0].Value) {
		t.Errorf("stored token hash %q", hash)
	}
	if d.call("GET", "/kiosk/api/status", nil, &st); st.State != StateReady || st.Name != "门诊大厅 1 号机" || !st.Printer || st.Voucher {
		t.Errorf("paired status %+v", st)
	}

	// A code works once, and not after 10 minutes.
	other := r.device()
	code, _ = r.svc.NewPairingCode(r.admin, id)
	r.advance(CodeTTL + time.Second)
	if status, msg := other.call("POST", "/kiosk/api/pair", map[string]string{"code": code}, nil); status != 400 {
		t.Errorf("expired code: %d %q", status, msg)
	}
	// Re-pairing moves the kiosk to the new device; the old one is unpaired.
	other.pair(id)
	if d.call("GET", "/kiosk/api/status", nil, &st); st.State != StateUnpaired {
		t.Errorf("old device after re-pairing: %+v", st)
	}

	// Guessing is cut off after a few wrong codes (from one address: the
	// wrong codes above count too, so start afresh).
	r.svc.mu.Lock()
	r.svc.failures = nil
	r.svc.mu.Unlock()
	guesser := r.device()
	for i := range maxFailures {
		if status, _ := guesser.call("POST", "/kiosk/api/pair", map[string]string{"code": "99999" + string(rune('0'+i))}, nil); status != 400 {
			t.Fatalf("guess %d: %d", i, status)
		}
	}
	code, _ = r.svc.NewPairingCode(r.admin, id)
	if status, msg := guesser.call("POST", "/kiosk/api/pair", map[string]string{"code": code}, nil); status != 403 || !strings.Contains(msg, "次数过多") {
		t.Errorf("after %d wrong codes: %d %q", maxFailures, status, msg)
	}

	got := strings.Join(auditActions(t, r, id), "; ")
	if !strings.Contains(got, "pairing_code admin") || !strings.Contains(got, "pair kiosk:门诊大厅 1 号机") {
		t.Errorf("audit: %s", got)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestDisabledKiosk(t *testing.T) {
	r := newRig(t)
	id := r.addKiosk("1 号机", "printer-1", 60)
	d := r.device()
	d.pair(id)
	if _, status, msg := d.identify(ByIDNumber, "110101199003078515"); status != 200 {
		t.Fatalf("identify: %d %q", status, msg)
	}
	if err := r.svc.SetEnabled(r.admin, id, false); err != nil {
		t.Fatal(err)
	}
	var st statusView
	if d.call("GET", "/kiosk/api/status", nil, &st); st.State != StateDisabled || st.Message != msgDisabled {
		t.Errorf("status %+v", st)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/kiosk/api/overview"}, {"POST", "/kiosk/api/identify"}, {"POST", "/kiosk/api/print"}, {"POST", "/kiosk/api/reprint"}, {"GET", "/kiosk/api/jobs/x"}} {
		if status, msg := d.call(c.method, c.path, map[string]string{}, nil); status != 403 || msg != msgDisabled {
			t.Errorf("%s %s on a disabled kiosk: %d %q", c.method, c.path, status, msg)
		}
	}
	res, err := d.c.Get(r.srv.URL + "/kiosk/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(page), `data-state="disabled"`) || !strings.Contains(string(page), "本机暂停服务，请到人工窗口办理") {
		t.Errorf("page of a disabled kiosk: %s", ihos.Truncate(string(page), 400))
	}
	if err := r.svc.SetEnabled(r.admin, id, true); err != nil {
		t.Fatal(err)
	}
	// Disabling ended the patient's session.
	if status, msg := d.call("GET", "/kiosk/api/overview", nil, nil); status != 401 || msg != msgExpired {
		t.Errorf("old session after re-enabling: %d %q", status, msg)
	}
	if _, status, _ := d.identify(ByIDNumber, "110101199003078515"); status != 200 {
		t.Errorf("identify after re-enabling: %d", status)
	}
	got := strings.Join(auditActions(t, r, id), "; ")
	if !strings.Contains(got, "disable admin") || !strings.Contains(got, "enable admin") {
		t.Errorf("audit: %s", got)
	}
}

func TestSessionExpiry(t *testing.T) {
	r := newRig(t)
	id := r.addKiosk("1 号机", "printer-1", 30)
	d := r.device()
	d.pair(id)
	if _, status, _ := d.identify(ByIDNumber, "110101199003078515"); status != 200 {
		t.Fatal(status)
	}
	// Each call extends the session by twice the idle time.
	for range 3 {
		r.advance(50 * time.Second)
		if status, msg := d.call("GET", "/kiosk/api/overview", nil, nil); status != 200 {
			t.Fatalf("within the idle time: %d %q", status, msg)
		}
	}
	r.advance(61 * time.Second)
	if status, msg := d.call("GET", "/kiosk/api/overview", nil, nil); status != 401 || msg != msgExpired {
		t.Errorf("after 2×idle: %d %q", status, msg)
	}
	// Logout ends it; a session id of another kiosk or an old one is refused.
	if _, status, _ := d.identify(ByIDNumber, "110101199003078515"); status != 200 {
		t.Fatal(status)
	}
	old := d.session
	if _, status, _ := d.identify(ByVisitNo, "V20250101001"); status != 200 {
		t.Fatal(status)
	}
	d.session, old = old, d.session
	if status, _ := d.call("GET", "/kiosk/api/overview", nil, nil); status != 401 {
		t.Errorf("replaced session: %d", status)
	}
	d.session = old
	d.call("POST", "/kiosk/api/logout", map[string]string{}, nil)
	if status, _ := d.call("GET", "/kiosk/api/overview", nil, nil); status != 401 {
		t.Errorf("after logout: %d", status)
	}
}

func TestIdentify(t *testing.T) {
	r := newRig(t)
	id := r.addKiosk("1 号机", "printer-1", 60)
	d := r.device()
	d.pair(id)

	o, status, msg := d.identify(ByIDNumber, "110101199003078515")
	if status != 200 {
		t.Fatalf("%d %q", status, msg)
	}
	if o.Patient.Name != "张*" || o.Patient.Sex != "男" || len(o.Visits) != 1 || len(o.Fees) != 2 || o.FeeTotal != "43.30" || len(o.Reports) != 2 {
		t.Errorf("overview %+v", o)
	}
	if v := o.Visits[0]; v.QueueNo != "012" || v.Time != "09:00-09:30" || v.Fee != "50.00" || v.Status != "已挂号" || !v.Printable {
		t.Errorf("visit %+v", v)
	}
	if rp := o.Reports[0]; rp.Name != "血常规" || rp.Kind != "检验" || !rp.Printable || rp.Observations[0].Flag != "↑" {
		t.Errorf("report %+v", rp)
	}
	if rp := o.Reports[1]; rp.Printable || rp.Status != "初步报告" {
		t.Errorf("preliminary report %+v", rp)
	}
	if o.PayHint != msgPayHint {
		t.Errorf("pay hint %q", o.PayHint)
	}

	for _, c := range []struct {
		method, value string
		status        int
		msg           string
	}{
		{ByIDNumber, "110101199003078514", 400, msgBadID}, // wrong check digit
		{ByIDNumber, "11010119900307851", 400, msgBadID},  // 17 digits
		{ByIDNumber, "110101199003078523", 404, msgUnknown},
		{ByVisitNo, "V20250101001", 200, ""},
		{ByVisitNo, "V999", 404, msgUnknown},
		{ByVisitNo, "", 400, "就诊号有误，请核对挂号单上的就诊号"},
		{ByVoucher, "QR", 503, msgNoVoucher},
		{"card", "1", 400, "请选择识别方式"},
	} {
		if !ihos.ValidIDNumber("110101199003078523") {
			t.Fatal("test ID number must be valid")
		}
		_, status, msg := d.identify(c.method, c.value)
		if status != c.status || msg != c.msg {
			t.Errorf("%s %q: %d %q, want %d %q", c.method, c.value, status, msg, c.status, c.msg)
		}
	}
	// An X check character is typed in either case.
	r.his.patients = append(r.his.patients, ihos.HISPatient{HISID: "P9", Name: "欧阳小明", IDNumber: "11010519491231002X"})
	if o, status, msg := d.identify(ByIDNumber, "11010519491231002x"); status != 200 || o.Patient.Name != "欧**明" {
		t.Errorf("lower-case x: %d %q", status, msg)
	}

	r.svc.Vouchers = fakeVouchers{"ectoken-1": "110101199003078515"}
	if o, status, msg := d.identify(ByVoucher, "ectoken-1"); status != 200 || o.Patient.Name != "张*" {
		t.Errorf("voucher: %d %q", status, msg)
	}
	if _, status, msg := d.identify(ByVoucher, "stale"); status != 400 || msg != msgBadVoucher {
		t.Errorf("bad voucher: %d %q", status, msg)
	}

	r.his.mu.Lock()
	r.his.down = true
	r.his.mu.Unlock()
	if _, status, msg := d.identify(ByIDNumber, "110101199003078515"); status != 503 || msg != msgHISDown {
		t.Errorf("HIS down: %d %q", status, msg)
	}
}

func TestPrintAndReprint(t *testing.T) {
	r := newRig(t)
	id := r.addKiosk("1 号机", "printer-1", 60)
	d := r.device()
	d.pair(id)
	if _, status, _ := d.identify(ByIDNumber, "110101199003078515"); status != 200 {
		t.Fatal(status)
	}
	var job jobView
	if status, msg := d.call("POST", "/kiosk/api/print", map[string]string{"kind": PrintRegistration, "ref": "V20250101001"}, &job); status != 200 {
		t.Fatalf("print registration: %d %q", status, msg)
	}
	if status, msg := d.call("POST", "/kiosk/api/print", map[string]string{"kind": PrintReport, "ref": "L0001"}, &job); status != 200 {
		t.Fatalf("print report: %d %q", status, msg)
	}
	if status, msg := d.call("POST", "/kiosk/api/print", map[string]string{"kind": PrintReport, "ref": "E0002"}, nil); status != 409 || msg != "报告尚未审核，暂不能打印" {
		t.Errorf("preliminary report: %d %q", status, msg)
	}
	if status, _ := d.call("POST", "/kiosk/api/print", map[string]string{"kind": PrintReport, "ref": "OTHER"}, nil); status != 404 {
		t.Errorf("another report: %d", status)
	}
	if len(r.printer.jobs) != 2 {
		t.Fatalf("%d jobs", len(r.printer.jobs))
	}
	reg, ok := r.printer.jobs[0].ticket.(tickets.Registration)
	if !ok || reg.PatientName != "张三" || reg.QueueNo != "012" || reg.Fee != 5000 || reg.Department != "心血管内科" || reg.Hospital != "演示人民医院" {
		t.Errorf("registration ticket %#v", r.printer.jobs[0].ticket)
	}
	rep, ok := r.printer.jobs[1].ticket.(tickets.Report)
	if !ok || rep.ServiceName != "血常规" || rep.Sex != "男" || rep.Age == "" || len(rep.Lines) != 1 || rep.Lines[0].Flag != "H" {
		t.Errorf("report ticket %#v", r.printer.jobs[1].ticket)
	}
	if j := r.printer.jobs[1]; j.printer != "printer-1" || j.source != "kiosk:"+id || j.patient != "P000001" {
		t.Errorf("job %+v", j)
	}
	var st map[string]string
	if d.call("GET", "/kiosk/api/jobs/"+job.JobID, nil, &st); st["status"] != JobPrinted {
		t.Errorf("job status %v", st)
	}
	r.printer.status, r.printer.lastErr = "queued", "打印机缺纸"
	if d.call("GET", "/kiosk/api/jobs/"+job.JobID, nil, &st); st["status"] != JobPending || st["message"] != "打印机缺纸" {
		t.Errorf("waiting job %v", st)
	}
	if status, _ := d.call("GET", "/kiosk/api/jobs/not-mine", nil, nil); status != 404 {
		t.Errorf("someone else's job: %d", status)
	}

	// The earlier tickets come back in the overview and can be printed again.
	var o Overview
	d.call("GET", "/kiosk/api/overview", nil, &o)
	if len(o.Tickets) != 2 {
		t.Fatalf("tickets %+v", o.Tickets)
	}
	if status, msg := d.call("POST", "/kiosk/api/reprint", map[string]string{"job_id": o.Tickets[0].JobID}, &job); status != 200 {
		t.Fatalf("reprint: %d %q", status, msg)
	}
	if len(r.printer.jobs) != 3 || r.printer.jobs[2].source != "kiosk:"+id {
		t.Errorf("jobs after reprint %+v", r.printer.jobs)
	}
	// Another patient at the same kiosk cannot reprint the first one's ticket.
	r.his.patients = append(r.his.patients, ihos.HISPatient{HISID: "P2", Name: "李四", IDNumber: "110101199003078523"})
	if _, status, _ := d.identify(ByIDNumber, "110101199003078523"); status != 200 {
		t.Fatal(status)
	}
	if status, _ := d.call("POST", "/kiosk/api/reprint", map[string]string{"job_id": o.Tickets[0].JobID}, nil); status != 404 {
		t.Errorf("reprint of another patient's ticket: %d", status)
	}
	got := strings.Join(auditActions(t, r, id), "; ")
	if strings.Count(got, "print kiosk:1 号机") != 3 || !strings.Contains(got, "reprint kiosk:1 号机") {
		t.Errorf("audit: %s", got)
	}

	// A kiosk without a printer says so.
	id2 := r.addKiosk("2 号机", "", 60)
	d2 := r.device()
	d2.pair(id2)
	o2, _, _ := d2.identify(ByIDNumber, "110101199003078515")
	if o2.Printer || o2.Notice != msgNoPrinter || o2.Visits[0].Printable {
		t.Errorf("overview without a printer %+v", o2)
	}
	if status, msg := d2.call("POST", "/kiosk/api/print", map[string]string{"kind": PrintRegistration, "ref": "V20250101001"}, nil); status != 503 || msg != msgNoPrinter {
		t.Errorf("print without a printer: %d %q", status, msg)
	}
}

func TestConsolePage(t *testing.T) {
	r := newRig(t)
	id := r.addKiosk("1 号机", "", 60)
	a := auth.New(r.db)
	p := r.svc.Page(a)
	printers := &admin.Resource{Name: "printers", Table: "printers", Perm: "printing", Display: "name",
		Fields: []admin.Field{{Name: "name", Label: "名称", Type: admin.Text}}}
	store := admin.NewStore(r.db, nil, a, append(Resources(), printers)...)
	console.New(store, a, "test").AddPage(p) // panics on a template error

	post := func(action string) string {
		t.Helper()
		req, _ := http.NewRequestWithContext(r.admin, "POST", "/console/x/kiosk/"+action, strings.NewReader("id="+id))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		flash, err := p.Post(req, action)
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		return p.Flashes[flash]
	}
	if msg := post("code"); !strings.Contains(msg, "配对码已生成") {
		t.Errorf("code flash %q", msg)
	}
	req, _ := http.NewRequestWithContext(r.admin, "GET", "/console/x/kiosk", nil)
	data, err := p.Data(req)
	if err != nil {
		t.Fatal(err)
	}
	rows := data.(map[string]any)["Kiosks"].([]kioskRow)
	if len(rows) != 1 || len(rows[0].Code) != 6 || rows[0].Online || rows[0].Paired {
		t.Errorf("rows %+v", rows)
	}
	post("disable")
	if k, _ := r.svc.Kiosk(r.admin, id); k.Enabled {
		t.Error("still enabled")
	}
	post("enable")
	if k, _ := r.svc.Kiosk(r.admin, id); !k.Enabled {
		t.Error("still disabled")
	}
	// Staff without kiosk.write cannot.
	nurse := ihos.WithActor(r.admin, ihos.Actor{UserID: "u2", Role: auth.RoleAuditor})
	req, _ = http.NewRequestWithContext(nurse, "POST", "/console/x/kiosk/disable", strings.NewReader("id="+id))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := p.Post(req, "disable"); ihos.ErrorCode(err) != ihos.EForbidden {
		t.Errorf("without kiosk.write: %v", err)
	}
}

// TestScriptIsES5 keeps the kiosk script runnable in old Android WebViews.
func TestScriptIsES5(t *testing.T) {
	b, err := os.ReadFile("static/kiosk.js")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	// Comments may say what is not used; strip them first.
	src = regexp.MustCompile(`(?s)/\*.*?\*/`).ReplaceAllString(src, "")
	src = regexp.MustCompile(`(?m)^\s*//.*$`).ReplaceAllString(src, "")
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`=>`), regexp.MustCompile(`\blet\s`), regexp.MustCompile(`\bconst\s`), regexp.MustCompile("`"),
		regexp.MustCompile(`\bfetch\s*\(`), regexp.MustCompile(`\bPromise\b`), regexp.MustCompile(`\basync\b`), regexp.MustCompile(`\bawait\b`),
		regexp.MustCompile(`\bclass\s+[A-Z]`), regexp.MustCompile(`\.classList\b`), regexp.MustCompile(`\.\.\.`),
		regexp.MustCompile(`\.includes\(`), regexp.MustCompile(`\.startsWith\(`), regexp.MustCompile(`\bObject\.assign\b`),
		regexp.MustCompile(`\bArray\.from\b`), regexp.MustCompile(`\.forEach\(`), regexp.MustCompile(`\bfor\s*\([^)]*\bof\b`),
	} {
		if loc := bad.FindStringIndex(src); loc != nil {
			line := strings.Count(src[:loc[0]], "\n") + 1
			t.Errorf("kiosk.js uses %q (line %d after stripping comments)", bad.String(), line)
		}
	}
}

func TestMaskName(t *testing.T) {
	for in, want := range map[string]string{"张三": "张*", "张小三": "张*三", "欧阳小明": "欧**明", "王": "王", "": ""} {
		if got := maskName(in); got != want {
			t.Errorf("maskName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAge(t *testing.T) {
	at := time.Date(2025, 3, 6, 12, 0, 0, 0, ihos.Shanghai)
	for birth, want := range map[string]string{"1990-03-07": "34岁", "19900306": "35岁", "1990-03-05": "35岁", "": "", "2026-01-01": ""} {
		if got := age(birth, at); got != want {
			t.Errorf("age(%q) = %q, want %q", birth, got, want)
		}
	}
}
