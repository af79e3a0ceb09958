package reconcile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
	"ihos/paychannel"
)

// Run statuses.
const (
	RunRunning = "running"
	RunDone    = "done"
	RunFailed  = "failed"
)

// Run is one reconciliation of one day against one external side. A re-run
// of the day replaces it (same ID) and its items.
type Run struct {
	ID         string    `json:"id"`
	Day        string    `json:"day"`
	Source     string    `json:"source"`
	Status     string    `json:"status"`
	Tally      Tally     `json:"tally"`
	Mismatches int64     `json:"mismatches"`
	LastError  string    `json:"last_error,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Item is a stored mismatch.
type Item struct {
	ID         string    `json:"id"`
	RunID      string    `json:"run_id"`
	Day        string    `json:"day"`
	Source     string    `json:"source"`
	Key        string    `json:"key"`
	RecordKind string    `json:"record_kind"`
	Kind       string    `json:"kind"`
	Label      string    `json:"label"`
	Ours       *int64    `json:"ours"`   // fen; nil when we have no record
	Theirs     *int64    `json:"theirs"` // fen; nil when they have no record
	OursRef    string    `json:"ours_ref"`
	OursStatus string    `json:"ours_status"`
	TheirsRef  string    `json:"theirs_ref"`
	Suggestion string    `json:"suggestion"`
	ResolvedBy string    `json:"resolved_by,omitempty"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	Note       string    `json:"note,omitempty"`
}

// Reconciler runs and stores reconciliations.
type Reconciler struct {
	DB  *sqldb.DB
	Now func() time.Time // time.Now when nil
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// dayRange is the UTC text range [start, end) of a Shanghai day.
func dayRange(day string) (string, string, error) {
	d, err := time.ParseInLocation(time.DateOnly, day, ihos.Shanghai)
	if err != nil {
		return "", "", ihos.Invalid(map[string]string{"day": "对账日期格式应为 2006-01-02"})
	}
	return ihos.FormatTime(d), ihos.FormatTime(d.AddDate(0, 0, 1)), nil
}

// RunChannel reconciles day (2006-01-02, Asia/Shanghai) against the payment
// channel's bill of that day, as bill returns it (paychannel.Client.Bill).
// Our side is the cash legs of payments and refunds: those whose money moved
// that day, and those created that day and not (yet) done, so that a cash
// leg the channel took while we still query it shows as a status difference.
// A bill row we have no record of that day is looked up by its key: found
// done on another day it is OtherDay, found not done it is StatusDiffers.
func (r *Reconciler) RunChannel(ctx context.Context, day string, bill func(ctx context.Context, day string) ([]paychannel.BillRow, error)) (Run, error) {
	return r.run(ctx, day, Channel, func(ctx context.Context) (Source, error) {
		rows, err := bill(ctx, day)
		if err != nil {
			return nil, err
		}
		return NewSliceSource(BillRecords(rows)), nil
	})
}

// BillRecords turns bill rows into records: a SUCCESS row is a payment keyed
// by out_trade_no for its order amount, a REFUND row a refund keyed by
// out_refund_no for the amount asked (申请退款金额).
func BillRecords(rows []paychannel.BillRow) []Record {
	recs := make([]Record, 0, len(rows))
	for i := range rows {
		b := &rows[i]
		switch b.TradeState {
		case paychannel.TradeSuccess:
			recs = append(recs, Record{Kind: KindPayment, Key: b.OutTradeNo, Amount: b.Total, Done: true,
				Status: b.TradeState, Time: b.TradeTime, Ref: b.TransactionID})
		case paychannel.TradeRefund:
			amount := b.RefundRequested
			if amount == 0 {
				amount = b.Refund
			}
			recs = append(recs, Record{Kind: KindRefund, Key: b.OutRefundNo, Amount: amount,
				Done:   b.RefundStatus == "" || b.RefundStatus == paychannel.RefundSuccess,
				Status: b.RefundStatus, Time: b.TradeTime, Ref: b.RefundID})
		}
	}
	return recs
}

// run reconciles day against side, whose records theirs opens. The run row
// is written first (running), so a day being reconciled shows as such; the
// items and the final counts replace the previous run's in one transaction.
func (r *Reconciler) run(ctx context.Context, day string, side Side, theirs func(context.Context) (Source, error)) (Run, error) {
	start, end, err := dayRange(day)
	if err != nil {
		return Run{}, err
	}
	run := Run{Day: day, Source: side.Name, Status: RunRunning, StartedAt: r.now()}
	if err := r.DB.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id FROM reconcile_runs WHERE day = ? AND source = ?`+r.DB.ForUpdate(), day, side.Name).Scan(&run.ID)
		if errors.Is(err, sql.ErrNoRows) {
			run.ID = ihos.NewID()
			_, err = tx.ExecContext(ctx, `INSERT INTO reconcile_runs (id, day, source, status, started_at) VALUES (?, ?, ?, ?, ?)`,
				run.ID, day, side.Name, RunRunning, ihos.FormatTime(run.StartedAt))
			return err
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE reconcile_runs SET status = ?, started_at = ?, finished_at = NULL, last_error = '',
			version = version + 1 WHERE id = ?`, RunRunning, ihos.FormatTime(run.StartedAt), run.ID)
		return err
	}); err != nil {
		return Run{}, fmt.Errorf("reconcile: start run: %w", err)
	}

	var found []Mismatch
	tally, err := func() (Tally, error) {
		th, err := theirs(ctx)
		if err != nil {
			return Tally{}, err
		}
		ours := &dbSource{ctx: ctx, db: r.DB, start: start, end: end}
		defer ours.close()
		return Match(ours, th, func(m Mismatch) error {
			found = append(found, m)
			return nil
		})
	}()
	if err == nil {
		err = r.lookUp(ctx, start, end, found)
	}
	run.FinishedAt = r.now()
	if err != nil {
		run.Status, run.LastError = RunFailed, err.Error()
		bg := context.WithoutCancel(ctx) // record the failure even when ctx ended the run
		uerr := r.DB.Tx(bg, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(bg, `UPDATE reconcile_runs SET status = ?, last_error = ?, finished_at = ?, version = version + 1 WHERE id = ?`,
				RunFailed, ihos.Truncate(err.Error(), 500), ihos.FormatTime(run.FinishedAt), run.ID)
			return err
		})
		if uerr != nil {
			err = errors.Join(err, uerr)
		}
		return run, err
	}
	run.Status, run.Tally, run.Mismatches = RunDone, tally, int64(len(found))
	err = r.DB.Tx(ctx, func(tx *sql.Tx) error { return r.store(ctx, tx, run, side, found) })
	if err != nil {
		return run, fmt.Errorf("reconcile: store run: %w", err)
	}
	return run, nil
}

// lookUp reclassifies the records they have and we lack that day: found in
// our tables (booked on another day, or still pending) they are not missing.
// There are few of them, so one query each is fine.
func (r *Reconciler) lookUp(ctx context.Context, start, end string, found []Mismatch) error {
	for i := range found {
		m := &found[i]
		if m.Kind != MissingOurs {
			continue
		}
		q := `SELECT cash_pay, cash_status, status, paid_at, created_at, id FROM payments WHERE out_trade_no = ? AND deleted_at IS NULL`
		if m.Theirs.Kind == KindRefund {
			q = `SELECT cash_part, cash_status, status, done_at, created_at, id FROM refunds WHERE out_refund_no = ? AND deleted_at IS NULL`
		}
		rec, err := scanOurs(r.DB.QueryRowContext(ctx, q, m.Theirs.Key), m.Theirs.Kind, m.Theirs.Key)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return err
		}
		m.Ours = &rec
		switch {
		case !rec.Done:
			m.Kind = StatusDiffers
		case rec.Amount != m.Theirs.Amount:
			m.Kind = AmountDiffers
		default:
			m.Kind = OtherDay
		}
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

// scanOurs reads one row of the our-side queries: amount, cash_status,
// status, done time, created_at, id.
func scanOurs(row scanner, kind, key string) (Record, error) {
	var (
		rec             Record
		cash            string
		doneAt, created sql.NullString
	)
	if err := row.Scan(&rec.Amount, &cash, &rec.Status, &doneAt, &created, &rec.Ref); err != nil {
		return rec, err
	}
	rec.Kind, rec.Key = kind, key
	rec.Done = cash == ihos.LegDone
	t := created.String
	if rec.Done && doneAt.Valid {
		t = doneAt.String
	}
	rec.Time, _ = ihos.ParseTime(t)
	return rec, nil
}

// dbSource yields our side of a day: the cash legs of payments, then of
// refunds ("payment" < "refund"), each in key order.
type dbSource struct {
	ctx        context.Context
	db         *sqldb.DB
	start, end string
	phase      int // 0 before payments, 1 payments, 2 refunds, 3 done
	kind       string
	rows       *sql.Rows
}

// The money moved that day (refunds: the cash leg is done but the whole
// refund may not be, leaving done_at empty, so those are taken by their
// creation day), or it was created that day and has not moved yet.
const (
	oursPayments = `SELECT out_trade_no, cash_pay, cash_status, status, paid_at, created_at, id FROM payments
		WHERE cash_pay > 0 AND deleted_at IS NULL AND (
			(cash_status = 'done' AND paid_at >= ? AND paid_at < ?) OR
			(cash_status <> 'done' AND created_at >= ? AND created_at < ?))
		ORDER BY out_trade_no`
	oursRefunds = `SELECT out_refund_no, cash_part, cash_status, status, done_at, created_at, id FROM refunds
		WHERE cash_part > 0 AND deleted_at IS NULL AND (
			(cash_status = 'done' AND done_at >= ? AND done_at < ?) OR
			((cash_status <> 'done' OR done_at IS NULL) AND created_at >= ? AND created_at < ?))
		ORDER BY out_refund_no`
)

func (s *dbSource) Next() (Record, bool, error) {
	for {
		if s.rows != nil && s.rows.Next() {
			var key string
			var rec Record
			var cash string
			var doneAt, created sql.NullString
			if err := s.rows.Scan(&key, &rec.Amount, &cash, &rec.Status, &doneAt, &created, &rec.Ref); err != nil {
				return Record{}, false, err
			}
			rec.Kind, rec.Key = s.kind, key
			rec.Done = cash == ihos.LegDone
			t := created.String
			if rec.Done && doneAt.Valid {
				t = doneAt.String
			}
			rec.Time, _ = ihos.ParseTime(t)
			return rec, true, nil
		}
		if s.rows != nil {
			err := s.rows.Err()
			s.rows.Close()
			s.rows = nil
			if err != nil {
				return Record{}, false, err
			}
		}
		s.phase++
		var q string
		switch s.phase {
		case 1:
			q, s.kind = oursPayments, KindPayment
		case 2:
			q, s.kind = oursRefunds, KindRefund
		default:
			return Record{}, false, nil
		}
		if s.db.Engine == sqldb.MySQL {
			q += " COLLATE utf8mb4_bin" // byte order, as the matcher compares
		}
		rows, err := s.db.QueryContext(s.ctx, q, s.start, s.end, s.start, s.end)
		if err != nil {
			return Record{}, false, err
		}
		s.rows = rows
	}
}

func (s *dbSource) close() {
	if s.rows != nil {
		s.rows.Close()
	}
}

// store replaces the run's items with found and writes the run's counts. A
// mismatch already resolved in the previous run (same record, same kind)
// keeps who resolved it and when.
func (r *Reconciler) store(ctx context.Context, tx *sql.Tx, run Run, side Side, found []Mismatch) error {
	type resolution struct{ by, at, note string }
	old := map[string]resolution{}
	rows, err := tx.QueryContext(ctx, `SELECT record_kind, record_key, kind, resolved_by, resolved_at, note FROM reconcile_items
		WHERE run_id = ? AND resolved_at IS NOT NULL`, run.ID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var kind, key, mkind string
		var res resolution
		if err := rows.Scan(&kind, &key, &mkind, &res.by, &res.at, &res.note); err != nil {
			rows.Close()
			return err
		}
		old[kind+"\x00"+key+"\x00"+mkind] = res
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM reconcile_items WHERE run_id = ?`, run.ID); err != nil {
		return err
	}
	created := ihos.FormatTime(run.FinishedAt)
	for _, m := range found {
		var ours, theirs any
		var oursRef, oursStatus, theirsRef string
		if m.Ours != nil {
			ours, oursRef, oursStatus = m.Ours.Amount, m.Ours.Ref, m.Ours.Status
		}
		if m.Theirs != nil {
			theirs, theirsRef = m.Theirs.Amount, m.Theirs.Ref
		}
		res := old[m.RecordKind()+"\x00"+m.Key()+"\x00"+m.Kind]
		var resolvedAt any
		if res.at != "" {
			resolvedAt = res.at
		}
		if _, err := r.DB.TxExec(ctx, tx, `INSERT INTO reconcile_items (id, run_id, day, source, record_key, record_kind, kind, ours, theirs,
			ours_ref, ours_status, theirs_ref, suggestion, resolved_by, resolved_at, note, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ihos.NewID(), run.ID, run.Day, run.Source, m.Key(), m.RecordKind(), m.Kind, ours, theirs,
			oursRef, oursStatus, theirsRef, side.Suggestion(m.Kind, m.RecordKind()), res.by, resolvedAt, res.note, created); err != nil {
			return err
		}
	}
	t := run.Tally
	_, err = tx.ExecContext(ctx, `UPDATE reconcile_runs SET status = ?, ours_count = ?, ours_pay = ?, ours_refund = ?,
		theirs_count = ?, theirs_pay = ?, theirs_refund = ?, matched = ?, mismatches = ?, last_error = '', finished_at = ?,
		version = version + 1 WHERE id = ?`,
		run.Status, t.OursCount, t.OursPay, t.OursRefund, t.TheirsCount, t.TheirsPay, t.TheirsRefund, t.Matched,
		run.Mismatches, ihos.FormatTime(run.FinishedAt), run.ID)
	return err
}

// GetRun returns the run of day against source.
func (r *Reconciler) GetRun(ctx context.Context, day, source string) (Run, error) {
	var (
		run      Run
		started  string
		finished sql.NullString
	)
	t := &run.Tally
	err := r.DB.QueryRowContext(ctx, `SELECT id, day, source, status, ours_count, ours_pay, ours_refund, theirs_count,
		theirs_pay, theirs_refund, matched, mismatches, last_error, started_at, finished_at
		FROM reconcile_runs WHERE day = ? AND source = ?`, day, source).Scan(&run.ID, &run.Day, &run.Source, &run.Status,
		&t.OursCount, &t.OursPay, &t.OursRefund, &t.TheirsCount, &t.TheirsPay, &t.TheirsRefund, &t.Matched,
		&run.Mismatches, &run.LastError, &started, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return run, ihos.Errorf(ihos.ENotFound, "%s 尚未对账", day)
	}
	if err != nil {
		return run, err
	}
	run.StartedAt, _ = ihos.ParseTime(started)
	run.FinishedAt, _ = ihos.ParseTime(finished.String)
	return run, nil
}

// Items returns the mismatches of a run, in key order.
func (r *Reconciler) Items(ctx context.Context, runID string) ([]Item, error) {
	rows, err := r.DB.QueryContext(ctx, `SELECT id, run_id, day, source, record_key, record_kind, kind, ours, theirs,
		ours_ref, ours_status, theirs_ref, suggestion, resolved_by, resolved_at, note
		FROM reconcile_items WHERE run_id = ? ORDER BY record_kind, record_key`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []Item
	for rows.Next() {
		var (
			it           Item
			ours, theirs sql.NullInt64
			resolvedAt   sql.NullString
		)
		if err := rows.Scan(&it.ID, &it.RunID, &it.Day, &it.Source, &it.Key, &it.RecordKind, &it.Kind, &ours, &theirs,
			&it.OursRef, &it.OursStatus, &it.TheirsRef, &it.Suggestion, &it.ResolvedBy, &resolvedAt, &it.Note); err != nil {
			return nil, err
		}
		if ours.Valid {
			it.Ours = &ours.Int64
		}
		if theirs.Valid {
			it.Theirs = &theirs.Int64
		}
		it.ResolvedAt, _ = ihos.ParseTime(resolvedAt.String)
		it.Label = sideOf(it.Source).KindLabel(it.Kind, it.RecordKind)
		items = append(items, it)
	}
	return items, rows.Err()
}

// sideOf returns the Side named name; an unknown name gets a neutral label.
func sideOf(name string) Side {
	if name == Channel.Name {
		return Channel
	}
	return Side{Name: name, Label: name}
}

// Resolve marks a mismatch handled by actor, with a note saying how, and
// audits it. A re-run of the day keeps the resolution while the mismatch
// persists.
func (r *Reconciler) Resolve(ctx context.Context, itemID, actor, note string) error {
	if note == "" {
		return ihos.Invalid(map[string]string{"note": "请填写处理说明"})
	}
	return r.DB.Tx(ctx, func(tx *sql.Tx) error {
		var key, kind string
		var resolved sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT record_key, kind, resolved_at FROM reconcile_items WHERE id = ?`+r.DB.ForUpdate(), itemID).
			Scan(&key, &kind, &resolved)
		if errors.Is(err, sql.ErrNoRows) {
			return ihos.Errorf(ihos.ENotFound, "对账差异不存在")
		}
		if err != nil {
			return err
		}
		if resolved.Valid {
			return ihos.Errorf(ihos.EConflict, "该差异已处理")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE reconcile_items SET resolved_by = ?, resolved_at = ?, note = ? WHERE id = ?`,
			ihos.Truncate(actor, 64), ihos.FormatTime(r.now()), ihos.Truncate(note, 500), itemID); err != nil {
			return err
		}
		return audit.Append(ctx, r.DB, tx, audit.Entry{Action: "resolve", Resource: "reconcile_items", RecordID: itemID,
			Summary: "处理对账差异 " + key + "（" + kind + "）：" + note})
	})
}
