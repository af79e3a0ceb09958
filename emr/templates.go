package emr

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"ihos"
	"ihos/clinical"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
)

// Template is a doctor's own record template (个人病历模板): the content a
// doctor starts a record from for a common condition. Templates live on the
// cloud only (emr_templates is not replicated, see Entities): they are the
// doctor app's writing aid, never part of a record; the record a template
// filled in is what replicates and is signed. A template is never deleted,
// only disabled, and every change is audited like any clinical data.
type Template struct {
	ID       string `json:"id"`
	DoctorID string `json:"doctor_id"`
	Name     string `json:"name"`
	Content
	Enabled   bool      `json:"enabled"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TemplateInput is a template as the doctor writes it.
type TemplateInput struct {
	Name string `json:"name"`
	Content
}

// MaxTemplates is the most enabled templates a doctor keeps.
const MaxTemplates = 200

var errNoTemplate = ihos.Errorf(ihos.ENotFound, "病历模板不存在")

func (in *TemplateInput) clean() error {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		return ihos.Invalid(map[string]string{"name": "请填写模板名称"})
	}
	if utf8.RuneCountInString(in.Name) > 50 {
		return ihos.Invalid(map[string]string{"name": "模板名称不能超过 50 个字"})
	}
	return in.Content.clean()
}

// Templates lists the doctor's enabled templates by name.
func (s *Service) Templates(ctx context.Context, doctorID string) ([]*Template, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+tplCols+` FROM emr_templates WHERE doctor_id = ? AND enabled = 1 AND deleted_at IS NULL ORDER BY name, id`, doctorID)
	return sqldb.Collect(rows, err, scanTemplate)
}

// CreateTemplate adds a template for doctor by (a doctor of hospital).
func (s *Service) CreateTemplate(ctx context.Context, by, hospital string, in TemplateInput) (*Template, error) {
	if by == "" {
		return nil, ihos.Errorf(ihos.EForbidden, "只有医生可以维护病历模板")
	}
	if err := in.clean(); err != nil {
		return nil, err
	}
	var n int
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM emr_templates WHERE doctor_id = ? AND enabled = 1 AND deleted_at IS NULL`, by).Scan(&n); err != nil {
		return nil, ihos.Internal(err)
	}
	if n >= MaxTemplates {
		return nil, ihos.Errorf(ihos.EConflict, "病历模板最多 %d 个，请先停用不用的模板", MaxTemplates)
	}
	now := s.now()
	t := &Template{ID: ihos.NewID(), DoctorID: by, Name: in.Name, Content: in.Content, Enabled: true, Version: 1, CreatedAt: now, UpdatedAt: now}
	diag, err := json.Marshal(t.Diagnoses)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO emr_templates (id, hospital_id, doctor_id, name, chief_complaint, present_illness, past_history, allergy_history,
			physical_exam, diagnoses, advice, enabled, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?)`,
			t.ID, hospital, by, t.Name, t.ChiefComplaint, t.PresentIllness, t.PastHistory, t.AllergyHistory, t.PhysicalExam, string(diag), t.Advice,
			ihos.FormatTime(now), ihos.FormatTime(now)); err != nil {
			return err
		}
		return s.auditTemplate(ctx, tx, "create", nil, t, fmt.Sprintf("医生 %s 新建病历模板“%s”", by, t.Name))
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// UpdateTemplate rewrites one of the doctor's templates.
func (s *Service) UpdateTemplate(ctx context.Context, by, id string, in TemplateInput) (*Template, error) {
	if err := in.clean(); err != nil {
		return nil, err
	}
	return s.changeTemplate(ctx, by, id, "update", func(t *Template) string {
		t.Name, t.Content = in.Name, in.Content
		return fmt.Sprintf("医生 %s 修改病历模板“%s”", by, t.Name)
	})
}

// DisableTemplate retires one of the doctor's templates (kept, no longer
// listed).
func (s *Service) DisableTemplate(ctx context.Context, by, id string) (*Template, error) {
	return s.changeTemplate(ctx, by, id, "disable", func(t *Template) string {
		t.Enabled = false
		return fmt.Sprintf("医生 %s 停用病历模板“%s”", by, t.Name)
	})
}

func (s *Service) changeTemplate(ctx context.Context, by, id, action string, change func(*Template) string) (*Template, error) {
	lock := func(tx *sql.Tx) (*Template, error) {
		t, err := clinical.Lock(ctx, s.DB, tx, "emr_templates", tplCols, id, scanTemplate, errNoTemplate)
		if err == nil && (t.DoctorID != by || !t.Enabled) {
			return nil, errNoTemplate // another doctor's template is not theirs to see
		}
		return t, err
	}
	return clinical.Transition(ctx, s.DB, lock, func(t *Template) (string, error) { return change(t), nil }, func(tx *sql.Tx, before, after *Template, summary string) error {
		after.Version++
		after.UpdatedAt = s.now()
		diag, err := json.Marshal(after.Diagnoses)
		if err != nil {
			return err
		}
		enabled := 0
		if after.Enabled {
			enabled = 1
		}
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE emr_templates SET name = ?, chief_complaint = ?, present_illness = ?, past_history = ?, allergy_history = ?,
			physical_exam = ?, diagnoses = ?, advice = ?, enabled = ?, version = ?, updated_at = ? WHERE id = ?`,
			after.Name, after.ChiefComplaint, after.PresentIllness, after.PastHistory, after.AllergyHistory, after.PhysicalExam, string(diag), after.Advice,
			enabled, after.Version, ihos.FormatTime(after.UpdatedAt), id); err != nil {
			return err
		}
		return s.auditTemplate(ctx, tx, action, before, after, summary)
	})
}

func (s *Service) auditTemplate(ctx context.Context, tx *sql.Tx, action string, before, after *Template, summary string) error {
	return clinical.Audit(ctx, s.DB, tx, audit.Entry{Action: "emr_template." + action, Resource: "emr_templates", RecordID: after.ID, Summary: summary},
		clinical.View(before, func(t *Template) any { return t }), after)
}

const tplCols = `id, doctor_id, name, chief_complaint, present_illness, past_history, allergy_history, physical_exam, diagnoses, advice, enabled,
	version, created_at, updated_at`

func scanTemplate(row sqldb.Scanner) (*Template, error) {
	var t Template
	var diag, created, updated string
	if err := row.Scan(&t.ID, &t.DoctorID, &t.Name, &t.ChiefComplaint, &t.PresentIllness, &t.PastHistory, &t.AllergyHistory, &t.PhysicalExam,
		&diag, &t.Advice, &t.Enabled, &t.Version, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(diag), &t.Diagnoses); err != nil {
		return nil, err
	}
	if t.Diagnoses == nil {
		t.Diagnoses = []Diagnosis{}
	}
	t.CreatedAt, t.UpdatedAt = sqldb.ParseTime(created), sqldb.ParseTime(updated)
	return &t, nil
}
