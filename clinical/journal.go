package clinical

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
	"ihos/sync"
)

// Journal keeps what a change of one kind of clinical document leaves
// behind, written in the change's transaction: the history row of a status
// change (append only, in the document's events table), the audit record
// with the before and after, and the rows captured for the appliance (the
// documents and their history are cloud-owned and replicate).
type Journal struct {
	DB *sqldb.DB
	// Capture records replicated rows inside the transaction
	// (sync.Replica.Capture with hospital ""); nil without sync.
	Capture func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error

	Table  string // the documents' table and sync entity: "prescriptions"
	Events string // their history table and sync entity: "prescription_events"
	Key    string // the history table's column naming the document: "prescription_id"
	Action string // the audit actions' prefix: "prescription" (prescription.sign, …)
}

// Change is one write to a document.
type Change struct {
	HospitalID string
	ID         string
	Action     string // the audit action: create, update, a status, …
	// Event: the change gets a history row, from From to To. Columns are
	// the history table's own further columns (reason, visit_id, …).
	Event    bool
	From, To string
	Columns  map[string]string
	Actor    string
	At       time.Time
	Summary  string
	// Before and After are the document as the audit log shows it; Before
	// is nil for a creation (use View for a pointer that may be nil).
	Before, After any
}

// View is p as the audit log shows it (view(p)), or nil when p is nil: a
// creation has no before.
func View[T any](p *T, view func(*T) any) any {
	if p == nil {
		return nil
	}
	return view(p)
}

// Record appends c's history row (when c.Event) and audit record in tx, and
// captures the document and the history row for the appliance.
func (j Journal) Record(ctx context.Context, tx *sql.Tx, c Change) error {
	refs := []sync.Ref{{Entity: j.Table, ID: c.ID}}
	if c.Event {
		ev := ihos.NewID()
		at := ihos.FormatTime(c.At)
		cols := []string{"id", "hospital_id", j.Key}
		args := []any{ev, c.HospitalID, c.ID}
		for _, k := range slices.Sorted(maps.Keys(c.Columns)) { // one statement text per table, prepared once
			cols, args = append(cols, k), append(args, c.Columns[k])
		}
		cols = append(cols, "from_status", "to_status", "actor_id", "at", "version", "updated_at")
		args = append(args, c.From, c.To, ihos.Truncate(c.Actor, 64), at, 1, at)
		q := `INSERT INTO ` + j.Events + ` (` + strings.Join(cols, ", ") + `) VALUES (?` + strings.Repeat(", ?", len(cols)-1) + `)`
		if _, err := j.DB.TxExec(ctx, tx, q, args...); err != nil {
			return err
		}
		refs = append(refs, sync.Ref{Entity: j.Events, ID: ev})
	}
	if err := Audit(ctx, j.DB, tx, audit.Entry{Action: j.Action + "." + c.Action, Resource: j.Table, RecordID: c.ID, Summary: c.Summary},
		c.Before, c.After); err != nil {
		return err
	}
	if j.Capture == nil {
		return nil
	}
	return j.Capture(ctx, tx, refs...)
}

// Audit appends e in tx with before (nil for a creation) and after as JSON,
// the summary cut to the log's 500 characters.
func Audit(ctx context.Context, db *sqldb.DB, tx *sql.Tx, e audit.Entry, before, after any) error {
	if before != nil {
		b, err := json.Marshal(before)
		if err != nil {
			return err
		}
		e.Before = b
	}
	a, err := json.Marshal(after)
	if err != nil {
		return err
	}
	e.After, e.Summary = a, ihos.Truncate(e.Summary, 500)
	return audit.Append(ctx, db, tx, e)
}

// Get reads document id from table (its columns cols, read by scan);
// notFound answers a missing or deleted one, other failures are internal.
func Get[T any](ctx context.Context, db *sqldb.DB, table, cols, id string, scan func(sqldb.Scanner) (*T, error), notFound error) (*T, error) {
	v, err := scan(db.QueryRowContext(ctx, `SELECT `+cols+` FROM `+table+` WHERE id = ? AND deleted_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound
	}
	if err != nil {
		return nil, ihos.Internal(err)
	}
	return v, nil
}

// Lock reads document id from table (its columns cols, read by scan) for
// update inside tx; notFound answers a missing or deleted one.
func Lock[T any](ctx context.Context, db *sqldb.DB, tx *sql.Tx, table, cols, id string, scan func(sqldb.Scanner) (*T, error), notFound error) (*T, error) {
	v, err := scan(db.TxQueryRow(ctx, tx, `SELECT `+cols+` FROM `+table+` WHERE id = ? AND deleted_at IS NULL`+db.ForUpdate(), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound
	}
	return v, err
}

// Transition makes one change of a stored document in a transaction of its
// own: lock reads the document for update (Lock), change checks the change
// is allowed and applies it to a copy, returning its summary for the audit
// log ("": nothing to change, the document is returned as it is), and store
// writes the copy with its history and audit record (Journal.Record).
func Transition[T any](ctx context.Context, db *sqldb.DB, lock func(tx *sql.Tx) (*T, error), change func(*T) (string, error),
	store func(tx *sql.Tx, before, after *T, summary string) error) (*T, error) {
	var out *T
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		before, err := lock(tx)
		if err != nil {
			return err
		}
		after := *before
		summary, err := change(&after)
		if err != nil {
			return err
		}
		out = &after
		if summary == "" {
			return nil
		}
		return store(tx, before, &after, summary)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
