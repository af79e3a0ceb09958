package booking

import (
	"context"
	"database/sql"
	"errors"

	"ihos"
	"ihos/internal/sqldb"
)

// pending is a booking that passed its checks and waits for its write.
type pending struct {
	b     *Booking
	key   string // active_key
	quota int
	// newSlot: the slot's counter row may be missing; write makes it
	// (SQLite only, see makeSlot).
	newSlot bool
	done    chan error // buffered: the outcome of the write
}

// write takes the unit and records the booking in tx: the conditional
// counter UPDATE (see Book), the INSERT and the sync outbox entry. A refused
// booking (full, duplicate) is returned as refusal and leaves nothing behind
// in tx: the UPDATE changed no row, or a failed INSERT (a constraint failure
// undoes only its own statement) is followed by the UPDATE that gives the
// unit back, so a group needs no savepoint per booking. err means tx can
// not be committed.
func (s *Service) write(ctx context.Context, tx *sql.Tx, p *pending) (refusal, err error) {
	b := p.b
	at := ihos.FormatTime(b.CreatedAt)
	if p.newSlot {
		if _, err := s.DB.TxExec(ctx, tx, `INSERT OR IGNORE INTO booking_slots (id, hospital_id, schedule_id, booked, updated_at) VALUES (?, ?, ?, 0, ?)`,
			b.SlotID, b.HospitalID, b.ScheduleID, at); err != nil {
			return nil, err
		}
	}
	res, err := s.DB.TxExec(ctx, tx, `UPDATE booking_slots SET booked = booked + 1, updated_at = ? WHERE id = ? AND booked < ?`, at, b.SlotID, p.quota)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, err
	} else if n == 0 {
		return ihos.Errorf(ihos.EConflict, msgFull), nil
	}
	_, err = s.DB.TxExec(ctx, tx, `INSERT INTO bookings (id, hospital_id, slot_id, schedule_id, staff_id, department_id, patient_id, visit_type,
		start_at, end_at, fee, minutes, status, active_key, cancel_reason, cancelled_at, version, created_at, updated_at, deleted_at,
		condition_desc, past_history, account_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', NULL, 1, ?, ?, NULL, ?, ?, ?)`,
		b.ID, b.HospitalID, b.SlotID, b.ScheduleID, b.StaffID, b.DepartmentID, b.PatientID, b.VisitType,
		ihos.FormatTime(b.StartAt), ihos.FormatTime(b.EndAt), b.Fee, b.Minutes, b.Status, p.key, at, at,
		nullText(b.Condition), nullText(b.PastHistory), b.AccountID)
	if sqldb.IsUniqueViolation(err) {
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE booking_slots SET booked = booked - 1 WHERE id = ?`, b.SlotID); err != nil {
			return nil, err
		}
		return ihos.Errorf(ihos.EConflict, msgDuplicate), nil
	}
	if err != nil {
		return nil, err
	}
	return nil, s.capture(ctx, tx, b.ID)
}

// maxGroup bounds the bookings one transaction commits.
const maxGroup = 128

// commitGrouped writes p in a group commit and returns its outcome.
//
// On SQLite every commit is an fsync of the WAL (synchronous=FULL) and
// writers take turns on one connection, so committing each booking on its
// own caps bookings at the disk's commit rate, with every other request
// queued behind it. Instead the bookings that arrive while one transaction
// commits are written together in the next (a refused one leaves nothing
// behind, see write, while the others stand), and all are made durable by
// one fsync. Nobody is answered before that commit. The first request to
// find no transaction running leads: it commits the queue and, if more
// arrived meanwhile, hands the lead to a new goroutine, so its own answer
// waits for one group only.
//
// On MariaDB each booking commits on its own connection: InnoDB already
// groups concurrent commits into one log flush.
func (s *Service) commitGrouped(p *pending) error {
	s.mu.Lock()
	s.queue = append(s.queue, p)
	lead := !s.leading
	s.leading = true
	s.mu.Unlock()
	if lead {
		s.lead()
	}
	return <-p.done
}

// lead commits one group from the queue and passes the lead on.
func (s *Service) lead() {
	s.mu.Lock()
	n := min(len(s.queue), maxGroup)
	group := s.queue[:n:n]
	s.queue = s.queue[n:]
	s.mu.Unlock()
	s.commitGroup(group)
	s.mu.Lock()
	more := len(s.queue) > 0
	s.leading = more
	s.mu.Unlock()
	if more {
		go s.lead()
	}
}

// commitGroup writes a group of bookings in one transaction and tells each
// its outcome.
func (s *Service) commitGroup(group []*pending) {
	// The transaction serves many requests: one caller going away must not
	// roll back the others' bookings.
	ctx := context.Background()
	outcome := make([]error, len(group))
	wrote := false
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		wrote = false
		for i, p := range group {
			refusal, err := s.write(ctx, tx, p)
			if err != nil {
				return err // the whole group fails: its transaction is broken
			}
			outcome[i] = refusal
			wrote = wrote || refusal == nil
		}
		if !wrote {
			return errNothing // nothing to make durable: skip the fsync
		}
		return nil
	})
	if errors.Is(err, errNothing) {
		err = nil
	}
	for i, p := range group {
		if err != nil {
			p.done <- err
		} else {
			p.done <- outcome[i]
		}
	}
	if err == nil && wrote {
		for _, p := range group {
			if p.newSlot {
				s.slots.Store(p.b.SlotID, struct{}{})
			}
		}
		s.afterCommit()
	}
}

var errNothing = errors.New("booking: nothing written")

// nullText stores an empty text as NULL.
func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}
