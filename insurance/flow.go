package insurance

import (
	"context"
	"errors"
	"strings"
	"time"

	"ihos"
)

// States of an OutpatientSettlement. The usual path is
//
//	identified → registered → visit_uploaded → fees_uploaded → presettled → settling → settled
//
// with these side paths:
//
//   - settling is entered before 2207 is sent (PrepareSettle) and left only
//     on an answer: a 2207 without one stays settling until Resolve (or
//     ReverseSettle) finds the final result. It is never assumed.
//   - settled → cancelled by 2208 (Cancel); cancelled/fees_uploaded/presettled
//     → registered by 2205 (CancelFees); registered … cancelled → closed by
//     2202 (CancelRegistration).
//   - split_mismatch: 2207 answered but its amounts do not add up
//     (CheckSplit). The settlement exists on the platform; it must be
//     cancelled (2208, or 2601 when no setl_id came back) and checked by hand.
//   - a 2207 reversed by 2601 returns to fees_uploaded: nothing is settled,
//     the fees are still on the platform, and a new pre-settlement is needed.
const (
	StateIdentified    = "identified"
	StateRegistered    = "registered"
	StateVisitUploaded = "visit_uploaded"
	StateFeesUploaded  = "fees_uploaded"
	StatePreSettled    = "presettled"
	StateSettling      = "settling"
	StateSettled       = "settled"
	StateSplitMismatch = "split_mismatch"
	StateCancelled     = "cancelled"
	StateClosed        = "closed"
)

// Outcomes of one call (StepCall.Outcome).
const (
	OutcomeUnknown  = "unknown"  // sent (or about to be) and no answer yet: repeat under the same msgid
	OutcomeOK       = "ok"       // answered, accepted
	OutcomeRefused  = "refused"  // answered infcode -1
	OutcomeConflict = "conflict" // answered, but the answer fails a check (amounts)
	OutcomeNotSent  = "not_sent" // refused by this package before sending
)

// StepCall is one business call of a settlement and its msgid: the
// idempotency key. A step whose last call is OutcomeUnknown sends the same
// msgid again, so the platform (which keeps the first answer per msgid, as
// the simulator does) cannot act twice; a step after a definitive answer
// gets a new msgid.
type StepCall struct {
	Infno    string    `json:"infno"`
	MsgID    string    `json:"msgid"`
	Outcome  string    `json:"outcome"`
	Attempts int       `json:"attempts"` // how many times this msgid was sent
	At       time.Time `json:"at"`       // first attempt
	Err      string    `json:"err,omitempty"`
}

// OutpatientSettlement is the state of one outpatient insurance settlement at
// the counter or the kiosk (展码), from 1101 to 2207 and its reversals. The
// payment service persists it (as JSON) after every step and passes it back
// to the next; each step is a method that calls the platform through a
// Client and updates the state. Nothing here runs on its own: the caller
// decides when to go on, shows the patient the pre-settlement, and takes
// the cash share.
//
// Money is integer fen (Yuan). Every settlement answer is checked with
// CheckSplit. Calls keeps every msgid sent, so a 2207 whose answer was lost
// can be repeated under the same msgid or reversed by it (2601).
type OutpatientSettlement struct {
	State string `json:"state"`

	PsnNo         string   `json:"psn_no"`
	Insutype      string   `json:"insutype"`
	InsuplcAdmdvs string   `json:"insuplc_admdvs"`
	MdtrtCertType string   `json:"mdtrt_cert_type"`
	MdtrtCertNo   string   `json:"mdtrt_cert_no"` // the ecToken, ID number or card number shown
	MedType       string   `json:"med_type"`
	AcctUsedFlag  string   `json:"acct_used_flag"`
	Operator      Operator `json:"operator"` // the kiosk or the clerk; empty: the Client's

	MdtrtID  string `json:"mdtrt_id"`
	IptOtpNo string `json:"ipt_otp_no"`

	ChrgBchno       string      `json:"chrg_bchno"`
	Fees            []FeeResult `json:"fees"`
	MedfeeSumamt    Yuan        `json:"medfee_sumamt"` // sum of the uploaded lines
	FulamtOwnpayAmt Yuan        `json:"fulamt_ownpay_amt"`
	OverlmtSelfpay  Yuan        `json:"overlmt_selfpay"`
	PreselfpayAmt   Yuan        `json:"preselfpay_amt"`
	InscpScpAmt     Yuan        `json:"inscp_scp_amt"`

	PreSetl *SetlInfo `json:"pre_setl,omitempty"` // 2206: what the patient was shown
	Setl    *SetlInfo `json:"setl,omitempty"`     // 2207: what was settled
	// SplitChanged is PreSetlChanged(PreSetl, Setl) after 2207: the caller
	// must show the patient the new amounts before taking cash.
	SplitChanged bool         `json:"split_changed"`
	SetlDetail   []SetlDetail `json:"setl_detail,omitempty"`

	SetlMsgID    string   `json:"setl_msgid"`     // the 2207 in flight or done
	Reversed     []string `json:"reversed"`       // msgids of 2207s undone by 2601
	CancelSetlID string   `json:"cancel_setl_id"` // 2208's setl_id

	Calls []StepCall `json:"calls"`
}

// NewOutpatientSettlement starts a settlement for the person 1101 returned,
// identified by the certificate shown (certType CertECToken, CertIDCard or
// CertSSCard, and its number). The person must have an insurance in force.
func NewOutpatientSettlement(p Person, certType, certNo string, useAccount bool) (*OutpatientSettlement, error) {
	in, ok := p.ActiveInsurance()
	if !ok {
		return nil, ihos.Errorf(ihos.EConflict, "该患者没有有效的医保参保信息，不能医保结算")
	}
	if p.BaseInfo.PsnNo == "" || strings.TrimSpace(certNo) == "" {
		return nil, ihos.Errorf(ihos.EInvalid, "缺少人员编号或就诊凭证，请重新读卡或出示医保电子凭证")
	}
	switch certType {
	case CertECToken, CertIDCard, CertSSCard:
	default:
		return nil, ihos.Errorf(ihos.EInvalid, "就诊凭证类型不正确：%s", ihos.Truncate(certType, 8))
	}
	flag := AcctNotUsed
	if useAccount {
		flag = AcctUsed
	}
	return &OutpatientSettlement{
		State: StateIdentified, PsnNo: p.BaseInfo.PsnNo, Insutype: in.Insutype, InsuplcAdmdvs: in.InsuplcAdmdvs,
		MdtrtCertType: certType, MdtrtCertNo: strings.TrimSpace(certNo), MedType: MedTypeOutpatient, AcctUsedFlag: flag,
	}, nil
}

// OutpatientVisit is what 2201 needs besides the person: the hospital's
// outpatient number, the doctor and the department.
type OutpatientVisit struct {
	IptOtpNo string
	AtddrNo  string
	DrName   string
	DeptCode string
	DeptName string
	Caty     string
	Begntime time.Time
}

// errState is the error for a step called in the wrong state.
func errState(s *OutpatientSettlement, want string) error {
	return ihos.Errorf(ihos.EConflict, "医保结算状态为 %s，不能%s", s.State, want)
}

func (s *OutpatientSettlement) in(states ...string) bool {
	for _, st := range states {
		if s.State == st {
			return true
		}
	}
	return false
}

// call runs one step: it picks the msgid (the one of an unanswered earlier
// call of the same infno, or a new one), records the call and its outcome.
func (s *OutpatientSettlement) call(c *Client, infno string, fn func(opts CallOptions) error) (string, error) {
	var rec *StepCall
	if n := len(s.Calls); n > 0 {
		for i := n - 1; i >= 0; i-- {
			if s.Calls[i].Infno == infno {
				if s.Calls[i].Outcome == OutcomeUnknown {
					rec = &s.Calls[i]
				}
				break
			}
		}
	}
	if rec == nil {
		s.Calls = append(s.Calls, StepCall{Infno: infno, MsgID: c.NewMsgID(), Outcome: OutcomeUnknown, At: c.now().UTC()})
		rec = &s.Calls[len(s.Calls)-1]
	}
	rec.Attempts++
	msgid := rec.MsgID
	err := fn(CallOptions{MsgID: msgid, InsuplcAdmdvs: s.InsuplcAdmdvs, Operator: s.Operator})
	// fn may have appended to s.Calls; find the record again.
	rec = s.lastCall(infno)
	rec.Outcome = outcome(err)
	rec.Err = ""
	if err != nil {
		rec.Err = ihos.Truncate(ihos.ErrorMessage(err), 200)
	}
	return msgid, err
}

func (s *OutpatientSettlement) lastCall(infno string) *StepCall {
	for i := len(s.Calls) - 1; i >= 0; i-- {
		if s.Calls[i].Infno == infno {
			return &s.Calls[i]
		}
	}
	return nil
}

// outcome classifies a call's error.
func outcome(err error) string {
	var pe *PlatformError
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &pe):
		return OutcomeRefused
	case ihos.ErrorCode(err) == ihos.EUnavailable:
		return OutcomeUnknown
	case ihos.ErrorCode(err) == ihos.EConflict:
		return OutcomeConflict
	default:
		return OutcomeNotSent
	}
}

// Register sends 2201 and keeps mdtrt_id.
func (s *OutpatientSettlement) Register(ctx context.Context, c *Client, v OutpatientVisit) error {
	if !s.in(StateIdentified) {
		return errState(s, "挂号")
	}
	if v.Begntime.IsZero() {
		v.Begntime = c.now()
	}
	in := Registration{PsnNo: s.PsnNo, Insutype: s.Insutype, Begntime: v.Begntime.In(ihos.Shanghai).Format(InfTimeFormat),
		MdtrtCertType: s.MdtrtCertType, MdtrtCertNo: s.MdtrtCertNo, IptOtpNo: v.IptOtpNo, AtddrNo: v.AtddrNo,
		DrName: v.DrName, DeptCode: v.DeptCode, DeptName: v.DeptName, Caty: v.Caty}
	var out Registered
	_, err := s.call(c, InfnoRegister, func(opts CallOptions) (err error) {
		out, err = c.Register(ctx, opts, in)
		return err
	})
	if err != nil {
		return err
	}
	s.MdtrtID, s.IptOtpNo, s.State = out.MdtrtID, v.IptOtpNo, StateRegistered
	return nil
}

// UploadVisit sends 2203 with the visit's diagnoses. mdtrt_id, psn_no and
// med_type are filled in from the state; Begntime of info.MdtrtInfo defaults
// to now.
func (s *OutpatientSettlement) UploadVisit(ctx context.Context, c *Client, info VisitInfo) error {
	if !s.in(StateRegistered, StateVisitUploaded) {
		return errState(s, "上传就诊信息")
	}
	m := &info.MdtrtInfo
	m.MdtrtID, m.PsnNo = s.MdtrtID, s.PsnNo
	if m.MedType == "" {
		m.MedType = s.MedType
	}
	if m.Begntime == "" {
		m.Begntime = c.now().In(ihos.Shanghai).Format(InfTimeFormat)
	}
	_, err := s.call(c, InfnoVisitInfo, func(opts CallOptions) error { return c.UploadVisit(ctx, opts, info) })
	if err != nil {
		return err
	}
	s.State = StateVisitUploaded
	return nil
}

// UploadFees sends 2204 for one charging batch (chrg_bchno) and keeps the
// platform's split of every line and their sums, which 2206 and 2207 send.
// mdtrt_id, psn_no and chrg_bchno of each line are filled in.
func (s *OutpatientSettlement) UploadFees(ctx context.Context, c *Client, chrgBchno string, fees []FeeDetail) error {
	if !s.in(StateRegistered, StateVisitUploaded) {
		return errState(s, "上传费用明细")
	}
	if strings.TrimSpace(chrgBchno) == "" {
		return ihos.Errorf(ihos.EInvalid, "收费批次号不能为空")
	}
	lines := make([]FeeDetail, len(fees))
	var total Yuan
	for i, f := range fees {
		f.MdtrtID, f.PsnNo, f.ChrgBchno = s.MdtrtID, s.PsnNo, chrgBchno
		if f.RxCircFlag == "" {
			f.RxCircFlag = RxCircFlagNo
		}
		lines[i] = f
		total += f.DetItemFeeSumamt
	}
	var res []FeeResult
	_, err := s.call(c, InfnoFeeUpload, func(opts CallOptions) (err error) {
		res, err = c.UploadFees(ctx, opts, lines)
		return err
	})
	if err != nil {
		return err
	}
	s.ChrgBchno, s.Fees, s.MedfeeSumamt = chrgBchno, res, total
	s.FulamtOwnpayAmt, s.OverlmtSelfpay, s.PreselfpayAmt, s.InscpScpAmt = 0, 0, 0, 0
	for _, r := range res {
		s.FulamtOwnpayAmt += r.FulamtOwnpayAmt
		s.OverlmtSelfpay += r.OverlmtAmt
		s.PreselfpayAmt += r.PreselfpayAmt
		s.InscpScpAmt += r.InscpScpAmt
	}
	s.PreSetl, s.State = nil, StateFeesUploaded
	return nil
}

// settleInput is the 2206/2207 input from the state.
func (s *OutpatientSettlement) settleInput() SettleInput {
	return SettleInput{PsnNo: s.PsnNo, MdtrtCertType: s.MdtrtCertType, MdtrtCertNo: s.MdtrtCertNo, MedType: s.MedType,
		MedfeeSumamt: s.MedfeeSumamt, PsnSetlway: PsnSetlwayByItem, MdtrtID: s.MdtrtID, ChrgBchno: s.ChrgBchno,
		Insutype: s.Insutype, AcctUsedFlag: s.AcctUsedFlag, FulamtOwnpayAmt: s.FulamtOwnpayAmt,
		OverlmtSelfpay: s.OverlmtSelfpay, PreselfpayAmt: s.PreselfpayAmt, InscpScpAmt: s.InscpScpAmt}
}

// PreSettle sends 2206 and keeps the split to show the patient. It may be
// repeated (the patient changes the account choice: set AcctUsedFlag first).
func (s *OutpatientSettlement) PreSettle(ctx context.Context, c *Client) error {
	if !s.in(StateFeesUploaded, StatePreSettled) {
		return errState(s, "预结算")
	}
	var out Settlement
	_, err := s.call(c, InfnoPreSettle, func(opts CallOptions) (err error) {
		out, err = c.PreSettle(ctx, opts, s.settleInput())
		return err
	})
	if err != nil {
		return err
	}
	pre := out.SetlInfo
	s.PreSetl, s.State = &pre, StatePreSettled
	return nil
}

// PrepareSettle picks the msgid of the 2207 and enters settling, without
// calling. A payment service that persists the state now, before Settle,
// knows the msgid to resolve even if it crashes while 2207 is on the wire.
// It returns the msgid.
func (s *OutpatientSettlement) PrepareSettle(c *Client) (string, error) {
	switch s.State {
	case StateSettling:
		return s.SetlMsgID, nil
	case StatePreSettled:
	default:
		return "", errState(s, "结算（请先预结算并向患者展示金额）")
	}
	msgid := c.NewMsgID()
	s.Calls = append(s.Calls, StepCall{Infno: InfnoSettle, MsgID: msgid, Outcome: OutcomeUnknown, At: c.now().UTC()})
	s.SetlMsgID, s.State = msgid, StateSettling
	return msgid, nil
}

// Settle sends 2207 under SetlMsgID (PrepareSettle is done first when it was
// not). Its results:
//
//   - nil: settled; Setl holds the split, SplitChanged whether it differs
//     from the pre-settlement shown (then show the new amounts).
//   - EUnavailable, state still settling: no answer, the result is unknown.
//     Do not take cash and do not settle again with a new msgid: call
//     Resolve (now or from a retry queue) until the state leaves settling.
//   - EConflict, state split_mismatch: settled, but the amounts do not add
//     up; Setl keeps what came back. Cancel it (2208) and check by hand.
//   - EInvalid from the platform on the first sending: refused, nothing
//     settled; the state returns to presettled. On a repeat the refusal
//     proves nothing (the first sending may have settled) and the state
//     stays settling for Resolve.
//
// A service that restarts and finds a state settling calls Resolve, not
// Settle: it cannot know whether the crashed process had sent the 2207.
func (s *OutpatientSettlement) Settle(ctx context.Context, c *Client) error {
	return s.settle(ctx, c, false)
}

// settle is Settle; repeat says the msgid may have been sent before, so a
// refusal does not prove that nothing was settled.
func (s *OutpatientSettlement) settle(ctx context.Context, c *Client, repeat bool) error {
	if _, err := s.PrepareSettle(c); err != nil {
		return err
	}
	var out Settlement
	_, err := s.call(c, InfnoSettle, func(opts CallOptions) (err error) {
		opts.MsgID = s.SetlMsgID
		out, _, err = c.Settle(ctx, opts, s.settleInput())
		return err
	})
	rec := s.lastCall(InfnoSettle)
	switch outcome(err) {
	case OutcomeOK:
		setl := out.SetlInfo
		s.Setl, s.SetlDetail, s.State = &setl, out.SetlDetail, StateSettled
		s.SplitChanged = PreSetlChanged(s.PreSetl, s.Setl)
		return nil
	case OutcomeConflict:
		setl := out.SetlInfo
		s.Setl, s.SetlDetail, s.State = &setl, out.SetlDetail, StateSplitMismatch
		return err
	case OutcomeRefused:
		if !repeat && rec.Attempts <= 1 {
			s.State, s.SetlMsgID = StatePreSettled, ""
		}
		return err
	case OutcomeNotSent:
		rec.Outcome = OutcomeNotSent
		s.State, s.SetlMsgID = StatePreSettled, ""
		return err
	default:
		return &ihos.Error{Code: ihos.EUnavailable, Message: "医保结算结果未知，系统正在核实，请勿重复缴费", Err: err}
	}
}

// NeedsResolve reports whether a 2207 is without a final result.
func (s *OutpatientSettlement) NeedsResolve() bool { return s.State == StateSettling }

// Resolve finds the final result of a 2207 whose answer was lost, in two
// steps, and never assumes one:
//
//  1. It sends 2207 again under the same msgid. A platform that keeps the
//     first answer per msgid (the simulator does; whether every provincial
//     front-end does is not in the public material found) answers with the
//     settlement as it was made, or settles now if the first sending never
//     arrived. Either way the state becomes settled (or split_mismatch).
//  2. If that repeat is refused, the first sending may or may not have
//     settled, so Resolve sends 2601 冲正 with omsgid = SetlMsgID and
//     oinfno = 2207 (ReverseSettle): afterwards nothing is settled.
//
// No answer at either step leaves the state settling with EUnavailable:
// call Resolve again later. A refused 2601 leaves it settling with
// EConflict: the settlement must be checked by hand with the insurance
// office (the error names the msgid).
func (s *OutpatientSettlement) Resolve(ctx context.Context, c *Client) error {
	if s.State != StateSettling {
		return ihos.Errorf(ihos.EConflict, "当前没有结果未明的医保结算")
	}
	err := s.settle(ctx, c, true)
	if s.State != StateSettling || ihos.ErrorCode(err) == ihos.EUnavailable {
		return err
	}
	return s.ReverseSettle(ctx, c)
}

// ReverseSettle sends 2601 冲正 for the 2207 sent under SetlMsgID (state
// settling, or split_mismatch when no setl_id came back for 2208). On
// success nothing is settled: the state returns to fees_uploaded (the fee
// lines stay uploaded) and a new pre-settlement is needed.
func (s *OutpatientSettlement) ReverseSettle(ctx context.Context, c *Client) error {
	if !s.in(StateSettling, StateSplitMismatch) || s.SetlMsgID == "" {
		return errState(s, "冲正结算")
	}
	orig := s.SetlMsgID
	_, err := s.call(c, InfnoReversal, func(opts CallOptions) error {
		return c.Reverse(ctx, opts, Reversal{PsnNo: s.PsnNo, OMsgID: orig, OInfno: InfnoSettle})
	})
	switch outcome(err) {
	case OutcomeOK:
		s.Reversed = append(s.Reversed, orig)
		s.SetlMsgID, s.Setl, s.SetlDetail, s.PreSetl, s.SplitChanged = "", nil, nil, nil, false
		s.State = StateFeesUploaded
		return nil
	case OutcomeUnknown:
		return &ihos.Error{Code: ihos.EUnavailable, Message: "医保结算冲正结果未知，请稍后重试，请勿重复缴费", Err: err}
	default:
		return &ihos.Error{Code: ihos.EConflict, Message: "医保结算结果未明且冲正未成功，请联系医保科人工核对（报文ID " + orig + "）", Err: err}
	}
}

// Cancel sends 2208 结算撤销 for a settled (or split_mismatch) settlement.
func (s *OutpatientSettlement) Cancel(ctx context.Context, c *Client) error {
	if !s.in(StateSettled, StateSplitMismatch) || s.Setl == nil || s.Setl.SetlID == "" {
		return errState(s, "撤销结算")
	}
	var out Settlement
	_, err := s.call(c, InfnoSettleCancel, func(opts CallOptions) (err error) {
		out, err = c.CancelSettle(ctx, opts, SettleCancel{SetlID: s.Setl.SetlID, MdtrtID: s.MdtrtID, PsnNo: s.PsnNo})
		return err
	})
	if err != nil {
		return err
	}
	s.CancelSetlID, s.State = out.SetlInfo.SetlID, StateCancelled
	return nil
}

// CancelFees sends 2205 for the uploaded batch; the visit can take new fees.
func (s *OutpatientSettlement) CancelFees(ctx context.Context, c *Client) error {
	if !s.in(StateFeesUploaded, StatePreSettled, StateCancelled) {
		return errState(s, "撤销费用明细")
	}
	_, err := s.call(c, InfnoFeeCancel, func(opts CallOptions) error {
		return c.CancelFees(ctx, opts, FeeCancel{MdtrtID: s.MdtrtID, ChrgBchno: s.ChrgBchno, PsnNo: s.PsnNo})
	})
	if err != nil {
		return err
	}
	s.ChrgBchno, s.Fees, s.PreSetl = "", nil, nil
	s.MedfeeSumamt, s.FulamtOwnpayAmt, s.OverlmtSelfpay, s.PreselfpayAmt, s.InscpScpAmt = 0, 0, 0, 0, 0
	s.State = StateRegistered
	return nil
}

// CancelRegistration sends 2202; the visit is over without a settlement.
func (s *OutpatientSettlement) CancelRegistration(ctx context.Context, c *Client) error {
	if !s.in(StateRegistered, StateVisitUploaded, StateCancelled) {
		return errState(s, "撤销挂号（请先撤销结算和费用明细）")
	}
	_, err := s.call(c, InfnoRegisterCancel, func(opts CallOptions) error {
		return c.CancelRegistration(ctx, opts, RegistrationCancel{PsnNo: s.PsnNo, MdtrtID: s.MdtrtID, IptOtpNo: s.IptOtpNo})
	})
	if err != nil {
		return err
	}
	s.State = StateClosed
	return nil
}
