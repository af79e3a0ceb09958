package sync

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/internal/sqldb"
)

// Columns of a Shared row that are bookkeeping, not content: they are never
// stamped and never conflict.
var unstamped = []string{"id", "version", "hospital_id", "created_at", "updated_at"}

// stampFields records this write's clock for the fields ref changed and
// returns their stamps, each with the stamp it replaced.
func (r *Replica) stampFields(ctx context.Context, tx *sql.Tx, e *Entity, ref Ref, now HLC) (map[string]FieldStamp, error) {
	fields := ref.Fields
	if fields == nil {
		fields = e.Columns()
	}
	stamps := map[string]FieldStamp{}
	for _, f := range fields {
		if slices.Contains(unstamped, f) || !slices.Contains(e.Columns(), f) {
			continue
		}
		prev, err := r.fieldStamp(ctx, tx, e, ref.ID, f)
		if err != nil {
			return nil, err
		}
		fs := FieldStamp{Stamp: Stamp{HLC: now, Origin: r.Origin}, Prev: prev}
		if err := r.setFieldStamp(ctx, tx, e, ref.ID, f, fs.Stamp); err != nil {
			return nil, err
		}
		stamps[f] = fs
	}
	return stamps, nil
}

// currentStamps returns the stored stamps of a row's fields, each as its own
// predecessor, for a snapshot: a side that already has the value sees no change.
func (r *Replica) currentStamps(ctx context.Context, tx *sql.Tx, e *Entity, id string) (map[string]FieldStamp, error) {
	rows, err := tx.QueryContext(ctx, `SELECT field, hlc, origin FROM sync_field_stamps WHERE entity = ? AND record_id = ?`, e.Name, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]FieldStamp{}
	for rows.Next() {
		var f, h, origin string
		if err := rows.Scan(&f, &h, &origin); err != nil {
			return nil, err
		}
		hlc, err := ParseHLC(h)
		if err != nil {
			return nil, err
		}
		st := Stamp{HLC: hlc, Origin: origin}
		out[f] = FieldStamp{Stamp: st, Prev: st}
	}
	return out, rows.Err()
}

func (r *Replica) fieldStamp(ctx context.Context, tx *sql.Tx, e *Entity, id, field string) (Stamp, error) {
	var h, origin string
	err := tx.QueryRowContext(ctx, `SELECT hlc, origin FROM sync_field_stamps WHERE entity = ? AND record_id = ? AND field = ?`+r.DB.ForUpdate(),
		e.Name, id, field).Scan(&h, &origin)
	if errors.Is(err, sql.ErrNoRows) {
		return Stamp{}, nil
	}
	if err != nil {
		return Stamp{}, err
	}
	hlc, err := ParseHLC(h)
	return Stamp{HLC: hlc, Origin: origin}, err
}

func (r *Replica) setFieldStamp(ctx context.Context, tx *sql.Tx, e *Entity, id, field string, s Stamp) error {
	res, err := tx.ExecContext(ctx, `UPDATE sync_field_stamps SET hlc = ?, origin = ? WHERE entity = ? AND record_id = ? AND field = ?`,
		s.HLC.String(), s.Origin, e.Name, id, field)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	// MySQL reports 0 affected rows when the values are unchanged; the insert
	// then hits the primary key, which means the stamp is already right.
	_, err = tx.ExecContext(ctx, `INSERT INTO sync_field_stamps (entity, record_id, field, hlc, origin) VALUES (?, ?, ?, ?, ?)`,
		e.Name, id, field, s.HLC.String(), s.Origin)
	if err != nil && sqldb.IsUniqueViolation(err) {
		return nil
	}
	return err
}

// mergeRow applies a change of a Shared entity field by field: a field that
// follows the local value replaces it; a field written concurrently on both
// sides goes to the later stamp (origin breaking ties), so both sides end with
// the same value, and the losing value is written to the conflict log.
func (r *Replica) mergeRow(ctx context.Context, tx *sql.Tx, e *Entity, hospital string, row RowChange) error {
	cur, err := readRowForUpdate(ctx, tx, r, e, row.ID)
	if err != nil {
		return err
	}
	if cur == nil {
		// New here: insert as sent, with its stamps.
		if err := r.upsert(ctx, tx, e, hospital, row, false); err != nil {
			return err
		}
		for f, fs := range row.Stamps {
			if err := r.setFieldStamp(ctx, tx, e, row.ID, f, fs.Stamp); err != nil {
				return err
			}
		}
		return nil
	}
	if owner := deref(cur["hospital_id"]); owner != "" && owner != hospital {
		return reject("%s %s belongs to hospital %q, not %q", e.Name, row.ID, owner, hospital)
	}
	var sets []string
	var args []any
	for f, fs := range row.Stamps {
		if !slices.Contains(e.Columns(), f) || slices.Contains(unstamped, f) {
			continue
		}
		local, err := r.fieldStamp(ctx, tx, e, row.ID, f)
		if err != nil {
			return err
		}
		incoming := row.Values[f]
		take := local == fs.Prev || local == (Stamp{}) || fs.Stamp.After(local)
		concurrent := local != fs.Prev && local != (Stamp{}) && local != fs.Stamp
		if concurrent && !equalValue(cur[f], incoming) {
			win, lose := Stamp(fs.Stamp), local
			winV, loseV := incoming, cur[f]
			if !take {
				win, lose, winV, loseV = local, fs.Stamp, cur[f], incoming
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO sync_conflicts (id, at, hospital, entity, record_id, field, winner_value, winner_hlc, winner_origin, loser_value, loser_hlc, loser_origin)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, ihos.NewID(), ihos.FormatTime(time.Now()), hospital, e.Name, row.ID, f,
				nullable(winV), win.HLC.String(), win.Origin, nullable(loseV), lose.HLC.String(), lose.Origin); err != nil {
				return err
			}
		}
		if take && local != fs.Stamp {
			sets = append(sets, f+" = ?")
			args = append(args, nullable(incoming))
			if err := r.setFieldStamp(ctx, tx, e, row.ID, f, fs.Stamp); err != nil {
				return err
			}
		}
	}
	localVersion, _ := strconv.ParseInt(deref(cur["version"]), 10, 64)
	if row.Version > localVersion {
		sets = append(sets, "version = ?")
		args = append(args, row.Version)
	}
	if len(sets) == 0 {
		return nil
	}
	_, err = tx.ExecContext(ctx, "UPDATE "+e.Table+" SET "+strings.Join(sets, ", ")+" WHERE id = ?", append(args, row.ID)...)
	return err
}

func nullable(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func equalValue(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func readRowForUpdate(ctx context.Context, tx *sql.Tx, r *Replica, e *Entity, id string) (map[string]*string, error) {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+e.Table+" WHERE id = ?"+r.DB.ForUpdate(), id).Scan(&n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	return r.readRow(ctx, tx, e, id)
}
