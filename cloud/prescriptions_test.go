package cloud_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/cloud"
	"ihos/cloud/cloudtest"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
	"ihos/prescriptions"
	"ihos/visits"
)

// fakeSigner is the doctor's e-signature stand-in of the cloud's tests
// (cloudtest.Signer), by the name the older tests use.
type fakeSigner = cloudtest.Signer

// rxRig is a cloud (cloudtest) with a drug catalogue, pharmacist PH1 and
// patient P1, called as the command-line tool for an acting staff member.
type rxRig struct {
	*cloudtest.Cloud
	t   testing.TB
	app *cloud.App
	now string
}

func newRxRig(t *testing.T, dsn string) *rxRig {
	t.Helper()
	c := cloudtest.Start(t, cloudtest.Options{DSN: dsn})
	c.App.Prescriptions.Signer = cloudtest.Signer{}
	r := &rxRig{Cloud: c, t: t, app: c.App, now: ihos.FormatTime(time.Now())}
	for _, d := range []struct {
		code, name string
		price      int64
		flags      string
	}{{"AML5", "苯磺酸氨氯地平片", 2350, ""}, {"MOR", "吗啡缓释片", 5000, "NARC"}, {"DZP", "地西泮片", 300, "PSY2"}} {
		r.exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, unit, price_fen, flags, enabled, created_at, updated_at) VALUES (?, ?, 'DRUG', ?, ?, '盒', ?, ?, 1, ?, ?)`,
			ihos.NewID(), testHosp, d.code, d.name, d.price, d.flags, r.now, r.now)
	}
	r.exec(`INSERT INTO staff (id, hospital_id, institution_id, department_id, job_no, name, kind, created_at, updated_at) VALUES ('PH1', ?, 'i1', 'dep1', 'Y01', '赵药师', 'pharmacist', ?, ?)`, testHosp, r.now, r.now)
	r.exec(`INSERT INTO patients (id, hospital_id, name, birth_year, created_at, updated_at) VALUES ('P1', ?, '张三', 1980, ?, ?)`, testHosp, r.now, r.now)
	return r
}

func (r *rxRig) exec(q string, args ...any) { r.Exec(q, args...) }

// visit opens a visit of P1 with doctor D1, accepted or still waiting.
func (r *rxRig) visit(accepted bool) string {
	r.t.Helper()
	ctx := context.Background()
	v, err := r.app.Visits.Open(ctx, visits.VisitSpec{HospitalID: testHosp, BookingID: fmt.Sprintf("RX%d", visitSeq.Add(1)), PatientID: "P1",
		DoctorID: "D1", DepartmentID: "dep1", Type: visits.TypeText, BookedAt: time.Now()})
	if err != nil {
		r.t.Fatal(err)
	}
	if accepted {
		if _, err := r.app.Visits.Accept(ctx, visits.Party{Role: visits.RoleDoctor, ID: "D1"}, v.ID); err != nil {
			r.t.Fatal(err)
		}
	}
	return v.ID
}

// call sends body as staff member by ("" = no acting staff) and decodes a
// 2xx answer into out.
func (r *rxRig) call(method, path, by string, body, out any) (int, web.ErrorBody) {
	r.t.Helper()
	auth := []cloudtest.Auth{r.CLI()}
	if by != "" {
		auth = append(auth, cloudtest.Header(cloud.ActingStaffHeader, by))
	}
	a := r.Answer(method, path, body, out, auth...)
	return a.Status, a.Error
}

// refused checks a 4xx answer whose message (or a field's) contains msg.
func (r *rxRig) refused(what string, status int, eb web.ErrorBody, want int, msg string) {
	r.t.Helper()
	text := eb.Message
	for _, f := range eb.Fields {
		text += " " + f
	}
	if status != want || !strings.Contains(text, msg) {
		r.t.Fatalf("%s: %d %q, want %d with %q", what, status, text, want, msg)
	}
}

func TestPrescriptionAPI(t *testing.T) {
	for _, engine := range []string{"sqlite", "mysql"} {
		t.Run(engine, func(t *testing.T) {
			dsn := ""
			if engine == "mysql" {
				dsn = sqldbtest.MySQLDSN(t)
			}
			testPrescriptionAPI(t, newRxRig(t, dsn))
		})
	}
}

func testPrescriptionAPI(t *testing.T, r *rxRig) {
	v := r.visit(true)
	line := func(code string, qty int, price int64) map[string]any {
		return map[string]any{"code": code, "quantity": qty, "price_fen": price, "dose": "5", "dose_unit": "mg", "frequency": "qd", "route": "口服", "days": 28}
	}
	body := func(visit string, lines ...map[string]any) map[string]any {
		return map[string]any{"visit_id": visit, "diagnosis": "原发性高血压", "items": lines}
	}

	// The rules, each refused with its status and Chinese message.
	code, eb := r.call("POST", "/api/prescriptions", "", body(v, line("AML5", 1, 0)), nil)
	r.refused("no acting staff", code, eb, http.StatusUnauthorized, cloud.ActingStaffHeader)
	code, eb = r.call("POST", "/api/prescriptions", "D1", body(v, line("MOR", 1, 0)), nil)
	r.refused("narcotic", code, eb, http.StatusForbidden, "麻醉药品、精神药品不能在互联网医院开具：吗啡缓释片")
	code, eb = r.call("POST", "/api/prescriptions", "D1", body(v, line("AML5", 1, 0), line("DZP", 1, 0)), nil)
	r.refused("psychotropic", code, eb, http.StatusForbidden, "麻醉药品、精神药品不能在互联网医院开具：地西泮片")
	code, eb = r.call("POST", "/api/prescriptions", "D2", body(v, line("AML5", 1, 0)), nil)
	r.refused("not the attending doctor", code, eb, http.StatusForbidden, "只有该问诊的接诊医生可以开具处方")
	code, eb = r.call("POST", "/api/prescriptions", "D1", body(r.visit(false), line("AML5", 1, 0)), nil)
	r.refused("visit not in progress", code, eb, http.StatusConflict, "问诊尚未开始，不能开具处方")

	// Price tampering is ignored: the catalogue prices.
	var p prescriptions.Prescription
	if code, eb := r.call("POST", "/api/prescriptions", "D1", body(v, line("AML5", 2, 1)), &p); code != http.StatusCreated || p.TotalFen != 4700 || p.Items[0].PriceFen != 2350 {
		t.Fatalf("create: %d %+v %+v", code, eb, p)
	}
	if code, eb := r.call("PUT", "/api/prescriptions/"+p.ID, "D1", body("", line("AML5", 3, 99)), &p); code != http.StatusOK || p.TotalFen != 7050 {
		t.Fatalf("update: %d %+v %+v", code, eb, p)
	}
	code, eb = r.call("POST", "/api/prescriptions/"+p.ID+"/submit", "D1", nil, nil)
	r.refused("submit unsigned", code, eb, http.StatusConflict, "须先由医生电子签名")
	code, eb = r.call("POST", "/api/prescriptions/"+p.ID+"/sign", "D2", map[string]string{"pin": "246810"}, nil)
	r.refused("another doctor signs", code, eb, http.StatusForbidden, "接诊医生")
	if code, eb := r.call("POST", "/api/prescriptions/"+p.ID+"/sign", "D1", map[string]string{"pin": "246810"}, &p); code != http.StatusOK || p.Status != "signed" || !strings.HasPrefix(string(p.Signature), "FAKE-SIG:D1:") {
		t.Fatalf("sign: %d %+v %+v", code, eb, p)
	}
	if code, eb := r.call("POST", "/api/prescriptions/"+p.ID+"/submit", "D1", nil, &p); code != http.StatusOK || p.Status != "under_review" {
		t.Fatalf("submit: %d %+v", code, eb)
	}
	code, eb = r.call("GET", "/api/prescriptions/"+p.ID+"/payable", "", nil, nil)
	r.refused("payment before approval", code, eb, http.StatusConflict, "处方尚未经药师审核通过，不能支付")
	var queue struct{ Items []prescriptions.Prescription }
	if code, eb := r.call("GET", "/api/prescriptions/review-queue?hospital="+testHosp, "PH1", nil, &queue); code != http.StatusOK || len(queue.Items) != 1 || queue.Items[0].ID != p.ID {
		t.Fatalf("queue: %d %+v %+v", code, eb, queue)
	}
	code, eb = r.call("POST", "/api/prescriptions/"+p.ID+"/reject", "PH1", map[string]string{"reason": ""}, nil)
	r.refused("reject without reason", code, eb, http.StatusBadRequest, "驳回处方须填写理由")
	code, eb = r.call("POST", "/api/prescriptions/"+p.ID+"/approve", "D1", nil, nil)
	r.refused("a doctor approves", code, eb, http.StatusForbidden, "药师")
	if code, eb := r.call("POST", "/api/prescriptions/"+p.ID+"/reject", "PH1", map[string]string{"reason": "剂量偏大"}, &p); code != http.StatusOK || p.Status != "rejected" || p.ReviewReason != "剂量偏大" {
		t.Fatalf("reject: %d %+v %+v", code, eb, p)
	}

	// The rejected prescription is revised as a new version, then approved.
	var rev prescriptions.Prescription
	if code, eb := r.call("POST", "/api/prescriptions/"+p.ID+"/revise", "D1", body("", line("AML5", 1, 0)), &rev); code != http.StatusCreated ||
		rev.Revision != 2 || rev.PreviousID != p.ID || rev.SeriesID != p.ID || rev.Status != "draft" {
		t.Fatalf("revise: %d %+v %+v", code, eb, rev)
	}
	for _, step := range []struct{ path, by string }{{"/sign", "D1"}, {"/submit", "D1"}, {"/approve", "PH1"}} {
		if code, eb := r.call("POST", "/api/prescriptions/"+rev.ID+step.path, step.by, map[string]string{"pin": "246810"}, &rev); code != http.StatusOK {
			t.Fatalf("%s: %d %+v", step.path, code, eb)
		}
	}
	var pay struct {
		AmountFen    int64  `json:"amount_fen"`
		BusinessType string `json:"business_type"`
	}
	if code, eb := r.call("GET", "/api/prescriptions/"+rev.ID+"/payable", "", nil, &pay); code != http.StatusOK || pay.AmountFen != 2350 || pay.BusinessType != ihos.PayPrescription {
		t.Fatalf("payable: %d %+v %+v", code, eb, pay)
	}
	var list struct{ Items []prescriptions.Prescription }
	if code, _ := r.call("GET", "/api/prescriptions?visit="+v, "", nil, &list); code != http.StatusOK || len(list.Items) != 2 ||
		list.Items[0].Status != "rejected" || list.Items[1].Status != "approved" {
		t.Fatalf("by visit: %d %+v", code, list)
	}
	var hist struct{ Items []prescriptions.Event }
	if code, _ := r.call("GET", "/api/prescriptions/"+p.ID+"/history", "", nil, &hist); code != http.StatusOK || len(hist.Items) != 4 || hist.Items[3].Reason != "剂量偏大" {
		t.Fatalf("history: %d %+v", code, hist)
	}
	// No delete: clinical records are never deleted.
	if code, _ := r.call("DELETE", "/api/prescriptions/"+p.ID, "D1", nil, nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("delete: %d", code)
	}
	var got prescriptions.Prescription
	if code, _ := r.call("GET", "/api/prescriptions/"+p.ID, "", nil, &got); code != http.StatusOK || got.Status != "rejected" {
		t.Fatalf("get after delete: %d %+v", code, got)
	}
}

// A prescription and its history reach the hospital's appliance.
func TestPrescriptionReachesAppliance(t *testing.T) {
	pr := newPayRigLeaf(t, "", "127.0.0.1:0", nil)
	ctx := context.Background()
	a, _ := enrollAppliance(t, pr.url, pr.code)
	r := &rxRig{Cloud: pr.Cloud, t: t, app: pr.app, now: ihos.FormatTime(time.Now())}
	r.exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, unit, price_fen, flags, enabled, created_at, updated_at) VALUES (?, ?, 'DRUG', 'AML5', '苯磺酸氨氯地平片', '盒', 2350, '', 1, ?, ?)`,
		ihos.NewID(), testHosp, r.now, r.now)
	p, err := pr.app.Prescriptions.Create(ctx, "D1", prescriptions.Draft{VisitID: r.visit(true), Diagnosis: "原发性高血压",
		Items: []prescriptions.ItemInput{{Code: "AML5", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var status string
		var events int
		a.Node.DB.QueryRow(`SELECT status FROM prescriptions WHERE id = ?`, p.ID).Scan(&status)
		a.Node.DB.QueryRow(`SELECT COUNT(*) FROM prescription_events WHERE prescription_id = ?`, p.ID).Scan(&events)
		if status == "draft" && events == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appliance has status %q, %d events", status, events)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// With no hospital connected, signing and sending to the HIS (both over the
// sync RPC to the appliance) fail at once with a clear 503, and the
// prescription stays as it was; paying is refused without a payment channel.
func TestPrescriptionSigningNeedsTheHospital(t *testing.T) {
	r := newRxRig(t, "")
	r.app.Prescriptions.Signer = nil // the real one: cloud/signer.go
	cloud.UseRemoteSigner(r.app)
	r.exec(`INSERT INTO staff (id, hospital_id, institution_id, department_id, job_no, name, kind, created_at, updated_at) VALUES ('D1', ?, 'i1', 'dep1', 'Y02', '王医生', 'doctor', ?, ?)`, testHosp, r.now, r.now)
	var p prescriptions.Prescription
	if code, eb := r.call("POST", "/api/prescriptions", "D1", map[string]any{"visit_id": r.visit(true), "diagnosis": "原发性高血压",
		"items": []map[string]any{{"code": "AML5", "quantity": 1}}}, &p); code != http.StatusCreated {
		t.Fatalf("create: %d %+v", code, eb)
	}
	start := time.Now()
	code, eb := r.call("POST", "/api/prescriptions/"+p.ID+"/sign", "D1", map[string]string{"pin": "12345678"}, nil)
	r.refused("signing with the hospital unreachable", code, eb, http.StatusServiceUnavailable, "医院系统暂时无法连接")
	if time.Since(start) > 5*time.Second {
		t.Fatalf("the refusal took %v", time.Since(start))
	}
	code, eb = r.call("POST", "/api/prescriptions/"+p.ID+"/pay", "", nil, nil)
	r.refused("paying without a payment channel", code, eb, http.StatusServiceUnavailable, "尚未配置在线支付渠道")
	var got prescriptions.Prescription
	if code, _ := r.call("GET", "/api/prescriptions/"+p.ID, "", nil, &got); code != 200 || got.Status != prescriptions.StatusDraft {
		t.Fatalf("after the failed signature: %d %+v", code, got)
	}
}
