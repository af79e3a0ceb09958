package cloudtest

import (
	"database/sql"
	"time"

	"ihos"
)

// The hospital's master data is written as the cloud receives it from sync:
// straight into the replicated tables, version 1, for the rig's hospital.

// Department is a replicated department (institution i1, category 临床,
// online).
type Department struct {
	ID, Code, Name string
	// NewPatients opens its online visits to first-time patients too;
	// otherwise (the default, as the hospital's) only returning patients
	// may book, which the HIS check answers (a connected hospital).
	NewPatients bool
}

// Department writes d.
func (c *Cloud) Department(d Department) {
	c.T.Helper()
	now := ihos.FormatTime(time.Now())
	c.Exec(`INSERT INTO departments (id, hospital_id, institution_id, code, name, category, online, online_follow_up_only, enabled, version, created_at, updated_at)
		VALUES (?, ?, 'i1', ?, ?, '临床', 1, ?, 1, 1, ?, ?)`, d.ID, c.Hospital, d.Code, d.Name, !d.NewPatients, now, now)
}

// Staff is a replicated staff member (institution i1, enabled).
type Staff struct {
	ID, Department, JobNo, Name string
	Kind                        string // ihos.StaffDoctor, ihos.StaffPharmacist
	Title, Specialty, Intro     string
	Online                      bool
	// Phone, when set, is the app login phone the console gave them
	// (sealed, with its blind index), with licence LIC-<id>.
	Phone string
}

// Staff writes s.
func (c *Cloud) Staff(s Staff) {
	c.T.Helper()
	now := ihos.FormatTime(time.Now())
	c.Exec(`INSERT INTO staff (id, hospital_id, institution_id, department_id, job_no, name, kind, title, specialty, intro, online, enabled, version, created_at, updated_at)
		VALUES (?, ?, 'i1', ?, ?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?)`, s.ID, c.Hospital, s.Department, s.JobNo, s.Name, s.Kind, s.Title, s.Specialty,
		sql.NullString{String: s.Intro, Valid: s.Intro != ""}, s.Online, now, now)
	if s.Phone != "" {
		c.StaffPhone(s.ID, s.Phone)
	}
}

// StaffPhone gives staff member id an app login phone (sealed, with its
// blind index) and licence LIC-<id>, as the hospital's console does.
func (c *Cloud) StaffPhone(id, phone string) {
	c.T.Helper()
	n := c.App.Node
	sealed, err := n.Sealer.Seal(phone)
	if err != nil {
		c.T.Fatal(err)
	}
	c.Exec(`UPDATE staff SET phone = ?, phone_bidx = ?, license_no = ? WHERE id = ?`, sealed, n.Sealer.Index(phone), "LIC-"+id, id)
}

// Fees are the consultation fees (fen) of a title, text 30 and voice 15
// minutes, no video.
type Fees struct {
	Title       string
	Text, Voice int64
}

// Fees writes f.
func (c *Cloud) Fees(f Fees) {
	c.T.Helper()
	now := ihos.FormatTime(time.Now())
	c.Exec(`INSERT INTO consultation_settings (id, hospital_id, title, staff_id, text_enabled, text_fee, text_minutes, voice_enabled, voice_fee, voice_minutes,
		video_enabled, video_fee, video_minutes, enabled, version, created_at, updated_at) VALUES (?, ?, ?, NULL, 1, ?, 30, 1, ?, 15, 0, 0, 0, 1, 1, ?, ?)`,
		ihos.NewID(), c.Hospital, f.Title, f.Text, f.Voice, now, now)
}

// ReleaseRule writes the hospital-wide rule releasing slots daysAhead days
// ahead at time of day at (HH:MM, Shanghai), quota bookings per patient.
func (c *Cloud) ReleaseRule(daysAhead int, at string, quota int) {
	c.T.Helper()
	now := ihos.FormatTime(time.Now())
	c.Exec(`INSERT INTO release_rules (id, hospital_id, department_id, days_ahead, release_time, quota, enabled, version, created_at, updated_at)
		VALUES (?, ?, NULL, ?, ?, ?, 1, 1, ?, ?)`, ihos.NewID(), c.Hospital, daysAhead, at, quota, now, now)
}

// Schedule is an online sitting of a doctor.
type Schedule struct {
	ID          string // "" = a new id
	Staff       string
	Date        string // YYYY-MM-DD, Shanghai
	Start, End  string // HH:MM
	Type        string // text, voice, video
	SlotMinutes int
}

// Schedule writes s and returns its id.
func (c *Cloud) Schedule(s Schedule) string {
	c.T.Helper()
	if s.ID == "" {
		s.ID = ihos.NewID()
	}
	now := ihos.FormatTime(time.Now())
	c.Exec(`INSERT INTO online_schedules (id, hospital_id, staff_id, visit_date, start_time, end_time, visit_type, slot_minutes, slot_count, enabled, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 1, 1, ?, ?)`, s.ID, c.Hospital, s.Staff, s.Date, s.Start, s.End, s.Type, s.SlotMinutes, now, now)
	return s.ID
}

// CatalogItem is a line of the HIS catalogue (drugs, exams, labs).
type CatalogItem struct {
	Kind             string // DRUG, EXAM, LAB
	Code, Name, Spec string
	Unit             string // "" = 盒
	Price            int64  // fen
	Flags            string // NARC, PSY1, PSY2, ...
	Disabled         bool
}

// Catalog writes the items.
func (c *Cloud) Catalog(items ...CatalogItem) {
	c.T.Helper()
	now := ihos.FormatTime(time.Now())
	for _, it := range items {
		if it.Unit == "" {
			it.Unit = "盒"
		}
		c.Exec(`INSERT INTO his_catalog (id, hospital_id, kind, code, name, spec, unit, price_fen, flags, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ihos.NewID(), c.Hospital, it.Kind, it.Code, it.Name, it.Spec, it.Unit, it.Price, it.Flags, !it.Disabled, now, now)
	}
}

// Today and Tomorrow are dates (YYYY-MM-DD) in Shanghai.
func Today() string    { return time.Now().In(ihos.Shanghai).Format(time.DateOnly) }
func Tomorrow() string { return time.Now().In(ihos.Shanghai).AddDate(0, 0, 1).Format(time.DateOnly) }
