package workbench

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"ihos"
	"ihos/internal/audit"
	"ihos/prescriptions"
)

// Diagnosis is an ICD-10 code and its name.
type Diagnosis struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// PlanDrug is a drug line of a plan. Name, spec, unit, price and available
// are filled from today's catalogue when the plan is read; only the rest is
// kept.
type PlanDrug struct {
	Code      string `json:"code"`
	Quantity  int64  `json:"quantity"`
	Dosage    string `json:"dosage"`
	Frequency string `json:"frequency"`
	Days      int    `json:"days"`
	Usage     string `json:"usage"`

	Name      string `json:"name,omitempty"`
	Spec      string `json:"spec,omitempty"`
	Unit      string `json:"unit,omitempty"`
	PriceFen  int64  `json:"price_fen"`
	Available bool   `json:"available"`
}

// PlanExam is an exam or lab line of a plan, filled like PlanDrug.
type PlanExam struct {
	Kind     string `json:"kind"` // exam, lab
	Code     string `json:"code"`
	Quantity int64  `json:"quantity"`

	Name      string `json:"name,omitempty"`
	PriceFen  int64  `json:"price_fen"`
	Available bool   `json:"available"`
}

// PlanInput is what the doctor writes.
type PlanInput struct {
	Name      string      `json:"name"`
	Diagnoses []Diagnosis `json:"diagnoses"`
	Drugs     []PlanDrug  `json:"drugs"`
	Exams     []PlanExam  `json:"exams"`
	Advice    string      `json:"advice"`
}

// Plan is a treatment-plan template (治疗方案模板): what the doctor usually
// diagnoses, prescribes, orders and advises for one kind of patient, applied
// in one step in a visit. It is priced by the catalogue when used, never by
// the template.
type Plan struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Diagnoses []Diagnosis `json:"diagnoses"`
	Drugs     []PlanDrug  `json:"drugs"`
	Exams     []PlanExam  `json:"exams"`
	Advice    string      `json:"advice"`
	Enabled   bool        `json:"enabled"`
	Version   int64       `json:"version"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// Limits of a plan.
const (
	MaxPlanDiagnoses = 10
	MaxPlanExams     = 20
)

// validatePlan checks and cleans in; catalogue lines must be orderable now.
func (s *Service) validatePlan(ctx context.Context, d Doctor, in *PlanInput) error {
	f := map[string]string{}
	in.Name, in.Advice = strings.TrimSpace(in.Name), strings.TrimSpace(in.Advice)
	switch n := utf8.RuneCountInString(in.Name); {
	case n == 0:
		f["name"] = "请填写方案名称"
	case n > 50:
		f["name"] = "方案名称不能超过 50 个字"
	}
	if utf8.RuneCountInString(in.Advice) > 1000 {
		f["advice"] = "医嘱不能超过 1000 个字"
	}
	if len(in.Diagnoses) > MaxPlanDiagnoses {
		f["diagnoses"] = fmt.Sprintf("诊断不能超过 %d 个", MaxPlanDiagnoses)
	}
	for i := range in.Diagnoses {
		g := &in.Diagnoses[i]
		g.Code, g.Name = strings.TrimSpace(g.Code), strings.TrimSpace(g.Name)
		field := fmt.Sprintf("diagnoses.%d", i)
		if len(g.Code) > 20 {
			f[field+".code"] = "诊断编码不能超过 20 个字符"
		}
		if n := utf8.RuneCountInString(g.Name); n == 0 || n > 100 {
			f[field+".name"] = "请填写诊断名称（不超过 100 个字）"
		}
	}
	if len(in.Drugs) > prescriptions.MaxItems {
		f["drugs"] = fmt.Sprintf("每张处方不得超过 %d 种药品", prescriptions.MaxItems)
	}
	if len(in.Exams) > MaxPlanExams {
		f["exams"] = fmt.Sprintf("检查检验不能超过 %d 项", MaxPlanExams)
	}
	if len(in.Diagnoses) == 0 && len(in.Drugs) == 0 && len(in.Exams) == 0 && in.Advice == "" {
		f["name"] = "方案内容为空：请至少填写诊断、药品、检查检验或医嘱中的一项"
	}
	seen := map[string]bool{}
	for i := range in.Drugs {
		g := &in.Drugs[i]
		field := fmt.Sprintf("drugs.%d", i)
		g.Code = strings.TrimSpace(g.Code)
		g.Dosage, g.Frequency, g.Usage = strings.TrimSpace(g.Dosage), strings.TrimSpace(g.Frequency), strings.TrimSpace(g.Usage)
		switch {
		case g.Code == "" || len(g.Code) > 64:
			f[field+".code"] = "请选择药品"
		case seen["drug/"+g.Code]:
			f[field+".code"] = "同一药品不能重复，请合并数量"
		}
		seen["drug/"+g.Code] = true
		if g.Quantity <= 0 || g.Quantity > 9999 {
			f[field+".quantity"] = "数量应为 1 到 9999"
		}
		if g.Days < 0 || g.Days > 90 {
			f[field+".days"] = "用药天数应为 0 到 90"
		}
		for name, v := range map[string]string{"dosage": g.Dosage, "frequency": g.Frequency, "usage": g.Usage} {
			if utf8.RuneCountInString(v) > 20 {
				f[field+"."+name] = "不能超过 20 个字"
			}
		}
	}
	for i := range in.Exams {
		g := &in.Exams[i]
		field := fmt.Sprintf("exams.%d", i)
		g.Kind, g.Code = strings.TrimSpace(g.Kind), strings.TrimSpace(g.Code)
		if g.Kind != KindExam && g.Kind != KindLab {
			f[field+".kind"] = "类别应为检查（exam）或检验（lab）"
		}
		switch {
		case g.Code == "" || len(g.Code) > 64:
			f[field+".code"] = "请选择检查或检验项目"
		case seen[g.Kind+"/"+g.Code]:
			f[field+".code"] = "同一项目不能重复"
		}
		seen[g.Kind+"/"+g.Code] = true
		if g.Quantity == 0 {
			g.Quantity = 1
		}
		if g.Quantity < 0 || g.Quantity > 99 {
			f[field+".quantity"] = "数量应为 1 到 99"
		}
	}
	if len(f) > 0 {
		return ihos.Invalid(f)
	}
	for i := range in.Drugs {
		if _, err := s.orderable(ctx, d, KindDrug, in.Drugs[i].Code, fmt.Sprintf("drugs.%d.code", i)); err != nil {
			return err
		}
	}
	for i := range in.Exams {
		if _, err := s.orderable(ctx, d, in.Exams[i].Kind, in.Exams[i].Code, fmt.Sprintf("exams.%d.code", i)); err != nil {
			return err
		}
	}
	return nil
}

// stored is the part of the lines a plan keeps (the catalogue fills the rest).
func stored(in PlanInput) (diagnoses, drugs, exams string, err error) {
	type drug struct {
		Code      string `json:"code"`
		Quantity  int64  `json:"quantity"`
		Dosage    string `json:"dosage"`
		Frequency string `json:"frequency"`
		Days      int    `json:"days"`
		Usage     string `json:"usage"`
	}
	type exam struct {
		Kind     string `json:"kind"`
		Code     string `json:"code"`
		Quantity int64  `json:"quantity"`
	}
	ds, es := []drug{}, []exam{}
	for _, g := range in.Drugs {
		ds = append(ds, drug{g.Code, g.Quantity, g.Dosage, g.Frequency, g.Days, g.Usage})
	}
	for _, g := range in.Exams {
		es = append(es, exam{g.Kind, g.Code, g.Quantity})
	}
	dg := in.Diagnoses
	if dg == nil {
		dg = []Diagnosis{}
	}
	var b [3][]byte
	for i, v := range []any{dg, ds, es} {
		if b[i], err = json.Marshal(v); err != nil {
			return "", "", "", err
		}
	}
	return string(b[0]), string(b[1]), string(b[2]), nil
}

// preparePlan checks d may keep plans and in is a valid plan (cleaning
// it), and returns its diagnoses, drugs and exams as their columns hold them.
func (s *Service) preparePlan(ctx context.Context, d Doctor, in *PlanInput) (dg, dr, ex string, err error) {
	if err := check(d); err != nil {
		return "", "", "", err
	}
	if err := s.validatePlan(ctx, d, in); err != nil {
		return "", "", "", err
	}
	if dg, dr, ex, err = stored(*in); err != nil {
		return "", "", "", ihos.Internal(err)
	}
	return dg, dr, ex, nil
}

// CreatePlan saves a new plan of the doctor's.
func (s *Service) CreatePlan(ctx context.Context, d Doctor, in PlanInput) (*Plan, error) {
	dg, dr, ex, err := s.preparePlan(ctx, d, &in)
	if err != nil {
		return nil, err
	}
	id, now := ihos.NewID(), ihos.FormatTime(s.now())
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.uniquePlanName(ctx, tx, d, "", in.Name); err != nil {
			return err
		}
		if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO doctor_plans (id, hospital_id, doctor_id, name, diagnoses, drugs, exams, advice, enabled, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?)`, id, d.HospitalID, d.ID, in.Name, dg, dr, ex, in.Advice, now, now); err != nil {
			return err
		}
		after, _ := json.Marshal(in)
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "plan.create", Resource: "doctor_plans", RecordID: id,
			Summary: "医生 " + d.ID + " 新建治疗方案模板「" + in.Name + "」", After: after})
	})
	if err != nil {
		return nil, internal(err)
	}
	return s.Plan(ctx, d, id)
}

// uniquePlanName refuses a second enabled plan of the doctor with name.
func (s *Service) uniquePlanName(ctx context.Context, tx *sql.Tx, d Doctor, id, name string) error {
	var n int
	if err := s.DB.TxQueryRow(ctx, tx, `SELECT COUNT(*) FROM doctor_plans WHERE doctor_id = ? AND name = ? AND enabled = 1 AND id <> ?`,
		d.ID, name, id).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return ihos.Errorf(ihos.EConflict, "已有名为「%s」的治疗方案模板", name)
	}
	return nil
}

// UpdatePlan replaces an enabled plan of the doctor's.
func (s *Service) UpdatePlan(ctx context.Context, d Doctor, id string, in PlanInput) (*Plan, error) {
	dg, dr, ex, err := s.preparePlan(ctx, d, &in)
	if err != nil {
		return nil, err
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		before, err := s.lockPlan(ctx, tx, d, id)
		if err != nil {
			return err
		}
		if !before.Enabled {
			return ihos.Errorf(ihos.EConflict, "该治疗方案模板已停用，不能修改")
		}
		if err := s.uniquePlanName(ctx, tx, d, id, in.Name); err != nil {
			return err
		}
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE doctor_plans SET name = ?, diagnoses = ?, drugs = ?, exams = ?, advice = ?, version = version + 1, updated_at = ?
			WHERE id = ?`, in.Name, dg, dr, ex, in.Advice, ihos.FormatTime(s.now()), id); err != nil {
			return err
		}
		b, _ := json.Marshal(before)
		after, _ := json.Marshal(in)
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "plan.update", Resource: "doctor_plans", RecordID: id,
			Summary: "医生 " + d.ID + " 修改治疗方案模板「" + in.Name + "」", Before: b, After: after})
	})
	if err != nil {
		return nil, internal(err)
	}
	return s.Plan(ctx, d, id)
}

// DisablePlan stops offering a plan; it is kept (and may be listed with
// all). Disabling a disabled plan changes nothing.
func (s *Service) DisablePlan(ctx context.Context, d Doctor, id string) (*Plan, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		p, err := s.lockPlan(ctx, tx, d, id)
		if err != nil || !p.Enabled {
			return err
		}
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE doctor_plans SET enabled = 0, version = version + 1, updated_at = ? WHERE id = ?`,
			ihos.FormatTime(s.now()), id); err != nil {
			return err
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "plan.disable", Resource: "doctor_plans", RecordID: id,
			Summary: "医生 " + d.ID + " 停用治疗方案模板「" + p.Name + "」",
			Before:  json.RawMessage(`{"enabled":true}`), After: json.RawMessage(`{"enabled":false}`)})
	})
	if err != nil {
		return nil, internal(err)
	}
	return s.Plan(ctx, d, id)
}

var errPlanNotFound = ihos.Errorf(ihos.ENotFound, "治疗方案模板不存在")

const planCols = `id, name, diagnoses, drugs, exams, advice, enabled, version, created_at, updated_at`

func (s *Service) lockPlan(ctx context.Context, tx *sql.Tx, d Doctor, id string) (*Plan, error) {
	p, err := scanPlan(s.DB.TxQueryRow(ctx, tx, `SELECT `+planCols+` FROM doctor_plans WHERE id = ? AND doctor_id = ?`+s.DB.ForUpdate(), id, d.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errPlanNotFound
	}
	return p, err
}

// Plan returns one of the doctor's plans with its lines filled from today's
// catalogue; another doctor's plan is not found.
func (s *Service) Plan(ctx context.Context, d Doctor, id string) (*Plan, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	p, err := scanPlan(s.DB.QueryRowContext(ctx, `SELECT `+planCols+` FROM doctor_plans WHERE id = ? AND doctor_id = ?`, id, d.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errPlanNotFound
	}
	if err != nil {
		return nil, ihos.Internal(err)
	}
	return p, s.fill(ctx, d, p)
}

// Plans lists the doctor's enabled plans by name (all: the disabled too).
func (s *Service) Plans(ctx context.Context, d Doctor, all bool) ([]*Plan, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	q := `SELECT ` + planCols + ` FROM doctor_plans WHERE doctor_id = ?`
	if !all {
		q += ` AND enabled = 1`
	}
	rows, err := s.DB.QueryContext(ctx, q+` ORDER BY enabled DESC, name, id`, d.ID)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	out := []*Plan{}
	for rows.Next() {
		p, err := scanPlan(rows)
		if err != nil {
			rows.Close()
			return nil, ihos.Internal(err)
		}
		out = append(out, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	for _, p := range out {
		if err := s.fill(ctx, d, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fill adds today's catalogue entries to p's lines.
func (s *Service) fill(ctx context.Context, d Doctor, p *Plan) error {
	for i := range p.Drugs {
		g := &p.Drugs[i]
		c, found, err := s.catalog(ctx, d.HospitalID, KindDrug, g.Code)
		if err != nil {
			return err
		}
		if found {
			g.Name, g.Spec, g.Unit, g.PriceFen, g.Available = c.name, c.spec, c.unit, c.priceFen, c.enabled && !c.forbidden()
		}
	}
	for i := range p.Exams {
		g := &p.Exams[i]
		c, found, err := s.catalog(ctx, d.HospitalID, g.Kind, g.Code)
		if err != nil {
			return err
		}
		if found {
			g.Name, g.PriceFen, g.Available = c.name, c.priceFen, c.enabled
		}
	}
	return nil
}

type scanner interface{ Scan(...any) error }

func scanPlan(row scanner) (*Plan, error) {
	var p Plan
	var dg, dr, ex, created, updated string
	if err := row.Scan(&p.ID, &p.Name, &dg, &dr, &ex, &p.Advice, &p.Enabled, &p.Version, &created, &updated); err != nil {
		return nil, err
	}
	for _, v := range []struct {
		s string
		v any
	}{{dg, &p.Diagnoses}, {dr, &p.Drugs}, {ex, &p.Exams}} {
		if err := json.Unmarshal([]byte(v.s), v.v); err != nil {
			return nil, err
		}
	}
	p.CreatedAt, p.UpdatedAt = parseTime(created), parseTime(updated)
	return &p, nil
}
