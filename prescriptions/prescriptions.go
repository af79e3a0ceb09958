// Package prescriptions is the online prescription (互联网处方, issue 8) in
// the cloud, with the rules of DESIGN.md §7 enforced here, whatever the caller
// (HTTP, a test, a later worker):
//
//   - a prescription belongs to a visit, and only the visit's attending
//     doctor writes and signs it, while the visit is in progress or within
//     AfterEnd (default 24 hours) of its end: doctors often end the chat first
//     and then finish the prescription, and a prescription the pharmacist
//     rejected must still be correctable that day;
//   - its lines come from the hospital's current drug catalogue (the
//     replicated his_catalog): the code must exist and be active, the price
//     is the catalogue's (whatever price a client sends is ignored), and
//     narcotic and psychotropic drugs (NARC, PSY1, PSY2) are refused;
//   - a child under 6 (accounts.RequiresGuardian) needs a guardian on the
//     account (Service.Guardian);
//   - draft → signed (the doctor's e-signature over the canonical JSON) →
//     under_review → approved | rejected (a pharmacist, a rejection always
//     with a reason) → paid (approved only: Pay charges the approved price,
//     the worker Run marks it paid once the payment is) → sent_to_his (the
//     worker places it with the HIS, keyed by the prescription's id, until
//     the hospital acknowledges);
//   - nothing is deleted: a rejected prescription is corrected by a new
//     version (Revise), every status change is a prescription_events row
//     (append only) and an audit record with the before and after.
//
// The signing (the doctor's key lives on the appliance), the HIS order and
// the history and audit of every change are package clinical's, shared with
// the outpatient records and exam orders (package emr); the signer and the
// HIS are implemented over the sync RPC (cloud/signer.go; the appliance
// answers RPCSign in appliance/clinical.go and his.RPCPlaceOrder in package
// his).
package prescriptions

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	stdsync "sync"
	"time"
	"unicode/utf8"

	"ihos"
	"ihos/accounts"
	"ihos/clinical"
	"ihos/his"
	"ihos/internal/sqldb"
	"ihos/sync"
	"ihos/visits"
)

// Statuses.
const (
	StatusDraft       = clinical.StatusDraft
	StatusSigned      = clinical.StatusSigned
	StatusUnderReview = "under_review"
	StatusApproved    = "approved"
	StatusRejected    = "rejected"
	StatusPaid        = "paid"
	StatusSentToHIS   = "sent_to_his"
)

// StatusLabels are the statuses as doctors, pharmacists and patients see them.
var StatusLabels = map[string]string{
	StatusDraft: clinical.LabelDraft, StatusSigned: clinical.LabelSigned, StatusUnderReview: "待审核", StatusApproved: "审核通过",
	StatusRejected: "已驳回", StatusPaid: "已支付", StatusSentToHIS: clinical.LabelSentToHIS,
}

// MaxItems is the most drugs one prescription may hold (处方管理办法 第六条:
// 每张处方不得超过 5 种药品).
const MaxItems = 5

// Signer is the doctor's e-signature, as every clinical document uses it.
type Signer = clinical.Signer

// HIS receives the pharmacy order, keyed by the prescription's id.
type HIS = clinical.HIS

// journal keeps the history and audit of prescriptions.
func (s *Service) journal() clinical.Journal {
	return clinical.Journal{DB: s.DB, Capture: s.Capture, Table: "prescriptions", Events: "prescription_events", Key: "prescription_id", Action: "prescription"}
}

// Entities declares the prescription data the appliance receives
// (cloud-owned).
func Entities() []sync.Entity {
	return []sync.Entity{
		{Name: "prescriptions", Table: "prescriptions", Owner: sync.Cloud},
		{Name: "prescription_events", Table: "prescription_events", Owner: sync.Cloud},
	}
}

// Service is the prescription service; cloud/prescriptions.go puts HTTP in
// front of it.
type Service struct {
	DB *sqldb.DB
	// Visits reads the visit a prescription belongs to.
	Visits *visits.Service
	// Signer signs with the doctor's e-signature; nil: signing is unavailable.
	Signer Signer
	// HIS receives the pharmacy order; nil: sending is unavailable.
	HIS HIS
	// Guardian reports whether the patient of v, a child under 6, has a
	// guardian on the account. The default (nil) asks the account that made
	// the visit's booking (bookings.account_id): its holder must be marked
	// the child's guardian (patient_members.guardian). A booking made by
	// staff or a tool (no account) falls back to any account whose holder is
	// marked the child's guardian.
	Guardian func(ctx context.Context, v *visits.Visit) (bool, error)
	// Payments takes an approved prescription's price (Pay); nil: no online
	// payment.
	Payments Payments
	// Interval is how often Run looks for work (default 2 s).
	Interval time.Duration
	Logger   *slog.Logger
	// AfterEnd is how long after its visit ended a prescription may still be
	// written, revised and signed (default 24 hours).
	AfterEnd time.Duration
	// Capture records replicated rows for the appliance inside a transaction
	// (sync.Replica.Capture with hospital ""); nil without sync.
	Capture func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error
	// AfterCommit runs after a commit that captured something (the link's Kick).
	AfterCommit func()
	// Now is the clock (tests move it); time.Now when nil.
	Now func() time.Time

	kick     chan struct{} // Run's wake-up (pay.go)
	kickOnce stdsync.Once
}

// Item is one line of a prescription, priced from the catalogue.
type Item struct {
	Code      string `json:"code"`
	Name      string `json:"name"`
	Spec      string `json:"spec"`
	Unit      string `json:"unit"`
	PriceFen  int64  `json:"price_fen"`
	Quantity  int64  `json:"quantity"` // in Unit
	AmountFen int64  `json:"amount_fen"`
	Dose      string `json:"dose,omitempty"`
	DoseUnit  string `json:"dose_unit,omitempty"`
	Frequency string `json:"frequency,omitempty"`
	Route     string `json:"route,omitempty"`
	Days      int    `json:"days,omitempty"`
}

// ItemInput is a line as the doctor writes it. PriceFen is accepted and
// ignored: the price is always the catalogue's.
type ItemInput struct {
	Code      string `json:"code"`
	Quantity  int64  `json:"quantity"`
	Dose      string `json:"dose"`
	DoseUnit  string `json:"dose_unit"`
	Frequency string `json:"frequency"`
	Route     string `json:"route"`
	Days      int    `json:"days"`
	PriceFen  int64  `json:"price_fen"` // ignored
}

// Draft is what the doctor writes. VisitID is read by Create only.
type Draft struct {
	VisitID   string      `json:"visit_id"`
	Diagnosis string      `json:"diagnosis"`
	Note      string      `json:"note"`
	Items     []ItemInput `json:"items"`
}

// Prescription is one version of a prescription.
type Prescription struct {
	ID           string    `json:"id"`
	HospitalID   string    `json:"hospital_id"`
	SeriesID     string    `json:"series_id"`
	Revision     int       `json:"revision"`
	PreviousID   string    `json:"previous_id,omitempty"`
	VisitID      string    `json:"visit_id"`
	PatientID    string    `json:"patient_id"`
	DoctorID     string    `json:"doctor_id"`
	DepartmentID string    `json:"department_id"`
	Status       string    `json:"status"`
	StatusLabel  string    `json:"status_label"`
	Diagnosis    string    `json:"diagnosis"`
	Note         string    `json:"note"`
	Items        []Item    `json:"items"`
	TotalFen     int64     `json:"total_fen"`
	Total        string    `json:"total"` // yuan, for people
	SignedDoc    string    `json:"signed_doc,omitempty"`
	DocSM3       string    `json:"doc_sm3,omitempty"`
	Signature    []byte    `json:"signature,omitempty"`
	SignedAt     time.Time `json:"signed_at,omitzero"`
	SubmittedAt  time.Time `json:"submitted_at,omitzero"`
	ReviewerID   string    `json:"reviewer_id,omitempty"`
	ReviewedAt   time.Time `json:"reviewed_at,omitzero"`
	ReviewReason string    `json:"review_reason,omitempty"`
	PaymentID    string    `json:"payment_id,omitempty"`
	PaidAt       time.Time `json:"paid_at,omitzero"`
	HISOrders    []string  `json:"his_orders,omitempty"`
	SentAt       time.Time `json:"sent_at,omitzero"`
	Version      int64     `json:"version"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Event is one status change, as prescription_events keeps it.
type Event struct {
	From    string    `json:"from"`
	To      string    `json:"to"`
	ActorID string    `json:"actor_id"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

var errNotFound = ihos.Errorf(ihos.ENotFound, "处方不存在")

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (s *Service) afterEnd() time.Duration {
	if s.AfterEnd > 0 {
		return s.AfterEnd
	}
	return 24 * time.Hour
}

// writableVisit reads visit id and checks that by may write or sign a
// prescription for it (writable).
func (s *Service) writableVisit(ctx context.Context, by, id string) (*visits.Visit, error) {
	v, err := s.visit(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.writable(ctx, by, v); err != nil {
		return nil, err
	}
	return v, nil
}

// writable checks that by may write or sign a prescription for v: the
// attending doctor, while the visit is in progress or just ended, and a child
// under 6 only with a guardian.
func (s *Service) writable(ctx context.Context, by string, v *visits.Visit) error {
	if by == "" || by != v.DoctorID {
		return ihos.Errorf(ihos.EForbidden, "只有该问诊的接诊医生可以开具处方")
	}
	switch v.Status {
	case visits.StatusInProgress:
	case visits.StatusEnded:
		if s.now().Sub(v.EndedAt) > s.afterEnd() {
			return ihos.Errorf(ihos.EConflict, "问诊已结束超过 %d 小时，不能再开具处方", int(s.afterEnd().Hours()))
		}
	case visits.StatusWaiting:
		return ihos.Errorf(ihos.EConflict, "问诊尚未开始，不能开具处方")
	default:
		return ihos.Errorf(ihos.EConflict, "问诊已取消，不能开具处方")
	}
	return s.checkGuardian(ctx, v)
}

func (s *Service) checkGuardian(ctx context.Context, v *visits.Visit) error {
	birth, known, err := s.birthDate(ctx, v.PatientID)
	if err != nil {
		return ihos.Internal(err)
	}
	if !known || !accounts.RequiresGuardian(birth) {
		return nil
	}
	check := s.Guardian
	if check == nil {
		check = s.memberGuardian
	}
	ok, err := check(ctx, v)
	if err != nil {
		return err
	}
	if !ok {
		return ihos.Errorf(ihos.EForbidden, "6 岁以下儿童须由监护人陪同问诊：该患者的账号未登记监护人，不能开具处方")
	}
	return nil
}

// birthDate is the patient's birth date: the one a patient account recorded
// from the ID number, else the end of the birth year of the patient record
// (the youngest the patient can be, so a possible child counts as one).
// Unknown when neither says.
func (s *Service) birthDate(ctx context.Context, patientID string) (time.Time, bool, error) {
	var date string
	err := s.DB.QueryRowContext(ctx, `SELECT birth_date FROM patient_members WHERE patient_id = ? AND deleted_at IS NULL AND birth_date <> '' ORDER BY created_at LIMIT 1`, patientID).Scan(&date)
	if err == nil {
		if t, err := time.Parse(time.DateOnly, date); err == nil {
			return t, true, nil
		}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, err
	}
	var year int
	err = s.DB.QueryRowContext(ctx, `SELECT birth_year FROM patients WHERE id = ?`, patientID).Scan(&year)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && year <= 0) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	return time.Date(year, 12, 31, 0, 0, 0, 0, time.UTC), true, nil
}

func (s *Service) memberGuardian(ctx context.Context, v *visits.Visit) (bool, error) {
	var account string
	err := s.DB.QueryRowContext(ctx, `SELECT account_id FROM bookings WHERE id = ?`, v.BookingID).Scan(&account)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, ihos.Internal(err)
	}
	var n int
	if account != "" {
		err = s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM patient_members WHERE account_id = ? AND patient_id = ? AND guardian = 1 AND deleted_at IS NULL`,
			account, v.PatientID).Scan(&n)
	} else {
		err = s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM patient_members WHERE patient_id = ? AND guardian = 1 AND deleted_at IS NULL`, v.PatientID).Scan(&n)
	}
	if err != nil {
		return false, ihos.Internal(err)
	}
	return n > 0, nil
}

// forbiddenOnline are the drug flags the regulations keep out of online
// prescriptions (DESIGN.md §7).
var forbiddenOnline = []string{ihos.FlagNarcotic, ihos.FlagPsychotropic1, ihos.FlagPsychotropic2}

// price turns the doctor's lines into priced lines from the hospital's
// current drug catalogue.
func (s *Service) price(ctx context.Context, hospital string, in []ItemInput) ([]Item, int64, error) {
	if len(in) == 0 {
		return nil, 0, ihos.Invalid(map[string]string{"items": "请至少开具一种药品"})
	}
	if len(in) > MaxItems {
		return nil, 0, ihos.Invalid(map[string]string{"items": fmt.Sprintf("每张处方不得超过 %d 种药品", MaxItems)})
	}
	var out []Item
	var total int64
	seen := map[string]bool{}
	for i, it := range in {
		field := fmt.Sprintf("items.%d", i)
		code := strings.TrimSpace(it.Code)
		if code == "" || len(code) > 64 {
			return nil, 0, ihos.Invalid(map[string]string{field + ".code": "请选择药品"})
		}
		if seen[code] {
			return nil, 0, ihos.Invalid(map[string]string{field + ".code": "同一药品不能重复开具，请合并数量"})
		}
		seen[code] = true
		if it.Quantity <= 0 || it.Quantity > 9999 {
			return nil, 0, ihos.Invalid(map[string]string{field + ".quantity": "数量应为 1 到 9999"})
		}
		if it.Days < 0 || it.Days > 90 {
			return nil, 0, ihos.Invalid(map[string]string{field + ".days": "用药天数应为 0 到 90"})
		}
		for name, v := range map[string]string{"dose": it.Dose, "dose_unit": it.DoseUnit, "frequency": it.Frequency, "route": it.Route} {
			if utf8.RuneCountInString(v) > 20 {
				return nil, 0, ihos.Invalid(map[string]string{field + "." + name: "不能超过 20 个字"})
			}
		}
		var item Item
		var flags string
		var enabled bool
		err := s.DB.QueryRowContext(ctx, `SELECT name, spec, unit, price_fen, flags, enabled FROM his_catalog
			WHERE hospital_id = ? AND kind = ? AND code = ? AND deleted_at IS NULL`, hospital, ihos.CatalogDrug, code).
			Scan(&item.Name, &item.Spec, &item.Unit, &item.PriceFen, &flags, &enabled)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, 0, ihos.Invalid(map[string]string{field + ".code": "药品目录中没有编码为 " + code + " 的药品"})
		}
		if err != nil {
			return nil, 0, ihos.Internal(err)
		}
		if !enabled {
			return nil, 0, ihos.Invalid(map[string]string{field + ".code": item.Name + " 已停用，不能开具"})
		}
		for _, f := range strings.Split(flags, ",") {
			if slices.Contains(forbiddenOnline, strings.TrimSpace(f)) {
				return nil, 0, ihos.Errorf(ihos.EForbidden, "麻醉药品、精神药品不能在互联网医院开具：%s", item.Name)
			}
		}
		item.Code, item.Quantity, item.AmountFen = code, it.Quantity, item.PriceFen*it.Quantity
		item.Dose, item.DoseUnit, item.Frequency = strings.TrimSpace(it.Dose), strings.TrimSpace(it.DoseUnit), strings.TrimSpace(it.Frequency)
		item.Route, item.Days = strings.TrimSpace(it.Route), it.Days
		total += item.AmountFen
		out = append(out, item)
	}
	return out, total, nil
}

func cleanText(d *Draft) error {
	d.Diagnosis, d.Note = strings.TrimSpace(d.Diagnosis), strings.TrimSpace(d.Note)
	f := map[string]string{}
	if d.Diagnosis == "" {
		f["diagnosis"] = "请填写诊断"
	} else if utf8.RuneCountInString(d.Diagnosis) > 200 {
		f["diagnosis"] = "诊断不能超过 200 个字"
	}
	if utf8.RuneCountInString(d.Note) > 200 {
		f["note"] = "备注不能超过 200 个字"
	}
	if len(f) > 0 {
		return ihos.Invalid(f)
	}
	return nil
}

func (s *Service) visit(ctx context.Context, id string) (*visits.Visit, error) {
	return clinical.Visit(ctx, s.Visits, id)
}

// Create writes a new draft for a visit.
func (s *Service) Create(ctx context.Context, by string, d Draft) (*Prescription, error) {
	return s.newVersion(ctx, by, d, nil)
}

// Revise corrects a rejected prescription with a new version: a new draft in
// the same series, revision + 1. The rejected one stays as it was. A
// rejected prescription is revised once.
func (s *Service) Revise(ctx context.Context, by, id string, d Draft) (*Prescription, error) {
	prev, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if prev.Status != StatusRejected {
		return nil, ihos.Errorf(ihos.EConflict, "只有被驳回的处方可以修改为新版本，该处方%s", StatusLabels[prev.Status])
	}
	d.VisitID = prev.VisitID
	return s.newVersion(ctx, by, d, prev)
}

func (s *Service) newVersion(ctx context.Context, by string, d Draft, prev *Prescription) (*Prescription, error) {
	if err := cleanText(&d); err != nil {
		return nil, err
	}
	v, err := s.writableVisit(ctx, by, d.VisitID)
	if err != nil {
		return nil, err
	}
	items, total, err := s.price(ctx, v.HospitalID, d.Items)
	if err != nil {
		return nil, err
	}
	now := s.now()
	p := &Prescription{ID: ihos.NewID(), HospitalID: v.HospitalID, Revision: 1, VisitID: v.ID, PatientID: v.PatientID,
		DoctorID: v.DoctorID, DepartmentID: v.DepartmentID, Status: StatusDraft, Diagnosis: d.Diagnosis, Note: d.Note,
		Items: items, TotalFen: total, Version: 1, CreatedAt: now, UpdatedAt: now}
	p.SeriesID = p.ID
	if prev != nil {
		p.SeriesID, p.Revision, p.PreviousID = prev.SeriesID, prev.Revision+1, prev.ID
	}
	itemsJSON, err := json.Marshal(items)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := s.DB.TxExec(ctx, tx, `INSERT INTO prescriptions (id, hospital_id, series_id, revision, previous_id, visit_id, patient_id, doctor_id,
			department_id, status, diagnosis, note, items, total_fen, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
			p.ID, p.HospitalID, p.SeriesID, p.Revision, sqldb.NullString(p.PreviousID), p.VisitID, p.PatientID, p.DoctorID, p.DepartmentID,
			p.Status, p.Diagnosis, p.Note, string(itemsJSON), p.TotalFen, ihos.FormatTime(now), ihos.FormatTime(now))
		if err != nil {
			return err
		}
		summary := fmt.Sprintf("医生 %s 为问诊 %s 开具处方草稿（%d 种药品，%s 元）", by, p.VisitID, len(items), ihos.FormatYuan(total))
		if prev != nil {
			summary = fmt.Sprintf("医生 %s 修改被驳回的处方 %s，生成第 %d 版草稿（%s 元）", by, prev.ID, p.Revision, ihos.FormatYuan(total))
		}
		return s.record(ctx, tx, nil, p, by, "", "", "create", summary)
	})
	if sqldb.IsUniqueViolation(err) {
		return nil, ihos.Errorf(ihos.EConflict, "该处方已修改过，请在最新版本上操作")
	}
	if err != nil {
		return nil, err
	}
	s.committed()
	return label(p), nil
}

// Update rewrites a draft: its own doctor, under the same rules as Create.
// A draft is not yet a record; once signed it never changes.
func (s *Service) Update(ctx context.Context, by, id string, d Draft) (*Prescription, error) {
	if err := cleanText(&d); err != nil {
		return nil, err
	}
	cur, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	v, err := s.writableVisit(ctx, by, cur.VisitID)
	if err != nil {
		return nil, err
	}
	items, total, err := s.price(ctx, v.HospitalID, d.Items)
	if err != nil {
		return nil, err
	}
	return s.transition(ctx, by, id, "update", "", func(p *Prescription) (string, error) {
		if p.Status != StatusDraft {
			return "", ihos.Errorf(ihos.EConflict, "处方%s，不能再修改；被驳回的处方请修改为新版本", StatusLabels[p.Status])
		}
		p.Diagnosis, p.Note, p.Items, p.TotalFen = d.Diagnosis, d.Note, items, total
		return fmt.Sprintf("医生 %s 修改处方草稿（%d 种药品，%s 元）", by, len(items), ihos.FormatYuan(total)), nil
	})
}

// signedDocument is what the doctor signs: the prescription's content and
// who it is for, without its workflow fields.
type signedDocument struct {
	Type         string `json:"type"`
	ID           string `json:"id"`
	SeriesID     string `json:"series_id"`
	Revision     int    `json:"revision"`
	HospitalID   string `json:"hospital_id"`
	VisitID      string `json:"visit_id"`
	PatientID    string `json:"patient_id"`
	DoctorID     string `json:"doctor_id"`
	DepartmentID string `json:"department_id"`
	Diagnosis    string `json:"diagnosis"`
	Note         string `json:"note"`
	Items        []Item `json:"items"`
	TotalFen     int64  `json:"total_fen"`
	WrittenAt    string `json:"written_at"`
}

// Document returns the canonical JSON of p that its doctor signs.
func Document(p *Prescription, at time.Time) ([]byte, error) {
	return clinical.Document(signedDocument{Type: "prescription", ID: p.ID, SeriesID: p.SeriesID, Revision: p.Revision,
		HospitalID: p.HospitalID, VisitID: p.VisitID, PatientID: p.PatientID, DoctorID: p.DoctorID, DepartmentID: p.DepartmentID,
		Diagnosis: p.Diagnosis, Note: p.Note, Items: p.Items, TotalFen: p.TotalFen, WrittenAt: ihos.FormatTime(at)})
}

// Sign signs a draft with its doctor's e-signature (pin unlocks the key):
// the lines are priced again from the current catalogue and checked against
// every rule first, so what is signed is what may be prescribed now.
func (s *Service) Sign(ctx context.Context, by, id, pin string) (*Prescription, error) {
	if err := clinical.CanSign(s.Signer, pin); err != nil {
		return nil, err
	}
	p, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.Status != StatusDraft {
		return nil, ihos.Errorf(ihos.EConflict, "处方%s，不能再签名", StatusLabels[p.Status])
	}
	if _, err := s.writableVisit(ctx, by, p.VisitID); err != nil {
		return nil, err
	}
	in := make([]ItemInput, len(p.Items))
	for i, it := range p.Items {
		in[i] = ItemInput{Code: it.Code, Quantity: it.Quantity, Dose: it.Dose, DoseUnit: it.DoseUnit, Frequency: it.Frequency, Route: it.Route, Days: it.Days}
	}
	if p.Items, p.TotalFen, err = s.price(ctx, p.HospitalID, in); err != nil {
		return nil, err
	}
	sg, err := clinical.Sign(ctx, s.Signer, by, pin, s.now(), func(at time.Time) ([]byte, error) { return Document(p, at) })
	if err != nil {
		return nil, err
	}
	return s.transition(ctx, by, id, StatusSigned, "", func(cur *Prescription) (string, error) {
		if cur.Status != StatusDraft || cur.Version != p.Version {
			return "", ihos.Errorf(ihos.EConflict, "处方在签名期间已被修改，请重新签名")
		}
		cur.Items, cur.TotalFen = p.Items, p.TotalFen
		cur.Status, cur.SignedDoc, cur.DocSM3, cur.Signature, cur.SignedAt = StatusSigned, sg.Doc, sg.SM3, sg.Sig, sg.At
		return fmt.Sprintf("医生 %s 电子签名处方（文档 SM3 %s）", by, cur.DocSM3), nil
	})
}

// Submit sends a signed prescription to the pharmacists' review queue: its
// doctor.
func (s *Service) Submit(ctx context.Context, by, id string) (*Prescription, error) {
	return s.transition(ctx, by, id, StatusUnderReview, "", func(p *Prescription) (string, error) {
		if by != p.DoctorID {
			return "", ihos.Errorf(ihos.EForbidden, "只有开具处方的医生可以提交审核")
		}
		if p.Status != StatusSigned {
			return "", ihos.Errorf(ihos.EConflict, "处方须先由医生电子签名才能提交审核，该处方%s", StatusLabels[p.Status])
		}
		p.Status, p.SubmittedAt = StatusUnderReview, s.now()
		return fmt.Sprintf("医生 %s 提交处方审核", by), nil
	})
}

// pharmacist checks that by is an active pharmacist of the hospital.
func (s *Service) pharmacist(ctx context.Context, by, hospital string) error {
	var n int
	err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM staff WHERE id = ? AND hospital_id = ? AND kind = ? AND enabled = 1 AND deleted_at IS NULL`,
		by, hospital, ihos.StaffPharmacist).Scan(&n)
	if err != nil {
		return ihos.Internal(err)
	}
	if by == "" || n == 0 {
		return ihos.Errorf(ihos.EForbidden, "只有本院在岗药师可以审核处方")
	}
	return nil
}

// Queue lists the hospital's prescriptions waiting for review, oldest first.
func (s *Service) Queue(ctx context.Context, by, hospital string) ([]*Prescription, error) {
	if err := s.pharmacist(ctx, by, hospital); err != nil {
		return nil, err
	}
	return s.list(ctx, `WHERE hospital_id = ? AND status = ? AND deleted_at IS NULL ORDER BY submitted_at, id`, hospital, StatusUnderReview)
}

// Approve passes a prescription under review: a pharmacist, never its own
// doctor.
func (s *Service) Approve(ctx context.Context, by, id string) (*Prescription, error) {
	return s.review(ctx, by, id, StatusApproved, "")
}

// Reject sends a prescription under review back to its doctor with the
// reason, which is mandatory.
func (s *Service) Reject(ctx context.Context, by, id, reason string) (*Prescription, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, ihos.Errorf(ihos.EInvalid, "驳回处方须填写理由，理由将退回给医生")
	}
	if utf8.RuneCountInString(reason) > 200 {
		return nil, ihos.Invalid(map[string]string{"reason": "理由不能超过 200 个字"})
	}
	return s.review(ctx, by, id, StatusRejected, reason)
}

func (s *Service) review(ctx context.Context, by, id, to, reason string) (*Prescription, error) {
	p, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.pharmacist(ctx, by, p.HospitalID); err != nil {
		return nil, err
	}
	return s.transition(ctx, by, id, to, reason, func(p *Prescription) (string, error) {
		if by == p.DoctorID {
			return "", ihos.Errorf(ihos.EForbidden, "不能审核自己开具的处方")
		}
		if p.Status != StatusUnderReview {
			return "", ihos.Errorf(ihos.EConflict, "处方%s，不在待审核状态", StatusLabels[p.Status])
		}
		p.Status, p.ReviewerID, p.ReviewedAt, p.ReviewReason = to, by, s.now(), reason
		if to == StatusRejected {
			return fmt.Sprintf("药师 %s 驳回处方：%s", by, reason), nil
		}
		return fmt.Sprintf("药师 %s 审核通过处方", by), nil
	})
}

var errNotApproved = ihos.Errorf(ihos.EConflict, "处方尚未经药师审核通过，不能支付")

// Payable returns the amount (fen) to pay for a prescription: only an
// approved prescription can be paid. The payment API calls it before it
// creates a payment of business type ihos.PayPrescription.
func (s *Service) Payable(ctx context.Context, id string) (int64, error) {
	p, err := s.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	switch p.Status {
	case StatusApproved:
		return p.TotalFen, nil
	case StatusPaid, StatusSentToHIS:
		return 0, ihos.Errorf(ihos.EConflict, "处方已支付")
	}
	return 0, errNotApproved
}

// MarkPaid records the payment of an approved prescription (the payment
// service calls it once the payment is paid; by is who or what applied it).
func (s *Service) MarkPaid(ctx context.Context, by, id, paymentID string) (*Prescription, error) {
	if paymentID == "" || len(paymentID) > 36 {
		return nil, ihos.Invalid(map[string]string{"payment_id": "支付单号无效"})
	}
	return s.transition(ctx, by, id, StatusPaid, "", func(p *Prescription) (string, error) {
		if p.Status != StatusApproved {
			if p.Status == StatusPaid || p.Status == StatusSentToHIS {
				return "", ihos.Errorf(ihos.EConflict, "处方已支付")
			}
			return "", errNotApproved
		}
		p.Status, p.PaymentID, p.PaidAt = StatusPaid, paymentID, s.now()
		return fmt.Sprintf("处方已支付 %s 元（支付单 %s）", ihos.FormatYuan(p.TotalFen), paymentID), nil
	})
}

// SendToHIS places the pharmacy order of a paid prescription with the HIS,
// with its lines' charges posted as paid online.
// The order's key is the prescription's id, so the appliance places it once
// however often it is sent: a call whose answer was lost, or a store that
// failed after the order was placed, is simply sent again (the worker, Run,
// does until the appliance acknowledges).
func (s *Service) SendToHIS(ctx context.Context, by, id string) (*Prescription, error) {
	if s.HIS == nil {
		return nil, ihos.Errorf(ihos.EUnavailable, "医院 HIS 连接暂不可用，请稍后再发送")
	}
	p, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.Status != StatusPaid {
		return nil, ihos.Errorf(ihos.EConflict, "只有已支付的处方可以发送至医院，该处方%s", StatusLabels[p.Status])
	}
	req, err := s.orderRequest(ctx, p)
	if err != nil {
		return nil, err
	}
	req.Key = p.ID
	orders, err := s.HIS.PlaceOrder(ctx, p.HospitalID, req)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
	}
	return s.transition(ctx, by, id, StatusSentToHIS, "", func(p *Prescription) (string, error) {
		if p.Status != StatusPaid {
			return "", ihos.Errorf(ihos.EConflict, "处方%s，不能发送至医院", StatusLabels[p.Status])
		}
		p.Status, p.HISOrders, p.SentAt = StatusSentToHIS, ids, s.now()
		return fmt.Sprintf("处方已发送至医院 HIS（医嘱 %s）", strings.Join(ids, ",")), nil
	})
}

// orderRequest is the pharmacy order of p, with the patient's HIS record,
// the doctor's job number and the department's code.
func (s *Service) orderRequest(ctx context.Context, p *Prescription) (his.OrderRequest, error) {
	req, err := clinical.OrderRequest(ctx, s.DB, clinical.Parties{PatientID: p.PatientID, DoctorID: p.DoctorID, DepartmentID: p.DepartmentID, What: "处方"})
	if err != nil {
		return req, err
	}
	req.Kind, req.ClinicalInfo = ihos.CatalogDrug, p.Diagnosis
	for i, it := range p.Items {
		req.Items = append(req.Items, ihos.HISOrderLine{Code: it.Code, Name: it.Name, Quantity: fmt.Sprint(it.Quantity), Unit: it.Unit,
			Dose: it.Dose, DoseUnit: it.DoseUnit, Frequency: it.Frequency, Route: it.Route})
		// Paid online: the HIS books the charge as paid (its platform fee id
		// is the prescription's line, so the HIS counts it once).
		req.Fees = append(req.Fees, ihos.HISFeeLine{FeeID: fmt.Sprintf("%s-%d", p.ID, i+1), ItemCode: it.Code, ItemName: it.Name,
			Quantity: fmt.Sprint(it.Quantity), AmountFen: it.AmountFen})
	}
	return req, nil
}

// transition changes prescription id after change allows and applies it, in
// one transaction with its history row and its audit record (before and
// after). to is the new status, or "update" for a draft rewritten in place.
func (s *Service) transition(ctx context.Context, by, id, to, reason string, change func(*Prescription) (string, error)) (*Prescription, error) {
	lock := func(tx *sql.Tx) (*Prescription, error) {
		return clinical.Lock(ctx, s.DB, tx, "prescriptions", cols, id, scan, errNotFound)
	}
	p, err := clinical.Transition(ctx, s.DB, lock, change, func(tx *sql.Tx, before, after *Prescription, summary string) error {
		after.Version++
		after.UpdatedAt = s.now()
		items, err := json.Marshal(after.Items)
		if err != nil {
			return err
		}
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE prescriptions SET status = ?, diagnosis = ?, note = ?, items = ?, total_fen = ?, signed_doc = ?, doc_sm3 = ?,
			signature = ?, signed_at = ?, submitted_at = ?, reviewer_id = ?, reviewed_at = ?, review_reason = ?, payment_id = ?, paid_at = ?,
			his_orders = ?, sent_at = ?, version = ?, updated_at = ? WHERE id = ?`,
			after.Status, after.Diagnosis, after.Note, string(items), after.TotalFen, sqldb.NullString(after.SignedDoc), after.DocSM3,
			clinical.SignatureColumn(after.Signature), sqldb.NullTime(after.SignedAt), sqldb.NullTime(after.SubmittedAt), after.ReviewerID,
			sqldb.NullTime(after.ReviewedAt), after.ReviewReason, after.PaymentID, sqldb.NullTime(after.PaidAt), strings.Join(after.HISOrders, ","),
			sqldb.NullTime(after.SentAt), after.Version, ihos.FormatTime(after.UpdatedAt), id); err != nil {
			return err
		}
		if to == "update" {
			return s.record(ctx, tx, before, after, by, "", reason, to, summary)
		}
		return s.record(ctx, tx, before, after, by, to, reason, to, summary)
	})
	if err != nil {
		return nil, err
	}
	s.committed()
	return label(p), nil
}

// record appends the history row of a status change (to != "", or a
// creation) and the audit record, and captures the rows for the appliance.
func (s *Service) record(ctx context.Context, tx *sql.Tx, before, after *Prescription, by, to, reason, action, summary string) error {
	c := clinical.Change{HospitalID: after.HospitalID, ID: after.ID, Action: action, To: to, Actor: by, At: after.UpdatedAt, Summary: summary,
		Before: clinical.View(before, auditView), After: auditView(after), Columns: map[string]string{"reason": reason}}
	if before != nil {
		c.From = before.Status
	} else {
		c.To = after.Status
	}
	c.Event = c.To != ""
	return s.journal().Record(ctx, tx, c)
}

// auditView is a prescription in the audit log: the signature blob and the
// signed document are summarised by the document's digest.
func auditView(p *Prescription) any {
	v := *p
	v.SignedDoc, v.Signature = "", nil
	return v
}

func (s *Service) committed() {
	if s.Capture != nil && s.AfterCommit != nil {
		s.AfterCommit()
	}
}

// Get returns one prescription version.
func (s *Service) Get(ctx context.Context, id string) (*Prescription, error) {
	p, err := clinical.Get(ctx, s.DB, "prescriptions", cols, id, scan, errNotFound)
	if err != nil {
		return nil, err
	}
	return label(p), nil
}

// ByVisit lists a visit's prescriptions, every version, oldest first.
func (s *Service) ByVisit(ctx context.Context, visitID string) ([]*Prescription, error) {
	return s.list(ctx, `WHERE visit_id = ? AND deleted_at IS NULL ORDER BY created_at, revision, id`, visitID)
}

// History returns a prescription's status changes, oldest first.
func (s *Service) History(ctx context.Context, id string) ([]Event, error) {
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT from_status, to_status, actor_id, reason, at FROM prescription_events WHERE prescription_id = ? ORDER BY at, id`, id)
	return sqldb.Collect(rows, err, func(row sqldb.Scanner) (Event, error) {
		var e Event
		var at string
		err := row.Scan(&e.From, &e.To, &e.ActorID, &e.Reason, &at)
		e.At = sqldb.ParseTime(at)
		return e, err
	})
}

func (s *Service) list(ctx context.Context, where string, args ...any) ([]*Prescription, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+cols+` FROM prescriptions `+where, args...)
	return sqldb.Collect(rows, err, func(row sqldb.Scanner) (*Prescription, error) {
		p, err := scan(row)
		if err != nil {
			return nil, err
		}
		return label(p), nil
	})
}

const cols = `id, hospital_id, series_id, revision, previous_id, visit_id, patient_id, doctor_id, department_id, status, diagnosis, note,
	items, total_fen, signed_doc, doc_sm3, signature, signed_at, submitted_at, reviewer_id, reviewed_at, review_reason, payment_id, paid_at,
	his_orders, sent_at, version, created_at, updated_at`

func scan(row sqldb.Scanner) (*Prescription, error) {
	var p Prescription
	var prev, doc, sig, signed, submitted, reviewed, paid, sent sql.NullString
	var items, orders, created, updated string
	if err := row.Scan(&p.ID, &p.HospitalID, &p.SeriesID, &p.Revision, &prev, &p.VisitID, &p.PatientID, &p.DoctorID, &p.DepartmentID,
		&p.Status, &p.Diagnosis, &p.Note, &items, &p.TotalFen, &doc, &p.DocSM3, &sig, &signed, &submitted, &p.ReviewerID, &reviewed,
		&p.ReviewReason, &p.PaymentID, &paid, &orders, &sent, &p.Version, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(items), &p.Items); err != nil {
		return nil, err
	}
	var err error
	if p.Signature, err = clinical.ScanSignature(sig); err != nil {
		return nil, err
	}
	if orders != "" {
		p.HISOrders = strings.Split(orders, ",")
	}
	p.PreviousID, p.SignedDoc = prev.String, doc.String
	p.SignedAt, p.SubmittedAt, p.ReviewedAt = sqldb.ParseTime(signed.String), sqldb.ParseTime(submitted.String), sqldb.ParseTime(reviewed.String)
	p.PaidAt, p.SentAt, p.CreatedAt, p.UpdatedAt = sqldb.ParseTime(paid.String), sqldb.ParseTime(sent.String), sqldb.ParseTime(created), sqldb.ParseTime(updated)
	return &p, nil
}

func label(p *Prescription) *Prescription {
	p.StatusLabel, p.Total = StatusLabels[p.Status], ihos.FormatYuan(p.TotalFen)
	return p
}
