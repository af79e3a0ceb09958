// Package booking allocates online consultation slots in the cloud (issue 8).
//
// The hospital decides what is offered: its appliance owns the consultation
// settings (fees and durations per title and per doctor), the online
// schedules and the number-release rules, and replicates them to the cloud
// (internal/masterdata). The cloud alone allocates: it derives the slots of
// each schedule, releases them at the rule's time, and takes one unit of a
// slot's quota per booking, so a slot can never be sold twice even though
// many cloud requests race for it. Bookings are cloud-owned and replicated
// back to the hospital.
//
// A slot has no row of its own until it is first booked: its id is
// "<schedule id>:<slot number>", and its times, quota and release follow
// from the schedule and the rule as they are now, so a change made in the
// console applies at once.
//
// Online visits are follow-up visits only (DESIGN.md §7): in a department
// with the rule (departments.online_follow_up_only, on by default) a booking
// needs an offline diagnosis there that the hospital's HIS confirms now
// (followup.go). The patient's condition and past history are kept on the
// booking and open its visit as the patient's first message.
//
// A booking with a fee holds its unit while it waits for its payment (Pay,
// through package payments) for PayWindow; once paid it is booked and opens
// its visit (package visits), a free one does so at once. Cancelling a paid
// booking refunds it in full. The worker (Run) follows payments by polling
// and finishes every step a crash or a race left undone (pay.go).
package booking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	stdsync "sync"
	"time"

	"ihos"
	"ihos/internal/masterdata"
	"ihos/internal/sqldb"
	"ihos/sync"
)

// Booking statuses.
const (
	StatusAwaitingPayment = "awaiting_payment"
	StatusBooked          = "booked"
	StatusCancelled       = "cancelled"
)

var statusLabels = map[string]string{StatusAwaitingPayment: "待支付", StatusBooked: "已预约", StatusCancelled: "已取消"}

// DefaultRule applies where a hospital has no enabled release rule: slots
// open at 08:00 seven days ahead, one patient each.
var DefaultRule = Rule{DaysAhead: 7, ReleaseTime: "08:00", Quota: 1}

// Entities declares the booking data the appliance receives (cloud-owned).
// active_key only enforces "one active booking per patient and slot" in the
// cloud, where allocation happens.
func Entities() []sync.Entity {
	return []sync.Entity{
		{Name: "bookings", Table: "bookings", Owner: sync.Cloud, Local: []string{"active_key"}},
	}
}

// Service books and cancels slots.
type Service struct {
	DB *sqldb.DB
	// Capture records changed bookings in the sync outbox inside the write
	// transaction (sync.Replica.Capture with hospital ""); nil in tests that
	// do not replicate.
	Capture func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error
	// AfterCommit, if set, runs after a booking or cancellation commits (the
	// sync link's Kick).
	AfterCommit func()
	// Now is the clock (tests move it); nil means time.Now.
	Now func() time.Time
	// Payments takes a booking's fee (Pay) and gives it back when the
	// patient cancels; nil: no online payment (Pay refuses).
	Payments Payments
	// Visits opens the visit of a booked booking and cancels it with the
	// booking; nil: bookings open no visits.
	Visits Visits
	// FollowUp asks the hospital's HIS for the patient's offline diagnoses
	// (the follow-up-only rule, followup.go); nil: the rule is not checked
	// (tests of allocation alone).
	FollowUp FollowUp
	// Interval is how often Run looks for work (default 1 s).
	Interval time.Duration
	Logger   *slog.Logger

	stmts stdsync.Map // query text → *sql.Stmt on the read pool
	slots stdsync.Map // ids of slots whose counter row exists

	mu      stdsync.Mutex // guards queue and leading (group commit, commit.go)
	queue   []*pending
	leading bool

	kick     chan struct{} // Run's wake-up (pay.go)
	kickOnce stdsync.Once
}

// row runs a constant query of the booking path on the read pool as a
// prepared statement: parsing the SQL was the largest part of a booking's
// CPU (docs/benchmarks.md, "Booking").
func (s *Service) row(ctx context.Context, query string, args ...any) *sql.Row {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt).QueryRowContext(ctx, args...)
	}
	st, err := s.DB.PrepareContext(ctx, query)
	if err != nil {
		return s.DB.QueryRowContext(ctx, query, args...)
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		st = prev.(*sql.Stmt)
	}
	return st.QueryRowContext(ctx, args...)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Rule is the number-release rule that applies to a schedule.
type Rule struct {
	DaysAhead   int    `json:"days_ahead"`
	ReleaseTime string `json:"release_time"` // HH:MM, hospital time
	Quota       int    `json:"quota"`        // patients per slot
}

// releaseAt is when the slots of date (YYYY-MM-DD) open under r.
func (r Rule) releaseAt(date string) time.Time {
	day, _ := time.ParseInLocation(time.DateOnly, date, ihos.Shanghai)
	m, _ := masterdata.ClockMinutes(r.ReleaseTime)
	return day.AddDate(0, 0, -r.DaysAhead).Add(time.Duration(m) * time.Minute)
}

// Slot is one bookable time of a schedule as a patient sees it.
type Slot struct {
	ID             string    `json:"id"`
	ScheduleID     string    `json:"schedule_id"`
	StaffID        string    `json:"staff_id"`
	VisitType      string    `json:"visit_type"`
	VisitTypeLabel string    `json:"visit_type_label"`
	StartAt        time.Time `json:"start_at"`
	EndAt          time.Time `json:"end_at"`
	Label          string    `json:"label"` // "12月1日 08:00-08:15"
	Quota          int       `json:"quota"`
	Booked         int       `json:"booked"`
	Remaining      int       `json:"remaining"`
	ReleaseAt      time.Time `json:"release_at"`
	// Status is available, full, not_released or past; Message says why a
	// slot that is not available cannot be booked.
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// Slot statuses.
const (
	SlotAvailable   = "available"
	SlotFull        = "full"
	SlotNotReleased = "not_released"
	SlotPast        = "past"
)

// Booking is one patient's hold on one unit of a slot.
type Booking struct {
	ID             string    `json:"id"`
	HospitalID     string    `json:"hospital_id"`
	SlotID         string    `json:"slot_id"`
	ScheduleID     string    `json:"schedule_id"`
	StaffID        string    `json:"staff_id"`
	DepartmentID   string    `json:"department_id"`
	PatientID      string    `json:"patient_id"`
	VisitType      string    `json:"visit_type"`
	VisitTypeLabel string    `json:"visit_type_label"`
	StartAt        time.Time `json:"start_at"`
	EndAt          time.Time `json:"end_at"`
	Fee            int64     `json:"fee"`
	FeeYuan        string    `json:"fee_yuan"`
	Minutes        int       `json:"minutes"`
	Status         string    `json:"status"`
	StatusLabel    string    `json:"status_label"`
	CancelReason   string    `json:"cancel_reason,omitempty"`
	// PayBy is when a booking awaiting payment expires (PayWindow after it
	// was made).
	PayBy time.Time `json:"pay_by,omitzero"`
	// Condition and PastHistory are what the patient told the doctor when
	// booking; AccountID is the patient account that booked ("" for staff).
	Condition   string `json:"condition"`
	PastHistory string `json:"past_history"`
	AccountID   string `json:"account_id,omitempty"`
	// VisitID is the visit a booked booking opened (Get only).
	VisitID   string    `json:"visit_id,omitempty"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
}

// schedule is a replicated online schedule row.
type schedule struct {
	ID, HospitalID, StaffID string
	Date, Start, End        string
	VisitType               string
	SlotMinutes, SlotCount  int
	Enabled                 bool
}

const scheduleCols = `id, hospital_id, staff_id, visit_date, start_time, end_time, visit_type, slot_minutes, slot_count, enabled`

func scanSchedule(row interface{ Scan(...any) error }) (*schedule, error) {
	var sc schedule
	var enabled int
	if err := row.Scan(&sc.ID, &sc.HospitalID, &sc.StaffID, &sc.Date, &sc.Start, &sc.End, &sc.VisitType, &sc.SlotMinutes, &sc.SlotCount, &enabled); err != nil {
		return nil, err
	}
	sc.Enabled = enabled != 0
	return &sc, nil
}

// span is the time of one slot.
type span struct{ start, end time.Time }

// spans cuts the schedule into its slots: of SlotMinutes each (a remainder
// too short for a slot is not offered), or into SlotCount equal parts.
func (sc *schedule) spans() []span {
	day, err := time.ParseInLocation(time.DateOnly, sc.Date, ihos.Shanghai)
	from, ok1 := masterdata.ClockMinutes(sc.Start)
	to, ok2 := masterdata.ClockMinutes(sc.End)
	if err != nil || !ok1 || !ok2 || to <= from {
		return nil
	}
	at := func(m time.Duration) time.Time { return day.Add(m) }
	start, length := time.Duration(from)*time.Minute, time.Duration(to-from)*time.Minute
	var out []span
	switch {
	case sc.SlotCount > 0:
		n := time.Duration(sc.SlotCount)
		for i := range n {
			out = append(out, span{at(start + length*i/n), at(start + length*(i+1)/n)})
		}
	case sc.SlotMinutes > 0:
		step := time.Duration(sc.SlotMinutes) * time.Minute
		for t := start; t+step <= start+length; t += step {
			out = append(out, span{at(t), at(t + step)})
		}
	}
	return out
}

func slotID(scheduleID string, n int) string { return scheduleID + ":" + strconv.Itoa(n) }

// parseSlotID splits a slot id into its schedule and slot number.
func parseSlotID(id string) (string, int, bool) {
	sched, num, ok := strings.Cut(id, ":")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 0 || sched == "" || len(id) > 48 {
		return "", 0, false
	}
	return sched, n, true
}

func slotLabel(sp span) string {
	a, b := sp.start.In(ihos.Shanghai), sp.end.In(ihos.Shanghai)
	return fmt.Sprintf("%d月%d日 %s-%s", a.Month(), a.Day(), a.Format("15:04"), b.Format("15:04"))
}

// releaseMessage is what a patient reads before a slot opens.
func releaseMessage(at time.Time) string {
	t := at.In(ihos.Shanghai)
	return fmt.Sprintf("尚未放号，%d 月 %d 日 %s 开放预约", t.Month(), t.Day(), t.Format("15:04"))
}

// Messages of the booking rules.
const (
	msgFull         = "该时段已约满"
	msgPast         = "该时段已过，请选择其他时段"
	msgNoSchedule   = "该医生在此时间没有出诊安排"
	msgStopped      = "该排班已停诊，暂不能预约"
	msgDuplicate    = "您已预约该时段，请勿重复预约"
	msgNotOnline    = "该医生暂未开通互联网诊疗"
	msgNoSlot       = "号源不存在"
	msgNotFound     = "预约不存在"
	msgCancelClosed = "就诊时间已过，不能取消预约"
)

// loadSchedule reads a schedule that has not been deleted.
func (s *Service) loadSchedule(ctx context.Context, id string) (*schedule, error) {
	sc, err := scanSchedule(s.row(ctx, `SELECT `+scheduleCols+` FROM online_schedules WHERE id = ? AND deleted_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return sc, err
}

// rule returns the release rule of a department of a hospital: the
// department's own enabled rule, else the hospital's default, else
// DefaultRule.
func (s *Service) rule(ctx context.Context, hospital, department string) (Rule, error) {
	var r Rule
	err := s.row(ctx, `SELECT days_ahead, release_time, quota FROM release_rules
		WHERE hospital_id = ? AND enabled = 1 AND deleted_at IS NULL AND (department_id = ? OR department_id IS NULL)
		ORDER BY CASE WHEN department_id IS NULL THEN 1 ELSE 0 END, updated_at DESC LIMIT 1`, hospital, department).
		Scan(&r.DaysAhead, &r.ReleaseTime, &r.Quota)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultRule, nil
	}
	return r, err
}

// Doctor is a doctor as the public pages show them; the field names are
// those the public catalogue served before (cloud.PublicDoctor), extended.
type Doctor struct {
	ID             string  `json:"id"`
	HospitalID     string  `json:"hospital"`
	Name           string  `json:"name"`
	Gender         string  `json:"gender"`
	Title          string  `json:"title"`
	DepartmentID   string  `json:"department_id"`
	DepartmentName string  `json:"department"`
	Specialty      string  `json:"specialty"`
	Intro          string  `json:"intro,omitempty"`
	Notice         string  `json:"notice,omitempty"`
	Accepting      bool    `json:"accepting"`
	Fees           []Fee   `json:"fees"`
	Consultations  int     `json:"consultations"` // bookings that were not cancelled
	Rating         float64 `json:"rating"`        // 0 until patients rate visits
	NextSlots      []Slot  `json:"next_slots"`
	online         bool
	enabled        bool
	kind           string
}

// Fee is what one visit type of a doctor costs and how long it lasts.
type Fee struct {
	VisitType string `json:"visit_type"`
	Label     string `json:"label"`
	Fee       int64  `json:"fee"`
	FeeYuan   string `json:"fee_yuan"`
	Minutes   int    `json:"minutes"`
}

// fees resolves a doctor's consultation settings: the doctor's own enabled
// row if there is one, else their title's, else none. Only enabled visit
// types are returned.
func (s *Service) fees(ctx context.Context, hospital, staffID, title string) ([]Fee, error) {
	row := s.row(ctx, `SELECT text_enabled, text_fee, text_minutes, voice_enabled, voice_fee, voice_minutes, video_enabled, video_fee, video_minutes
		FROM consultation_settings WHERE hospital_id = ? AND enabled = 1 AND deleted_at IS NULL AND (staff_id = ? OR (staff_id IS NULL AND title = ? AND title <> ''))
		ORDER BY CASE WHEN staff_id IS NULL THEN 1 ELSE 0 END, updated_at DESC LIMIT 1`, hospital, staffID, title)
	var on [3]int
	var fee [3]int64
	var minutes [3]int
	err := row.Scan(&on[0], &fee[0], &minutes[0], &on[1], &fee[1], &minutes[1], &on[2], &fee[2], &minutes[2])
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Fee
	for i, vt := range masterdata.VisitTypes {
		if on[i] != 0 {
			out = append(out, Fee{VisitType: vt, Label: masterdata.VisitTypeLabels[vt], Fee: fee[i], FeeYuan: ihos.FormatYuan(fee[i]), Minutes: minutes[i]})
		}
	}
	return out, nil
}

func feeOf(fees []Fee, visitType string) (Fee, bool) {
	for _, f := range fees {
		if f.VisitType == visitType {
			return f, true
		}
	}
	return Fee{}, false
}

const doctorCols = `s.id, s.hospital_id, s.name, s.gender, s.title, s.department_id, COALESCE(d.name, ''), s.specialty, COALESCE(p.specialty, ''),
	COALESCE(p.intro, s.intro, ''), COALESCE(p.notice, ''), COALESCE(p.accepting, 1), s.online, s.enabled, s.kind`

const doctorFrom = ` FROM staff s LEFT JOIN departments d ON d.id = s.department_id AND d.deleted_at IS NULL
	LEFT JOIN doctor_profiles p ON p.staff_id = s.id AND p.deleted_at IS NULL`

func scanDoctor(row interface{ Scan(...any) error }) (*Doctor, error) {
	var d Doctor
	var staffSpecialty, profileSpecialty string
	var accepting, online, enabled int
	if err := row.Scan(&d.ID, &d.HospitalID, &d.Name, &d.Gender, &d.Title, &d.DepartmentID, &d.DepartmentName, &staffSpecialty, &profileSpecialty,
		&d.Intro, &d.Notice, &accepting, &online, &enabled, &d.kind); err != nil {
		return nil, err
	}
	d.Specialty = profileSpecialty
	if d.Specialty == "" {
		d.Specialty = staffSpecialty
	}
	d.Accepting, d.online, d.enabled = accepting != 0, online != 0, enabled != 0
	return &d, nil
}

// bookable reports whether patients may book the doctor at all.
func (d *Doctor) bookable() bool {
	return d.enabled && d.online && d.kind == ihos.StaffDoctor && d.Accepting
}

// loadDoctor reads a doctor (any staff member that is not deleted).
func (s *Service) loadDoctor(ctx context.Context, id string) (*Doctor, error) {
	d, err := scanDoctor(s.row(ctx, `SELECT `+doctorCols+doctorFrom+` WHERE s.id = ? AND s.deleted_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return d, err
}
