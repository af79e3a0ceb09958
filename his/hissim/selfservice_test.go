package hissim

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ihos/his/hl7"
)

// Today's registrations: the first 20 demo patients, once a day, the same on
// every simulator, and a new set on the next day.
func TestTodayRegistrations(t *testing.T) {
	a, b := startSim(t, Config{}), startSim(t, Config{})
	ctx := context.Background()
	d := time.Now().In(beijing)
	midnight := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, beijing)
	todays := func(s *Sim, day time.Time) map[string]visitRow {
		t.Helper()
		out := map[string]visitRow{}
		for _, p := range DemoPatients {
			vs, err := s.visits(ctx, p.HISID, day)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vs {
				if v.At.Before(day.Add(24 * time.Hour)) {
					if _, dup := out[p.HISID]; dup {
						t.Errorf("%s has two registrations on %s", p.HISID, day.Format("2006-01-02"))
					}
					out[p.HISID] = v
				}
			}
		}
		return out
	}
	va, vb := todays(a, midnight), todays(b, midnight)
	if len(va) != todayPatients {
		t.Fatalf("%d patients registered today, want %d", len(va), todayPatients)
	}
	status := map[string]int{}
	for id, v := range va {
		w := vb[id]
		if v.DeptCode != w.DeptCode || v.DoctorCode != w.DoctorCode || v.TimeSlot != w.TimeSlot || v.QueueNo != w.QueueNo || v.FeeFen != w.FeeFen || v.Status != w.Status || !v.At.Equal(w.At) {
			t.Errorf("%s: %+v on one simulator, %+v on another", id, v, w)
		}
		if v.QueueNo == "" || v.DoctorName == "" || v.DeptName == "" || (v.FeeFen != chiefFeeFen && v.FeeFen != attendingFeeFen) || len(v.Diagnoses) != 0 {
			t.Errorf("%s: %+v", id, v)
		}
		if slot := v.At.In(beijing).Format("15:04"); !strings.HasPrefix(v.TimeSlot, slot+"-") {
			t.Errorf("%s: visited at %s, slot %s", id, slot, v.TimeSlot)
		}
		status[v.Status]++
	}
	if z := va["P000001"]; z.DeptCode != "0301" || z.DoctorName != "王建国" || z.TimeSlot != "09:00-09:30" || z.QueueNo != "009" || z.FeeFen != 5000 || z.Status != "registered" {
		t.Errorf("张三 today: %+v", z)
	}
	if va["P000020"].Status != "cancelled" || status["seen"] != 6 || status["registered"] != 13 {
		t.Errorf("statuses %v", status)
	}
	// Seen patients owe the blood test their doctor ordered.
	fees, err := a.unpaidFees(ctx, "P000004")
	if err != nil || len(fees) == 0 || fees[len(fees)-1].VisitNo != va["P000004"].VisitNo || fees[len(fees)-1].ItemName != "血常规(五分类)" {
		t.Errorf("P000004's fees: %+v %v", fees, err)
	}

	// Once a day: again the same day adds nothing; the next day adds its own.
	if err := registerToday(ctx, a.db, time.Now()); err != nil {
		t.Fatal(err)
	}
	if again := todays(a, midnight); len(again) != todayPatients {
		t.Errorf("%d after a second run", len(again))
	}
	tomorrow := midnight.Add(24 * time.Hour)
	if err := registerToday(ctx, a.db, tomorrow.Add(7*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if next := todays(a, tomorrow); len(next) != todayPatients || next["P000001"].VisitNo == va["P000001"].VisitNo {
		t.Errorf("tomorrow: %d registrations", len(next))
	}
}

// A data directory made before the registration columns existed is
// upgraded in place and gets today's registrations and the demo reports.
func TestOldDatabaseUpgraded(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(filepath.Join(dir, "his-sim.db")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE visits (visit_no TEXT PRIMARY KEY, his_id TEXT NOT NULL, platform_visit TEXT NOT NULL DEFAULT '',
		department_code TEXT NOT NULL, department_name TEXT NOT NULL, doctor_code TEXT NOT NULL DEFAULT '', doctor_name TEXT NOT NULL DEFAULT '',
		service TEXT NOT NULL DEFAULT '', visited_at TEXT NOT NULL, control_id TEXT NOT NULL DEFAULT '')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := startSim(t, Config{DataDir: dir})
	vs, err := s.visits(context.Background(), "P000001", time.Time{})
	if err != nil || len(vs) != 2 || vs[0].QueueNo == "" || vs[1].Status != "seen" {
		t.Fatalf("visits: %+v %v", vs, err)
	}
	rs, err := s.reports(context.Background(), "P000001", time.Time{})
	if err != nil || len(rs) != 3 {
		t.Fatalf("reports: %+v %v", rs, err)
	}
}

// The demo reports: labs with the catalogue's analytes, units, ranges and
// flags that match the values; exams with findings and a conclusion.
func TestDemoReports(t *testing.T) {
	s := startSim(t, Config{})
	ctx := context.Background()
	rs, err := s.reports(ctx, "P000001", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]reportRow{}
	for _, r := range rs {
		names[r.ServiceName] = r
	}
	if len(rs) != 3 || names["血常规(五分类)"].Kind != "LAB" || names["血脂四项"].Kind != "LAB" || names["胸部正位DR"].Kind != "EXAM" {
		t.Fatalf("张三's reports: %+v", rs)
	}
	visits := past(s.visits(ctx, "P000001", time.Time{}))
	for _, r := range rs {
		if r.VisitNo != visits[0].VisitNo || r.DeptName != "心血管内科" || r.Reporter == "" || r.ResultStatus != "F" || r.At.Before(visits[0].At) || r.PlacerOrderNo != "" {
			t.Errorf("report %+v", r)
		}
	}
	var wbc *observation
	for i, o := range names["血常规(五分类)"].Observations {
		if o.Code == "WBC" {
			wbc = &names["血常规(五分类)"].Observations[i]
		}
	}
	if wbc == nil || wbc.Name != "白细胞计数" || wbc.Units != "10^9/L" || wbc.Range != "3.50-9.50" || wbc.Type != "NM" {
		t.Errorf("WBC: %+v", wbc)
	}
	chest := names["胸部正位DR"]
	if len(chest.Observations) != 2 || chest.Observations[0].Code != "FINDING" || chest.Conclusion == "" || chest.Conclusion != chest.Observations[1].Value {
		t.Errorf("chest report: %+v", chest)
	}

	// Across all demo patients: flags agree with values and ranges.
	var labs, exams int
	for _, p := range DemoPatients {
		rs, err := s.reports(ctx, p.HISID, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.At.After(time.Now()) {
				t.Errorf("%s reported in the future", r.ReportNo)
			}
			if r.Kind == "EXAM" {
				exams++
				if r.Conclusion == "" {
					t.Errorf("exam %s without conclusion", r.ReportNo)
				}
				continue
			}
			labs++
			for _, o := range r.Observations {
				if o.Type != "NM" {
					continue
				}
				lo, hi, _ := strings.Cut(o.Range, "-")
				v := atof(o.Value)
				want := "N"
				if v > atof(hi) {
					want = "H"
				} else if v < atof(lo) {
					want = "L"
				}
				if o.Flag != want {
					t.Errorf("%s %s = %s (%s): flag %s", r.ReportNo, o.Name, o.Value, o.Range, o.Flag)
				}
			}
		}
	}
	t.Logf("demo reports: %d labs, %d exams", labs, exams)
	if labs < 60 || exams < 25 {
		t.Errorf("only %d labs and %d exams", labs, exams)
	}
}

// ZR1 over MLLP and /reports over HTTP, with the result of an order placed
// through the platform among them; PDQ by visit number.
func TestReportsAndVisitNumberQueries(t *testing.T) {
	s := startSim(t, Config{ResultDelay: -1})
	c := client(t, s)
	ctx := context.Background()

	visitNo := "VISIT-" + newID("V")
	wantAck(t, send(t, c, message("ADT", "A04", "ADT_A01", newID("M"), zhangSan, visitNo)), "AA")
	placer := newID("LAB")
	order := orderMessage("OML", newID("M"), zhangSan, line{placer, "JY0001", ""})
	order.Set("PV1-19", visitNo)
	ack := send(t, c, order)
	wantAck(t, ack, "AA")
	filler := ack.Get("ORC-3")
	eventually(t, 5*time.Second, "the result", func() bool {
		var n int
		s.db.QueryRow(`SELECT count(*) FROM results WHERE placer_order_no = ?`, placer).Scan(&n)
		return n == 1
	})

	rsp := send(t, c, query("ZR1", "QBP_Q11", "ZR1^检查检验报告", "P000001", ""))
	wantAck(t, rsp, "AA")
	if typ, trigger, _ := rsp.Type(); typ != "RSP" || trigger != "ZR2" || rsp.Get("QAK-2") != "OK" || rsp.Get("QAK-4") != "4" {
		t.Fatalf("ZR1 answered %s^%s QAK %v", typ, trigger, rsp.Segment("QAK").Fields)
	}
	if len(rsp.All("PV1")) != 4 || len(rsp.All("ORC")) != 4 || len(rsp.All("OBR")) != 4 {
		t.Fatalf("ZR2 groups: %d PV1 %d ORC %d OBR", len(rsp.All("PV1")), len(rsp.All("ORC")), len(rsp.All("OBR")))
	}
	// The platform's order is the newest: first.
	if rsp.Get("OBR-2") != placer || rsp.Get("OBR-3") != filler || rsp.Get("OBR-24") != "LAB" || rsp.Get("OBR-25") != "F" ||
		rsp.Get("OBR-32-1-2") == "" || !strings.HasPrefix(rsp.Get("PV1-19"), "MZ") || rsp.Get("PV1-3-9") != "心血管内科" || rsp.Get("ORC-3") != filler {
		t.Errorf("the platform order's report: PV1 %v OBR %v", rsp.Segment("PV1").Fields, rsp.Segment("OBR").Fields)
	}
	var chest int
	for i, obr := range rsp.All("OBR") {
		if obr.Get("24") == "EXAM" {
			chest = i + 1
		}
	}
	if chest == 0 || rsp.Get("OBR("+itoa64(int64(chest))+")-4-2") != "胸部正位DR" {
		t.Errorf("no chest exam")
	}
	var impression bool
	for _, obx := range rsp.All("OBX") {
		if obx.Get("3-1") == "IMPRESSION" && obx.Get("2") == "TX" && obx.Get("5") != "" {
			impression = true
		}
	}
	if !impression {
		t.Error("no IMPRESSION observation")
	}
	since := time.Now().In(beijing).Format("20060102")
	if rsp := send(t, c, query("ZR1", "QBP_Q11", "ZR1^检查检验报告", "P000001", since)); len(rsp.All("OBR")) != 1 || rsp.Get("OBR-2") != placer {
		t.Errorf("since today: %d OBR", len(rsp.All("OBR")))
	}
	if rsp := send(t, c, query("ZR1", "QBP_Q11", "ZR1^检查检验报告", "P000003", "")); rsp.Get("QAK-2") != "NF" || rsp.Segment("OBR") != nil {
		t.Errorf("王五 has no reports: QAK-2 %q", rsp.Get("QAK-2"))
	}
	if rsp := send(t, c, query("ZR1", "QBP_Q11", "ZR1^检查检验报告", "", "")); rsp.Get("MSA-1") != "AE" {
		t.Errorf("ZR1 without a patient: %q", rsp.Get("MSA-1"))
	}
	if rsp := send(t, c, query("ZR1", "QBP_Q11", "ZR1^检查检验报告", "P000001", "20241350")); rsp.Get("MSA-1") != "AE" {
		t.Errorf("ZR1 with a bad date: %q", rsp.Get("MSA-1"))
	}

	// PDQ by visit number: the HIS's, the platform's, and as @PV1.19.
	today := past(s.visits(ctx, "P000002", time.Time{}))
	for _, vn := range []string{today[0].VisitNo, visitNo} {
		rsp := send(t, c, pdq(vn, "VN"))
		want := "P000001"
		if vn == today[0].VisitNo {
			want = "P000002"
		}
		if len(rsp.All("PID")) != 1 || rsp.Get("PID-3-1") != want {
			t.Errorf("PDQ VN %s: %d PID, %q", vn, len(rsp.All("PID")), rsp.Get("PID-3-1"))
		}
	}
	m := hl7.New("QBP", "Q22", "QBP_Q21", newID("Q"))
	qpd := m.Add("QPD")
	qpd.Set("1", "IHE PDQ Query")
	qpd.Set("3-1", "@PV1.19")
	qpd.Set("3-2", visitNo)
	if rsp := send(t, c, m); rsp.Get("PID-3-1") != "P000001" {
		t.Errorf("PDQ @PV1.19: %q", rsp.Get("PID-3-1"))
	}
	if rsp := send(t, c, pdq("MZ99999999", "VN")); rsp.Get("QAK-2") != "NF" {
		t.Errorf("unknown visit number: %q", rsp.Get("QAK-2"))
	}

	// HTTP.
	base := s.HTTPURL() + "/his/api"
	var reports struct {
		Reports []struct {
			ReportNo       string `json:"report_no"`
			PlacerOrderNo  string `json:"placer_order_no"`
			Kind           string `json:"kind"`
			VisitNo        string `json:"visit_no"`
			ServiceName    string `json:"service_name"`
			DepartmentName string `json:"department_name"`
			DoctorName     string `json:"doctor_name"`
			ReportedAt     string `json:"reported_at"`
			Conclusion     string `json:"conclusion"`
			Observations   []observation
		} `json:"reports"`
	}
	if code := getJSON(t, base+"/patients/P000001/reports", &reports); code != 200 || len(reports.Reports) != 4 ||
		reports.Reports[0].PlacerOrderNo != placer || reports.Reports[0].ReportNo != filler || len(reports.Reports[0].Observations) == 0 {
		t.Fatalf("reports: %d %+v", code, reports)
	}
	for _, r := range reports.Reports {
		if _, err := time.Parse(time.RFC3339, r.ReportedAt); err != nil || r.DoctorName == "" || r.DepartmentName == "" || (r.Kind == "EXAM") != (r.Conclusion != "") {
			t.Errorf("report %+v", r)
		}
	}
	if code := getJSON(t, base+"/patients/P000001/reports?since="+time.Now().In(beijing).Format("2006-01-02"), &reports); code != 200 || len(reports.Reports) != 1 {
		t.Errorf("reports since today: %d %d", code, len(reports.Reports))
	}
	var errBody apiError
	if code := getJSON(t, base+"/patients/P999999/reports", &errBody); code != 404 {
		t.Errorf("unknown patient: %d", code)
	}
	if code := getJSON(t, base+"/patients/P000001/reports?since=yesterday", &errBody); code != 400 {
		t.Errorf("bad since: %d", code)
	}
	var pats struct {
		Patients []patientJSON `json:"patients"`
	}
	if code := getJSON(t, base+"/patients?"+url.Values{"visit_no": {visitNo}}.Encode(), &pats); code != 200 || len(pats.Patients) != 1 || pats.Patients[0].HISID != "P000001" {
		t.Errorf("by visit number: %d %+v", code, pats)
	}
}
