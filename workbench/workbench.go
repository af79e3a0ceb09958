// Package workbench is the doctor's workspace of the online follow-up visit
// (医生工作台, issue 8): the worklist (waiting patients with their queue
// position, visits in progress, visits ended today), favourite catalogue
// items, treatment-plan templates, order phrases (医嘱术语) and patient
// management (groups, tags, key patients, notes, the patient's record).
//
// Every method acts for one Doctor and sees only that doctor's own data: a
// plan, phrase or favourite of another doctor is answered as not found, and
// the patient list holds only patients who had a visit with the doctor.
// Every change is written with its audit record in the same transaction.
//
// The data is cloud-owned and deliberately not replicated to the appliance
// (no sync.Entity): DESIGN.md §2 lists what flows to the hospital — patient
// accounts, bookings, visits, EMR and orders, payments — and a doctor's
// personal working aids are not on it. Nothing on the hospital side reads
// them, they are not clinical records (what a doctor writes with them, the
// EMR and the prescriptions, replicates through its own tables), and keeping
// them in the cloud keeps the sync link free of every click in the doctor
// app. The cloud's audit log still records every change.
package workbench

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/prescriptions"
	"ihos/visits"
)

// Doctor is who a request acts for: a doctor's staff id and their hospital.
type Doctor struct {
	ID         string
	HospitalID string
}

// PrescriptionReader lists a visit's prescriptions (prescriptions.Service).
type PrescriptionReader interface {
	ByVisit(ctx context.Context, visitID string) ([]*prescriptions.Prescription, error)
}

// EMRReader returns the signed medical record of a visit (nil when there is
// none). The record view uses it when set; otherwise it reads the
// emr_records table directly, if there is one (see Service.Init).
type EMRReader interface {
	SignedEMR(ctx context.Context, visitID string) (any, error)
}

// Service is the doctor's workspace; cloud/workbench.go puts HTTP in front of
// it. Call Init once before use.
type Service struct {
	DB *sqldb.DB
	// Visits gives the waiting queue (Waiting) and its positions.
	Visits *visits.Service
	// Prescriptions lists the prescriptions of a visit in the record view;
	// nil: none are shown.
	Prescriptions PrescriptionReader
	// EMR reads signed medical records; nil: the emr_records table, if any.
	EMR EMRReader
	// Now is the clock (tests move it); time.Now when nil.
	Now func() time.Time

	conditionCol string   // the bookings column holding the patient's condition, "" when none
	emrCols      []string // the columns of emr_records, nil when there is no such table
}

// Init looks once at the optional parts of the schema other packages own:
// the patient's condition on bookings (added with the booking form) and the
// emr_records table (package emr). The workspace shows them when they are
// there and works without them, so it depends on neither package.
func (s *Service) Init(ctx context.Context) error {
	cols, err := s.columns(ctx, "bookings")
	if err != nil {
		return err
	}
	for _, want := range []string{"condition_desc", "condition"} {
		if slices.Contains(cols, want) {
			s.conditionCol = want
			break
		}
	}
	s.emrCols, err = s.columns(ctx, "emr_records")
	return err
}

// columns returns the column names of table, nil when there is no such table.
func (s *Service) columns(ctx context.Context, table string) ([]string, error) {
	var n int
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	if s.DB.Engine == sqldb.MySQL {
		q = `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`
	}
	if err := s.DB.QueryRowContext(ctx, q, table).Scan(&n); err != nil {
		return nil, ihos.Internal(err)
	}
	if n == 0 {
		return nil, nil
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT * FROM `+table+` WHERE 1 = 0`)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, ihos.Internal(err)
	}
	return cols, rows.Err()
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// Age is a person's age in whole years on the day of now (Asia/Shanghai):
// from the birth date when known (YYYY-MM-DD), else from the birth year
// alone. nil when neither is known.
func Age(birthDate string, birthYear int, now time.Time) *int {
	today := now.In(ihos.Shanghai)
	if d, err := time.Parse(time.DateOnly, birthDate); err == nil {
		age := today.Year() - d.Year()
		if today.Month() < d.Month() || (today.Month() == d.Month() && today.Day() < d.Day()) {
			age--
		}
		if age < 0 {
			age = 0
		}
		return &age
	}
	if birthYear <= 0 || birthYear > today.Year() {
		return nil
	}
	age := today.Year() - birthYear
	return &age
}

// person reads a patient's name, gender and age (all empty when the
// patient record has not reached the cloud).
func (s *Service) person(ctx context.Context, patientID string) (name, gender string, age *int, err error) {
	var year int
	var birth string
	err = s.DB.QueryRowContext(ctx, `SELECT p.name, p.gender, p.birth_year,
		COALESCE((SELECT MIN(m.birth_date) FROM patient_members m WHERE m.patient_id = p.id AND m.deleted_at IS NULL AND m.birth_date <> ''), '')
		FROM patients p WHERE p.id = ?`, patientID).Scan(&name, &gender, &year, &birth)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil, nil
	}
	if err != nil {
		return "", "", nil, ihos.Internal(err)
	}
	return name, gender, Age(birth, year, s.now()), nil
}

// errNotDoctor refuses an empty doctor (a caller bug, or a session without one).
var errNotDoctor = ihos.Errorf(ihos.EForbidden, "只有医生可以使用医生工作台")

func check(d Doctor) error {
	if d.ID == "" || len(d.ID) > 36 || len(d.HospitalID) > 36 {
		return errNotDoctor
	}
	return nil
}

// internal wraps an unexpected database error, leaving *ihos.Error alone.
func internal(err error) error {
	if err == nil {
		return nil
	}
	var e *ihos.Error
	if errors.As(err, &e) {
		return err
	}
	return ihos.Internal(err)
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := ihos.ParseTime(s)
	return t
}
