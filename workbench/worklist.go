package workbench

import (
	"context"
	"database/sql"
	"errors"
	"time"
	"unicode/utf8"

	"ihos"
	"ihos/visits"
)

// WorkItem is a visit on the worklist with what the doctor needs to pick the
// next patient: who (name, gender, age), the booked slot and, when the
// booking form recorded one, the start of the patient's own account of the
// condition. QueuePosition (of the visit) is set for waiting visits.
type WorkItem struct {
	*visits.Visit
	PatientName   string    `json:"patient_name"`
	PatientGender string    `json:"patient_gender"`
	PatientAge    *int      `json:"patient_age"`
	SlotStart     time.Time `json:"slot_start,omitzero"`
	SlotEnd       time.Time `json:"slot_end,omitzero"`
	Condition     string    `json:"condition,omitempty"`
}

// Worklist is the doctor's day: waiting in queue order, in progress in the
// order they were accepted, ended today (Asia/Shanghai) newest first.
type Worklist struct {
	Waiting    []*WorkItem `json:"waiting"`
	InProgress []*WorkItem `json:"in_progress"`
	EndedToday []*WorkItem `json:"ended_today"`
}

// ConditionSummary is how many characters of the condition the worklist
// shows; the whole text is in the visit's first message.
const ConditionSummary = 60

// Worklist returns the doctor's worklist.
func (s *Service) Worklist(ctx context.Context, d Doctor) (*Worklist, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	waiting, err := s.Visits.Waiting(ctx, visits.Party{Role: visits.RoleDoctor, ID: d.ID}, d.ID)
	if err != nil {
		return nil, internal(err)
	}
	now := s.now()
	day := now.In(ihos.Shanghai)
	start := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, ihos.Shanghai)
	inProgress, err := s.visitList(ctx, `WHERE doctor_id = ? AND status = ? AND deleted_at IS NULL ORDER BY accepted_at, id`,
		d.ID, visits.StatusInProgress)
	if err != nil {
		return nil, err
	}
	ended, err := s.visitList(ctx, `WHERE doctor_id = ? AND status = ? AND ended_at >= ? AND deleted_at IS NULL ORDER BY ended_at DESC, id`,
		d.ID, visits.StatusEnded, ihos.FormatTime(start))
	if err != nil {
		return nil, err
	}
	w := &Worklist{}
	for _, l := range []struct {
		in  []*visits.Visit
		out *[]*WorkItem
	}{{waiting, &w.Waiting}, {inProgress, &w.InProgress}, {ended, &w.EndedToday}} {
		*l.out = []*WorkItem{}
		for _, v := range l.in {
			it, err := s.workItem(ctx, v)
			if err != nil {
				return nil, err
			}
			*l.out = append(*l.out, it)
		}
	}
	return w, nil
}

// workItem adds the patient and the booking to v.
func (s *Service) workItem(ctx context.Context, v *visits.Visit) (*WorkItem, error) {
	it := &WorkItem{Visit: v}
	var err error
	if it.PatientName, it.PatientGender, it.PatientAge, err = s.person(ctx, v.PatientID); err != nil {
		return nil, err
	}
	cond := "''"
	if s.conditionCol != "" {
		cond = "COALESCE(`" + s.conditionCol + "`, '')"
	}
	var startAt, endAt, condition string
	err = s.DB.QueryRowContext(ctx, `SELECT start_at, end_at, `+cond+` FROM bookings WHERE id = ?`, v.BookingID).Scan(&startAt, &endAt, &condition)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, ihos.Internal(err)
	}
	it.SlotStart, it.SlotEnd = parseTime(startAt), parseTime(endAt)
	it.Condition = summary(condition, ConditionSummary)
	return it, nil
}

// summary is the first n characters of s, with an ellipsis when cut.
func summary(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

const visitCols = `id, hospital_id, booking_id, patient_id, doctor_id, department_id, visit_type, status, booked_at,
	accepted_at, ended_at, last_seq, version, created_at, updated_at`

// visitList reads visits (as package visits does) with the given clause.
func (s *Service) visitList(ctx context.Context, where string, args ...any) ([]*visits.Visit, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+visitCols+` FROM visits `+where, args...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	var out []*visits.Visit
	for rows.Next() {
		var v visits.Visit
		var booked, created, updated string
		var accepted, ended sql.NullString
		if err := rows.Scan(&v.ID, &v.HospitalID, &v.BookingID, &v.PatientID, &v.DoctorID, &v.DepartmentID, &v.Type, &v.Status, &booked,
			&accepted, &ended, &v.LastSeq, &v.Version, &created, &updated); err != nil {
			return nil, ihos.Internal(err)
		}
		v.BookedAt, v.AcceptedAt, v.EndedAt = parseTime(booked), parseTime(accepted.String), parseTime(ended.String)
		v.CreatedAt, v.UpdatedAt = parseTime(created), parseTime(updated)
		v.TypeLabel, v.StatusLabel = visits.TypeLabels[v.Type], visits.StatusLabels[v.Status]
		out = append(out, &v)
	}
	return out, internal(rows.Err())
}
