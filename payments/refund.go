package payments

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"ihos"
	"ihos/internal/audit"
	"ihos/sync"
)

// RefundRequest asks for money back on a paid payment.
type RefundRequest struct {
	Amount int64 // fen; the whole remainder for a full refund
	Reason string
	// RequestKey makes the request idempotent: the same key on the same
	// payment returns the refund it made the first time.
	RequestKey string
}

// Refund returns money by the payment's original route (fund and account
// through the insurance centre, cash through the channel; the split rule is
// ihos.RefundSplit) and never more than was paid: the refund is reserved on the
// payment (refunding) in the transaction that creates it, under the payment's
// lock. The legs are then called; an unknown or failed outcome leaves the
// refund to the resolver, which queries or re-submits it with the same key.
func (s *Service) Refund(ctx context.Context, paymentID string, req RefundRequest) (*ihos.Refund, error) {
	s.init()
	if len(req.RequestKey) > 64 || len(req.Reason) > 600 {
		return nil, ihos.Invalid(map[string]string{"reason": "退款原因或请求编号过长"})
	}
	var r *ihos.Refund
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		p, err := s.loadPayment(ctx, tx, paymentID)
		if err != nil {
			return err
		}
		if req.RequestKey != "" {
			r, err = scanRefund(s.DB.TxQueryRow(ctx, tx, `SELECT `+refundCols+` FROM refunds WHERE payment_id = ? AND request_key = ?`, paymentID, req.RequestKey))
			if err == nil {
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			r = nil
		}
		if p.Status != ihos.PaymentPaid && p.Status != ihos.PaymentPartiallyRefunded {
			return ihos.Errorf(ihos.EConflict, "订单%s，不能退款", ihos.PaymentStatusLabel(p.Status))
		}
		var cashTaken int64
		if err := s.DB.TxQueryRow(ctx, tx, `SELECT COALESCE(SUM(cash_part), 0) FROM refunds WHERE payment_id = ?`, paymentID).Scan(&cashTaken); err != nil {
			return err
		}
		split, err := ihos.RefundSplit(p, cashTaken, req.Amount)
		if err != nil {
			return err
		}
		now := s.now()
		r = &ihos.Refund{ID: ihos.NewID(), HospitalID: p.HospitalID, PaymentID: p.ID, RequestKey: req.RequestKey,
			Amount: req.Amount, FundPart: split.Fund, AccountPart: split.Account, CashPart: split.Cash,
			Status: ihos.RefundPending, InsStatus: ihos.LegNone, CashStatus: ihos.LegNone, Reason: req.Reason,
			CreatedAt: now, UpdatedAt: now}
		r.OutRefundNo = "R" + outTradeNo(r.ID)[1:]
		if split.Fund+split.Account > 0 {
			r.InsStatus = ihos.LegPending
		}
		if split.Cash > 0 {
			r.CashStatus = ihos.LegPending
		}
		if a, ok := ihos.ActorFrom(ctx); ok {
			r.CreatedBy = a.Username
		}
		var key any
		if req.RequestKey != "" {
			key = req.RequestKey
		}
		if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO refunds (id, hospital_id, payment_id, out_refund_no, request_key, amount, fund_part, account_part, cash_part,
			status, ins_status, cash_status, reason, attempts, next_query_at, last_error, created_by, version, created_at, done_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, '', ?, 1, ?, NULL, ?)`,
			r.ID, r.HospitalID, r.PaymentID, r.OutRefundNo, key, r.Amount, r.FundPart, r.AccountPart, r.CashPart,
			r.Status, r.InsStatus, r.CashStatus, ihos.Truncate(r.Reason, 200), ihos.FormatTime(now.Add(s.QueryAfter)), ihos.Truncate(r.CreatedBy, 64),
			ihos.FormatTime(now), ihos.FormatTime(now)); err != nil {
			return err
		}
		from := p.Status
		p.Refunding += r.Amount
		if err := audit.Append(ctx, s.DB, tx, audit.Entry{Action: "refund", Resource: "payments", RecordID: p.ID,
			Summary: fmt.Sprintf("申请退款 %s 元（医保基金 %s，个人账户 %s，现金 %s）%s", ihos.FormatYuan(r.Amount),
				ihos.FormatYuan(r.FundPart), ihos.FormatYuan(r.AccountPart), ihos.FormatYuan(r.CashPart), reasonSuffix(req.Reason))}); err != nil {
			return err
		}
		return s.commitChange(ctx, tx, p, from, r.ID, change{reason: ReasonRefundRequested,
			detail: map[string]any{"refund_id": r.ID, "amount": r.Amount, "split": split, "reason": ihos.Truncate(req.Reason, 200)}})
	})
	if err != nil {
		return nil, wrap(err)
	}
	s.committed()
	if r.Status == ihos.RefundSucceeded {
		return r, nil
	}
	return s.driveRefund(ctx, r.ID)
}

// loadRefund reads and locks a refund inside tx.
func (s *Service) loadRefund(ctx context.Context, tx *sql.Tx, id string) (*ihos.Refund, error) {
	r, err := scanRefund(s.DB.TxQueryRow(ctx, tx, `SELECT `+refundCols+` FROM refunds WHERE id = ?`+s.DB.ForUpdate(), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ihos.Errorf(ihos.ENotFound, "退款单不存在")
	}
	return r, err
}

// RefundByID returns a refund.
func (s *Service) RefundByID(ctx context.Context, id string) (*ihos.Refund, error) {
	r, err := scanRefund(s.DB.QueryRowContext(ctx, `SELECT `+refundCols+` FROM refunds WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ihos.Errorf(ihos.ENotFound, "退款单不存在")
	}
	return r, wrap(err)
}

// legOutcome is what one call said about a refund leg.
type legOutcome struct {
	state string // LegResultPending, LegResultSucceeded, LegResultFailed; "" = unknown (err)
	err   error
	msg   string
}

// driveRefund moves a pending or failed refund on: a pending leg is asked
// again (the first time, submitted), a failed leg is re-submitted with the
// same key. The outcome is recorded on the refund and, when it succeeds, on
// the payment.
func (s *Service) driveRefund(ctx context.Context, id string) (*ihos.Refund, error) {
	r, err := s.RefundByID(ctx, id)
	if err != nil || r.Status == ihos.RefundSucceeded {
		return r, err
	}
	p, err := s.Get(ctx, r.PaymentID)
	if err != nil {
		return nil, err
	}
	var ins, cash *legOutcome
	if r.InsStatus == ihos.LegPending || r.InsStatus == ihos.LegFailed {
		ins = &legOutcome{}
		if s.Insurance == nil {
			ins.err = errors.New("insurance unavailable")
		} else {
			var res InsuranceResult
			if r.InsStatus == ihos.LegPending && r.Attempts > 0 {
				res, ins.err = s.Insurance.Query(ctx, r.OutRefundNo)
			}
			if r.InsStatus == ihos.LegFailed || r.Attempts == 0 || (ins.err == nil && res.State == InsNotFound) {
				// First submission, a re-submission after a failure, or the
				// first one never arrived: submit with the same key.
				res, ins.err = s.Insurance.Refund(ctx, InsuranceRefund{Key: r.OutRefundNo, PaymentKey: p.InsuranceKey,
					Fund: r.FundPart, Account: r.AccountPart, Total: p.Total, Reason: r.Reason})
			}
			ins.msg = res.Message
			switch res.State {
			case InsRefunded, InsReversed:
				ins.state = LegResultSucceeded
			case InsFailed:
				ins.state = LegResultFailed
			case InsPending:
				ins.state = LegResultPending
			}
		}
	}
	if r.CashStatus == ihos.LegPending || r.CashStatus == ihos.LegFailed {
		cash = &legOutcome{}
		var st RefundState
		if r.CashStatus == ihos.LegPending && r.Attempts > 0 {
			st, cash.err = s.Channel.QueryRefund(ctx, r.OutRefundNo)
		}
		if r.CashStatus == ihos.LegFailed || r.Attempts == 0 || (cash.err == nil && st.State == RefundNotFound) {
			st, cash.err = s.Channel.Refund(ctx, ChannelRefund{OutTradeNo: p.OutTradeNo, OutRefundNo: r.OutRefundNo,
				Amount: r.CashPart, Total: p.CashPay, Reason: r.Reason})
		}
		cash.state, cash.msg = st.State, st.Message
	}
	return s.recordRefund(ctx, r.ID, ins, cash, "call")
}

// recordRefund applies leg outcomes to a refund (nil: not asked) and settles
// the payment's amounts when the refund is complete.
func (s *Service) recordRefund(ctx context.Context, id string, ins, cash *legOutcome, source string) (*ihos.Refund, error) {
	var out *ihos.Refund
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.applyRefundOutcome(ctx, tx, id, ins, cash, source)
		return err
	})
	if err != nil {
		return nil, wrap(err)
	}
	s.committed()
	return out, nil
}

// applyRefundOutcome is recordRefund inside tx.
func (s *Service) applyRefundOutcome(ctx context.Context, tx *sql.Tx, id string, ins, cash *legOutcome, source string) (*ihos.Refund, error) {
	var out *ihos.Refund
	err := func() error {
		// Lock order: the payment, then the refund.
		var paymentID string
		if err := s.DB.TxQueryRow(ctx, tx, `SELECT payment_id FROM refunds WHERE id = ?`, id).Scan(&paymentID); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ihos.Errorf(ihos.ENotFound, "退款单不存在")
			}
			return err
		}
		p, err := s.loadPayment(ctx, tx, paymentID)
		if err != nil {
			return err
		}
		r, err := s.loadRefund(ctx, tx, id)
		if err != nil {
			return err
		}
		out = r
		if r.Status == ihos.RefundSucceeded {
			return nil
		}
		now := s.now()
		var msgs []string
		apply := func(leg *string, o *legOutcome) {
			if o == nil || (*leg != ihos.LegPending && *leg != ihos.LegFailed) {
				return
			}
			switch {
			case o.err != nil:
				msgs = append(msgs, o.err.Error())
				if *leg == ihos.LegFailed {
					*leg = ihos.LegPending // re-submitted: outcome unknown now
				}
			case o.state == LegResultSucceeded:
				*leg = ihos.LegDone
			case o.state == LegResultFailed:
				*leg = ihos.LegFailed
				msgs = append(msgs, o.msg)
			case o.state == LegResultPending:
				*leg = ihos.LegPending
			default:
				msgs = append(msgs, "未知的退款状态："+o.state)
			}
		}
		before := *r
		apply(&r.InsStatus, ins)
		apply(&r.CashStatus, cash)
		r.Attempts++
		r.LastError = ""
		if len(msgs) > 0 {
			r.LastError = ihos.Truncate(fmt.Sprint(msgs), 500)
		}
		done := r.InsStatus != ihos.LegPending && r.InsStatus != ihos.LegFailed && r.CashStatus != ihos.LegPending && r.CashStatus != ihos.LegFailed
		failed := r.InsStatus == ihos.LegFailed || r.CashStatus == ihos.LegFailed
		var next any
		switch {
		case done:
			r.Status = ihos.RefundSucceeded
			r.DoneAt = now
		case failed:
			r.Status = ihos.RefundFailed
			next = ihos.FormatTime(now.Add(s.backoff(r.Attempts)))
		default:
			r.Status = ihos.RefundPending
			next = ihos.FormatTime(now.Add(s.backoff(r.Attempts - 1)))
		}
		r.UpdatedAt = now
		r.StatusLabel = ihos.RefundStatusLabel(r.Status)
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE refunds SET status = ?, ins_status = ?, cash_status = ?, attempts = ?, next_query_at = ?, last_error = ?,
			done_at = ?, updated_at = ?, version = version + 1 WHERE id = ?`,
			r.Status, r.InsStatus, r.CashStatus, r.Attempts, next, r.LastError, formatTime(r.DoneAt), ihos.FormatTime(now), r.ID); err != nil {
			return err
		}
		from := p.Status
		var c change
		switch {
		case done:
			p.Refunding -= r.Amount
			p.Refunded += r.Amount
			if p.Refunded == p.Total {
				p.Status = ihos.PaymentRefunded
			} else {
				p.Status = ihos.PaymentPartiallyRefunded
			}
			c = change{reason: ReasonRefundSucceeded, detail: map[string]any{"refund_id": r.ID, "amount": r.Amount, "source": source}}
		case r.Status != before.Status || r.InsStatus != before.InsStatus || r.CashStatus != before.CashStatus:
			reason := ReasonRefundLeg
			if failed {
				reason = ReasonRefundFailed
			}
			c = change{reason: reason, detail: map[string]any{"refund_id": r.ID, "status": r.Status, "insurance": r.InsStatus, "cash": r.CashStatus, "error": r.LastError}}
		default:
			return s.capture(ctx, tx, sync.Ref{Entity: "refunds", ID: r.ID})
		}
		return s.commitChange(ctx, tx, p, from, r.ID, c)
	}()
	return out, err
}
