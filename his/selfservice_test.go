package his_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/his"
	"ihos/his/hissim"
)

// What the kiosk asks, through both adapters against the simulator: the
// patient by ID card, insurance card and visit number, today's
// registrations, unpaid fees, and reports (counter orders and the
// platform's).
func TestSelfServiceQueries(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	httpHIS := &his.HTTP{BaseURL: r.sim.HTTPURL()}

	// An order placed through the platform, with its result, so that reports
	// hold one of each origin. The visit is registered first so the report
	// carries the HIS's visit number.
	zhang := demoPatient(0)
	platformVisit := ihos.NewID()
	if ack, err := r.adapter.Deliver(ctx, ihos.HISMessage{ID: ihos.NewID(), Event: ihos.HISRegisterVisit, At: time.Now(), Data: ihos.HISMessageData{
		Patient: zhang, VisitNo: platformVisit, DepartmentCode: "0301", DepartmentName: "心血管内科", DoctorCode: "D0301", DoctorName: "王建国"}}); err != nil || ack.Code != ihos.AckAccepted {
		t.Fatalf("register: %+v %v", ack, err)
	}
	placer := ihos.NewID()
	ack, err := r.adapter.Deliver(ctx, ihos.HISMessage{ID: ihos.NewID(), Event: ihos.HISLabOrder, At: time.Now(), Data: ihos.HISMessageData{
		Patient: zhang, VisitNo: platformVisit, DepartmentCode: "0301", DoctorCode: "D0301", DoctorName: "王建国",
		Orders: []ihos.HISOrderLine{{PlacerOrderNo: placer, Code: "JY0001", Name: "血常规(五分类)"}}}})
	if err != nil || ack.Code != ihos.AckAccepted || ack.Filler[placer] == "" {
		t.Fatalf("lab order: %+v %v", ack, err)
	}
	filler := ack.Filler[placer]

	for _, a := range []struct {
		name string
		his  ihos.HIS
	}{{"HL7", r.adapter}, {"HTTP", httpHIS}} {
		t.Run(a.name, func(t *testing.T) {
			svc := &his.Service{DB: r.db, HIS: a.his}
			p := hissim.DemoPatients[0]

			// Identification.
			got, err := svc.FindPatient(ctx, ihos.PatientIdentifier{Type: ihos.IDResident, Value: " " + strings.ToLower(p.IDNumber) + " "})
			if err != nil || got.HISID != p.HISID || got.Name != p.Name || got.InsuranceCard != p.InsuranceCard {
				t.Fatalf("by ID number: %+v %v", got, err)
			}
			if got, err := svc.FindPatient(ctx, ihos.PatientIdentifier{Type: ihos.IDInsurance, Value: p.InsuranceCard}); err != nil || got.HISID != p.HISID {
				t.Fatalf("by insurance card: %+v %v", got, err)
			}
			bad := p.IDNumber[:17] + string("10X98765432"[(strings.IndexByte("10X98765432", p.IDNumber[17])+1)%11])
			if _, err := svc.FindPatient(ctx, ihos.PatientIdentifier{Type: ihos.IDResident, Value: bad}); ihos.ErrorCode(err) != ihos.EInvalid || ihos.ErrorMessage(err) != "身份证号码有误，请核对后重新输入" {
				t.Errorf("wrong check digit: %v", err)
			}
			if _, err := svc.FindPatient(ctx, ihos.PatientIdentifier{Type: ihos.IDResident, Value: "11010119900101001X"}); ihos.ErrorCode(err) != ihos.EInvalid {
				t.Errorf("wrong check digit (X): %v", err)
			}
			unknown := "11010119900101" + "123"
			unknown += string(ihos.IDCheckDigit(unknown))
			if _, err := svc.FindPatient(ctx, ihos.PatientIdentifier{Type: ihos.IDResident, Value: unknown}); ihos.ErrorCode(err) != ihos.ENotFound || ihos.ErrorMessage(err) != "未找到您的就诊档案，请到人工窗口办理" {
				t.Errorf("unknown ID number: %v", err)
			}
			if _, err := svc.FindPatient(ctx, ihos.PatientIdentifier{Type: ihos.IDVisitNo, Value: "MZ99999999"}); ihos.ErrorCode(err) != ihos.ENotFound {
				t.Errorf("unknown visit number: %v", err)
			}
			if _, err := svc.FindPatient(ctx, ihos.PatientIdentifier{Type: ihos.IDVisitNo, Value: ""}); ihos.ErrorCode(err) != ihos.EInvalid {
				t.Errorf("empty visit number: %v", err)
			}

			// Today's registration, and the patient found by its number.
			today, err := svc.TodayVisits(ctx, p.HISID)
			if err != nil {
				t.Fatal(err)
			}
			var reg ihos.HISVisit
			for _, v := range today {
				if v.QueueNo != "" {
					reg = v
				}
			}
			d := time.Now().In(ihos.Shanghai)
			nine := time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, ihos.Shanghai)
			if reg.VisitNo == "" || reg.QueueNo != "009" || reg.TimeSlot != "09:00-09:30" || reg.FeeFen != 5000 || reg.Status != ihos.VisitRegistered ||
				reg.DepartmentName != "心血管内科" || reg.DoctorName != "王建国" || !reg.VisitedAt.Equal(nine) {
				t.Fatalf("张三's registration today: %+v (all today: %+v)", reg, today)
			}
			for _, v := range today {
				if v.VisitedAt.Before(nine.Add(-9 * time.Hour)) {
					t.Errorf("not today: %+v", v)
				}
			}
			if got, err := svc.FindPatient(ctx, ihos.PatientIdentifier{Type: ihos.IDVisitNo, Value: reg.VisitNo}); err != nil || got.HISID != p.HISID {
				t.Fatalf("by visit number %s: %+v %v", reg.VisitNo, got, err)
			}
			if got, err := svc.FindPatient(ctx, ihos.PatientIdentifier{Type: ihos.IDVisitNo, Value: platformVisit}); err != nil || got.HISID != p.HISID {
				t.Fatalf("by the platform's visit number: %+v %v", got, err)
			}
			if vs, err := svc.TodayVisits(ctx, "P000020"); err != nil || len(vs) != 1 || vs[0].Status != ihos.VisitCancelled {
				t.Errorf("P000020 today: %+v %v", vs, err)
			}
			if vs, err := svc.TodayVisits(ctx, "P000030"); err != nil || len(vs) != 0 {
				t.Errorf("P000030 is not registered today: %+v %v", vs, err)
			}
			// The full history carries the new fields too.
			all, err := a.his.VisitHistory(ctx, p.HISID, time.Time{})
			if err != nil || len(all) < 2 || all[len(all)-1].Status != ihos.VisitSeen || all[len(all)-1].QueueNo != "" || len(all[len(all)-1].Diagnoses) != 1 {
				t.Errorf("history: %+v %v", all, err)
			}

			// Unpaid fees: the seen patient owes today's blood test.
			fees, err := svc.UnpaidFees(ctx, "P000004")
			if err != nil || len(fees) == 0 || fees[len(fees)-1].ItemName != "血常规(五分类)" || fees[len(fees)-1].AmountFen <= 0 {
				t.Errorf("P000004's fees: %+v %v", fees, err)
			}

			// Reports: the platform's order (newest) and three counter orders.
			var reports []ihos.HISReport
			waitFor(t, 10*time.Second, "the platform order's report", func() bool {
				reports, err = svc.Reports(ctx, p.HISID, time.Time{})
				return err == nil && len(reports) == 4
			})
			first := reports[0]
			if first.PlacerOrderNo != placer || first.ReportNo != filler || first.Kind != ihos.CatalogLab || !strings.HasPrefix(first.VisitNo, "MZ") ||
				first.DepartmentName != "心血管内科" || first.DoctorName == "" || first.ResultStatus != "F" || len(first.Observations) < 10 || first.Conclusion != "" {
				t.Errorf("the platform order's report: %+v", first)
			}
			kinds := map[string]int{}
			for i, rep := range reports {
				kinds[rep.Kind]++
				if i > 0 && rep.ReportedAt.After(reports[i-1].ReportedAt) {
					t.Errorf("not newest first: %v after %v", rep.ReportedAt, reports[i-1].ReportedAt)
				}
				if i > 0 && (rep.PlacerOrderNo != "" || rep.VisitNo != all[len(all)-1].VisitNo) {
					t.Errorf("counter report %+v", rep)
				}
				if rep.Kind == ihos.CatalogExam && (rep.ServiceName != "胸部正位DR" || rep.Conclusion == "" || len(rep.Observations) != 2) {
					t.Errorf("exam report %+v", rep)
				}
				if rep.ServiceName == "血脂四项" {
					for _, o := range rep.Observations {
						if o.Code == "TC" && (o.Units != "mmol/L" || o.Range == "" || o.Type != "NM" || o.Flag == "") {
							t.Errorf("TC %+v", o)
						}
					}
				}
			}
			if kinds[ihos.CatalogLab] != 3 || kinds[ihos.CatalogExam] != 1 {
				t.Errorf("kinds %v", kinds)
			}
			recent, err := svc.Reports(ctx, p.HISID, time.Now())
			if err != nil || len(recent) != 1 || recent[0].PlacerOrderNo != placer {
				t.Errorf("since today: %+v %v", recent, err)
			}
			if none, err := svc.Reports(ctx, "P000003", time.Time{}); err != nil || len(none) != 0 {
				t.Errorf("王五's reports: %+v %v", none, err)
			}
		})
	}

	// The HIS down: every query says unavailable, through both adapters.
	r.sim.SetMode(hissim.Mode{Name: "down"})
	for _, h := range []ihos.HIS{r.adapter, httpHIS} {
		checkUnavailable(t, &his.Service{DB: r.db, HIS: h})
	}
}

// checkUnavailable asks everything the kiosk asks and wants EUnavailable.
func checkUnavailable(t *testing.T, svc *his.Service) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := hissim.DemoPatients[0]
	if _, err := svc.FindPatient(ctx, ihos.PatientIdentifier{Type: ihos.IDResident, Value: p.IDNumber}); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Errorf("%T FindPatient: %v", svc.HIS, err)
	}
	if _, err := svc.TodayVisits(ctx, p.HISID); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Errorf("%T TodayVisits: %v", svc.HIS, err)
	}
	if _, err := svc.UnpaidFees(ctx, p.HISID); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Errorf("%T UnpaidFees: %v", svc.HIS, err)
	}
	_, err := svc.Reports(ctx, p.HISID, time.Time{})
	if ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Errorf("%T Reports: %v", svc.HIS, err)
	}
	if msg := ihos.ErrorMessage(err); !strings.Contains(msg, "HIS") {
		t.Errorf("message %q", msg)
	}
}

// Nothing listening at the configured address: unavailable too.
func TestSelfServiceNoHIS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := his.NewHL7(addr)
	h.ReplyTimeout = time.Second
	h.Start()
	defer h.Close()
	checkUnavailable(t, &his.Service{HIS: h})
	checkUnavailable(t, &his.Service{HIS: &his.HTTP{BaseURL: "http://" + addr}})
}

// The appliance API: reports, and patients by visit number.
func TestSelfServiceAPI(t *testing.T) {
	r := newRig(t)
	mux := http.NewServeMux()
	r.svc.Routes(mux, func(req *http.Request, perm string) (context.Context, error) { return req.Context(), nil })
	get := func(path string, into any) int {
		t.Helper()
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if into != nil && rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), into); err != nil {
				t.Fatal(err)
			}
		}
		return rec.Code
	}
	var reports struct {
		Reports []ihos.HISReport `json:"reports"`
	}
	if code := get("/api/his/patients/P000001/reports", &reports); code != 200 || len(reports.Reports) != 3 {
		t.Fatalf("reports: %d %+v", code, reports)
	}
	if code := get("/api/his/patients/P000001/reports?since=2020-13-01", nil); code != http.StatusBadRequest {
		t.Errorf("bad since: %d", code)
	}
	today, err := r.svc.TodayVisits(context.Background(), "P000002")
	if err != nil || len(today) != 1 {
		t.Fatalf("today: %+v %v", today, err)
	}
	var pats struct {
		Patients []ihos.HISPatient `json:"patients"`
	}
	if code := get("/api/his/patients?type=VN&value="+today[0].VisitNo, &pats); code != 200 || len(pats.Patients) != 1 || pats.Patients[0].HISID != "P000002" {
		t.Errorf("by visit number: %d %+v", code, pats)
	}
}
