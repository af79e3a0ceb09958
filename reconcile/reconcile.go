package reconcile

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	stdsync "sync"
	"sync/atomic"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
	"ihos/paychannel"
	"ihos/sync"
)

// Entities declares the runs and their mismatches (cloud-owned): each
// hospital's appliance holds a replica of its own for the console's 对账管理.
func Entities() []sync.Entity {
	return []sync.Entity{
		{Name: "reconcile_runs", Table: "reconcile_runs", Owner: sync.Cloud},
		{Name: "reconcile_items", Table: "reconcile_items", Owner: sync.Cloud},
	}
}

// Run statuses.
const (
	RunRunning = "running"
	RunDone    = "done"
	RunFailed  = "failed"
)

// Statement (3201) outcomes of an insurance run.
const (
	StmtBalanced   = "balanced"
	StmtUnbalanced = "unbalanced"
	StmtUnchecked  = "unchecked" // the appliance or the centre could not be asked
)

// Run is one reconciliation of one day of one hospital against one external
// side. A re-run of the day replaces it (same ID) and its items.
type Run struct {
	ID         string    `json:"id"`
	HospitalID string    `json:"hospital_id"`
	Day        string    `json:"day"`
	Source     string    `json:"source"`
	Status     string    `json:"status"`
	Tally      Tally     `json:"tally"`
	Mismatches int64     `json:"mismatches"`
	StmtStatus string    `json:"stmt_status,omitempty"`
	StmtDetail string    `json:"stmt_detail,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Item is a stored mismatch.
type Item struct {
	ID           string    `json:"id"`
	HospitalID   string    `json:"hospital_id"`
	RunID        string    `json:"run_id"`
	Day          string    `json:"day"`
	Source       string    `json:"source"`
	Key          string    `json:"key"`
	RecordKind   string    `json:"record_kind"`
	Kind         string    `json:"kind"`
	Label        string    `json:"label"`
	Ours         *int64    `json:"ours"`   // fen; nil when we have no record
	Theirs       *int64    `json:"theirs"` // fen; nil when they have no record
	OursRef      string    `json:"ours_ref"`
	OursStatus   string    `json:"ours_status"`
	TheirsRef    string    `json:"theirs_ref"`
	TheirsStatus string    `json:"theirs_status"`
	Detail       string    `json:"detail,omitempty"`
	Suggestion   string    `json:"suggestion"`
	ResolvedBy   string    `json:"resolved_by,omitempty"`
	ResolvedAt   time.Time `json:"resolved_at,omitzero"`
	Note         string    `json:"note,omitempty"`
}

// Reconciler runs and stores reconciliations (in the cloud) and reads them
// (in the cloud, and on an appliance from the replica).
type Reconciler struct {
	DB  *sqldb.DB
	Now func() time.Time // time.Now when nil
	// Capture records changed runs and items for replication in the
	// transaction that changed them (the cloud: Replica.Capture with "", each
	// row going to its hospital); nil keeps them here. Rows of hospital ""
	// are never captured.
	Capture     func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error
	AfterCommit func() // after a transaction that captured (Link.Kick)
	// Hospitals lists the hospitals that get a run of each side every day,
	// records or not; nil: those the records name. With exactly one
	// hospital, what no side could attribute (a bill row we know nothing
	// of) is that hospital's.
	Hospitals func() []string
	// Bill downloads the channel's bill of a day (paychannel.Client.Bill);
	// nil: no channel is configured and RunDay skips the channel.
	Bill func(ctx context.Context, day string) ([]paychannel.BillRow, error)
	// Statement asks the insurance centre whether a hospital's totals of a
	// day balance (3201, through the appliance); nil, or an error, leaves
	// the check "unchecked" with the reason on the run.
	Statement func(ctx context.Context, hospital, day string) (balanced bool, detail string, err error)

	mu      stdsync.Mutex // one run at a time: a scheduled and a requested run of the same day would race
	rpcBusy atomic.Bool   // a run asked for over the RPC is under way
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

// Yesterday is the Shanghai day before now's, the day a nightly run
// reconciles.
func Yesterday(now time.Time) string {
	return now.In(ihos.Shanghai).AddDate(0, 0, -1).Format(time.DateOnly)
}

// RunDay reconciles day against source ("channel", "insurance", "his"), or
// against all three when source is "" (the channel only when Bill is set).
// Every side runs even when an earlier one failed; the error joins theirs.
func (r *Reconciler) RunDay(ctx context.Context, day, source string) ([]Run, error) {
	if _, _, err := dayRange(day); err != nil {
		return nil, err
	}
	var runs []Run
	var errs []error
	add := func(rs []Run, err error) {
		runs = append(runs, rs...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	switch source {
	case "":
		if r.Bill != nil {
			add(r.RunChannel(ctx, day, r.Bill))
		}
		add(r.RunInsurance(ctx, day))
		add(r.RunHIS(ctx, day))
	case Channel.Name:
		if r.Bill == nil {
			return nil, ihos.Errorf(ihos.EUnavailable, "尚未配置在线支付渠道，无法下载渠道对账单")
		}
		add(r.RunChannel(ctx, day, r.Bill))
	case Insurance.Name:
		add(r.RunInsurance(ctx, day))
	case HIS.Name:
		add(r.RunHIS(ctx, day))
	default:
		return nil, ihos.Invalid(map[string]string{"source": "对账方应为 channel、insurance 或 his"})
	}
	return runs, errors.Join(errs...)
}

// RunChannel reconciles day (2006-01-02, Asia/Shanghai) against the payment
// channel's bill of that day, as bill returns it (paychannel.Client.Bill).
// Our side is the cash legs of payments and refunds: those whose money moved
// that day, and those created that day and not (yet) done, so that a cash
// leg the channel took while we still query it shows as a status difference.
// A bill row we have no record of that day is looked up by its key: found
// done on another day it is OtherDay, found not done it is StatusDiffers.
func (r *Reconciler) RunChannel(ctx context.Context, day string, bill func(ctx context.Context, day string) ([]paychannel.BillRow, error)) ([]Run, error) {
	return r.run(ctx, day, r.channelSpec(func(ctx context.Context, day string) (Source, error) {
		rows, err := bill(ctx, day)
		if err != nil {
			return nil, err
		}
		return NewSliceSource(BillRecords(rows)), nil
	}))
}

// RunInsurance reconciles day's insurance legs and insurance refunds against
// the settlements the appliance recorded at the centre (insurance_settlements,
// replicated), each part (fund, account) separately, and then asks Statement
// for each hospital's totals check of the day (3201): an unbalanced day is a
// mismatch of its own, a check that could not be made is noted on the run.
func (r *Reconciler) RunInsurance(ctx context.Context, day string) ([]Run, error) {
	return r.run(ctx, day, r.insuranceSpec())
}

// RunHIS reconciles day's paid outpatient bills and their refunds against the
// charges and credits the HIS accepted (bill_postings, replicated): a charge
// or credit missing, refused or of another amount.
func (r *Reconciler) RunHIS(ctx context.Context, day string) ([]Run, error) {
	return r.run(ctx, day, r.hisSpec())
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

// run reconciles day against sp's side for every hospital at once (the
// channel's bill covers the whole merchant) and stores one run per hospital.
// The runs are marked running first, so a day being reconciled shows as
// such; each hospital's items and counts are then replaced in one
// transaction.
func (r *Reconciler) run(ctx context.Context, day string, sp spec) ([]Run, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start, end, err := dayRange(day)
	if err != nil {
		return nil, err
	}
	var listed []string
	if r.Hospitals != nil {
		listed = slices.Clone(r.Hospitals())
		slices.Sort(listed)
		listed = slices.Compact(listed)
	}
	began := r.now()
	for _, h := range listed {
		if err := r.begin(ctx, h, day, sp.side.Name, began); err != nil {
			return nil, fmt.Errorf("reconcile: start run: %w", err)
		}
	}

	var found []Mismatch
	tallies, err := func() (Tallies, error) {
		th, err := sp.theirs(ctx, day)
		if err != nil {
			return nil, err
		}
		ours := sp.ours(ctx, start, end)
		if c, ok := ours.(*dbSource); ok {
			defer c.close()
		}
		if c, ok := th.(*dbSource); ok {
			defer c.close()
		}
		return Match(ours, th, func(m Mismatch) error {
			found = append(found, m)
			return nil
		})
	}()
	if err == nil {
		err = r.lookUp(ctx, sp, day, found)
	}
	finished := r.now()
	if err != nil {
		// Record the failure even when ctx ended the run.
		bg := context.WithoutCancel(ctx)
		var runs []Run
		failed := listed
		if len(failed) == 0 {
			failed = []string{""}
		}
		for _, h := range failed {
			run := Run{HospitalID: h, Day: day, Source: sp.side.Name, Status: RunFailed, LastError: err.Error(), StartedAt: began, FinishedAt: finished}
			if uerr := r.fail(bg, &run); uerr != nil {
				err = errors.Join(err, uerr)
			}
			runs = append(runs, run)
		}
		return runs, err
	}

	// Attribute what no side could: with one hospital, it is that one's.
	if len(listed) == 1 {
		only := listed[0]
		for i := range found {
			if found[i].Hospital() == "" {
				if found[i].Theirs != nil {
					found[i].Theirs.Hospital = only
				}
				if found[i].Ours != nil {
					found[i].Ours.Hospital = only
				}
			}
		}
		if t := tallies[""]; t != nil {
			delete(tallies, "")
			tallies.of(only).merge(t)
		}
	}
	byHospital := map[string][]Mismatch{}
	for _, m := range found {
		byHospital[m.Hospital()] = append(byHospital[m.Hospital()], m)
	}
	hospitals := slices.Clone(listed)
	for h := range tallies {
		hospitals = append(hospitals, h)
	}
	for h := range byHospital {
		hospitals = append(hospitals, h)
	}
	// A hospital with a run of the day from before (unattributed records
	// now found, a hospital no longer listed) gets it replaced, not left stale.
	before, err := r.runHospitals(ctx, day, sp.side.Name)
	if err != nil {
		return nil, err
	}
	hospitals = append(hospitals, before...)
	slices.Sort(hospitals)
	hospitals = slices.Compact(hospitals)
	if len(hospitals) == 0 {
		hospitals = []string{""} // nothing listed, nothing found: the day's (empty) run
	}

	var runs []Run
	var errs []error
	for _, h := range hospitals {
		run := Run{HospitalID: h, Day: day, Source: sp.side.Name, Status: RunDone, StartedAt: began, FinishedAt: finished}
		if t := tallies[h]; t != nil {
			run.Tally = *t
		}
		items := byHospital[h]
		if sp.side.Name == Insurance.Name && h != "" {
			run.StmtStatus, run.StmtDetail = r.statement(ctx, h, day)
			if run.StmtStatus == StmtUnbalanced {
				items = append(items, Mismatch{Kind: Unbalanced,
					Theirs: &Record{Kind: KindStatement, Key: day, Hospital: h, Status: run.StmtDetail}})
			}
		}
		run.Mismatches = int64(len(items))
		if err := r.store(ctx, &run, sp.side, items); err != nil {
			errs = append(errs, fmt.Errorf("reconcile: store run of %s: %w", h, err))
		}
		runs = append(runs, run)
	}
	return runs, errors.Join(errs...)
}

// runHospitals lists the hospitals that have a run of day against source.
func (r *Reconciler) runHospitals(ctx context.Context, day, source string) ([]string, error) {
	rows, err := r.DB.QueryContext(ctx, `SELECT hospital_id FROM reconcile_runs WHERE day = ? AND source = ?`, day, source)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var hs []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		hs = append(hs, h)
	}
	return hs, rows.Err()
}

// statement asks the centre's totals check of hospital's day.
func (r *Reconciler) statement(ctx context.Context, hospital, day string) (status, detail string) {
	if r.Statement == nil {
		return StmtUnchecked, "未配置医保总额对账"
	}
	balanced, detail, err := r.Statement(ctx, hospital, day)
	switch {
	case err != nil:
		return StmtUnchecked, ihos.Truncate("未能向医保中心总额对账："+ihos.ErrorMessage(err), 500)
	case balanced:
		return StmtBalanced, ihos.Truncate(detail, 500)
	}
	return StmtUnbalanced, ihos.Truncate(cmp.Or(detail, "医保中心总额与本院不一致"), 500)
}

// lookUp reclassifies, one query each (there are few), what one side has and
// the other lacks that day: found in the other side's records of another day
// (or not done) it is not simply missing. Then a record they refused is
// Refused.
func (r *Reconciler) lookUp(ctx context.Context, sp spec, day string, found []Mismatch) error {
	for i := range found {
		m := &found[i]
		switch {
		case m.Kind == MissingOurs && sp.oursByKey != nil:
			rec, err := sp.oursByKey(ctx, m.Theirs.Kind, m.Theirs.Key)
			if errors.Is(err, sql.ErrNoRows) {
				break
			}
			if err != nil {
				return err
			}
			m.Ours = &rec
			switch {
			case !rec.Done:
				m.Kind = StatusDiffers
			case rec.Amount != m.Theirs.Amount || rec.Parts != m.Theirs.Parts:
				m.Kind = AmountDiffers
			default:
				m.Kind = OtherDay
			}
		case m.Kind == MissingTheirs && m.Theirs == nil && sp.theirsByKey != nil:
			rec, err := sp.theirsByKey(ctx, m.Ours.Kind, m.Ours.Key)
			if errors.Is(err, sql.ErrNoRows) {
				break
			}
			if err != nil {
				return err
			}
			m.Theirs = &rec
			switch {
			case !rec.Done:
			case rec.Amount != m.Ours.Amount || rec.Parts != m.Ours.Parts:
				m.Kind = AmountDiffers
			default:
				m.Kind = OtherDay
			}
		}
		if m.Kind == MissingTheirs && m.Theirs != nil && sp.side.RefusedStatus != "" && m.Theirs.Status == sp.side.RefusedStatus {
			m.Kind = Refused
		}
	}
	return nil
}

// commit runs fn in a transaction and kicks the link after it when fn
// captured anything.
func (r *Reconciler) commit(ctx context.Context, hospital string, fn func(tx *sql.Tx, capture func(refs ...sync.Ref) error) error) error {
	captured := false
	err := r.DB.Tx(ctx, func(tx *sql.Tx) error {
		captured = false
		return fn(tx, func(refs ...sync.Ref) error {
			if r.Capture == nil || hospital == "" || len(refs) == 0 {
				return nil
			}
			captured = true
			return r.Capture(ctx, tx, refs...)
		})
	})
	if err == nil && captured && r.AfterCommit != nil {
		r.AfterCommit()
	}
	return err
}

// runID returns (locking) the run of hospital, day and source, creating it
// as running when there is none.
func (r *Reconciler) runID(ctx context.Context, tx *sql.Tx, hospital, day, source string, began time.Time) (id string, created bool, err error) {
	err = tx.QueryRowContext(ctx, `SELECT id FROM reconcile_runs WHERE hospital_id = ? AND day = ? AND source = ?`+r.DB.ForUpdate(),
		hospital, day, source).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		id = ihos.NewID()
		at := ihos.FormatTime(began)
		_, err = tx.ExecContext(ctx, `INSERT INTO reconcile_runs (id, hospital_id, day, source, status, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id, hospital, day, source, RunRunning, at, at)
		return id, true, err
	}
	return id, false, err
}

// begin marks hospital's run of day running.
func (r *Reconciler) begin(ctx context.Context, hospital, day, source string, began time.Time) error {
	return r.commit(ctx, hospital, func(tx *sql.Tx, capture func(...sync.Ref) error) error {
		id, created, err := r.runID(ctx, tx, hospital, day, source, began)
		if err != nil {
			return err
		}
		if !created {
			at := ihos.FormatTime(began)
			if _, err := tx.ExecContext(ctx, `UPDATE reconcile_runs SET status = ?, started_at = ?, finished_at = NULL, last_error = '',
				version = version + 1, updated_at = ? WHERE id = ?`, RunRunning, at, at, id); err != nil {
				return err
			}
		}
		return capture(sync.Ref{Entity: "reconcile_runs", ID: id})
	})
}

// fail records run as failed.
func (r *Reconciler) fail(ctx context.Context, run *Run) error {
	return r.commit(ctx, run.HospitalID, func(tx *sql.Tx, capture func(...sync.Ref) error) error {
		id, _, err := r.runID(ctx, tx, run.HospitalID, run.Day, run.Source, run.StartedAt)
		if err != nil {
			return err
		}
		run.ID = id
		at := ihos.FormatTime(run.FinishedAt)
		if _, err := tx.ExecContext(ctx, `UPDATE reconcile_runs SET status = ?, last_error = ?, finished_at = ?, version = version + 1,
			updated_at = ? WHERE id = ?`, RunFailed, ihos.Truncate(run.LastError, 500), at, at, id); err != nil {
			return err
		}
		return capture(sync.Ref{Entity: "reconcile_runs", ID: id})
	})
}

// store writes run and its mismatches. An item of the same record as in the
// previous run of the day is updated in place, keeping who resolved it while
// the mismatch is of the same kind; items no longer found are marked
// deleted, so the replica drops them too.
func (r *Reconciler) store(ctx context.Context, run *Run, side Side, found []Mismatch) error {
	return r.commit(ctx, run.HospitalID, func(tx *sql.Tx, capture func(...sync.Ref) error) error {
		id, _, err := r.runID(ctx, tx, run.HospitalID, run.Day, run.Source, run.StartedAt)
		if err != nil {
			return err
		}
		run.ID = id
		type old struct {
			id, kind string
			deleted  bool
		}
		prev := map[string]old{}
		rows, err := tx.QueryContext(ctx, `SELECT id, record_kind, record_key, kind, deleted_at FROM reconcile_items WHERE run_id = ?`, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var o old
			var rk, key string
			var deleted sql.NullString
			if err := rows.Scan(&o.id, &rk, &key, &o.kind, &deleted); err != nil {
				rows.Close()
				return err
			}
			o.deleted = deleted.Valid
			prev[rk+"\x00"+key] = o
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		now := ihos.FormatTime(run.FinishedAt)
		var refs []sync.Ref
		for _, m := range found {
			var ours, theirs any
			var oursRef, oursStatus, theirsRef, theirsStatus string
			if m.Ours != nil {
				ours, oursRef, oursStatus = m.Ours.Amount, m.Ours.Ref, m.Ours.Status
			}
			if m.Theirs != nil && m.Kind != Unbalanced {
				theirs, theirsRef, theirsStatus = m.Theirs.Amount, m.Theirs.Ref, m.Theirs.Status
			}
			detail := detailOf(m)
			suggestion := side.Suggestion(m.Kind, m.RecordKind())
			k := m.RecordKind() + "\x00" + m.Key()
			o, ok := prev[k]
			delete(prev, k)
			if !ok {
				itemID := ihos.NewID()
				if _, err := r.DB.TxExec(ctx, tx, `INSERT INTO reconcile_items (id, hospital_id, run_id, day, source, record_key, record_kind, kind,
					ours, theirs, ours_ref, ours_status, theirs_ref, theirs_status, detail, suggestion, created_at, updated_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
					itemID, run.HospitalID, id, run.Day, run.Source, ihos.Truncate(m.Key(), 64), m.RecordKind(), m.Kind, ours, theirs,
					ihos.Truncate(oursRef, 64), ihos.Truncate(oursStatus, 24), ihos.Truncate(theirsRef, 64), ihos.Truncate(theirsStatus, 24),
					ihos.Truncate(detail, 500), suggestion, now, now); err != nil {
					return err
				}
				refs = append(refs, sync.Ref{Entity: "reconcile_items", ID: itemID})
				continue
			}
			// A different kind, or a mismatch back after it had gone, is a new
			// finding: its old resolution does not apply.
			reset := ""
			if o.kind != m.Kind || o.deleted {
				reset = `, resolved_by = '', resolved_at = NULL, note = ''`
			}
			if _, err := r.DB.TxExec(ctx, tx, `UPDATE reconcile_items SET kind = ?, ours = ?, theirs = ?, ours_ref = ?, ours_status = ?,
				theirs_ref = ?, theirs_status = ?, detail = ?, suggestion = ?, deleted_at = NULL, version = version + 1, updated_at = ?`+reset+`
				WHERE id = ?`, m.Kind, ours, theirs, ihos.Truncate(oursRef, 64), ihos.Truncate(oursStatus, 24), ihos.Truncate(theirsRef, 64),
				ihos.Truncate(theirsStatus, 24), ihos.Truncate(detail, 500), suggestion, now, o.id); err != nil {
				return err
			}
			refs = append(refs, sync.Ref{Entity: "reconcile_items", ID: o.id})
		}
		for _, o := range prev {
			if o.deleted {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE reconcile_items SET deleted_at = ?, version = version + 1, updated_at = ? WHERE id = ?`,
				now, now, o.id); err != nil {
				return err
			}
			refs = append(refs, sync.Ref{Entity: "reconcile_items", ID: o.id})
		}
		t := run.Tally
		if _, err := tx.ExecContext(ctx, `UPDATE reconcile_runs SET status = ?, ours_count = ?, ours_pay = ?, ours_refund = ?,
			theirs_count = ?, theirs_pay = ?, theirs_refund = ?, matched = ?, mismatches = ?, stmt_status = ?, stmt_detail = ?,
			last_error = '', started_at = ?, finished_at = ?, version = version + 1, updated_at = ? WHERE id = ?`,
			run.Status, t.OursCount, t.OursPay, t.OursRefund, t.TheirsCount, t.TheirsPay, t.TheirsRefund, t.Matched,
			run.Mismatches, run.StmtStatus, run.StmtDetail, ihos.FormatTime(run.StartedAt), now, now, id); err != nil {
			return err
		}
		return capture(append(refs, sync.Ref{Entity: "reconcile_runs", ID: id})...)
	})
}

// detailOf is what an item says beside the amounts: the insurance parts of
// both sides, or the centre's answer to the totals check.
func detailOf(m Mismatch) string {
	if m.Kind == Unbalanced {
		return m.Theirs.Status
	}
	parts := func(r *Record) string {
		return "统筹 ¥" + ihos.FormatYuan(r.Parts[0]) + "，个账 ¥" + ihos.FormatYuan(r.Parts[1])
	}
	has := func(r *Record) bool { return r != nil && r.Parts != [2]int64{} }
	switch {
	case has(m.Ours) && m.Theirs != nil:
		return "我方 " + parts(m.Ours) + "；对方 " + parts(m.Theirs)
	case has(m.Ours):
		return "我方 " + parts(m.Ours)
	case has(m.Theirs):
		return "对方 " + parts(m.Theirs)
	}
	return ""
}

const runCols = `id, hospital_id, day, source, status, ours_count, ours_pay, ours_refund, theirs_count,
	theirs_pay, theirs_refund, matched, mismatches, stmt_status, stmt_detail, last_error, started_at, finished_at`

func scanRun(row scanner) (Run, error) {
	var (
		run      Run
		started  string
		finished sql.NullString
	)
	t := &run.Tally
	err := row.Scan(&run.ID, &run.HospitalID, &run.Day, &run.Source, &run.Status,
		&t.OursCount, &t.OursPay, &t.OursRefund, &t.TheirsCount, &t.TheirsPay, &t.TheirsRefund, &t.Matched,
		&run.Mismatches, &run.StmtStatus, &run.StmtDetail, &run.LastError, &started, &finished)
	run.StartedAt, _ = ihos.ParseTime(started)
	run.FinishedAt, _ = ihos.ParseTime(finished.String)
	return run, err
}

// GetRun returns the run of hospital's day against source.
func (r *Reconciler) GetRun(ctx context.Context, hospital, day, source string) (Run, error) {
	run, err := scanRun(r.DB.QueryRowContext(ctx, `SELECT `+runCols+` FROM reconcile_runs
		WHERE hospital_id = ? AND day = ? AND source = ? AND deleted_at IS NULL`, hospital, day, source))
	if errors.Is(err, sql.ErrNoRows) {
		return run, ihos.Errorf(ihos.ENotFound, "%s 尚未对账", day)
	}
	return run, err
}

// Run returns the run id.
func (r *Reconciler) Run(ctx context.Context, id string) (Run, error) {
	run, err := scanRun(r.DB.QueryRowContext(ctx, `SELECT `+runCols+` FROM reconcile_runs WHERE id = ? AND deleted_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return run, ihos.Errorf(ihos.ENotFound, "对账记录不存在")
	}
	return run, err
}

// Runs returns the runs of day in side order (channel, insurance, HIS), of
// hospital only when it is not "".
func (r *Reconciler) Runs(ctx context.Context, day, hospital string) ([]Run, error) {
	if _, _, err := dayRange(day); err != nil {
		return nil, err
	}
	q := `SELECT ` + runCols + ` FROM reconcile_runs WHERE day = ? AND deleted_at IS NULL`
	args := []any{day}
	if hospital != "" {
		q += ` AND hospital_id = ?`
		args = append(args, hospital)
	}
	rows, err := r.DB.QueryContext(ctx, q+` ORDER BY hospital_id, source`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	runs := []Run{}
	for rows.Next() {
		run, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		runs = append(runs, run)
	}
	order := map[string]int{Channel.Name: 0, Insurance.Name: 1, HIS.Name: 2}
	slices.SortStableFunc(runs, func(a, b Run) int {
		return cmp.Or(cmp.Compare(a.HospitalID, b.HospitalID), cmp.Compare(order[a.Source], order[b.Source]))
	})
	return runs, rows.Err()
}

// Items returns the mismatches of a run, in key order; only those not
// resolved yet when unresolved is set.
func (r *Reconciler) Items(ctx context.Context, runID string, unresolved bool) ([]Item, error) {
	q := `SELECT id, hospital_id, run_id, day, source, record_key, record_kind, kind, ours, theirs, ours_ref, ours_status, theirs_ref,
		theirs_status, detail, suggestion, resolved_by, resolved_at, note
		FROM reconcile_items WHERE run_id = ? AND deleted_at IS NULL`
	if unresolved {
		q += ` AND resolved_at IS NULL`
	}
	rows, err := r.DB.QueryContext(ctx, q+` ORDER BY record_kind, record_key`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	items := []Item{}
	for rows.Next() {
		var (
			it           Item
			ours, theirs sql.NullInt64
			resolvedAt   sql.NullString
		)
		if err := rows.Scan(&it.ID, &it.HospitalID, &it.RunID, &it.Day, &it.Source, &it.Key, &it.RecordKind, &it.Kind, &ours, &theirs,
			&it.OursRef, &it.OursStatus, &it.TheirsRef, &it.TheirsStatus, &it.Detail, &it.Suggestion, &it.ResolvedBy, &resolvedAt, &it.Note); err != nil {
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

// Resolve marks a mismatch handled by the context's actor, with a note saying
// how, and audits it. hospital, when not "", is the only hospital whose items
// may be resolved (a request from that hospital's appliance). A re-run of the
// day keeps the resolution while the mismatch persists.
func (r *Reconciler) Resolve(ctx context.Context, itemID, hospital, note string) error {
	if note == "" {
		return ihos.Invalid(map[string]string{"note": "请填写处理说明"})
	}
	actor, _ := ihos.ActorFrom(ctx)
	by := cmp.Or(actor.Username, actor.Name, actor.UserID)
	var h string
	if err := r.DB.QueryRowContext(ctx, `SELECT hospital_id FROM reconcile_items WHERE id = ? AND deleted_at IS NULL`, itemID).Scan(&h); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return ihos.Errorf(ihos.ENotFound, "对账差异不存在")
		}
		return err
	}
	if hospital != "" && h != hospital {
		return ihos.Errorf(ihos.ENotFound, "对账差异不存在")
	}
	return r.commit(ctx, h, func(tx *sql.Tx, capture func(...sync.Ref) error) error {
		var key, kind, source, day string
		var resolved sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT record_key, kind, source, day, resolved_at FROM reconcile_items WHERE id = ?`+r.DB.ForUpdate(), itemID).
			Scan(&key, &kind, &source, &day, &resolved)
		if err != nil {
			return err
		}
		if resolved.Valid {
			return ihos.Errorf(ihos.EConflict, "该差异已处理")
		}
		now := ihos.FormatTime(r.now())
		if _, err := tx.ExecContext(ctx, `UPDATE reconcile_items SET resolved_by = ?, resolved_at = ?, note = ?, version = version + 1,
			updated_at = ? WHERE id = ?`, ihos.Truncate(by, 64), now, ihos.Truncate(note, 500), now, itemID); err != nil {
			return err
		}
		if err := capture(sync.Ref{Entity: "reconcile_items", ID: itemID}); err != nil {
			return err
		}
		return audit.Append(ctx, r.DB, tx, audit.Entry{Action: "resolve", Resource: "reconcile_items", RecordID: itemID,
			Summary: fmt.Sprintf("处理对账差异 %s %s %s（%s）：%s", day, SideLabel(source), key, sideOf(source).KindLabel(kind, ""), note)})
	})
}

// logRun logs the outcome of a scheduled or requested run.
func logRun(ctx context.Context, day, source string, runs []Run, err error) {
	var mismatches int64
	for _, run := range runs {
		mismatches += run.Mismatches
	}
	if err != nil {
		slog.ErrorContext(ctx, "reconcile: run failed", "day", day, "source", source, "err", err)
		return
	}
	slog.InfoContext(ctx, "reconcile: run done", "day", day, "source", source, "runs", len(runs), "mismatches", mismatches)
}

// Nightly reconciles, every day at hour:minute Asia/Shanghai, the day
// before (all three sides), until ctx ends. The channel's bill of a day is
// ready the next morning, and insurance and HIS answers of late evening
// have arrived by then.
func (r *Reconciler) Nightly(ctx context.Context, hour, minute int) {
	for {
		now := r.now().In(ihos.Shanghai)
		next := time.Date(now.Year(), now.Month(), now.Day(), hour, minute, 0, 0, ihos.Shanghai)
		if !next.After(now) {
			next = next.AddDate(0, 0, 1)
		}
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		day := Yesterday(r.now())
		runs, err := r.RunDay(ctx, day, "")
		logRun(ctx, day, "", runs, err)
	}
}

// OursStatusLabel is OursStatus in Chinese: the status of our payment or
// refund, as the console shows it.
func (it Item) OursStatusLabel() string {
	if it.RecordKind == KindRefund {
		return ihos.RefundStatusLabel(it.OursStatus)
	}
	if it.RecordKind == KindPayment {
		return ihos.PaymentStatusLabel(it.OursStatus)
	}
	return it.OursStatus
}

// theirLabels names the other sides' statuses in Chinese: the channel's
// trade and refund states, the insurance settlement rows, the HIS postings.
var theirLabels = map[string]string{
	"SUCCESS": "支付成功", "REFUND": "转入退款", "NOTPAY": "未支付", "USERPAYING": "用户支付中", "CLOSED": "已关闭",
	"REVOKED": "已撤销", "PAYERROR": "支付失败", "PROCESSING": "退款处理中", "ABNORMAL": "退款异常",
	"quoted": "已预结算", "pending": "结算中", "settled": "已结算", "failed": "失败", "refunded": "已退费", "reversed": "已冲正",
	"queued": "待 HIS 确认", "accepted": "HIS 已入账", "refused": "HIS 拒收",
}

// TheirsStatusLabel is TheirsStatus in Chinese where the console knows it.
func (it Item) TheirsStatusLabel() string {
	if l, ok := theirLabels[it.TheirsStatus]; ok {
		return l
	}
	return it.TheirsStatus
}
