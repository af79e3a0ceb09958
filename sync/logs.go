package sync

import (
	"context"
	"database/sql"
	"time"

	"ihos"
)

// Conflict is a value lost to a concurrent edit on the other side.
type Conflict struct {
	At           time.Time `json:"at"`
	Entity       string    `json:"entity"`
	RecordID     string    `json:"record_id"`
	Field        string    `json:"field"`
	Winner       string    `json:"winner"`
	WinnerOrigin string    `json:"winner_origin"`
	Loser        string    `json:"loser"`
	LoserOrigin  string    `json:"loser_origin"`
}

// Conflicts returns the newest conflicts first.
func (r *Replica) Conflicts(ctx context.Context, limit int) ([]Conflict, error) {
	rows, err := r.DB.QueryContext(ctx, `SELECT at, entity, record_id, field, winner_value, winner_origin, loser_value, loser_origin
		FROM sync_conflicts ORDER BY at DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Conflict
	for rows.Next() {
		var c Conflict
		var at string
		var win, lose sql.NullString
		if err := rows.Scan(&at, &c.Entity, &c.RecordID, &c.Field, &win, &c.WinnerOrigin, &lose, &c.LoserOrigin); err != nil {
			return nil, err
		}
		c.At, _ = ihos.ParseTime(at)
		c.Winner, c.Loser = win.String, lose.String
		out = append(out, c)
	}
	return out, rows.Err()
}

// Rejected is a message apply refused.
type Rejected struct {
	At       time.Time `json:"at"`
	Hospital string    `json:"hospital"`
	Reason   string    `json:"reason"`
}

// Rejects returns the newest refused messages first.
func (r *Replica) Rejects(ctx context.Context, limit int) ([]Rejected, error) {
	rows, err := r.DB.QueryContext(ctx, `SELECT at, hospital, reason FROM sync_rejects ORDER BY at DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Rejected
	for rows.Next() {
		var x Rejected
		var at string
		if err := rows.Scan(&at, &x.Hospital, &x.Reason); err != nil {
			return nil, err
		}
		x.At, _ = ihos.ParseTime(at)
		out = append(out, x)
	}
	return out, rows.Err()
}
