package cloud_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"ihos"
	"ihos/booking"
	"ihos/cloud/cloudtest"
	"ihos/his/hissim"
	"ihos/visits"
	"ihos/workbench"
)

// TestWorkbenchAPI drives the doctor's workspace with doctors' own app
// sessions: a patient books with their condition and pays, the doctor finds
// them on the worklist, keeps favourites, plans and phrases, marks the
// patient and reads their record; another doctor sees none of it, and
// neither a pharmacist nor a patient gets in — on SQLite and MariaDB.
func TestWorkbenchAPI(t *testing.T) {
	cloudtest.Engines(t, func(t *testing.T, dsn string) {
		testWorkbenchAPI(t, newPatientRig(t, dsn))
	})
}

func testWorkbenchAPI(t *testing.T, r *patientRig) {
	sched := r.schedule(tomorrow(), "08:00", "12:00", "text", 30)
	demo := hissim.DemoPatients[0]
	alice, _, self := r.verified("13800138000", demo)
	// The booking carries the patient's condition (the staff route here; the
	// patient's own session requires it).
	var b booking.Booking
	condition := "反复头晕两周，早晨血压 160/100 左右，" + strings.Repeat("偶有心悸，", 20)
	if code, msg := r.do("POST", "/api/booking/bookings", booking.Request{SlotID: sched + ":1", PatientID: self.PatientID, Condition: condition}, &b, false); code != 201 {
		t.Fatalf("book: %d %s", code, msg)
	}
	res := r.payFor(b.ID)
	r.PayAt(res.Payment.OutTradeNo)
	b = *r.waitBooking(b.ID, booking.StatusBooked)

	doc := r.appStaff("doc1", ihos.StaffDoctor, "13600136000")
	doc2 := r.appStaff("doc2", ihos.StaffDoctor, "13400134000")
	pharm := r.appStaff("ph1", ihos.StaffPharmacist, "13500135000")
	r.Catalog(cloudtest.CatalogItem{Kind: "DRUG", Code: "AML5", Name: "苯磺酸氨氯地平片", Price: 2350},
		cloudtest.CatalogItem{Kind: "DRUG", Code: "MOR", Name: "吗啡缓释片", Price: 2350, Flags: "NARC"},
		cloudtest.CatalogItem{Kind: "LAB", Code: "GLU", Name: "空腹血糖", Price: 2350})

	// Who gets in: doctors only.
	if code, msg := r.staffCall("", false, "GET", "/api/doctor/worklist", nil, nil); code != 401 {
		t.Fatalf("no session: %d %s", code, msg)
	}
	if code, msg := r.staffCall(pharm, false, "GET", "/api/doctor/worklist", nil, nil); code != 403 || msg != "只有医生可以使用医生工作台" {
		t.Fatalf("pharmacist: %d %s", code, msg)
	}
	if code, _ := r.staffCall(alice, false, "GET", "/api/doctor/worklist", nil, nil); code != 401 {
		t.Fatalf("patient: %d", code)
	}
	// A cookie session must bring its CSRF token to change anything.
	if code, _ := r.staffCall(doc, true, "POST", "/api/doctor/patient-groups", map[string]string{"name": "高血压"}, nil); code != 403 {
		t.Fatalf("cookie without CSRF: %d", code)
	}

	// The worklist.
	var wl workbench.Worklist
	if code, msg := r.staffCall(doc, true, "GET", "/api/doctor/worklist", nil, &wl); code != 200 || len(wl.Waiting) != 1 {
		t.Fatalf("worklist: %d %s %+v", code, msg, wl)
	}
	w := wl.Waiting[0]
	if w.ID != b.VisitID || w.QueuePosition != 1 || w.PatientName != demo.Name || w.PatientAge == nil || w.TypeLabel != "图文问诊" ||
		!w.SlotStart.Equal(b.StartAt) || !strings.HasPrefix(w.Condition, "反复头晕两周") || !strings.HasSuffix(w.Condition, "…") {
		t.Fatalf("waiting: %+v (booking %+v)", w, b)
	}
	if len(wl.InProgress) != 0 || len(wl.EndedToday) != 0 {
		t.Fatalf("worklist: %+v", wl)
	}
	if code, _ := r.staffCall(doc2, false, "GET", "/api/doctor/worklist", nil, &wl); code != 200 || len(wl.Waiting) != 0 {
		t.Fatalf("doc2's worklist: %+v", wl)
	}
	if _, err := r.app.Visits.Accept(context.Background(), visits.Party{Role: visits.RoleDoctor, ID: "doc1"}, b.VisitID); err != nil {
		t.Fatal(err)
	}
	if code, _ := r.staffCall(doc, false, "GET", "/api/doctor/worklist", nil, &wl); code != 200 || len(wl.Waiting) != 0 || len(wl.InProgress) != 1 {
		t.Fatalf("after accepting: %+v", wl)
	}

	// Favourites.
	var fav workbench.Favourite
	if code, msg := r.staffCall(doc, false, "POST", "/api/doctor/favourites", map[string]string{"kind": "drug", "code": "AML5"}, &fav); code != 201 || fav.Name != "苯磺酸氨氯地平片" || fav.Price != "23.50" {
		t.Fatalf("add favourite: %d %s %+v", code, msg, fav)
	}
	if code, msg := r.staffCall(doc, false, "POST", "/api/doctor/favourites", map[string]string{"kind": "drug", "code": "MOR"}, nil); code != 403 || !strings.Contains(msg, "麻醉药品") {
		t.Fatalf("narcotic favourite: %d %s", code, msg)
	}
	if code, msg := r.staffCall(doc, false, "POST", "/api/doctor/favourites", map[string]string{"kind": "lab", "code": "GLU"}, nil); code != 201 {
		t.Fatalf("lab favourite: %d %s", code, msg)
	}
	var favs []workbench.Favourite
	if code, _ := r.staffCall(doc, false, "GET", "/api/doctor/favourites?kind=drug", nil, &favs); code != 200 || len(favs) != 1 || favs[0].Code != "AML5" {
		t.Fatalf("drug favourites: %+v", favs)
	}
	if code, _ := r.staffCall(doc2, false, "GET", "/api/doctor/favourites", nil, &favs); code != 200 || len(favs) != 0 {
		t.Fatalf("doc2's favourites: %+v", favs)
	}
	if code, _ := r.staffCall(doc2, false, "DELETE", "/api/doctor/favourites/drug/AML5", nil, nil); code != 404 {
		t.Fatalf("doc2 removes doc1's favourite: %d", code)
	}
	if code, msg := r.staffCall(doc, false, "DELETE", "/api/doctor/favourites/drug/AML5", nil, nil); code != http.StatusNoContent {
		t.Fatalf("remove favourite: %d %s", code, msg)
	}
	if code, _ := r.staffCall(doc, false, "GET", "/api/doctor/favourites", nil, &favs); code != 200 || len(favs) != 1 || favs[0].Code != "GLU" {
		t.Fatalf("favourites after removing: %+v", favs)
	}

	// Treatment-plan templates.
	plan := map[string]any{"name": "高血压稳定期", "diagnoses": []map[string]string{{"code": "I10.x00", "name": "原发性高血压"}},
		"drugs": []map[string]any{{"code": "AML5", "quantity": 1, "dosage": "5mg", "frequency": "qd", "days": 28, "usage": "口服"}},
		"exams": []map[string]any{{"kind": "lab", "code": "GLU", "quantity": 1}}, "advice": "低盐低脂饮食"}
	var p workbench.Plan
	if code, msg := r.staffCall(doc, false, "POST", "/api/doctor/plans", plan, &p); code != 201 || p.ID == "" || p.Drugs[0].Name != "苯磺酸氨氯地平片" {
		t.Fatalf("create plan: %d %s %+v", code, msg, p)
	}
	if code, msg := r.staffCall(doc, false, "POST", "/api/doctor/plans", map[string]any{"name": ""}, nil); code != 400 || msg == "" {
		t.Fatalf("empty plan: %d %s", code, msg)
	}
	if code, _ := r.staffCall(doc2, false, "PUT", "/api/doctor/plans/"+p.ID, plan, nil); code != 404 {
		t.Fatalf("doc2 updates doc1's plan: %d", code)
	}
	plan["name"] = "高血压（调整）"
	if code, msg := r.staffCall(doc, false, "PUT", "/api/doctor/plans/"+p.ID, plan, &p); code != 200 || p.Name != "高血压（调整）" || p.Version != 2 {
		t.Fatalf("update plan: %d %s %+v", code, msg, p)
	}
	var plans []workbench.Plan
	if code, _ := r.staffCall(doc, false, "GET", "/api/doctor/plans", nil, &plans); code != 200 || len(plans) != 1 {
		t.Fatalf("plans: %+v", plans)
	}
	if code, msg := r.staffCall(doc, false, "POST", "/api/doctor/plans/"+p.ID+"/disable", nil, &p); code != 200 || p.Enabled {
		t.Fatalf("disable plan: %d %s", code, msg)
	}
	if code, _ := r.staffCall(doc, false, "GET", "/api/doctor/plans", nil, &plans); code != 200 || len(plans) != 0 {
		t.Fatalf("plans after disabling: %+v", plans)
	}
	if code, _ := r.staffCall(doc, false, "GET", "/api/doctor/plans?all=1", nil, &plans); code != 200 || len(plans) != 1 {
		t.Fatalf("all plans: %+v", plans)
	}

	// Order phrases.
	var phrases []workbench.Phrase
	if code, _ := r.staffCall(doc, false, "GET", "/api/doctor/phrases?category=frequency", nil, &phrases); code != 200 || len(phrases) == 0 ||
		phrases[0].Code != "qd" || phrases[0].Text != "每日一次" {
		t.Fatalf("frequency phrases: %+v", phrases)
	}
	var ph workbench.Phrase
	if code, msg := r.staffCall(doc, false, "POST", "/api/doctor/phrases", map[string]string{"category": "advice", "text": "一周后复查血压"}, &ph); code != 201 || !ph.Own {
		t.Fatalf("add phrase: %d %s %+v", code, msg, ph)
	}
	if code, msg := r.staffCall(doc, false, "POST", "/api/doctor/phrases", map[string]string{"category": "advice", "text": "两周后复诊"}, nil); code != 409 {
		t.Fatalf("duplicate phrase: %d %s", code, msg)
	}
	if code, _ := r.staffCall(doc2, false, "POST", "/api/doctor/phrases/"+ph.ID+"/disable", nil, nil); code != 404 {
		t.Fatalf("doc2 disables doc1's phrase: %d", code)
	}
	if code, msg := r.staffCall(doc, false, "POST", "/api/doctor/phrases/"+ph.ID+"/disable", nil, nil); code != http.StatusNoContent {
		t.Fatalf("disable phrase: %d %s", code, msg)
	}

	// Patient management.
	var pats []workbench.MyPatient
	if code, _ := r.staffCall(doc, false, "GET", "/api/doctor/patients", nil, &pats); code != 200 || len(pats) != 1 || pats[0].PatientID != self.PatientID ||
		pats[0].VisitCount != 1 || pats[0].Name != demo.Name {
		t.Fatalf("patients: %+v", pats)
	}
	if code, _ := r.staffCall(doc2, false, "GET", "/api/doctor/patients", nil, &pats); code != 200 || len(pats) != 0 {
		t.Fatalf("doc2's patients: %+v", pats)
	}
	marks := map[string]any{"groups": []string{"高血压"}, "tags": []string{"晨峰高血压"}, "key": true, "note": "关注晨起血压"}
	var mp workbench.MyPatient
	if code, msg := r.staffCall(doc, false, "PUT", "/api/doctor/patients/"+self.PatientID, marks, &mp); code != 200 || !mp.Key || len(mp.Groups) != 1 {
		t.Fatalf("mark patient: %d %s %+v", code, msg, mp)
	}
	if code, msg := r.staffCall(doc2, false, "PUT", "/api/doctor/patients/"+self.PatientID, marks, nil); code != 404 || msg != "患者不存在或未在您处就诊" {
		t.Fatalf("doc2 marks doc1's patient: %d %s", code, msg)
	}
	for _, q := range []string{"?key=1", "?group=" + "%E9%AB%98%E8%A1%80%E5%8E%8B", "?tag=" + "%E6%99%A8%E5%B3%B0%E9%AB%98%E8%A1%80%E5%8E%8B", "?q=" + self.PatientID} {
		if code, _ := r.staffCall(doc, false, "GET", "/api/doctor/patients"+q, nil, &pats); code != 200 || len(pats) != 1 {
			t.Fatalf("patients%s: %+v", q, pats)
		}
	}
	if code, _ := r.staffCall(doc, false, "GET", "/api/doctor/patients?group=x", nil, &pats); code != 200 || len(pats) != 0 {
		t.Fatalf("patients in no group: %+v", pats)
	}
	var groups []workbench.Group
	if code, msg := r.staffCall(doc, false, "POST", "/api/doctor/patient-groups", map[string]string{"name": "糖尿病"}, nil); code != 201 {
		t.Fatalf("add group: %d %s", code, msg)
	}
	if code, _ := r.staffCall(doc, false, "GET", "/api/doctor/patient-groups", nil, &groups); code != 200 || len(groups) != 2 ||
		fmt.Sprint(groups) != "[{高血压 1} {糖尿病 0}]" {
		t.Fatalf("groups: %+v", groups)
	}
	var rec workbench.Record
	if code, msg := r.staffCall(doc, false, "GET", "/api/doctor/patients/"+self.PatientID+"/record", nil, &rec); code != 200 ||
		rec.Patient.Name != demo.Name || len(rec.Visits) != 1 || rec.Visits[0].Visit.ID != b.VisitID || rec.Visits[0].EMR != nil || rec.Patient.Note != "关注晨起血压" {
		t.Fatalf("record: %d %s %+v", code, msg, rec)
	}
	if code, _ := r.staffCall(doc2, false, "GET", "/api/doctor/patients/"+self.PatientID+"/record", nil, nil); code != 404 {
		t.Fatalf("doc2 reads doc1's patient: %d", code)
	}
}
