package booking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"ihos"
	"ihos/internal/worker"
	"ihos/payments"
	"ihos/visits"
)

// PayWindow is how long a booking that has a fee may wait for its payment:
// after it the booking expires, its unit returns to the slot and its open
// payment is cancelled. The payment is created with the time left of it as
// its own timeout, so the channel closes the order at the same moment.
const PayWindow = 15 * time.Minute

// Payments is what booking needs of the payment service
// (*payments.Service).
type Payments interface {
	Create(ctx context.Context, n payments.NewPayment) (*ihos.Payment, error)
	Pay(ctx context.Context, id string, req payments.PayRequest) (*payments.PayResult, error)
	Cancel(ctx context.Context, id string, req payments.CancelRequest) (*ihos.Payment, error)
	Refund(ctx context.Context, paymentID string, req payments.RefundRequest) (*ihos.Refund, error)
}

// Visits is what booking needs of the visit service (*visits.Service).
type Visits interface {
	Open(ctx context.Context, spec visits.VisitSpec) (*visits.Visit, error)
	Cancel(ctx context.Context, by visits.Party, id, reason string) (*visits.Visit, error)
	ByBooking(ctx context.Context, bookingID string) (*visits.Visit, error)
}

// Messages of paying and cancelling.
const (
	msgNoPayChannel = "尚未配置在线支付渠道"
	msgPayCancelled = "该预约已取消，不能支付"
	msgPayFree      = "该预约无需支付"
	msgPayPaid      = "该预约已支付"
	msgPayExpired   = "该预约已超过支付时限，请重新预约"
	msgAccepted     = "医生已接诊，不能取消"
	reasonExpired   = "超时未支付"
)

// Pay creates the booking's consultation payment, or finds the one under
// way, and starts it at the channel: a JSAPI order for payerID (the
// patient's openid), a Native one (QR code) without. The amount is the fee
// the booking took from the consultation settings when it was made — never
// what a client says.
func (s *Service) Pay(ctx context.Context, id, payerID string) (*payments.PayResult, error) {
	if s.Payments == nil {
		return nil, ihos.Errorf(ihos.EUnavailable, msgNoPayChannel)
	}
	b, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	switch {
	case b.Status == StatusCancelled:
		return nil, ihos.Errorf(ihos.EConflict, msgPayCancelled)
	case b.Fee == 0:
		return nil, ihos.Errorf(ihos.EConflict, msgPayFree)
	case b.Status == StatusBooked:
		return nil, ihos.Errorf(ihos.EConflict, msgPayPaid)
	}
	left := b.CreatedAt.Add(PayWindow).Sub(s.now())
	if left < time.Second {
		return nil, ihos.Errorf(ihos.EConflict, msgPayExpired)
	}
	p, err := s.Payments.Create(ctx, payments.NewPayment{HospitalID: b.HospitalID, BusinessType: ihos.PayConsultation, BusinessID: b.ID,
		PatientID: b.PatientID, DoctorID: b.StaffID, DepartmentID: b.DepartmentID, Channel: ihos.ChannelSelfPay,
		Subject: b.VisitTypeLabel + " " + slotLabel(span{b.StartAt, b.EndAt}), Total: b.Fee, Timeout: left})
	if err != nil {
		var e *ihos.Error
		if errors.As(err, &e) && e.Code == ihos.EConflict {
			s.Kick() // most likely paid a moment ago: let the worker book it
		}
		return nil, err
	}
	return s.Payments.Pay(ctx, p.ID, payments.PayRequest{PayerID: payerID})
}

// settle finishes what a cancelled booking leaves behind: its waiting visit
// is cancelled, a payment still open is cancelled and a paid one refunded in
// full by its original route. Each step is idempotent (the refund's request
// key comes from the booking), so the worker may repeat it.
func (s *Service) settle(ctx context.Context, b *Booking) error {
	if err := s.cancelVisit(ctx, b.ID, "预约已取消"); err != nil && !isRefusal(err) {
		return err
	}
	if s.Payments == nil {
		return nil
	}
	pays, err := s.paymentsOf(ctx, b.ID)
	if err != nil {
		return err
	}
	var firstErr error
	for _, p := range pays {
		status := p.status
		if status == ihos.PaymentCreated || (status == ihos.PaymentPaying && p.ending == "") {
			got, err := s.Payments.Cancel(ctx, p.id, payments.CancelRequest{Reason: "预约已取消"})
			if got != nil {
				status = got.Status
			}
			if err != nil && status != ihos.PaymentPaid {
				firstErr = cmpErr(firstErr, err)
				continue
			}
		}
		if status == ihos.PaymentPaid && !p.refunded {
			_, err := s.Payments.Refund(ctx, p.id, payments.RefundRequest{Amount: p.total, Reason: "患者取消预约，全额退款",
				RequestKey: refundKey(b.ID)})
			firstErr = cmpErr(firstErr, err)
		}
	}
	return firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// refundKey is the request key of a cancelled booking's refund: one refund
// per payment, however often it is asked for.
func refundKey(bookingID string) string { return "booking-cancel:" + bookingID }

// isRefusal reports whether err is an application refusal (as opposed to a
// failure to reach the database).
func isRefusal(err error) bool {
	var e *ihos.Error
	return errors.As(err, &e) && e.Code != ihos.EInternal && e.Code != ihos.EUnavailable
}

type bookingPayment struct {
	id, status, ending string
	total              int64
	refunded           bool // a refund exists for it
}

// paymentsOf lists the consultation payments of a booking.
func (s *Service) paymentsOf(ctx context.Context, bookingID string) ([]bookingPayment, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT p.id, p.status, p.ending, p.total,
		CASE WHEN EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = p.id) THEN 1 ELSE 0 END
		FROM payments p WHERE p.business_type = ? AND p.business_id = ? AND p.deleted_at IS NULL ORDER BY p.created_at`, ihos.PayConsultation, bookingID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []bookingPayment
	for rows.Next() {
		var p bookingPayment
		var refunded int
		if err := rows.Scan(&p.id, &p.status, &p.ending, &p.total, &refunded); err != nil {
			return nil, err
		}
		p.refunded = refunded != 0
		out = append(out, p)
	}
	return out, rows.Err()
}

// visitOf returns the id and status of a booking's visit ("" if none).
func (s *Service) visitOf(ctx context.Context, bookingID string) (id, status string, err error) {
	if s.Visits == nil {
		return "", "", nil
	}
	v, err := s.Visits.ByBooking(ctx, bookingID)
	if ihos.ErrorCode(err) == ihos.ENotFound {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	return v.ID, v.Status, nil
}

// cancelVisit cancels the booking's visit while it waits; a visit the doctor
// accepted (or ended) refuses, a cancelled or missing one is fine.
func (s *Service) cancelVisit(ctx context.Context, bookingID, reason string) error {
	if s.Visits == nil {
		return nil
	}
	id, status, err := s.visitOf(ctx, bookingID)
	if err != nil || id == "" {
		return err
	}
	if status == visits.StatusWaiting {
		_, err := s.Visits.Cancel(ctx, visits.System, id, reason)
		if err == nil {
			return nil
		}
		// Moved meanwhile (the doctor accepted it)? Decide on what it is now.
		var err2 error
		if _, status, err2 = s.visitOf(ctx, bookingID); err2 != nil {
			return err2
		}
		if status == visits.StatusWaiting {
			return err
		}
	}
	switch status {
	case visits.StatusInProgress, visits.StatusEnded:
		return ihos.Errorf(ihos.EConflict, msgAccepted)
	}
	return nil
}

// openVisit opens the visit of a booked booking (idempotent: the visit
// service opens one visit per booking).
func (s *Service) openVisit(ctx context.Context, b *Booking) error {
	if s.Visits == nil {
		return nil
	}
	v, err := s.Visits.Open(ctx, visits.VisitSpec{HospitalID: b.HospitalID, BookingID: b.ID, PatientID: b.PatientID,
		DoctorID: b.StaffID, DepartmentID: b.DepartmentID, Type: b.VisitType, BookedAt: b.CreatedAt,
		FirstMessage: FirstMessage(b)})
	if err == nil {
		b.VisitID = v.ID
	}
	return err
}

// markPaid opens the visit of an awaiting booking whose payment is paid and
// then books it, so a booked booking always shows its visit. A booking
// cancelled meanwhile stays cancelled, and settle cancels the visit just
// opened and refunds the payment.
func (s *Service) markPaid(ctx context.Context, id string) error {
	b, err := s.Get(ctx, id)
	if err != nil || b.Status != StatusAwaitingPayment {
		return err
	}
	if err := s.openVisit(ctx, b); err != nil {
		return err
	}
	now := ihos.FormatTime(s.now())
	changed := false
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := s.DB.TxExec(ctx, tx, `UPDATE bookings SET status = ?, version = version + 1, updated_at = ? WHERE id = ? AND status = ?`,
			StatusBooked, now, id, StatusAwaitingPayment)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		changed = true
		return s.capture(ctx, tx, id)
	})
	if err != nil {
		return err
	}
	if changed {
		s.afterCommit()
		return nil
	}
	if b, err = s.Get(ctx, id); err != nil || b.Status != StatusCancelled {
		return err
	}
	return s.settle(ctx, b)
}

// expire cancels an awaiting booking past its PayWindow: its open payment
// is cancelled first; if that finds it paid, the booking is booked instead.
// A payment whose cancellation is still being confirmed does not hold the
// unit: should it turn out paid, settle refunds it.
func (s *Service) expire(ctx context.Context, b *Booking) error {
	if s.Payments != nil {
		pays, err := s.paymentsOf(ctx, b.ID)
		if err != nil {
			return err
		}
		for _, p := range pays {
			status := p.status
			if status == ihos.PaymentCreated || (status == ihos.PaymentPaying && p.ending == "") {
				got, err := s.Payments.Cancel(ctx, p.id, payments.CancelRequest{Reason: "预约" + reasonExpired})
				if got != nil {
					status = got.Status
				}
				if err != nil && status != ihos.PaymentPaid {
					return err
				}
			}
			if status == ihos.PaymentPaid {
				return s.markPaid(ctx, b.ID)
			}
		}
	}
	_, err := s.cancel(ctx, b, reasonExpired)
	return err
}

// Kick makes Run look for work now (after a payment changed).
func (s *Service) Kick() { worker.Kick(s.kickCh()) }

func (s *Service) kickCh() chan struct{} {
	s.kickOnce.Do(func() { s.kick = make(chan struct{}, 1) })
	return s.kick
}

func (s *Service) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Run follows bookings and their payments until ctx ends: payments are
// notified to the payment service, which has no hook into bookings, so the
// worker polls (every Interval, default 1 s) and is kicked after every
// payment commit. Every step is idempotent and reads its work from the
// database, so a restarted worker, or two cloud processes, pick up where
// anything stopped.
func (s *Service) Run(ctx context.Context) {
	every := s.Interval
	if every <= 0 {
		every = time.Second
	}
	worker.Loop(ctx, every, s.kickCh(), s.log(), "booking: follow-up pass", func(ctx context.Context) error {
		_, err := s.Process(ctx)
		return err
	})
}

// followWindow is how far back (by a booking's last change) a pass looks:
// the steps of a booking follow within seconds of its change; the window
// only bounds the scan.
const followWindow = 7 * 24 * time.Hour

// passLimit bounds the bookings one step of a pass takes.
const passLimit = 100

// Process makes one pass and returns how many bookings it moved on:
//  1. awaiting bookings whose payment is paid are booked, and their visit
//     opened;
//  2. booked bookings without a visit get it (a crash between the two, or
//     a free booking whose visit failed to open at booking time);
//  3. awaiting bookings past PayWindow expire;
//  4. cancelled bookings with a waiting visit, an open payment or an
//     unrefunded paid one are settled.
func (s *Service) Process(ctx context.Context) (int, error) {
	now := s.now()
	since := ihos.FormatTime(now.Add(-followWindow))
	n := 0
	var firstErr error
	step := func(query string, args []any, fn func(*Booking) error) {
		list, err := s.list(ctx, query, args...)
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			return
		}
		for _, b := range list {
			if err := fn(b); err != nil {
				firstErr = cmpErr(firstErr, fmt.Errorf("booking %s: %w", b.ID, err))
				continue
			}
			n++
		}
	}
	if s.Payments != nil {
		step(`SELECT `+bookingCols+` FROM bookings b WHERE b.status = ? AND b.updated_at >= ? AND b.deleted_at IS NULL
			AND EXISTS (SELECT 1 FROM payments p WHERE p.business_type = ? AND p.business_id = b.id AND p.status = ?)`,
			[]any{StatusAwaitingPayment, since, ihos.PayConsultation, ihos.PaymentPaid},
			func(b *Booking) error { return s.markPaid(ctx, b.ID) })
	}
	if s.Visits != nil {
		step(`SELECT `+bookingCols+` FROM bookings b WHERE b.status = ? AND b.updated_at >= ? AND b.deleted_at IS NULL
			AND NOT EXISTS (SELECT 1 FROM visits v WHERE v.booking_id = b.id)`,
			[]any{StatusBooked, since}, func(b *Booking) error { return s.openVisit(ctx, b) })
	}
	step(`SELECT `+bookingCols+` FROM bookings b WHERE b.status = ? AND b.created_at < ? AND b.deleted_at IS NULL`,
		[]any{StatusAwaitingPayment, ihos.FormatTime(now.Add(-PayWindow))}, func(b *Booking) error { return s.expire(ctx, b) })
	if s.Payments != nil || s.Visits != nil {
		step(`SELECT `+bookingCols+` FROM bookings b WHERE b.status = ? AND b.updated_at >= ? AND b.deleted_at IS NULL
			AND (EXISTS (SELECT 1 FROM visits v WHERE v.booking_id = b.id AND v.status = ?)
			  OR EXISTS (SELECT 1 FROM payments p WHERE p.business_type = ? AND p.business_id = b.id
			    AND (p.status = ? OR (p.status = ? AND p.ending = '')
			      OR (p.status = ? AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = p.id)))))`,
			[]any{StatusCancelled, since, visits.StatusWaiting, ihos.PayConsultation, ihos.PaymentCreated, ihos.PaymentPaying, ihos.PaymentPaid},
			func(b *Booking) error { return s.settle(ctx, b) })
	}
	return n, firstErr
}

func (s *Service) list(ctx context.Context, query string, args ...any) ([]*Booking, error) {
	rows, err := s.DB.QueryContext(ctx, query+` ORDER BY b.updated_at LIMIT `+fmt.Sprint(passLimit), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Booking
	for rows.Next() {
		b, err := scanBooking(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
