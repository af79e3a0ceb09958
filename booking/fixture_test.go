package booking_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"ihos"
	"ihos/booking"
	"ihos/internal/sqldb"
)

const hosp = "h1"

// fixture writes the rows a hospital's appliance replicates to the cloud
// (departments, staff, profiles, consultation settings, schedules, release
// rules) straight into the cloud's database, as the sync apply would.
type fixture struct {
	t   testing.TB
	db  *sqldb.DB
	svc *booking.Service
	now time.Time
}

// newFixture returns a service whose clock stands at now (hospital time
// 2026-12-01 10:00 unless moved).
func newFixture(t testing.TB, db *sqldb.DB) *fixture {
	f := &fixture{t: t, db: db, now: time.Date(2026, 12, 1, 10, 0, 0, 0, ihos.Shanghai)}
	f.svc = &booking.Service{DB: db, Now: func() time.Time { return f.now }}
	return f
}

func (f *fixture) exec(q string, args ...any) {
	f.t.Helper()
	err := f.db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(q, args...)
		return err
	})
	if err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
}

func stamp() string { return ihos.FormatTime(time.Now()) }

func (f *fixture) department(id, code, name string) {
	f.exec(`INSERT INTO departments (id, hospital_id, institution_id, code, name, category, online, enabled, version, created_at, updated_at)
		VALUES (?, ?, 'i1', ?, ?, '临床', 1, 1, 1, ?, ?)`, id, hosp, code, name, stamp(), stamp())
}

// doctor adds an online doctor of a department.
func (f *fixture) doctor(id, dept, name, title, specialty string) {
	f.exec(`INSERT INTO staff (id, hospital_id, institution_id, department_id, job_no, name, kind, title, specialty, online, enabled, version, created_at, updated_at)
		VALUES (?, ?, 'i1', ?, ?, ?, 'doctor', ?, ?, 1, 1, 1, ?, ?)`, id, hosp, dept, "J"+id, name, title, specialty, stamp(), stamp())
}

// titleFees sets the fees of a title: text, voice, video in fen (a
// negative fee: not offered).
func (f *fixture) titleFees(title string, text, voice, video int64) {
	f.settings(title, nil, text, voice, video)
}

func (f *fixture) doctorFees(staff string, text, voice, video int64) {
	f.settings("", staff, text, voice, video)
}

func (f *fixture) settings(title string, staff any, fees ...int64) {
	on := func(fee int64) (int, int64) {
		if fee < 0 {
			return 0, 0
		}
		return 1, fee
	}
	te, tf := on(fees[0])
	ve, vf := on(fees[1])
	de, df := on(fees[2])
	f.exec(`INSERT INTO consultation_settings (id, hospital_id, title, staff_id, text_enabled, text_fee, text_minutes, voice_enabled, voice_fee, voice_minutes,
		video_enabled, video_fee, video_minutes, enabled, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 30, ?, ?, 15, ?, ?, 20, 1, 1, ?, ?)`,
		ihos.NewID(), hosp, title, staff, te, tf, ve, vf, de, df, stamp(), stamp())
}

// schedule adds a sitting and returns its id.
func (f *fixture) schedule(staff, date, start, end, visitType string, slotMinutes, slotCount int) string {
	id := ihos.NewID()
	f.exec(`INSERT INTO online_schedules (id, hospital_id, staff_id, visit_date, start_time, end_time, visit_type, slot_minutes, slot_count, enabled, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?)`, id, hosp, staff, date, start, end, visitType, slotMinutes, slotCount, stamp(), stamp())
	return id
}

// rule adds a release rule (dept "" = the hospital's default).
func (f *fixture) rule(dept string, daysAhead int, at string, quota int) {
	var d any
	if dept != "" {
		d = dept
	}
	f.exec(`INSERT INTO release_rules (id, hospital_id, department_id, days_ahead, release_time, quota, enabled, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 1, 1, ?, ?)`, ihos.NewID(), hosp, d, daysAhead, at, quota, stamp(), stamp())
}

func slot(schedule string, n int) string { return fmt.Sprintf("%s:%d", schedule, n) }

// refused asserts err is an *ihos.Error with code and message.
func refused(t testing.TB, err error, code, message string) {
	t.Helper()
	e, ok := err.(*ihos.Error)
	if !ok || e.Code != code || e.Message != message {
		t.Fatalf("got %v, want %s %q", err, code, message)
	}
}
