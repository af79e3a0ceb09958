package settle

import (
	"context"
	"errors"
	"strings"

	"ihos"
	"ihos/insurance"
	"ihos/insurance/mobile"
	"ihos/payments"
)

// A *Service is the payment service's insurance leg on the appliance.
var _ payments.Insurance = (*Service)(nil)

// resultOf is the payments view of a settle or refund row.
func resultOf(r *row) payments.InsuranceResult {
	res := payments.InsuranceResult{Split: r.Split, SettlementID: r.SetlID, Message: r.LastError}
	switch {
	case r.Kind == KindRefund && r.Status == StatusRefunded:
		res.State = payments.InsRefunded
	case r.Status == StatusSettled || r.Status == StatusRefunded:
		res.State = payments.InsSettled
	case r.Status == StatusFailed:
		res.State = payments.InsFailed
	case r.Status == StatusReversed:
		res.State = payments.InsReversed
	default:
		res.State = payments.InsPending
	}
	return res
}

// unknown is the error of a call whose outcome is not known yet.
func unknown(err error) error {
	if err == nil {
		return nil
	}
	if ihos.ErrorCode(err) == ihos.EUnavailable {
		return err
	}
	return &ihos.Error{Code: ihos.EUnavailable, Message: "医保结算结果未知，系统正在核实，请勿重复缴费", Err: err}
}

// Settle settles the quote named by o.Auth["quote_id"] (2207 / 6202) under
// o.Key. A repeated Settle returns the stored outcome, or asks the centre
// again under the same msgid / orgBizSer while the outcome is unknown. A
// quote that is missing, expired, used or for another order is a failed
// settlement (nothing was sent), recorded under the key.
func (s *Service) Settle(ctx context.Context, o payments.InsuranceOrder) (payments.InsuranceResult, error) {
	if o.Key == "" || len(o.Key) > 64 {
		return payments.InsuranceResult{}, ihos.Errorf(ihos.EInvalid, "医保结算缺少业务编号")
	}
	defer s.lock(o.Key)()
	r, err := s.byKey(ctx, o.Key)
	if err != nil {
		return payments.InsuranceResult{}, ihos.Internal(err)
	}
	if r != nil {
		if r.Kind != KindSettle {
			return payments.InsuranceResult{}, ihos.Errorf(ihos.EConflict, "医保结算编号已被其他业务使用")
		}
		if r.Status != StatusPending {
			return resultOf(r), nil
		}
		return s.drive(ctx, r, false)
	}
	r, fail, err := s.newSettle(ctx, o)
	if err != nil {
		return payments.InsuranceResult{}, err
	}
	if fail != "" {
		total := max(o.Total, 0)
		f := &row{ID: ihos.NewID(), Kind: KindSettle, Key: o.Key, QuoteID: ihos.Truncate(o.Auth["quote_id"], 36), PaymentID: ihos.Truncate(o.PaymentID, 36),
			PatientID: ihos.Truncate(o.PatientID, 36), Channel: ihos.Truncate(o.Channel, 24), Status: StatusFailed, Total: total,
			Split: ihos.Split{Cash: total}, LastError: fail}
		if dup, err := s.insert(ctx, f); err != nil || dup {
			if err == nil {
				err = ihos.Errorf(ihos.EConflict, "医保结算正在进行，请稍后查询")
			}
			return payments.InsuranceResult{}, err
		}
		return resultOf(f), nil
	}
	if dup, err := s.insert(ctx, r); err != nil || dup {
		if err == nil {
			err = ihos.Errorf(ihos.EConflict, "医保结算正在进行，请稍后查询")
		}
		return payments.InsuranceResult{}, err
	}
	return s.drive(ctx, r, true)
}

// newSettle prepares the settle row of an order from its quote, with the
// id of the call chosen and stored before the call. fail is why the order
// cannot be settled (nothing is sent); err that it cannot be tried now.
func (s *Service) newSettle(ctx context.Context, o payments.InsuranceOrder) (*row, string, error) {
	qid := strings.TrimSpace(o.Auth["quote_id"])
	if qid == "" {
		return nil, "缺少医保预结算，请重新发起医保支付", nil
	}
	q, err := s.byKey(ctx, qid)
	if err != nil {
		return nil, "", ihos.Internal(err)
	}
	switch {
	case q == nil || q.Kind != KindPresettle:
		return nil, "医保预结算不存在，请重新发起医保支付", nil
	case q.Channel != o.Channel:
		return nil, "医保预结算与支付方式不符，请重新发起医保支付", nil
	case q.Total != o.Total:
		return nil, "医保预结算金额 " + ihos.FormatYuan(q.Total) + " 元与订单金额 " + ihos.FormatYuan(o.Total) + " 元不符", nil
	case q.PatientID != "" && o.PatientID != "" && q.PatientID != o.PatientID:
		return nil, "医保预结算不属于该患者", nil
	case !q.ExpiresAt.IsZero() && !s.now().Before(q.ExpiresAt):
		return nil, "医保预结算已过期，请重新发起医保支付", nil
	}
	var used int
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM insurance_settlements WHERE kind = ? AND quote_id = ?`, KindSettle, qid).Scan(&used); err != nil {
		return nil, "", ihos.Internal(err)
	}
	if used > 0 {
		return nil, "该医保预结算已使用，请重新发起医保支付", nil
	}
	r := &row{ID: ihos.NewID(), Kind: KindSettle, Key: o.Key, QuoteID: qid, PaymentID: ihos.Truncate(o.PaymentID, 36), PatientID: q.PatientID,
		Channel: q.Channel, Status: StatusPending, Total: q.Total, Split: q.Split, SetlID: q.SetlID, Insutype: q.Insutype, Attempts: 1, State: q.State}
	switch q.Channel {
	case ihos.ChannelInsuranceSite:
		c, err := s.national()
		if err != nil {
			return nil, "", err
		}
		var flow insurance.OutpatientSettlement
		if err := decode(q, &flow); err != nil {
			return nil, "", err
		}
		if r.MsgID, err = flow.PrepareSettle(c); err != nil {
			return nil, "医保预结算状态不正确，请重新发起医保支付", nil
		}
		encode(r, &flow)
	case ihos.ChannelInsuranceMobile:
		if _, err := s.mobile(); err != nil {
			return nil, "", err
		}
		var st mobileState
		if err := decode(q, &st); err != nil {
			return nil, "", err
		}
		if a := strings.TrimSpace(o.Auth["pay_auth_no"]); a != "" && a != st.PayAuthNo {
			return nil, "医保授权码与预结算时不一致，请重新发起医保支付", nil
		}
		st.OrgBizSer = o.Key
		r.MsgID = st.OrgBizSer
		encode(r, st)
	default:
		return nil, "医保支付方式无效", nil
	}
	return r, "", nil
}

// drive asks the centre about a pending settle row and records the answer:
// the first time (first) by sending the settlement, later by repeating it
// under the same id or querying.
func (s *Service) drive(ctx context.Context, r *row, first bool) (payments.InsuranceResult, error) {
	if !first {
		r.Attempts++
	}
	var callErr error
	switch r.Channel {
	case ihos.ChannelInsuranceSite:
		callErr = s.driveSite(ctx, r, first)
	case ihos.ChannelInsuranceMobile:
		callErr = s.driveMobile(ctx, r, first)
	default:
		return payments.InsuranceResult{}, ihos.Errorf(ihos.EConflict, "医保支付方式无效")
	}
	if errors.Is(callErr, errNoClient) {
		return payments.InsuranceResult{}, callErr
	}
	if r.Status == StatusPending && callErr != nil {
		r.LastError = ihos.ErrorMessage(callErr)
	}
	if err := s.save(ctx, r); err != nil {
		return payments.InsuranceResult{}, err
	}
	if r.Status == StatusPending && callErr != nil {
		return resultOf(r), unknown(callErr)
	}
	return resultOf(r), nil
}

// errNoClient marks a leg whose centre is not configured: nothing changes.
var errNoClient = errors.New("settle: client not configured")

func noClient(err error) error {
	return &ihos.Error{Code: ihos.EUnavailable, Message: ihos.ErrorMessage(err), Err: errNoClient}
}

// driveSite sends (first) or resolves the 2207 of a site leg and takes the
// platform's answer: settled, refused (nothing settled), or unknown. A
// settlement whose amounts do not add up, or differ from the order's total,
// is cancelled at once (2208, or 2601 without a setl_id) and fails.
func (s *Service) driveSite(ctx context.Context, r *row, first bool) error {
	c, err := s.national()
	if err != nil {
		return noClient(err)
	}
	var flow insurance.OutpatientSettlement
	if err := decode(r, &flow); err != nil {
		return err
	}
	defer encode(r, &flow)
	var callErr error
	switch flow.State {
	case insurance.StateSettling:
		if first {
			callErr = flow.Settle(ctx, c)
		} else {
			callErr = flow.Resolve(ctx, c)
		}
	}
	if flow.State == insurance.StateSettled {
		split, err := siteSplit(flow.Setl, c.Fixmedins.FundIncludesAcct)
		if err == nil {
			err = ihos.CheckSplit(r.Total, split)
		}
		if err == nil {
			r.Status, r.Split, r.SetlID, r.LastError = StatusSettled, split, flow.Setl.SetlID, ""
			r.SettledAt = s.now()
			r.Day = dayOf(r.SettledAt)
			if t := flow.Setl.SetlTime; len(t) >= 10 {
				r.Day = t[:10]
			}
			return nil
		}
		s.log().Error("settle: settlement does not match the order, cancelling it", "key", r.Key, "err", err)
		r.LastError = ihos.ErrorMessage(err)
		flow.State = insurance.StateSplitMismatch
	}
	if flow.State == insurance.StateSplitMismatch {
		if cerr := s.undoSite(ctx, c, r, &flow); cerr != nil {
			return cerr
		}
	}
	switch flow.State {
	case insurance.StateSettling, insurance.StateSplitMismatch:
		if callErr == nil {
			callErr = ihos.Errorf(ihos.EUnavailable, "医保结算结果未知")
		}
		return callErr
	case insurance.StateCancelled, insurance.StatePreSettled, insurance.StateFeesUploaded:
		// Refused, reversed by 2601 or cancelled: nothing is settled.
		r.Status = StatusFailed
		if callErr != nil {
			r.LastError = ihos.ErrorMessage(callErr)
		}
		if r.LastError == "" {
			r.LastError = "医保结算未成功"
		}
		r.Split = ihos.Split{Cash: r.Total}
		return nil
	}
	return callErr
}

// undoSite cancels a settlement (2208) or reverses its 2207 (2601 when no
// setl_id came back). The call's msgid is stored in the state before it is
// sent (save), so a lost answer is asked again under the same msgid.
func (s *Service) undoSite(ctx context.Context, c *insurance.Client, r *row, flow *insurance.OutpatientSettlement) error {
	infno := insurance.InfnoSettleCancel
	if flow.Setl == nil || flow.Setl.SetlID == "" {
		infno = insurance.InfnoReversal
	}
	if last := lastCall(flow, infno); last == nil || last.Outcome != insurance.OutcomeUnknown {
		flow.Calls = append(flow.Calls, insurance.StepCall{Infno: infno, MsgID: c.NewMsgID(), Outcome: insurance.OutcomeUnknown, At: s.now()})
		encode(r, flow)
		if err := s.save(ctx, r); err != nil {
			return err
		}
	}
	if infno == insurance.InfnoSettleCancel {
		return flow.Cancel(ctx, c)
	}
	return flow.ReverseSettle(ctx, c)
}

func lastCall(flow *insurance.OutpatientSettlement, infno string) *insurance.StepCall {
	for i := len(flow.Calls) - 1; i >= 0; i-- {
		if flow.Calls[i].Infno == infno {
			return &flow.Calls[i]
		}
	}
	return nil
}

// driveMobile sends 6202 (first) or asks 6301 about a mobile leg; an order
// still uploaded (the 6202 never arrived) gets the same 6202 again.
func (s *Service) driveMobile(ctx context.Context, r *row, first bool) error {
	c, err := s.mobile()
	if err != nil {
		return noClient(err)
	}
	var st mobileState
	if err := decode(r, &st); err != nil {
		return err
	}
	defer encode(r, &st)
	order := func() (mobile.OrderResult, error) {
		return c.Order6202(ctx, mobile.OrderRequest{PayAuthNo: st.PayAuthNo, PayOrdID: st.PayOrdID, PayToken: st.PayToken,
			OrgBizSer: st.OrgBizSer, ChrgBchno: st.ChrgBchno, AcctUsedFlag: st.AcctUsedFlag})
	}
	var res mobile.OrderResult
	if first {
		res, err = order()
		var ce *mobile.CentreError
		if errors.As(err, &ce) {
			// Refused on its first sending: nothing was paid.
			r.Status, r.LastError, r.Split = StatusFailed, ihos.ErrorMessage(err), ihos.Split{Cash: r.Total}
			return nil
		}
	} else {
		res, err = c.Query6301(ctx, mobile.QueryRequest{PayOrdID: st.PayOrdID, PayToken: st.PayToken})
		if err == nil && res.OrdStas == "0" {
			res, err = order()
		}
	}
	if err != nil {
		return err
	}
	st.OrdStas = res.OrdStas
	switch res.State {
	case mobile.Settled:
		return s.mobileSettled(r, int64(res.FeeSumamt), ihos.Split{Fund: int64(res.FundPay), Account: int64(res.PsnAcctPay), Cash: int64(res.OwnPayAmt)})
	case mobile.Failed, mobile.Cancelled:
		r.Status, r.LastError, r.Split = StatusFailed, "医保移动支付未成功（订单状态 "+res.OrdStas+"）", ihos.Split{Cash: r.Total}
		return nil
	case mobile.Refunded:
		return ihos.Errorf(ihos.EConflict, "医保移动支付订单已退款（订单状态 %s），请人工核对", res.OrdStas)
	}
	return nil // pending: ask again later
}

// mobileSettled records a settled mobile order (a 6202/6301 answer or a
// 6302 notify) after checking it is for the order's total.
func (s *Service) mobileSettled(r *row, total int64, split ihos.Split) error {
	if total != r.Total || ihos.CheckSplit(r.Total, split) != nil {
		err := ihos.Errorf(ihos.EConflict, "医保移动支付结算金额 %s 元与订单金额 %s 元不符，请人工核对", ihos.FormatYuan(total), ihos.FormatYuan(r.Total))
		s.log().Error("settle: mobile settlement does not match the order", "key", r.Key, "total", total, "split", split)
		return err
	}
	r.Status, r.Split, r.LastError = StatusSettled, split, ""
	r.SettledAt = s.now()
	r.Day = dayOf(r.SettledAt)
	return nil
}

// Query returns the state of the settlement or refund named by key, asking
// the centre again while it is unknown. InsNotFound: nothing was ever sent
// under key (every call is recorded before it is sent).
func (s *Service) Query(ctx context.Context, key string) (payments.InsuranceResult, error) {
	r, err := s.byKey(ctx, key)
	if err != nil {
		return payments.InsuranceResult{}, ihos.Internal(err)
	}
	if r == nil {
		return payments.InsuranceResult{State: payments.InsNotFound}, nil
	}
	lockKey := r.Key
	if r.Kind == KindRefund {
		lockKey = r.SettleKey
	}
	defer s.lock(lockKey)()
	if r, err = s.byKey(ctx, key); err != nil {
		return payments.InsuranceResult{}, ihos.Internal(err)
	}
	switch {
	case r.Status != StatusPending:
		return resultOf(r), nil
	case r.Kind == KindSettle:
		return s.drive(ctx, r, false)
	case r.Kind == KindRefund:
		return s.driveRefund(ctx, r)
	}
	return resultOf(r), nil
}

// Refund returns the fund and account parts of a settled leg (2208 / 6203)
// under r.Key; a repeat returns the stored outcome or asks again under the
// same id. The national platform cancels a settlement only as a whole: a
// partial insurance refund of a site leg fails.
func (s *Service) Refund(ctx context.Context, rf payments.InsuranceRefund) (payments.InsuranceResult, error) {
	if rf.Key == "" || len(rf.Key) > 64 || rf.PaymentKey == "" {
		return payments.InsuranceResult{}, ihos.Errorf(ihos.EInvalid, "医保退款缺少业务编号")
	}
	defer s.lock(rf.PaymentKey)()
	r, err := s.byKey(ctx, rf.Key)
	if err != nil {
		return payments.InsuranceResult{}, ihos.Internal(err)
	}
	if r != nil {
		if r.Kind != KindRefund {
			return payments.InsuranceResult{}, ihos.Errorf(ihos.EConflict, "医保退款编号已被其他业务使用")
		}
		if r.Status == StatusPending || r.Status == StatusFailed {
			// Pending: ask again; failed: the payment service re-submits
			// with the same key.
			return s.driveRefund(ctx, r)
		}
		return resultOf(r), nil
	}
	st, err := s.byKey(ctx, rf.PaymentKey)
	if err != nil {
		return payments.InsuranceResult{}, ihos.Internal(err)
	}
	fail := func(msg string) (payments.InsuranceResult, error) {
		return payments.InsuranceResult{State: payments.InsFailed, Message: msg}, nil
	}
	if st == nil || st.Kind != KindSettle || (st.Status != StatusSettled && st.Status != StatusRefunded) {
		return fail("医保结算不存在或未完成，不能退款")
	}
	if rf.Fund < 0 || rf.Account < 0 || rf.Fund+rf.Account <= 0 {
		return fail("医保退款金额不正确")
	}
	refunded, err := s.refunded(ctx, st.Key, "", true)
	if err != nil {
		return payments.InsuranceResult{}, err
	}
	if rf.Fund > st.Split.Fund-refunded.Fund || rf.Account > st.Split.Account-refunded.Account {
		return fail("医保退款金额超过可退金额")
	}
	if st.Channel == ihos.ChannelInsuranceSite && (rf.Fund != st.Split.Fund || rf.Account != st.Split.Account) {
		return fail("医保电子凭证结算只能整笔撤销（2208），不能部分退款，请到医保窗口办理")
	}
	r = &row{ID: ihos.NewID(), Kind: KindRefund, Key: rf.Key, QuoteID: st.QuoteID, SettleKey: st.Key, PaymentID: st.PaymentID, PatientID: st.PatientID,
		Channel: st.Channel, Status: StatusPending, Total: rf.Fund + rf.Account, Split: ihos.Split{Fund: rf.Fund, Account: rf.Account},
		SetlID: st.SetlID, Insutype: st.Insutype, MsgID: rf.Key}
	if st.Channel == ihos.ChannelInsuranceSite {
		c, err := s.national()
		if err != nil {
			return payments.InsuranceResult{}, err
		}
		r.MsgID = c.NewMsgID() // the 2208's msgid, kept before it is sent
	} else if _, err := s.mobile(); err != nil {
		return payments.InsuranceResult{}, err
	}
	if dup, err := s.insert(ctx, r); err != nil || dup {
		if err == nil {
			err = ihos.Errorf(ihos.EConflict, "医保退款正在进行，请稍后查询")
		}
		return payments.InsuranceResult{}, err
	}
	return s.driveRefund(ctx, r)
}

// refunded sums the refunds of a settlement, leaving out one refund: those
// made, and with pending also those under way.
func (s *Service) refunded(ctx context.Context, settleKey, except string, pending bool) (ihos.Split, error) {
	var sp ihos.Split
	also := StatusRefunded
	if pending {
		also = StatusPending
	}
	err := s.DB.QueryRowContext(ctx, `SELECT COALESCE(SUM(fund_pay), 0), COALESCE(SUM(account_pay), 0) FROM insurance_settlements
		WHERE kind = ? AND settle_key = ? AND status IN (?, ?) AND leg_key <> ?`, KindRefund, settleKey, StatusRefunded, also, except).Scan(&sp.Fund, &sp.Account)
	if err != nil {
		return sp, ihos.Internal(err)
	}
	return sp, nil
}

// driveRefund sends (or sends again, under the same msgid / appRefdSn) a
// refund and records the answer on the refund and its settlement.
func (s *Service) driveRefund(ctx context.Context, r *row) (payments.InsuranceResult, error) {
	st, err := s.byKey(ctx, r.SettleKey)
	if err != nil || st == nil {
		return payments.InsuranceResult{}, ihos.Internal(errors.Join(err, errors.New("settle: refund without its settlement")))
	}
	if r.Status == StatusFailed && r.Channel == ihos.ChannelInsuranceSite && s.National != nil {
		// Re-submitted after the platform refused it: the platform answers
		// a msgid once and for ever, so the new attempt gets a new one,
		// stored before it is sent.
		r.Status, r.MsgID = StatusPending, s.National.NewMsgID()
		if err := s.save(ctx, r); err != nil {
			return payments.InsuranceResult{}, err
		}
	}
	r.Attempts++
	var callErr error
	switch r.Channel {
	case ihos.ChannelInsuranceSite:
		callErr = s.refundSite(ctx, r, st)
	case ihos.ChannelInsuranceMobile:
		callErr = s.refundMobile(ctx, r, st)
	}
	if errors.Is(callErr, errNoClient) {
		return payments.InsuranceResult{}, callErr
	}
	switch {
	case callErr == nil:
		r.Status, r.LastError = StatusRefunded, ""
		r.SettledAt = s.now()
		r.Day = dayOf(r.SettledAt)
		done, err := s.refunded(ctx, st.Key, r.Key, false)
		if err != nil {
			return payments.InsuranceResult{}, err
		}
		if done.Fund+r.Split.Fund == st.Split.Fund && done.Account+r.Split.Account == st.Split.Account {
			st.Status = StatusRefunded
		}
	case ihos.ErrorCode(callErr) == ihos.EUnavailable:
		r.Status, r.LastError = StatusPending, ihos.ErrorMessage(callErr)
	default:
		r.Status, r.LastError = StatusFailed, ihos.ErrorMessage(callErr)
	}
	if err := s.save(ctx, r, st); err != nil {
		return payments.InsuranceResult{}, err
	}
	if r.Status == StatusPending {
		return resultOf(r), callErr
	}
	return resultOf(r), nil
}

// refundSite cancels the whole settlement (2208) under the refund's msgid.
func (s *Service) refundSite(ctx context.Context, r, st *row) error {
	c, err := s.national()
	if err != nil {
		return noClient(err)
	}
	var flow insurance.OutpatientSettlement
	if err := decode(st, &flow); err != nil {
		return err
	}
	defer encode(st, &flow)
	if flow.State == insurance.StateCancelled && flow.CancelSetlID != "" {
		return nil // cancelled by an earlier sending of this refund
	}
	if last := lastCall(&flow, insurance.InfnoSettleCancel); last == nil || last.MsgID != r.MsgID {
		flow.Calls = append(flow.Calls, insurance.StepCall{Infno: insurance.InfnoSettleCancel, MsgID: r.MsgID, Outcome: insurance.OutcomeUnknown, At: s.now()})
	} else {
		last.Outcome = insurance.OutcomeUnknown // the same msgid again, whatever it answered before
	}
	return flow.Cancel(ctx, c)
}

// refundMobile returns the insurance parts (6203, refdType HI); the cash
// part is the payment channel's.
func (s *Service) refundMobile(ctx context.Context, r, st *row) error {
	c, err := s.mobile()
	if err != nil {
		return noClient(err)
	}
	_, err = c.Refund6203(ctx, mobile.RefundRequest{PayOrdID: st.SetlID, AppRefdSn: r.Key, TotlRefdAmt: insurance.Yuan(r.Total),
		FundRefdAmt: insurance.Yuan(r.Split.Fund), PsnAcctRefdAmt: insurance.Yuan(r.Split.Account), RefdType: mobile.RefdHI})
	return err
}

// Reverse undoes the leg under key: a 2207 without an answer is reversed
// (2601), a settlement cancelled (2208), a mobile order refunded (6203) or
// its upload cancelled (6401). A leg never settled (or never sent) is
// reversed already.
func (s *Service) Reverse(ctx context.Context, key string) error {
	defer s.lock(key)()
	r, err := s.byKey(ctx, key)
	if err != nil {
		return ihos.Internal(err)
	}
	if r == nil || r.Kind != KindSettle {
		return nil
	}
	switch r.Status {
	case StatusFailed, StatusReversed, StatusRefunded:
		return nil
	}
	var callErr error
	switch r.Channel {
	case ihos.ChannelInsuranceSite:
		callErr = s.reverseSite(ctx, r)
	case ihos.ChannelInsuranceMobile:
		callErr = s.reverseMobile(ctx, r)
	}
	if errors.Is(callErr, errNoClient) {
		return callErr
	}
	if callErr != nil {
		r.LastError = ihos.ErrorMessage(callErr)
	}
	if err := s.save(ctx, r); err != nil {
		return err
	}
	return callErr
}

func (s *Service) reverseSite(ctx context.Context, r *row) error {
	c, err := s.national()
	if err != nil {
		return noClient(err)
	}
	var flow insurance.OutpatientSettlement
	if err := decode(r, &flow); err != nil {
		return err
	}
	defer encode(r, &flow)
	switch flow.State {
	case insurance.StateSettling, insurance.StateSettled, insurance.StateSplitMismatch:
		if err := s.undoSite(ctx, c, r, &flow); err != nil {
			return err
		}
	}
	r.LastError = ""
	if flow.State == insurance.StateCancelled {
		r.Status = StatusReversed // the split stays: what was settled and undone
	} else {
		r.Status, r.Split = StatusFailed, ihos.Split{Cash: r.Total} // nothing was settled
	}
	return nil
}

func (s *Service) reverseMobile(ctx context.Context, r *row) error {
	c, err := s.mobile()
	if err != nil {
		return noClient(err)
	}
	var st mobileState
	if err := decode(r, &st); err != nil {
		return err
	}
	defer encode(r, &st)
	res, err := c.Query6301(ctx, mobile.QueryRequest{PayOrdID: st.PayOrdID, PayToken: st.PayToken})
	if err != nil {
		return err
	}
	st.OrdStas = res.OrdStas
	switch {
	case res.OrdStas == "0":
		// Uploaded, never paid: cancel the upload so a late 6202 is refused.
		if _, err := c.Cancel6401(ctx, mobile.CancelRequest{PayOrdID: st.PayOrdID, PayToken: st.PayToken, MedOrgOrd: st.MedOrgOrd,
			Reason: "支付未完成，撤销"}); err != nil {
			return err
		}
		r.Status = StatusFailed
	case res.State == mobile.Settled:
		fund, acct := int64(res.FundPay), int64(res.PsnAcctPay)
		if fund+acct > 0 {
			if _, err := c.Refund6203(ctx, mobile.RefundRequest{PayOrdID: st.PayOrdID, AppRefdSn: "RV" + r.Key, TotlRefdAmt: insurance.Yuan(fund + acct),
				FundRefdAmt: insurance.Yuan(fund), PsnAcctRefdAmt: insurance.Yuan(acct), RefdType: mobile.RefdHI}); err != nil {
				return err
			}
		}
		if sp := (ihos.Split{Fund: fund, Account: acct, Cash: int64(res.OwnPayAmt)}); ihos.CheckSplit(r.Total, sp) == nil {
			r.Split = sp
		}
		r.Status = StatusReversed
	case res.State == mobile.Failed || res.State == mobile.Cancelled:
		r.Status = StatusFailed
	case res.State == mobile.Refunded:
		r.Status = StatusReversed
	default:
		return ihos.Errorf(ihos.EUnavailable, "医保移动支付订单正在结算（订单状态 %s），稍后再撤销", res.OrdStas)
	}
	r.LastError = ""
	if r.Status == StatusFailed {
		r.Split = ihos.Split{Cash: r.Total} // nothing was settled
	}
	return nil
}
