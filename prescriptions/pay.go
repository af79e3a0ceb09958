package prescriptions

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"ihos"
	"ihos/internal/worker"
	"ihos/payments"
)

// Payments is what prescriptions need of the payment service
// (*payments.Service).
type Payments interface {
	Create(ctx context.Context, n payments.NewPayment) (*ihos.Payment, error)
	Pay(ctx context.Context, id string, req payments.PayRequest) (*payments.PayResult, error)
}

// PayTimeout is how long a prescription's payment order stays open at the
// channel.
const PayTimeout = 30 * time.Minute

// Pay creates the payment of an approved prescription, or finds the one
// under way, and starts it at the channel: a JSAPI order for payerID (the
// patient's openid), a Native one (QR code) without. The amount is the
// approved price (Payable), never a client's. Only an approved prescription
// can be paid: the pharmacist's review comes first (DESIGN.md §7).
func (s *Service) Pay(ctx context.Context, id, payerID string) (*payments.PayResult, error) {
	if s.Payments == nil {
		return nil, ihos.Errorf(ihos.EUnavailable, "尚未配置在线支付渠道")
	}
	amount, err := s.Payable(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if amount <= 0 {
		return nil, ihos.Errorf(ihos.EConflict, "处方金额为零，无需支付")
	}
	pay, err := s.Payments.Create(ctx, payments.NewPayment{HospitalID: p.HospitalID, BusinessType: ihos.PayPrescription, BusinessID: p.ID,
		PatientID: p.PatientID, DoctorID: p.DoctorID, DepartmentID: p.DepartmentID, Channel: ihos.ChannelSelfPay,
		Subject: ihos.Truncate("处方药品费 "+p.Diagnosis, 40), Total: amount, Timeout: PayTimeout})
	if err != nil {
		if ihos.ErrorCode(err) == ihos.EConflict {
			s.Kick() // most likely paid a moment ago: let the worker record it
		}
		return nil, err
	}
	return s.Payments.Pay(ctx, pay.ID, payments.PayRequest{PayerID: payerID})
}

// Kick makes Run look for work now (after a payment changed).
func (s *Service) Kick() { worker.Kick(s.kickCh()) }

func (s *Service) kickCh() chan struct{} {
	s.kickOnce.Do(func() { s.kick = make(chan struct{}, 1) })
	return s.kick
}

// Run follows paid prescriptions until ctx ends: the payment service has no
// hook into prescriptions, so the worker polls (every Interval, default 2 s)
// and is kicked after every payment commit. An approved prescription whose
// payment is paid is marked paid; a paid one is sent to the HIS until the
// appliance acknowledges (the order's key makes every retry safe). Every
// step reads its work from the database, so a restarted worker, or two
// cloud processes, pick up where anything stopped.
func (s *Service) Run(ctx context.Context) {
	every := s.Interval
	if every <= 0 {
		every = 2 * time.Second
	}
	ctx = ihos.WithActor(ctx, ihos.System) // the audit records the worker's steps as the system's
	worker.Loop(ctx, every, s.kickCh(), s.log(), "prescriptions: follow-up pass", func(ctx context.Context) error {
		_, err := s.Process(ctx)
		return err
	})
}

func (s *Service) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// followWindow bounds how far back (by the last change) a pass looks.
const followWindow = 30 * 24 * time.Hour

// Process makes one pass and returns how many prescriptions it moved on:
//  1. approved prescriptions with a paid payment are marked paid;
//  2. paid prescriptions are sent to the HIS (with HIS set).
func (s *Service) Process(ctx context.Context) (int, error) {
	since := ihos.FormatTime(s.now().Add(-followWindow))
	n := 0
	var firstErr error
	keep := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT r.id, p.id FROM prescriptions r JOIN payments p ON p.business_type = ? AND p.business_id = r.id AND p.status = ?
		WHERE r.status = ? AND r.updated_at >= ? AND r.deleted_at IS NULL ORDER BY r.updated_at LIMIT 100`,
		ihos.PayPrescription, ihos.PaymentPaid, StatusApproved, since)
	if err != nil {
		return 0, ihos.Internal(err)
	}
	var paid [][2]string
	for rows.Next() {
		var r [2]string
		if err := rows.Scan(&r[0], &r[1]); err != nil {
			rows.Close()
			return 0, ihos.Internal(err)
		}
		paid = append(paid, r)
	}
	rows.Close()
	for _, r := range paid {
		if _, err := s.MarkPaid(ctx, "system", r[0], r[1]); err != nil && ihos.ErrorCode(err) != ihos.EConflict {
			keep(fmt.Errorf("prescription %s: %w", r[0], err))
			continue
		}
		n++
	}
	if s.HIS == nil {
		return n, firstErr
	}
	unsent, err := s.list(ctx, `WHERE status = ? AND updated_at >= ? AND deleted_at IS NULL ORDER BY updated_at LIMIT 100`, StatusPaid, since)
	if err != nil {
		return n, err
	}
	for _, p := range unsent {
		if _, err := s.SendToHIS(ctx, "system", p.ID); err != nil {
			keep(fmt.Errorf("prescription %s: %w", p.ID, err))
			continue
		}
		n++
	}
	return n, firstErr
}
