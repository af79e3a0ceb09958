package payments

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"ihos"
)

// recordCash records what the channel says about the cash leg (a Query
// answer or a verified notify). callErr means the answer is unknown: the leg
// stays pending and the next query backs off.
func (s *Service) recordCash(ctx context.Context, id string, st ChannelState, callErr error, source string) (*ihos.Payment, error) {
	return s.mutate(ctx, id, func(_ *sql.Tx, p *ihos.Payment) (change, error) {
		if p.Status != ihos.PaymentPaying || p.CashStatus != ihos.LegPending {
			return change{}, errUnchanged // decided already
		}
		now := s.now()
		backoff := func(msg string) (change, error) {
			p.Attempts++
			p.LastError = msg
			p.NextQueryAt = s.nextQuery(p, now)
			return change{}, errUnchangedButSave
		}
		if callErr != nil {
			return backoff(callErr.Error())
		}
		switch st.State {
		case ChannelPaid:
			if st.Amount != p.CashPay {
				// Money moved, but not the amount asked for: never mark it
				// paid; keep asking and leave it to a person (logged).
				s.Logger.ErrorContext(ctx, "payments: channel reports a paid amount that differs from the order",
					"payment", p.ID, "expected", p.CashPay, "paid", st.Amount, "source", source)
				p.Attempts++
				p.LastError = fmt.Sprintf("渠道支付金额 %s 与订单金额 %s 不符", ihos.FormatYuan(st.Amount), ihos.FormatYuan(p.CashPay))
				p.NextQueryAt = now.Add(s.QueryMax)
				return change{reason: ReasonAmountMismatch, detail: map[string]any{"expected": p.CashPay, "paid": st.Amount, "source": source}}, nil
			}
			p.CashStatus = ihos.LegDone
			p.Status = ihos.PaymentPaid
			p.TransactionID = st.TransactionID
			p.PaidAt = now
			p.LastError = ""
			detail := map[string]any{"transaction_id": st.TransactionID, "amount": st.Amount, "source": source}
			if p.Ending != "" {
				// Paid while it was being closed: the money is real, so the
				// payment is paid; a refund is a person's decision.
				detail["was_ending"] = p.Ending
				p.Ending = ""
			}
			return change{reason: ReasonPaid, detail: detail}, nil
		case ChannelFailed, ChannelClosed:
			p.CashStatus = ihos.LegFailed
			if p.Ending == "" {
				// The channel closed an order we did not close: it expired
				// unpaid (time_expire), which is a close, not a failure.
				p.Ending = ihos.PaymentFailed
				if st.State == ChannelClosed {
					p.Ending = ihos.PaymentClosed
				}
			}
			p.NextQueryAt = now
			if !p.HasInsurance() || p.InsStatus == ihos.LegNone || p.InsStatus == ihos.LegFailed || p.InsStatus == ihos.LegReversed {
				p.Status, p.Ending = p.Ending, ""
			}
			return change{reason: ReasonCashFailed, detail: map[string]string{"state": st.State, "source": source}}, nil
		case ChannelPending, ChannelNotFound:
			return backoff("")
		}
		return backoff("未知的渠道状态：" + st.State)
	})
}

// windDown finishes a payment whose Ending is set (cancelled, closed at its
// deadline, or failed): the cash order is closed first — and queried, since it
// may have been paid meanwhile, in which case the payment is paid — then a
// settled or unfinished insurance leg is reversed, then the payment takes its
// final status. A call with an unknown outcome leaves it for the resolver.
func (s *Service) windDown(ctx context.Context, p *ihos.Payment) (*ihos.Payment, error) {
	var err error
	if p.CashStatus == ihos.LegPending {
		if cerr := s.Channel.Close(ctx, p.OutTradeNo); cerr != nil {
			return s.retryLater(ctx, p.ID, "关闭支付订单失败："+cerr.Error())
		}
		st, qerr := s.Channel.Query(ctx, p.OutTradeNo)
		if qerr != nil {
			return s.retryLater(ctx, p.ID, "查询支付订单失败："+qerr.Error())
		}
		switch st.State {
		case ChannelPaid:
			return s.recordCash(ctx, p.ID, st, nil, "query")
		case ChannelClosed, ChannelFailed, ChannelNotFound:
			p, err = s.mutate(ctx, p.ID, func(_ *sql.Tx, p *ihos.Payment) (change, error) {
				if p.Status != ihos.PaymentPaying || p.CashStatus != ihos.LegPending {
					return change{}, errUnchanged
				}
				p.CashStatus = ihos.LegReversed
				return change{reason: ReasonCashClosed, detail: map[string]string{"state": st.State}}, nil
			})
			if err != nil {
				return nil, err
			}
		default:
			return s.retryLater(ctx, p.ID, "支付订单尚未关闭："+st.State)
		}
	}
	if p.Status == ihos.PaymentPaying && (p.InsStatus == ihos.LegPending || p.InsStatus == ihos.LegDone) {
		if s.Insurance == nil {
			return s.retryLater(ctx, p.ID, "医保接口不可用，无法撤销医保结算")
		}
		if rerr := s.Insurance.Reverse(ctx, p.InsuranceKey); rerr != nil {
			return s.retryLater(ctx, p.ID, "撤销医保结算失败："+rerr.Error())
		}
		p, err = s.mutate(ctx, p.ID, func(_ *sql.Tx, p *ihos.Payment) (change, error) {
			if p.Status != ihos.PaymentPaying || (p.InsStatus != ihos.LegPending && p.InsStatus != ihos.LegDone) {
				return change{}, errUnchanged
			}
			p.InsStatus = ihos.LegReversed
			return change{reason: ReasonInsuranceReverse, detail: map[string]string{"key": p.InsuranceKey}}, nil
		})
		if err != nil {
			return nil, err
		}
	}
	return s.mutate(ctx, p.ID, func(_ *sql.Tx, p *ihos.Payment) (change, error) {
		if p.Status != ihos.PaymentPaying || p.Ending == "" || p.CashStatus == ihos.LegPending ||
			p.InsStatus == ihos.LegPending || p.InsStatus == ihos.LegDone {
			return change{}, errUnchanged
		}
		p.Status, p.Ending = p.Ending, ""
		p.LastError = ""
		return change{reason: ReasonWoundDown}, nil
	})
}

// retryLater records a failed attempt and backs the next one off.
func (s *Service) retryLater(ctx context.Context, id, msg string) (*ihos.Payment, error) {
	s.Logger.WarnContext(ctx, "payments: will retry", "payment", id, "err", msg)
	return s.mutate(ctx, id, func(_ *sql.Tx, p *ihos.Payment) (change, error) {
		if p.Status != ihos.PaymentPaying {
			return change{}, errUnchanged
		}
		p.Attempts++
		p.LastError = msg
		p.NextQueryAt = s.nextQuery(p, s.now())
		return change{}, errUnchangedButSave
	})
}

// Resolve moves one paying payment on as far as the channel and the centre
// allow now: it queries an unknown leg, closes and reverses at the deadline,
// and finishes a wind-down. The resolver calls it for due payments; a client
// coming back from the payment UI may call it to learn the outcome at once.
func (s *Service) Resolve(ctx context.Context, id string) (*ihos.Payment, error) {
	s.init()
	p, err := s.Get(ctx, id)
	if err != nil || p.Status != ihos.PaymentPaying {
		return p, err
	}
	if p.Ending == "" && !s.now().Before(p.Deadline) {
		p, err = s.mutate(ctx, p.ID, func(_ *sql.Tx, p *ihos.Payment) (change, error) {
			if p.Status != ihos.PaymentPaying || p.Ending != "" {
				return change{}, errUnchanged
			}
			p.Ending = ihos.PaymentClosed
			return change{reason: ReasonDeadline}, nil
		})
		if err != nil {
			return nil, wrap(err)
		}
	}
	switch {
	case p.Status != ihos.PaymentPaying:
		return p, nil
	case p.Ending != "":
		p, err = s.windDown(ctx, p)
	case p.InsStatus == ihos.LegPending:
		if s.Insurance == nil {
			return s.retryLater(ctx, p.ID, "医保接口不可用")
		}
		res, qerr := s.Insurance.Query(ctx, p.InsuranceKey)
		p, err = s.recordInsurance(ctx, p.ID, res, qerr)
	case p.CashStatus == ihos.LegPending:
		st, qerr := s.Channel.Query(ctx, p.OutTradeNo)
		p, err = s.recordCash(ctx, p.ID, st, qerr, "query")
	default:
		// Waiting for the patient (to start the cash leg or confirm a
		// changed split): nothing to ask until the deadline.
		p, err = s.mutate(ctx, p.ID, func(_ *sql.Tx, p *ihos.Payment) (change, error) {
			if p.Status != ihos.PaymentPaying || p.NextQueryAt.Equal(p.Deadline) {
				return change{}, errUnchanged
			}
			p.NextQueryAt = p.Deadline
			return change{}, errUnchangedButSave
		})
	}
	return p, wrap(err)
}

// resolveBatch is how many due payments or refunds one round takes.
const resolveBatch = 100

// ResolveDue works through the payments and refunds whose next query is due
// and returns how many it looked at.
func (s *Service) ResolveDue(ctx context.Context) (int, error) {
	s.init()
	now := ihos.FormatTime(s.now())
	ids, err := s.dueIDs(ctx, `SELECT id FROM payments WHERE status = 'paying' AND next_query_at <= ? ORDER BY next_query_at LIMIT ?`, now)
	if err != nil {
		return 0, err
	}
	rids, err := s.dueIDs(ctx, `SELECT id FROM refunds WHERE status IN ('pending', 'failed') AND next_query_at <= ? ORDER BY next_query_at LIMIT ?`, now)
	if err != nil {
		return 0, err
	}
	var firstErr error
	for _, id := range ids {
		if _, err := s.Resolve(ctx, id); err != nil && firstErr == nil && ihos.ErrorCode(err) == ihos.EInternal {
			firstErr = err
		}
	}
	for _, id := range rids {
		if _, err := s.driveRefund(ctx, id); err != nil && firstErr == nil && ihos.ErrorCode(err) == ihos.EInternal {
			firstErr = err
		}
	}
	return len(ids) + len(rids), firstErr
}

func (s *Service) dueIDs(ctx context.Context, query, now string) ([]string, error) {
	rows, err := s.DB.QueryContext(ctx, query, now, resolveBatch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Kick wakes the resolver.
func (s *Service) Kick() {
	s.init()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run is the resolver: until ctx ends it queries payments whose outcome is
// unknown (with backoff), closes and reverses payments past their deadline,
// and drives refunds until they succeed (re-submitting failed ones). Several
// instances may run: every decision is taken on the locked current row, and
// every external call is idempotent.
func (s *Service) Run(ctx context.Context) {
	s.init()
	for {
		n, err := s.ResolveDue(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.Logger.ErrorContext(ctx, "payments: resolver", "err", err)
		}
		if n >= resolveBatch && err == nil {
			continue
		}
		t := time.NewTimer(s.PollEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.kick:
			t.Stop()
		case <-t.C:
		}
	}
}
