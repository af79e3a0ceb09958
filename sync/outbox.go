package sync

import (
	"context"
	"database/sql"
	"encoding/json"
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
func (r *Replica) PendingAfter(ctx context.Context, seq int64, limit int) ([]Pending, error) {
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

// Backlog returns how many messages wait in the outbox and when the oldest was
// committed (zero when empty).
func (r *Replica) Backlog(ctx context.Context) (int, time.Time, error) {
	return r.BacklogAfter(ctx, 0)
}

// BacklogAfter is Backlog for the messages after seq (the ones acknowledged but
// not yet deleted do not count).
func (r *Replica) BacklogAfter(ctx context.Context, seq int64) (int, time.Time, error) {
	var n int
	var oldest sql.NullString
	err := r.DB.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM sync_outbox WHERE seq > ?`, seq).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, err
	}
	var t time.Time
	if oldest.Valid {
		t, _ = ihos.ParseTime(oldest.String)
	}
	return n, t, nil
}

// Rehome points every pending outbox message at hospital: an appliance that
// worked standalone, or was enrolled under a new id, sends what it captured
// before as its own. (An appliance serves one hospital; the cloud never calls
// this.)
func (r *Replica) Rehome(ctx context.Context, hospital string) error {
	if r.Side != Appliance {
		return nil
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
