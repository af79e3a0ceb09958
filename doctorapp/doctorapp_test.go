package doctorapp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ihos"
	"ihos/cloud/cloudtest"
	"ihos/doctorapp"
	"ihos/internal/browsertest"
	"ihos/prescriptions"
	"ihos/staffauth"
	"ihos/visits"
)

// rig is a cloud on SQLite with one hospital, a doctor and a pharmacist
// granted app access (initial passwords), the SMS simulator for the daily
// real-name codes, a patient and a waiting visit in today's sitting.
type rig struct {
	*cloudtest.Cloud
	docPass string
	phPass  string
	// doc2Pass is the other doctor's initial password.
	doc2Pass string
	visitID  string
}

const (
	docPhone = "13600136000"
	phPhone  = "13500135000"
	// lockedPhone's account is locked by wrong passwords in the test.
	lockedPhone = "13400134000"
)

func newRig(t *testing.T, dsn string) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{Cloud: cloudtest.Start(t, cloudtest.Options{DSN: dsn, Hospital: "H1", Patients: true})}
	r.Department(cloudtest.Department{ID: "d1", Code: "NK", Name: "心血管内科"})
	for _, s := range []struct{ id, kind, name, title, phone string }{
		{"doc1", ihos.StaffDoctor, "李明", "主任医师", docPhone},
		{"ph1", ihos.StaffPharmacist, "赵药师", "主管药师", phPhone},
		{"doc2", ihos.StaffDoctor, "王芳", "主治医师", lockedPhone},
	} {
		r.Staff(cloudtest.Staff{ID: s.id, Department: "d1", JobNo: "J" + s.id, Name: s.name, Kind: s.kind, Title: s.title, Online: true, Phone: s.phone})
	}
	r.docPass, r.phPass, r.doc2Pass = r.Grant("doc1"), r.Grant("ph1"), r.Grant("doc2")
	r.Catalog(cloudtest.CatalogItem{Kind: "DRUG", Code: "AML5", Name: "苯磺酸氨氯地平片", Spec: "5mg*28片", Price: 2350},
		cloudtest.CatalogItem{Kind: "DRUG", Code: "MOR", Name: "吗啡缓释片", Spec: "10mg*10片", Price: 5000, Flags: "NARC"},
		cloudtest.CatalogItem{Kind: "EXAM", Code: "ECG", Name: "常规心电图", Price: 2500})
	now := ihos.FormatTime(time.Now())
	r.Exec(`INSERT INTO patients (id, hospital_id, name, gender, birth_year, created_at, updated_at) VALUES ('P1', ?, '张三', '男', 1968, ?, ?)`, r.Hospital, now, now)
	// Today's sitting, around now, and a paid booking in it.
	r.Schedule(cloudtest.Schedule{ID: "S1", Staff: "doc1", Date: cloudtest.Today(), Start: "00:00", End: "23:59", Type: "text", SlotMinutes: 30})
	r.Exec(`INSERT INTO bookings (id, hospital_id, slot_id, schedule_id, staff_id, department_id, patient_id, visit_type, start_at, end_at, fee, minutes, status, created_at, updated_at)
		VALUES ('B1', ?, 'S1:0', 'S1', 'doc1', 'd1', 'P1', 'text', ?, ?, 2000, 30, 'booked', ?, ?)`, r.Hospital, now, ihos.FormatTime(time.Now().Add(30*time.Minute)), now, now)
	v, err := r.App.Visits.Open(ctx, visits.VisitSpec{HospitalID: r.Hospital, BookingID: "B1", PatientID: "P1", DoctorID: "doc1", DepartmentID: "d1",
		Type: visits.TypeText, BookedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	r.visitID = v.ID
	if _, err := r.App.Visits.Post(ctx, visits.Party{Role: visits.RolePatient, ID: "P1"}, v.ID, visits.MessageInput{Kind: visits.KindText,
		Body: "病情描述：高血压三年，最近血压 150/95，头晕。\n既往史：无"}); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestShell checks the PWA's pieces: the page, the manifest, the service
// worker (shell only) and that the app's own reads need a staff session.
func TestShell(t *testing.T) {
	r := newRig(t, "")
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(r.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/doctor/")
	if resp.StatusCode != 200 || !strings.Contains(body, `rel="manifest"`) || !strings.Contains(body, "/doctor/static/app.js") {
		t.Fatalf("page: %d %s", resp.StatusCode, body)
	}
	resp, body = get("/doctor/manifest.webmanifest")
	var m struct {
		StartURL string `json:"start_url"`
		Scope    string `json:"scope"`
		Display  string `json:"display"`
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/manifest+json" || json.Unmarshal([]byte(body), &m) != nil || m.Scope != "/doctor/" || m.Display != "standalone" {
		t.Fatalf("manifest: %d %s", resp.StatusCode, body)
	}
	resp, body = get("/doctor/sw.js")
	if resp.StatusCode != 200 || !strings.Contains(body, "SHELL") || strings.Contains(body, "'/api/") {
		t.Fatalf("service worker: %d", resp.StatusCode)
	}
	for _, p := range []string{"/doctor/api/catalog?kind=drug&q=氨氯", "/doctor/api/reviewed", "/doctor/api/rx/x/context"} {
		if resp, _ := get(p); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s without a session: %d", p, resp.StatusCode)
		}
	}
}

// tinyPNG is a 2×2 PNG picture.
func tinyPNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// ui drives one browser (one person's device).
type ui struct {
	*browsertest.Browser
	t *testing.T
}

func newUI(t *testing.T) *ui { return &ui{Browser: browsertest.New(t), t: t} }

func (u *ui) open(url string) { u.Run(chromedp.Navigate(url)) }

func (u *ui) fill(sel, text string) {
	u.t.Helper()
	u.Run(chromedp.WaitVisible(chromedp.CSS(sel)))
	eval[bool](u, `(function(){ document.querySelector(`+strconv.Quote(sel)+`).value = ''; return true })()`)
	u.Run(chromedp.SendKeys(chromedp.CSS(sel), text))
}

// pick chooses value in the select sel, as a person does.
func (u *ui) pick(sel, value string) {
	u.t.Helper()
	eval[bool](u, `(function(){ var e = document.querySelector(`+strconv.Quote(sel)+`); e.value = `+strconv.Quote(value)+`; e.dispatchEvent(new Event('change')); return true })()`)
}

// eval runs a script and returns its value.
func eval[T any](u *ui, js string) T { return browsertest.Get(u.Browser, chromedp.Evaluate[T](js)) }

// waitJS waits until the expression is true.
func (u *ui) waitJS(what, js string) {
	u.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !eval[bool](u, js) {
		if time.Now().After(deadline) {
			u.Screenshot("failure")
			u.t.Fatalf("%s: not after 15 s (%s)", what, js)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitText waits until the element matching sel contains want, reading it
// in the page so a pane that re-renders meanwhile does not fail the read.
func (u *ui) WaitText(sel, want string) {
	u.t.Helper()
	u.waitJS(sel+" contains "+want, `(function(){ var e = document.querySelector(`+strconv.Quote(sel)+`); return !!e && e.textContent.indexOf(`+strconv.Quote(want)+`) >= 0 })()`)
}

// Click clicks sel once it is there.
func (u *ui) Click(sel string) {
	u.t.Helper()
	u.waitJS(sel+" present", `!!document.querySelector(`+strconv.Quote(sel)+`)`)
	u.Browser.Click(sel)
}

// login logs in with the initial password and chooses a new one.
func (u *ui) login(base, phone, initial string) {
	u.t.Helper()
	u.open(base + "/doctor/")
	u.fill("#phone", phone)
	u.fill("#password", initial)
	u.Click("#login-submit")
	u.WaitText(".card h2", "首次登录，请修改密码")
	u.fill("#old-password", initial)
	u.fill("#new-password", "Chosen-Pass-2026")
	u.fill("#new-password2", "Chosen-Pass-2026")
	u.Click("#pw-submit")
}

// TestDoctorAndPharmacist drives the app in two browsers: the doctor logs in,
// changes the issued password, is refused accepting before today's
// real-name check, does it with the SMS code, accepts the waiting patient,
// talks, writes a prescription (the narcotic refused), signs (the signing
// service first unavailable, then with the PIN) and submits; the pharmacist
// rejects with a reason; the doctor revises and resubmits; the pharmacist
// approves and finds both in the review history.
func TestDoctorAndPharmacist(t *testing.T) {
	r := newRig(t, "")
	doc := newUI(t)

	// A wrong password says so.
	doc.open(r.URL + "/doctor/")
	doc.Screenshot("login")
	doc.fill("#phone", docPhone)
	doc.fill("#password", "wrong-password-1")
	doc.Click("#login-submit")
	doc.WaitText("#login-error", "手机号或密码错误")

	doc.login(r.URL, docPhone, r.docPass)
	doc.WaitText(".card h2", "今日实名认证")
	doc.Screenshot("realname")
	// Later: the worklist first, with the waiting patient.
	doc.Click(`a[href="#/home"]`)
	doc.WaitText(".visit-card.waiting", "张三")
	doc.WaitText(".visit-card.waiting .queue", "第 1 位")
	doc.Visible("#realname-banner")
	doc.Screenshot("worklist")

	// Accepting before the real-name check is refused with the API's words.
	doc.Click(".visit-card.waiting")
	doc.WaitText("#chat", "高血压三年")
	doc.Click("#accept-btn")
	doc.WaitText("#room-error", staffauth.ErrRealName.Message)
	doc.Screenshot("accept-refused")

	doc.Click(`#room-error a[href="#/realname"]`)
	doc.Click("#rn-send")
	var code string
	deadline := time.Now().Add(10 * time.Second)
	for code = r.SMS.LastCode(docPhone); code == ""; code = r.SMS.LastCode(docPhone) {
		if time.Now().After(deadline) {
			t.Fatal("no real-name code reached the SMS simulator")
		}
		time.Sleep(50 * time.Millisecond)
	}
	doc.fill("#rn-code", code)
	doc.Click("#rn-submit")
	doc.WaitText(".visit-card.waiting", "张三")
	doc.waitJS("banner gone", `document.getElementById('realname-banner').hidden`)

	// Accept, talk.
	doc.Click(".visit-card.waiting")
	doc.Click("#accept-btn")
	doc.WaitText("#visit-status", "问诊中")
	doc.fill("#msg-text", "您好，请问最近一周血压多少？")
	doc.Click("#send-btn")
	doc.WaitText("#chat .msg.mine", "最近一周血压")
	// The patient answers: it arrives live through the visit's stream.
	if _, err := r.App.Visits.Post(context.Background(), visits.Party{Role: visits.RolePatient, ID: "P1"}, r.visitID,
		visits.MessageInput{Kind: visits.KindText, Body: "早上 145/90 左右"}); err != nil {
		t.Fatal(err)
	}
	doc.WaitText("#chat", "145/90")
	// A picture (multipart upload with the CSRF header), shown in the chat.
	png := filepath.Join(t.TempDir(), "bp.png")
	if err := os.WriteFile(png, tinyPNG(), 0o644); err != nil {
		t.Fatal(err)
	}
	doc.Run(chromedp.SetUploadFiles(chromedp.CSS("#img-file"), []string{png}))
	doc.waitJS("image shown", `(function(){ var i = document.querySelector('#chat .msg.mine img.msg-img'); return !!i && i.complete && i.naturalWidth === 2 })()`)
	doc.Screenshot("room-chat")

	// The doctor's own favourites, record template and treatment plan (set
	// up through the APIs from another device).
	var sess struct {
		Token string `json:"token"`
	}
	if code, msg := r.call("", "POST", "/api/staff/login", map[string]string{"phone": docPhone, "password": "Chosen-Pass-2026"}, &sess); code != 200 {
		t.Fatalf("second login: %d %s", code, msg)
	}
	for _, c := range []struct {
		path string
		body any
	}{
		{"/api/doctor/favourites", map[string]string{"kind": "drug", "code": "AML5"}},
		{"/api/doctor/favourites", map[string]string{"kind": "exam", "code": "ECG"}},
		{"/api/doctor/emr-templates", map[string]any{"name": "高血压复诊", "chief_complaint": "高血压复诊", "allergy_history": "否认药物过敏史",
			"diagnoses": []map[string]string{{"code": "I10.x00", "name": "原发性高血压"}}}},
		{"/api/doctor/plans", map[string]any{"name": "高血压一线方案", "diagnoses": []map[string]string{{"code": "I10.x00", "name": "原发性高血压"}},
			"drugs": []map[string]any{{"code": "AML5", "quantity": 1, "dosage": "5mg", "frequency": "qd", "days": 28, "usage": "口服"}}}},
	} {
		if code, msg := r.call(sess.Token, "POST", c.path, c.body, nil); code >= 300 {
			t.Fatalf("%s: %d %s", c.path, code, msg)
		}
	}

	// The record: a template applied, written, an ICD-10 diagnosis picked,
	// saved, signed.
	r.App.EMR.Signer = cloudtest.Signer{}
	doc.Click(".tab-emr")
	doc.WaitText("#emr-tpl", "高血压复诊")
	doc.pick("#emr-tpl", "0")
	doc.WaitText("#diag-chips", "I10.x00")
	if got := eval[string](doc, `document.getElementById('emr-allergy_history').value`); got != "否认药物过敏史" {
		t.Fatalf("template not applied: allergy %q", got)
	}
	doc.Click("#diag-chips button") // the template's diagnosis, picked again below
	doc.fill("#emr-chief_complaint", "头晕伴血压控制不佳 1 周")
	doc.fill("#emr-present_illness", "高血压病史 3 年，服药不规律，近 1 周晨起血压 145/90 mmHg。")
	doc.fill("#icd-q", "I10")
	doc.WaitText("#icd-results", "原发性高血压")
	doc.Click("#icd-results .result")
	doc.WaitText("#diag-chips", "I10")
	doc.fill("#emr-advice", "低盐饮食，监测血压")
	doc.Click("#emr-save")
	doc.WaitText(".emr .status", "草稿")
	doc.Click("#emr-sign")
	doc.fill("#pin", "246810")
	doc.Click(`#dialog button[type=submit]`)
	doc.WaitText(".emr .ok-text", "电子签名")
	doc.WaitText("#emr-revise", "修订")
	doc.Screenshot("emr-signed")
	// A correction is a new version; the signed one stays.
	doc.Click("#emr-revise")
	doc.fill("#revise-reason", "补充体格检查")
	doc.Click(`#dialog button[type=submit]`)
	doc.WaitText(".emr .status", "第 2 版")
	doc.fill("#emr-physical_exam", "BP 145/90 mmHg，心肺听诊无异常")
	doc.Click("#emr-sign")
	doc.fill("#pin", "246810")
	doc.Click(`#dialog button[type=submit]`)
	doc.WaitText(".emr .ok-text", "电子签名")
	var versions int
	r.App.Node.DB.QueryRow(`SELECT COUNT(*) FROM emr_records WHERE visit_id = ?`, r.visitID).Scan(&versions)
	if versions != 2 {
		t.Fatalf("record versions: %d", versions)
	}

	// The prescription: the narcotic is refused with the rule's message.
	doc.Click(".tab-rx")
	doc.fill("#drug-q", "吗啡")
	doc.WaitText("#drug-results", "不可在线开具")
	doc.Click("#drug-results .result")
	doc.WaitText(".favs", "苯磺酸氨氯地平片") // the favourite is one tap away
	doc.WaitText("#rx-plan", "高血压一线方案")
	doc.pick("#rx-plan", "0")
	doc.waitJS("two lines", `document.querySelectorAll('.rx-line').length === 2`)
	if got := eval[string](doc, `document.querySelector('.rx-line[data-i="1"] [data-k=frequency]').value + '/' + document.querySelector('.rx-line[data-i="1"] [data-k=days]').value`); got != "qd/28" {
		t.Fatalf("plan line: %q", got)
	}
	doc.fill(`.rx-line[data-i="1"] [data-k=dose]`, "5")
	doc.fill(`.rx-line[data-i="1"] [data-k=dose_unit]`, "mg")
	doc.fill("#rx-diagnosis", "原发性高血压")
	doc.Click("#rx-save")
	doc.WaitText("#rx-error", "麻醉药品、精神药品不能在互联网医院开具：吗啡缓释片")
	doc.Screenshot("rx-narcotic-refused")
	doc.Click(`[data-del="0"]`)
	doc.waitJS("one line", `document.querySelectorAll('.rx-line').length === 1`)
	doc.Click("#rx-save")
	doc.WaitText("#rx-status", "草稿")

	// Signing: first without a signing service (503), then with the PIN.
	r.App.Prescriptions.Signer = nil
	doc.Click("#rx-sign")
	doc.fill("#pin", "246810")
	doc.Click(`#dialog button[type=submit]`)
	doc.WaitText("#dialog .form-error", "电子签名服务暂不可用")
	doc.Screenshot("sign-unavailable")
	r.App.Prescriptions.Signer = cloudtest.Signer{}
	doc.fill("#pin", "111111")
	doc.Click(`#dialog button[type=submit]`)
	doc.WaitText("#dialog .form-error", "签名密码错误")
	doc.fill("#pin", "246810")
	doc.Click(`#dialog button[type=submit]`)
	doc.WaitText("#rx-status", "已签名")
	doc.Click("#rx-submit")
	doc.WaitText("#rx-status", prescriptions.StatusLabels[prescriptions.StatusUnderReview])
	doc.Screenshot("rx-submitted")

	// An exam order from the HIS catalogue, signed (sent when the HIS link
	// takes it).
	doc.Click(".tab-exam")
	doc.fill("#exam-q", "心电")
	doc.WaitText("#exam-results", "常规心电图")
	doc.Click(`.favs [data-fav="0"]`) // the favourite
	doc.WaitText(".exam-items", "常规心电图")
	doc.Click("#exam-save")
	doc.WaitText(".order", "常规心电图")
	doc.Click("[data-sign]")
	doc.fill("#pin", "246810")
	doc.Click(`#dialog button[type=submit]`)
	doc.waitJS("order signed", `!document.querySelector('[data-sign]') && !!document.querySelector('.order')`)
	doc.Screenshot("exam-signed")

	// The pharmacist, on another device.
	ph := newUI(t)
	// Too many wrong passwords lock an account (another doctor's here).
	ph.open(r.URL + "/doctor/")
	for i := 0; i < 6 && !eval[bool](ph, `document.getElementById('login-error').textContent.indexOf('锁定') >= 0`); i++ {
		ph.fill("#phone", lockedPhone)
		ph.fill("#password", "wrong-password-1")
		ph.Click("#login-submit")
		ph.waitJS("answer", `!document.getElementById('login-submit').disabled`)
		time.Sleep(100 * time.Millisecond)
	}
	ph.WaitText("#login-error.locked", "账号已锁定")
	ph.Screenshot("locked")
	ph.login(r.URL, phPhone, r.phPass)
	ph.WaitText(".rx-card", "张三")
	ph.Screenshot("review-queue")
	ph.Click(".rx-card")
	ph.WaitText("#sig-status", "医生已电子签名")
	ph.WaitText(".rx-paper", "原发性高血压")
	ph.WaitText(".rx-paper", "李明")
	ph.Click("#reject-btn")
	ph.WaitText("#review-error", "驳回处方须填写理由")
	ph.fill("#reject-reason", "剂量偏大，请核对")
	ph.Screenshot("review-detail")
	ph.Click("#reject-btn")
	ph.WaitText("#queue", "暂无待审处方")

	// The doctor sees the reason and resubmits a revised version.
	doc.Click(".tab-rx")
	doc.WaitText("#rx-reject", "剂量偏大，请核对")
	doc.Screenshot("rx-rejected")
	doc.Click("#rx-revise")
	doc.fill(`.rx-line[data-i="0"] [data-k=dose]`, "2.5")
	doc.Click("#rx-sign")
	doc.fill("#pin", "246810")
	doc.Click(`#dialog button[type=submit]`)
	doc.WaitText("#rx-status", "第 2 版")
	doc.Click("#rx-submit")
	doc.WaitText("#rx-status", "待审核")

	ph.Run(chromedp.Reload())
	ph.WaitText(".rx-card", "第 2 版")
	ph.Click(".rx-card")
	ph.WaitText(".reject-box", "上一版（第 1 版）驳回理由：剂量偏大")
	ph.Click("#approve-btn")
	ph.WaitText("#queue", "暂无待审处方")
	ph.Click(`a[href="#/reviewed"]`)
	ph.waitJS("two reviewed", `document.querySelectorAll('#reviewed .rx-card').length === 2`)
	ph.WaitText("#reviewed", "驳回理由：剂量偏大")
	ph.Screenshot("reviewed")

	doc.Run(chromedp.Reload())
	doc.WaitText(".rx .ok-text", "药师已审核通过")
	doc.Screenshot("rx-approved")

	// The app's API calls agree with the database.
	var status string
	var rev int
	r.App.Node.DB.QueryRow(`SELECT status, revision FROM prescriptions WHERE visit_id = ? ORDER BY revision DESC LIMIT 1`, r.visitID).Scan(&status, &rev)
	if status != prescriptions.StatusApproved || rev != 2 {
		t.Fatalf("latest prescription: %s rev %d", status, rev)
	}

	// Patient management: the patient, tagged as a key patient; the record.
	doc.Click(`a[href="#/patients"]`)
	doc.WaitText("#pt-list", "张三")
	doc.Click("[data-edit]")
	doc.fill("#edit-tags", "高血压，随访")
	doc.Click(`#dialog input[name=key]`)
	doc.Click(`#dialog button[type=submit]`)
	doc.WaitText("#pt-list .key", "★")
	doc.WaitText("#pt-list", "随访")
	doc.Screenshot("patients")
	doc.Click(`#pt-list a[href^="#/patient/"]`)
	doc.WaitText("#pt-record", "头晕伴血压控制不佳")
	doc.Screenshot("patient-record")

	// The schedule and the message center.
	doc.Click(`a[href="#/schedule"]`)
	doc.WaitText("#sched", "今天")
	doc.Screenshot("schedule")
	doc.Click(`a[href="#/notices"]`)
	doc.waitJS("notices loaded", `!document.querySelector('#notices .loading')`)
	doc.Screenshot("notices")

	// Phone size: the worklist and the room still fit.
	doc.Run(chromedp.EmulateViewport(390, 844))
	doc.open(r.URL + "/doctor/#/home")
	doc.WaitText(".visit-card.in-progress", "张三")
	doc.Screenshot("phone-worklist")
	doc.Click(".visit-card.in-progress")
	doc.WaitText("#chat", "145/90")
	doc.Screenshot("phone-room")

	for _, b := range []*ui{doc, ph} {
		for _, e := range b.ConsoleErrors() {
			// The browser logs the API's refusals the test provoked (4xx,
			// 503); anything else is an error of the app.
			if strings.Contains(e, "Failed to load resource: the server responded with a status of 4") ||
				strings.Contains(e, "Failed to load resource: the server responded with a status of 503") {
				continue
			}
			t.Errorf("JS error: %s", e)
		}
	}
}

// call sends body with a bearer token and decodes a 2xx answer into out.
func (r *rig) call(token, method, path string, body, out any) (int, string) {
	r.T.Helper()
	return r.Call(method, path, body, out, cloudtest.Bearer(token))
}

// TestAppAPI checks the app's own reads on SQLite and MariaDB: the
// catalogue search (the doctor's hospital, active lines, narcotics marked,
// wildcards literal), the pharmacist's review history and a prescription's
// patient and doctor, each for whom they are.
func TestAppAPI(t *testing.T) {
	cloudtest.Engines(t, func(t *testing.T, dsn string) { testAppAPI(t, newRig(t, dsn)) })
}

func testAppAPI(t *testing.T, r *rig) {
	ctx := context.Background()
	doc := r.StaffLogin(docPhone, r.docPass)
	ph := r.StaffLogin(phPhone, r.phPass)
	doc2 := r.StaffLogin(lockedPhone, r.doc2Pass)
	now := ihos.FormatTime(time.Now())
	// Another hospital's drug and a disabled one are not offered.
	r.Exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, unit, price_fen, enabled, created_at, updated_at) VALUES (?, 'H2', 'DRUG', 'AML10', '苯磺酸氨氯地平片10mg', '盒', 3000, 1, ?, ?)`, ihos.NewID(), now, now)
	r.Exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, unit, price_fen, enabled, created_at, updated_at) VALUES (?, ?, 'DRUG', 'AMLX', '氨氯地平（停用）', '盒', 3000, 0, ?, ?)`, ihos.NewID(), r.Hospital, now, now)

	var cat struct{ Items []doctorapp.CatalogItem }
	if code, msg := r.call(doc, "GET", "/doctor/api/catalog?kind=drug&q="+url.QueryEscape("氨氯"), nil, &cat); code != 200 || len(cat.Items) != 1 ||
		cat.Items[0].Code != "AML5" || cat.Items[0].Price != "23.50" || cat.Items[0].Restricted != "" {
		t.Fatalf("drug search: %d %s %+v", code, msg, cat)
	}
	if code, _ := r.call(doc, "GET", "/doctor/api/catalog?kind=drug&q=MOR", nil, &cat); code != 200 || len(cat.Items) != 1 || !strings.Contains(cat.Items[0].Restricted, "麻醉药品") {
		t.Fatalf("narcotic: %d %+v", code, cat)
	}
	if code, _ := r.call(doc, "GET", "/doctor/api/catalog?kind=exam&q="+url.QueryEscape("心电"), nil, &cat); code != 200 || len(cat.Items) != 1 || cat.Items[0].Code != "ECG" {
		t.Fatalf("exam search: %d %+v", code, cat)
	}
	for _, q := range []string{"%", "_", "!"} {
		if code, _ := r.call(doc, "GET", "/doctor/api/catalog?kind=drug&q="+url.QueryEscape(q), nil, &cat); code != 200 || len(cat.Items) != 0 {
			t.Fatalf("wildcard %q matched: %+v", q, cat)
		}
	}
	if code, msg := r.call(doc, "GET", "/doctor/api/catalog?kind=food", nil, nil); code != 400 {
		t.Fatalf("bad kind: %d %s", code, msg)
	}
	if code, msg := r.call(ph, "GET", "/doctor/api/catalog?kind=drug", nil, nil); code != 403 {
		t.Fatalf("pharmacist searches: %d %s", code, msg)
	}

	// A prescription, approved: the pharmacist's history and its people.
	r.App.Prescriptions.Signer = cloudtest.Signer{}
	if _, err := r.App.Visits.Accept(ctx, visits.Party{Role: visits.RoleDoctor, ID: "doc1"}, r.visitID); err != nil {
		t.Fatal(err)
	}
	p, err := r.App.Prescriptions.Create(ctx, "doc1", prescriptions.Draft{VisitID: r.visitID, Diagnosis: "原发性高血压",
		Items: []prescriptions.ItemInput{{Code: "AML5", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.App.Prescriptions.Sign(ctx, "doc1", p.ID, "246810"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.App.Prescriptions.Submit(ctx, "doc1", p.ID); err != nil {
		t.Fatal(err)
	}
	var hist struct{ Items []prescriptions.Prescription }
	if code, _ := r.call(ph, "GET", "/doctor/api/reviewed", nil, &hist); code != 200 || len(hist.Items) != 0 {
		t.Fatalf("history before: %d %+v", code, hist)
	}
	if _, err := r.App.Prescriptions.Approve(ctx, "ph1", p.ID); err != nil {
		t.Fatal(err)
	}
	if code, _ := r.call(ph, "GET", "/doctor/api/reviewed", nil, &hist); code != 200 || len(hist.Items) != 1 || hist.Items[0].ID != p.ID || hist.Items[0].Status != prescriptions.StatusApproved {
		t.Fatalf("history: %d %+v", code, hist)
	}
	if code, _ := r.call(doc, "GET", "/doctor/api/reviewed", nil, nil); code != 403 {
		t.Fatalf("doctor's review history: %d", code)
	}
	var who struct{ Patient, Doctor doctorapp.Person }
	for _, tok := range []string{doc, ph} {
		if code, msg := r.call(tok, "GET", "/doctor/api/rx/"+p.ID+"/context", nil, &who); code != 200 || who.Patient.Name != "张三" || who.Patient.Age < 50 ||
			who.Doctor.Name != "李明" || who.Doctor.Department != "心血管内科" {
			t.Fatalf("context: %d %s %+v", code, msg, who)
		}
	}
	if code, msg := r.call(doc2, "GET", "/doctor/api/rx/"+p.ID+"/context", nil, nil); code != 404 || msg != "处方不存在" {
		t.Fatalf("another doctor reads the context: %d %s", code, msg)
	}
}
