// Package payments is the one payment service (docs/decisions/0012): every
// payable thing — visit fee, consultation, convenience-clinic order,
// prescription, nursing order and consumables, delivery fee, outpatient bill —
// becomes a payment with up to two legs, an insurance leg (fund + personal
// account) and a cash leg (the online payment channel), a full status history,
// and refunds by the original route.
//
// The money rules it enforces: integer fen; fund + account + cash = total on
// every write (in code and by a CHECK constraint); an idempotency key stored
// before every external call; a notify applied once however often and
// whenever it arrives; an unknown outcome queried until it is final, never
// assumed (the resolver, Run).
package payments

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	stdsync "sync"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
	"ihos/sync"
)

// Service is the payment service. Channel and Insurance are its legs;
// Insurance may be nil on a deployment that only takes self-pay.
type Service struct {
	DB        *sqldb.DB
	Channel   Channel
	Insurance Insurance
	// Capture records replicated rows for the appliance inside a transaction
	// (sync.Replica.Capture with hospital ""); nil without sync.
	Capture func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error
	// AfterCommit runs after a commit that captured something (the link's Kick).
	AfterCommit func()
	Logger      *slog.Logger
	// Now is the clock (tests move it); time.Now when nil.
	Now func() time.Time

	// PayTimeout is how long a payment may stay unpaid before the resolver
	// closes it (default 30 minutes).
	PayTimeout time.Duration
	// QueryAfter is how long after a call the first query waits, giving the
	// notify a chance to arrive first (default 5 s).
	QueryAfter time.Duration
	// QueryMax caps the backoff between queries (default 5 minutes).
	QueryMax time.Duration
	// NotifyWindow is how far a notify's signing time may be from now before
	// it counts as replayed (default 5 minutes; the channel signs each retry
	// afresh).
	NotifyWindow time.Duration
	// PollEvery is how often Run looks for due work (default 1 s).
	PollEvery time.Duration

	kick chan struct{}
	once stdsync.Once
}

func (s *Service) init() {
	s.once.Do(func() {
		s.kick = make(chan struct{}, 1)
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
		if s.PayTimeout <= 0 {
			s.PayTimeout = 30 * time.Minute
		}
		if s.QueryAfter <= 0 {
			s.QueryAfter = 5 * time.Second
		}
		if s.QueryMax <= 0 {
			s.QueryMax = 5 * time.Minute
		}
		if s.NotifyWindow <= 0 {
			s.NotifyWindow = 5 * time.Minute
		}
		if s.PollEvery <= 0 {
			s.PollEvery = time.Second
		}
	})
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (s *Service) capture(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
	if s.Capture == nil || len(refs) == 0 {
		return nil
	}
	return s.Capture(ctx, tx, refs...)
}

func (s *Service) committed() {
	if s.AfterCommit != nil {
		s.AfterCommit()
	}
}

// backoff is the wait before the next query after attempts failed or
// undecided ones: QueryAfter doubling up to QueryMax.
func (s *Service) backoff(attempts int) time.Duration {
	d := s.QueryAfter
	for i := 0; i < attempts && d < s.QueryMax; i++ {
		d *= 2
	}
	return min(d, s.QueryMax)
}

// nextQuery is when to ask about p again after its attempts so far: the
// backoff, but never past the deadline of a payment still meant to complete.
func (s *Service) nextQuery(p *ihos.Payment, now time.Time) time.Time {
	next := now.Add(s.backoff(p.Attempts))
	if p.Ending == "" && next.After(p.Deadline) && now.Before(p.Deadline) {
		next = p.Deadline
	}
	return next
}

// NewPayment describes a payable order.
type NewPayment struct {
	HospitalID   string
	BusinessType string // ihos.PayVisitFee, …
	BusinessID   string
	PatientID    string
	DoctorID     string
	DepartmentID string
	Channel      string // ihos.ChannelSelfPay, …
	Subject      string // what the patient sees on the payment page
	Total        int64  // fen
	// PreSettlement is the split the patient was shown (2206 / 6201
	// pre-settlement) for an insurance payment; nil means all cash.
	PreSettlement *ihos.Split
	// Timeout overrides the service's PayTimeout.
	Timeout time.Duration
}

// Create records a payment for a business. While the business has an active
// payment a second Create returns it; a business already paid is refused.
func (s *Service) Create(ctx context.Context, n NewPayment) (*ihos.Payment, error) {
	s.init()
	if err := validateNew(n); err != nil {
		return nil, err
	}
	now := s.now()
	timeout := s.PayTimeout
	if n.Timeout > 0 {
		timeout = n.Timeout
	}
	split := ihos.Split{Cash: n.Total}
	if n.PreSettlement != nil {
		split = *n.PreSettlement
	}
	p := &ihos.Payment{
		ID: ihos.NewID(), HospitalID: n.HospitalID, BusinessType: n.BusinessType, BusinessID: n.BusinessID,
		PatientID: n.PatientID, DoctorID: n.DoctorID, DepartmentID: n.DepartmentID, Channel: n.Channel,
		Subject: ihos.Truncate(n.Subject, 128), Total: n.Total, FundPay: split.Fund, AccountPay: split.Account, CashPay: split.Cash,
		Status: ihos.PaymentCreated, InsStatus: ihos.LegNone, CashStatus: ihos.LegNone,
		Deadline: now.Add(timeout), CreatedAt: now, UpdatedAt: now, Version: 1,
	}
	p.OutTradeNo = outTradeNo(p.ID)
	if p.HasInsurance() {
		p.InsuranceKey = "INS" + p.OutTradeNo
	}
	var existing *ihos.Payment
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		existing, err = s.activeFor(ctx, tx, n.BusinessType, n.BusinessID)
		if err != nil || existing != nil {
			return err
		}
		if err := s.insertPayment(ctx, tx, p); err != nil {
			return err
		}
		ev, err := s.addEvent(ctx, tx, p, "", "", ReasonCreated, map[string]any{"total": p.Total, "channel": p.Channel, "split": split})
		if err != nil {
			return err
		}
		return s.capture(ctx, tx, sync.Ref{Entity: "payments", ID: p.ID}, sync.Ref{Entity: "payment_events", ID: ev})
	})
	if sqldb.IsUniqueViolation(err) {
		// A concurrent Create for the same business won the race.
		err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			existing, err = s.activeFor(ctx, tx, n.BusinessType, n.BusinessID)
			if err == nil && existing == nil {
				err = ihos.Errorf(ihos.EConflict, "该订单正在支付，请稍后重试")
			}
			return err
		})
	}
	if err != nil {
		return nil, wrap(err)
	}
	if existing != nil {
		return existing, nil
	}
	s.committed()
	return p, nil
}

// activeFor returns the business's active payment, nil if there is none, or
// EConflict when the business is already paid.
func (s *Service) activeFor(ctx context.Context, tx *sql.Tx, businessType, businessID string) (*ihos.Payment, error) {
	// A plain read, not a locking one: on InnoDB a locking read of a missing
	// key takes a gap lock that deadlocks concurrent inserts. The unique
	// business_key decides a race; the loser reads the winner (Create).
	p, err := scanPayment(s.DB.TxQueryRow(ctx, tx, `SELECT `+paymentCols+` FROM payments WHERE business_key = ?`, businessType+":"+businessID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !ihos.PaymentActive(p.Status) {
		return nil, ihos.Errorf(ihos.EConflict, "该订单已支付")
	}
	return p, nil
}

func validateNew(n NewPayment) error {
	f := map[string]string{}
	if _, ok := ihos.BusinessTypeLabels[n.BusinessType]; !ok {
		f["business_type"] = "业务类型无效"
	}
	if n.BusinessID == "" || len(n.BusinessID) > 64 {
		f["business_id"] = "业务单号无效"
	}
	if _, ok := ihos.ChannelLabels[n.Channel]; !ok {
		f["channel"] = "支付方式无效"
	}
	if n.Total <= 0 {
		f["total"] = "金额必须大于 0"
	}
	if len(n.PatientID) > 36 || len(n.DoctorID) > 36 || len(n.DepartmentID) > 36 || len(n.HospitalID) > 36 {
		f["patient_id"] = "编号过长"
	}
	if n.PreSettlement != nil {
		if n.Channel == ihos.ChannelSelfPay && n.PreSettlement.Fund+n.PreSettlement.Account != 0 {
			f["channel"] = "自费支付不能使用医保"
		} else if err := ihos.CheckSplit(n.Total, *n.PreSettlement); err != nil {
			f["total"] = ihos.ErrorMessage(err)
		}
	}
	if len(f) > 0 {
		return ihos.Invalid(f)
	}
	return nil
}

// outTradeNo derives the channel's order number from the payment id: at most
// 32 characters of letters and digits, as WeChat-Pay-like channels require.
func outTradeNo(id string) string { return "P" + strings.ReplaceAll(id, "-", "")[:31] }

// PayRequest starts paying a payment.
type PayRequest struct {
	PayerID string            // the patient's id at the channel (openid)
	Auth    map[string]string // the insurance authorisation (payAuthNo…), for insurance payments
	// Confirm is the split the patient accepts after the insurance settled
	// one that differs from what they were shown; it must equal the
	// payment's current split.
	Confirm *ihos.Split
}

// PayResult is what the client needs next. Payment.Status tells where the
// payment stands: paid (nothing more to do), paying with Prepay set (pay at
// the channel) or paying without it (the outcome is being looked up: poll).
type PayResult struct {
	Payment *ihos.Payment   `json:"payment"`
	Prepay  *ChannelCreated `json:"prepay,omitempty"`
}

// SplitChanged is carried (errors.As) by the EConflict error Pay returns when
// the insurance settled a split other than the one the patient was shown
// (2206 pre-settlement against 2207 settlement): the patient confirms the new
// split (Pay again with Confirm) or cancels.
type SplitChanged struct {
	Before, After ihos.Split
}

func (e *SplitChanged) Error() string {
	return fmt.Sprintf("insurance split changed from %+v to %+v", e.Before, e.After)
}

func splitChangedError(before, after ihos.Split) error {
	return &ihos.Error{Code: ihos.EConflict,
		Message: fmt.Sprintf("医保结算金额有变化：医保基金 %s 元，个人账户 %s 元，自付现金 %s 元，请确认后继续支付",
			ihos.FormatYuan(after.Fund), ihos.FormatYuan(after.Account), ihos.FormatYuan(after.Cash)),
		Fields: map[string]string{
			"fund_pay": fmt.Sprint(after.Fund), "account_pay": fmt.Sprint(after.Account), "cash_pay": fmt.Sprint(after.Cash),
		},
		Err: &SplitChanged{Before: before, After: after}}
}

// Pay runs the payment's legs as far as they go now: the insurance leg first
// (if any), then the cash leg at the channel. It is safe to call again — a
// client that lost the answer, or comes back after confirming a changed split,
// gets the same channel order (the keys are fixed at Create).
func (s *Service) Pay(ctx context.Context, id string, req PayRequest) (*PayResult, error) {
	s.init()
	// Step 1: mark the payment paying; the keys are already stored.
	p, err := s.mutate(ctx, id, func(_ *sql.Tx, p *ihos.Payment) (change, error) {
		switch {
		case p.Status == ihos.PaymentCreated:
			p.Status = ihos.PaymentPaying
			p.NextQueryAt = s.now().Add(s.QueryAfter)
			if req.Confirm != nil && *req.Confirm != p.Split() {
				return change{}, splitChangedError(*req.Confirm, p.Split())
			}
			if !p.HasInsurance() {
				// Self-pay: the cash leg starts in the same transaction
				// (one commit less per order), before the channel is called.
				p.CashStatus = ihos.LegPending
				return change{reason: ReasonPayStarted, detail: map[string]any{"out_trade_no": p.OutTradeNo, "amount": p.CashPay}}, nil
			}
			return change{reason: ReasonPayStarted}, nil
		case p.Status == ihos.PaymentPaying && p.Ending != "":
			return change{}, ihos.Errorf(ihos.EConflict, "该订单正在关闭，不能再支付")
		case p.Status == ihos.PaymentPaying && p.NeedsConfirm && req.Confirm != nil:
			if *req.Confirm != p.Split() {
				return change{}, splitChangedError(*req.Confirm, p.Split())
			}
			p.NeedsConfirm = false
			return change{reason: ReasonSplitConfirmed, detail: p.Split()}, nil
		case p.Status == ihos.PaymentPaying:
			return change{}, errUnchanged
		case p.Status == ihos.PaymentPaid || p.Status == ihos.PaymentPartiallyRefunded || p.Status == ihos.PaymentRefunded:
			return change{}, errUnchanged
		default:
			return change{}, ihos.Errorf(ihos.EConflict, "该订单已%s，不能支付", ihos.PaymentStatusLabel(p.Status))
		}
	})
	if err != nil {
		return nil, wrap(err)
	}
	if p.Status != ihos.PaymentPaying {
		return &PayResult{Payment: p}, nil
	}
	// Step 2: the insurance leg.
	if p.HasInsurance() && (p.InsStatus == ihos.LegNone || p.InsStatus == ihos.LegPending) {
		if s.Insurance == nil {
			return nil, ihos.Errorf(ihos.EUnavailable, "医保支付暂不可用")
		}
		res, callErr := s.Insurance.Settle(ctx, InsuranceOrder{Key: p.InsuranceKey, PaymentID: p.ID, HospitalID: p.HospitalID,
			PatientID: p.PatientID, BusinessType: p.BusinessType, BusinessID: p.BusinessID, Channel: p.Channel, Total: p.Total, Auth: req.Auth})
		p, err = s.recordInsurance(ctx, p.ID, res, callErr)
		if err != nil {
			return &PayResult{Payment: p}, err
		}
	}
	if p.Status != ihos.PaymentPaying || p.Ending != "" {
		return &PayResult{Payment: p}, nil
	}
	if p.HasInsurance() && p.InsStatus != ihos.LegDone {
		return &PayResult{Payment: p}, nil // insurance outcome unknown: the resolver asks again; the client polls
	}
	if p.NeedsConfirm {
		return &PayResult{Payment: p}, splitChangedError(ihos.Split{}, p.Split())
	}
	// Step 3: the cash leg.
	if p.CashPay == 0 || p.CashStatus == ihos.LegDone {
		return &PayResult{Payment: p}, nil
	}
	if p.CashStatus == ihos.LegNone {
		p, err = s.mutate(ctx, p.ID, func(_ *sql.Tx, p *ihos.Payment) (change, error) {
			if p.Status != ihos.PaymentPaying || p.CashStatus != ihos.LegNone || p.Ending != "" {
				return change{}, errUnchanged
			}
			p.CashStatus = ihos.LegPending // before the call: from now on the order may exist
			p.NextQueryAt = s.now().Add(s.QueryAfter)
			return change{reason: ReasonCashCreated, detail: map[string]any{"out_trade_no": p.OutTradeNo, "amount": p.CashPay}}, nil
		})
		if err != nil {
			return nil, wrap(err)
		}
		if p.Status != ihos.PaymentPaying || p.CashStatus != ihos.LegPending || p.Ending != "" {
			return &PayResult{Payment: p}, nil
		}
	}
	created, callErr := s.Channel.Create(ctx, ChannelOrder{OutTradeNo: p.OutTradeNo, Amount: p.CashPay, Description: p.Subject,
		PayerID: req.PayerID, ExpireAt: p.Deadline, Attach: p.ID})
	if callErr != nil {
		// The order may or may not exist at the channel: the resolver finds out.
		s.Logger.WarnContext(ctx, "payments: channel create unknown", "payment", p.ID, "err", callErr)
		p, err = s.mutate(ctx, p.ID, func(_ *sql.Tx, p *ihos.Payment) (change, error) {
			if p.Status != ihos.PaymentPaying {
				return change{}, errUnchanged
			}
			p.LastError = callErr.Error()
			return change{reason: ReasonCashUnknown, detail: map[string]string{"error": ihos.Truncate(callErr.Error(), 200)}}, nil
		})
		if err != nil {
			return nil, wrap(err)
		}
		return &PayResult{Payment: p}, ihos.Errorf(ihos.EUnavailable, "支付渠道暂时无法确认下单结果，请稍后在订单中查看")
	}
	// A notify may have arrived before Create returned.
	if fresh, err := s.Get(ctx, p.ID); err == nil {
		p = fresh
	}
	return &PayResult{Payment: p, Prepay: &created}, nil
}

// recordInsurance records the outcome of a Settle or Query of the insurance
// leg. callErr (unknown) and a pending result leave the leg pending for the
// resolver.
func (s *Service) recordInsurance(ctx context.Context, id string, res InsuranceResult, callErr error) (*ihos.Payment, error) {
	return s.mutate(ctx, id, func(_ *sql.Tx, p *ihos.Payment) (change, error) {
		return s.decideInsurance(p, res, callErr)
	})
}

// decideInsurance applies an insurance answer to p in memory.
func (s *Service) decideInsurance(p *ihos.Payment, res InsuranceResult, callErr error) (change, error) {
	if p.Status != ihos.PaymentPaying || p.InsStatus == ihos.LegDone || p.InsStatus == ihos.LegFailed || p.InsStatus == ihos.LegReversed {
		return change{}, errUnchanged // decided already (a notify or the resolver got there first)
	}
	now := s.now()
	if callErr != nil || res.State == InsPending || res.State == InsNotFound || res.State == "" {
		msg := res.Message
		if callErr != nil {
			msg = callErr.Error()
		}
		first := p.InsStatus == ihos.LegNone
		p.InsStatus = ihos.LegPending
		p.LastError = msg
		if !first {
			p.Attempts++
		}
		p.NextQueryAt = s.nextQuery(p, now)
		if !first {
			return change{}, errUnchangedButSave
		}
		return change{reason: ReasonInsurancePending, detail: map[string]string{"message": ihos.Truncate(msg, 200)}}, nil
	}
	switch res.State {
	case InsSettled:
		if err := ihos.CheckSplit(p.Total, res.Split); err != nil {
			// The centre answered a split that does not add up: never
			// take it; reverse the leg.
			p.InsStatus = ihos.LegDone
			p.Ending = ihos.PaymentFailed
			p.LastError = "医保结算金额不平：" + ihos.ErrorMessage(err)
			p.NextQueryAt = now
			return change{reason: ReasonAmountMismatch, detail: res.Split}, nil
		}
		before := p.Split()
		p.InsStatus = ihos.LegDone
		p.FundPay, p.AccountPay, p.CashPay = res.Split.Fund, res.Split.Account, res.Split.Cash
		p.LastError = ""
		p.Attempts = 0
		if res.Split != before {
			p.NeedsConfirm = true
			p.NextQueryAt = p.Deadline // nothing to ask anyone until the patient decides or time runs out
			return change{reason: ReasonSplitChanged, detail: map[string]any{"before": before, "after": res.Split, "settlement_id": res.SettlementID}}, nil
		}
		if p.CashPay == 0 {
			p.Status = ihos.PaymentPaid
			p.PaidAt = now
		} else {
			p.NextQueryAt = p.Deadline
		}
		return change{reason: ReasonInsuranceSettled, detail: map[string]any{"split": res.Split, "settlement_id": res.SettlementID}}, nil
	case InsFailed, InsReversed:
		p.InsStatus = ihos.LegFailed
		p.Status = ihos.PaymentFailed
		p.LastError = res.Message
		return change{reason: ReasonInsuranceFailed, detail: map[string]string{"message": ihos.Truncate(res.Message, 200)}}, nil
	}
	return change{}, ihos.Internal(fmt.Errorf("payments: unknown insurance state %q", res.State))
}

// applyInsuranceResult applies an insurance answer to the locked p inside tx
// and reports whether it changed anything.
func (s *Service) applyInsuranceResult(ctx context.Context, tx *sql.Tx, p *ihos.Payment, res InsuranceResult, source string) (bool, error) {
	from := p.Status
	c, err := s.decideInsurance(p, res, nil)
	if errors.Is(err, errUnchanged) || errors.Is(err, errUnchangedButSave) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if m, ok := c.detail.(map[string]any); ok {
		m["source"] = source
	}
	return true, s.commitChange(ctx, tx, p, from, "", c)
}

// errUnchangedButSave: the row changes (backoff) but the history does not
// need another identical "still pending" entry.
var errUnchangedButSave = errors.New("payments: save without event")

// CancelRequest is a patient (or staff) giving up on an unpaid payment.
type CancelRequest struct {
	Reason string
}

// Cancel gives up on a payment that is not paid: the cash order is closed at
// the channel (and queried, in case it was paid meanwhile: then the payment is
// paid and Cancel says so) and a settled insurance leg reversed. When a call's
// outcome is unknown the payment stays paying with Ending "cancelled" and the
// resolver finishes the job.
func (s *Service) Cancel(ctx context.Context, id string, req CancelRequest) (*ihos.Payment, error) {
	s.init()
	p, err := s.mutate(ctx, id, func(tx *sql.Tx, p *ihos.Payment) (change, error) {
		switch p.Status {
		case ihos.PaymentCreated:
			p.Status = ihos.PaymentCancelled
		case ihos.PaymentPaying:
			if p.Ending != "" {
				return change{}, errUnchanged
			}
			p.Ending = ihos.PaymentCancelled
			p.NextQueryAt = s.now()
		case ihos.PaymentCancelled:
			return change{}, errUnchanged
		default:
			if p.Status == ihos.PaymentPaid || p.Status == ihos.PaymentPartiallyRefunded || p.Status == ihos.PaymentRefunded {
				return change{}, ihos.Errorf(ihos.EConflict, "该订单已支付，不能取消，请申请退款")
			}
			return change{}, ihos.Errorf(ihos.EConflict, "该订单已%s", ihos.PaymentStatusLabel(p.Status))
		}
		err := audit.Append(ctx, s.DB, tx, audit.Entry{Action: "cancel", Resource: "payments", RecordID: p.ID,
			Summary: fmt.Sprintf("取消支付订单（%s %s，%s 元）%s", ihos.BusinessTypeLabels[p.BusinessType], p.BusinessID, ihos.FormatYuan(p.Total), reasonSuffix(req.Reason))})
		return change{reason: ReasonCancelRequested, detail: map[string]string{"reason": ihos.Truncate(req.Reason, 200)}}, err
	})
	if err != nil {
		return nil, wrap(err)
	}
	if p.Status == ihos.PaymentPaying && p.Ending != "" {
		p, err = s.windDown(ctx, p)
		if err != nil {
			return p, err
		}
	}
	if p.Status == ihos.PaymentPaid {
		return p, ihos.Errorf(ihos.EConflict, "该订单已支付，不能取消，请申请退款")
	}
	return p, nil
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return "：" + ihos.Truncate(r, 200)
}

// wrap turns unexpected errors into internal ones, keeping application errors.
func wrap(err error) error {
	var e *ihos.Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	return ihos.Internal(err)
}
