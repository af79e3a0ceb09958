package cloud_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/cloud/cloudtest"
	"ihos/emr"
	"ihos/his/hissim"
	"ihos/visits"
)

// emrCall calls the API with a bearer token (a doctor's or a patient's
// session) and returns the status and the error's message with its field
// messages.
func (r *patientRig) emrCall(token, method, path string, body, out any) (int, string) {
	r.t.Helper()
	var auth []cloudtest.Auth
	if token != "" {
		auth = append(auth, cloudtest.Bearer(token))
	}
	a := r.Answer(method, path, body, out, auth...)
	return a.Status, a.Message()
}

// realDoctor gives staff member id app access as a doctor and passes
// today's real-name check: the bearer token.
func (r *patientRig) realDoctor(id, phone string) string {
	r.t.Helper()
	tok := r.appStaff(id, ihos.StaffDoctor, phone)
	if code, msg := r.staffCall(tok, false, "POST", "/api/staff/realname/code", nil, nil); code != http.StatusNoContent {
		r.t.Fatalf("real-name code: %d %s", code, msg)
	}
	if code, msg := r.staffCall(tok, false, "POST", "/api/staff/realname", map[string]string{"code": r.sms.LastCode(phone)}, nil); code != 200 {
		r.t.Fatalf("real name: %d %s", code, msg)
	}
	return tok
}

// TestEMRAPI drives the record, template, ICD-10 and exam-order API with the
// doctors' and patients' own sessions: only the attending doctor writes and
// signs, a signed record is corrected by a new version, the patient's family
// reads signed versions only, another account nothing — on SQLite and
// MariaDB.
func TestEMRAPI(t *testing.T) {
	for _, c := range []struct {
		engine string
		dsn    func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"mysql", freshMySQL},
	} {
		t.Run(c.engine, func(t *testing.T) {
			testEMRAPI(t, newPatientRig(t, c.dsn(t)))
		})
	}
}

func testEMRAPI(t *testing.T, r *patientRig) {
	ctx := context.Background()
	alice, _, self := r.verified("13800138000", hissim.DemoPatients[0])
	bob, _, _ := r.verified("13700137000", hissim.DemoPatients[2])
	if code, msg := r.as(alice, "", "POST", "/api/patient/members/"+self.ID+"/link-his", nil, nil); code != 200 {
		t.Fatalf("link: %d %s", code, msg)
	}
	doc := r.realDoctor("doc1", "13600136000")
	other := r.realDoctor("doc2", "13500135000")
	pharm := r.appStaff("ph1", ihos.StaffPharmacist, "13400134000")
	hisRec := &cloudtest.HIS{}
	r.app.EMR.Signer, r.app.EMR.HIS = cloudtest.Signer{}, hisRec
	now := ihos.FormatTime(time.Now())
	for _, c := range []struct {
		kind, code, name string
		price            int64
	}{{"LAB", "XCG", "血常规", 2000}, {"LAB", "HBA1C", "糖化血红蛋白", 6000}, {"EXAM", "ECG", "常规心电图", 2500}} {
		r.exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, unit, price_fen, specimen, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, '次', ?, '', 1, ?, ?)`,
			ihos.NewID(), testHosp, c.kind, c.code, c.name, c.price, now, now)
	}
	v, err := r.app.Visits.Open(ctx, visits.VisitSpec{HospitalID: testHosp, BookingID: "E" + ihos.NewID()[:20], PatientID: self.PatientID,
		DoctorID: "doc1", DepartmentID: "d1", Type: visits.TypeText, BookedAt: time.Now()})
	if err != nil {
		t.Fatalf("%v %+v", err, err)
	}
	path := "/api/visits/" + v.ID + "/emr"
	body := map[string]any{"chief_complaint": "血压控制不佳 1 周", "present_illness": "高血压 5 年，规律服药，近期血压偏高。",
		"past_history": "无", "allergy_history": "否认", "physical_exam": "线上问诊未查体",
		"diagnoses": []map[string]string{{"code": "I10.x00", "name": "高血压"}}, "advice": "继续服药，监测血压，2 周后复诊。"}

	// Rules, each refused with its status and Chinese message.
	if code, msg := r.emrCall(doc, "PUT", path, body, nil); code != http.StatusConflict || !strings.Contains(msg, "问诊尚未开始，不能书写病历") {
		t.Fatalf("visit waiting: %d %s", code, msg)
	}
	if _, err := r.app.Visits.Accept(ctx, visits.Party{Role: visits.RoleDoctor, ID: "doc1"}, v.ID); err != nil {
		t.Fatal(err)
	}
	if code, msg := r.emrCall(alice, "GET", path, nil, nil); code != 404 || msg != "该问诊尚无病历" {
		t.Fatalf("no record yet: %d %s", code, msg)
	}
	if code, msg := r.emrCall(alice, "PUT", path, body, nil); code != 403 || !strings.Contains(msg, "只有接诊医生可以书写") {
		t.Fatalf("patient writes: %d %s", code, msg)
	}
	if code, msg := r.emrCall(pharm, "PUT", path, body, nil); code != 403 || !strings.Contains(msg, "只有接诊医生") {
		t.Fatalf("pharmacist writes: %d %s", code, msg)
	}
	if code, msg := r.emrCall(other, "PUT", path, body, nil); code != 403 || !strings.Contains(msg, "只有该问诊的接诊医生可以书写病历") {
		t.Fatalf("another doctor writes: %d %s", code, msg)
	}
	bad := map[string]any{"chief_complaint": "复诊", "diagnoses": []map[string]string{{"code": "I10", "name": "高血压"}}}
	if code, msg := r.emrCall(doc, "PUT", path, bad, nil); code != 400 || !strings.Contains(msg, "诊断编码 I10 不在 ICD-10 诊断库中") {
		t.Fatalf("code outside the dictionary: %d %s", code, msg)
	}

	var rec emr.Record
	if code, msg := r.emrCall(doc, "PUT", path, body, &rec); code != 200 || rec.Status != "draft" || rec.Version != 1 || rec.Diagnoses[0].Name != "原发性高血压" || rec.StatusLabel != "草稿" {
		t.Fatalf("draft: %d %s %+v", code, msg, rec)
	}
	// A draft is the doctor's: the patient does not see it.
	if code, _ := r.emrCall(alice, "GET", path, nil, nil); code != 404 {
		t.Fatalf("patient reads a draft: %d", code)
	}
	if code, _ := r.emrCall(alice, "GET", "/api/emr/"+rec.ID+"/history", nil, nil); code != 404 {
		t.Fatalf("patient reads a draft's history: %d", code)
	}
	if code, msg := r.emrCall(other, "POST", "/api/emr/"+rec.ID+"/sign", map[string]string{"pin": "246810"}, nil); code != 403 || !strings.Contains(msg, "只有该问诊的接诊医生可以签署病历") {
		t.Fatalf("another doctor signs: %d %s", code, msg)
	}
	if code, msg := r.emrCall(doc, "POST", "/api/emr/"+rec.ID+"/sign", map[string]string{"pin": "000000"}, nil); code != 403 || msg != "签名密码错误" {
		t.Fatalf("wrong pin: %d %s", code, msg)
	}
	if code, msg := r.emrCall(doc, "POST", "/api/emr/"+rec.ID+"/sign", map[string]string{"pin": "246810"}, &rec); code != 200 || rec.Status != "signed" || rec.SignedAt.IsZero() {
		t.Fatalf("sign: %d %s %+v", code, msg, rec)
	}
	if code, msg := r.emrCall(doc, "PUT", path, body, nil); code != http.StatusConflict || !strings.Contains(msg, "病历已签名，不能直接修改") {
		t.Fatalf("write over signed: %d %s", code, msg)
	}

	// The family reads the signed record; another account and doctor do not.
	var got emr.Record
	if code, msg := r.emrCall(alice, "GET", path, nil, &got); code != 200 || got.ID != rec.ID || got.DoctorID != "doc1" {
		t.Fatalf("patient reads signed: %d %s %+v", code, msg, got)
	}
	for who, tok := range map[string]string{"another account": bob, "another doctor": other} {
		if code, msg := r.emrCall(tok, "GET", path, nil, nil); code != 404 {
			t.Fatalf("%s reads: %d %s", who, code, msg)
		}
		if code, msg := r.emrCall(tok, "GET", "/api/emr/"+rec.ID+"/signature", nil, nil); code != 404 {
			t.Fatalf("%s reads the signature: %d %s", who, code, msg)
		}
	}
	var sig struct {
		Document   []byte `json:"document"`
		Signature  []byte `json:"signature"`
		SignerCert string `json:"signer_cert"`
	}
	if code, msg := r.emrCall(alice, "GET", "/api/emr/"+rec.ID+"/signature", nil, &sig); code != 200 ||
		!strings.HasPrefix(string(sig.Signature), "FAKE-SIG:doc1:") || !strings.Contains(string(sig.Document), `"chief_complaint":"血压控制不佳 1 周"`) {
		t.Fatalf("signature: %d %s %+v", code, msg, sig)
	}

	// A correction is a new version; the signed one stays and stays visible.
	if code, msg := r.emrCall(doc, "POST", "/api/emr/"+rec.ID+"/revise", map[string]string{"reason": ""}, nil); code != 400 || !strings.Contains(msg, "修订病历须填写修订原因") {
		t.Fatalf("revise without reason: %d %s", code, msg)
	}
	var rev emr.Record
	if code, msg := r.emrCall(doc, "POST", "/api/emr/"+rec.ID+"/revise", map[string]string{"reason": "补充诊断"}, &rev); code != http.StatusCreated ||
		rev.Version != 2 || rev.Supersedes != rec.ID || rev.Status != "draft" {
		t.Fatalf("revise: %d %s %+v", code, msg, rev)
	}
	if code, msg := r.emrCall(doc, "POST", "/api/emr/"+rec.ID+"/revise", map[string]string{"reason": "再改"}, nil); code != http.StatusConflict || !strings.Contains(msg, "已修订过") {
		t.Fatalf("revise twice: %d %s", code, msg)
	}
	body["diagnoses"] = []map[string]string{{"code": "I10.x00"}, {"code": "E78.500"}}
	if code, msg := r.emrCall(doc, "PUT", path, body, &rev); code != 200 || rev.Version != 2 || len(rev.Diagnoses) != 2 {
		t.Fatalf("write the revision: %d %s %+v", code, msg, rev)
	}
	if code, _ := r.emrCall(alice, "GET", path, nil, &got); code != 200 || got.ID != rec.ID {
		t.Fatalf("patient still reads version 1: %d %+v", code, got)
	}
	if code, _ := r.emrCall(doc, "GET", path, nil, &got); code != 200 || got.ID != rev.ID {
		t.Fatalf("doctor reads version 2: %d %+v", code, got)
	}
	var hist struct {
		Items  []emr.Record `json:"items"`
		Events []emr.Event  `json:"events"`
	}
	if code, msg := r.emrCall(doc, "GET", "/api/emr/"+rev.ID+"/history", nil, &hist); code != 200 || len(hist.Items) != 2 || len(hist.Events) != 4 ||
		hist.Events[2].Action != "revise" || hist.Events[2].Reason != "补充诊断" {
		t.Fatalf("doctor's history: %d %s %+v", code, msg, hist)
	}
	hist.Events = nil
	if code, msg := r.emrCall(alice, "GET", "/api/emr/"+rec.ID+"/history", nil, &hist); code != 200 || len(hist.Items) != 1 || hist.Items[0].ID != rec.ID || hist.Events != nil {
		t.Fatalf("patient's history: %d %s %+v", code, msg, hist)
	}
	// No delete: clinical records are never deleted.
	if code, _ := r.emrCall(doc, "DELETE", "/api/emr/"+rec.ID, nil, nil); code < 400 {
		t.Fatalf("delete: %d", code)
	}
	var n int
	if err := r.app.Node.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM emr_records WHERE visit_id = ? AND deleted_at IS NULL`, v.ID).Scan(&n); err != nil || n != 2 {
		t.Fatalf("records kept: %d %v", n, err)
	}
	// No signer wired: unavailable.
	r.app.EMR.Signer = nil
	if code, msg := r.emrCall(doc, "POST", "/api/emr/"+rev.ID+"/sign", map[string]string{"pin": "246810"}, nil); code != http.StatusServiceUnavailable || !strings.Contains(msg, "签名服务暂不可用") {
		t.Fatalf("no signer: %d %s", code, msg)
	}
	r.app.EMR.Signer = cloudtest.Signer{}

	// ICD-10 search.
	var icd struct{ Items []emr.Diagnosis }
	if code, msg := r.emrCall("", "GET", "/api/icd10?q=gxy&limit=5", nil, &icd); code != 200 || len(icd.Items) == 0 || icd.Items[0].Code != "I10.x00" {
		t.Fatalf("icd10 by initials: %d %s %+v", code, msg, icd)
	}
	if code, msg := r.emrCall("", "GET", "/api/icd10?q=2型糖尿病", nil, &icd); code != 200 || icd.Items[0].Code != "E11.100" {
		t.Fatalf("icd10 by name: %d %s %+v", code, msg, icd)
	}

	// Templates: the doctor's own.
	var tp emr.Template
	tpl := map[string]any{"name": "高血压复诊", "chief_complaint": "血压复查", "diagnoses": []map[string]string{{"code": "I10.x00"}}, "advice": "低盐饮食"}
	if code, msg := r.emrCall(doc, "POST", "/api/doctor/emr-templates", tpl, &tp); code != http.StatusCreated || tp.Name != "高血压复诊" || tp.Diagnoses[0].Name != "原发性高血压" {
		t.Fatalf("template: %d %s %+v", code, msg, tp)
	}
	tpl["name"] = "高血压复诊（稳定期）"
	if code, msg := r.emrCall(doc, "PUT", "/api/doctor/emr-templates/"+tp.ID, tpl, &tp); code != 200 || tp.Name != "高血压复诊（稳定期）" {
		t.Fatalf("template update: %d %s %+v", code, msg, tp)
	}
	if code, msg := r.emrCall(other, "PUT", "/api/doctor/emr-templates/"+tp.ID, tpl, nil); code != 404 || msg != "病历模板不存在" {
		t.Fatalf("another doctor's template: %d %s", code, msg)
	}
	if code, _ := r.emrCall(alice, "GET", "/api/doctor/emr-templates", nil, nil); code != 403 {
		t.Fatalf("patient lists templates: %d", code)
	}
	var tpls struct{ Items []emr.Template }
	if code, _ := r.emrCall(doc, "GET", "/api/doctor/emr-templates", nil, &tpls); code != 200 || len(tpls.Items) != 1 {
		t.Fatalf("templates: %d %+v", code, tpls)
	}
	if code, _ := r.emrCall(doc, "POST", "/api/doctor/emr-templates/"+tp.ID+"/disable", nil, nil); code != 200 {
		t.Fatalf("disable: %d", code)
	}
	if code, _ := r.emrCall(doc, "GET", "/api/doctor/emr-templates", nil, &tpls); code != 200 || len(tpls.Items) != 0 {
		t.Fatalf("templates after disable: %d %+v", code, tpls)
	}

	// Exam and lab orders: priced from the catalogue, signed, sent to the HIS.
	orders := "/api/visits/" + v.ID + "/exam-orders"
	lab := map[string]any{"kind": "lab", "items": []map[string]any{{"code": "XCG", "quantity": 1, "price": 1}, {"code": "HBA1C", "quantity": 1}}, "note": "空腹"}
	if code, msg := r.emrCall(other, "POST", orders, lab, nil); code != 403 || !strings.Contains(msg, "只有该问诊的接诊医生可以开具检查检验申请") {
		t.Fatalf("another doctor orders: %d %s", code, msg)
	}
	if code, msg := r.emrCall(doc, "POST", orders, map[string]any{"kind": "lab", "items": []map[string]any{{"code": "ECG", "quantity": 1}}}, nil); code != 400 || !strings.Contains(msg, "检验目录中没有编码为 ECG 的项目") {
		t.Fatalf("exam item on a lab order: %d %s", code, msg)
	}
	var o emr.Order
	if code, msg := r.emrCall(doc, "POST", orders, lab, &o); code != http.StatusCreated || o.TotalFen != 8000 || o.Total != 8000 || o.Items[0].Price != 2000 || o.Status != "draft" {
		t.Fatalf("order: %d %s %+v", code, msg, o)
	}
	var list struct{ Items []emr.Order }
	if code, _ := r.emrCall(alice, "GET", orders, nil, &list); code != 200 || len(list.Items) != 0 {
		t.Fatalf("patient sees a draft order: %d %+v", code, list)
	}
	if code, msg := r.emrCall(doc, "POST", "/api/exam-orders/"+o.ID+"/sign", map[string]string{"pin": "246810"}, &o); code != 200 || o.Status != "sent" || len(o.HISOrders) != 2 {
		t.Fatalf("sign order: %d %s %+v", code, msg, o)
	}
	if reqs := hisRec.Requests(); len(reqs) != 1 || reqs[0].Kind != ihos.CatalogLab || reqs[0].Key != o.ID || reqs[0].Patient.HISID != hissim.DemoPatients[0].HISID {
		t.Fatalf("HIS order: %+v", reqs)
	}
	if code, _ := r.emrCall(alice, "GET", orders, nil, &list); code != 200 || len(list.Items) != 1 || list.Items[0].StatusLabel != "已发送至医院" || list.Items[0].KindLabel != "检验" {
		t.Fatalf("patient's orders: %d %+v", code, list)
	}
	if code, _ := r.emrCall(bob, "GET", orders, nil, nil); code != 404 {
		t.Fatalf("another account's orders: %d", code)
	}
	// No HIS: signed and waiting (待发送).
	r.app.EMR.HIS = nil
	if code, msg := r.emrCall(doc, "POST", orders, map[string]any{"kind": "exam", "items": []map[string]any{{"code": "ECG", "quantity": 1}}}, &o); code != http.StatusCreated {
		t.Fatalf("exam order: %d %s", code, msg)
	}
	if code, msg := r.emrCall(doc, "POST", "/api/exam-orders/"+o.ID+"/sign", map[string]string{"pin": "246810"}, &o); code != 200 || o.Status != "signed" || o.StatusLabel != "待发送" {
		t.Fatalf("sign without HIS: %d %s %+v", code, msg, o)
	}
}

// A record, its events and an exam order reach the hospital's appliance.
func TestEMRReachesAppliance(t *testing.T) {
	pr := newPayRigLeaf(t, "", "127.0.0.1:0", nil)
	ctx := context.Background()
	a, _ := enrollAppliance(t, pr.url, pr.code)
	r := &rxRig{Cloud: pr.Cloud, t: t, app: pr.app, now: ihos.FormatTime(time.Now())}
	r.exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, unit, price_fen, flags, enabled, created_at, updated_at) VALUES (?, ?, 'LAB', 'XCG', '血常规', '次', 2000, '', 1, ?, ?)`,
		ihos.NewID(), testHosp, r.now, r.now)
	visit := r.visit(true)
	rec, err := pr.app.EMR.Save(ctx, "D1", visit, emr.Content{ChiefComplaint: "复诊", Diagnoses: []emr.Diagnosis{{Code: "I10.x00"}}})
	if err != nil {
		t.Fatal(err)
	}
	o, err := pr.app.EMR.CreateOrder(ctx, "D1", visit, emr.OrderInput{Kind: "lab", Items: []emr.OrderLine{{Code: "XCG", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var status, diag, orderStatus string
		var events int
		a.Node.DB.QueryRow(`SELECT status, diagnoses FROM emr_records WHERE id = ?`, rec.ID).Scan(&status, &diag)
		a.Node.DB.QueryRow(`SELECT COUNT(*) FROM emr_events WHERE record_id = ?`, rec.ID).Scan(&events)
		a.Node.DB.QueryRow(`SELECT status FROM exam_orders WHERE id = ?`, o.ID).Scan(&orderStatus)
		if status == "draft" && strings.Contains(diag, "原发性高血压") && events == 1 && orderStatus == "draft" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appliance has record %q %q, %d events, order %q", status, diag, events, orderStatus)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
