package doctorapp_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ihos"
	"ihos/certs"
	"ihos/cloud"
	"ihos/doctorapp"
	"ihos/internal/browsertest"
	"ihos/internal/node"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
	"ihos/prescriptions"
	"ihos/sms"
	"ihos/sms/smssim"
	"ihos/staffauth"
	"ihos/visits"
)

const testHosp = "H1"

// fakeSigner stands in for the doctor's e-signature on the appliance (the
// cloud tests use the same): PIN 246810, "FAKE-SIG:" and the SM3 of the
// document.
type fakeSigner struct{}

func (fakeSigner) Sign(ctx context.Context, staffID, pin string, doc []byte) ([]byte, error) {
	if pin != "246810" {
		return nil, ihos.Errorf(ihos.EForbidden, "签名密码错误")
	}
	sum := certs.SM3Sum(doc)
	return []byte("FAKE-SIG:" + staffID + ":" + hex.EncodeToString(sum[:])), nil
}

// rig is a cloud on SQLite with one hospital, a doctor and a pharmacist
// granted app access (initial passwords), the SMS simulator for the daily
// real-name codes, a patient and a waiting visit in today's sitting.
type rig struct {
	t       *testing.T
	app     *cloud.App
	url     string
	sms     *smssim.Sim
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
	app, err := cloud.New(ctx, cloud.Config{Config: node.Config{DataDir: filepath.Join(t.TempDir(), "cloud"), HTTP: "127.0.0.1:0", LogLevel: "error", Database: dsn}})
	if err != nil {
		t.Fatalf("cloud.New: %v", err)
	}
	t.Cleanup(app.Close)
	srv := httptest.NewServer(web.Middleware(app.Handler))
	t.Cleanup(srv.Close)
	if _, err := app.Hospitals.Add(ctx, testHosp, "示例市第一人民医院"); err != nil {
		t.Fatal(err)
	}
	sim, err := smssim.Start(ctx, smssim.Config{AccessKeyID: "k", AccessKeySecret: "s", SignName: "示例医院", TemplateCode: "SMS_1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	app.Patients.SMS = &sms.Client{URL: sim.URL(), AccessKeyID: "k", AccessKeySecret: "s", SignName: "示例医院", TemplateCode: "SMS_1"}
	r := &rig{t: t, app: app, url: srv.URL, sms: sim}

	now := ihos.FormatTime(time.Now())
	r.exec(`INSERT INTO departments (id, hospital_id, institution_id, code, name, category, online, enabled, version, created_at, updated_at)
		VALUES ('d1', ?, 'i1', 'NK', '心血管内科', '临床', 1, 1, 1, ?, ?)`, testHosp, now, now)
	for _, s := range []struct{ id, kind, name, title, phone string }{
		{"doc1", ihos.StaffDoctor, "李明", "主任医师", docPhone},
		{"ph1", ihos.StaffPharmacist, "赵药师", "主管药师", phPhone},
		{"doc2", ihos.StaffDoctor, "王芳", "主治医师", lockedPhone},
	} {
		sealed, err := app.Node.Sealer.Seal(s.phone)
		if err != nil {
			t.Fatal(err)
		}
		r.exec(`INSERT INTO staff (id, hospital_id, institution_id, department_id, job_no, name, kind, title, online, enabled, phone, phone_bidx, license_no, version, created_at, updated_at)
			VALUES (?, ?, 'i1', 'd1', ?, ?, ?, ?, 1, 1, ?, ?, ?, 1, ?, ?)`, s.id, testHosp, "J"+s.id, s.name, s.kind, s.title, sealed, app.Node.Sealer.Index(s.phone), "LIC-"+s.id, now, now)
	}
	// The console's grant (on the appliance) writes the rows the cloud
	// receives; one database plays both sides here.
	console := staffauth.New(app.Node.DB, app.Node.Sealer)
	console.Hospital, console.BcryptCost = testHosp, 4
	if r.docPass, err = console.Grant(ctx, "doc1"); err != nil {
		t.Fatal(err)
	}
	if r.phPass, err = console.Grant(ctx, "ph1"); err != nil {
		t.Fatal(err)
	}
	if r.doc2Pass, err = console.Grant(ctx, "doc2"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		kind, code, name, spec string
		price                  int64
		flags                  string
	}{
		{"DRUG", "AML5", "苯磺酸氨氯地平片", "5mg*28片", 2350, ""},
		{"DRUG", "MOR", "吗啡缓释片", "10mg*10片", 5000, "NARC"},
		{"EXAM", "ECG", "常规心电图", "", 2500, ""},
	} {
		r.exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, spec, unit, price_fen, flags, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, '盒', ?, ?, 1, ?, ?)`,
			ihos.NewID(), testHosp, d.kind, d.code, d.name, d.spec, d.price, d.flags, now, now)
	}
	r.exec(`INSERT INTO patients (id, hospital_id, name, gender, birth_year, created_at, updated_at) VALUES ('P1', ?, '张三', '男', 1968, ?, ?)`, testHosp, now, now)
	// Today's sitting, around now, and a paid booking in it.
	today := time.Now().In(ihos.Shanghai).Format(time.DateOnly)
	r.exec(`INSERT INTO online_schedules (id, hospital_id, staff_id, visit_date, start_time, end_time, visit_type, slot_minutes, slot_count, enabled, version, created_at, updated_at)
		VALUES ('S1', ?, 'doc1', ?, '00:00', '23:59', 'text', 30, 0, 1, 1, ?, ?)`, testHosp, today, now, now)
	r.exec(`INSERT INTO bookings (id, hospital_id, slot_id, schedule_id, staff_id, department_id, patient_id, visit_type, start_at, end_at, fee, minutes, status, created_at, updated_at)
		VALUES ('B1', ?, 'S1:0', 'S1', 'doc1', 'd1', 'P1', 'text', ?, ?, 2000, 30, 'booked', ?, ?)`, testHosp, now, ihos.FormatTime(time.Now().Add(30*time.Minute)), now, now)
	v, err := app.Visits.Open(ctx, visits.VisitSpec{HospitalID: testHosp, BookingID: "B1", PatientID: "P1", DoctorID: "doc1", DepartmentID: "d1",
		Type: visits.TypeText, BookedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	r.visitID = v.ID
	if _, err := app.Visits.Post(ctx, visits.Party{Role: visits.RolePatient, ID: "P1"}, v.ID, visits.MessageInput{Kind: visits.KindText,
		Body: "病情描述：高血压三年，最近血压 150/95，头晕。\n既往史：无"}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) exec(q string, args ...any) {
	r.t.Helper()
	if _, err := r.app.Node.DB.ExecContext(context.Background(), q, args...); err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
}

// TestShell checks the PWA's pieces: the page, the manifest, the service
// worker (shell only) and that the app's own reads need a staff session.
func TestShell(t *testing.T) {
	r := newRig(t, "")
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(r.url + path)
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
	doc.open(r.url + "/doctor/")
	doc.Screenshot("login")
	doc.fill("#phone", docPhone)
	doc.fill("#password", "wrong-password-1")
	doc.Click("#login-submit")
	doc.WaitText("#login-error", "手机号或密码错误")

	doc.login(r.url, docPhone, r.docPass)
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
	for code = r.sms.LastCode(docPhone); code == ""; code = r.sms.LastCode(docPhone) {
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
	if _, err := r.app.Visits.Post(context.Background(), visits.Party{Role: visits.RolePatient, ID: "P1"}, r.visitID,
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
	r.app.EMR.Signer = fakeSigner{}
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
	r.app.Node.DB.QueryRow(`SELECT COUNT(*) FROM emr_records WHERE visit_id = ?`, r.visitID).Scan(&versions)
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
	r.app.Prescriptions.Signer = nil
	doc.Click("#rx-sign")
	doc.fill("#pin", "246810")
	doc.Click(`#dialog button[type=submit]`)
	doc.WaitText("#dialog .form-error", "电子签名服务暂不可用")
	doc.Screenshot("sign-unavailable")
	r.app.Prescriptions.Signer = fakeSigner{}
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
	ph.open(r.url + "/doctor/")
	for i := 0; i < 6 && !eval[bool](ph, `document.getElementById('login-error').textContent.indexOf('锁定') >= 0`); i++ {
		ph.fill("#phone", lockedPhone)
		ph.fill("#password", "wrong-password-1")
		ph.Click("#login-submit")
		ph.waitJS("answer", `!document.getElementById('login-submit').disabled`)
		time.Sleep(100 * time.Millisecond)
	}
	ph.WaitText("#login-error.locked", "账号已锁定")
	ph.Screenshot("locked")
	ph.login(r.url, phPhone, r.phPass)
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
	r.app.Node.DB.QueryRow(`SELECT status, revision FROM prescriptions WHERE visit_id = ? ORDER BY revision DESC LIMIT 1`, r.visitID).Scan(&status, &rev)
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
	doc.open(r.url + "/doctor/#/home")
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
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, r.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var e web.ErrorBody
		json.Unmarshal(b, &e)
		return resp.StatusCode, e.Message
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			r.t.Fatalf("%s %s: %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, ""
}

// session logs a staff member in and replaces the issued password.
func (r *rig) session(phone, initial string) string {
	r.t.Helper()
	var sess struct {
		Token string `json:"token"`
	}
	if code, msg := r.call("", "POST", "/api/staff/login", map[string]string{"phone": phone, "password": initial}, &sess); code != 200 {
		r.t.Fatalf("login %s: %d %s", phone, code, msg)
	}
	if code, msg := r.call(sess.Token, "POST", "/api/staff/password", map[string]string{"old_password": initial, "new_password": "Chosen-Pass-2026"}, nil); code != http.StatusNoContent {
		r.t.Fatalf("password %s: %d %s", phone, code, msg)
	}
	return sess.Token
}

// TestAppAPI checks the app's own reads on SQLite and MariaDB: the
// catalogue search (the doctor's hospital, active lines, narcotics marked,
// wildcards literal), the pharmacist's review history and a prescription's
// patient and doctor, each for whom they are.
func TestAppAPI(t *testing.T) {
	for _, engine := range []string{"sqlite", "mysql"} {
		t.Run(engine, func(t *testing.T) {
			dsn := ""
			if engine == "mysql" {
				dsn = sqldbtest.MySQLDSN(t)
			}
			testAppAPI(t, newRig(t, dsn))
		})
	}
}

func testAppAPI(t *testing.T, r *rig) {
	ctx := context.Background()
	doc := r.session(docPhone, r.docPass)
	ph := r.session(phPhone, r.phPass)
	doc2 := r.session(lockedPhone, r.doc2Pass)
	now := ihos.FormatTime(time.Now())
	// Another hospital's drug and a disabled one are not offered.
	r.exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, unit, price_fen, enabled, created_at, updated_at) VALUES (?, 'H2', 'DRUG', 'AML10', '苯磺酸氨氯地平片10mg', '盒', 3000, 1, ?, ?)`, ihos.NewID(), now, now)
	r.exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, unit, price_fen, enabled, created_at, updated_at) VALUES (?, ?, 'DRUG', 'AMLX', '氨氯地平（停用）', '盒', 3000, 0, ?, ?)`, ihos.NewID(), testHosp, now, now)

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
	r.app.Prescriptions.Signer = fakeSigner{}
	if _, err := r.app.Visits.Accept(ctx, visits.Party{Role: visits.RoleDoctor, ID: "doc1"}, r.visitID); err != nil {
		t.Fatal(err)
	}
	p, err := r.app.Prescriptions.Create(ctx, "doc1", prescriptions.Draft{VisitID: r.visitID, Diagnosis: "原发性高血压",
		Items: []prescriptions.ItemInput{{Code: "AML5", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.app.Prescriptions.Sign(ctx, "doc1", p.ID, "246810"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.app.Prescriptions.Submit(ctx, "doc1", p.ID); err != nil {
		t.Fatal(err)
	}
	var hist struct{ Items []prescriptions.Prescription }
	if code, _ := r.call(ph, "GET", "/doctor/api/reviewed", nil, &hist); code != 200 || len(hist.Items) != 0 {
		t.Fatalf("history before: %d %+v", code, hist)
	}
	if _, err := r.app.Prescriptions.Approve(ctx, "ph1", p.ID); err != nil {
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
