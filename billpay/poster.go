package billpay

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	stdsync "sync"
	"time"

	"ihos"
	"ihos/his"
	"ihos/internal/sqldb"
	"ihos/sync"
)

// Poster is the appliance half: it tells the HIS about paid outpatient
// bills. Payments, refunds and bill items arrive as replicas from the cloud;
// the postings it makes replicate back.
//
// A charge is posted once the payment holds money (paid, or refunded since)
// and all its items have arrived (their amounts add up to the payment's
// total). A credit is posted for every succeeded refund, after the charge:
// a full refund credits every line; partial refunds credit the lines in fee
// id order from where the earlier credits stopped, splitting the last line's
// amount. The HIS message is queued (his.Service.Send) in the transaction
// that inserts the posting, so either both exist or neither.
//
// A posting's status follows its message in the HIS queue (his_outbox): sent
// (AA) is accepted, failed (AE/AR) or cancelled by staff is refused, and a
// refused message staff re-send is queued again.
type Poster struct {
	DB       *sqldb.DB
	HIS      *his.Service
	Hospital string // for replicas that lack theirs
	// Capture records replicated rows for the cloud inside a transaction
	// (sync.Replica.Capture); nil on a node without sync.
	Capture func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error
	// AfterCommit runs after a commit that captured something (the link's Kick).
	AfterCommit func()
	// Interval is how often Run looks for work; 0 means 1 s. Payments arrive
	// by replication, which has no hook: the poster polls.
	Interval time.Duration
	Logger   *slog.Logger
	Now      func() time.Time

	kick chan struct{}
	once stdsync.Once
}

func (p *Poster) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

func (p *Poster) log() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

func (p *Poster) kickCh() chan struct{} {
	p.once.Do(func() { p.kick = make(chan struct{}, 1) })
	return p.kick
}

// Kick makes Run look for work now.
func (p *Poster) Kick() {
	select {
	case p.kickCh() <- struct{}{}:
	default:
	}
}

func (p *Poster) capture(ctx context.Context, tx *sql.Tx, id string) error {
	if p.Capture == nil {
		return nil
	}
	return p.Capture(ctx, tx, sync.Ref{Entity: "bill_postings", ID: id})
}

func (p *Poster) committed() {
	if p.AfterCommit != nil {
		p.AfterCommit()
	}
}

// recentWindow is how far back a regular pass looks (by the payment's
// creation, or the refund's); sweepEvery is how often a pass looks at all.
const (
	recentWindow = 7 * 24 * time.Hour
	sweepEvery   = time.Hour
)

// followFor is how long after queuing a message Run looks for its answer
// every followEvery rather than every Interval: the HIS answers within a
// second or so when it is up.
const (
	followFor   = 10 * time.Second
	followEvery = 200 * time.Millisecond
)

// Run posts until ctx ends.
func (p *Poster) Run(ctx context.Context) {
	every := p.Interval
	if every <= 0 {
		every = time.Second
	}
	var lastQueued, lastSweep time.Time
	for {
		// Most passes look at recent payments only (the created_at index),
		// so a year of bills does not cost a scan a second; a full sweep at
		// start and every sweepEvery finds anything older that arrived late.
		since := p.now().Add(-recentWindow)
		if time.Since(lastSweep) >= sweepEvery {
			since, lastSweep = time.Time{}, time.Now()
		}
		n, err := p.process(ctx, since)
		if err != nil && ctx.Err() == nil {
			p.log().Warn("billpay: posting pass", "err", err)
		}
		if n > 0 {
			lastQueued = time.Now()
		}
		wait := every
		if time.Since(lastQueued) < followFor {
			wait = min(wait, followEvery)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-p.kickCh():
			t.Stop()
		}
	}
}

// Process makes one pass: charges, credits, then the HIS's answers. It
// returns how many postings it queued or updated.
func (p *Poster) Process(ctx context.Context) (int, error) {
	return p.process(ctx, time.Time{})
}

// process is a pass over the payments and refunds created since (all when
// zero).
func (p *Poster) process(ctx context.Context, since time.Time) (int, error) {
	charged, err1 := p.charges(ctx, since)
	credited, err2 := p.credits(ctx, since)
	answered, err3 := p.answers(ctx)
	return charged + credited + answered, cmp.Or(err1, err2, err3)
}

// passLimit bounds the payments or refunds one pass takes.
const passLimit = 100

type paid struct {
	id, hospital string
	total        int64
	at           time.Time
}

// charges posts the fees of every payment that holds money and has no
// charge posting yet.
func (p *Poster) charges(ctx context.Context, since time.Time) (int, error) {
	rows, err := p.DB.QueryContext(ctx, `SELECT p.id, p.hospital_id, p.total, COALESCE(p.paid_at, p.updated_at) FROM payments p
		WHERE p.created_at >= ? AND p.business_type = ? AND p.status IN (?, ?, ?) AND p.deleted_at IS NULL
		  AND EXISTS (SELECT 1 FROM bill_items i WHERE i.payment_id = p.id)
		  AND NOT EXISTS (SELECT 1 FROM bill_postings b WHERE b.payment_id = p.id AND b.kind = ? AND b.refund_id = '')
		ORDER BY p.created_at LIMIT ?`, sinceArg(since), ihos.PayOutpatientBill, ihos.PaymentPaid, ihos.PaymentPartiallyRefunded, ihos.PaymentRefunded, KindCharge, passLimit)
	if err != nil {
		return 0, err
	}
	var todo []paid
	for rows.Next() {
		var c paid
		var at string
		if err := rows.Scan(&c.id, &c.hospital, &c.total, &at); err != nil {
			rows.Close()
			return 0, err
		}
		c.at = parseTime(at)
		todo = append(todo, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	var firstErr error
	for _, c := range todo {
		ok, err := p.post(ctx, c, "", KindCharge, c.total, func(items []Item, _ int64) []ihos.HISFeeLine {
			lines := make([]ihos.HISFeeLine, 0, len(items))
			for _, it := range items {
				lines = append(lines, ihos.HISFeeLine{FeeID: it.ID, ItemCode: it.ItemCode, ItemName: it.ItemName, Quantity: it.Quantity,
					AmountFen: it.AmountFen, FillerOrderNo: it.FeeID})
			}
			return lines
		})
		if err != nil {
			// One payment's trouble does not hold the others up.
			p.log().Warn("billpay: posting failed", "payment", c.id, "kind", KindCharge, "err", err)
			firstErr = cmp.Or(firstErr, err)
		}
		if ok {
			n++
		}
	}
	return n, firstErr
}

// sinceArg is the lower bound of created_at for since ("" matches all).
func sinceArg(since time.Time) string {
	if since.IsZero() {
		return ""
	}
	return ihos.FormatTime(since)
}

type refund struct {
	paid
	refundID string
}

// credits posts every succeeded refund of a charged payment that has no
// credit posting yet.
func (p *Poster) credits(ctx context.Context, since time.Time) (int, error) {
	rows, err := p.DB.QueryContext(ctx, `SELECT r.id, r.payment_id, p.hospital_id, r.amount, COALESCE(r.done_at, r.updated_at) FROM refunds r JOIN payments p ON p.id = r.payment_id
		WHERE r.status = ? AND r.created_at >= ? AND p.business_type = ? AND r.deleted_at IS NULL
		  AND EXISTS (SELECT 1 FROM bill_postings c WHERE c.payment_id = r.payment_id AND c.kind = ? AND c.refund_id = '')
		  AND NOT EXISTS (SELECT 1 FROM bill_postings b WHERE b.payment_id = r.payment_id AND b.kind = ? AND b.refund_id = r.id)
		ORDER BY r.done_at, r.id LIMIT ?`, ihos.RefundSucceeded, sinceArg(since), ihos.PayOutpatientBill, KindCharge, KindCredit, passLimit)
	if err != nil {
		return 0, err
	}
	var todo []refund
	for rows.Next() {
		var r refund
		var at string
		if err := rows.Scan(&r.refundID, &r.id, &r.hospital, &r.total, &at); err != nil {
			rows.Close()
			return 0, err
		}
		r.at = parseTime(at)
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	var firstErr error
	for _, r := range todo {
		ok, err := p.post(ctx, r.paid, r.refundID, KindCredit, -r.total, func(items []Item, credited int64) []ihos.HISFeeLine {
			return CreditLines(items, credited, r.total)
		})
		if err != nil {
			// One payment's trouble does not hold the others up.
			p.log().Warn("billpay: posting failed", "payment", r.id, "refund", r.refundID, "kind", KindCredit, "err", err)
			firstErr = cmp.Or(firstErr, err)
		}
		if ok {
			n++
		}
	}
	return n, firstErr
}

// CreditLines returns the negative lines that credit amount fen of items
// (in their order) after credited fen were credited by earlier refunds: the
// lines are taken in order from where those stopped, the last one split.
// Each line has a new platform id (FT1-2) and names the HIS fee it credits
// (FT1-23).
func CreditLines(items []Item, credited, amount int64) []ihos.HISFeeLine {
	var lines []ihos.HISFeeLine
	for _, it := range items {
		if amount <= 0 {
			break
		}
		left := it.AmountFen
		if credited >= left {
			credited -= left
			continue
		}
		left -= credited
		credited = 0
		take := min(left, amount)
		qty := it.Quantity
		if take != it.AmountFen {
			qty = "" // part of a line: the HIS reads the amount
		}
		lines = append(lines, ihos.HISFeeLine{FeeID: ihos.NewID(), ItemCode: it.ItemCode, ItemName: it.ItemName, Quantity: qty,
			AmountFen: -take, FillerOrderNo: it.FeeID})
		amount -= take
	}
	return lines
}

// post queues one message and records its posting, once. It reports whether
// it did; a payment whose items have not all arrived waits for the next pass.
func (p *Poster) post(ctx context.Context, c paid, refundID, kind string, amount int64, lines func(items []Item, credited int64) []ihos.HISFeeLine) (bool, error) {
	hospital := c.hospital
	if hospital == "" {
		hospital = p.Hospital
	}
	id := ihos.NewID()
	done := false
	err := p.DB.Tx(ctx, func(tx *sql.Tx) error {
		done = false
		var n int
		if err := p.DB.TxQueryRow(ctx, tx, `SELECT COUNT(*) FROM bill_postings WHERE payment_id = ? AND kind = ? AND refund_id = ?`, c.id, kind, refundID).Scan(&n); err != nil || n > 0 {
			return err
		}
		items, err := loadItems(ctx, p.DB, tx, c.id)
		if err != nil {
			return err
		}
		var sum int64
		for _, it := range items {
			sum += it.AmountFen
		}
		var payTotal int64
		if err := p.DB.TxQueryRow(ctx, tx, `SELECT total FROM payments WHERE id = ?`, c.id).Scan(&payTotal); err != nil {
			return err
		}
		if len(items) == 0 || sum != payTotal {
			return nil // the items are on their way
		}
		var credited int64
		if kind == KindCredit {
			if err := p.DB.TxQueryRow(ctx, tx, `SELECT COALESCE(SUM(-amount_fen), 0) FROM bill_postings WHERE payment_id = ? AND kind = ?`, c.id, KindCredit).Scan(&credited); err != nil {
				return err
			}
		}
		ls := lines(items, credited)
		var total int64
		for _, l := range ls {
			total += l.AmountFen
		}
		if len(ls) == 0 || total != amount {
			return fmt.Errorf("billpay: payment %s: %s lines add up to %d, want %d (credited before %d)", c.id, kind, total, amount, credited)
		}
		msgID, err := p.HIS.Send(ctx, tx, ihos.HISFees, messageData(items, ls))
		if err != nil {
			return err
		}
		now := ihos.FormatTime(p.now())
		at := c.at
		if at.IsZero() {
			at = p.now()
		}
		if _, err := p.DB.TxExec(ctx, tx, `INSERT INTO bill_postings (id, hospital_id, payment_id, refund_id, kind, his_message_id, status, status_text, amount_fen, day, created_at, updated_at, version)
			VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, 1)`, id, hospital, c.id, refundID, kind, msgID, StatusQueued, amount, day(at), now, now); err != nil {
			return err
		}
		done = true
		return p.capture(ctx, tx, id)
	})
	if err != nil {
		return false, err
	}
	if done {
		p.HIS.Queue.Kick()
		p.committed()
	}
	return done, nil
}

// messageData is the DFT^P03 of a payment's items. A message carries one
// visit, department and doctor (PV1, FT1-13, FT1-20): each is set when every
// item agrees on it and left empty otherwise; the lines name their HIS fees
// (FT1-23), which is what the HIS settles.
func messageData(items []Item, lines []ihos.HISFeeLine) ihos.HISMessageData {
	d := ihos.HISMessageData{Patient: ihos.HISPatient{HISID: items[0].HISPatientID}, Fees: lines,
		VisitNo: items[0].VisitNo, DepartmentCode: items[0].DepartmentCode, DoctorCode: items[0].DoctorCode}
	for _, it := range items[1:] {
		if it.VisitNo != d.VisitNo {
			d.VisitNo = ""
		}
		if it.DepartmentCode != d.DepartmentCode {
			d.DepartmentCode = ""
		}
		if it.DoctorCode != d.DoctorCode {
			d.DoctorCode = ""
		}
	}
	return d
}

// answers brings the postings' statuses in line with their messages in the
// HIS queue.
func (p *Poster) answers(ctx context.Context) (int, error) {
	rows, err := p.DB.QueryContext(ctx, `SELECT b.id, b.status, o.status, o.ack_code, o.ack_text FROM bill_postings b JOIN his_outbox o ON o.id = b.his_message_id
		WHERE b.deleted_at IS NULL AND ((b.status = ? AND o.status IN (?, ?, ?)) OR (b.status = ? AND o.status IN (?, ?)))
		LIMIT ?`, StatusQueued, his.StatusSent, his.StatusFailed, his.StatusCancelled, StatusRefused, his.StatusSent, his.StatusPending, passLimit)
	if err != nil {
		return 0, err
	}
	type change struct{ id, from, to, text string }
	var todo []change
	for rows.Next() {
		var c change
		var outbox, code, text string
		if err := rows.Scan(&c.id, &c.from, &outbox, &code, &text); err != nil {
			rows.Close()
			return 0, err
		}
		switch outbox {
		case his.StatusSent:
			c.to = StatusAccepted
		case his.StatusFailed:
			c.to, c.text = StatusRefused, fmt.Sprintf("HIS 拒收（%s）：%s", code, text)
		case his.StatusCancelled:
			c.to, c.text = StatusRefused, "HIS 消息已被人工取消"
		case his.StatusPending:
			c.to = StatusQueued
		}
		todo = append(todo, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, c := range todo {
		err := p.DB.Tx(ctx, func(tx *sql.Tx) error {
			res, err := p.DB.TxExec(ctx, tx, `UPDATE bill_postings SET status = ?, status_text = ?, version = version + 1, updated_at = ? WHERE id = ? AND status = ?`,
				c.to, ihos.Truncate(c.text, 500), ihos.FormatTime(p.now()), c.id, c.from)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k == 0 {
				return nil
			}
			n++
			return p.capture(ctx, tx, c.id)
		})
		if err != nil {
			return n, err
		}
	}
	if n > 0 {
		p.committed()
	}
	return n, nil
}

// Postings returns a payment's postings, oldest first.
func (p *Poster) Postings(ctx context.Context, paymentID string) ([]Posting, error) {
	return loadPostings(ctx, p.DB, paymentID)
}

func loadPostings(ctx context.Context, db *sqldb.DB, paymentID string) ([]Posting, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, hospital_id, payment_id, refund_id, kind, his_message_id, status, status_text, amount_fen, day, created_at, updated_at
		FROM bill_postings WHERE payment_id = ? AND deleted_at IS NULL ORDER BY created_at, id`, paymentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Posting
	for rows.Next() {
		var b Posting
		var created, updated string
		if err := rows.Scan(&b.ID, &b.HospitalID, &b.PaymentID, &b.RefundID, &b.Kind, &b.HISMessageID, &b.Status, &b.StatusText, &b.AmountFen, &b.Day, &created, &updated); err != nil {
			return nil, err
		}
		b.CreatedAt, b.UpdatedAt = parseTime(created), parseTime(updated)
		out = append(out, b)
	}
	return out, rows.Err()
}

// loadItems reads a payment's items in fee id order, inside tx when it is
// not nil.
func loadItems(ctx context.Context, db *sqldb.DB, tx *sql.Tx, paymentID string) ([]Item, error) {
	const q = `SELECT id, hospital_id, payment_id, his_patient_id, fee_id, visit_no, item_code, item_name, quantity, amount_fen, department_code, doctor_code, created_at
		FROM bill_items WHERE payment_id = ? AND deleted_at IS NULL ORDER BY fee_id, id`
	var rows *sql.Rows
	var err error
	if tx != nil {
		rows, err = db.TxQuery(ctx, tx, q, paymentID)
	} else {
		rows, err = db.QueryContext(ctx, q, paymentID)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Item
	for rows.Next() {
		var it Item
		var created string
		if err := rows.Scan(&it.ID, &it.HospitalID, &it.PaymentID, &it.HISPatientID, &it.FeeID, &it.VisitNo, &it.ItemCode, &it.ItemName, &it.Quantity,
			&it.AmountFen, &it.DepartmentCode, &it.DoctorCode, &created); err != nil {
			return nil, err
		}
		it.CreatedAt = parseTime(created)
		out = append(out, it)
	}
	return out, rows.Err()
}
