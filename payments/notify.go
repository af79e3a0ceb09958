package payments

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"time"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/internal/web"
)

// Notify sources.
const (
	NotifyChannel   = "channel"   // the channel: a cash leg paid
	NotifyRefund    = "refund"    // the channel: a cash refund finished
	NotifyInsurance = "insurance" // the centre (6302, forwarded by the appliance): an insurance leg settled
)

// Notify is a notify whose signature the channel client (or the appliance)
// has verified, reduced to what the payment service needs.
type Notify struct {
	Source string
	// ID is the sender's notify id: the same event delivered again carries
	// the same id and is applied once.
	ID string
	// OrderNo names what it is about: the out_trade_no (channel), the
	// out_refund_no (refund) or the insurance key.
	OrderNo string
	// State is ChannelPaid/ChannelFailed/ChannelClosed (channel),
	// LegResultSucceeded/LegResultFailed (refund) or InsSettled/InsFailed.
	State         string
	Amount        int64      // channel: fen paid; refund: fen refunded
	Split         ihos.Split // insurance
	TransactionID string
	// SignedAt is the signature's timestamp; a notify signed longer ago than
	// the service's NotifyWindow is a replay. Zero skips the check (a notify
	// that came through the appliance's replication).
	SignedAt time.Time
	RawHash  string // SHA-256 of the body, for the log
}

// Notify outcomes, as logged in payment_notifies.
const (
	OutcomeApplied          = "applied"            // changed the payment
	OutcomeDuplicate        = "duplicate"          // this notify id was seen before
	OutcomeAlready          = "already"            // the payment already knew (a query got there first)
	OutcomeBadSignature     = "rejected_signature" // forged or malformed
	OutcomeReplay           = "rejected_replay"    // signed outside the window
	OutcomeUnknownOrder     = "rejected_unknown_order"
	OutcomeAmountMismatch   = "rejected_amount"
	OutcomeStateMismatch    = "rejected_state" // e.g. paid for a payment that is closed: logged for a person
	OutcomeInvalid          = "rejected_invalid"
	maxNotifyIDLen          = 100
	notifyDetailLen         = 500
	notifyRejectedLogPrefix = "payments: notify rejected"
)

// Rejected reports whether an outcome refused the notify.
func Rejected(outcome string) bool {
	return outcome != OutcomeApplied && outcome != OutcomeDuplicate && outcome != OutcomeAlready
}

// RejectNotify logs a notify that failed verification (bad signature,
// malformed body). Nothing else changes.
func (s *Service) RejectNotify(ctx context.Context, source, claimedID, rawHash, why string) {
	s.init()
	s.logNotify(ctx, nil, Notify{Source: source, ID: claimedID, RawHash: rawHash}, "", OutcomeBadSignature, why)
}

// errDuplicateNotify unwinds the transaction of a notify already applied.
var errDuplicateNotify = errors.New("payments: duplicate notify")

// ApplyNotify applies a verified notify once. It returns the outcome; a
// rejected notify also returns an error (EInvalid or EConflict) and changes
// nothing but the log. A notify may arrive before the call that created the
// order has returned (the leg is marked pending before the call), twice, or
// after the resolver already learned the outcome: each is applied at most once.
func (s *Service) ApplyNotify(ctx context.Context, n Notify) (string, error) {
	s.init()
	if n.Source != NotifyChannel && n.Source != NotifyRefund && n.Source != NotifyInsurance || n.ID == "" || len(n.ID) > maxNotifyIDLen || n.OrderNo == "" || len(n.OrderNo) > 64 {
		s.logNotify(ctx, nil, n, "", OutcomeInvalid, "通知缺少来源、编号或订单号")
		return OutcomeInvalid, ihos.Errorf(ihos.EInvalid, "通知内容不完整")
	}
	if !n.SignedAt.IsZero() {
		if d := s.now().Sub(n.SignedAt); d > s.NotifyWindow || d < -s.NotifyWindow {
			s.logNotify(ctx, nil, n, "", OutcomeReplay, "签名时间超出允许范围："+n.SignedAt.UTC().Format(time.RFC3339))
			return OutcomeReplay, ihos.Errorf(ihos.EInvalid, "通知已过期")
		}
	}
	var (
		outcome, paymentID, detail string
		rejectErr                  error
	)
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		outcome, paymentID, detail, rejectErr = "", "", "", nil
		// Claim the notify id first: a concurrent copy waits on the unique
		// key and then fails it, so at most one applies.
		if err := s.logNotify(ctx, tx, n, "", "pending", ""); err != nil {
			if sqldb.IsUniqueViolation(err) {
				return errDuplicateNotify
			}
			return err
		}
		var err error
		switch n.Source {
		case NotifyChannel:
			outcome, paymentID, detail, rejectErr, err = s.applyChannelNotify(ctx, tx, n)
		case NotifyInsurance:
			outcome, paymentID, detail, rejectErr, err = s.applyInsuranceNotify(ctx, tx, n)
		case NotifyRefund:
			outcome, paymentID, detail, rejectErr, err = s.applyRefundNotify(ctx, tx, n)
		}
		if err != nil {
			return err
		}
		if rejectErr != nil {
			return rejectErr // rolls back; logged below without the dedupe key, so a retry is judged again
		}
		_, err = s.DB.TxExec(ctx, tx, `UPDATE payment_notifies SET outcome = ?, payment_id = ?, detail = ? WHERE dedupe_key = ?`,
			outcome, paymentID, ihos.Truncate(detail, notifyDetailLen), dedupeKey(n))
		return err
	})
	switch {
	case errors.Is(err, errDuplicateNotify):
		s.logNotify(ctx, nil, n, "", OutcomeDuplicate, "")
		return OutcomeDuplicate, nil
	case rejectErr != nil:
		s.Logger.WarnContext(ctx, notifyRejectedLogPrefix, "source", n.Source, "id", n.ID, "order", n.OrderNo, "outcome", outcome, "detail", detail)
		s.logNotify(ctx, nil, n, paymentID, outcome, detail)
		return outcome, rejectErr
	case err != nil:
		return "", wrap(err)
	}
	s.committed()
	return outcome, nil
}

func dedupeKey(n Notify) string { return n.Source + ":" + n.ID }

// logNotify writes a notify to the log: inside tx with its dedupe key (the
// claim of a verified notify), or on its own without one (a rejection or a
// duplicate, which must not take a real notify's key).
func (s *Service) logNotify(ctx context.Context, tx *sql.Tx, n Notify, paymentID, outcome, detail string) error {
	var key any
	if tx != nil {
		key = dedupeKey(n)
	}
	if outcome != "pending" && outcome != OutcomeDuplicate && Rejected(outcome) {
		s.Logger.WarnContext(ctx, notifyRejectedLogPrefix, "source", n.Source, "id", n.ID, "order", n.OrderNo, "outcome", outcome, "detail", detail)
	}
	q := `INSERT INTO payment_notifies (id, dedupe_key, source, notify_id, payment_id, order_no, received_at, raw_hash, outcome, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	args := []any{ihos.NewID(), key, ihos.Truncate(n.Source, 16), ihos.Truncate(n.ID, 128), paymentID, ihos.Truncate(n.OrderNo, 64),
		ihos.FormatTime(s.now()), ihos.Truncate(n.RawHash, 64), outcome, ihos.Truncate(detail, notifyDetailLen)}
	if tx != nil {
		_, err := s.DB.TxExec(ctx, tx, q, args...)
		return err
	}
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := s.DB.TxExec(ctx, tx, q, args...)
		return err
	})
	if err != nil {
		s.Logger.ErrorContext(ctx, "payments: notify log", "err", err)
	}
	return err
}

// paymentByOrderNo finds and locks the payment a notify names.
func (s *Service) paymentByOrderNo(ctx context.Context, tx *sql.Tx, column, value string) (*ihos.Payment, error) {
	p, err := scanPayment(s.DB.TxQueryRow(ctx, tx, `SELECT `+paymentCols+` FROM payments WHERE `+column+` = ?`+s.DB.ForUpdate(), value))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return p, err
}

func (s *Service) applyChannelNotify(ctx context.Context, tx *sql.Tx, n Notify) (outcome, paymentID, detail string, reject, err error) {
	p, err := s.paymentByOrderNo(ctx, tx, "out_trade_no", n.OrderNo)
	if err != nil {
		return "", "", "", nil, err
	}
	if p == nil {
		return OutcomeUnknownOrder, "", "订单不存在", ihos.Errorf(ihos.ENotFound, "订单不存在"), nil
	}
	if n.State != ChannelPaid {
		// The channel notifies successes; anything else is left to the
		// resolver's query, which asks for the final state.
		return OutcomeAlready, p.ID, "非支付成功通知：" + n.State, nil, nil
	}
	if n.Amount != p.CashPay {
		return OutcomeAmountMismatch, p.ID, "通知金额 " + ihos.FormatYuan(n.Amount) + " 与订单现金 " + ihos.FormatYuan(p.CashPay) + " 不符",
			ihos.Errorf(ihos.EConflict, "金额不符"), nil
	}
	switch {
	case p.Status == ihos.PaymentPaying && p.CashStatus == ihos.LegPending:
		from := p.Status
		p.CashStatus = ihos.LegDone
		p.Status = ihos.PaymentPaid
		p.TransactionID = n.TransactionID
		p.PaidAt = s.now()
		p.LastError = ""
		d := map[string]any{"transaction_id": n.TransactionID, "amount": n.Amount, "source": "notify", "notify_id": n.ID}
		if p.Ending != "" {
			d["was_ending"] = p.Ending
			p.Ending = ""
		}
		if err := s.commitChange(ctx, tx, p, from, "", change{reason: ReasonPaid, detail: d}); err != nil {
			return "", "", "", nil, err
		}
		return OutcomeApplied, p.ID, "", nil, nil
	case p.CashStatus == ihos.LegDone && p.TransactionID == n.TransactionID:
		return OutcomeAlready, p.ID, "", nil, nil
	}
	s.Logger.ErrorContext(ctx, "payments: paid notify for a payment that cannot take it: needs a person",
		"payment", p.ID, "status", p.Status, "cash", p.CashStatus, "transaction", n.TransactionID)
	return OutcomeStateMismatch, p.ID, "订单状态为 " + p.Status + "，现金支付 " + p.CashStatus,
		ihos.Errorf(ihos.EConflict, "订单状态不符"), nil
}

func (s *Service) applyInsuranceNotify(ctx context.Context, tx *sql.Tx, n Notify) (outcome, paymentID, detail string, reject, err error) {
	p, err := s.paymentByOrderNo(ctx, tx, "insurance_key", n.OrderNo)
	if err != nil {
		return "", "", "", nil, err
	}
	if p == nil {
		return OutcomeUnknownOrder, "", "订单不存在", ihos.Errorf(ihos.ENotFound, "订单不存在"), nil
	}
	if n.State == InsSettled {
		if err := ihos.CheckSplit(p.Total, n.Split); err != nil {
			return OutcomeAmountMismatch, p.ID, ihos.ErrorMessage(err), ihos.Errorf(ihos.EConflict, "金额不符"), nil
		}
	}
	if p.Status != ihos.PaymentPaying || (p.InsStatus != ihos.LegPending && p.InsStatus != ihos.LegNone) {
		return OutcomeAlready, p.ID, "", nil, nil
	}
	// The same decision as an answer to Settle or Query, in this transaction.
	applied, err := s.applyInsuranceResult(ctx, tx, p, InsuranceResult{State: n.State, Split: n.Split, SettlementID: n.TransactionID}, "notify")
	if err != nil {
		return "", "", "", nil, err
	}
	if !applied {
		return OutcomeAlready, p.ID, "", nil, nil
	}
	return OutcomeApplied, p.ID, "", nil, nil
}

func (s *Service) applyRefundNotify(ctx context.Context, tx *sql.Tx, n Notify) (outcome, paymentID, detail string, reject, err error) {
	var r *ihos.Refund
	r, err = scanRefund(s.DB.TxQueryRow(ctx, tx, `SELECT `+refundCols+` FROM refunds WHERE out_refund_no = ?`, n.OrderNo))
	if errors.Is(err, sql.ErrNoRows) {
		return OutcomeUnknownOrder, "", "退款单不存在", ihos.Errorf(ihos.ENotFound, "退款单不存在"), nil
	}
	if err != nil {
		return "", "", "", nil, err
	}
	if n.State == LegResultSucceeded && n.Amount != r.CashPart {
		return OutcomeAmountMismatch, r.PaymentID, "退款金额 " + ihos.FormatYuan(n.Amount) + " 与退款单现金 " + ihos.FormatYuan(r.CashPart) + " 不符",
			ihos.Errorf(ihos.EConflict, "金额不符"), nil
	}
	if r.Status == ihos.RefundSucceeded || r.CashStatus == ihos.LegDone {
		return OutcomeAlready, r.PaymentID, "", nil, nil
	}
	o := &legOutcome{state: n.State, msg: "退款通知：" + n.State}
	if _, err := s.applyRefundOutcome(ctx, tx, r.ID, nil, o, "notify"); err != nil {
		return "", "", "", nil, err
	}
	return OutcomeApplied, r.PaymentID, "", nil, nil
}

// NotifyParser verifies a notify's signature and decodes it; the lead adapts
// the channel client's verifier to it. An error means forged or malformed.
type NotifyParser func(r *http.Request, body []byte) (Notify, error)

// NotifyHandler is the channel's notify endpoint: it verifies with parse,
// applies, and answers as WeChat-Pay-like channels expect — 204 when the
// notify was taken (applied, duplicate, already known), 4xx with
// {"code":"FAIL"} when it was refused, 500 when it could not be recorded (the
// channel sends it again).
func (s *Service) NotifyHandler(parse NotifyParser) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.init()
		body, err := io.ReadAll(io.LimitReader(r.Body, web.MaxBody))
		if err != nil {
			web.WriteJSON(w, http.StatusBadRequest, map[string]string{"code": "FAIL", "message": "读取通知失败"})
			return
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		n, err := parse(r, body)
		if err != nil {
			s.RejectNotify(r.Context(), NotifyChannel, r.Header.Get("Wechatpay-Serial")+"/"+r.Header.Get("Wechatpay-Nonce"), hash, err.Error())
			web.WriteJSON(w, http.StatusUnauthorized, map[string]string{"code": "FAIL", "message": "签名验证失败"})
			return
		}
		n.RawHash = hash
		outcome, err := s.ApplyNotify(r.Context(), n)
		switch {
		case err == nil:
			w.WriteHeader(http.StatusNoContent)
		case Rejected(outcome) && outcome != "":
			web.WriteJSON(w, http.StatusBadRequest, map[string]string{"code": "FAIL", "message": ihos.ErrorMessage(err)})
		default:
			web.WriteJSON(w, http.StatusInternalServerError, map[string]string{"code": "FAIL", "message": "处理失败"})
		}
	})
}
