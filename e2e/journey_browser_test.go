package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"ihos"
	"ihos/his/hissim"
	"ihos/internal/browsertest"
	"ihos/prescriptions"
	"ihos/reconcile"
)

// TestJourneyBrowser is issue 8's acceptance: on `make run`'s stack, four
// people in four browsers (own profiles, own cookies) go through an online
// follow-up visit the way they use the pages. The patient (phone viewport)
// logs in by SMS, verifies their real name, links their hospital record,
// finds the demo doctor and books a 图文 slot with their condition, pays
// (the channel simulator pays by itself) and waits; the doctor (first login:
// new password, today's real-name check) accepts, they write to each other
// live (text and a photo), the doctor writes and signs the EMR (ICD-10
// search) and a prescription with the e-signature PIN and submits it; the
// pharmacist approves it; the patient sees the EMR and the prescription,
// pays it and sees it sent to the hospital, the doctor ends the visit, the
// patient rates it and finds the notices and the orders with their
// e-invoices; the hospital's administrator sees the visit, the workload and
// the reception on the console. Then what a person cannot see in a browser:
// both signatures verify through the appliance's signing API, the HIS
// simulator received the pharmacy order, and the day's payments reconcile
// with the channel.
func TestJourneyBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack and four browsers")
	}
	pb := browsertest.New(t) // skips without chromium
	start := time.Now()
	s := startRunStack(t)
	t.Logf("stack up in %v", time.Since(start).Round(time.Second))
	cloudDir := filepath.Join(s.dir, "cloud")
	h5 := s.url("CLOUD_HTTP", "/h5/")
	app := s.url("CLOUD_HTTP", "/doctor/")
	holder := hissim.DemoPatients[0] // 张三, diagnosed in 心血管内科 (the demo doctor's)
	if holder.Name != "张三" {
		t.Fatalf("demo patient %+v", holder)
	}

	// The demo doctor (D1001): who they are, as their login says.
	var doctor struct {
		ID, Name string
	}
	{
		var sess struct {
			Staff struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"staff"`
		}
		if code, e := call(t, "POST", s.url("CLOUD_HTTP", "/api/staff/login"), "", "", "",
			map[string]string{"phone": s.cred("doctor", "username"), "password": s.cred("doctor", "password")}, &sess); code != 200 {
			t.Fatalf("the demo doctor's login: %d %+v", code, e)
		}
		doctor.ID, doctor.Name = sess.Staff.ID, sess.Staff.Name
		var pub struct {
			Items []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"items"`
		}
		if code, e := call(t, "GET", s.url("CLOUD_HTTP", "/api/public/doctors?hospital=h1&q=")+doctor.Name, "", "", "", nil, &pub); code != 200 || len(pub.Items) == 0 {
			t.Fatalf("the demo doctor %s in /api/public/doctors: %d %+v %+v", doctor.Name, code, e, pub)
		}
	}

	// ---- 1. the patient: login, real name, HIS link, booking, payment ----
	phone := s.cred("patient", "username")
	pb.Timeout = 60 * time.Second
	pb.Run(chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile))
	pb.Run(chromedp.Navigate(h5 + "#/login?next=%23%2Fmembers"))
	pb.Run(chromedp.SendKeys(chromedp.CSS("#phone"), phone))
	tap(t, pb, "#send-code")
	waitText(t, pb, "#send-code", "秒后重发")
	pb.Run(chromedp.SendKeys(chromedp.CSS("#code"), s.smsCode(t, phone)))
	pb.Screenshot("patient-login")
	tap(t, pb, "#login")
	pb.Run(chromedp.SendKeys(chromedp.CSS("#rn-name"), holder.Name),
		chromedp.SendKeys(chromedp.CSS("#id_number"), holder.IDNumber))
	pb.Screenshot("patient-realname")
	tap(t, pb, "#rn-submit")
	// 关联院内档案: the HIS may need a moment for a new patient record.
	waitJS(t, pb, "the HIS link", 40*time.Second, `(() => {
		const row = document.querySelector('[data-member-row]');
		if (!row) return false;
		if (row.textContent.includes('已关联院内档案')) return true;
		const b = row.querySelector('button[data-member]');
		if (b && !b.disabled && !(window.__linkAt > Date.now() - 3000)) { window.__linkAt = Date.now(); b.click(); }
		return false;
	})()`)
	pb.Screenshot("patient-members-linked")

	pb.Run(chromedp.Navigate(h5 + "#/"))
	pb.Run(chromedp.SendKeys(chromedp.CSS("#q"), doctor.Name))
	pb.Run(chromedp.Click(chromedp.CSS(`form.search button[type=submit]`)))
	card := `#doctor-cards [data-doctor="` + doctor.ID + `"]`
	pb.Visible(card)
	waitText(t, pb, card, "心血管内科")
	pb.Screenshot("patient-find-doctor")
	tap(t, pb, card)
	pb.Visible(`#fees .fee[data-type="text"]`)
	tap(t, pb, `#fees .fee[data-type="text"]`)
	pb.Visible(`#slots button.slot:not([disabled])`)
	pb.Screenshot("patient-doctor-home")
	tap(t, pb, `#slots button.slot:not([disabled])`)
	condition, past := "近一周血压 150/95，偶有头晕，无胸痛。", "高血压 3 年，在本院心血管内科就诊，服用硝苯地平控释片。"
	pb.Run(chromedp.SendKeys(chromedp.CSS("#condition"), condition),
		chromedp.SendKeys(chromedp.CSS("#past_history"), past))
	pb.Screenshot("patient-book")
	tap(t, pb, "#book-submit")
	pb.Visible("#pay")
	waitText(t, pb, "#countdown", "内完成支付")
	pb.Screenshot("patient-pay")
	tap(t, pb, "#pay")
	waitJS(t, pb, "the waiting room after paying", 60*time.Second, `location.hash.startsWith('#/visit/') && !!document.querySelector('#queue:not([hidden])')`)
	waitText(t, pb, "#queue", "就是您")
	waitText(t, pb, "#chat", condition)
	vid := strings.TrimPrefix(browsertest.Get(pb, chromedp.Evaluate[string](`location.hash`)), "#/visit/")
	if i := strings.IndexAny(vid, "?/"); i >= 0 {
		vid = vid[:i]
	}
	pb.Screenshot("patient-waiting")

	// ---- 2. the doctor: first login, real-name check, accept, chat ----
	db := browsertest.New(t)
	db.Timeout = 60 * time.Second
	staffLogin(t, db, "doctor", app, s.cred("doctor", "username"), s.cred("doctor", "password"), "Journey2026doc")
	db.Visible("#rn-send")
	tap(t, db, "#rn-send")
	waitText(t, db, "#rn-send", "秒后重发")
	db.Run(chromedp.SendKeys(chromedp.CSS("#rn-code"), s.smsCode(t, s.cred("doctor", "username"))))
	db.Screenshot("doctor-realname")
	tap(t, db, "#rn-submit")
	waiting := `#worklist .visit-card.waiting[data-visit="` + vid + `"]`
	db.Visible(waiting)
	waitText(t, db, waiting, holder.Name)
	db.Screenshot("doctor-worklist")
	tap(t, db, waiting)
	db.Visible("#accept-btn")
	waitText(t, db, "#chat", condition)
	tap(t, db, "#accept-btn")
	waitText(t, db, "#visit-status", "问诊中")
	hello := "您好，我是" + doctor.Name + "医生。最近早晚血压各是多少？有没有按时服药？"
	db.Run(chromedp.SendKeys(chromedp.CSS("#msg-text"), hello))
	tap(t, db, "#send-btn")
	waitText(t, db, "#chat .msg.mine", "按时服药")

	// The patient sees it live and answers with text and a photo.
	waitText(t, pb, `#chat .msg[data-role="doctor"]`, "按时服药")
	waitText(t, pb, "#visit-status", "问诊中")
	answer := "早上 145/90，晚上 150/95，每天按时服药。这是今早的血压计读数。"
	pb.Run(chromedp.SendKeys(chromedp.CSS("#msg-text"), answer))
	tap(t, pb, "#msg-send")
	waitText(t, pb, "#chat", "每天按时服药")
	pb.Run(chromedp.SetUploadFiles(chromedp.CSS("#msg-image"), []string{photo(t)}))
	pb.Visible("#chat .msg.me img")
	waitJS(t, pb, "the photo shown", 20*time.Second, `[...document.querySelectorAll('#chat .msg.me img')].some(i => i.complete && i.naturalWidth > 0)`)
	pb.Screenshot("patient-chat")

	waitText(t, db, "#chat", "每天按时服药")
	db.Visible("#chat .msg.theirs img.msg-img")
	waitJS(t, db, "the patient's photo at the doctor", 20*time.Second, `[...document.querySelectorAll('#chat .msg.theirs img')].some(i => i.complete && i.naturalWidth > 0)`)
	db.Screenshot("doctor-chat")

	// The EMR: written, an ICD-10 diagnosis, signed with the PIN.
	pin := s.cred("doctor", "pin")
	if len(pin) < 6 {
		t.Fatalf("no signing PIN for the demo doctor in demo-credentials.json: %v", s.creds["doctor"])
	}
	db.Visible("#emr-form")
	db.Run(chromedp.SendKeys(chromedp.CSS("#emr-chief_complaint"), "血压控制不佳 1 周"),
		chromedp.SendKeys(chromedp.CSS("#emr-present_illness"), "高血压 3 年，规律服用硝苯地平控释片 30mg qd，近 1 周血压 145-150/90-95 mmHg，偶有头晕。"),
		chromedp.SendKeys(chromedp.CSS("#emr-past_history"), "高血压 3 年"),
		chromedp.SendKeys(chromedp.CSS("#emr-allergy_history"), "否认药物过敏史"),
		chromedp.SendKeys(chromedp.CSS("#emr-physical_exam"), "患者自测血压 150/95 mmHg"),
		chromedp.SendKeys(chromedp.CSS("#emr-advice"), "继续原方案治疗，低盐饮食，每日监测血压，2 周后复诊。"),
		chromedp.SendKeys(chromedp.CSS("#icd-q"), "I10"))
	waitText(t, db, "#icd-results", "I10")
	tap(t, db, "#icd-results button.result")
	waitText(t, db, "#diag-chips", "I10")
	db.Screenshot("doctor-emr")
	tap(t, db, "#emr-sign")
	signWithPIN(db, pin)
	waitText(t, db, "#side-pane .ok-text", "电子签名")
	db.Screenshot("doctor-emr-signed")

	// The prescription: a common drug from the catalogue, signed, submitted.
	tap(t, db, "#room-tabs a.tab-rx")
	db.Visible("#drug-q")
	db.Run(chromedp.SendKeys(chromedp.CSS("#drug-q"), "硝苯地平"))
	waitText(t, db, "#drug-results", "硝苯地平控释片")
	clickJS(t, db, `[...document.querySelectorAll('#drug-results button.result')].find(b => b.textContent.includes('硝苯地平控释片') && !b.querySelector('.restricted'))`)
	db.Visible(`#rx-lines .rx-line[data-i="0"]`)
	line := `#rx-lines .rx-line[data-i="0"] `
	for k, v := range map[string]string{"dose": "30", "dose_unit": "mg", "frequency": "qd", "days": "14", "route": "口服", "quantity": "2"} {
		db.Run(chromedp.SetValue(chromedp.CSS(line+`[data-k="`+k+`"]`), v))
	}
	if got := browsertest.Get(db, chromedp.Evaluate[string](`document.querySelector('#rx-diagnosis').value`)); !strings.Contains(got, "高血压") {
		t.Errorf("the prescription's diagnosis from the EMR: %q", got)
		db.Run(chromedp.SetValue(chromedp.CSS("#rx-diagnosis"), "原发性高血压"))
	}
	db.Screenshot("doctor-rx")
	tap(t, db, "#rx-sign")
	signWithPIN(db, pin)
	tap(t, db, "#rx-submit")
	waitText(t, db, "#rx-status", "审核")
	db.Screenshot("doctor-rx-submitted")

	// ---- 3. the pharmacist approves ----
	rb := browsertest.New(t)
	rb.Timeout = 60 * time.Second
	staffLogin(t, rb, "pharmacist", app, s.cred("pharmacist", "username"), s.cred("pharmacist", "password"), "Journey2026rph")
	rb.Visible("#queue a.rx-card")
	waitText(t, rb, "#queue", "硝苯地平控释片")
	rb.Screenshot("pharmacist-queue")
	tap(t, rb, "#queue a.rx-card")
	rb.Visible("#approve-btn")
	waitText(t, rb, "#sig-status", "医生已电子签名")
	rb.Screenshot("pharmacist-review")
	tap(t, rb, "#approve-btn")
	waitJS(t, rb, "back to the queue", 20*time.Second, `location.hash === '#/home'`)
	rb.Visible("#queue .empty")
	rb.Screenshot("pharmacist-approved")
	// The doctor's open prescription shows the review live.
	waitText(t, db, "#rx-status", "审核通过")

	// ---- 4. the patient: EMR, prescription, payment ----
	tap(t, pb, `#vtabs button[data-tab="emr"]`)
	waitText(t, pb, "#emr", "I10")
	waitText(t, pb, "#emr", "血压控制不佳")
	pb.Screenshot("patient-emr")
	tap(t, pb, `#vtabs button[data-tab="rx"]`)
	pb.Visible("#rx button[data-rx]")
	waitText(t, pb, "#rx", "硝苯地平控释片")
	pb.Screenshot("patient-rx")
	tap(t, pb, "#rx button[data-rx]")
	waitJS(t, pb, "the prescription sent to the hospital", 90*time.Second, `(document.querySelector('#rx') || {}).textContent.includes('已发送至医院')`)
	pb.Screenshot("patient-rx-sent")

	// The doctor ends the visit; the patient rates it.
	tap(t, db, "#end-btn")
	db.Visible(`#dialog button[type=submit]`)
	tap(t, db, `#dialog button[type=submit]`)
	waitText(t, db, "#visit-status", "已结束")
	db.Screenshot("doctor-ended")

	tap(t, pb, `#vtabs button[data-tab="chat"]`)
	waitText(t, pb, "#visit-status", "已结束")
	pb.Visible(`#stars button[data-score="5"]`)
	pb.Visible("#rate-tags button.chip")
	tap(t, pb, `#stars button[data-score="5"]`)
	tap(t, pb, `#rate-tags button.chip[data-tag="解答专业"]`)
	pb.Run(chromedp.SendKeys(chromedp.CSS("#comment"), "医生回复很及时，讲解很清楚。"))
	pb.Screenshot("patient-rate")
	tap(t, pb, "#rate-submit")
	waitText(t, pb, "#rate", "感谢您的评价")
	pb.Screenshot("patient-rated")

	// 消息 and 我的订单 (each with its e-invoice once issued).
	pb.Run(chromedp.Navigate(h5 + "#/messages"))
	pb.Visible("#notices .notice")
	for _, want := range []string{"处方", "病历"} {
		waitText(t, pb, "#notices", want)
	}
	pb.Screenshot("patient-messages")
	waitJS(t, pb, "both orders with their e-invoices", 90*time.Second, `(() => {
		if (location.hash !== '#/orders') { location.hash = '#/orders'; return false; }
		const n = document.querySelectorAll('#order-list [data-order] a[href]').length;
		if (n >= 2) return true;
		if (!(window.__ordersAt > Date.now() - 2000)) { window.__ordersAt = Date.now(); window.dispatchEvent(new HashChangeEvent('hashchange')); }
		return false;
	})()`)
	waitText(t, pb, "#order-list", "¥")
	pb.Screenshot("patient-orders")
	if errs := pageErrors(pb); len(errs) > 0 {
		t.Errorf("the patient's pages: JS errors %q", errs)
	}
	if errs := pageErrors(db); len(errs) > 0 {
		t.Errorf("the doctor's app: JS errors %q", errs)
	}
	if errs := pageErrors(rb); len(errs) > 0 {
		t.Errorf("the pharmacist's app: JS errors %q", errs)
	}

	// ---- 5. the hospital's administrator on the console ----
	ab := browsertest.New(t)
	ab.Timeout = 60 * time.Second
	console := s.url("APPLIANCE_HTTP", "/console/")
	load := func(sel string) {
		t.Helper()
		ab.Run(chromedp.WaitVisible(chromedp.CSS(sel)))
		browsertest.Get(ab, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel))))
	}
	ab.Run(chromedp.Navigate(console+"login"),
		chromedp.SendKeys(chromedp.ID("username"), s.cred("console_hospital_admin", "username")),
		chromedp.SendKeys(chromedp.ID("password"), s.cred("console_hospital_admin", "password")))
	load("#login")
	today := time.Now().In(ihos.Shanghai).Format(time.DateOnly)
	// Replication takes a moment: reload until the visit is there, ended,
	// with its EMR signed and both payments.
	detail := console + "x/online_visits?id=" + vid
	waitPage(t, ab, detail, "the visit's detail on the console", 60*time.Second, `(() => {
		const t = s => (document.querySelector(s) || {}).textContent || '';
		return t('#detail-status').includes('已结束') && t('#visit-emr').includes('已签名') &&
			t('#visit-prescriptions').includes('硝苯地平控释片') && document.querySelectorAll('#visit-payments tr[data-status="paid"]').length >= 2;
	})()`)
	waitText(t, ab, "#visit-detail", holder.Name)
	waitText(t, ab, "#visit-booking", "近一周血压")
	ab.Screenshot("console-visit-detail")
	load("#back-to-list")
	ab.Visible(`#online-visits tr[data-id="` + vid + `"]`)
	waitText(t, ab, `#online-visits tr[data-id="`+vid+`"]`, holder.Name)
	ab.Screenshot("console-visits")
	cells := func(sel string) []string {
		return strings.Fields(browsertest.Get(ab, chromedp.Evaluate[string](`[...document.querySelectorAll(`+strconv.Quote(sel+" td")+`)].map(td => td.textContent.trim().replace(/\s+/g, '')).join(' ')`)))
	}
	row := `#workload-staff tr[data-key="` + doctor.ID + `"]`
	waitPage(t, ab, console+"x/doctor_workload?from="+today+"&to="+today, "the doctor's workload", 60*time.Second,
		`!!document.querySelector(`+strconv.Quote(row)+`)`)
	// 科室 姓名 职称 图文 语音 视频 问诊合计 开具处方 处方通过 药师审核 其中驳回 [签署病历] 收款笔数 收款 退款 收入
	got := cells(row)
	if len(got) != 16 || got[3] != "1" || got[6] != "1" || got[7] != "1" || got[8] != "1" || got[11] != "1" || got[12] != "2" || got[15] == "¥0.00" {
		t.Errorf("the doctor's workload today: %q", got)
	}
	ab.Screenshot("console-workload")
	row = `#reception-doctors tr[data-key="` + doctor.ID + `"]`
	waitPage(t, ab, console+"x/doctor_reception?from="+today+"&to="+today, "the doctor's reception", 30*time.Second,
		`!!document.querySelector(`+strconv.Quote(row)+`)`)
	// 科室 医师 职称 就诊总数 待接诊 已超时 问诊中 已结束 已取消 …
	if got := cells(row); len(got) < 8 || got[3] != "1" || got[7] != "1" {
		t.Errorf("the doctor's reception today: %q", got)
	}
	ab.Screenshot("console-reception")
	if errs := pageErrors(ab); len(errs) > 0 {
		t.Errorf("the console: JS errors %q", errs)
	}

	// ---- 6. what a person cannot see in a browser ----
	svsToken := ""
	if m, ok := s.creds["svs"]; ok {
		svsToken, _ = m["token"].(string)
	}
	verify := func(what string, sig, doc []byte) {
		t.Helper()
		var ver struct {
			Valid  bool   `json:"valid"`
			Reason string `json:"reason"`
			Signer struct {
				Subject string `json:"subject"`
			} `json:"signer"`
		}
		body, _ := json.Marshal(map[string]any{"p7": base64.StdEncoding.EncodeToString(sig), "data": base64.StdEncoding.EncodeToString(doc), "level": 1})
		req, _ := http.NewRequest("POST", s.url("APPLIANCE_HTTP", "/api/svs/verify-message"), bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+svsToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&ver); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: verify-message %d %v", what, resp.StatusCode, err)
		}
		if !ver.Valid || !strings.Contains(ver.Signer.Subject, doctor.Name) {
			t.Errorf("%s: the signature through /api/svs/verify-message: %+v (doctor %s)", what, ver, doctor.Name)
		}
	}
	var rec struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if code, e := call(t, "GET", s.url("CLOUD_HTTP", "/api/visits/"+vid+"/emr"), cloudDir, doctor.ID, "", nil, &rec); code != 200 || rec.Status != "signed" {
		t.Fatalf("the visit's EMR: %d %+v %+v", code, e, rec)
	}
	var esig struct {
		Document  []byte `json:"document"`
		Signature []byte `json:"signature"`
	}
	if code, e := call(t, "GET", s.url("CLOUD_HTTP", "/api/emr/"+rec.ID+"/signature"), cloudDir, doctor.ID, "", nil, &esig); code != 200 || len(esig.Signature) == 0 {
		t.Fatalf("the EMR's signature: %d %+v", code, e)
	}
	verify("EMR", esig.Signature, esig.Document)
	var rxs struct{ Items []prescriptions.Prescription }
	if code, e := call(t, "GET", s.url("CLOUD_HTTP", "/api/prescriptions?visit="+vid), cloudDir, doctor.ID, "", nil, &rxs); code != 200 || len(rxs.Items) != 1 {
		t.Fatalf("the visit's prescriptions: %d %+v %+v", code, e, rxs)
	}
	rx := rxs.Items[0]
	if rx.Status != prescriptions.StatusSentToHIS || len(rx.HISOrders) != 1 {
		t.Fatalf("the prescription: %s %v", rx.Status, rx.HISOrders)
	}
	verify("prescription", rx.Signature, []byte(rx.SignedDoc))

	// The rating, with the tag the page offered from the cloud's list.
	var ratings struct {
		Count int `json:"count"`
		Items []struct {
			Score int      `json:"score"`
			Tags  []string `json:"tags"`
		} `json:"items"`
	}
	if code, e := call(t, "GET", s.url("CLOUD_HTTP", "/api/public/doctors/"+doctor.ID+"/ratings"), "", "", "", nil, &ratings); code != 200 ||
		ratings.Count != 1 || len(ratings.Items) != 1 || ratings.Items[0].Score != 5 || strings.Join(ratings.Items[0].Tags, ",") != "解答专业" {
		t.Errorf("the doctor's ratings: %d %+v %+v", code, e, ratings)
	}

	// The HIS simulator received the pharmacy order for 张三.
	var his struct {
		Messages []hissim.Received `json:"messages"`
	}
	eventually(t, 20*time.Second, "the pharmacy order at the HIS simulator", func() bool {
		resp, err := http.Get(s.url("HIS_HTTP", "/control/messages?type=OMP^O09"))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		his.Messages = nil
		json.NewDecoder(resp.Body).Decode(&his)
		for _, m := range his.Messages {
			if m.PatientHISID == holder.HISID && len(m.Placer) == 1 && m.Placer[0] == rx.HISOrders[0] && m.AckCode == "AA" {
				return true
			}
		}
		return false
	})

	// Reconciliation of today with the channel: neither payment is a
	// mismatch.
	var orders []struct {
		ID           string `json:"id"`
		BusinessKind string `json:"business_kind"`
		State        string `json:"state"`
	}
	raw := browsertest.Get(pb, chromedp.Evaluate[string](`fetch('/api/patient/orders').then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err := json.Unmarshal([]byte(raw), &orders); err != nil || len(orders) < 2 {
		t.Fatalf("the patient's orders: %s %v", raw, err)
	}
	var runs reconcile.RunsPage
	if code, e := call(t, "POST", s.url("CLOUD_HTTP", "/api/admin/reconcile/runs"), cloudDir, "", "", reconcile.RunRequest{Day: today, Source: "channel"}, &runs); code != 200 {
		t.Fatalf("reconcile run: %d %+v", code, e)
	}
	var channel *reconcile.Run
	for i, r := range runs.Runs {
		if r.HospitalID == "h1" && r.Source == "channel" {
			channel = &runs.Runs[i]
		}
	}
	if channel == nil || channel.Status != reconcile.RunDone {
		t.Fatalf("the channel run: %+v", runs.Runs)
	}
	var items struct{ Items []reconcile.Item }
	if code, e := call(t, "GET", s.url("CLOUD_HTTP", "/api/admin/reconcile/runs/"+channel.ID+"/items"), cloudDir, "", "", nil, &items); code != 200 {
		t.Fatalf("reconcile items: %d %+v", code, e)
	}
	for _, o := range orders {
		for _, it := range items.Items {
			if strings.Contains(it.Key+" "+it.OursRef+" "+it.TheirsRef, o.ID) {
				t.Errorf("the %s payment %s is a mismatch: %+v", o.BusinessKind, o.ID, it)
			}
		}
	}
	t.Logf("channel run for %s: %+v (%d mismatches in all)", today, channel.Tally, channel.Mismatches)
	t.Logf("the journey took %v", time.Since(start).Round(time.Second))
}

// pageErrors are the browser's errors but the answers the pages expect and
// handle: 401 from /api/patient/me before logging in, 404 for a visit's EMR
// not written yet.
func pageErrors(b *browsertest.Browser) []string {
	var out []string
	for _, e := range b.ConsoleErrors() {
		if strings.HasPrefix(e, "log network:") && (strings.Contains(e, "status of 401") && strings.Contains(e, "/api/patient/me)") ||
			strings.Contains(e, "status of 404") && strings.HasSuffix(e, "/emr)")) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// staffLogin logs a doctor or pharmacist in on the doctor app and changes
// the initial password, as the first login asks.
func staffLogin(t *testing.T, b *browsertest.Browser, who, app, phone, password, newPassword string) {
	t.Helper()
	b.Run(chromedp.Navigate(app + "#/login"))
	b.Run(chromedp.SendKeys(chromedp.CSS("#phone"), phone),
		chromedp.SendKeys(chromedp.CSS("#password"), password))
	b.Screenshot(who + "-login")
	tap(t, b, "#login-submit")
	b.Visible("#pw-form")
	b.Run(chromedp.SendKeys(chromedp.CSS("#old-password"), password),
		chromedp.SendKeys(chromedp.CSS("#new-password"), newPassword),
		chromedp.SendKeys(chromedp.CSS("#new-password2"), newPassword))
	b.Screenshot(who + "-change-password")
	tap(t, b, "#pw-submit")
	waitJS(t, b, "past the password change", 20*time.Second, `location.hash !== '#/password' && location.hash !== '#/login'`)
}

// signWithPIN types the e-signature PIN into the open dialog and confirms.
func signWithPIN(b *browsertest.Browser, pin string) {
	b.Visible("#pin")
	b.Run(chromedp.SendKeys(chromedp.CSS("#pin"), pin))
	b.Click(`#dialog button[type=submit]`)
	b.Run(chromedp.WaitNotVisible(chromedp.CSS("#modal")))
}

// waitJS waits until the expression is true in the page.
func waitJS(t *testing.T, b *browsertest.Browser, what string, timeout time.Duration, expr string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !browsertest.Get(b, chromedp.Evaluate[bool](expr)) {
		if time.Now().After(deadline) {
			b.Screenshot("failure")
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitPage loads url until the expression is true on it.
func waitPage(t *testing.T, b *browsertest.Browser, url, what string, timeout time.Duration, expr string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b.Run(chromedp.Navigate(url))
		if browsertest.Get(b, chromedp.Evaluate[bool](expr)) {
			return
		}
		if time.Now().After(deadline) {
			b.Screenshot("failure")
			t.Fatalf("%s: not within %v (%s)", what, timeout, url)
		}
		time.Sleep(time.Second)
	}
}

// waitText waits until the text of sel has want, reading it in the page:
// the pages draw parts again as events arrive, which a node handle does not
// survive.
func waitText(t *testing.T, b *browsertest.Browser, sel, want string) {
	t.Helper()
	waitJS(t, b, sel+" showing "+strconv.Quote(want), 30*time.Second,
		`((document.querySelector(`+strconv.Quote(sel)+`) || {}).textContent || '').includes(`+strconv.Quote(want)+`)`)
}

// tap waits until sel is there, shown and enabled, and clicks it in the
// page: for buttons a screen draws again as its data arrives.
func tap(t *testing.T, b *browsertest.Browser, sel string) {
	t.Helper()
	q := strconv.Quote(sel)
	waitJS(t, b, "clicking "+sel, 30*time.Second, `(() => { const e = document.querySelector(`+q+`); if (!e || e.disabled || !e.offsetParent) return false; e.click(); return true; })()`)
}

// clickJS clicks the element the expression returns.
func clickJS(t *testing.T, b *browsertest.Browser, expr string) {
	t.Helper()
	if !browsertest.Get(b, chromedp.Evaluate[bool](`(() => { const e = `+expr+`; if (!e) return false; e.click(); return true; })()`)) {
		b.Screenshot("failure")
		t.Fatalf("nothing to click: %s", expr)
	}
}

// photo writes a small PNG (a blood-pressure reading, as it were) and
// returns its path.
func photo(t *testing.T) string {
	img := image.NewRGBA(image.Rect(0, 0, 160, 120))
	for y := 0; y < 120; y++ {
		for x := 0; x < 160; x++ {
			img.Set(x, y, color.RGBA{uint8(40 + x), uint8(90 + y), 200, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bp.png")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
