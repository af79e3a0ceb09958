package sync

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"ihos"
)

// Pending is an outbox message waiting for its acknowledgement.
type Pending struct {
	Seq      int64
	ChangeID string
	Hospital string
	Payload  []byte
	Created  time.Time
}

// Pending returns up to limit outbox messages in commit order.
func (r *Replica) Pending(ctx context.Context, limit int) ([]Pending, error) {
	return r.PendingAfter(ctx, 0, limit)
}

// PendingAfter returns up to limit outbox messages after seq, in commit order.
// It promotes staged captures first.
func (r *Replica) PendingAfter(ctx context.Context, seq int64, limit int) ([]Pending, error) {
	if err := r.promote(ctx); err != nil {
		return nil, err
	}
	rows, err := r.DB.QueryContext(ctx, `SELECT seq, change_id, hospital, payload, created_at FROM sync_outbox WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Pending
	for rows.Next() {
		var p Pending
		var payload, created string
		if err := rows.Scan(&p.Seq, &p.ChangeID, &p.Hospital, &payload, &created); err != nil {
			return nil, err
		}
		p.Payload = []byte(payload)
		p.Created, _ = ihos.ParseTime(created)
		out = append(out, p)
	}
	return out, rows.Err()
}

// SentThrough removes every outbox message up to and including seq.
func (r *Replica) SentThrough(ctx context.Context, seq int64) error {
	return r.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sync_outbox WHERE seq <= ?`, seq)
		return err
	})
}

// Backlog returns how many messages wait to be sent, staged or in the outbox,
// and when the oldest was committed (zero when empty).
func (r *Replica) Backlog(ctx context.Context) (int, time.Time, error) {
	return r.BacklogAfter(ctx, 0)
}

// BacklogAfter is Backlog for the messages after seq (the ones acknowledged but
// not yet deleted do not count; staged ones, not numbered yet, all do).
func (r *Replica) BacklogAfter(ctx context.Context, seq int64) (int, time.Time, error) {
	var n, staged int
	var oldest, oldestStaged sql.NullString
	err := r.DB.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM sync_outbox WHERE seq > ?`, seq).Scan(&n, &oldest)
	if err == nil {
		err = r.DB.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM sync_capture`).Scan(&staged, &oldestStaged)
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	var t time.Time
	for _, s := range []sql.NullString{oldest, oldestStaged} {
		if at, err := ihos.ParseTime(s.String); s.Valid && err == nil && (t.IsZero() || at.Before(t)) {
			t = at
		}
	}
	return n + staged, t, nil
}

// Rehome points every pending outbox message at hospital: an appliance that
// worked standalone, or was enrolled under a new id, sends what it captured
// before as its own. (An appliance serves one hospital; the cloud never calls
// this.)
func (r *Replica) Rehome(ctx context.Context, hospital string) error {
	if r.Side != Appliance {
		return nil
	}
	if err := r.promote(ctx); err != nil {
		return err
	}
	var n int
	if err := r.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM sync_outbox WHERE hospital <> ?`, hospital).Scan(&n); err != nil || n == 0 {
		return err
	}
	return r.DB.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT seq, payload FROM sync_outbox WHERE hospital <> ?`, hospital)
		if err != nil {
			return err
		}
		type fix struct {
			seq     int64
			payload []byte
		}
		var fixes []fix
		for rows.Next() {
			var seq int64
			var payload string
			if err := rows.Scan(&seq, &payload); err != nil {
				rows.Close()
				return err
			}
			var env Envelope
			if err := json.Unmarshal([]byte(payload), &env); err != nil {
				rows.Close()
				return err
			}
			env.Hospital = hospital
			b, _ := json.Marshal(env)
			fixes = append(fixes, fix{seq, b})
		}
		rows.Close()
		for _, f := range fixes {
			if _, err := tx.ExecContext(ctx, `UPDATE sync_outbox SET hospital = ?, payload = ? WHERE seq = ?`, hospital, string(f.payload), f.seq); err != nil {
				return err
			}
		}
		return nil
	})
}

// promoteBatch bounds the staged captures one promotion moves, so that its
// transaction stays short.
const promoteBatch = 1000

// errPromoteRaced is a promotion that found a staged capture already gone:
// another process sharing the database promoted it first.
var errPromoteRaced = errors.New("sync: staged capture promoted by another relay")

// promote moves staged captures (sync_capture) into the outbox, in one short
// transaction of its own: ordered by (hlc, change_id), numbered from
// sync_state's outbox_seq, each payload's Seq set to its number, the staged
// rows deleted, and sync_state's clock floor raised to the newest moved.
//
// Capture stages instead of numbering because the sequence and the clock floor
// are two rows every replicated write would lock until its commit: on MariaDB
// they serialised every payment, booking and message of the cloud. Only relays
// (PendingAfter) and Rehome at start take them now, briefly.
//
// Why a row's changes still leave in order: two transactions that write the
// same row are serialised by the database (the second waits on the row lock
// until the first commits), and each captures after its write, so the second
// ticks its clock after the first did and gets the greater HLC, and its staged
// capture commits after the first one's. A promotion reads a committed state:
// whenever it sees the second it already sees the first, and ordering by HLC
// numbers the first before it (a batch takes the smallest HLCs, so the first is
// in the same batch or an earlier one). Changes of different rows may be
// numbered in another order than they committed; nothing depends on that. The
// HLC argument holds within one process; processes sharing a database tick
// separate clocks, and there the receiver's version check (owned entities) and
// per-field stamps (shared ones) still never move a row backwards.
//
// Several processes may share one MariaDB: promotions serialise on outbox_seq
// (SELECT … FOR UPDATE), and each deletes its staged rows by change id and
// checks that it deleted all of them, so two relays can never both move one
// capture; the loser rolls back and tries again on what is left.
func (r *Replica) promote(ctx context.Context) error {
	// The common case on an idle relay round is nothing staged: find that out
	// without a write transaction (on SQLite, one fsync each).
	var id string
	switch err := r.DB.QueryRowContext(ctx, `SELECT change_id FROM sync_capture LIMIT 1`).Scan(&id); {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("sync: staged captures: %w", err)
	}
	for attempt := 0; ; attempt++ {
		err := r.DB.Tx(ctx, r.promoteTx(ctx))
		if !errors.Is(err, errPromoteRaced) || attempt >= 3 {
			return err
		}
	}
}

// staged is a capture waiting for promotion.
type staged struct {
	changeID, hlc, hospital, created string
	payload                          []byte
}

func (r *Replica) promoteTx(ctx context.Context) func(tx *sql.Tx) error {
	return func(tx *sql.Tx) error {
		var seqText, floor string
		if err := r.DB.TxQueryRow(ctx, tx, `SELECT value FROM sync_state WHERE name = 'outbox_seq'`+r.DB.ForUpdate()).Scan(&seqText); err != nil {
			return fmt.Errorf("sync: outbox seq: %w", err)
		}
		seq, err := strconv.ParseInt(seqText, 10, 64)
		if err != nil {
			return fmt.Errorf("sync: outbox seq %q: %w", seqText, err)
		}
		if err := r.DB.TxQueryRow(ctx, tx, `SELECT value FROM sync_state WHERE name = 'hlc'`).Scan(&floor); err != nil {
			return fmt.Errorf("sync: read clock: %w", err)
		}
		rows, err := r.DB.TxQuery(ctx, tx, `SELECT change_id, hlc, hospital, payload, created_at FROM sync_capture ORDER BY hlc, change_id LIMIT ?`, promoteBatch)
		if err != nil {
			return err
		}
		var batch []staged
		for rows.Next() {
			var s staged
			var payload string
			if err := rows.Scan(&s.changeID, &s.hlc, &s.hospital, &payload, &s.created); err != nil {
				rows.Close()
				return err
			}
			s.payload = []byte(payload)
			batch = append(batch, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		// Delete first, in chunks by change id: a capture another relay
		// promoted since we read is missing here, and the whole move rolls back.
		const chunk = 200
		for i := 0; i < len(batch); i += chunk {
			part := batch[i:min(i+chunk, len(batch))]
			ids := make([]any, len(part))
			for j, s := range part {
				ids[j] = s.changeID
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM sync_capture WHERE change_id IN (`+placeholders(len(part))+`)`, ids...)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n != int64(len(part)) {
				return errPromoteRaced
			}
		}
		// Inserted a few at a time, at most about a megabyte per statement
		// (MariaDB's max_allowed_packet).
		var args []any
		var size int
		var follow []*Envelope // for r.Follow
		insert := func() error {
			if len(args) == 0 {
				return nil
			}
			values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?), ", len(args)/5), ", ")
			_, err := tx.ExecContext(ctx, `INSERT INTO sync_outbox (seq, change_id, hospital, payload, created_at) VALUES `+values, args...)
			args, size = args[:0], 0
			return err
		}
		for _, s := range batch {
			seq++
			payload, err := withSeq(s.payload, seq)
			if err != nil {
				return fmt.Errorf("sync: staged capture %s: %w", s.changeID, err)
			}
			if len(args) > 0 && (len(args)/5 >= chunk || size+len(payload) > 1<<20) {
				if err := insert(); err != nil {
					return err
				}
			}
			args = append(args, seq, s.changeID, s.hospital, string(payload), s.created)
			size += len(payload)
			if r.Follow != nil {
				var env Envelope
				if err := json.Unmarshal(payload, &env); err != nil {
					return fmt.Errorf("sync: staged capture %s: %w", s.changeID, err)
				}
				follow = append(follow, &env)
			}
			floor = max(floor, s.hlc) // fixed-width hex: text order is clock order
		}
		if err := insert(); err != nil {
			return err
		}
		if len(follow) > 0 {
			if err := r.Follow(ctx, tx, follow); err != nil {
				return fmt.Errorf("sync: follower: %w", err)
			}
		}
		if _, err := r.DB.TxExec(ctx, tx, `UPDATE sync_state SET value = ? WHERE name = 'outbox_seq'`, strconv.FormatInt(seq, 10)); err != nil {
			return err
		}
		_, err = r.DB.TxExec(ctx, tx, `UPDATE sync_state SET value = ? WHERE name = 'hlc'`, floor)
		return err
	}
}

// seqZero is how a staged payload's Seq reads: capture marshals the envelope
// with Seq 0, and the fields before it are strings, whose quotes JSON escapes,
// so its first occurrence is the Seq field.
var seqZero = []byte(`,"seq":0,`)

// withSeq returns the staged payload with its Seq set to seq: patched in place
// when it has the form capture writes, re-encoded otherwise.
func withSeq(payload []byte, seq int64) ([]byte, error) {
	if i := bytes.Index(payload, seqZero); i >= 0 {
		out := make([]byte, 0, len(payload)+20)
		out = append(out, payload[:i]...)
		out = append(out, `,"seq":`...)
		out = strconv.AppendInt(out, seq, 10)
		out = append(out, ',')
		return append(out, payload[i+len(seqZero):]...), nil
	}
	var env Envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return nil, err
	}
	env.Seq = seq
	return json.Marshal(env)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
