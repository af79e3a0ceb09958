package prescriptions_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs/esign"
	"ihos/clinical/clinicaltest"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/prescriptions"
	"ihos/visits"
)

var (
	admin   = clinicaltest.Admin
	refused = clinicaltest.Refused
	errText = clinicaltest.ErrText
)

const (
	hospital   = clinicaltest.Hospital
	doctor     = clinicaltest.Doctor
	otherDoc   = clinicaltest.OtherDoctor
	pharmacist = "PH1"
	pin        = clinicaltest.PIN
)

// fixture is the hospital (package clinicaltest) with a pharmacist and a
// drug catalogue, and the service under test.
type fixture struct {
	*clinicaltest.Fixture
	svc *prescriptions.Service
}

func newFixture(t testing.TB, db *sqldb.DB) *fixture {
	t.Helper()
	h := clinicaltest.New(t, db, clinicaltest.Staff{ID: pharmacist, Kind: ihos.StaffPharmacist, Name: "赵药师"})
	f := &fixture{Fixture: h, svc: &prescriptions.Service{DB: db, Visits: h.Visits, Signer: h.Signer, HIS: h.HIS}}
	now := ihos.FormatTime(f.Now)
	for _, d := range []struct {
		code, name string
		price      int64
		flags      string
		enabled    int
	}{
		{"AML5", "苯磺酸氨氯地平片", 2350, "", 1},
		{"MET", "二甲双胍缓释片", 1800, "", 1},
		{"MOR", "吗啡缓释片", 5000, "NARC,TOX", 1},
		{"DZP", "地西泮片", 300, "PSY2", 1},
		{"TRI", "三唑仑片", 400, "PSY1", 1},
		{"OLD", "停用药", 100, "", 0},
	} {
		f.Exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, spec, unit, price_fen, flags, enabled, created_at, updated_at)
			VALUES (?, ?, 'DRUG', ?, ?, '5mg*28片', '盒', ?, ?, ?, ?, ?)`, ihos.NewID(), hospital, d.code, d.name, d.price, d.flags, d.enabled, now, now)
	}
	return f
}

// patient adds a patient born on birth (YYYY-MM-DD) as a member of an
// account, its holder their guardian or not, linked to the HIS.
func (f *fixture) patient(birth string, guardian bool) string {
	id := ihos.NewID()
	now := ihos.FormatTime(f.Now)
	g := 0
	if guardian {
		g = 1
	}
	f.Exec(`INSERT INTO patients (id, hospital_id, name, birth_year, created_at, updated_at) VALUES (?, ?, '张三', ?, ?, ?)`, id, hospital, birth[:4], now, now)
	f.Exec(`INSERT INTO patient_members (id, account_id, hospital_id, patient_id, relation, guardian, birth_date, created_at, updated_at) VALUES (?, 'ACC1', ?, ?, 'child', ?, ?, ?, ?)`,
		ihos.NewID(), hospital, id, g, birth, now, now)
	f.Exec(`INSERT INTO patient_links (id, hospital_id, patient_id, his_patient_id, method, confidence, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'id_number', 100, 'linked', ?, ?)`,
		ihos.NewID(), hospital, id, "HIS-"+id[:8], now, now)
	return id
}

func draft(visit string, items ...prescriptions.ItemInput) prescriptions.Draft {
	if len(items) == 0 {
		items = []prescriptions.ItemInput{{Code: "AML5", Quantity: 2, Dose: "5", DoseUnit: "mg", Frequency: "qd", Route: "口服", Days: 28}}
	}
	return prescriptions.Draft{VisitID: visit, Diagnosis: "原发性高血压（I10）", Items: items}
}

func TestHappyPath(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := admin
		v := f.Visit(f.patient("1980-05-01", false), true)
		p, err := f.svc.Create(ctx, doctor, draft(v.ID, prescriptions.ItemInput{Code: "AML5", Quantity: 2, PriceFen: 1}, prescriptions.ItemInput{Code: "MET", Quantity: 1}))
		if err != nil {
			t.Fatal(err)
		}
		if p.Status != prescriptions.StatusDraft || p.TotalFen != 2*2350+1800 || p.Items[0].PriceFen != 2350 || p.Revision != 1 || p.SeriesID != p.ID {
			t.Fatalf("draft: %+v", p)
		}
		if p, err = f.svc.Update(ctx, doctor, p.ID, draft(v.ID, prescriptions.ItemInput{Code: "AML5", Quantity: 3})); err != nil || p.TotalFen != 3*2350 {
			t.Fatalf("update: %+v %v", p, err)
		}
		_, err = f.svc.Sign(ctx, doctor, p.ID, "000000")
		refused(t, "wrong pin", err, ihos.EForbidden, "")
		if p, err = f.svc.Sign(ctx, doctor, p.ID, pin); err != nil {
			t.Fatal(err)
		}
		if p.Status != prescriptions.StatusSigned || p.DocSM3 == "" || len(p.Signature) == 0 {
			t.Fatalf("signed: %+v", p)
		}
		// The stored signature is a real one over the stored document.
		got, err := f.svc.Get(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ver, err := esign.Verify(ctx, []byte(got.SignedDoc), got.Signature, []*smx509.Certificate{f.Root}); err != nil || ver.Signer != "王医生" {
			t.Fatalf("verify: %+v %v", ver, err)
		}
		if !strings.Contains(got.SignedDoc, `"code":"AML5"`) || !strings.Contains(got.SignedDoc, `"total_fen":7050`) {
			t.Fatalf("signed document: %s", got.SignedDoc)
		}
		_, err = f.svc.Update(ctx, doctor, p.ID, draft(v.ID))
		refused(t, "update after signing", err, ihos.EConflict, "不能再修改")
		if p, err = f.svc.Submit(ctx, doctor, p.ID); err != nil || p.Status != prescriptions.StatusUnderReview {
			t.Fatalf("submit: %+v %v", p, err)
		}
		q, err := f.svc.Queue(ctx, pharmacist, hospital)
		if err != nil || len(q) != 1 || q[0].ID != p.ID {
			t.Fatalf("queue: %+v %v", q, err)
		}
		_, err = f.svc.Queue(ctx, doctor, hospital)
		refused(t, "a doctor's queue", err, ihos.EForbidden, "药师")
		if p, err = f.svc.Approve(ctx, pharmacist, p.ID); err != nil || p.Status != prescriptions.StatusApproved || p.ReviewerID != pharmacist {
			t.Fatalf("approve: %+v %v", p, err)
		}
		if amount, err := f.svc.Payable(ctx, p.ID); err != nil || amount != 7050 {
			t.Fatalf("payable: %d %v", amount, err)
		}
		_, err = f.svc.SendToHIS(ctx, "system", p.ID)
		refused(t, "sending unpaid", err, ihos.EConflict, "已支付")
		if p, err = f.svc.MarkPaid(ctx, "system", p.ID, "PAY1"); err != nil || p.Status != prescriptions.StatusPaid {
			t.Fatalf("paid: %+v %v", p, err)
		}
		_, err = f.svc.Payable(ctx, p.ID)
		refused(t, "paying twice", err, ihos.EConflict, "处方已支付")
		if p, err = f.svc.SendToHIS(ctx, "system", p.ID); err != nil || p.Status != prescriptions.StatusSentToHIS || len(p.HISOrders) != 1 {
			t.Fatalf("send: %+v %v", p, err)
		}
		if len(f.HIS.Reqs) != 1 || f.HIS.Reqs[0].Kind != ihos.CatalogDrug || f.HIS.Reqs[0].Items[0].Quantity != "3" ||
			f.HIS.Reqs[0].DoctorCode != "J"+doctor || f.HIS.Reqs[0].DepartmentCode != "NK" || !strings.HasPrefix(f.HIS.Reqs[0].Patient.HISID, "HIS-") {
			t.Fatalf("HIS order: %+v", f.HIS.Reqs)
		}
		h, err := f.svc.History(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		var path []string
		for _, e := range h {
			path = append(path, e.To)
		}
		if want := "draft signed under_review approved paid sent_to_his"; strings.Join(path, " ") != want {
			t.Fatalf("history %q, want %q", path, want)
		}
		// Every change is audited with before and after.
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE resource = 'prescriptions' AND record_id = ? AND after_json IS NOT NULL`, p.ID).Scan(&n); err != nil || n != 7 {
			t.Fatalf("audit records: %d %v", n, err)
		}
		var before sql.NullString
		if err := db.QueryRowContext(ctx, `SELECT before_json FROM audit_log WHERE record_id = ? AND action = 'prescription.approved'`, p.ID).Scan(&before); err != nil ||
			!strings.Contains(before.String, `"status":"under_review"`) {
			t.Fatalf("audit before: %q %v", before.String, err)
		}
	})
}

func TestCatalogueRules(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := admin
		v := f.Visit(f.patient("1980-05-01", false), true)
		for _, tc := range []struct{ code, msg string }{
			{"MOR", "麻醉药品、精神药品不能在互联网医院开具：吗啡缓释片"},
			{"TRI", "麻醉药品、精神药品不能在互联网医院开具：三唑仑片"},
			{"DZP", "麻醉药品、精神药品不能在互联网医院开具：地西泮片"},
		} {
			_, err := f.svc.Create(ctx, doctor, draft(v.ID, prescriptions.ItemInput{Code: "AML5", Quantity: 1}, prescriptions.ItemInput{Code: tc.code, Quantity: 1}))
			refused(t, tc.code, err, ihos.EForbidden, tc.msg)
		}
		_, err := f.svc.Create(ctx, doctor, draft(v.ID, prescriptions.ItemInput{Code: "NOPE", Quantity: 1}))
		refused(t, "unknown drug", err, ihos.EInvalid, "药品目录中没有编码为 NOPE 的药品")
		_, err = f.svc.Create(ctx, doctor, draft(v.ID, prescriptions.ItemInput{Code: "OLD", Quantity: 1}))
		refused(t, "inactive drug", err, ihos.EInvalid, "停用药 已停用")
		_, err = f.svc.Create(ctx, doctor, draft(v.ID, prescriptions.ItemInput{Code: "AML5", Quantity: 0}))
		refused(t, "no quantity", err, ihos.EInvalid, "数量")
		// A drug that became narcotic after the draft was written cannot be signed.
		p, err := f.svc.Create(ctx, doctor, draft(v.ID, prescriptions.ItemInput{Code: "MET", Quantity: 1, PriceFen: 1}))
		if err != nil || p.TotalFen != 1800 {
			t.Fatalf("price tampering: %+v %v", p, err)
		}
		f.Exec(`UPDATE his_catalog SET price_fen = 1900 WHERE code = 'MET'`)
		if p, err = f.svc.Sign(ctx, doctor, p.ID, pin); err != nil || p.TotalFen != 1900 {
			t.Fatalf("sign repriced: %+v %v", p, err)
		}
		p, err = f.svc.Create(ctx, doctor, draft(v.ID, prescriptions.ItemInput{Code: "MET", Quantity: 1}))
		if err != nil {
			t.Fatal(err)
		}
		f.Exec(`UPDATE his_catalog SET flags = 'PSY2' WHERE code = 'MET'`)
		_, err = f.svc.Sign(ctx, doctor, p.ID, pin)
		refused(t, "sign a now psychotropic drug", err, ihos.EForbidden, "二甲双胍缓释片")
	})
}

func TestDoctorAndVisitRules(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := admin
		patient := f.patient("1980-05-01", false)
		v := f.Visit(patient, true)
		_, err := f.svc.Create(ctx, otherDoc, draft(v.ID))
		refused(t, "not the attending doctor", err, ihos.EForbidden, "只有该问诊的接诊医生可以开具处方")
		waiting := f.Visit(patient, false)
		_, err = f.svc.Create(ctx, doctor, draft(waiting.ID))
		refused(t, "visit waiting", err, ihos.EConflict, "问诊尚未开始，不能开具处方")
		cancelled, err := f.Visits.Cancel(ctx, visits.System, f.Visit(patient, false).ID, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Create(ctx, doctor, draft(cancelled.ID))
		refused(t, "visit cancelled", err, ihos.EConflict, "问诊已取消")

		p, err := f.svc.Create(ctx, doctor, draft(v.ID))
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Sign(ctx, otherDoc, p.ID, pin)
		refused(t, "another doctor signs", err, ihos.EForbidden, "接诊医生")
		_, err = f.svc.Submit(ctx, doctor, p.ID)
		refused(t, "submit unsigned", err, ihos.EConflict, "须先由医生电子签名")
		// Just ended: still writable; a day later: not.
		if _, err := f.Visits.End(ctx, visits.Party{Role: visits.RoleDoctor, ID: doctor}, v.ID, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Sign(ctx, doctor, p.ID, pin); err != nil {
			t.Fatalf("sign just after the end: %v", err)
		}
		f.svc.Now = func() time.Time { return time.Now().Add(25 * time.Hour) }
		_, err = f.svc.Create(ctx, doctor, draft(v.ID))
		refused(t, "visit ended long ago", err, ihos.EConflict, "问诊已结束超过 24 小时")
	})
}

func TestChildNeedsGuardian(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := admin
		child := time.Now().AddDate(-3, 0, 0).Format(time.DateOnly)
		v := f.Visit(f.patient(child, false), true)
		_, err := f.svc.Create(ctx, doctor, draft(v.ID))
		refused(t, "child without guardian", err, ihos.EForbidden, "6 岁以下儿童须由监护人陪同问诊")
		if _, err := f.svc.Create(ctx, doctor, draft(f.Visit(f.patient(child, true), true).ID)); err != nil {
			t.Fatalf("child with guardian: %v", err)
		}
		// The Guardian hook decides when set.
		var asked string
		f.svc.Guardian = func(ctx context.Context, v *visits.Visit) (bool, error) { asked = v.BookingID; return false, nil }
		g := f.Visit(f.patient(child, true), true)
		_, err = f.svc.Create(ctx, doctor, draft(g.ID))
		refused(t, "hook refuses", err, ihos.EForbidden, "监护人")
		if asked != g.BookingID {
			t.Fatalf("hook asked about %q", asked)
		}
	})
}

func TestReviewAndRevision(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := admin
		v := f.Visit(f.patient("1980-05-01", false), true)
		submitted := func() *prescriptions.Prescription {
			p, err := f.svc.Create(ctx, doctor, draft(v.ID))
			if err == nil {
				_, err = f.svc.Sign(ctx, doctor, p.ID, pin)
			}
			if err == nil {
				p, err = f.svc.Submit(ctx, doctor, p.ID)
			}
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		first, second := submitted(), submitted()
		q, err := f.svc.Queue(ctx, pharmacist, hospital)
		if err != nil || len(q) != 2 || q[0].ID != first.ID || q[1].ID != second.ID {
			t.Fatalf("queue oldest first: %v %v", q, err)
		}
		_, err = f.svc.Payable(ctx, first.ID)
		refused(t, "payable before approval", err, ihos.EConflict, "处方尚未经药师审核通过，不能支付")
		_, err = f.svc.MarkPaid(ctx, "system", first.ID, "PAY1")
		refused(t, "paid before approval", err, ihos.EConflict, "处方尚未经药师审核通过，不能支付")
		_, err = f.svc.Reject(ctx, pharmacist, first.ID, "  ")
		refused(t, "reject without reason", err, ihos.EInvalid, "驳回处方须填写理由")
		_, err = f.svc.Approve(ctx, otherDoc, first.ID)
		refused(t, "a doctor approves", err, ihos.EForbidden, "药师")
		rej, err := f.svc.Reject(ctx, pharmacist, first.ID, "剂量偏大，请核对")
		if err != nil || rej.Status != prescriptions.StatusRejected || rej.ReviewReason != "剂量偏大，请核对" {
			t.Fatalf("reject: %+v %v", rej, err)
		}
		_, err = f.svc.Payable(ctx, first.ID)
		refused(t, "payable rejected", err, ihos.EConflict, "不能支付")
		_, err = f.svc.Revise(ctx, doctor, second.ID, draft(v.ID))
		refused(t, "revise under review", err, ihos.EConflict, "只有被驳回的处方")
		_, err = f.svc.Revise(ctx, otherDoc, first.ID, draft(v.ID))
		refused(t, "another doctor revises", err, ihos.EForbidden, "接诊医生")
		rev, err := f.svc.Revise(ctx, doctor, first.ID, draft("ignored", prescriptions.ItemInput{Code: "AML5", Quantity: 1}))
		if err != nil || rev.Status != prescriptions.StatusDraft || rev.Revision != 2 || rev.SeriesID != first.ID || rev.PreviousID != first.ID || rev.VisitID != v.ID {
			t.Fatalf("revision: %+v %v", rev, err)
		}
		_, err = f.svc.Revise(ctx, doctor, first.ID, draft(v.ID))
		refused(t, "revise twice", err, ihos.EConflict, "已修改过")
		// The rejected version is kept as it was, with its reason.
		old, err := f.svc.Get(ctx, first.ID)
		if err != nil || old.Status != prescriptions.StatusRejected || old.ReviewReason != "剂量偏大，请核对" || old.Signature == nil {
			t.Fatalf("rejected kept: %+v %v", old, err)
		}
		all, err := f.svc.ByVisit(ctx, v.ID)
		if err != nil || len(all) != 3 {
			t.Fatalf("by visit: %d %v", len(all), err)
		}
		h, err := f.svc.History(ctx, first.ID)
		if err != nil || len(h) != 4 || h[3].To != prescriptions.StatusRejected || h[3].Reason != "剂量偏大，请核对" || h[3].ActorID != pharmacist {
			t.Fatalf("history: %+v %v", h, err)
		}
	})
}

// The history only grows: every change adds rows and none is rewritten.
func TestHistoryAppendOnly(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		f := newFixture(t, db)
		ctx := admin
		v := f.Visit(f.patient("1980-05-01", false), true)
		p, err := f.svc.Create(ctx, doctor, draft(v.ID))
		if err != nil {
			t.Fatal(err)
		}
		snapshot := func() map[string]string {
			rows, err := db.QueryContext(ctx, `SELECT id, from_status, to_status, actor_id, reason, at, version FROM prescription_events`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := map[string]string{}
			for rows.Next() {
				var id, from, to, actor, reason, at string
				var version int
				if err := rows.Scan(&id, &from, &to, &actor, &reason, &at, &version); err != nil {
					t.Fatal(err)
				}
				out[id] = fmt.Sprint(from, to, actor, reason, at, version)
			}
			return out
		}
		before := snapshot()
		for _, step := range []func() error{
			func() error { _, err := f.svc.Update(ctx, doctor, p.ID, draft(v.ID)); return err },
			func() error { _, err := f.svc.Sign(ctx, doctor, p.ID, pin); return err },
			func() error { _, err := f.svc.Submit(ctx, doctor, p.ID); return err },
			func() error { _, err := f.svc.Reject(ctx, pharmacist, p.ID, "诊断不符"); return err },
		} {
			if err := step(); err != nil {
				t.Fatal(err)
			}
			after := snapshot()
			for id, row := range before {
				if after[id] != row {
					t.Fatalf("history row %s changed: %q → %q", id, row, after[id])
				}
			}
			if len(after) < len(before) {
				t.Fatalf("history shrank")
			}
			before = after
		}
		if len(before) != 4 { // draft, signed, under_review, rejected (an update is no status change)
			t.Fatalf("history rows: %d", len(before))
		}
	})
}
