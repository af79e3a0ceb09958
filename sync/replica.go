package sync

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/internal/sqldb"
)

// Replica is one node's end of replication: its database, the entities it
// replicates, who it is, and its clock. Capture writes outgoing changes to the
// outbox; Apply writes incoming ones with the inbox.
type Replica struct {
	DB       *sqldb.DB
	Entities *Registry
	Side     Side
	Origin   string // this node's id, unique among all nodes
	Clock    *Clock
	// Follow, when set, sees every change as it enters this node's ordered
	// feed, inside the transaction that puts it there: each local change
	// when a relay promotes it into the outbox (numbered; see promote), each
	// incoming one when Apply records it in the inbox (resync snapshots
	// included: check Snapshot). A local follower (the cloud's message
	// center, its doctor statistics) keeps what it needs in that same
	// transaction, so it sees every change exactly once whatever crashes,
	// without reading the outbox, whose rows the relay deletes once sent. It
	// must be quick and fail only when the database does: its error rolls
	// the promotion or the apply back, and they are retried. Set it before
	// the link starts.
	Follow func(ctx context.Context, tx *sql.Tx, envs []*Envelope) error
	// Keys seal and open the entities' Sealed columns; nil on a node whose
	// entities have none.
	Keys *Keys
}

// NewReplica resolves the entities' columns and restores the clock.
func NewReplica(ctx context.Context, db *sqldb.DB, side Side, origin string, entities *Registry) (*Replica, error) {
	if side != Appliance && side != Cloud {
		return nil, fmt.Errorf("sync: side must be appliance or cloud, not %q", side)
	}
	if err := entities.Resolve(ctx, db); err != nil {
		return nil, err
	}
	h, err := clockFloor(ctx, db)
	if err != nil {
		return nil, err
	}
	return &Replica{DB: db, Entities: entities, Side: side, Origin: origin, Clock: NewClock(h)}, nil
}

// clockFloor returns the newest timestamp this node issued for a change:
// sync_state's floor covers every change promoted to the outbox, and the
// staged ones not promoted yet carry their own.
func clockFloor(ctx context.Context, db *sqldb.DB) (HLC, error) {
	var floor string
	var staged sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT value FROM sync_state WHERE name = 'hlc'`).Scan(&floor); err != nil {
		return 0, fmt.Errorf("sync: read clock: %w", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT MAX(hlc) FROM sync_capture`).Scan(&staged); err != nil {
		return 0, fmt.Errorf("sync: read clock: %w", err)
	}
	h, err := ParseHLC(floor)
	if err != nil {
		return 0, err
	}
	if staged.Valid {
		s, err := ParseHLC(staged.String)
		if err != nil {
			return 0, err
		}
		h = max(h, s)
	}
	return h, nil
}

// Ref names a row to capture. For a Shared entity, Fields lists the columns
// this transaction changed (nil on insert means every column): only those get
// this write's clock stamp and can win or lose against the other side.
type Ref struct {
	Entity string
	ID     string
	Fields []string
}

// Capture records the rows named by refs, as they stand inside tx, as one
// outbox message for hospital. Call it in the transaction that made the change,
// so the change and its record commit or vanish together. The message is
// staged in sync_capture and takes its place in the outbox when a relay
// promotes it (see promote for why that keeps each row's changes in order). On the cloud, pass
// hospital "" to send the rows to the hospital in their hospital_id column.
func (r *Replica) Capture(ctx context.Context, tx *sql.Tx, hospital string, refs ...Ref) error {
	return r.capture(ctx, tx, hospital, false, refs...)
}

func (r *Replica) capture(ctx context.Context, tx *sql.Tx, hospital string, snapshot bool, refs ...Ref) error {
	env := Envelope{ChangeID: ihos.NewID(), Origin: r.Origin, Side: r.Side, Snapshot: snapshot,
		HLC: r.Clock.Tick(), At: time.Now().UTC().Truncate(time.Microsecond)}
	for _, ref := range refs {
		e, ok := r.Entities.Entity(ref.Entity)
		if !ok {
			return fmt.Errorf("sync: capture of undeclared entity %q", ref.Entity)
		}
		if e.Owner != r.Side && e.Owner != Shared {
			return fmt.Errorf("sync: %s is owned by the %s and cannot be written here", e.Name, e.Owner)
		}
		values, err := r.readRow(ctx, tx, e, ref.ID)
		if err != nil {
			return err
		}
		version, _ := strconv.ParseInt(deref(values["version"]), 10, 64)
		rc := RowChange{Entity: e.Name, ID: ref.ID, Version: version, Values: values}
		if e.Owner == Shared {
			if snapshot {
				rc.Stamps, err = r.currentStamps(ctx, tx, e, ref.ID)
			} else {
				rc.Stamps, err = r.stampFields(ctx, tx, e, ref, env.HLC)
			}
			if err != nil {
				return err
			}
		}
		env.Rows = append(env.Rows, rc)
		if r.Side == Cloud {
			rowHospital := deref(values["hospital_id"])
			if hospital == "" {
				hospital = rowHospital
			}
			if rowHospital != hospital {
				return fmt.Errorf("sync: one transaction captures rows of hospitals %q and %q", hospital, rowHospital)
			}
		}
	}
	if len(env.Rows) == 0 {
		return nil
	}
	if hospital == "" {
		return errors.New("sync: capture without a hospital")
	}
	env.Hospital = hospital
	payload, err := json.Marshal(env)
	if err != nil {
		return err
	}
	// Staged, not numbered: the outbox sequence and the clock floor are rows
	// every replicated write would share, and on MariaDB they made the whole
	// cloud's writes wait for each other. promote numbers the change later.
	_, err = r.DB.TxExec(ctx, tx, `INSERT INTO sync_capture (change_id, hlc, hospital, payload, created_at) VALUES (?, ?, ?, ?, ?)`,
		env.ChangeID, env.HLC.String(), hospital, string(payload), ihos.FormatTime(env.At))
	return err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// readRow reads the replicated columns of one row as text.
func (r *Replica) readRow(ctx context.Context, tx *sql.Tx, e *Entity, id string) (map[string]*string, error) {
	cols := e.Columns()
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := r.DB.TxQueryRow(ctx, tx, "SELECT "+strings.Join(cols, ", ")+" FROM "+e.Table+" WHERE id = ?", id).Scan(ptrs...); err != nil {
		return nil, fmt.Errorf("sync: read %s %s: %w", e.Name, id, err)
	}
	out := make(map[string]*string, len(cols))
	for i, c := range cols {
		if vals[i].Valid {
			s := vals[i].String
			out[c] = &s
		} else {
			out[c] = nil
		}
	}
	return out, nil
}

// RejectError is a message that can never be applied: malformed, claiming
// another hospital, writing what its side does not own, or naming an unknown
// entity. It is recorded and acknowledged so it does not block the stream.
type RejectError struct{ Reason string }

func (e *RejectError) Error() string { return "sync: rejected: " + e.Reason }

func reject(format string, args ...any) error {
	return &RejectError{Reason: fmt.Sprintf(format, args...)}
}

// Apply applies an envelope that arrived on hospital's channel. It returns
// false without changing anything when the change was applied before. Rows
// whose local version is already as new are left alone, so a replayed snapshot
// or an out-of-order duplicate never moves a row backwards.
func (r *Replica) Apply(ctx context.Context, hospital string, env *Envelope) (applied bool, err error) {
	if err := r.Check(hospital, env); err != nil {
		return false, err
	}
	done, err := r.ApplyBatch(ctx, hospital, []*Envelope{env})
	if err != nil {
		return false, err
	}
	return done[0], nil
}

// seen returns the change ids of envs already in the inbox.
func (r *Replica) seen(ctx context.Context, tx *sql.Tx, envs []*Envelope) (map[string]bool, error) {
	seen := map[string]bool{}
	ids := make([]any, len(envs))
	for i, env := range envs {
		ids[i] = env.ChangeID
	}
	rows, err := tx.QueryContext(ctx, `SELECT change_id FROM sync_inbox WHERE change_id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+`)`, ids...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		seen[id] = true
	}
	return seen, rows.Err()
}

// Check makes the checks of an envelope that need no database: the channel's
// hospital, the side, and that every row is of a known entity the sender's side
// may write.
func (r *Replica) Check(hospital string, env *Envelope) error {
	if env.Hospital != hospital {
		return reject("message for hospital %q arrived on hospital %q's channel", env.Hospital, hospital)
	}
	if env.Side == r.Side {
		return reject("message from the %s side arrived at the %s side", env.Side, r.Side)
	}
	for _, row := range env.Rows {
		e, ok := r.Entities.Entity(row.Entity)
		if !ok {
			return reject("unknown entity %q", row.Entity)
		}
		if e.Owner != env.Side && e.Owner != Shared {
			return reject("%s is owned by the %s; the %s may not write it", e.Name, e.Owner, env.Side)
		}
	}
	return nil
}

// ApplyBatch applies envelopes that passed Check in one transaction (one fsync
// for the lot), in order, each with its inbox row; applied[i] is false for a
// change applied before. If any row fails, nothing of the batch is applied and
// the caller retries the envelopes one at a time to find the culprit.
func (r *Replica) ApplyBatch(ctx context.Context, hospital string, envs []*Envelope) (applied []bool, err error) {
	applied = make([]bool, len(envs))
	// Sealed columns are re-keyed before the transaction: fetching a transit
	// key may ask the other side.
	envs, err = r.incoming(ctx, hospital, envs)
	if err != nil {
		return nil, err
	}
	now := ihos.FormatTime(time.Now())
	err = r.DB.Tx(ctx, func(tx *sql.Tx) error {
		// One query finds which of the batch were applied before.
		seen, err := r.seen(ctx, tx, envs)
		if err != nil {
			return err
		}
		for i, env := range envs {
			applied[i] = false
			if seen[env.ChangeID] {
				continue
			}
			seen[env.ChangeID] = true // a second copy in the same batch
			for _, row := range env.Rows {
				e, _ := r.Entities.Entity(row.Entity)
				if err := r.applyRow(ctx, tx, e, hospital, row, env.Snapshot); err != nil {
					return err
				}
			}
			if _, err := r.DB.TxExec(ctx, tx, `INSERT INTO sync_inbox (change_id, hospital, origin, origin_seq, committed_at, applied_at) VALUES (?, ?, ?, ?, ?, ?)`,
				env.ChangeID, hospital, env.Origin, env.Seq, ihos.FormatTime(env.At), now); err != nil {
				return err
			}
			applied[i] = true
		}
		if r.Follow != nil {
			var news []*Envelope
			for i, env := range envs {
				if applied[i] {
					news = append(news, env)
				}
			}
			if len(news) > 0 {
				return r.Follow(ctx, tx, news)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, env := range envs {
		r.Clock.Observe(env.HLC)
	}
	return applied, nil
}

func (r *Replica) applyRow(ctx context.Context, tx *sql.Tx, e *Entity, hospital string, row RowChange, snapshot bool) error {
	if e.Owner == Shared {
		return r.mergeRow(ctx, tx, e, hospital, row)
	}
	var version int64
	var owner string
	err := r.DB.TxQueryRow(ctx, tx, "SELECT version, hospital_id FROM "+e.Table+" WHERE id = ?"+r.DB.ForUpdate(), row.ID).Scan(&version, &owner)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if exists && owner != "" && owner != hospital {
		return reject("%s %s belongs to hospital %q, not %q", e.Name, row.ID, owner, hospital)
	}
	if exists && version >= row.Version && !snapshot {
		return nil
	}
	return r.upsert(ctx, tx, e, hospital, row, exists)
}

// upsert writes row's values as they are (exists says whether to update or
// insert). Only columns this node knows are written; a column only a newer peer
// has is skipped, so the two sides can be upgraded one at a time.
func (r *Replica) upsert(ctx context.Context, tx *sql.Tx, e *Entity, hospital string, row RowChange, exists bool) error {
	var cols []string
	var args []any
	for _, c := range e.Columns() {
		v, ok := row.Values[c]
		switch {
		case c == "id":
			continue
		case c == "version":
			args = append(args, row.Version)
		case c == "hospital_id":
			args = append(args, hospital)
		case !ok:
			continue
		default:
			args = append(args, nullable(v))
		}
		cols = append(cols, c)
	}
	for c := range e.indexed {
		if v, ok := row.Values[c+"_bidx"]; ok {
			cols, args = append(cols, c+"_bidx"), append(args, nullable(v))
		}
	}
	var err error
	if exists {
		sets := make([]string, len(cols))
		for i, c := range cols {
			sets[i] = c + " = ?"
		}
		_, err = r.DB.TxExec(ctx, tx, "UPDATE "+e.Table+" SET "+strings.Join(sets, ", ")+" WHERE id = ?", append(args, row.ID)...)
	} else {
		cols = append(cols, "id")
		args = append(args, row.ID)
		ph := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
		_, err = r.DB.TxExec(ctx, tx, "INSERT INTO "+e.Table+" ("+strings.Join(cols, ", ")+") VALUES ("+ph+")", args...)
	}
	if err != nil {
		return fmt.Errorf("sync: apply %s %s: %w", e.Name, row.ID, err)
	}
	return nil
}

// Reject records a refused message for IT and the status page.
func (r *Replica) Reject(ctx context.Context, hospital, reason string, payload []byte) error {
	if len(payload) > 1<<20 {
		payload = payload[:1<<20]
	}
	return r.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sync_rejects (id, at, hospital, reason, payload) VALUES (?, ?, ?, ?, ?)`,
			ihos.NewID(), ihos.FormatTime(time.Now()), ihos.Truncate(hospital, 36), ihos.Truncate(reason, 500), string(payload))
		return err
	})
}
