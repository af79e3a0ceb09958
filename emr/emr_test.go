package emr_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs"
	"ihos/certs/esign"
	"ihos/clinical/clinicaltest"
	"ihos/emr"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/visits"
)

var (
	admin   = clinicaltest.Admin
	refused = clinicaltest.Refused
	errText = clinicaltest.ErrText
)

const (
	hospital = clinicaltest.Hospital
	doctor   = clinicaltest.Doctor
	otherDoc = clinicaltest.OtherDoctor
	pin      = clinicaltest.PIN
)

// fixture is the hospital (package clinicaltest) with a catalogue of labs
// and exams, and the service under test.
type fixture struct {
	*clinicaltest.Fixture
	svc *emr.Service
}

func newFixture(t testing.TB, db *sqldb.DB) *fixture {
	t.Helper()
	h := clinicaltest.New(t, db)
	f := &fixture{Fixture: h, svc: &emr.Service{DB: db, Visits: h.Visits, Signer: h.Signer, HIS: h.HIS}}
	now := ihos.FormatTime(f.Now)
	for _, c := range []struct {
		kind, code, name, specimen string
		price                      int64
		enabled                    int
	}{
		{"LAB", "XCG", "血常规", "静脉血", 2000, 1},
		{"LAB", "GLU", "空腹血糖", "静脉血", 800, 1},
		{"LAB", "HBA1C", "糖化血红蛋白", "静脉血", 6000, 1},
		{"EXAM", "ECG", "常规心电图", "", 2500, 1},
		{"EXAM", "CXR", "胸部正位片", "", 9000, 1},
		{"EXAM", "OLDX", "停用检查", "", 100, 0},
		{"DRUG", "AML5", "苯磺酸氨氯地平片", "", 2350, 1},
	} {
		f.Exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, unit, price_fen, specimen, enabled, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, '次', ?, ?, ?, ?, ?)`, ihos.NewID(), hospital, c.kind, c.code, c.name, c.price, c.specimen, c.enabled, now, now)
	}
	return f
}

// patient adds a patient linked to the HIS (linked) or not.
func (f *fixture) patient(linked bool) string {
	id := ihos.NewID()
	now := ihos.FormatTime(f.Now)
	f.Exec(`INSERT INTO patients (id, hospital_id, name, birth_year, created_at, updated_at) VALUES (?, ?, '张三', 1970, ?, ?)`, id, hospital, now, now)
	if linked {
		f.Exec(`INSERT INTO patient_links (id, hospital_id, patient_id, his_patient_id, method, confidence, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'id_number', 100, 'linked', ?, ?)`,
			ihos.NewID(), hospital, id, "HIS-"+id[:8], now, now)
	}
	return id
}

func content() emr.Content {
	return emr.Content{ChiefComplaint: "血压控制不佳 1 周", PresentIllness: "高血压 5 年，规律服用氨氯地平，近 1 周家庭自测血压 150/95mmHg 左右。",
		PastHistory: "2 型糖尿病 3 年", AllergyHistory: "否认药物过敏史", PhysicalExam: "线上问诊，未查体",
		Diagnoses: []emr.Diagnosis{{Code: "I10.x00", Name: "随便写的名字"}, {Code: "e11.900"}}, Advice: "继续氨氯地平 5mg qd，监测血压，2 周后复诊。"}
}

func TestRecordVersionsAndSignature(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := admin
		v := f.Visit(f.patient(true), true)
		if _, err := f.svc.Current(ctx, v.ID, false); ihos.ErrorCode(err) != ihos.ENotFound {
			t.Fatalf("no record yet: %v", err)
		}
		r, err := f.svc.Save(ctx, doctor, v.ID, emr.Content{ChiefComplaint: "复诊"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != emr.StatusDraft || r.Version != 1 || r.DoctorName != "王医生" || r.StatusLabel != "草稿" {
			t.Fatalf("first draft: %+v", r)
		}
		_, err = f.svc.Sign(ctx, doctor, r.ID, pin)
		refused(t, "sign incomplete", err, ihos.EInvalid, "签名前请至少选择一个诊断")
		// The current draft is rewritten in place, the names from the dictionary.
		r2, err := f.svc.Save(ctx, doctor, v.ID, content())
		if err != nil || r2.ID != r.ID || r2.Version != 1 {
			t.Fatalf("update: %+v %v", r2, err)
		}
		if len(r2.Diagnoses) != 2 || r2.Diagnoses[0].Name != "原发性高血压" || r2.Diagnoses[1].Code != "E11.900" || r2.Diagnoses[1].Name != "2型糖尿病" {
			t.Fatalf("diagnoses: %+v", r2.Diagnoses)
		}
		_, err = f.svc.Sign(ctx, doctor, r.ID, "000000")
		refused(t, "wrong pin", err, ihos.EForbidden, "签名密码错误")
		_, err = f.svc.Sign(ctx, doctor, r.ID, "")
		refused(t, "no pin", err, ihos.EInvalid, "请输入签名密码")
		signed, err := f.svc.Sign(ctx, doctor, r.ID, pin)
		if err != nil || signed.Status != emr.StatusSigned || signed.SignedAt.IsZero() || signed.DocSM3 == "" {
			t.Fatalf("sign: %+v %v", signed, err)
		}
		// The stored signature is a real PKCS#7 over the stored document.
		info, err := f.svc.Signature(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ver, err := esign.Verify(ctx, info.Document, info.Signature, []*smx509.Certificate{f.Root}); err != nil || ver.Signer != "王医生" {
			t.Fatalf("verify: %+v %v", ver, err)
		}
		if !strings.Contains(string(info.Document), `"code":"I10.x00"`) || !strings.Contains(string(info.Document), "血压控制不佳") ||
			!strings.Contains(info.SignerCert, "BEGIN CERTIFICATE") {
			t.Fatalf("signed document: %s %q", info.Document, info.SignerCert)
		}
		if sum := certs.SM3Sum(info.Document); fmt.Sprintf("%x", sum[:]) != signed.DocSM3 {
			t.Fatalf("doc sm3")
		}
		// A changed document does not verify.
		tampered := bytes.Replace(info.Document, []byte("血压控制不佳"), []byte("血压控制良好"), 1)
		if _, err := esign.Verify(ctx, tampered, info.Signature, []*smx509.Certificate{f.Root}); err == nil {
			t.Fatal("tampered document verified")
		}

		// Signed: never changed, corrected by a new version.
		_, err = f.svc.Save(ctx, doctor, v.ID, content())
		refused(t, "save over signed", err, ihos.EConflict, "病历已签名，不能直接修改")
		_, err = f.svc.Sign(ctx, doctor, r.ID, pin)
		refused(t, "sign twice", err, ihos.EConflict, "病历已签名")
		_, err = f.svc.Revise(ctx, doctor, r.ID, " ")
		refused(t, "revise without reason", err, ihos.EInvalid, "修订病历须填写修订原因")
		_, err = f.svc.Revise(ctx, otherDoc, r.ID, "补充诊断")
		refused(t, "another doctor revises", err, ihos.EForbidden, "只有该问诊的接诊医生可以修订病历")
		rev, err := f.svc.Revise(ctx, doctor, r.ID, "补充诊断")
		if err != nil || rev.Version != 2 || rev.Supersedes != r.ID || rev.Status != emr.StatusDraft || rev.ChiefComplaint != "血压控制不佳 1 周" || rev.ReviseReason != "补充诊断" {
			t.Fatalf("revise: %+v %v", rev, err)
		}
		_, err = f.svc.Revise(ctx, doctor, r.ID, "再改一次")
		refused(t, "revise an old version", err, ihos.EConflict, "已修订过")
		_, err = f.svc.Revise(ctx, doctor, rev.ID, "草稿")
		refused(t, "revise a draft", err, ihos.EConflict, "请直接修改草稿")
		c := content()
		c.Diagnoses = append(c.Diagnoses, emr.Diagnosis{Code: "E78.500"})
		if rev, err = f.svc.Save(ctx, doctor, v.ID, c); err != nil || rev.Version != 2 || len(rev.Diagnoses) != 3 {
			t.Fatalf("save revision: %+v %v", rev, err)
		}
		// The patient still sees version 1 until version 2 is signed.
		if cur, err := f.svc.Current(ctx, v.ID, true); err != nil || cur.ID != r.ID {
			t.Fatalf("signed current: %+v %v", cur, err)
		}
		if cur, err := f.svc.Current(ctx, v.ID, false); err != nil || cur.ID != rev.ID {
			t.Fatalf("current: %+v %v", cur, err)
		}
		if rev, err = f.svc.Sign(ctx, doctor, rev.ID, pin); err != nil {
			t.Fatal(err)
		}
		old, err := f.svc.Get(ctx, r.ID)
		if err != nil || old.Status != emr.StatusSigned || len(old.Diagnoses) != 2 || old.RowVersion != signed.RowVersion {
			t.Fatalf("signed version kept: %+v %v", old, err)
		}
		vs, err := f.svc.Versions(ctx, v.ID)
		if err != nil || len(vs) != 2 || vs[0].ID != r.ID || vs[1].ID != rev.ID || vs[1].Supersedes != r.ID {
			t.Fatalf("versions: %+v %v", vs, err)
		}
		evs, err := f.svc.Events(ctx, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		var path []string
		for _, e := range evs {
			path = append(path, e.Action+":"+e.To)
		}
		if want := "create:draft update:draft sign:signed revise:draft update:draft sign:signed"; strings.Join(path, " ") != want {
			t.Fatalf("events %q, want %q", path, want)
		}
		// Every change is audited with before and after.
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE resource = 'emr_records' AND after_json IS NOT NULL`).Scan(&n); err != nil || n != 6 {
			t.Fatalf("audit records: %d %v", n, err)
		}
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE resource = 'emr_records' AND action = 'emr.revise' AND record_id = ? AND before_json LIKE ?`,
			rev.ID, `%"status":"signed"%`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("revise audited with the signed version as before: %d %v", n, err)
		}
	})
}

func TestRecordRules(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := admin
		patient := f.patient(true)
		v := f.Visit(patient, true)
		_, err := f.svc.Save(ctx, otherDoc, v.ID, content())
		refused(t, "not the attending doctor", err, ihos.EForbidden, "只有该问诊的接诊医生可以书写病历")
		_, err = f.svc.Save(ctx, doctor, f.Visit(patient, false).ID, content())
		refused(t, "visit waiting", err, ihos.EConflict, "问诊尚未开始，不能书写病历")
		cancelled, err := f.Visits.Cancel(ctx, visits.System, f.Visit(patient, false).ID, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Save(ctx, doctor, cancelled.ID, content())
		refused(t, "visit cancelled", err, ihos.EConflict, "问诊已取消，不能书写病历")
		_, err = f.svc.Save(ctx, doctor, "nope", content())
		refused(t, "no visit", err, ihos.ENotFound, "")
		bad := content()
		bad.Diagnoses = []emr.Diagnosis{{Code: "I10", Name: "高血压"}}
		_, err = f.svc.Save(ctx, doctor, v.ID, bad)
		refused(t, "code outside the dictionary", err, ihos.EInvalid, "诊断编码 I10 不在 ICD-10 诊断库中")
		bad.Diagnoses = []emr.Diagnosis{{Code: "I10.x00"}, {Code: "i10.X00"}}
		_, err = f.svc.Save(ctx, doctor, v.ID, bad)
		refused(t, "duplicate diagnosis", err, ihos.EInvalid, "重复")
		bad = content()
		bad.ChiefComplaint = strings.Repeat("痛", 201)
		_, err = f.svc.Save(ctx, doctor, v.ID, bad)
		refused(t, "long chief complaint", err, ihos.EInvalid, "主诉不能超过 200 个字")

		r, err := f.svc.Save(ctx, doctor, v.ID, content())
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Sign(ctx, otherDoc, r.ID, pin)
		refused(t, "another doctor signs", err, ihos.EForbidden, "只有该问诊的接诊医生可以签署病历")
		// Ended visits are still written and signed (and corrected later).
		if _, err := f.Visits.End(ctx, visits.Party{Role: visits.RoleDoctor, ID: doctor}, v.ID, ""); err != nil {
			t.Fatal(err)
		}
		f.svc.Now = func() time.Time { return time.Now().Add(30 * 24 * time.Hour) }
		if _, err := f.svc.Sign(ctx, doctor, r.ID, pin); err != nil {
			t.Fatalf("sign after the end: %v", err)
		}
		// No signer: unavailable, nothing changes.
		r2, err := f.svc.Save(ctx, doctor, f.Visit(patient, true).ID, content())
		if err != nil {
			t.Fatal(err)
		}
		f.svc.Signer = nil
		_, err = f.svc.Sign(ctx, doctor, r2.ID, pin)
		refused(t, "no signer", err, ihos.EUnavailable, "签名服务暂不可用")
	})
}

// The history only grows: no event row is ever rewritten.
func TestEventsAppendOnly(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := admin
		v := f.Visit(f.patient(true), true)
		snapshot := func() map[string]string {
			rows, err := db.QueryContext(ctx, `SELECT id, record_id, action, from_status, to_status, actor_id, reason, at, version FROM emr_events`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := map[string]string{}
			for rows.Next() {
				var id, rec, action, from, to, actor, reason, at string
				var version int
				if err := rows.Scan(&id, &rec, &action, &from, &to, &actor, &reason, &at, &version); err != nil {
					t.Fatal(err)
				}
				out[id] = fmt.Sprint(rec, action, from, to, actor, reason, at, version)
			}
			return out
		}
		var id string
		before := snapshot()
		for _, step := range []func() error{
			func() error { r, err := f.svc.Save(ctx, doctor, v.ID, content()); id = r.ID; return err },
			func() error { _, err := f.svc.Save(ctx, doctor, v.ID, content()); return err },
			func() error { _, err := f.svc.Sign(ctx, doctor, id, pin); return err },
			func() error { _, err := f.svc.Revise(ctx, doctor, id, "更正"); return err },
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
			after := snapshot()
			for k, row := range before {
				if after[k] != row {
					t.Fatalf("event %s changed: %q → %q", k, row, after[k])
				}
			}
			if len(after) != len(before)+1 {
				t.Fatalf("events %d → %d", len(before), len(after))
			}
			before = after
		}
	})
}

func TestICD10(t *testing.T) {
	if n := emr.ICD10Size(); n < 300 {
		t.Fatalf("dictionary has %d entries", n)
	}
	for _, tc := range []struct{ in, want string }{{"高血压", "GXY"}, {"2型糖尿病", "2XTNB"}, {"慢性胃炎", "MXWY"}, {"冠状动脉粥样硬化性心脏病", "GZDMZYYHXXZB"}, {"（感冒）", "GM"}} {
		if got := emr.Initials(tc.in); got != tc.want {
			t.Errorf("Initials(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
	first := func(q string) string {
		r := emr.SearchICD10(q, 5)
		if len(r) == 0 {
			return ""
		}
		return r[0].Code + " " + r[0].Name
	}
	for q, want := range map[string]string{
		"I10": "I10.x00 原发性高血压", "e119": "E11.900 2型糖尿病", "E11.9": "E11.900 2型糖尿病", "慢性阻塞": "J44.000 慢性阻塞性肺病伴有急性下呼吸道感染",
		"gxy": "I10.x00 原发性高血压", "mxwy": "K29.500 慢性胃炎", "tnb": "E10.900 1型糖尿病", "胃食管反流": "K21.900 胃食管反流病", "失眠": "G47.000 失眠（入睡和维持睡眠障碍）", "睡眠障碍": "G47.000 失眠（入睡和维持睡眠障碍）",
	} {
		if got := first(q); got != want {
			t.Errorf("search %q: %q, want %q", q, got, want)
		}
	}
	if r := emr.SearchICD10("E11", 100); len(r) != 9 {
		t.Errorf("E11 prefix: %d", len(r))
	}
	if r := emr.SearchICD10("糖尿病", 3); len(r) != 3 {
		t.Errorf("limit: %d", len(r))
	}
	if r := emr.SearchICD10("没有这种病", 10); len(r) != 0 {
		t.Errorf("no match: %+v", r)
	}
	if d, ok := emr.LookupICD10("j45.900"); !ok || d.Name != "支气管哮喘" {
		t.Errorf("lookup: %+v %v", d, ok)
	}
}

func TestTemplates(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := admin
		in := emr.TemplateInput{Name: "高血压复诊", Content: content()}
		tp, err := f.svc.CreateTemplate(ctx, doctor, hospital, in)
		if err != nil || tp.Diagnoses[0].Name != "原发性高血压" || !tp.Enabled {
			t.Fatalf("create: %+v %v", tp, err)
		}
		_, err = f.svc.CreateTemplate(ctx, doctor, hospital, emr.TemplateInput{Name: " "})
		refused(t, "no name", err, ihos.EInvalid, "请填写模板名称")
		_, err = f.svc.CreateTemplate(ctx, doctor, hospital, emr.TemplateInput{Name: "x", Content: emr.Content{Diagnoses: []emr.Diagnosis{{Code: "XYZ"}}}})
		refused(t, "bad diagnosis", err, ihos.EInvalid, "不在 ICD-10 诊断库中")
		in.Name = "高血压复诊（稳定）"
		if tp, err = f.svc.UpdateTemplate(ctx, doctor, tp.ID, in); err != nil || tp.Name != "高血压复诊（稳定）" || tp.Version != 2 {
			t.Fatalf("update: %+v %v", tp, err)
		}
		_, err = f.svc.UpdateTemplate(ctx, otherDoc, tp.ID, in)
		refused(t, "another doctor's template", err, ihos.ENotFound, "病历模板不存在")
		if list, err := f.svc.Templates(ctx, otherDoc); err != nil || len(list) != 0 {
			t.Fatalf("another doctor's list: %+v %v", list, err)
		}
		if _, err := f.svc.DisableTemplate(ctx, doctor, tp.ID); err != nil {
			t.Fatal(err)
		}
		if list, err := f.svc.Templates(ctx, doctor); err != nil || len(list) != 0 {
			t.Fatalf("disabled listed: %+v %v", list, err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM emr_templates WHERE id = ?`, tp.ID).Scan(&n); err != nil || n != 1 {
			t.Fatalf("template kept: %d %v", n, err)
		}
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE resource = 'emr_templates' AND record_id = ?`, tp.ID).Scan(&n); err != nil || n != 3 {
			t.Fatalf("template audit: %d %v", n, err)
		}
	})
}

func TestExamOrders(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := admin
		patient := f.patient(true)
		v := f.Visit(patient, true)
		if _, err := f.svc.Save(ctx, doctor, v.ID, content()); err != nil {
			t.Fatal(err)
		}
		lab := emr.OrderInput{Kind: "lab", Items: []emr.OrderLine{{Code: "XCG", Quantity: 1}, {Code: "HBA1C", Quantity: 1}}, Note: "空腹"}
		_, err := f.svc.CreateOrder(ctx, otherDoc, v.ID, lab)
		refused(t, "not the attending doctor", err, ihos.EForbidden, "只有该问诊的接诊医生可以开具检查检验申请")
		_, err = f.svc.CreateOrder(ctx, doctor, f.Visit(patient, false).ID, lab)
		refused(t, "visit waiting", err, ihos.EConflict, "问诊尚未开始")
		_, err = f.svc.CreateOrder(ctx, doctor, v.ID, emr.OrderInput{Kind: "drug", Items: lab.Items})
		refused(t, "bad kind", err, ihos.EInvalid, "申请类型应为检查（exam）或检验（lab）")
		_, err = f.svc.CreateOrder(ctx, doctor, v.ID, emr.OrderInput{Kind: "lab", Items: []emr.OrderLine{{Code: "ECG", Quantity: 1}}})
		refused(t, "exam code on a lab order", err, ihos.EInvalid, "检验目录中没有编码为 ECG 的项目")
		_, err = f.svc.CreateOrder(ctx, doctor, v.ID, emr.OrderInput{Kind: "exam", Items: []emr.OrderLine{{Code: "OLDX", Quantity: 1}}})
		refused(t, "inactive item", err, ihos.EInvalid, "停用检查 已停用")
		_, err = f.svc.CreateOrder(ctx, doctor, v.ID, emr.OrderInput{Kind: "exam", Items: []emr.OrderLine{{Code: "ECG", Quantity: 0}}})
		refused(t, "no quantity", err, ihos.EInvalid, "数量应为 1 到 99")
		_, err = f.svc.CreateOrder(ctx, doctor, v.ID, emr.OrderInput{Kind: "exam"})
		refused(t, "no items", err, ihos.EInvalid, "请至少选择一个检查项目")

		o, err := f.svc.CreateOrder(ctx, doctor, v.ID, lab)
		if err != nil || o.Status != emr.OrderDraft || o.TotalFen != 8000 || o.Items[1].PriceFen != 6000 || o.Items[0].Price != 2000 || o.KindLabel != "检验" {
			t.Fatalf("create: %+v %v", o, err)
		}
		// Repriced at signing: the signed price is the catalogue's then.
		f.Exec(`UPDATE his_catalog SET price_fen = 2200 WHERE code = 'XCG'`)
		_, err = f.svc.SignOrder(ctx, otherDoc, o.ID, pin)
		refused(t, "another doctor signs", err, ihos.EForbidden, "接诊医生")
		o, err = f.svc.SignOrder(ctx, doctor, o.ID, pin)
		if err != nil || o.Status != emr.OrderSent || o.TotalFen != 8200 || len(o.HISOrders) != 2 || o.StatusLabel != "已发送至医院" {
			t.Fatalf("sign and send: %+v %v", o, err)
		}
		doc, sig := o.SignedDocument()
		if _, err := esign.Verify(ctx, doc, sig, []*smx509.Certificate{f.Root}); err != nil {
			t.Fatalf("order signature: %v", err)
		}
		req := f.HIS.Reqs[0]
		if req.Kind != ihos.CatalogLab || req.Key != o.ID || f.HIS.Hospitals[0] != hospital || req.DoctorCode != "J"+doctor || req.DepartmentCode != "NK" ||
			!strings.HasPrefix(req.Patient.HISID, "HIS-") || req.Items[0].Specimen != "静脉血" || !strings.Contains(req.ClinicalInfo, "原发性高血压（I10.x00）") ||
			!strings.Contains(req.ClinicalInfo, "空腹") {
			t.Fatalf("HIS order: %+v", req)
		}
		_, err = f.svc.SignOrder(ctx, doctor, o.ID, pin)
		refused(t, "sign twice", err, ihos.EConflict, "不能再签名")

		// The HIS down: signed, waiting (待发送), with the reason; sent later.
		f.HIS.Down = true
		x, err := f.svc.CreateOrder(ctx, doctor, v.ID, emr.OrderInput{Kind: "exam", Items: []emr.OrderLine{{Code: "ECG", Quantity: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		if x, err = f.svc.SignOrder(ctx, doctor, x.ID, pin); err != nil || x.Status != emr.OrderSigned || x.StatusLabel != "待发送" || !strings.Contains(x.SendError, "无法连接") {
			t.Fatalf("sign with the HIS down: %+v %v", x, err)
		}
		_, err = f.svc.Send(ctx, x.ID)
		refused(t, "retry with the HIS still down", err, ihos.EUnavailable, "无法连接")
		if p, err := f.svc.Pending(ctx, 10); err != nil || len(p) != 1 || p[0].ID != x.ID {
			t.Fatalf("pending: %+v %v", p, err)
		}
		f.HIS.Down = false
		if x, err = f.svc.Send(ctx, x.ID); err != nil || x.Status != emr.OrderSent || x.SendError != "" {
			t.Fatalf("send later: %+v %v", x, err)
		}
		if again, err := f.svc.Send(ctx, x.ID); err != nil || again.Status != emr.OrderSent || len(f.HIS.Reqs) != 2 {
			t.Fatalf("send again: %+v %v %d", again, err, len(f.HIS.Reqs))
		}
		// No HIS wired: stays 待发送.
		f.svc.HIS = nil
		y, err := f.svc.CreateOrder(ctx, doctor, v.ID, emr.OrderInput{Kind: "exam", Items: []emr.OrderLine{{Code: "CXR", Quantity: 1}}})
		if err == nil {
			y, err = f.svc.SignOrder(ctx, doctor, y.ID, pin)
		}
		if err != nil || y.Status != emr.OrderSigned {
			t.Fatalf("no HIS: %+v %v", y, err)
		}
		_, err = f.svc.Send(ctx, y.ID)
		refused(t, "send without HIS", err, ihos.EUnavailable, "待发送")
		// A patient without a HIS record: the order waits with the reason.
		f.svc.HIS = f.HIS
		v2 := f.Visit(f.patient(false), true)
		z, err := f.svc.CreateOrder(ctx, doctor, v2.ID, emr.OrderInput{Kind: "lab", Items: []emr.OrderLine{{Code: "GLU", Quantity: 1}}})
		if err == nil {
			z, err = f.svc.SignOrder(ctx, doctor, z.ID, pin)
		}
		if err != nil || z.Status != emr.OrderSigned || !strings.Contains(z.SendError, "尚未关联医院 HIS 档案") {
			t.Fatalf("unlinked patient: %+v %v", z, err)
		}
		list, err := f.svc.OrdersByVisit(ctx, v.ID)
		if err != nil || len(list) != 3 || list[0].ID != o.ID {
			t.Fatalf("by visit: %+v %v", list, err)
		}
		evs, err := f.svc.OrderEvents(ctx, x.ID)
		if err != nil || len(evs) != 3 || evs[2].To != emr.OrderSent {
			t.Fatalf("order events: %+v %v", evs, err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE resource = 'exam_orders' AND record_id = ?`, x.ID).Scan(&n); err != nil || n != 4 {
			t.Fatalf("order audit (create, sign, failed send once, sent): %d %v", n, err)
		}
	})
}

// Two saves of a visit's first draft at once make one record: the second
// rewrites the first's draft or is refused, never a second version 1.
func TestConcurrentFirstDraft(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := admin
		v := f.Visit(f.patient(true), true)
		errs := make(chan error, 4)
		for range 4 {
			go func() { _, err := f.svc.Save(ctx, doctor, v.ID, content()); errs <- err }()
		}
		ok := 0
		for range 4 {
			if err := <-errs; err == nil {
				ok++
			} else if ihos.ErrorCode(err) != ihos.EConflict {
				t.Fatalf("concurrent save: %v", err)
			}
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM emr_records WHERE visit_id = ?`, v.ID).Scan(&n); err != nil || n != 1 || ok == 0 {
			t.Fatalf("records: %d %v, %d saves succeeded", n, err, ok)
		}
	})
}
