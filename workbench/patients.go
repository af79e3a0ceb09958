package workbench

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
	"ihos/prescriptions"
	"ihos/visits"
)

// MyPatient is a patient of the doctor's (one who had a visit with them)
// with the doctor's own marks.
type MyPatient struct {
	PatientID   string    `json:"patient_id"`
	Name        string    `json:"name"`
	Gender      string    `json:"gender"`
	Age         *int      `json:"age"`
	Groups      []string  `json:"groups"`
	Tags        []string  `json:"tags"`
	Key         bool      `json:"key"`
	Note        string    `json:"note"`
	VisitCount  int       `json:"visit_count"`
	LastVisitAt time.Time `json:"last_visit_at"`
}

// PatientFilter narrows the patient list; empty fields do not.
type PatientFilter struct {
	Group string
	Tag   string
	Key   bool   // key patients only
	Q     string // part of the name, or the patient id
}

// PatientMarks are what the doctor keeps about a patient.
type PatientMarks struct {
	Groups []string `json:"groups"`
	Tags   []string `json:"tags"`
	Key    bool     `json:"key"`
	Note   string   `json:"note"`
}

// Group is one of the doctor's patient groups and how many patients are in it.
type Group struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// Limits of patient management.
const (
	MaxGroups     = 10  // per patient
	MaxTags       = 20  // per patient
	MaxLabelRunes = 20  // a group or tag name
	MaxNoteRunes  = 500 // the doctor's note
	MaxPatients   = 500 // one page of the patient list
)

// doctorVisits is the visits that make someone the doctor's patient: every
// visit but a cancelled one (the patient never met the doctor).
const doctorVisits = `SELECT patient_id, COUNT(*) AS n, MAX(created_at) AS last_at FROM visits
	WHERE doctor_id = ? AND status <> 'cancelled' AND deleted_at IS NULL GROUP BY patient_id`

// Patients lists the doctor's patients, the most recently seen first.
func (s *Service) Patients(ctx context.Context, d Doctor, f PatientFilter) ([]MyPatient, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	q := `SELECT a.patient_id, a.n, a.last_at, p.name, p.gender, p.birth_year, COALESCE(dp.key_patient, 0), COALESCE(dp.note, '')
		FROM (` + doctorVisits + `) a
		JOIN patients p ON p.id = a.patient_id
		LEFT JOIN doctor_patients dp ON dp.doctor_id = ? AND dp.patient_id = a.patient_id
		WHERE 1 = 1`
	args := []any{d.ID, d.ID}
	if f.Key {
		q += ` AND dp.key_patient = 1`
	}
	for kind, name := range map[string]string{"group": strings.TrimSpace(f.Group), "tag": strings.TrimSpace(f.Tag)} {
		if name != "" {
			q += ` AND EXISTS (SELECT 1 FROM doctor_patient_labels l WHERE l.doctor_id = ? AND l.patient_id = a.patient_id AND l.kind = ? AND l.name = ?)`
			args = append(args, d.ID, kind, name)
		}
	}
	if t := strings.TrimSpace(f.Q); t != "" {
		q += ` AND (p.name LIKE ?` + sqldb.Escape + ` OR p.id = ?)`
		args = append(args, sqldb.Contains(t), t)
	}
	rows, err := s.DB.QueryContext(ctx, q+` ORDER BY a.last_at DESC, a.patient_id LIMIT `+strconv.Itoa(MaxPatients), args...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	out := []MyPatient{}
	var years []int
	for rows.Next() {
		var p MyPatient
		var last string
		var year int
		if err := rows.Scan(&p.PatientID, &p.VisitCount, &last, &p.Name, &p.Gender, &year, &p.Key, &p.Note); err != nil {
			return nil, ihos.Internal(err)
		}
		p.LastVisitAt, p.Groups, p.Tags = parseTime(last), []string{}, []string{}
		out = append(out, p)
		years = append(years, year)
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	rows.Close()
	births, err := s.stringsByPatient(ctx, `SELECT patient_id, MIN(birth_date) FROM patient_members
		WHERE deleted_at IS NULL AND birth_date <> '' AND patient_id IN (SELECT patient_id FROM visits WHERE doctor_id = ?) GROUP BY patient_id`, d.ID)
	if err != nil {
		return nil, err
	}
	labels, err := s.labels(ctx, d, "")
	if err != nil {
		return nil, err
	}
	now := s.now()
	for i := range out {
		p := &out[i]
		p.Age = Age(first(births[p.PatientID]), years[i], now)
		if l := labels[p.PatientID]; l != nil {
			p.Groups, p.Tags = l["group"], l["tag"]
		}
	}
	return out, nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// stringsByPatient runs a two-column query (patient id, value).
func (s *Service) stringsByPatient(ctx context.Context, q string, args ...any) (map[string][]string, error) {
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var id, v string
		if err := rows.Scan(&id, &v); err != nil {
			return nil, ihos.Internal(err)
		}
		out[id] = append(out[id], v)
	}
	return out, internal(rows.Err())
}

// labels returns the doctor's groups and tags by patient ("" for all
// patients) and kind, each sorted.
func (s *Service) labels(ctx context.Context, d Doctor, patientID string) (map[string]map[string][]string, error) {
	q, args := `SELECT patient_id, kind, name FROM doctor_patient_labels WHERE doctor_id = ?`, []any{d.ID}
	if patientID != "" {
		q += ` AND patient_id = ?`
		args = append(args, patientID)
	}
	rows, err := s.DB.QueryContext(ctx, q+` ORDER BY patient_id, kind, created_at, name`, args...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	out := map[string]map[string][]string{}
	for rows.Next() {
		var id, kind, name string
		if err := rows.Scan(&id, &kind, &name); err != nil {
			return nil, ihos.Internal(err)
		}
		if out[id] == nil {
			out[id] = map[string][]string{"group": {}, "tag": {}}
		}
		out[id][kind] = append(out[id][kind], name)
	}
	return out, internal(rows.Err())
}

var errNotMyPatient = ihos.Errorf(ihos.ENotFound, "患者不存在或未在您处就诊")

// isMine reports whether the patient had a visit with the doctor.
func (s *Service) isMine(ctx context.Context, d Doctor, patientID string) error {
	var n int
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM visits WHERE doctor_id = ? AND patient_id = ? AND status <> 'cancelled' AND deleted_at IS NULL`,
		d.ID, patientID).Scan(&n); err != nil {
		return ihos.Internal(err)
	}
	if n == 0 {
		return errNotMyPatient
	}
	return nil
}

// cleanLabels trims, drops duplicates and checks a list of group or tag names.
func cleanLabels(field, what string, in []string, max int, f map[string]string) []string {
	out := []string{}
	for _, l := range in {
		l = strings.TrimSpace(l)
		if l == "" || slices.Contains(out, l) {
			continue
		}
		if utf8.RuneCountInString(l) > MaxLabelRunes {
			f[field] = fmt.Sprintf("%s「%s」超过 %d 个字", what, ihos.Truncate(l, 60), MaxLabelRunes)
		}
		out = append(out, l)
	}
	if len(out) > max {
		f[field] = fmt.Sprintf("%s不能超过 %d 个", what, max)
	}
	return out
}

// UpdatePatient replaces the doctor's marks on a patient of theirs. Groups
// the doctor does not have yet are created.
func (s *Service) UpdatePatient(ctx context.Context, d Doctor, patientID string, in PatientMarks) (*MyPatient, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	f := map[string]string{}
	in.Groups = cleanLabels("groups", "分组", in.Groups, MaxGroups, f)
	in.Tags = cleanLabels("tags", "标签", in.Tags, MaxTags, f)
	in.Note = strings.TrimSpace(in.Note)
	if utf8.RuneCountInString(in.Note) > MaxNoteRunes {
		f["note"] = fmt.Sprintf("备注不能超过 %d 个字", MaxNoteRunes)
	}
	if len(f) > 0 {
		return nil, ihos.Invalid(f)
	}
	if err := s.isMine(ctx, d, patientID); err != nil {
		return nil, err
	}
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		now := ihos.FormatTime(s.now())
		var before PatientMarks
		var id string
		err := s.DB.TxQueryRow(ctx, tx, `SELECT id, key_patient, note FROM doctor_patients WHERE doctor_id = ? AND patient_id = ?`+s.DB.ForUpdate(),
			d.ID, patientID).Scan(&id, &before.Key, &before.Note)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			id = ihos.NewID()
			_, err = s.DB.TxExec(ctx, tx, `INSERT INTO doctor_patients (id, hospital_id, doctor_id, patient_id, key_patient, note, version, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)`, id, d.HospitalID, d.ID, patientID, in.Key, in.Note, now, now)
		case err == nil:
			_, err = s.DB.TxExec(ctx, tx, `UPDATE doctor_patients SET key_patient = ?, note = ?, version = version + 1, updated_at = ? WHERE id = ?`,
				in.Key, in.Note, now, id)
		}
		if err != nil {
			return err
		}
		before.Groups, before.Tags = []string{}, []string{}
		rows, err := s.DB.TxQuery(ctx, tx, `SELECT kind, name FROM doctor_patient_labels WHERE doctor_id = ? AND patient_id = ? ORDER BY kind, created_at, name`, d.ID, patientID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var kind, name string
			if err := rows.Scan(&kind, &name); err != nil {
				rows.Close()
				return err
			}
			if kind == "group" {
				before.Groups = append(before.Groups, name)
			} else {
				before.Tags = append(before.Tags, name)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// Groups and tags are the doctor's own bookmarks, not records: the
		// set is replaced, and the audit record keeps the one before.
		if _, err := s.DB.TxExec(ctx, tx, `DELETE FROM doctor_patient_labels WHERE doctor_id = ? AND patient_id = ?`, d.ID, patientID); err != nil {
			return err
		}
		for kind, names := range map[string][]string{"group": in.Groups, "tag": in.Tags} {
			for _, name := range names {
				if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO doctor_patient_labels (id, doctor_id, patient_id, kind, name, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
					ihos.NewID(), d.ID, patientID, kind, name, now); err != nil {
					return err
				}
			}
		}
		for _, g := range in.Groups {
			if err := s.ensureGroup(ctx, tx, d, g, now); err != nil {
				return err
			}
		}
		b, _ := json.Marshal(before)
		after, _ := json.Marshal(in)
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "patient.mark", Resource: "doctor_patients", RecordID: id,
			Summary: "医生 " + d.ID + " 更新患者 " + patientID + " 的分组、标签、重点关注和备注", Before: b, After: after})
	})
	if err != nil {
		return nil, internal(err)
	}
	list, err := s.Patients(ctx, d, PatientFilter{Q: patientID})
	if err != nil {
		return nil, err
	}
	for _, p := range list {
		if p.PatientID == patientID {
			return &p, nil
		}
	}
	return nil, errNotMyPatient
}

// ensureGroup creates the doctor's group name unless it exists.
func (s *Service) ensureGroup(ctx context.Context, tx *sql.Tx, d Doctor, name, now string) error {
	var n int
	if err := s.DB.TxQueryRow(ctx, tx, `SELECT COUNT(*) FROM doctor_patient_groups WHERE doctor_id = ? AND name = ?`, d.ID, name).Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := s.DB.TxExec(ctx, tx, `INSERT INTO doctor_patient_groups (id, doctor_id, name, created_at) VALUES (?, ?, ?, ?)`, ihos.NewID(), d.ID, name, now)
	return err
}

// Groups lists the doctor's patient groups in the order they were made.
func (s *Service) Groups(ctx context.Context, d Doctor) ([]Group, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT g.name, (SELECT COUNT(*) FROM doctor_patient_labels l WHERE l.doctor_id = g.doctor_id AND l.kind = 'group' AND l.name = g.name)
		FROM doctor_patient_groups g WHERE g.doctor_id = ? ORDER BY g.created_at, g.name`, d.ID)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	out := []Group{}
	for rows.Next() {
		var g Group
		if err := rows.Scan(&g.Name, &g.Count); err != nil {
			return nil, ihos.Internal(err)
		}
		out = append(out, g)
	}
	return out, internal(rows.Err())
}

// AddGroup creates a patient group of the doctor's.
func (s *Service) AddGroup(ctx context.Context, d Doctor, name string) (*Group, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > MaxLabelRunes {
		return nil, ihos.Invalid(map[string]string{"name": fmt.Sprintf("请填写分组名称（不超过 %d 个字）", MaxLabelRunes)})
	}
	id := ihos.NewID()
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO doctor_patient_groups (id, doctor_id, name, created_at) VALUES (?, ?, ?, ?)`,
			id, d.ID, name, ihos.FormatTime(s.now())); err != nil {
			return err
		}
		after, _ := json.Marshal(map[string]string{"name": name})
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "patient_group.create", Resource: "doctor_patient_groups", RecordID: id,
			Summary: "医生 " + d.ID + " 新建患者分组「" + name + "」", After: after})
	})
	if sqldb.IsUniqueViolation(err) {
		return nil, ihos.Errorf(ihos.EConflict, "已有名为「%s」的分组", name)
	}
	if err != nil {
		return nil, internal(err)
	}
	return &Group{Name: name}, nil
}

// RecordPatient is the patient at the head of their record.
type RecordPatient struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Gender string `json:"gender"`
	Age    *int   `json:"age"`
	PatientMarks
}

// RecordVisit is one visit of the record: the signed medical record (nil
// when none is signed) and the prescriptions the doctor may read.
type RecordVisit struct {
	Visit         *visits.Visit                 `json:"visit"`
	DoctorName    string                        `json:"doctor_name"`
	EMR           any                           `json:"emr"`
	Prescriptions []*prescriptions.Prescription `json:"prescriptions"`
}

// Record is a patient's record as one of their doctors reads it.
type Record struct {
	Patient RecordPatient `json:"patient"`
	Visits  []RecordVisit `json:"visits"`
}

// rxShared are the prescription statuses a doctor reads on another doctor's
// visit: the valid ones (a pharmacist approved them). On their own visits
// doctors read every version.
var rxShared = map[string]bool{prescriptions.StatusApproved: true, prescriptions.StatusPaid: true, prescriptions.StatusSentToHIS: true}

// Record returns the record of a patient of the doctor's: the patient's
// online visits at the doctor's hospital (any doctor's; cancelled ones left
// out), newest first, each with its signed medical record and prescriptions.
func (s *Service) Record(ctx context.Context, d Doctor, patientID string) (*Record, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	if err := s.isMine(ctx, d, patientID); err != nil {
		return nil, err
	}
	rec := &Record{Patient: RecordPatient{ID: patientID}, Visits: []RecordVisit{}}
	var err error
	if rec.Patient.Name, rec.Patient.Gender, rec.Patient.Age, err = s.person(ctx, patientID); err != nil {
		return nil, err
	}
	rec.Patient.Groups, rec.Patient.Tags = []string{}, []string{}
	err = s.DB.QueryRowContext(ctx, `SELECT key_patient, note FROM doctor_patients WHERE doctor_id = ? AND patient_id = ?`, d.ID, patientID).
		Scan(&rec.Patient.Key, &rec.Patient.Note)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, ihos.Internal(err)
	}
	labels, err := s.labels(ctx, d, patientID)
	if err != nil {
		return nil, err
	}
	if l := labels[patientID]; l != nil {
		rec.Patient.Groups, rec.Patient.Tags = l["group"], l["tag"]
	}
	list, err := s.visitList(ctx, `WHERE patient_id = ? AND hospital_id = ? AND status <> 'cancelled' AND deleted_at IS NULL ORDER BY created_at DESC, id`,
		patientID, d.HospitalID)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, v := range list {
		rv := RecordVisit{Visit: v, Prescriptions: []*prescriptions.Prescription{}}
		if _, ok := names[v.DoctorID]; !ok {
			var name string
			if err := s.DB.QueryRowContext(ctx, `SELECT name FROM staff WHERE id = ?`, v.DoctorID).Scan(&name); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, ihos.Internal(err)
			}
			names[v.DoctorID] = name
		}
		rv.DoctorName = names[v.DoctorID]
		if rv.EMR, err = s.signedEMR(ctx, v.ID); err != nil {
			return nil, err
		}
		if s.Prescriptions != nil {
			all, err := s.Prescriptions.ByVisit(ctx, v.ID)
			if err != nil {
				return nil, internal(err)
			}
			for _, p := range all {
				if v.DoctorID != d.ID && !rxShared[p.Status] {
					continue
				}
				c := *p
				c.SignedDoc, c.Signature = "", nil // the signature is read through the prescription API
				rv.Prescriptions = append(rv.Prescriptions, &c)
			}
		}
		rec.Visits = append(rec.Visits, rv)
	}
	return rec, nil
}

// emrHidden are emr_records columns the record view leaves out: the
// signature material (read through the EMR API) and bookkeeping.
var emrHidden = []string{"signature", "signed_doc", "document", "doc_sm3", "signer_cert", "deleted_at"}

// signedEMR returns the visit's newest signed medical record: through EMR
// when set, else read from emr_records (when the table exists) as a JSON
// object of its columns, JSON text columns (the diagnoses) decoded.
func (s *Service) signedEMR(ctx context.Context, visitID string) (any, error) {
	if s.EMR != nil {
		r, err := s.EMR.SignedEMR(ctx, visitID)
		return r, internal(err)
	}
	if !slices.Contains(s.emrCols, "visit_id") || !slices.Contains(s.emrCols, "status") {
		return nil, nil
	}
	q := `SELECT * FROM emr_records WHERE visit_id = ? AND status = 'signed'`
	if slices.Contains(s.emrCols, "deleted_at") {
		q += ` AND deleted_at IS NULL`
	}
	for _, c := range []string{"revision", "signed_at", "created_at"} {
		if slices.Contains(s.emrCols, c) {
			q += ` ORDER BY ` + c + ` DESC`
			break
		}
	}
	rows, err := s.DB.QueryContext(ctx, q+` LIMIT 1`, visitID)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, internal(rows.Err())
	}
	cols, err := rows.ColumnTypes()
	if err != nil {
		return nil, ihos.Internal(err)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, ihos.Internal(err)
	}
	out := map[string]any{}
	for i, c := range cols {
		name := c.Name()
		if slices.Contains(emrHidden, name) {
			continue
		}
		v := vals[i]
		if b, ok := v.([]byte); ok {
			v = string(b)
		}
		if str, ok := v.(string); ok {
			typ := strings.ToUpper(c.DatabaseTypeName())
			switch {
			case strings.Contains(typ, "INT"):
				if n, err := strconv.ParseInt(str, 10, 64); err == nil {
					v = n
				}
			case strings.HasPrefix(str, "[") || strings.HasPrefix(str, "{"):
				if json.Valid([]byte(str)) {
					v = json.RawMessage(str)
				}
			}
		}
		out[name] = v
	}
	return out, nil
}
