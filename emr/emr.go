// Package emr is the online outpatient record (门诊电子病历) and the exam and
// lab orders (检查检验申请) of an online follow-up visit (issue 8), in the
// cloud, with the rules of DESIGN.md §7 enforced here whatever the caller:
//
//   - a record belongs to a visit; only the visit's attending doctor writes
//     and signs it, while the visit is in progress or after it ended (a
//     correction must stay possible, as a new version, however late);
//   - its diagnoses are codes of the embedded ICD-10 table (icd10.tsv);
//   - draft → signed (the doctor's e-signature: a detached PKCS#7 over the
//     canonical JSON, esign.Canonical); a signed version never changes: a
//     correction is a new draft version (Revise) that supersedes it, and the
//     signed one stays as it was; nothing is ever deleted;
//   - every change is an emr_events row (append only) and an audit record
//     with the before and after;
//   - the patient (and their family on the account) reads signed versions
//     only; the HTTP layer (cloud/emr.go) decides who is asking.
//
// Records and their events are cloud-owned and replicate to the appliance
// (Entities). The doctor's key lives on the appliance, the HIS behind it:
// both are reached through package clinical's Signer and HIS, which serve
// prescriptions too, as do its signing, history and audit mechanics.
package emr

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"ihos"
	"ihos/certs"
	"ihos/certs/cms"
	"ihos/clinical"
	"ihos/internal/sqldb"
	"ihos/sync"
	"ihos/visits"
)

// Record statuses.
const (
	StatusDraft  = clinical.StatusDraft
	StatusSigned = clinical.StatusSigned
)

// StatusLabels are the record statuses as people see them.
var StatusLabels = map[string]string{StatusDraft: clinical.LabelDraft, StatusSigned: clinical.LabelSigned}

// MaxDiagnoses is the most diagnoses one record holds.
const MaxDiagnoses = 10

// Entities declares the records and orders the appliance receives
// (cloud-owned). emr_templates are not among them: a template is the
// doctor's personal writing aid in the doctor app on the cloud; the hospital
// side never writes records, and what a template contributed is in the
// record that replicates.
func Entities() []sync.Entity {
	return []sync.Entity{
		{Name: "emr_records", Table: "emr_records", Owner: sync.Cloud},
		{Name: "emr_events", Table: "emr_events", Owner: sync.Cloud},
		{Name: "exam_orders", Table: "exam_orders", Owner: sync.Cloud},
		{Name: "exam_order_events", Table: "exam_order_events", Owner: sync.Cloud},
	}
}

// Service is the EMR and exam-order service; cloud/emr.go puts HTTP in
// front of it.
type Service struct {
	DB *sqldb.DB
	// Visits reads the visit a record or an order belongs to.
	Visits *visits.Service
	// Signer signs with the doctor's e-signature; nil: signing answers
	// unavailable.
	Signer clinical.Signer
	// HIS receives signed exam and lab orders; nil: they wait (待发送) until
	// Send is called with one wired.
	HIS clinical.HIS
	// Capture records replicated rows for the appliance inside a transaction
	// (sync.Replica.Capture with hospital ""); nil without sync.
	Capture func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error
	// AfterCommit runs after a commit that captured something (the link's Kick).
	AfterCommit func()
	// Now is the clock (tests move it); time.Now when nil.
	Now func() time.Time
}

// Content is what the doctor writes (门诊病历的内容, 病历书写基本规范 第十九条).
type Content struct {
	ChiefComplaint string      `json:"chief_complaint"` // 主诉
	PresentIllness string      `json:"present_illness"` // 现病史
	PastHistory    string      `json:"past_history"`    // 既往史
	AllergyHistory string      `json:"allergy_history"` // 过敏史
	PhysicalExam   string      `json:"physical_exam"`   // 体格检查
	Diagnoses      []Diagnosis `json:"diagnoses"`       // 诊断
	Advice         string      `json:"advice"`          // 处理意见
}

// Record is one version of a visit's record.
type Record struct {
	ID          string `json:"id"`
	HospitalID  string `json:"hospital_id"`
	VisitID     string `json:"visit_id"`
	Version     int    `json:"version"` // the record's version: 1, 2, … within the visit
	Status      string `json:"status"`
	StatusLabel string `json:"status_label"`
	Content
	PatientID    string    `json:"patient_id"`
	DoctorID     string    `json:"doctor_id"`
	DoctorName   string    `json:"doctor_name"`
	DepartmentID string    `json:"department_id"`
	Supersedes   string    `json:"supersedes,omitempty"` // the signed version this one corrects
	ReviseReason string    `json:"revise_reason,omitempty"`
	DocSM3       string    `json:"doc_sm3,omitempty"`
	SignedAt     time.Time `json:"signed_at,omitzero"`
	RowVersion   int64     `json:"row_version"` // changes with every write (the sync version)
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`

	signedDoc string
	signature []byte
}

// Event is one change of a record, as emr_events keeps it.
type Event struct {
	RecordID string    `json:"record_id"`
	Action   string    `json:"action"` // create, update, sign, revise
	From     string    `json:"from"`
	To       string    `json:"to"`
	ActorID  string    `json:"actor_id"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

// SignatureInfo is a signed record's document and signature, for anyone who
// wants to verify it (the patient, a regulator).
type SignatureInfo struct {
	Document   []byte `json:"document"`    // the canonical JSON that was signed (base64 in JSON)
	Signature  []byte `json:"signature"`   // detached PKCS#7 (base64 in JSON)
	SignerCert string `json:"signer_cert"` // PEM of the signer's certificate carried in the PKCS#7; "" if it carries none
	DocSM3     string `json:"doc_sm3"`
}

var errNotFound = ihos.Errorf(ihos.ENotFound, "病历不存在")

// journal keeps the history and audit of records; orders keeps the exam
// orders'.
func (s *Service) journal() clinical.Journal {
	return clinical.Journal{DB: s.DB, Capture: s.Capture, Table: "emr_records", Events: "emr_events", Key: "record_id", Action: "emr"}
}

func (s *Service) orders() clinical.Journal {
	return clinical.Journal{DB: s.DB, Capture: s.Capture, Table: "exam_orders", Events: "exam_order_events", Key: "order_id", Action: "exam_order"}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (s *Service) committed() {
	if s.Capture != nil && s.AfterCommit != nil {
		s.AfterCommit()
	}
}

func (s *Service) visit(ctx context.Context, id string) (*visits.Visit, error) {
	return clinical.Visit(ctx, s.Visits, id)
}

// writableVisit reads visit id and checks that by may write what for it
// (writable).
func (s *Service) writableVisit(ctx context.Context, by, what, id string) (*visits.Visit, error) {
	v, err := s.visit(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := writable(by, what, v); err != nil {
		return nil, err
	}
	return v, nil
}

// writable checks that by may write for v (what is a record or an order):
// the attending doctor, the visit in progress or ended.
func writable(by, what string, v *visits.Visit) error {
	if by == "" || by != v.DoctorID {
		return ihos.Errorf(ihos.EForbidden, "只有该问诊的接诊医生可以%s", what)
	}
	switch v.Status {
	case visits.StatusInProgress, visits.StatusEnded:
		return nil
	case visits.StatusWaiting:
		return ihos.Errorf(ihos.EConflict, "问诊尚未开始，不能%s", what)
	}
	return ihos.Errorf(ihos.EConflict, "问诊已取消，不能%s", what)
}

// text limits of the record's fields, in characters.
var limits = []struct {
	field string
	max   int
	label string
}{
	{"chief_complaint", 200, "主诉"}, {"present_illness", 5000, "现病史"}, {"past_history", 2000, "既往史"},
	{"allergy_history", 500, "过敏史"}, {"physical_exam", 2000, "体格检查"}, {"advice", 2000, "处理意见"},
}

func (c *Content) fields() []*string {
	return []*string{&c.ChiefComplaint, &c.PresentIllness, &c.PastHistory, &c.AllergyHistory, &c.PhysicalExam, &c.Advice}
}

// clean trims c, checks the lengths and the diagnoses (from the dictionary,
// with its names).
func (c *Content) clean() error {
	f := map[string]string{}
	for i, p := range c.fields() {
		*p = strings.TrimSpace(*p)
		if n := utf8.RuneCountInString(*p); n > limits[i].max {
			f[limits[i].field] = fmt.Sprintf("%s不能超过 %d 个字", limits[i].label, limits[i].max)
		}
	}
	if len(f) > 0 {
		return ihos.Invalid(f)
	}
	d, err := checkDiagnoses(c.Diagnoses)
	if err != nil {
		return err
	}
	c.Diagnoses = d
	return nil
}

// complete checks that c holds what a signed outpatient record must: chief
// complaint, present illness, at least one diagnosis and the handling.
func (c *Content) complete() error {
	f := map[string]string{}
	if c.ChiefComplaint == "" {
		f["chief_complaint"] = "签名前请填写主诉"
	}
	if c.PresentIllness == "" {
		f["present_illness"] = "签名前请填写现病史"
	}
	if len(c.Diagnoses) == 0 {
		f["diagnoses"] = "签名前请至少选择一个诊断"
	}
	if c.Advice == "" {
		f["advice"] = "签名前请填写处理意见"
	}
	if len(f) > 0 {
		return &ihos.Error{Code: ihos.EInvalid, Message: "病历内容不完整，不能签名", Fields: f}
	}
	return nil
}

// Save writes the visit's record: the first draft, or the current draft
// rewritten. A signed record is not changed: it must be revised first.
func (s *Service) Save(ctx context.Context, by, visitID string, c Content) (*Record, error) {
	if err := c.clean(); err != nil {
		return nil, err
	}
	v, err := s.writableVisit(ctx, by, "书写病历", visitID)
	if err != nil {
		return nil, err
	}
	var out *Record
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		cur, err := scan(s.DB.TxQueryRow(ctx, tx, `SELECT `+cols+` FROM emr_records WHERE visit_id = ? AND deleted_at IS NULL ORDER BY revision DESC LIMIT 1`+s.DB.ForUpdate(), v.ID))
		if errors.Is(err, sql.ErrNoRows) {
			now := s.now()
			r := &Record{ID: ihos.NewID(), HospitalID: v.HospitalID, VisitID: v.ID, Version: 1, Status: StatusDraft, Content: c,
				PatientID: v.PatientID, DoctorID: v.DoctorID, DoctorName: s.staffName(ctx, v.DoctorID), DepartmentID: v.DepartmentID,
				RowVersion: 1, CreatedAt: now, UpdatedAt: now}
			if err := s.insert(ctx, tx, r); err != nil {
				return err
			}
			out = r
			return s.record(ctx, tx, nil, r, by, "create", "", fmt.Sprintf("医生 %s 为问诊 %s 书写病历草稿", by, v.ID))
		}
		if err != nil {
			return err
		}
		if cur.Status != StatusDraft {
			return ihos.Errorf(ihos.EConflict, "病历已签名，不能直接修改；如需更正，请先修订病历（生成新版本）")
		}
		after := *cur
		after.Content = c
		if err := s.update(ctx, tx, &after); err != nil {
			return err
		}
		out = &after
		return s.record(ctx, tx, cur, &after, by, "update", "", fmt.Sprintf("医生 %s 修改病历草稿（第 %d 版）", by, after.Version))
	})
	if sqldb.IsUniqueViolation(err) {
		return nil, ihos.Errorf(ihos.EConflict, "病历已由另一操作创建，请刷新后再保存")
	}
	if err != nil {
		return nil, err
	}
	s.committed()
	return label(out), nil
}

func (s *Service) staffName(ctx context.Context, id string) string {
	var name string
	_ = s.DB.QueryRowContext(ctx, `SELECT name FROM staff WHERE id = ?`, id).Scan(&name) // display only: a missing row leaves it empty
	return name
}

// signedDocument is what the doctor signs: the record's content and whose
// it is, without its workflow fields.
type signedDocument struct {
	Type         string      `json:"type"`
	ID           string      `json:"id"`
	Version      int         `json:"version"`
	Supersedes   string      `json:"supersedes,omitempty"`
	HospitalID   string      `json:"hospital_id"`
	VisitID      string      `json:"visit_id"`
	PatientID    string      `json:"patient_id"`
	DoctorID     string      `json:"doctor_id"`
	DoctorName   string      `json:"doctor_name"`
	DepartmentID string      `json:"department_id"`
	Chief        string      `json:"chief_complaint"`
	Present      string      `json:"present_illness"`
	Past         string      `json:"past_history"`
	Allergy      string      `json:"allergy_history"`
	Exam         string      `json:"physical_exam"`
	Diagnoses    []Diagnosis `json:"diagnoses"`
	Advice       string      `json:"advice"`
	WrittenAt    string      `json:"written_at"`
}

// Document returns the canonical JSON of r that its doctor signs at at.
func Document(r *Record, at time.Time) ([]byte, error) {
	return clinical.Document(signedDocument{Type: "emr", ID: r.ID, Version: r.Version, Supersedes: r.Supersedes, HospitalID: r.HospitalID,
		VisitID: r.VisitID, PatientID: r.PatientID, DoctorID: r.DoctorID, DoctorName: r.DoctorName, DepartmentID: r.DepartmentID,
		Chief: r.ChiefComplaint, Present: r.PresentIllness, Past: r.PastHistory, Allergy: r.AllergyHistory, Exam: r.PhysicalExam,
		Diagnoses: r.Diagnoses, Advice: r.Advice, WrittenAt: ihos.FormatTime(at)})
}

// Sign signs a draft with its doctor's e-signature (pin unlocks the key).
// From then on the version never changes.
func (s *Service) Sign(ctx context.Context, by, id, pin string) (*Record, error) {
	if err := clinical.CanSign(s.Signer, pin); err != nil {
		return nil, err
	}
	r, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.writableVisit(ctx, by, "签署病历", r.VisitID); err != nil {
		return nil, err
	}
	if r.Status != StatusDraft {
		return nil, ihos.Errorf(ihos.EConflict, "病历已签名，不能再次签名")
	}
	if err := r.complete(); err != nil {
		return nil, err
	}
	if _, err := checkDiagnoses(r.Diagnoses); err != nil {
		return nil, err
	}
	sg, err := clinical.Sign(ctx, s.Signer, by, pin, s.now(), func(at time.Time) ([]byte, error) { return Document(r, at) })
	if err != nil {
		return nil, err
	}
	lock := func(tx *sql.Tx) (*Record, error) {
		return clinical.Lock(ctx, s.DB, tx, "emr_records", cols, id, scan, errNotFound)
	}
	out, err := clinical.Transition(ctx, s.DB, lock, func(cur *Record) (string, error) {
		if cur.Status != StatusDraft || cur.RowVersion != r.RowVersion {
			return "", ihos.Errorf(ihos.EConflict, "病历在签名期间已被修改，请重新签名")
		}
		cur.Status, cur.signedDoc, cur.DocSM3, cur.signature, cur.SignedAt = StatusSigned, sg.Doc, sg.SM3, sg.Sig, sg.At
		return fmt.Sprintf("医生 %s 电子签名病历第 %d 版（文档 SM3 %s）", by, cur.Version, cur.DocSM3), nil
	}, func(tx *sql.Tx, before, after *Record, summary string) error {
		if err := s.update(ctx, tx, after); err != nil {
			return err
		}
		return s.record(ctx, tx, before, after, by, "sign", "", summary)
	})
	if err != nil {
		return nil, err
	}
	s.committed()
	return label(out), nil
}

// Revise starts the correction of a signed record: a new draft version, a
// copy of it, that supersedes it. The signed version stays as it was. Only
// the latest version is revised, once.
func (s *Service) Revise(ctx context.Context, by, id, reason string) (*Record, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, ihos.Invalid(map[string]string{"reason": "修订病历须填写修订原因"})
	}
	if utf8.RuneCountInString(reason) > 200 {
		return nil, ihos.Invalid(map[string]string{"reason": "修订原因不能超过 200 个字"})
	}
	prev, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.writableVisit(ctx, by, "修订病历", prev.VisitID); err != nil {
		return nil, err
	}
	if prev.Status != StatusSigned {
		return nil, ihos.Errorf(ihos.EConflict, "病历尚未签名，请直接修改草稿")
	}
	var out *Record
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var latest int
		if err := s.DB.TxQueryRow(ctx, tx, `SELECT MAX(revision) FROM emr_records WHERE visit_id = ? AND deleted_at IS NULL`, prev.VisitID).Scan(&latest); err != nil {
			return err
		}
		if latest != prev.Version {
			return ihos.Errorf(ihos.EConflict, "该版本病历已修订过，请在最新版本上操作")
		}
		now := s.now()
		r := &Record{ID: ihos.NewID(), HospitalID: prev.HospitalID, VisitID: prev.VisitID, Version: prev.Version + 1, Status: StatusDraft,
			Content: prev.Content, PatientID: prev.PatientID, DoctorID: prev.DoctorID, DoctorName: prev.DoctorName, DepartmentID: prev.DepartmentID,
			Supersedes: prev.ID, ReviseReason: reason, RowVersion: 1, CreatedAt: now, UpdatedAt: now}
		if r.DoctorName == "" {
			r.DoctorName = s.staffName(ctx, r.DoctorID)
		}
		if err := s.insert(ctx, tx, r); err != nil {
			return err
		}
		out = r
		// The audit record shows the signed version as the before: what is
		// being corrected.
		return s.record(ctx, tx, prev, r, by, "revise", reason, fmt.Sprintf("医生 %s 修订已签名病历第 %d 版，生成第 %d 版草稿：%s", by, prev.Version, r.Version, reason))
	})
	if sqldb.IsUniqueViolation(err) {
		return nil, ihos.Errorf(ihos.EConflict, "该版本病历已修订过，请在最新版本上操作")
	}
	if err != nil {
		return nil, err
	}
	s.committed()
	return label(out), nil
}

func (s *Service) insert(ctx context.Context, tx *sql.Tx, r *Record) error {
	diag, err := json.Marshal(r.Diagnoses)
	if err != nil {
		return err
	}
	_, err = s.DB.TxExec(ctx, tx, `INSERT INTO emr_records (id, hospital_id, visit_id, revision, supersedes, patient_id, doctor_id, doctor_name, department_id,
		status, chief_complaint, present_illness, past_history, allergy_history, physical_exam, diagnoses, advice, revise_reason, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.HospitalID, r.VisitID, r.Version, sqldb.NullString(r.Supersedes), r.PatientID, r.DoctorID, ihos.Truncate(r.DoctorName, 100), r.DepartmentID,
		r.Status, r.ChiefComplaint, r.PresentIllness, r.PastHistory, r.AllergyHistory, r.PhysicalExam, string(diag), r.Advice, r.ReviseReason,
		r.RowVersion, ihos.FormatTime(r.CreatedAt), ihos.FormatTime(r.UpdatedAt))
	return err
}

// update writes r's content and signature, with the next row version.
func (s *Service) update(ctx context.Context, tx *sql.Tx, r *Record) error {
	r.RowVersion++
	r.UpdatedAt = s.now()
	diag, err := json.Marshal(r.Diagnoses)
	if err != nil {
		return err
	}
	_, err = s.DB.TxExec(ctx, tx, `UPDATE emr_records SET status = ?, chief_complaint = ?, present_illness = ?, past_history = ?, allergy_history = ?,
		physical_exam = ?, diagnoses = ?, advice = ?, signed_doc = ?, doc_sm3 = ?, signature = ?, signed_at = ?, version = ?, updated_at = ? WHERE id = ?`,
		r.Status, r.ChiefComplaint, r.PresentIllness, r.PastHistory, r.AllergyHistory, r.PhysicalExam, string(diag), r.Advice,
		sqldb.NullString(r.signedDoc), r.DocSM3, clinical.SignatureColumn(r.signature), sqldb.NullTime(r.SignedAt), r.RowVersion, ihos.FormatTime(r.UpdatedAt), r.ID)
	return err
}

// record appends the event row and the audit record of a change, and
// captures the rows for the appliance. A revision's event starts from
// nothing: the new version is a new draft.
func (s *Service) record(ctx context.Context, tx *sql.Tx, before, after *Record, by, action, reason, summary string) error {
	c := clinical.Change{HospitalID: after.HospitalID, ID: after.ID, Action: action, Event: true, To: after.Status, Actor: by, At: after.UpdatedAt,
		Summary: summary, Before: clinical.View(before, auditView), After: auditView(after),
		Columns: map[string]string{"visit_id": after.VisitID, "action": action, "reason": reason}}
	if before != nil && action != "revise" {
		c.From = before.Status
	}
	return s.journal().Record(ctx, tx, c)
}

// auditView is a record in the audit log: labelled; the signed document and
// the signature are not exported, the digest stands for them.
func auditView(r *Record) any { return label(r) }

// Get returns one version.
func (s *Service) Get(ctx context.Context, id string) (*Record, error) {
	r, err := clinical.Get(ctx, s.DB, "emr_records", cols, id, scan, errNotFound)
	if err != nil {
		return nil, err
	}
	return label(r), nil
}

// Current returns the visit's latest version; signedOnly: the latest signed
// one (what the patient sees while a correction is being written).
func (s *Service) Current(ctx context.Context, visitID string, signedOnly bool) (*Record, error) {
	q := `SELECT ` + cols + ` FROM emr_records WHERE visit_id = ? AND deleted_at IS NULL`
	args := []any{visitID}
	if signedOnly {
		q += ` AND status = ?`
		args = append(args, StatusSigned)
	}
	r, err := scan(s.DB.QueryRowContext(ctx, q+` ORDER BY revision DESC LIMIT 1`, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ihos.Errorf(ihos.ENotFound, "该问诊尚无病历")
	}
	if err != nil {
		return nil, ihos.Internal(err)
	}
	return label(r), nil
}

// Versions lists every version of the visit's record, oldest first.
func (s *Service) Versions(ctx context.Context, visitID string) ([]*Record, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+cols+` FROM emr_records WHERE visit_id = ? AND deleted_at IS NULL ORDER BY revision`, visitID)
	return sqldb.Collect(rows, err, func(row sqldb.Scanner) (*Record, error) {
		r, err := scan(row)
		if err != nil {
			return nil, err
		}
		return label(r), nil
	})
}

// Events lists the changes of the visit's record, oldest first.
func (s *Service) Events(ctx context.Context, visitID string) ([]Event, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT record_id, action, from_status, to_status, actor_id, reason, at FROM emr_events WHERE visit_id = ? ORDER BY at, id`, visitID)
	return sqldb.Collect(rows, err, func(row sqldb.Scanner) (Event, error) {
		var e Event
		var at string
		err := row.Scan(&e.RecordID, &e.Action, &e.From, &e.To, &e.ActorID, &e.Reason, &at)
		e.At = sqldb.ParseTime(at)
		return e, err
	})
}

// Signature returns what a signed version's signature covers and the
// signature itself. The signer's certificate is read from the PKCS#7 once it
// verifies over the document.
func (s *Service) Signature(ctx context.Context, id string) (*SignatureInfo, error) {
	r, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Status != StatusSigned || len(r.signature) == 0 {
		return nil, ihos.Errorf(ihos.ENotFound, "病历尚未签名")
	}
	info := &SignatureInfo{Document: []byte(r.signedDoc), Signature: r.signature, DocSM3: r.DocSM3}
	if signed, err := cms.Verify(r.signature, info.Document); err == nil && signed.Signer != nil {
		info.SignerCert = string(certs.EncodeCertPEM(signed.Signer.Raw))
	}
	return info, nil
}

// SignedDocument returns a signed version's document and signature (for
// tests and the HIS export).
func (r *Record) SignedDocument() (doc, sig []byte) { return []byte(r.signedDoc), r.signature }

const cols = `id, hospital_id, visit_id, revision, supersedes, patient_id, doctor_id, doctor_name, department_id, status, chief_complaint,
	present_illness, past_history, allergy_history, physical_exam, diagnoses, advice, revise_reason, signed_doc, doc_sm3, signature, signed_at,
	version, created_at, updated_at`

func scan(row sqldb.Scanner) (*Record, error) {
	var r Record
	var sup, doc, sig, signed sql.NullString
	var diag, created, updated string
	if err := row.Scan(&r.ID, &r.HospitalID, &r.VisitID, &r.Version, &sup, &r.PatientID, &r.DoctorID, &r.DoctorName, &r.DepartmentID, &r.Status,
		&r.ChiefComplaint, &r.PresentIllness, &r.PastHistory, &r.AllergyHistory, &r.PhysicalExam, &diag, &r.Advice, &r.ReviseReason,
		&doc, &r.DocSM3, &sig, &signed, &r.RowVersion, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(diag), &r.Diagnoses); err != nil {
		return nil, err
	}
	var err error
	if r.signature, err = clinical.ScanSignature(sig); err != nil {
		return nil, err
	}
	r.Supersedes, r.signedDoc = sup.String, doc.String
	r.SignedAt, r.CreatedAt, r.UpdatedAt = sqldb.ParseTime(signed.String), sqldb.ParseTime(created), sqldb.ParseTime(updated)
	return &r, nil
}

func label(r *Record) *Record {
	r.StatusLabel = StatusLabels[r.Status]
	if r.Diagnoses == nil {
		r.Diagnoses = []Diagnosis{}
	}
	return r
}

func itoa(i int) string { return strconv.Itoa(i) }
