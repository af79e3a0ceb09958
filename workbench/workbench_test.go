package workbench_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/prescriptions"
	"ihos/visits"
	"ihos/workbench"
)

const hosp = "H1"

var (
	d1 = workbench.Doctor{ID: "D1", HospitalID: hosp}
	d2 = workbench.Doctor{ID: "D2", HospitalID: hosp}
)

type rig struct {
	t      *testing.T
	db     *sqldb.DB
	visits *visits.Service
	svc    *workbench.Service
	ctx    context.Context
	now    string
	seq    int
	// condCol is the bookings column with the patient's condition.
	condCol string
}

func (r *rig) exec(q string, args ...any) {
	r.t.Helper()
	if _, err := r.db.ExecContext(r.ctx, q, args...); err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
}

func hasColumn(t *testing.T, db *sqldb.DB, table, col string) bool {
	rows, err := db.QueryContext(context.Background(), `SELECT * FROM `+table+` WHERE 1 = 0`)
	if err != nil {
		return false
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	return slices.Contains(cols, col)
}

// newRig seeds two doctors of hospital H1, three patients and the HIS
// catalogue; the bookings table gets a condition column and an
// emr_records table appears if the packages that own them have not made
// them yet, so the workspace's optional parts are exercised either way.
func newRig(t *testing.T, db *sqldb.DB) *rig {
	ctx := context.Background()
	r := &rig{t: t, db: db, ctx: ctx, now: ihos.FormatTime(time.Now())}
	r.condCol = "condition_desc"
	if !hasColumn(t, db, "bookings", r.condCol) {
		r.condCol = "condition"
		r.exec("ALTER TABLE bookings ADD COLUMN `condition` TEXT NULL")
	}
	if !hasColumn(t, db, "emr_records", "visit_id") {
		r.exec(`CREATE TABLE emr_records (id VARCHAR(36) NOT NULL PRIMARY KEY, hospital_id VARCHAR(36) NOT NULL, visit_id VARCHAR(36) NOT NULL,
			revision INTEGER NOT NULL, patient_id VARCHAR(36) NOT NULL, doctor_id VARCHAR(36) NOT NULL, status VARCHAR(16) NOT NULL,
			chief_complaint TEXT NULL, present_illness TEXT NULL, past_history TEXT NULL, physical_exam TEXT NULL, diagnoses TEXT NULL,
			advice TEXT NULL, signed_doc TEXT NULL, signature TEXT NULL, signed_at VARCHAR(27) NULL, version BIGINT NOT NULL,
			created_at VARCHAR(27) NOT NULL, updated_at VARCHAR(27) NOT NULL, deleted_at VARCHAR(27) NULL)`)
	}
	for _, s := range []struct{ id, name string }{{"D1", "王医生"}, {"D2", "李医生"}} {
		r.exec(`INSERT INTO staff (id, hospital_id, institution_id, department_id, job_no, name, kind, title, enabled, version, created_at, updated_at)
			VALUES (?, ?, 'i1', 'dep1', ?, ?, 'doctor', '主任医师', 1, 1, ?, ?)`, s.id, hosp, "J"+s.id, s.name, r.now, r.now)
	}
	r.exec(`INSERT INTO patients (id, hospital_id, name, gender, birth_year, created_at, updated_at) VALUES ('P1', ?, '张三', '男', 1960, ?, ?)`, hosp, r.now, r.now)
	r.exec(`INSERT INTO patients (id, hospital_id, name, gender, birth_year, created_at, updated_at) VALUES ('P2', ?, '李小红', '女', 2022, ?, ?)`, hosp, r.now, r.now)
	r.exec(`INSERT INTO patients (id, hospital_id, name, gender, birth_year, created_at, updated_at) VALUES ('P3', ?, '赵六', '男', 1990, ?, ?)`, hosp, r.now, r.now)
	// P2's exact birth date from the ID number, on an account: tomorrow, four
	// years ago (so not yet four).
	birth := time.Now().In(ihos.Shanghai).AddDate(-4, 0, 1).Format(time.DateOnly)
	r.exec(`INSERT INTO patient_members (id, account_id, hospital_id, patient_id, relation, birth_date, created_at, updated_at)
		VALUES ('M2', 'A1', ?, 'P2', 'child', ?, ?, ?)`, hosp, birth, r.now, r.now)
	for _, c := range []struct {
		kind, code, name string
		price            int64
		flags            string
		enabled          int
	}{
		{"DRUG", "AML5", "苯磺酸氨氯地平片", 2350, "", 1},
		{"DRUG", "MET", "盐酸二甲双胍片", 1200, "", 1},
		{"DRUG", "MOR", "吗啡缓释片", 5000, "NARC", 1},
		{"DRUG", "OLD", "已停用药", 100, "", 0},
		{"EXAM", "CT01", "头颅CT平扫", 18000, "", 1},
		{"LAB", "GLU", "空腹血糖", 800, "", 1},
	} {
		r.exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, spec, unit, price_fen, flags, enabled, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, '5mg*28片', '盒', ?, ?, ?, ?, ?)`, ihos.NewID(), hosp, c.kind, c.code, c.name, c.price, c.flags, c.enabled, r.now, r.now)
	}
	r.visits = &visits.Service{DB: db}
	r.svc = &workbench.Service{DB: db, Visits: r.visits, Prescriptions: &prescriptions.Service{DB: db}}
	if err := r.svc.Init(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

// visit books a slot an hour from now for patient with doctor and opens
// its visit; booked orders the queue.
func (r *rig) visit(patient, doctor string, booked time.Time, condition string) *visits.Visit {
	r.t.Helper()
	r.seq++
	bid := fmt.Sprintf("B%d", r.seq)
	start := time.Now().Add(time.Hour).Truncate(time.Minute)
	r.exec("INSERT INTO bookings (id, hospital_id, slot_id, schedule_id, staff_id, patient_id, visit_type, start_at, end_at, status, created_at, updated_at, `"+r.condCol+"`)"+
		` VALUES (?, ?, ?, 'S1', ?, ?, 'text', ?, ?, 'booked', ?, ?, ?)`,
		bid, hosp, "S1:"+bid, doctor, patient, ihos.FormatTime(start), ihos.FormatTime(start.Add(30*time.Minute)), r.now, r.now, condition)
	v, err := r.visits.Open(r.ctx, visits.VisitSpec{HospitalID: hosp, BookingID: bid, PatientID: patient, DoctorID: doctor,
		DepartmentID: "dep1", Type: visits.TypeText, BookedAt: booked})
	if err != nil {
		r.t.Fatal(err)
	}
	return v
}

func (r *rig) accept(v *visits.Visit, end bool) {
	r.t.Helper()
	by := visits.Party{Role: visits.RoleDoctor, ID: v.DoctorID}
	if _, err := r.visits.Accept(r.ctx, by, v.ID); err != nil {
		r.t.Fatal(err)
	}
	if end {
		if _, err := r.visits.End(r.ctx, by, v.ID, ""); err != nil {
			r.t.Fatal(err)
		}
	}
}

// refused checks that err is an *ihos.Error of code whose message or a
// field's contains msg.
func refused(t *testing.T, what string, err error, code, msg string) {
	t.Helper()
	var e *ihos.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: %v, want %s %q", what, err, code, msg)
	}
	text := e.Message
	for _, f := range e.Fields {
		text += " " + f
	}
	if e.Code != code || !strings.Contains(text, msg) {
		t.Fatalf("%s: %s %q, want %s %q", what, e.Code, text, code, msg)
	}
}

func (r *rig) audits(resource string) int {
	r.t.Helper()
	_, n, err := audit.List(r.ctx, r.db, audit.Filter{Resource: resource, PageSize: 1})
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}

func TestWorkbench(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		r := newRig(t, db)
		t.Run("worklist", func(t *testing.T) { testWorklist(t, r) })
		t.Run("favourites", func(t *testing.T) { testFavourites(t, r) })
		t.Run("plans", func(t *testing.T) { testPlans(t, r) })
		t.Run("phrases", func(t *testing.T) { testPhrases(t, r) })
		t.Run("patients", func(t *testing.T) { testPatients(t, r) })
		t.Run("record", func(t *testing.T) { testRecord(t, r) })
	})
}

func testWorklist(t *testing.T, r *rig) {
	r.t = t
	base := time.Now().Add(-time.Hour)
	long := strings.Repeat("头晕", 40) // 80 characters
	w2 := r.visit("P2", "D1", base.Add(2*time.Minute), "")
	w1 := r.visit("P1", "D1", base.Add(time.Minute), long)
	inProgress := r.visit("P1", "D1", base, "血压控制不佳")
	r.accept(inProgress, false)
	ended := r.visit("P2", "D1", base, "咳嗽一周")
	r.accept(ended, true)
	cancelled := r.visit("P3", "D1", base, "")
	if _, err := r.visits.Cancel(r.ctx, visits.Party{Role: visits.RolePatient, ID: "P3"}, cancelled.ID, "不需要了"); err != nil {
		t.Fatal(err)
	}
	other := r.visit("P3", "D2", base, "")

	w, err := r.svc.Worklist(r.ctx, d1)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(l []*workbench.WorkItem) (out []string) {
		for _, it := range l {
			out = append(out, it.ID)
		}
		return out
	}
	if got := ids(w.Waiting); !slices.Equal(got, []string{w1.ID, w2.ID}) {
		t.Fatalf("waiting %v, want %v", got, []string{w1.ID, w2.ID})
	}
	a, b := w.Waiting[0], w.Waiting[1]
	age := time.Now().In(ihos.Shanghai).Year() - 1960
	if a.QueuePosition != 1 || b.QueuePosition != 2 || a.PatientName != "张三" || a.PatientGender != "男" || a.PatientAge == nil || *a.PatientAge != age ||
		a.TypeLabel != "图文问诊" || a.SlotStart.IsZero() || a.SlotEnd.Sub(a.SlotStart) != 30*time.Minute {
		t.Fatalf("first waiting: %+v", a)
	}
	if a.Condition != strings.Repeat("头晕", 30)+"…" {
		t.Fatalf("condition summary: %q", a.Condition)
	}
	if b.PatientAge == nil || *b.PatientAge != 3 || b.Condition != "" {
		t.Fatalf("a child not four until tomorrow: %+v", b)
	}
	if got := ids(w.InProgress); !slices.Equal(got, []string{inProgress.ID}) || w.InProgress[0].Condition != "血压控制不佳" {
		t.Fatalf("in progress %v", got)
	}
	if got := ids(w.EndedToday); !slices.Equal(got, []string{ended.ID}) {
		t.Fatalf("ended today %v", got)
	}
	// The other doctor sees only their own patient.
	w, err = r.svc.Worklist(r.ctx, d2)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(w.Waiting); !slices.Equal(got, []string{other.ID}) || len(w.InProgress) != 0 || len(w.EndedToday) != 0 {
		t.Fatalf("D2's worklist: %+v", w)
	}
	// Tomorrow the ended visit is no longer today's.
	r.svc.Now = func() time.Time { return time.Now().Add(24 * time.Hour) }
	defer func() { r.svc.Now = nil }()
	if w, err = r.svc.Worklist(r.ctx, d1); err != nil || len(w.EndedToday) != 0 || len(w.Waiting) != 2 {
		t.Fatalf("tomorrow: %v %+v", err, w)
	}
	if _, err := r.svc.Worklist(r.ctx, workbench.Doctor{}); err == nil {
		t.Fatal("no doctor: no worklist")
	}
}

func testFavourites(t *testing.T, r *rig) {
	r.t = t
	f, err := r.svc.AddFavourite(r.ctx, d1, "drug", "AML5")
	if err != nil || f.Name != "苯磺酸氨氯地平片" || f.PriceFen != 2350 || f.Price != "23.50" || !f.Available {
		t.Fatalf("add: %v %+v", err, f)
	}
	if _, err := r.svc.AddFavourite(r.ctx, d1, "exam", "CT01"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.AddFavourite(r.ctx, d1, "lab", "GLU"); err != nil {
		t.Fatal(err)
	}
	_, err = r.svc.AddFavourite(r.ctx, d1, "drug", "AML5")
	refused(t, "again", err, ihos.EConflict, "已在常用药品中")
	_, err = r.svc.AddFavourite(r.ctx, d1, "drug", "MOR")
	refused(t, "narcotic", err, ihos.EForbidden, "麻醉药品、精神药品不能在互联网医院开具")
	_, err = r.svc.AddFavourite(r.ctx, d1, "drug", "OLD")
	refused(t, "disabled", err, ihos.EInvalid, "已在医院停用")
	_, err = r.svc.AddFavourite(r.ctx, d1, "drug", "NOPE")
	refused(t, "unknown", err, ihos.EInvalid, "药品目录中没有编码为 NOPE 的项目")
	_, err = r.svc.AddFavourite(r.ctx, d1, "exam", "AML5")
	refused(t, "drug as exam", err, ihos.EInvalid, "检查目录中没有编码为 AML5")
	_, err = r.svc.AddFavourite(r.ctx, d1, "food", "X")
	refused(t, "kind", err, ihos.EInvalid, "类别应为药品")

	drugs, err := r.svc.Favourites(r.ctx, d1, "drug")
	if err != nil || len(drugs) != 1 || drugs[0].Code != "AML5" || drugs[0].Unit != "盒" || drugs[0].KindLabel != "药品" {
		t.Fatalf("drug favourites: %v %+v", err, drugs)
	}
	all, err := r.svc.Favourites(r.ctx, d1, "")
	if err != nil || len(all) != 3 {
		t.Fatalf("all favourites: %v %+v", err, all)
	}
	// The catalogue moves on: today's price shows, and a withdrawn item is
	// still listed under its old name, not available.
	r.exec(`UPDATE his_catalog SET price_fen = 2400 WHERE code = 'AML5'`)
	r.exec(`UPDATE his_catalog SET deleted_at = ? WHERE code = 'GLU'`, r.now)
	all, _ = r.svc.Favourites(r.ctx, d1, "")
	for _, f := range all {
		switch f.Code {
		case "AML5":
			if f.PriceFen != 2400 || !f.Available {
				t.Fatalf("repriced: %+v", f)
			}
		case "GLU":
			if f.Name != "空腹血糖" || f.Available {
				t.Fatalf("withdrawn: %+v", f)
			}
		}
	}
	r.exec(`UPDATE his_catalog SET deleted_at = NULL WHERE code = 'GLU'`)
	if list, _ := r.svc.Favourites(r.ctx, d2, ""); len(list) != 0 {
		t.Fatalf("D2 sees D1's favourites: %+v", list)
	}
	err = r.svc.RemoveFavourite(r.ctx, d2, "drug", "AML5")
	refused(t, "D2 removes D1's", err, ihos.ENotFound, "常用药品中没有该项目")
	if err := r.svc.RemoveFavourite(r.ctx, d1, "drug", "AML5"); err != nil {
		t.Fatal(err)
	}
	err = r.svc.RemoveFavourite(r.ctx, d1, "drug", "AML5")
	refused(t, "removed twice", err, ihos.ENotFound, "常用药品中没有该项目")
	if n := r.audits("doctor_favourites"); n != 4 {
		t.Fatalf("%d audit records of favourites, want 4 (3 added, 1 removed)", n)
	}
}

func goodPlan() workbench.PlanInput {
	return workbench.PlanInput{Name: "高血压稳定期", Diagnoses: []workbench.Diagnosis{{Code: "I10.x00", Name: "原发性高血压"}},
		Drugs: []workbench.PlanDrug{{Code: "AML5", Quantity: 1, Dosage: "5mg", Frequency: "qd", Days: 28, Usage: "口服"}},
		Exams: []workbench.PlanExam{{Kind: "lab", Code: "GLU", Quantity: 1}}, Advice: "低盐低脂饮食"}
}

func testPlans(t *testing.T, r *rig) {
	r.t = t
	p, err := r.svc.CreatePlan(r.ctx, d1, goodPlan())
	if err != nil || p.Name != "高血压稳定期" || len(p.Drugs) != 1 || p.Drugs[0].Name != "苯磺酸氨氯地平片" || !p.Drugs[0].Available ||
		p.Drugs[0].Frequency != "qd" || p.Exams[0].Name != "空腹血糖" || p.Exams[0].PriceFen != 800 || !p.Enabled || p.Version != 1 {
		t.Fatalf("create: %v %+v", err, p)
	}
	for _, c := range []struct {
		what   string
		change func(*workbench.PlanInput)
		code   string
		msg    string
	}{
		{"no name", func(in *workbench.PlanInput) { in.Name = " " }, ihos.EInvalid, "请填写方案名称"},
		{"empty", func(in *workbench.PlanInput) { *in = workbench.PlanInput{Name: "空"} }, ihos.EInvalid, "方案内容为空"},
		{"narcotic", func(in *workbench.PlanInput) { in.Drugs[0].Code = "MOR" }, ihos.EForbidden, "麻醉药品"},
		{"quantity", func(in *workbench.PlanInput) { in.Drugs[0].Quantity = 0 }, ihos.EInvalid, "数量应为 1 到 9999"},
		{"days", func(in *workbench.PlanInput) { in.Drugs[0].Days = 120 }, ihos.EInvalid, "用药天数应为 0 到 90"},
		{"exam kind", func(in *workbench.PlanInput) { in.Exams[0].Kind = "drug" }, ihos.EInvalid, "类别应为检查（exam）或检验（lab）"},
		{"unknown exam", func(in *workbench.PlanInput) { in.Exams[0].Code = "X" }, ihos.EInvalid, "检验目录中没有编码为 X"},
		{"diagnosis", func(in *workbench.PlanInput) { in.Diagnoses[0].Name = "" }, ihos.EInvalid, "请填写诊断名称"},
		{"six drugs", func(in *workbench.PlanInput) { in.Drugs = make([]workbench.PlanDrug, 6) }, ihos.EInvalid, "每张处方不得超过 5 种药品"},
		{"same name", func(in *workbench.PlanInput) {}, ihos.EConflict, "已有名为「高血压稳定期」的治疗方案模板"},
	} {
		in := goodPlan()
		c.change(&in)
		_, err := r.svc.CreatePlan(r.ctx, d1, in)
		refused(t, c.what, err, c.code, c.msg)
	}
	// Another doctor may use the same name, and never sees D1's.
	if _, err := r.svc.CreatePlan(r.ctx, d2, goodPlan()); err != nil {
		t.Fatal(err)
	}
	_, err = r.svc.Plan(r.ctx, d2, p.ID)
	refused(t, "D2 reads D1's", err, ihos.ENotFound, "治疗方案模板不存在")
	_, err = r.svc.UpdatePlan(r.ctx, d2, p.ID, goodPlan())
	refused(t, "D2 updates D1's", err, ihos.ENotFound, "治疗方案模板不存在")
	_, err = r.svc.DisablePlan(r.ctx, d2, p.ID)
	refused(t, "D2 disables D1's", err, ihos.ENotFound, "治疗方案模板不存在")

	in := goodPlan()
	in.Name, in.Drugs = "糖尿病", []workbench.PlanDrug{{Code: "MET", Quantity: 2, Frequency: "bid", Usage: "口服"}}
	if p, err = r.svc.UpdatePlan(r.ctx, d1, p.ID, in); err != nil || p.Name != "糖尿病" || p.Drugs[0].Code != "MET" || p.Version != 2 {
		t.Fatalf("update: %v %+v", err, p)
	}
	second := goodPlan()
	second.Name = "第二个"
	q, err := r.svc.CreatePlan(r.ctx, d1, second)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = r.svc.DisablePlan(r.ctx, d1, p.ID); err != nil || p.Enabled {
		t.Fatalf("disable: %v %+v", err, p)
	}
	_, err = r.svc.UpdatePlan(r.ctx, d1, p.ID, in)
	refused(t, "update disabled", err, ihos.EConflict, "已停用")
	list, err := r.svc.Plans(r.ctx, d1, false)
	if err != nil || len(list) != 1 || list[0].ID != q.ID {
		t.Fatalf("enabled plans: %v %+v", err, list)
	}
	if list, _ = r.svc.Plans(r.ctx, d1, true); len(list) != 2 {
		t.Fatalf("all plans: %+v", list)
	}
	// A disabled plan's name is free again.
	in.Name = "糖尿病"
	if _, err := r.svc.CreatePlan(r.ctx, d1, in); err != nil {
		t.Fatalf("reuse the name of a disabled plan: %v", err)
	}
	if n := r.audits("doctor_plans"); n != 6 {
		t.Fatalf("%d audit records of plans, want 6", n)
	}
}

func testPhrases(t *testing.T, r *rig) {
	r.t = t
	list, err := r.svc.Phrases(r.ctx, d1, "")
	if err != nil {
		t.Fatal(err)
	}
	has := func(list []workbench.Phrase, category, code, text string) *workbench.Phrase {
		for i, p := range list {
			if p.Category == category && p.Code == code && p.Text == text {
				return &list[i]
			}
		}
		return nil
	}
	for _, want := range [][3]string{{"usage", "po", "口服"}, {"usage", "ivgtt", "静脉滴注"}, {"usage", "", "外用"}, {"usage", "", "雾化吸入"},
		{"frequency", "qd", "每日一次"}, {"frequency", "prn", "必要时"}, {"advice", "", "两周后复诊"}, {"advice", "", "低盐低脂饮食"}} {
		if has(list, want[0], want[1], want[2]) == nil {
			t.Fatalf("default %v missing", want)
		}
	}
	freq, err := r.svc.Phrases(r.ctx, d1, "frequency")
	if err != nil || len(freq) < 6 || freq[0].Code != "qd" || freq[0].CategoryLabel != "频次" {
		t.Fatalf("frequency: %v %+v", err, freq)
	}
	_, err = r.svc.Phrases(r.ctx, d1, "food")
	refused(t, "category", err, ihos.EInvalid, "类别应为用法")

	own, err := r.svc.AddPhrase(r.ctx, d1, workbench.PhraseInput{Category: "advice", Text: "  三个月后复查糖化血红蛋白 "})
	if err != nil || own.Text != "三个月后复查糖化血红蛋白" || !own.Own {
		t.Fatalf("add: %v %+v", err, own)
	}
	_, err = r.svc.AddPhrase(r.ctx, d1, workbench.PhraseInput{Category: "advice", Text: "两周后复诊"})
	refused(t, "same as a default", err, ihos.EConflict, "已有相同的医嘱术语")
	_, err = r.svc.AddPhrase(r.ctx, d1, workbench.PhraseInput{Category: "usage", Text: strings.Repeat("口", 21)})
	refused(t, "long usage", err, ihos.EInvalid, "不能超过 20 个字")
	_, err = r.svc.AddPhrase(r.ctx, d1, workbench.PhraseInput{Category: "frequency", Code: "每日", Text: "每日五次"})
	refused(t, "code", err, ihos.EInvalid, "简写只能是")
	if p, err := r.svc.AddPhrase(r.ctx, d1, workbench.PhraseInput{Category: "frequency", Code: "q6h", Text: "每6小时一次"}); err != nil || p.Code != "q6h" {
		t.Fatalf("own frequency: %v %+v", err, p)
	}
	advice, _ := r.svc.Phrases(r.ctx, d1, "advice")
	if p := has(advice, "advice", "", "三个月后复查糖化血红蛋白"); p == nil || advice[len(advice)-1].ID != own.ID {
		t.Fatalf("own phrase last: %+v", advice)
	}
	other, _ := r.svc.Phrases(r.ctx, d2, "advice")
	if has(other, "advice", "", "三个月后复查糖化血红蛋白") != nil {
		t.Fatal("D2 sees D1's phrase")
	}
	// D2 may add the same text as D1: it is theirs.
	if _, err := r.svc.AddPhrase(r.ctx, d2, workbench.PhraseInput{Category: "advice", Text: "三个月后复查糖化血红蛋白"}); err != nil {
		t.Fatal(err)
	}
	err = r.svc.DisablePhrase(r.ctx, d2, own.ID)
	refused(t, "D2 disables D1's", err, ihos.ENotFound, "医嘱术语不存在")
	err = r.svc.DisablePhrase(r.ctx, d1, has(list, "usage", "po", "口服").ID)
	refused(t, "disable a default", err, ihos.EForbidden, "医院默认术语不能停用")
	if err := r.svc.DisablePhrase(r.ctx, d1, own.ID); err != nil {
		t.Fatal(err)
	}
	if advice, _ = r.svc.Phrases(r.ctx, d1, "advice"); has(advice, "advice", "", "三个月后复查糖化血红蛋白") != nil {
		t.Fatal("a disabled phrase is still listed")
	}
	if n := r.audits("order_phrases"); n != 4 {
		t.Fatalf("%d audit records of phrases, want 4", n)
	}
}

func testPatients(t *testing.T, r *rig) {
	r.t = t
	list, err := r.svc.Patients(r.ctx, d1, workbench.PatientFilter{})
	if err != nil {
		t.Fatal(err)
	}
	// P3's only visit with D1 was cancelled: not D1's patient.
	if len(list) != 2 {
		t.Fatalf("D1's patients: %+v", list)
	}
	byID := map[string]workbench.MyPatient{}
	for _, p := range list {
		byID[p.PatientID] = p
	}
	if p := byID["P1"]; p.Name != "张三" || p.VisitCount != 2 || p.LastVisitAt.IsZero() || p.Key || len(p.Groups) != 0 {
		t.Fatalf("P1: %+v", p)
	}
	if p := byID["P2"]; p.Age == nil || *p.Age != 3 || p.Gender != "女" {
		t.Fatalf("P2: %+v", p)
	}
	marks := workbench.PatientMarks{Groups: []string{"高血压", " 高血压 ", "随访"}, Tags: []string{"血压控制差"}, Key: true, Note: "  注意晨起血压  "}
	p, err := r.svc.UpdatePatient(r.ctx, d1, "P1", marks)
	if err != nil || !slices.Equal(p.Groups, []string{"随访", "高血压"}) && !slices.Equal(p.Groups, []string{"高血压", "随访"}) ||
		!slices.Equal(p.Tags, []string{"血压控制差"}) || !p.Key || p.Note != "注意晨起血压" {
		t.Fatalf("update: %v %+v", err, p)
	}
	_, err = r.svc.UpdatePatient(r.ctx, d1, "P3", marks)
	refused(t, "not D1's patient", err, ihos.ENotFound, "患者不存在或未在您处就诊")
	_, err = r.svc.UpdatePatient(r.ctx, d1, "P1", workbench.PatientMarks{Note: strings.Repeat("字", 501)})
	refused(t, "long note", err, ihos.EInvalid, "备注不能超过 500 个字")
	_, err = r.svc.UpdatePatient(r.ctx, d1, "P1", workbench.PatientMarks{Tags: []string{strings.Repeat("标", 21)}})
	refused(t, "long tag", err, ihos.EInvalid, "超过 20 个字")

	for _, c := range []struct {
		f    workbench.PatientFilter
		want []string
	}{
		{workbench.PatientFilter{Group: "高血压"}, []string{"P1"}},
		{workbench.PatientFilter{Tag: "血压控制差"}, []string{"P1"}},
		{workbench.PatientFilter{Tag: "别的"}, nil},
		{workbench.PatientFilter{Key: true}, []string{"P1"}},
		{workbench.PatientFilter{Q: "小红"}, []string{"P2"}},
		{workbench.PatientFilter{Q: "P2"}, []string{"P2"}},
		{workbench.PatientFilter{Q: "%"}, nil},
	} {
		list, err := r.svc.Patients(r.ctx, d1, c.f)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range list {
			got = append(got, p.PatientID)
		}
		if !slices.Equal(got, c.want) {
			t.Fatalf("filter %+v: %v, want %v", c.f, got, c.want)
		}
	}
	// D2's marks are their own.
	if list, _ := r.svc.Patients(r.ctx, d2, workbench.PatientFilter{Key: true}); len(list) != 0 {
		t.Fatalf("D2's key patients: %+v", list)
	}
	groups, err := r.svc.Groups(r.ctx, d1)
	if err != nil || len(groups) != 2 {
		t.Fatalf("groups: %v %+v", err, groups)
	}
	for _, g := range groups {
		if g.Count != 1 {
			t.Fatalf("group %+v", g)
		}
	}
	if g, err := r.svc.AddGroup(r.ctx, d1, "糖尿病"); err != nil || g.Name != "糖尿病" {
		t.Fatalf("add group: %v", err)
	}
	_, err = r.svc.AddGroup(r.ctx, d1, "糖尿病")
	refused(t, "same group", err, ihos.EConflict, "已有名为「糖尿病」的分组")
	_, err = r.svc.AddGroup(r.ctx, d1, "")
	refused(t, "no name", err, ihos.EInvalid, "请填写分组名称")
	if groups, _ := r.svc.Groups(r.ctx, d2); len(groups) != 0 {
		t.Fatalf("D2's groups: %+v", groups)
	}
	// Unmarking: the groups and tags go, the audit record keeps them.
	if p, err = r.svc.UpdatePatient(r.ctx, d1, "P1", workbench.PatientMarks{Key: false}); err != nil || len(p.Groups) != 0 || p.Key {
		t.Fatalf("clear: %v %+v", err, p)
	}
	entries, _, err := audit.List(r.ctx, r.db, audit.Filter{Resource: "doctor_patients", PageSize: 10})
	if err != nil || len(entries) != 2 || !strings.Contains(string(entries[0].Before), "血压控制差") {
		t.Fatalf("audit: %v %+v", err, entries)
	}
	r.svc.UpdatePatient(r.ctx, d1, "P1", marks)
}

func testRecord(t *testing.T, r *rig) {
	r.t = t
	// P1 sees D2 too; D2 writes a draft and has one approved.
	v := r.visit("P1", "D2", time.Now(), "")
	r.accept(v, true)
	var d1Visit string
	if err := r.db.QueryRowContext(r.ctx, `SELECT id FROM visits WHERE patient_id = 'P1' AND doctor_id = 'D1' AND status = 'in_progress'`).Scan(&d1Visit); err != nil {
		t.Fatal(err)
	}
	rx := func(visit, doctor, status string) string {
		id := ihos.NewID()
		r.exec(`INSERT INTO prescriptions (id, hospital_id, series_id, visit_id, patient_id, doctor_id, status, diagnosis, items, total_fen, signature, created_at, updated_at)
			VALUES (?, ?, ?, ?, 'P1', ?, ?, '原发性高血压', '[]', 2350, 'U0lH', ?, ?)`, id, hosp, id, visit, doctor, status, r.now, r.now)
		return id
	}
	draftD2, approvedD2 := rx(v.ID, "D2", prescriptions.StatusDraft), rx(v.ID, "D2", prescriptions.StatusApproved)
	own := rx(d1Visit, "D1", prescriptions.StatusDraft)
	emr := func(id string, revision int, status, complaint, diagnoses string) {
		r.exec(`INSERT INTO emr_records (id, hospital_id, visit_id, revision, patient_id, doctor_id, status, chief_complaint, present_illness, past_history,
			physical_exam, diagnoses, advice, signed_doc, signature, signed_at, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, 'P1', 'D2', ?, ?, '', '', '', ?, '低盐饮食', '{}', 'SIG', ?, 1, ?, ?)`, id, hosp, v.ID, revision, status, complaint, diagnoses, r.now, r.now, r.now)
	}
	emr("E1", 1, "signed", "头晕一周", `[{"code":"I10.x00","name":"原发性高血压"}]`)
	emr("E2", 2, "signed", "头晕一周，加重", `[{"code":"I10.x00","name":"原发性高血压"},{"code":"E11.900","name":"2型糖尿病"}]`)
	emr("E3", 3, "draft", "草稿", `[]`)

	rec, err := r.svc.Record(r.ctx, d1, "P1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Patient.Name != "张三" || !rec.Patient.Key || len(rec.Patient.Tags) != 1 {
		t.Fatalf("patient: %+v", rec.Patient)
	}
	// P1's visits at the hospital: D1's waiting and in progress, D2's ended.
	if len(rec.Visits) != 3 || rec.Visits[0].Visit.ID != v.ID || rec.Visits[0].DoctorName != "李医生" {
		t.Fatalf("visits: %+v", rec.Visits)
	}
	var rxs []string
	for _, rv := range rec.Visits {
		for _, p := range rv.Prescriptions {
			if len(p.Signature) != 0 {
				t.Fatal("the record carries the signature")
			}
			rxs = append(rxs, p.ID)
		}
	}
	if slices.Contains(rxs, draftD2) || !slices.Contains(rxs, approvedD2) || !slices.Contains(rxs, own) {
		t.Fatalf("prescriptions %v: want D2's approved %s and D1's own %s, not D2's draft %s", rxs, approvedD2, own, draftD2)
	}
	// The newest signed version, without the signature material.
	e, ok := rec.Visits[0].EMR.(map[string]any)
	if !ok || e["id"] != "E2" || e["chief_complaint"] != "头晕一周，加重" || e["revision"] != int64(2) || e["signature"] != nil || e["signed_doc"] != nil {
		t.Fatalf("signed EMR: %#v", rec.Visits[0].EMR)
	}
	if d, ok := e["diagnoses"].(json.RawMessage); !ok || !strings.Contains(string(d), "E11.900") {
		t.Fatalf("diagnoses: %#v", e["diagnoses"])
	}
	if rec.Visits[1].EMR != nil {
		t.Fatalf("a visit without a signed EMR: %#v", rec.Visits[1].EMR)
	}
	_, err = r.svc.Record(r.ctx, d1, "P3")
	refused(t, "not D1's patient", err, ihos.ENotFound, "患者不存在或未在您处就诊")
	// D2 reads P1 (their patient too) without D1's marks.
	rec, err = r.svc.Record(r.ctx, d2, "P1")
	if err != nil || rec.Patient.Key || len(rec.Patient.Tags) != 0 {
		t.Fatalf("D2's view: %v %+v", err, rec.Patient)
	}
}
