package cloud_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/accounts"
	"ihos/cloud/cloudtest"
	"ihos/his/hissim"
	"ihos/internal/web"
	"ihos/prescriptions"
	"ihos/staffauth"
	"ihos/visits"
)

// staffCall calls the API with a staff app session: the bearer token, or
// the cookie when cookie is set (safe methods only: no CSRF token).
func (r *patientRig) staffCall(token string, cookie bool, method, path string, body, out any) (int, string) {
	r.t.Helper()
	auth := cloudtest.Bearer(token)
	if cookie {
		auth = cloudtest.StaffCookie(token)
	}
	return r.Call(method, path, body, out, auth)
}

// appStaff gives staff member id (already in the replicated staff table, or
// added as kind) a phone and app access as the hospital's console does,
// and logs them in with a password of their own: the bearer token.
func (r *patientRig) appStaff(id, kind, phone string) string {
	r.t.Helper()
	var exists int
	r.app.Node.DB.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM staff WHERE id = ?`, id).Scan(&exists)
	if exists == 0 {
		r.Staff(cloudtest.Staff{ID: id, Department: "d1", JobNo: "J" + id, Name: "赵药师", Kind: kind, Title: "主管药师"})
	}
	return r.AppStaff(id, phone)
}

// stream opens an SSE stream with a cookie (what EventSource sends) and
// returns the status; on success it reads until the first data line.
func (r *patientRig) stream(cookie *http.Cookie, path string) (int, string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.url+path, nil)
	req.AddCookie(cookie)
	resp, err := r.hc.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var e web.ErrorBody
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Message
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		r.t.Fatalf("%s: content type %q", path, ct)
	}
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), "data:") {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			r.t.Fatalf("%s: %v after %q", path, err, got.String())
		}
	}
	return 200, got.String()
}

// TestAppSessionsOnVisitsAndPrescriptions drives the visit and prescription
// APIs with the patients' and the staff's own sessions: a patient only in
// their family's visits, a doctor accepting only after today's real-name
// check and within their sitting, a pharmacist reviewing, a patient reading
// only their own approved prescriptions.
func TestAppSessionsOnVisitsAndPrescriptions(t *testing.T) {
	cloudtest.Engines(t, func(t *testing.T, dsn string) {
		testAppSessions(t, newPatientRig(t, dsn))
	})
}

func testAppSessions(t *testing.T, r *patientRig) {
	sched := r.schedule(tomorrow(), "08:00", "12:00", "text", 30)
	alice, aliceCSRF, self := r.verified("13800138000", hissim.DemoPatients[0])
	bob, bobCSRF, _ := r.verified("13700137000", hissim.DemoPatients[2])
	b, _ := r.paidBooking(fmt.Sprintf("%s:%d", sched, 0), self.PatientID)
	visit := "/api/visits/" + b.VisitID

	// The patient writes in their own visit; another account finds none.
	var m visits.Message
	if code, msg := r.as(alice, aliceCSRF, "POST", visit+"/messages", visits.MessageInput{Kind: "text", Body: "医生您好，我最近血压偏高"}, &m); code != 200 || m.SenderRole != visits.RolePatient || m.SenderID != self.PatientID {
		t.Fatalf("patient posts: %d %s %+v", code, msg, m)
	}
	for _, path := range []string{visit, visit + "/messages"} {
		if code, msg := r.as(bob, "", "GET", path, nil, nil); code != 404 || msg != "问诊不存在" {
			t.Fatalf("another account reads %s: %d %s", path, code, msg)
		}
	}
	if code, msg := r.as(bob, bobCSRF, "POST", visit+"/messages", visits.MessageInput{Kind: "text", Body: "你好"}, nil); code != 404 || msg != "问诊不存在" {
		t.Fatalf("another account posts: %d %s", code, msg)
	}
	if code, msg := r.as(alice, "", "POST", visit+"/accept", nil, nil); code != 403 {
		t.Fatalf("patient accepts: %d %s", code, msg)
	}

	doc := r.appStaff("doc1", ihos.StaffDoctor, "13600136000")
	pharm := r.appStaff("ph1", ihos.StaffPharmacist, "13500135000")

	// No real-name check today: no accepting.
	if code, msg := r.staffCall(doc, false, "POST", visit+"/accept", nil, nil); code != 403 || msg != staffauth.ErrRealName.Message {
		t.Fatalf("accept before real name: %d %s", code, msg)
	}
	if code, msg := r.staffCall(doc, false, "POST", "/api/staff/realname/code", nil, nil); code != http.StatusNoContent {
		t.Fatalf("real-name code: %d %s", code, msg)
	}
	if code, msg := r.staffCall(doc, false, "POST", "/api/staff/realname", map[string]string{"code": r.sms.LastCode("13600136000")}, nil); code != 200 {
		t.Fatalf("real name: %d %s", code, msg)
	}
	// The sitting is tomorrow: not now.
	if code, msg := r.staffCall(doc, false, "POST", visit+"/accept", nil, nil); code != 403 || msg != "不在您的出诊时间内，不能接诊" {
		t.Fatalf("accept outside the sitting: %d %s", code, msg)
	}
	// A pharmacist has no visits.
	if code, _ := r.staffCall(pharm, false, "POST", visit+"/accept", nil, nil); code != 403 {
		t.Fatalf("pharmacist accepts: %d", code)
	}
	// The console moves the sitting to today, around now.
	r.exec(`UPDATE online_schedules SET visit_date = ?, start_time = '00:00', end_time = '23:59' WHERE id = ?`,
		time.Now().In(ihos.Shanghai).Format(time.DateOnly), sched)
	var v visits.Visit
	if code, msg := r.staffCall(doc, false, "POST", visit+"/accept", nil, &v); code != 200 || v.Status != visits.StatusInProgress {
		t.Fatalf("accept: %d %s %+v", code, msg, v)
	}
	if code, msg := r.staffCall(doc, false, "POST", visit+"/messages", visits.MessageInput{Kind: "text", Body: "请问血压多少？"}, &m); code != 200 || m.SenderRole != visits.RoleDoctor || m.SenderID != "doc1" {
		t.Fatalf("doctor replies: %d %s %+v", code, msg, m)
	}

	// The streams work with the cookies EventSource sends.
	if code, got := r.stream(&http.Cookie{Name: accounts.CookieName, Value: alice}, visit+"/events"); code != 200 || !strings.Contains(got, "医生您好") {
		t.Fatalf("patient's visit stream: %d %s", code, got)
	}
	if code, got := r.stream(&http.Cookie{Name: staffauth.CookieName, Value: doc}, visit+"/events"); code != 200 {
		t.Fatalf("doctor's visit stream: %d %s", code, got)
	}
	if code, msg := r.stream(&http.Cookie{Name: accounts.CookieName, Value: bob}, visit+"/events"); code != 404 {
		t.Fatalf("another account's stream: %d %s", code, msg)
	}
	if code, got := r.stream(&http.Cookie{Name: accounts.CookieName, Value: alice}, "/api/events"); code != 200 || !strings.Contains(got, "请问血压多少") {
		t.Fatalf("patient's own stream: %d %s", code, got)
	}
	if code, got := r.stream(&http.Cookie{Name: staffauth.CookieName, Value: doc}, "/api/events"); code != 200 || !strings.Contains(got, "医生您好") {
		t.Fatalf("doctor's own stream: %d %s", code, got)
	}
	if code, msg := r.stream(&http.Cookie{Name: accounts.CookieName, Value: bob}, "/api/events?patient="+self.PatientID); code != 403 || !strings.HasPrefix(msg, notFamily) {
		t.Fatalf("another account's feed: %d %s", code, msg)
	}

	// Prescriptions: the doctor writes, signs and submits; a pharmacist reviews.
	r.app.Prescriptions.Signer = fakeSigner{}
	r.Catalog(cloudtest.CatalogItem{Kind: "DRUG", Code: "AML5", Name: "苯磺酸氨氯地平片", Price: 2350})
	draft := map[string]any{"visit_id": b.VisitID, "diagnosis": "原发性高血压", "items": []map[string]any{{"code": "AML5", "quantity": 1,
		"dose": "5", "dose_unit": "mg", "frequency": "qd", "route": "口服", "days": 28}}}
	if code, _ := r.staffCall(pharm, false, "POST", "/api/prescriptions", draft, nil); code != 403 {
		t.Fatalf("pharmacist writes: %d", code)
	}
	if code, _ := r.as(alice, "", "POST", "/api/prescriptions", draft, nil); code != 403 {
		t.Fatalf("patient writes: %d", code)
	}
	var p prescriptions.Prescription
	if code, msg := r.staffCall(doc, false, "POST", "/api/prescriptions", draft, &p); code != http.StatusCreated || p.DoctorID != "doc1" {
		t.Fatalf("doctor writes: %d %s %+v", code, msg, p)
	}
	for _, step := range []string{"/sign", "/submit"} {
		if code, msg := r.staffCall(doc, false, "POST", "/api/prescriptions/"+p.ID+step, map[string]string{"pin": "246810"}, &p); code != 200 {
			t.Fatalf("%s: %d %s", step, code, msg)
		}
	}
	// Under review: not the patient's to see yet.
	if code, msg := r.as(alice, "", "GET", "/api/prescriptions/"+p.ID, nil, nil); code != 404 {
		t.Fatalf("patient reads under review: %d %s", code, msg)
	}
	if code, msg := r.staffCall(doc, false, "POST", "/api/prescriptions/"+p.ID+"/approve", nil, nil); code != 403 || !strings.Contains(msg, "药师") {
		t.Fatalf("doctor reviews: %d %s", code, msg)
	}
	var queue struct{ Items []prescriptions.Prescription }
	if code, msg := r.staffCall(pharm, false, "GET", "/api/prescriptions/review-queue?hospital="+testHosp, nil, &queue); code != 200 || len(queue.Items) != 1 || queue.Items[0].ID != p.ID {
		t.Fatalf("queue: %d %s %+v", code, msg, queue)
	}
	if code, msg := r.staffCall(pharm, false, "POST", "/api/prescriptions/"+p.ID+"/approve", nil, &p); code != 200 || p.Status != prescriptions.StatusApproved || p.ReviewerID != "ph1" {
		t.Fatalf("pharmacist approves: %d %s %+v", code, msg, p)
	}

	// The patient reads their own approved prescription; another account none.
	var got prescriptions.Prescription
	if code, msg := r.as(alice, "", "GET", "/api/prescriptions/"+p.ID, nil, &got); code != 200 || got.ID != p.ID {
		t.Fatalf("patient reads own: %d %s", code, msg)
	}
	var list struct{ Items []prescriptions.Prescription }
	if code, msg := r.as(alice, "", "GET", "/api/prescriptions?visit="+b.VisitID, nil, &list); code != 200 || len(list.Items) != 1 {
		t.Fatalf("patient lists own: %d %s %+v", code, msg, list)
	}
	if code, msg := r.as(bob, "", "GET", "/api/prescriptions/"+p.ID, nil, nil); code != 404 || msg != "处方不存在" {
		t.Fatalf("another account reads: %d %s", code, msg)
	}
	if code, msg := r.as(bob, "", "GET", "/api/prescriptions?visit="+b.VisitID, nil, &list); code != 200 || len(list.Items) != 0 {
		t.Fatalf("another account lists: %d %s %+v", code, msg, list)
	}
	if code, _ := r.as(alice, "", "GET", "/api/prescriptions/"+p.ID+"/history", nil, nil); code != 403 {
		t.Fatalf("patient reads the review history: %d", code)
	}
}
