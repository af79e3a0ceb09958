// Package invoicing issues the finance e-invoice (财政电子票据) of every paid
// payment through the finance platform (package einvoice) and writes it off
// (红冲) when the payment is fully refunded. It runs on the appliance, which
// holds the hospital's link to the platform: payments arrive there as a
// replica from the cloud, and the invoices it keeps (table invoices) are
// appliance-owned and replicate back, so the patient's phone can show them.
//
// # Rules
//
//   - A payment paid or partially refunded gets one invoice for its total.
//     Its busNo is the payment's ID, stored (status pending) before the first
//     call, so the platform issues at most one bill per payment whatever
//     happens to the call.
//   - Once a call's outcome was unknown (EUnavailable), every later attempt
//     first asks Query(busNo); only ENotFound lets it issue again.
//   - A fully refunded payment's issued invoice is written off once: the
//     worker queries first and stores the red bill when the platform already
//     has one; an answer "已冲红" also means done.
//   - Partial refunds leave the invoice as it is: the bill stays for what was
//     paid and is written off only with the full refund. (The platform's
//     partial write-off is not in REFERENCE.md; writing off and re-issuing
//     for the remainder would need a second busNo per payment.) The console
//     shows partially refunded payments beside their invoice.
//   - A payment refunded in full before its invoice was issued gets none: a
//     pending row is resolved by Query (written off when a bill exists) or
//     ends cancelled.
//
// Failures back off (Backoff); pending and failed invoices and those whose
// write-off is overdue are counted by Stats for the console's alarm.
package invoicing

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	stdsync "sync"
	"time"

	"ihos"
	"ihos/einvoice"
	"ihos/internal/sqldb"
	"ihos/sync"
)

// Entities declares the invoices the cloud receives (appliance-owned).
func Entities() []sync.Entity {
	return []sync.Entity{{Name: "invoices", Table: "invoices", Owner: sync.Appliance}}
}

// Invoice statuses.
const (
	StatusPending    = "pending"     // busNo stored; not issued yet or outcome unknown
	StatusIssued     = "issued"      // the platform issued the bill
	StatusWrittenOff = "written_off" // the bill was written off (红冲) after a full refund
	StatusFailed     = "failed"      // the platform refused the issue; retried with backoff
	StatusCancelled  = "cancelled"   // refunded in full before any bill was issued
)

// StatusLabel is the Chinese name of an invoice status.
func StatusLabel(status string) string {
	switch status {
	case StatusPending:
		return "开票中"
	case StatusIssued:
		return "已开票"
	case StatusWrittenOff:
		return "已冲红"
	case StatusFailed:
		return "开票失败（重试中）"
	case StatusCancelled:
		return "未开票（已全额退款）"
	}
	return status
}

// Platform is the part of *einvoice.Client the worker uses.
type Platform interface {
	IssueOutpatient(ctx context.Context, o einvoice.Outpatient) (einvoice.Bill, error)
	IssueRegistration(ctx context.Context, r einvoice.Registration) (einvoice.Bill, error)
	WriteOff(ctx context.Context, w einvoice.WriteOffReq) (einvoice.Scarlet, error)
	Query(ctx context.Context, busNo string) (einvoice.Bill, error)
}

// Pay channel codes of the platform used when Service.Channels leaves one
// empty (einvoice.PayChannel); provinces differ, so they are configurable.
const (
	DefaultChannelCash    = "03" // 网上支付 (微信/支付宝)
	DefaultChannelAccount = "11" // 医保个人账户
	DefaultChannelFund    = "12" // 医保统筹
	DefaultBusType        = "02" // 门诊
)

// Channels are the platform's pay channel codes.
type Channels struct {
	Cash, Account, Fund string
}

// Service issues and writes off invoices.
type Service struct {
	DB       *sqldb.DB
	Platform Platform
	Hospital string
	// PlaceCode is the platform's 开票点编码; Payee the 收费员 and 票据编制人
	// written on every bill.
	PlaceCode string
	Payee     string
	BusType   string // 业务标识; empty: DefaultBusType
	Channels  Channels
	// ChargeCodes maps a payment's business type to the platform's charge
	// code (收费项目代码); a missing one sends the business type itself.
	ChargeCodes map[string]string
	// Capture records replicated rows for the cloud inside a transaction
	// (sync.Replica.Capture); nil on a node without sync.
	Capture func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error
	// AfterCommit runs after a commit that captured something (the link's Kick).
	AfterCommit func()
	// Interval is how often Run looks for work; 0 means 15 s.
	Interval time.Duration
	// Backoff is the wait before attempt n+1 after n failed attempts; nil
	// means 15 s doubling up to 30 min.
	Backoff func(attempts int) time.Duration
	Logger  *slog.Logger
	Now     func() time.Time

	kick chan struct{}
	once stdsync.Once
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Service) backoff(attempts int) time.Duration {
	if s.Backoff != nil {
		return s.Backoff(attempts)
	}
	d := 15 * time.Second
	for i := 1; i < attempts && d < 30*time.Minute; i++ {
		d *= 2
	}
	return min(d, 30*time.Minute)
}

func (s *Service) kickCh() chan struct{} {
	s.once.Do(func() { s.kick = make(chan struct{}, 1) })
	return s.kick
}

// Kick makes Run look for work now (after a payment replica was applied).
func (s *Service) Kick() {
	select {
	case s.kickCh() <- struct{}{}:
	default:
	}
}

// Run issues and writes off invoices until ctx ends.
func (s *Service) Run(ctx context.Context) {
	every := s.Interval
	if every <= 0 {
		every = 15 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.Process(ctx); err != nil && ctx.Err() == nil {
			s.log().Warn("invoicing pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kickCh():
		}
	}
}

// Process makes one pass: it opens a pending invoice for every paid payment
// without one, then works on every due invoice. It returns how many platform
// operations succeeded; a failure of one invoice is recorded on it and does
// not stop the pass.
func (s *Service) Process(ctx context.Context) (int, error) {
	if err := s.open(ctx); err != nil {
		return 0, err
	}
	due, err := s.due(ctx)
	if err != nil {
		return 0, err
	}
	done := 0
	for _, w := range due {
		if ctx.Err() != nil {
			return done, ctx.Err()
		}
		ok, err := s.work(ctx, w)
		if err != nil {
			return done, err
		}
		if ok {
			done++
		}
	}
	return done, nil
}

// open records a pending invoice (its busNo) for every payment that holds
// money and has none.
func (s *Service) open(ctx context.Context) error {
	rows, err := s.DB.QueryContext(ctx, `SELECT p.id, p.hospital_id, p.patient_id, p.business_type, p.total, p.fund_pay, p.account_pay, p.cash_pay
		FROM payments p LEFT JOIN invoices i ON i.payment_id = p.id
		WHERE p.status IN (?, ?) AND p.total > 0 AND p.deleted_at IS NULL AND i.id IS NULL
		ORDER BY p.created_at LIMIT 200`, ihos.PaymentPaid, ihos.PaymentPartiallyRefunded)
	if err != nil {
		return err
	}
	type pay struct {
		id, hospital, patient, business string
		total, fund, account, cash      int64
	}
	var ps []pay
	for rows.Next() {
		var p pay
		if err := rows.Scan(&p.id, &p.hospital, &p.patient, &p.business, &p.total, &p.fund, &p.account, &p.cash); err != nil {
			rows.Close()
			return err
		}
		ps = append(ps, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, p := range ps {
		hospital := p.hospital
		if hospital == "" {
			hospital = s.Hospital
		}
		id, now := ihos.NewID(), ihos.FormatTime(s.now())
		err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := s.DB.TxQueryRow(ctx, tx, `SELECT count(*) FROM invoices WHERE payment_id = ?`, p.id).Scan(&n); err != nil || n > 0 {
				return err
			}
			if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO invoices (id, hospital_id, payment_id, patient_id, business_type, bus_no, total, fund_pay, account_pay, cash_pay,
				status, attempts, last_error, next_attempt_at, version, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', ?, 1, ?, ?)`,
				id, hospital, p.id, p.patient, p.business, p.id, p.total, p.fund, p.account, p.cash, StatusPending, now, now, now); err != nil {
				return err
			}
			return s.capture(ctx, tx, id)
		})
		if err != nil {
			return err
		}
		s.committed()
	}
	return nil
}

func (s *Service) capture(ctx context.Context, tx *sql.Tx, id string) error {
	if s.Capture == nil {
		return nil
	}
	return s.Capture(ctx, tx, sync.Ref{Entity: "invoices", ID: id})
}

func (s *Service) committed() {
	if s.AfterCommit != nil {
		s.AfterCommit()
	}
}

// job is a due invoice with what the worker needs of its payment.
type job struct {
	inv Invoice
	pay ihos.Payment
}

// due lists invoices to issue (pending, failed) and issued ones whose
// payment is fully refunded, whose next attempt is due.
func (s *Service) due(ctx context.Context) ([]job, error) {
	now := ihos.FormatTime(s.now())
	rows, err := s.DB.QueryContext(ctx, `SELECT `+invoiceCols+`, p.status, p.subject, p.channel, p.business_id, p.refunded, p.paid_at, p.created_at
		FROM invoices i JOIN payments p ON p.id = i.payment_id
		WHERE i.deleted_at IS NULL AND (i.next_attempt_at IS NULL OR i.next_attempt_at <= ?)
		  AND (i.status IN (?, ?) OR (i.status = ? AND p.status = ?))
		ORDER BY i.created_at LIMIT 100`, now, StatusPending, StatusFailed, StatusIssued, ihos.PaymentRefunded)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []job
	for rows.Next() {
		var j job
		var paid sql.NullString
		var created string
		dest := append(j.inv.dest(), &j.pay.Status, &j.pay.Subject, &j.pay.Channel, &j.pay.BusinessID, &j.pay.Refunded, &paid, &created)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		j.inv.finish()
		p := &j.pay
		p.ID, p.HospitalID, p.PatientID, p.BusinessType = j.inv.PaymentID, j.inv.HospitalID, j.inv.PatientID, j.inv.BusinessType
		p.Total, p.FundPay, p.AccountPay, p.CashPay = j.inv.Total, j.inv.FundPay, j.inv.AccountPay, j.inv.CashPay
		p.PaidAt = parseTime(paid.String)
		if p.PaidAt.IsZero() {
			p.PaidAt = parseTime(created)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// work moves one invoice on. It reports whether a platform operation
// succeeded; the error is a database error only.
func (s *Service) work(ctx context.Context, j job) (bool, error) {
	refunded := j.pay.Status == ihos.PaymentRefunded
	switch {
	case j.inv.Status == StatusIssued && refunded:
		return s.writeOff(ctx, j.inv)
	case refunded:
		return s.resolveRefunded(ctx, j.inv)
	default:
		return s.issue(ctx, j)
	}
}

// issue issues the bill of a pending or failed invoice. After any earlier
// attempt it asks Query first, so an issue whose answer was lost is found,
// never issued twice.
func (s *Service) issue(ctx context.Context, j job) (bool, error) {
	if j.inv.Attempts > 0 {
		b, err := s.Platform.Query(ctx, j.inv.BusNo)
		switch {
		case err == nil:
			return true, s.storeIssued(ctx, j.inv.ID, b)
		case ihos.ErrorCode(err) != ihos.ENotFound:
			return false, s.failed(ctx, j.inv, StatusPending, err)
		}
	}
	o, err := s.Outpatient(ctx, &j.pay)
	if err != nil {
		return false, s.failed(ctx, j.inv, StatusFailed, err)
	}
	var b einvoice.Bill
	if j.pay.BusinessType == ihos.PayVisitFee {
		b, err = s.Platform.IssueRegistration(ctx, o)
	} else {
		b, err = s.Platform.IssueOutpatient(ctx, o)
	}
	if err != nil {
		status := StatusFailed
		if ihos.ErrorCode(err) == ihos.EUnavailable {
			status = StatusPending // unknown: the next attempt queries first
		}
		return false, s.failed(ctx, j.inv, status, err)
	}
	return true, s.storeIssued(ctx, j.inv.ID, b)
}

// resolveRefunded settles a not-yet-issued invoice whose payment has been
// refunded in full: a bill the platform may have issued is found and written
// off; otherwise none is issued.
func (s *Service) resolveRefunded(ctx context.Context, inv Invoice) (bool, error) {
	if inv.Attempts == 0 {
		return true, s.setStatus(ctx, inv.ID, StatusCancelled)
	}
	b, err := s.Platform.Query(ctx, inv.BusNo)
	switch {
	case ihos.ErrorCode(err) == ihos.ENotFound:
		return true, s.setStatus(ctx, inv.ID, StatusCancelled)
	case err != nil:
		return false, s.failed(ctx, inv, inv.Status, err)
	}
	if err := s.storeIssued(ctx, inv.ID, b); err != nil {
		return false, err
	}
	inv, err = s.Get(ctx, inv.ID)
	if err != nil {
		return false, err
	}
	return s.writeOff(ctx, inv)
}

// writeOff writes off an issued invoice once: it asks the platform first,
// and an answer that the bill is already written off counts as done.
func (s *Service) writeOff(ctx context.Context, inv Invoice) (bool, error) {
	b, err := s.Platform.Query(ctx, inv.BusNo)
	if err != nil {
		return false, s.failed(ctx, inv, StatusIssued, err)
	}
	if b.WrittenOff != nil {
		return true, s.storeWrittenOff(ctx, inv.ID, *b.WrittenOff)
	}
	red, err := s.Platform.WriteOff(ctx, einvoice.WriteOffReq{BillBatchCode: inv.BillBatchCode, BillNo: inv.BillNo,
		Reason: "患者退费", Operator: s.Payee, PlaceCode: s.PlaceCode})
	if err != nil && strings.Contains(err.Error(), "已冲红") {
		// Written off meanwhile: read the red bill back.
		if b, qerr := s.Platform.Query(ctx, inv.BusNo); qerr == nil && b.WrittenOff != nil {
			return true, s.storeWrittenOff(ctx, inv.ID, *b.WrittenOff)
		}
		return true, s.storeWrittenOff(ctx, inv.ID, einvoice.Scarlet{})
	}
	if err != nil {
		return false, s.failed(ctx, inv, StatusIssued, err)
	}
	return true, s.storeWrittenOff(ctx, inv.ID, red)
}

// update changes one invoice row, bumps its version and captures it.
func (s *Service) update(ctx context.Context, id, set string, args ...any) error {
	now := ihos.FormatTime(s.now())
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		a := append(append([]any{}, args...), now, id)
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE invoices SET `+set+`, version = version + 1, updated_at = ? WHERE id = ?`, a...); err != nil {
			return err
		}
		return s.capture(ctx, tx, id)
	})
	if err == nil {
		s.committed()
	}
	return err
}

func (s *Service) storeIssued(ctx context.Context, id string, b einvoice.Bill) error {
	issued := b.CreatedAt
	if issued.IsZero() {
		issued = s.now()
	}
	return s.update(ctx, id, `status = ?, bill_batch_code = ?, bill_no = ?, random = ?, qr_code = ?, picture_url = ?, picture_net_url = ?,
		issued_at = ?, attempts = 0, last_error = '', next_attempt_at = NULL`,
		StatusIssued, b.BatchCode, b.No, b.Random, ihos.Truncate(b.QRCode, 1000), ihos.Truncate(b.PictureURL, 1000),
		ihos.Truncate(b.PictureNetURL, 1000), ihos.FormatTime(issued))
}

func (s *Service) storeWrittenOff(ctx context.Context, id string, red einvoice.Scarlet) error {
	at := red.CreatedAt
	if at.IsZero() {
		at = s.now()
	}
	return s.update(ctx, id, `status = ?, scarlet_bill_batch_code = ?, scarlet_bill_no = ?, scarlet_random = ?, written_off_at = ?,
		attempts = 0, last_error = '', next_attempt_at = NULL`,
		StatusWrittenOff, red.BatchCode, red.No, red.Random, ihos.FormatTime(at))
}

func (s *Service) setStatus(ctx context.Context, id, status string) error {
	return s.update(ctx, id, `status = ?, last_error = '', next_attempt_at = NULL`, status)
}

// failed records a failed attempt and when to try again.
func (s *Service) failed(ctx context.Context, inv Invoice, status string, cause error) error {
	attempts := inv.Attempts + 1
	next := s.now().Add(s.backoff(attempts))
	msg := cause.Error()
	var e *ihos.Error
	if errors.As(cause, &e) && e.Message != "" {
		msg = e.Message
	}
	s.log().Warn("invoice attempt failed", "invoice", inv.ID, "payment", inv.PaymentID, "attempts", attempts, "err", cause)
	return s.update(ctx, inv.ID, `status = ?, attempts = ?, last_error = ?, next_attempt_at = ?`,
		status, attempts, ihos.Truncate(msg, 500), ihos.FormatTime(next))
}

// Outpatient is the issue request of a payment: the payer is the patient's
// name from the patients replica ("患者" without one), the amounts are the
// payment's split (fund → fundPay, personal account → accountPay, cash →
// selfCashPay, and ownPay too when the whole payment is self-paid), the pay
// channels are the non-zero parts, and one charge line names the business.
func (s *Service) Outpatient(ctx context.Context, p *ihos.Payment) (einvoice.Outpatient, error) {
	if p.Total <= 0 {
		return einvoice.Outpatient{}, ihos.Errorf(ihos.EInvalid, "支付金额为 0，无需开具电子票据")
	}
	if err := ihos.CheckSplit(p.Total, p.Split()); err != nil {
		return einvoice.Outpatient{}, err
	}
	payer := "患者"
	if p.PatientID != "" {
		var name string
		err := s.DB.QueryRowContext(ctx, `SELECT name FROM patients WHERE id = ? AND deleted_at IS NULL`, p.PatientID).Scan(&name)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return einvoice.Outpatient{}, err
		}
		if strings.TrimSpace(name) != "" {
			payer = strings.TrimSpace(name)
		}
	}
	busType := s.BusType
	if busType == "" {
		busType = DefaultBusType
	}
	ch := s.Channels
	if ch.Cash == "" {
		ch.Cash = DefaultChannelCash
	}
	if ch.Account == "" {
		ch.Account = DefaultChannelAccount
	}
	if ch.Fund == "" {
		ch.Fund = DefaultChannelFund
	}
	var channels []einvoice.PayChannel
	for _, c := range []struct {
		code string
		v    int64
	}{{ch.Fund, p.FundPay}, {ch.Account, p.AccountPay}, {ch.Cash, p.CashPay}} {
		if c.v > 0 {
			channels = append(channels, einvoice.PayChannel{PayChannelCode: c.code, PayChannelValue: einvoice.Amount(c.v)})
		}
	}
	name := ihos.BusinessTypeLabels[p.BusinessType]
	if name == "" {
		name = ihos.Truncate(p.Subject, 40)
	}
	if name == "" {
		name = "医疗服务费"
	}
	code := s.ChargeCodes[p.BusinessType]
	if code == "" {
		code = p.BusinessType
	}
	if code == "" {
		code = "other"
	}
	var ownPay int64
	if p.Channel == ihos.ChannelSelfPay {
		ownPay = p.CashPay
	}
	at := p.PaidAt
	if at.IsZero() {
		at = s.now()
	}
	o := einvoice.Outpatient{
		BusNo: p.ID, BusType: busType, Payer: payer, BusDateTime: einvoice.FormatTime(at),
		PlaceCode: s.PlaceCode, Payee: s.Payee, Author: s.Payee, TotalAmt: einvoice.Amount(p.Total),
		Remark: ihos.Truncate(p.Subject, 100), PayerType: "1", PatientNo: p.PatientID,
		ConsultationDate: at.In(shanghai).Format("2006-01-02"),
		AccountPay:       einvoice.Amount(p.AccountPay), FundPay: einvoice.Amount(p.FundPay),
		OwnPay: einvoice.Amount(ownPay), SelfCashPay: einvoice.Amount(p.CashPay),
		PayChannelDetail: channels,
		ChargeDetail: []einvoice.Charge{{SortNo: 1, ChargeCode: code, ChargeName: name, Std: einvoice.Amount(p.Total),
			Number: "1", Amt: einvoice.Amount(p.Total), SelfAmt: einvoice.Amount(p.CashPay)}},
	}
	return o, nil
}

var shanghai = func() *time.Location {
	l, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return l
}()

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := ihos.ParseTime(s)
	return t
}
