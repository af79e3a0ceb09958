package appliance_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"ihos/appliance"
	"ihos/internal/browsertest"
	"ihos/internal/sqldb"
)

// seedOnlineFixture puts the day of online visits (appliance.SeedOnlineVisits)
// on the demo appliance's replica, its doctors taken from the demo hospital:
// two in cardiology, one in paediatrics, and a pharmacist. one reads a
// single value from the database.
func seedOnlineFixture(t *testing.T, db *sqldb.DB) (ids appliance.OnlineFixtureIDs, one func(q string, args ...any) string) {
	t.Helper()
	one = func(q string, args ...any) string {
		t.Helper()
		var s string
		if err := db.QueryRowContext(context.Background(), q, args...).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return s
	}
	cardio, peds := one(`SELECT id FROM departments WHERE name = '心血管内科'`), one(`SELECT id FROM departments WHERE name = '儿科'`)
	ids = appliance.OnlineFixtureIDs{Dept1: cardio, Dept2: peds,
		Doc1:       one(`SELECT id FROM staff WHERE kind = 'doctor' AND department_id = ? ORDER BY job_no LIMIT 1`, cardio),
		Doc3:       one(`SELECT id FROM staff WHERE kind = 'doctor' AND department_id = ? ORDER BY job_no DESC LIMIT 1`, cardio),
		Doc2:       one(`SELECT id FROM staff WHERE kind = 'doctor' AND department_id = ? ORDER BY job_no LIMIT 1`, peds),
		Pharmacist: one(`SELECT id FROM staff WHERE kind = 'pharmacist' ORDER BY job_no LIMIT 1`),
	}
	appliance.SeedOnlineVisits(t, db, ids, appliance.OnlineFixtureDay)
	return ids, one
}

// consolePage reads and drives the console page open in the browser.
type consolePage struct {
	t *testing.T
	b *browsertest.Browser
}

// text is the trimmed text of the element sel.
func (p consolePage) text(sel string) string {
	p.t.Helper()
	return strings.TrimSpace(browsertest.Get(p.b, chromedp.Text(chromedp.CSS(sel))))
}

// load clicks sel and waits for the page it loads.
func (p consolePage) load(sel string) {
	p.t.Helper()
	browsertest.Get(p.b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel))))
}

// needsSession checks the link sel answers 401 to a request without the
// page's session cookie.
func (p consolePage) needsSession(sel string) {
	p.t.Helper()
	href := browsertest.Get(p.b, chromedp.Evaluate[string](`document.querySelector(`+strconv.Quote(sel)+`).href`))
	resp, err := http.Get(href)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		p.t.Errorf("%s without a session: %d", sel, resp.StatusCode)
	}
}

// count is the number of elements sel matches.
func (p consolePage) count(sel string) int {
	p.t.Helper()
	return browsertest.Get(p.b, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
}

// TestOnlineVisitsConsoleBrowser drives the console's 互联网诊疗 reports on a
// demo appliance whose replica holds a day of online visits
// (appliance.SeedOnlineVisits): as the hospital admin, 线上就诊记录 with its
// filters, a visit's detail and the exports, 医师工作量统计 and 医师接诊情况查询
// with their exports; then as the cardiology department admin, confined to
// cardiology. Every query lands in the audit log.
func TestOnlineVisitsConsoleBrowser(t *testing.T) {
	b := browsertest.New(t)
	dir := t.TempDir()
	in := startAppliance(t, filepath.Join(dir, "data"), filepath.Join(dir, "creds.json"))
	ids, one := seedOnlineFixture(t, in.app.Node.DB)
	if ids.Doc1 == ids.Doc3 {
		t.Fatal("the demo hospital needs two cardiology doctors")
	}
	cardio := ids.Dept1
	doc1Name := one(`SELECT name FROM staff WHERE id = ?`, ids.Doc1)
	doc2Name := one(`SELECT name FROM staff WHERE id = ?`, ids.Doc2)
	date := appliance.OnlineFixtureDay.Format("2006-01-02")

	p := consolePage{t, b}
	text, load, count := p.text, p.load, p.count
	contains := func(what, got string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(got, w) {
				t.Errorf("%s lacks %q: %q", what, w, got)
			}
		}
	}
	fetch := func(sel string) string {
		t.Helper()
		return browsertest.Get(b, chromedp.Evaluate[string](`fetch(document.querySelector(`+strconv.Quote(sel)+`).href).then(async r => {
			const b = new Uint8Array(await r.arrayBuffer());
			return r.status + ' ' + r.headers.get('content-type') + ' ' + String.fromCharCode(b[0], b[1]) + ' ' + b.length;
		})`, chromedp.EvalAwaitPromise))
	}
	exports := func(csv, xlsx string) {
		t.Helper()
		if got := fetch(csv); !strings.HasPrefix(got, "200 text/csv") {
			t.Errorf("%s: %s", csv, got)
		}
		if got := fetch(xlsx); !strings.HasPrefix(got, "200 ") || !strings.Contains(got, "spreadsheetml.sheet PK ") {
			t.Errorf("%s: %s", xlsx, got)
		}
	}
	login := func(key string) {
		t.Helper()
		creds := in.creds[key]
		b.Run(chromedp.Navigate(in.srv.URL+"/console/login"),
			chromedp.SendKeys(chromedp.ID("username"), creds.Username), chromedp.SendKeys(chromedp.ID("password"), creds.Password))
		load("#login")
	}

	login("console_hospital_admin")
	// The three pages follow 放号规则设置 in the menu.
	menu := browsertest.Get(b, chromedp.Evaluate[string](`[...document.querySelectorAll('nav.sidebar a')].map(a => a.textContent.trim()).join('|')`))
	if !strings.Contains(menu, "放号规则设置|线上就诊记录|医师工作量统计|医师接诊情况查询") {
		t.Errorf("menu: %s", menu)
	}

	// 线上就诊记录: everything, then the day in cardiology, then one patient.
	load(`nav.sidebar a[href="/console/x/online_visits"]`)
	if got := text("main.content h1"); got != "线上就诊记录" {
		t.Fatalf("heading %q", got)
	}
	if n := count("#online-visits tbody tr[data-id]"); n != 8 || text("#visit-total") != "8" {
		t.Errorf("%d visits listed", n)
	}
	b.Run(chromedp.SetValue(chromedp.CSS(`#visit-filters input[name=from]`), date),
		chromedp.SetValue(chromedp.CSS(`#visit-filters input[name=to]`), date),
		chromedp.SetValue(chromedp.CSS(`#visit-filters select[name=department]`), cardio))
	load("#visit-search")
	if n := count("#online-visits tbody tr[data-id]"); n != 5 {
		t.Errorf("cardiology on %s: %d rows", date, n)
	}
	// The waiting visits' slots are long over: 已超时.
	contains("V4 row", text(`#online-visits tr[data-id="ov-v-4"]`), "李四", "心血管内科", doc1Name, "图文问诊", date+" 11:30–11:45", "已超时")
	b.Screenshot("online-visits-list")
	b.Run(chromedp.SetValue(chromedp.CSS(`#visit-filters input[name=patient]`), "张三"),
		chromedp.SetValue(chromedp.CSS(`#visit-filters select[name=type]`), "text"))
	load("#visit-search")
	if n := count("#online-visits tbody tr[data-id]"); n != 1 || count(`#online-visits tr[data-id="ov-v-1"]`) != 1 {
		t.Errorf("张三's text visits: %d rows", n)
	}
	exports("#export-csv", "#export-xlsx")
	p.needsSession("#export-csv")

	// V1's detail: history, booking and condition, messages, prescriptions,
	// EMR, payments and the invoice.
	load(`#online-visits tr[data-id="ov-v-1"] a.detail`)
	if got := text("#detail-status"); got != "已结束" {
		t.Errorf("detail status %q", got)
	}
	contains("detail", text("#visit-detail"), "张三", doc1Name, "图文问诊", date+" 09:00–09:15")
	contains("messages", text("#visit-messages"), "共 7 条", "患者 3 条", "医生 1 条", "图片 1", "语音 1")
	contains("booking", text("#visit-booking"), "¥30.00", "已预约", "头晕一周，血压 150/95", "高血压 3 年")
	contains("history", text("#visit-events"), "待接诊 → 问诊中", "医生 "+doc1Name, "问诊中 → 已结束")
	contains("prescriptions", text("#visit-prescriptions"), "第 1 版", "已驳回", "驳回原因：剂量偏大", "第 2 版", "已支付", "氨氯地平片", "¥128.00")
	contains("EMR", text("#visit-emr"), "已签名", doc1Name)
	contains("payments", text("#visit-payments"), "问诊费", "处方", "¥30.00", "¥128.00", "已支付")
	contains("invoice", text("#visit-invoices"), "0000123456", "已开票")
	b.Screenshot("online-visit-detail")
	load("#back-to-list")
	if n := count("#online-visits tbody tr[data-id]"); n != 1 {
		t.Errorf("back to the filtered list: %d rows", n)
	}

	// 医师工作量统计 for the month up to the day.
	load(`nav.sidebar a[href="/console/x/doctor_workload"]`)
	b.Run(chromedp.SetValue(chromedp.CSS(`#workload-filters input[name=from]`), "2026-03-01"),
		chromedp.SetValue(chromedp.CSS(`#workload-filters input[name=to]`), date))
	load("#workload-search")
	// 图文 语音 视频 合计 处方 通过 审核 驳回 病历 笔数 收款 退款 收入
	cells := func(sel string) string {
		return browsertest.Get(b, chromedp.Evaluate[string](`[...document.querySelectorAll(`+strconv.Quote(sel+" td")+`)].map(td => td.textContent.trim()).join(' ')`))
	}
	if got := cells(`#workload-staff tr[data-key="` + ids.Doc1 + `"]`); !strings.HasSuffix(got, "2 0 1 3 3 3 0 0 2 3 ¥208.00 ¥20.00 ¥188.00") {
		t.Errorf("Doc1 workload %q", got)
	}
	if got := cells(`#workload-staff tr[data-key="` + ids.Pharmacist + `"]`); !strings.Contains(got, "0 0 0 0 0 0 4 1 0 0 ¥0.00 — ¥0.00") {
		t.Errorf("pharmacist workload %q", got)
	}
	if got := cells("#workload-total"); got != "合计 2 1 1 4 4 3 4 1 2 4 ¥238.00 ¥50.00 ¥188.00" {
		t.Errorf("workload total %q", got)
	}
	if got := text("#workload-net"); got != "¥188.00" {
		t.Errorf("net %q", got)
	}
	contains("by department", text("#workload-departments"), "心血管内科", "儿科", "药剂科")
	b.Screenshot("doctor-workload")
	exports("#workload-export-csv", "#workload-export-xlsx")

	// 医师接诊情况查询 for the day.
	load(`nav.sidebar a[href="/console/x/doctor_reception"]`)
	b.Run(chromedp.SetValue(chromedp.CSS(`#reception-filters input[name=from]`), date),
		chromedp.SetValue(chromedp.CSS(`#reception-filters input[name=to]`), date))
	load("#reception-search")
	// 总数 待接诊 已超时 问诊中 已结束 已取消 等候 时长
	if got := cells(`#reception-doctors tr[data-key="` + ids.Doc1 + `"]`); !strings.Contains(got, "5 0 2 1 2 0 3 分 20 秒 22 分 30 秒") {
		t.Errorf("Doc1 reception %q", got)
	}
	if got := cells(`#reception-doctors tr[data-key="` + ids.Doc3 + `"]`); !strings.Contains(got, "0 0 0 0 0 0 — —") {
		t.Errorf("Doc3 (scheduled, no visits) %q", got)
	}
	if got := cells("#reception-sum"); !strings.HasPrefix(got, "合计 7 0 2 1 3 1 2 分 30 秒 21 分 40 秒") {
		t.Errorf("reception total %q", got)
	}
	b.Screenshot("doctor-reception")
	exports("#reception-export-csv", "#reception-export-xlsx")
	load(`#reception-doctors tr[data-key="` + ids.Doc2 + `"] a.visits`)
	if n := count("#online-visits tbody tr[data-id]"); n != 2 || !strings.Contains(text("#online-visits"), doc2Name) {
		t.Errorf("Doc2's visits from the reception page: %d rows", n)
	}

	// The cardiology department admin sees cardiology only.
	load(`form[action="/console/logout"] button`)
	login("console_dept_admin")
	b.Run(chromedp.Navigate(in.srv.URL + "/console/x/online_visits"))
	if n := count("#online-visits tbody tr[data-id]"); n != 6 || count(`#online-visits tr[data-id="ov-v-6"]`) != 0 {
		t.Errorf("department admin: %d rows", n)
	}
	b.Run(chromedp.Navigate(in.srv.URL + "/console/x/doctor_workload?from=2026-03-01&to=" + date))
	if count(`#workload-staff tr[data-key="`+ids.Doc2+`"]`) != 0 || count(`#workload-staff tr[data-key="`+ids.Doc1+`"]`) != 1 {
		t.Errorf("department admin's workload: %s", text("#workload-staff"))
	}
	b.Screenshot("doctor-workload-dept-admin")
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("browser console errors: %v", errs)
	}
	// Another department's visit answers 404 (the browser logs the status).
	b.Run(chromedp.Navigate(in.srv.URL + "/console/x/online_visits?id=ov-v-6"))
	if got := text("main.content"); !strings.Contains(got, "没有这条就诊记录") {
		t.Errorf("another department's visit: %q", got)
	}

	// Every query was audited.
	for _, want := range []struct{ action, resource string }{{"view", "online_visits"}, {"view", "visits"}, {"export", "online_visits"},
		{"view", "doctor_workload"}, {"export", "doctor_workload"}, {"view", "doctor_reception"}, {"export", "doctor_reception"}} {
		if n := one(`SELECT COUNT(*) FROM audit_log WHERE action = ? AND resource = ?`, want.action, want.resource); n == "0" {
			t.Errorf("no %s %s in the audit log", want.action, want.resource)
		}
	}
	if got := one(`SELECT summary FROM audit_log WHERE action = 'view' AND resource = 'visits' ORDER BY seq DESC LIMIT 1`); !strings.Contains(got, "张三") {
		t.Errorf("detail audit %q", got)
	}
}

// TestOnlineVisitsAPI reads the same reports through the JSON API and the
// CSV export, as the auditor (read-only, every department) and the
// cardiology department admin (cardiology only).
func TestOnlineVisitsAPI(t *testing.T) {
	dir := t.TempDir()
	in := startAppliance(t, filepath.Join(dir, "data"), filepath.Join(dir, "creds.json"))
	ids, _ := seedOnlineFixture(t, in.app.Node.DB)
	peds := ids.Dept2
	date := appliance.OnlineFixtureDay.Format("2006-01-02")

	get := func(c *client, path string, want int, v any) {
		t.Helper()
		status, body := c.do("GET", path, nil)
		if status != want {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		if v != nil {
			if err := json.Unmarshal(body, v); err != nil {
				t.Fatalf("GET %s: %v in %s", path, err, body)
			}
		}
	}
	auditor := in.login(t, "console_auditor")
	var list struct {
		Items []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"items"`
		Total int `json:"total"`
	}
	get(auditor, "/api/admin/online-visits?from="+date+"&to="+date+"&status=ended", 200, &list)
	if list.Total != 3 || len(list.Items) != 3 {
		t.Errorf("ended visits on %s: %+v", date, list)
	}
	var detail struct {
		Visit struct {
			Status      string `json:"status"`
			PatientName string `json:"patient_name"`
		} `json:"visit"`
		Messages struct {
			Total int `json:"total"`
		} `json:"messages"`
		Prescriptions []struct {
			StatusLabel string `json:"status_label"`
		} `json:"prescriptions"`
		Payments []struct {
			Total int64 `json:"total"`
		} `json:"payments"`
	}
	get(auditor, "/api/admin/online-visits/ov-v-1", 200, &detail)
	if detail.Visit.PatientName != "张三" || detail.Messages.Total != 7 || len(detail.Prescriptions) != 2 || len(detail.Payments) != 2 {
		t.Errorf("detail %+v", detail)
	}
	var wl struct {
		From, To string
		Rows     []map[string]any `json:"rows"`
		Total    map[string]any   `json:"total"`
	}
	get(auditor, "/api/admin/doctor-workload?from=2026-03-01&to="+date, 200, &wl)
	if wl.Total["visits"] != 4.0 || wl.Total["income"] != 18800.0 || wl.Total["reviews"] != 4.0 || wl.From != "2026-03-01" {
		t.Errorf("workload total %+v", wl)
	}
	var rc struct {
		Rows  []map[string]any `json:"rows"`
		Total map[string]any   `json:"total"`
	}
	get(auditor, "/api/admin/doctor-reception?from="+date+"&to="+date, 200, &rc)
	if rc.Total["total"] != 7.0 || rc.Total["avg_wait_seconds"] != 150.0 || rc.Total["avg_duration_seconds"] != 1300.0 || len(rc.Rows) != 3 {
		t.Errorf("reception %+v", rc)
	}
	status, body := auditor.do("GET", "/api/admin/doctor-workload/export?format=csv&from=2026-03-01&to="+date, nil)
	csv := string(body)
	if status != 200 || !strings.Contains(csv, "按医师") || !strings.Contains(csv, "合计（2026-03-01 至 "+date+"）,,,,2,1,1,4,4,3,4,1,2,4,238.00,50.00,188.00") {
		t.Errorf("workload CSV %d:\n%s", status, csv)
	}
	get(auditor, "/api/admin/online-visits?type=phone", 400, nil)

	dept := in.login(t, "console_dept_admin")
	get(dept, "/api/admin/online-visits?department="+peds, 200, &list)
	if list.Total != 6 { // their own department's, whatever they ask
		t.Errorf("department admin's list: %+v", list)
	}
	get(dept, "/api/admin/online-visits/ov-v-7", 404, nil)
	get(dept, "/api/admin/doctor-reception?from="+date+"&to="+date, 200, &rc)
	if rc.Total["total"] != 5.0 || len(rc.Rows) != 2 {
		t.Errorf("department admin's reception %+v", rc)
	}
	get(in.anon(t), "/api/admin/online-visits", 401, nil)
}
