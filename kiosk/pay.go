package kiosk

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/yeqown/go-qrcode/v2"

	"ihos"
	"ihos/internal/web"
	"ihos/tickets"
)

// Cashier takes payments of the HIS's unpaid outpatient fees (诊间支付) at the
// kiosk. The appliance implements it over the cloud's payment service
// (billpay.create, payments.get, payments.cancel) and the local insurance
// settlement service (pre-settlement of the 展码 e-voucher); a nil Cashier
// means the kiosk shows the fees but does not take payments.
//
// Errors carry an ihos code and a Chinese message the kiosk shows as it is;
// EUnavailable says a dependency (the cloud, the insurance centre) cannot be
// reached right now.
type Cashier interface {
	// Quote prices the fees: with an ECToken it pre-settles them with the
	// insurance (2206) and returns the split; without one the whole total is
	// cash (Split.Cash = Total, ID may be empty).
	Quote(ctx context.Context, q QuoteRequest) (Quote, error)
	// Pay creates the payment of a quote and starts it: the insurance leg
	// settles, the cash leg (if any) becomes a channel order whose Native QR
	// code the patient scans. Calling it again with the same Key must not
	// take the money twice (the kiosk itself calls it once per quote).
	Pay(ctx context.Context, p PayRequest) (Started, error)
	// Status returns the payment as the payment service has it now (the
	// appliance asks with refresh, so a paid cash leg is noticed without
	// waiting for the notify).
	Status(ctx context.Context, paymentID string) (ihos.Payment, error)
	// Cancel stops a payment that is not paid yet (closes the cash order,
	// reverses a settled insurance leg) and returns it; a payment that was
	// paid in the meantime comes back paid.
	Cancel(ctx context.Context, paymentID string) (ihos.Payment, error)
	// Invoice returns the payment's e-invoice; an ENotFound error or a
	// Status other than InvoiceIssued means it is not issued yet.
	Invoice(ctx context.Context, paymentID string) (Invoice, error)
}

// QuoteRequest asks for the price of some of the patient's unpaid fees.
type QuoteRequest struct {
	HISPatientID string
	IDNumber     string        // the patient's resident ID number from the HIS ("" when unknown)
	PatientName  string        // as the HIS has it
	FeeIDs       []string      // the HIS fee ids, in the order of Fees
	Fees         []ihos.HISFee // the selected fees as the HIS listed them just now
	Total        int64         // sum of Fees' amounts, fen
	ECToken      string        // the 医保电子凭证 QR text (展码); "" pays everything in cash
	KioskID      string        // the kiosk asking
}

// Quote is a priced selection of fees.
type Quote struct {
	ID        string     // the insurance pre-settlement (settle.Quote.ID); may be "" for self-pay
	Total     int64      // fen
	Split     ihos.Split // fund + account + cash = Total
	ExpiresAt time.Time  // zero: no limit beyond the kiosk's own
}

// PayRequest pays a quote the patient confirmed.
type PayRequest struct {
	Key string // the kiosk's id of this attempt: the same for a repeated call
	QuoteRequest
	QuoteID string     // Quote.ID
	Split   ihos.Split // the split the patient saw and confirmed (the pre-settlement)
}

// Started is a payment under way.
type Started struct {
	PaymentID string
	Status    string     // an ihos.Payment… status: paying, or already paid (cash 0), failed …
	Split     ihos.Split // as the payment has it now
	CodeURL   string     // the channel's Native QR code for the cash part; "" when cash is 0
	Deadline  time.Time  // when the payment service closes it unpaid; zero: unknown
}

// Invoice statuses the kiosk knows (invoicing.Status…): only an issued one is printed.
const InvoiceIssued = "issued"

// Invoice is the e-invoice (财政电子票据) of a payment.
type Invoice struct {
	Status    string // invoicing.StatusPending, StatusIssued …
	BillType  string // e.g. 医疗门诊收费电子票据; "" prints the default
	BillCode  string // 票据代码
	BillNo    string // 票据号码
	CheckCode string // 校验码
	QRCode    string // the text of the QR code (the platform's check page)
	IssuedAt  time.Time
	Payee     string // 收款人
}

// Payment limits and messages.
const (
	// payWindow is how long the kiosk shows a cash QR code before it cancels
	// the payment (shorter when the payment's deadline is earlier), unless
	// Service.PayWindow says otherwise: long enough to open a phone's
	// scanner and pay, short enough that nobody walks away from a payable
	// code.
	payWindow = 3 * time.Minute
	// maxQuoteAge is how long a pre-settlement shown on the screen can be paid.
	maxQuoteAge = 5 * time.Minute
	// invoiceWait is how long after paying the kiosk looks for the e-invoice.
	invoiceWait = 90 * time.Second

	msgNoCashier   = "本机暂不支持缴费，请到收费窗口或使用手机缴费"
	msgSelectFees  = "请选择要缴纳的费用"
	msgFeeGone     = "所选费用已变化（可能已在其他地方缴费），请重新选择"
	msgQuoteGone   = "本次结算信息已失效，请重新选择费用"
	msgPayBusy     = "您有一笔支付正在进行，请先完成或取消"
	msgPayGone     = "未找到这笔支付，请重新缴费"
	msgOtherPerson = "医保电子凭证与当前患者不一致，请出示本人的医保电子凭证"
	msgSplitDiffer = "医保结算金额与预结算不一致，本次支付已取消，请重新缴费"
)

// payQuote is the quote shown to the patient, waiting for 确认支付.
type payQuote struct {
	id      string // the kiosk's id; also the Key of the payment
	req     QuoteRequest
	quote   Quote
	expires time.Time
}

// payment is a payment started at the kiosk in the session.
type payment struct {
	mu         sync.Mutex // one Cashier call at a time for this payment (double taps, polls)
	key        string     // the quote it pays
	started    Started
	p          ihos.Payment
	known      bool // p came from Cashier.Status or Cancel, not only from Started
	fees       []ihos.HISFee
	expires    time.Time // when the kiosk cancels an unpaid payment
	cancelling bool      // a cancel was asked for; the payment service is winding it down
	message    string    // why it ended, for the screen

	receiptJob, invoiceJob string // printed once each
	receiptErr, invoiceErr string
	invoiceUntil           time.Time
	invoice                Invoice
}

// active reports whether the payment may still take money; p.mu is held.
func (p *payment) active() bool { return p.p.Status == "" || ihos.PaymentActive(p.p.Status) }

// isActive is active for a caller that does not hold p.mu.
func (p *payment) isActive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active()
}

// cashierError turns a Cashier failure into what the patient reads.
func cashierError(err error) error {
	if ihos.ErrorCode(err) == ihos.EInternal {
		return &ihos.Error{Code: ihos.EUnavailable, Message: "缴费服务暂时不可用，请稍后再试或到收费窗口缴费", Err: err}
	}
	return err
}

// selectFees returns the patient's unpaid fees with the given ids, re-read
// from the HIS so that a fee paid elsewhere meanwhile is not paid twice
// (nor one paid in this session that the HIS does not know of yet).
func (s *Service) selectFees(ctx context.Context, sess *session, ids []string) ([]ihos.HISFee, error) {
	if len(ids) == 0 {
		return nil, ihos.Errorf(ihos.EInvalid, msgSelectFees)
	}
	fees, err := s.HIS.UnpaidFees(ctx, sess.patient.HISID)
	if err != nil {
		return nil, hisError(err)
	}
	byID := map[string]ihos.HISFee{}
	s.mu.Lock()
	sess.fees = fees
	for _, f := range fees {
		if f.FeeID != "" && !sess.paid[f.FeeID] {
			byID[f.FeeID] = f
		}
	}
	s.mu.Unlock()
	seen := map[string]bool{}
	var out []ihos.HISFee
	for _, id := range ids {
		f, ok := byID[id]
		if !ok || seen[id] {
			return nil, ihos.Errorf(ihos.EConflict, msgFeeGone)
		}
		seen[id] = true
		out = append(out, f)
	}
	return out, nil
}

// quoteView is the pre-settlement the patient confirms.
type quoteView struct {
	QuoteID   string `json:"quote_id"`
	Insurance bool   `json:"insurance"`
	Count     int    `json:"count"`
	Total     string `json:"total"`
	Fund      string `json:"fund"`
	Account   string `json:"account"`
	Cash      string `json:"cash"`
}

func (s *Service) payQuote(w http.ResponseWriter, r *http.Request, k Kiosk) error {
	sess, err := s.session(k, sessionID(r))
	if err != nil {
		return err
	}
	var in struct {
		FeeIDs  []string `json:"fee_ids"`
		ECToken string   `json:"ec_token"`
	}
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	if s.Cashier == nil {
		return ihos.Errorf(ihos.EUnavailable, msgNoCashier)
	}
	s.mu.Lock()
	cur := sess.pay
	s.mu.Unlock()
	if cur != nil && cur.isActive() {
		return ihos.Errorf(ihos.EConflict, msgPayBusy)
	}
	ctx := r.Context()
	in.ECToken = strings.TrimSpace(in.ECToken)
	if len(in.ECToken) > 512 {
		return ihos.Errorf(ihos.EInvalid, msgBadVoucher)
	}
	if in.ECToken != "" && s.Vouchers != nil {
		// The voucher must be the patient's own: whoever scans a code pays
		// with that person's insurance.
		idNumber, _, err := s.Vouchers.Resolve(ctx, in.ECToken)
		if err != nil {
			if c := ihos.ErrorCode(err); c == ihos.EInvalid || c == ihos.ENotFound {
				return &ihos.Error{Code: ihos.EInvalid, Message: msgBadVoucher, Err: err}
			}
			return &ihos.Error{Code: ihos.EUnavailable, Message: "医保系统暂时无法连接，请选择自费支付或稍后再试", Err: err}
		}
		if !strings.EqualFold(strings.TrimSpace(idNumber), sess.patient.IDNumber) {
			return ihos.Errorf(ihos.EForbidden, msgOtherPerson)
		}
	}
	fees, err := s.selectFees(ctx, sess, in.FeeIDs)
	if err != nil {
		return err
	}
	req := QuoteRequest{HISPatientID: sess.patient.HISID, IDNumber: sess.patient.IDNumber, PatientName: sess.patient.Name,
		Fees: fees, ECToken: in.ECToken, KioskID: k.ID}
	for _, f := range fees {
		req.FeeIDs = append(req.FeeIDs, f.FeeID)
		req.Total += f.AmountFen
	}
	q, err := s.Cashier.Quote(ctx, req)
	if err != nil {
		return cashierError(err)
	}
	if q.Total != req.Total || ihos.CheckSplit(req.Total, q.Split) != nil || in.ECToken == "" && q.Split.Cash != req.Total {
		return &ihos.Error{Code: ihos.EUnavailable, Message: "结算金额有误，请到收费窗口缴费",
			Err: fmt.Errorf("quote %+v for a total of %d", q, req.Total)}
	}
	pq := &payQuote{id: ihos.NewID(), req: req, quote: q, expires: s.now().Add(maxQuoteAge)}
	if !q.ExpiresAt.IsZero() && q.ExpiresAt.Before(pq.expires) {
		pq.expires = q.ExpiresAt
	}
	s.mu.Lock()
	sess.quote = pq
	s.mu.Unlock()
	web.WriteJSON(w, http.StatusOK, quoteView{QuoteID: pq.id, Insurance: in.ECToken != "", Count: len(fees),
		Total: ihos.FormatYuan(q.Total), Fund: ihos.FormatYuan(q.Split.Fund), Account: ihos.FormatYuan(q.Split.Account),
		Cash: ihos.FormatYuan(q.Split.Cash)})
	return nil
}

// payView is a payment on the screen.
type payView struct {
	PaymentID   string `json:"payment_id"`
	Status      string `json:"status"` // paying, paid, failed, cancelled, closed
	StatusLabel string `json:"status_label"`
	Message     string `json:"message,omitempty"`
	Total       string `json:"total"`
	Fund        string `json:"fund"`
	Account     string `json:"account"`
	Cash        string `json:"cash"`
	QR          string `json:"qr,omitempty"` // the image of the cash QR code, while it can be paid
	ExpiresIn   int    `json:"expires_in"`   // seconds left to pay
	// Receipt and Invoice are the prints: "" (not yet), pending, printed,
	// failed, or none (nothing will be printed: no printer, or the invoice
	// is not issued within invoiceWait).
	Receipt        string `json:"receipt"`
	ReceiptMessage string `json:"receipt_message,omitempty"`
	Invoice        string `json:"invoice"`
	InvoiceMessage string `json:"invoice_message,omitempty"`
}

func (s *Service) payView(ctx context.Context, p *payment) payView {
	pay := p.p
	split := pay.Split()
	if pay.ID == "" {
		split = p.started.Split
	}
	v := payView{PaymentID: p.started.PaymentID, Status: pay.Status, StatusLabel: ihos.PaymentStatusLabel(pay.Status), Message: p.message,
		Total: ihos.FormatYuan(split.Total()), Fund: ihos.FormatYuan(split.Fund), Account: ihos.FormatYuan(split.Account),
		Cash: ihos.FormatYuan(split.Cash)}
	if pay.Status == ihos.PaymentCreated {
		v.Status = ihos.PaymentPaying
	}
	if p.active() {
		left := p.expires.Sub(s.now())
		if left > 0 {
			v.ExpiresIn = int((left + time.Second - 1) / time.Second)
		}
		switch {
		case p.cancelling || pay.Ending != "" || left <= 0:
			v.Status, v.Message = "cancelling", "正在取消支付，请稍候…"
		case p.started.CodeURL != "" && split.Cash > 0 && pay.CashStatus != ihos.LegDone:
			v.QR = "/kiosk/api/pay/" + p.started.PaymentID + "/qr.png"
		}
	}
	if pay.Status != ihos.PaymentPaid {
		return v
	}
	v.Receipt, v.ReceiptMessage = s.jobState(ctx, p.receiptJob, p.receiptErr)
	v.Invoice, v.InvoiceMessage = s.jobState(ctx, p.invoiceJob, p.invoiceErr)
	if p.invoiceJob == "" && p.invoiceErr == "" && s.now().After(p.invoiceUntil) {
		v.Invoice, v.InvoiceMessage = "none", "电子票据正在开具，稍后可在手机上查看，或到人工窗口打印"
	}
	return v
}

// jobState is the state of a print job for the payment screens.
func (s *Service) jobState(ctx context.Context, jobID, failed string) (string, string) {
	switch {
	case failed != "":
		return "none", failed
	case jobID == "":
		return "", ""
	}
	status, lastErr, err := s.Printer.JobStatus(ctx, jobID)
	if err != nil {
		return JobPending, ""
	}
	if status != JobPrinted && status != JobFailed {
		status = JobPending
	}
	return status, lastErr
}

// sessionPayment returns the session's payment with id.
func (s *Service) sessionPayment(sess *session, id string) (*payment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess.pay == nil || id == "" || sess.pay.started.PaymentID != id {
		return nil, ihos.Errorf(ihos.ENotFound, msgPayGone)
	}
	return sess.pay, nil
}

func (s *Service) payStart(w http.ResponseWriter, r *http.Request, k Kiosk) error {
	sess, err := s.session(k, sessionID(r))
	if err != nil {
		return err
	}
	var in struct {
		QuoteID string `json:"quote_id"`
	}
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	if s.Cashier == nil {
		return ihos.Errorf(ihos.EUnavailable, msgNoCashier)
	}
	ctx := r.Context()
	// One payment start per session at a time: a double tap waits here and
	// then finds the payment the first tap started.
	sess.payMu.Lock()
	defer sess.payMu.Unlock()
	s.mu.Lock()
	q, cur := sess.quote, sess.pay
	s.mu.Unlock()
	if cur != nil && cur.key == in.QuoteID {
		cur.mu.Lock()
		v := s.payView(ctx, cur)
		cur.mu.Unlock()
		web.WriteJSON(w, http.StatusOK, v)
		return nil
	}
	if cur != nil && cur.isActive() {
		return ihos.Errorf(ihos.EConflict, msgPayBusy)
	}
	if q == nil || q.id != in.QuoteID || s.now().After(q.expires) {
		return ihos.Errorf(ihos.EConflict, msgQuoteGone)
	}
	st, err := s.Cashier.Pay(ctx, PayRequest{Key: q.id, QuoteRequest: q.req, QuoteID: q.quote.ID, Split: q.quote.Split})
	if err != nil {
		return cashierError(err)
	}
	if st.PaymentID == "" {
		return &ihos.Error{Code: ihos.EUnavailable, Message: "缴费服务暂时不可用，请稍后再试或到收费窗口缴费", Err: fmt.Errorf("pay started without a payment id")}
	}
	now := s.now()
	window := s.PayWindow
	if window <= 0 {
		window = payWindow
	}
	p := &payment{key: q.id, started: st, fees: q.req.Fees, expires: now.Add(window)}
	if !st.Deadline.IsZero() && st.Deadline.Before(p.expires) {
		p.expires = st.Deadline
	}
	p.p = ihos.Payment{ID: st.PaymentID, Status: st.Status, FundPay: st.Split.Fund, AccountPay: st.Split.Account, CashPay: st.Split.Cash}
	if p.p.Status == "" {
		p.p.Status = ihos.PaymentPaying
	}
	s.mu.Lock()
	sess.pay = p
	sess.quote = nil
	s.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.active() {
		// Paid at once (insurance only), or failed: learn the rest now.
		s.refresh(ctx, k, sess, p)
	}
	web.WriteJSON(w, http.StatusOK, s.payView(ctx, p))
	return nil
}

// refresh asks the Cashier where the payment stands and does what follows:
// prints the receipt once it is paid, the e-invoice once issued, and cancels
// a payment whose time on the screen ran out. p.mu is held.
func (s *Service) refresh(ctx context.Context, k Kiosk, sess *session, p *payment) {
	if p.active() || !p.known {
		pay, err := s.Cashier.Status(ctx, p.started.PaymentID)
		if err != nil {
			slog.WarnContext(ctx, "kiosk: payment status", "payment", p.started.PaymentID, "err", err)
			return // still paying, as far as the screen knows; asked again at the next poll
		}
		p.p, p.known = pay, true
		switch {
		case pay.Status == ihos.PaymentPaying && pay.NeedsConfirm:
			// The settlement differs from the pre-settlement the patient
			// confirmed: never take more cash than they agreed to.
			s.cancel(ctx, p)
			if !p.active() && p.p.Status != ihos.PaymentPaid {
				p.message = msgSplitDiffer
			}
		case p.active() && s.now().After(p.expires):
			s.cancel(ctx, p)
			if !p.active() && p.p.Status != ihos.PaymentPaid {
				p.message = "支付超时，本次支付已取消"
			}
		}
	}
	switch p.p.Status {
	case ihos.PaymentPaid:
		s.mu.Lock()
		if sess.paid == nil {
			sess.paid = map[string]bool{}
		}
		for _, f := range p.fees {
			sess.paid[f.FeeID] = true
		}
		s.mu.Unlock()
		s.printPaid(ctx, k, sess, p)
	case ihos.PaymentFailed:
		if p.message == "" {
			p.message = "支付失败，未扣费或已退回，请重新缴费或到收费窗口缴费"
		}
	case ihos.PaymentClosed:
		if p.message == "" {
			p.message = "支付已超时关闭，请重新缴费"
		}
	case ihos.PaymentCancelled:
		if p.message == "" {
			p.message = "本次支付已取消"
		}
	}
}

// cancel asks the Cashier to cancel p; p.mu is held.
func (s *Service) cancel(ctx context.Context, p *payment) error {
	p.cancelling = true
	pay, err := s.Cashier.Cancel(ctx, p.started.PaymentID)
	if err != nil {
		return cashierError(err)
	}
	p.p, p.known = pay, true
	return nil
}

// printPaid prints the receipt of a paid payment, and its e-invoice once
// issued: each once, whatever the number of polls. p.mu is held.
func (s *Service) printPaid(ctx context.Context, k Kiosk, sess *session, p *payment) {
	canPrint := s.Printer != nil && k.PrinterID != ""
	if p.invoiceUntil.IsZero() {
		p.invoiceUntil = s.now().Add(invoiceWait)
	}
	if !canPrint {
		p.receiptErr, p.invoiceErr = msgNoPrinter, "电子票据稍后可在手机上查看，或到人工窗口打印"
		return
	}
	if p.receiptJob == "" && p.receiptErr == "" {
		id, err := s.printTicket(ctx, k, sess, s.receipt(k, sess, p), fmt.Sprintf("缴费凭条 %s 元", ihos.FormatYuan(p.p.Total)))
		if err != nil {
			slog.WarnContext(ctx, "kiosk: print receipt", "payment", p.p.ID, "err", err)
			p.receiptErr = "凭条未能打印，请到人工窗口打印"
		}
		p.receiptJob = id
	}
	if p.invoiceJob != "" || p.invoiceErr != "" || s.now().After(p.invoiceUntil) {
		return
	}
	inv, err := s.Cashier.Invoice(ctx, p.p.ID)
	if err != nil || inv.Status != InvoiceIssued {
		if err != nil && ihos.ErrorCode(err) != ihos.ENotFound {
			slog.WarnContext(ctx, "kiosk: invoice", "payment", p.p.ID, "err", err)
		}
		return
	}
	p.invoice = inv
	id, err := s.printTicket(ctx, k, sess, s.invoiceTicket(k, sess, p), "电子票据 "+inv.BillNo)
	if err != nil {
		slog.WarnContext(ctx, "kiosk: print invoice", "payment", p.p.ID, "err", err)
		p.invoiceErr = "电子票据未能打印，请到人工窗口打印"
	}
	p.invoiceJob = id
}

// printTicket prints a payment's ticket for the session's patient, so that
// the reprint path offers it later, and audits it.
func (s *Service) printTicket(ctx context.Context, k Kiosk, sess *session, t Ticket, title string) (string, error) {
	id, err := s.Printer.Print(ctx, k.PrinterID, t, title, "kiosk:"+k.ID, sess.patient.HISID)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	sess.jobs[id] = true
	s.mu.Unlock()
	if err := s.auditPrint(ctx, k, "print", id, fmt.Sprintf("自助机「%s」为患者 %s 打印%s", k.Name, sess.patient.HISID, title)); err != nil {
		slog.WarnContext(ctx, "kiosk: audit print", "job", id, "err", err)
	}
	return id, nil
}

// receipt is the 缴费凭条 of a paid payment.
func (s *Service) receipt(k Kiosk, sess *session, p *payment) tickets.Receipt {
	pay := p.p
	no := pay.OutTradeNo
	if no == "" {
		no = pay.ID
	}
	channel := ihos.ChannelLabels[pay.Channel]
	if pay.Channel != ihos.ChannelSelfPay && pay.CashPay > 0 {
		channel += "+扫码支付"
	}
	if channel == "" {
		channel = "扫码支付"
	}
	paidAt := pay.PaidAt
	if paidAt.IsZero() {
		paidAt = s.now()
	}
	t := tickets.Receipt{Hospital: s.Hospital, ReceiptNo: no, PatientName: sess.patient.Name, VisitNo: commonVisit(p.fees),
		Total: pay.Total, FundPay: pay.FundPay, AccountPay: pay.AccountPay, CashPay: pay.CashPay, Channel: channel,
		PaidAt: paidAt, Cashier: "自助机 " + k.Name}
	if t.Total == 0 {
		t.Total = pay.Split().Total()
	}
	for _, f := range p.fees {
		t.Items = append(t.Items, tickets.ReceiptItem{Name: f.ItemName, Quantity: f.Quantity, Amount: f.AmountFen})
	}
	return t
}

// invoiceTicket is the e-invoice summary of a paid payment.
func (s *Service) invoiceTicket(k Kiosk, sess *session, p *payment) tickets.Invoice {
	inv, pay := p.invoice, p.p
	t := tickets.Invoice{Hospital: s.Hospital, BillType: inv.BillType, BillCode: inv.BillCode, BillNo: inv.BillNo,
		CheckCode: inv.CheckCode, IssuedAt: inv.IssuedAt, Payer: sess.patient.Name, Total: pay.Total,
		FundPay: pay.FundPay, AccountPay: pay.AccountPay, CashPay: pay.CashPay, Payee: inv.Payee, QRCode: inv.QRCode}
	if t.BillType == "" {
		t.BillType = "医疗门诊收费电子票据"
	}
	if t.Total == 0 {
		t.Total = pay.Split().Total()
	}
	if t.Payee == "" {
		t.Payee = "自助机 " + k.Name
	}
	for _, f := range p.fees {
		t.Items = append(t.Items, tickets.InvoiceItem{Name: f.ItemName, Amount: f.AmountFen})
	}
	return t
}

// commonVisit is the visit number of fees that all belong to one visit, or "".
func commonVisit(fees []ihos.HISFee) string {
	v := ""
	for i, f := range fees {
		if i > 0 && f.VisitNo != v {
			return ""
		}
		v = f.VisitNo
	}
	return v
}

func (s *Service) payStatus(w http.ResponseWriter, r *http.Request, k Kiosk) error {
	sess, err := s.session(k, sessionID(r))
	if err != nil {
		return err
	}
	p, err := s.sessionPayment(sess, r.PathValue("id"))
	if err != nil {
		return err
	}
	ctx := r.Context()
	p.mu.Lock()
	defer p.mu.Unlock()
	s.refresh(ctx, k, sess, p)
	web.WriteJSON(w, http.StatusOK, s.payView(ctx, p))
	return nil
}

func (s *Service) payCancel(w http.ResponseWriter, r *http.Request, k Kiosk) error {
	sess, err := s.session(k, sessionID(r))
	if err != nil {
		return err
	}
	p, err := s.sessionPayment(sess, r.PathValue("id"))
	if err != nil {
		return err
	}
	ctx := r.Context()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active() {
		if err := s.cancel(ctx, p); err != nil {
			return err
		}
		if p.p.Status == ihos.PaymentCancelled || p.p.Status == ihos.PaymentClosed {
			p.message = "本次支付已取消，未扣费"
		}
	}
	s.refresh(ctx, k, sess, p) // paid meanwhile: the receipt prints all the same
	web.WriteJSON(w, http.StatusOK, s.payView(ctx, p))
	return nil
}

// payQR serves the cash QR code as a PNG image. An <img> cannot send the
// session header, so the image is the kiosk's (device cookie) current
// session's unpaid payment, and nothing else.
func (s *Service) payQR(w http.ResponseWriter, r *http.Request, k Kiosk) error {
	id := r.PathValue("id")
	s.mu.Lock()
	sess := s.sessions[k.ID]
	var p *payment
	if sess != nil && !s.now().After(sess.expires) && sess.pay != nil && sess.pay.started.PaymentID == id {
		p = sess.pay
	}
	s.mu.Unlock()
	if p == nil {
		return ihos.Errorf(ihos.ENotFound, msgPayGone)
	}
	p.mu.Lock()
	code, ok := p.started.CodeURL, p.active()
	p.mu.Unlock()
	if code == "" || !ok {
		return ihos.Errorf(ihos.ENotFound, msgPayGone)
	}
	b, err := qrPNG(code, 8)
	if err != nil {
		return ihos.Internal(err)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "image/png")
	w.Write(b)
	return nil
}

// qrMatrix receives the module matrix from go-qrcode.
type qrMatrix struct{ bits [][]bool }

func (m *qrMatrix) Write(mat qrcode.Matrix) error { m.bits = mat.Bitmap(); return nil }
func (m *qrMatrix) Close() error                  { return nil }

// qrPNG draws text as a black-on-white QR code (error correction M), scale
// pixels per module, with the 4-module quiet zone scanners need.
func qrPNG(text string, scale int) ([]byte, error) {
	q, err := qrcode.NewWith(text, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		return nil, err
	}
	var m qrMatrix
	if err := q.Save(&m); err != nil {
		return nil, err
	}
	n := len(m.bits)
	if n == 0 {
		return nil, fmt.Errorf("qr: empty matrix")
	}
	const quiet = 4
	size := (n + 2*quiet) * scale
	img := image.NewGray(image.Rect(0, 0, size, size))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y, row := range m.bits {
		for x, dark := range row {
			if !dark {
				continue
			}
			for dy := range scale {
				for dx := range scale {
					img.SetGray((x+quiet)*scale+dx, (y+quiet)*scale+dy, color.Gray{})
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// abandon cancels the unpaid payment of a session that ended (logout, the
// idle timeout, another patient, the kiosk disabled) in the background: the
// patient has left, so a QR code nobody pays must not stay payable. s.mu is
// held.
func (s *Service) abandon(sess *session) {
	if sess == nil || s.Cashier == nil {
		return
	}
	p := sess.pay
	if p == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.active() {
			return
		}
		if err := s.cancel(ctx, p); err != nil {
			slog.WarnContext(ctx, "kiosk: cancel abandoned payment", "payment", p.started.PaymentID, "err", err)
		}
	}()
}
