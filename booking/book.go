package booking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"ihos"
	"ihos/internal/masterdata"
	"ihos/internal/sqldb"
	"ihos/sync"
)

// Request asks for one unit of a slot for a patient.
type Request struct {
	SlotID    string `json:"slot_id"`
	PatientID string `json:"patient_id"`
	VisitType string `json:"visit_type"` // optional: the schedule's visit type; if given it must match
	// Condition (病情描述) and PastHistory (既往病史/就诊记录) are what the
	// patient tells the doctor; the visit opens with them as the patient's
	// first message. Condition is required when a patient account books.
	Condition   string `json:"condition"`
	PastHistory string `json:"past_history"`
	// AccountID is the patient account that books (set by the API from the
	// session, never from the body); "" for staff and tools.
	AccountID string `json:"-"`
}

// MaxCondition is the longest condition or past history, in characters.
const MaxCondition = 2000

// clean trims the patient's texts and checks their length.
func (req *Request) clean() error {
	req.Condition, req.PastHistory = strings.TrimSpace(req.Condition), strings.TrimSpace(req.PastHistory)
	f := map[string]string{}
	if req.Condition == "" && req.AccountID != "" {
		f["condition"] = "请填写病情描述，便于医生了解您的情况"
	}
	if utf8.RuneCountInString(req.Condition) > MaxCondition {
		f["condition"] = fmt.Sprintf("病情描述不能超过 %d 字", MaxCondition)
	}
	if utf8.RuneCountInString(req.PastHistory) > MaxCondition {
		f["past_history"] = fmt.Sprintf("既往病史不能超过 %d 字", MaxCondition)
	}
	if len(req.AccountID) > 36 {
		f["account_id"] = "账号无效"
	}
	if len(f) > 0 {
		return ihos.Invalid(f)
	}
	return nil
}

// Book takes one unit of a slot's quota for a patient and returns the
// booking: awaiting payment when the visit has a fee, booked when it is free.
//
// How a slot is never oversold. Every slot has one counter row in
// booking_slots, and a booking is a single conditional statement on it,
//
//	UPDATE booking_slots SET booked = booked + 1 WHERE id = ? AND booked < quota
//
// followed by the INSERT of the booking, in one transaction. The UPDATE is
// atomic on both engines: on SQLite the transaction already holds the
// database's write lock (BEGIN IMMEDIATE), on MariaDB the UPDATE takes the
// row's exclusive lock and re-reads the committed value before it decides,
// so two requests for the last unit are serialised on that row and the
// second one changes nothing — it is told the slot is full. One counter row
// was chosen over one row per seat because a seat row would have to be
// chosen first (a read-then-insert race that retries on conflicts) and
// because a counter lets a release rule's quota change apply to slots that
// were already partly booked. Every booking transaction locks the slot
// first and only then writes the booking and the sync outbox, and cancel
// does the same, so no two transactions wait for each other in opposite
// orders: no deadlocks under a release-time storm.
//
// The rules that do not change with the counter (the schedule is enabled,
// the slot is inside it, released and not past, the doctor is online, the
// visit type is offered) are checked before the transaction, from the
// replicated rows, so the writer holds its lock only for the writes. A
// schedule disabled in the very moment a booking commits may still let
// that booking in; the hospital sees it replicated and may cancel it.
//
// The unique index on bookings.active_key (slot and patient while the
// booking is active) stops one patient holding two units of one slot, even
// when their two requests race.
//
// On SQLite the write joins a group commit (commitGrouped): one fsync for
// all the bookings that arrive while the previous group commits.
func (s *Service) Book(ctx context.Context, req Request) (*Booking, error) {
	if req.PatientID == "" || len(req.PatientID) > 36 {
		return nil, ihos.Invalid(map[string]string{"patient_id": "请选择就诊人"})
	}
	if err := req.clean(); err != nil {
		return nil, err
	}
	if req.VisitType != "" && masterdata.VisitTypeLabels[req.VisitType] == "" {
		return nil, ihos.Invalid(map[string]string{"visit_type": "问诊方式应为图文、语音或视频"})
	}
	schedID, n, ok := parseSlotID(req.SlotID)
	if !ok {
		return nil, ihos.Errorf(ihos.ENotFound, msgNoSlot)
	}
	sc, err := s.loadSchedule(ctx, schedID)
	if err != nil {
		return nil, err
	}
	if sc == nil {
		return nil, ihos.Errorf(ihos.EInvalid, msgNoSchedule)
	}
	spans := sc.spans()
	if n >= len(spans) {
		return nil, ihos.Errorf(ihos.EInvalid, msgNoSchedule)
	}
	if !sc.Enabled {
		return nil, ihos.Errorf(ihos.EConflict, msgStopped)
	}
	if req.VisitType != "" && req.VisitType != sc.VisitType {
		return nil, ihos.Errorf(ihos.EInvalid, "该时段为%s，不提供%s", masterdata.VisitTypeLabels[sc.VisitType], masterdata.VisitTypeLabels[req.VisitType])
	}
	doc, err := s.loadDoctor(ctx, sc.StaffID)
	if err != nil {
		return nil, err
	}
	if doc == nil || !doc.bookable() {
		return nil, ihos.Errorf(ihos.EConflict, msgNotOnline)
	}
	fees, err := s.fees(ctx, sc.HospitalID, doc.ID, doc.Title)
	if err != nil {
		return nil, err
	}
	fee, ok := feeOf(fees, sc.VisitType)
	if !ok {
		return nil, ihos.Errorf(ihos.EConflict, "该医生未开通%s", masterdata.VisitTypeLabels[sc.VisitType])
	}
	rule, err := s.rule(ctx, sc.HospitalID, doc.DepartmentID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if at := rule.releaseAt(sc.Date); now.Before(at) {
		return nil, ihos.Errorf(ihos.EConflict, "%s", releaseMessage(at))
	}
	sp := spans[n]
	if !now.Before(sp.start) {
		return nil, ihos.Errorf(ihos.EConflict, msgPast)
	}
	if err := s.checkFollowUp(ctx, sc.HospitalID, doc.DepartmentID, req.PatientID); err != nil {
		return nil, err
	}
	id := slotID(sc.ID, n)
	key := id + "/" + req.PatientID
	var dup int
	if err := s.row(ctx, `SELECT COUNT(*) FROM bookings WHERE active_key = ?`, key).Scan(&dup); err != nil {
		return nil, err
	}
	if dup > 0 {
		return nil, ihos.Errorf(ihos.EConflict, msgDuplicate)
	}
	newSlot, err := s.slotMissing(ctx, id)
	if err != nil {
		return nil, err
	}
	if newSlot && s.DB.Engine == sqldb.MySQL {
		if err := s.makeSlot(ctx, id, sc.HospitalID, sc.ID); err != nil {
			return nil, err
		}
		newSlot = false
	}
	b := &Booking{ID: ihos.NewID(), HospitalID: sc.HospitalID, SlotID: id, ScheduleID: sc.ID, StaffID: doc.ID, DepartmentID: doc.DepartmentID,
		PatientID: req.PatientID, VisitType: sc.VisitType, StartAt: sp.start, EndAt: sp.end, Fee: fee.Fee, Minutes: fee.Minutes,
		Status: StatusAwaitingPayment, Version: 1, CreatedAt: now.UTC().Truncate(time.Microsecond),
		Condition: req.Condition, PastHistory: req.PastHistory, AccountID: req.AccountID}
	if b.Fee == 0 {
		b.Status = StatusBooked
	}
	p := &pending{b: b, key: key, quota: rule.Quota, newSlot: newSlot, done: make(chan error, 1)}
	if s.DB.Engine == sqldb.SQLite {
		err = s.commitGrouped(p) // runs AfterCommit once per group
	} else if err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		refusal, err := s.write(ctx, tx, p)
		if err != nil {
			return err
		}
		return refusal
	}); err == nil {
		s.afterCommit()
	}
	if err != nil {
		return nil, err
	}
	b.fill()
	if b.Status == StatusBooked {
		// A free booking is booked at once and joins the doctor's queue now;
		// should the visit fail to open, the worker opens it.
		if err := s.openVisit(ctx, b); err != nil {
			s.log().Warn("booking: open visit (the worker retries)", "booking", b.ID, "err", err)
			s.Kick()
		}
	}
	return b, nil
}

// slotMissing reports whether the slot's counter row may not exist yet.
// Slot rows are never deleted, so one seen is remembered.
func (s *Service) slotMissing(ctx context.Context, id string) (bool, error) {
	if _, ok := s.slots.Load(id); ok {
		return false, nil
	}
	var n int
	if err := s.row(ctx, `SELECT COUNT(*) FROM booking_slots WHERE id = ?`, id).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		s.slots.Store(id, struct{}{})
	}
	return n == 0, nil
}

// makeSlot makes a slot's counter row on MariaDB, in a transaction of its
// own: inserting it inside the booking transaction would have every racer
// for a new slot take a shared lock on the duplicate key and then deadlock
// upgrading it for the UPDATE. (On SQLite the booking's group makes it, see
// write: one writer, no such locks, and no fsync of its own.)
func (s *Service) makeSlot(ctx context.Context, id, hospital, schedule string) error {
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := s.DB.TxExec(ctx, tx, `INSERT IGNORE INTO booking_slots (id, hospital_id, schedule_id, booked, updated_at) VALUES (?, ?, ?, 0, ?)`,
			id, hospital, schedule, ihos.FormatTime(s.now()))
		return err
	})
}

func (s *Service) capture(ctx context.Context, tx *sql.Tx, id string) error {
	if s.Capture == nil {
		return nil
	}
	return s.Capture(ctx, tx, sync.Ref{Entity: "bookings", ID: id})
}

func (s *Service) afterCommit() {
	if s.AfterCommit != nil {
		s.AfterCommit()
	}
}

// Cancel cancels a booking and returns its unit to the slot. Cancelling a
// cancelled booking returns it unchanged. A booking whose time has begun
// cannot be cancelled, nor one whose visit the doctor has accepted. The
// visit, if waiting, is cancelled first (so a doctor accepting it at the
// same moment is decided by the visit's own lock), then the booking; then
// its payment is cancelled, or refunded in full if paid. A failure of that
// last step is left to the worker (Run), which finishes it.
func (s *Service) Cancel(ctx context.Context, id, reason string) (*Booking, error) {
	b, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if b.Status == StatusCancelled {
		return b, nil
	}
	if !s.now().Before(b.StartAt) {
		return nil, ihos.Errorf(ihos.EConflict, msgCancelClosed)
	}
	if reason == "" {
		reason = "患者取消"
	}
	if err := s.cancelVisit(ctx, b.ID, reason); err != nil {
		return nil, err
	}
	changed, err := s.cancel(ctx, b, reason)
	if err != nil {
		return nil, err
	}
	if changed {
		if err := s.settle(ctx, b); err != nil {
			s.log().Warn("booking: settle after cancel (the worker retries)", "booking", b.ID, "err", err)
			s.Kick()
		}
	}
	return s.Get(ctx, id)
}

// cancel marks b cancelled and returns its unit; changed is false when a
// concurrent cancel won.
func (s *Service) cancel(ctx context.Context, b *Booking, reason string) (changed bool, err error) {
	now := s.now()
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		// The slot first, as Book locks it, then the booking.
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE booking_slots SET booked = booked - 1, updated_at = ? WHERE id = ? AND booked > 0`,
			ihos.FormatTime(now), b.SlotID); err != nil {
			return err
		}
		res, err := s.DB.TxExec(ctx, tx, `UPDATE bookings SET status = ?, active_key = NULL, cancel_reason = ?, cancelled_at = ?, updated_at = ?, version = version + 1
			WHERE id = ? AND status <> ?`, StatusCancelled, ihos.Truncate(reason, 200), ihos.FormatTime(now), ihos.FormatTime(now), b.ID, StatusCancelled)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errAlreadyCancelled // a concurrent cancel won; undo the unit
		}
		return s.capture(ctx, tx, b.ID)
	})
	if errors.Is(err, errAlreadyCancelled) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.afterCommit()
	return true, nil
}

var errAlreadyCancelled = errors.New("booking: already cancelled")

const bookingCols = `id, hospital_id, slot_id, schedule_id, staff_id, department_id, patient_id, visit_type, start_at, end_at,
	fee, minutes, status, cancel_reason, version, created_at, condition_desc, past_history, account_id`

func scanBooking(row interface{ Scan(...any) error }) (*Booking, error) {
	var b Booking
	var start, end, created string
	var cond, past sql.NullString
	if err := row.Scan(&b.ID, &b.HospitalID, &b.SlotID, &b.ScheduleID, &b.StaffID, &b.DepartmentID, &b.PatientID, &b.VisitType, &start, &end,
		&b.Fee, &b.Minutes, &b.Status, &b.CancelReason, &b.Version, &created, &cond, &past, &b.AccountID); err != nil {
		return nil, err
	}
	b.Condition, b.PastHistory = cond.String, past.String
	b.StartAt, _ = ihos.ParseTime(start)
	b.EndAt, _ = ihos.ParseTime(end)
	b.CreatedAt, _ = ihos.ParseTime(created)
	b.fill()
	return &b, nil
}

func (b *Booking) fill() {
	b.VisitTypeLabel = masterdata.VisitTypeLabels[b.VisitType]
	b.StatusLabel = statusLabels[b.Status]
	b.FeeYuan = ihos.FormatYuan(b.Fee)
	b.PayBy = time.Time{}
	if b.Status == StatusAwaitingPayment {
		b.PayBy = b.CreatedAt.Add(PayWindow)
	}
}

// Get returns a booking.
func (s *Service) Get(ctx context.Context, id string) (*Booking, error) {
	b, err := scanBooking(s.DB.QueryRowContext(ctx, `SELECT `+bookingCols+` FROM bookings WHERE id = ? AND deleted_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ihos.Errorf(ihos.ENotFound, msgNotFound)
	}
	if err == nil && s.Visits != nil && b.Status != StatusAwaitingPayment {
		b.VisitID, _, err = s.visitOf(ctx, id)
	}
	return b, err
}

// PatientBookings lists a patient's bookings, newest first.
func (s *Service) PatientBookings(ctx context.Context, patientID string) ([]*Booking, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+bookingCols+` FROM bookings WHERE patient_id = ? AND deleted_at IS NULL ORDER BY created_at DESC LIMIT 200`, patientID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*Booking{}
	for rows.Next() {
		b, err := scanBooking(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// CountBooked returns how many units of a slot are taken (for tests and the
// console): the counter and the active bookings, which must agree.
func (s *Service) CountBooked(ctx context.Context, slot string) (counter, active int, err error) {
	err = s.DB.QueryRowContext(ctx, `SELECT COALESCE(MAX(booked), 0) FROM booking_slots WHERE id = ?`, slot).Scan(&counter)
	if err == nil {
		err = s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM bookings WHERE slot_id = ? AND status <> ?`, slot, StatusCancelled).Scan(&active)
	}
	if err != nil {
		err = fmt.Errorf("booking: count %s: %w", slot, err)
	}
	return counter, active, err
}
