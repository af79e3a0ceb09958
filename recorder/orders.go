package recorder

import (
	"context"
	"database/sql"
	"time"

	"ihos"
	"ihos/internal/sqldb"
)

// Orders finds the home-nursing order a nurse was serving at a time, so
// footage can be attached to it. The home-nursing journey implements it (or
// fills nursing_visits for NursingVisits).
type Orders interface {
	OrderAt(ctx context.Context, nurseID string, at time.Time) (orderID string, ok bool, err error)
}

// VisitSlack is how far before a visit's recorded start or after its end a
// clip still belongs to it: nurses switch the recorder on at the door, before
// the visit is marked started in the app, and off after marking it done.
const VisitSlack = 15 * time.Minute

// NursingVisits implements Orders over the nursing_visits table.
type NursingVisits struct{ DB *sqldb.DB }

// OrderAt returns the order of the nurse's visit that covers at (with
// VisitSlack on both sides; a visit without an end is open for 12 hours).
// When visits overlap, the one that started last wins.
func (v NursingVisits) OrderAt(ctx context.Context, nurseID string, at time.Time) (string, bool, error) {
	if nurseID == "" {
		return "", false, nil
	}
	// Visits that started before at+slack; the latest first.
	rows, err := v.DB.QueryContext(ctx, `SELECT order_id, started_at, ended_at FROM nursing_visits
		WHERE nurse_id = ? AND started_at <= ? AND started_at >= ? ORDER BY started_at DESC LIMIT 20`,
		nurseID, ihos.FormatTime(at.Add(VisitSlack)), ihos.FormatTime(at.Add(-48*time.Hour)))
	if err != nil {
		return "", false, err
	}
	defer rows.Close()
	for rows.Next() {
		var order, started string
		var ended sql.NullString
		if err := rows.Scan(&order, &started, &ended); err != nil {
			return "", false, err
		}
		st, _ := ihos.ParseTime(started)
		end := st.Add(12 * time.Hour)
		if ended.Valid {
			if e, err := ihos.ParseTime(ended.String); err == nil {
				end = e
			}
		}
		if !at.After(end.Add(VisitSlack)) {
			return order, true, nil
		}
	}
	return "", false, rows.Err()
}

// RecordVisit adds a visit to nursing_visits; the home-nursing journey calls
// it when a nurse starts serving an order (ended zero while it goes on).
func (v NursingVisits) RecordVisit(ctx context.Context, orderID, nurseID string, started, ended time.Time) (string, error) {
	if orderID == "" || nurseID == "" || started.IsZero() {
		return "", ihos.Errorf(ihos.EInvalid, "上门服务记录缺少订单、护士或开始时间")
	}
	var end any
	if !ended.IsZero() {
		if ended.Before(started) {
			return "", ihos.Errorf(ihos.EInvalid, "上门服务的结束时间早于开始时间")
		}
		end = ihos.FormatTime(ended)
	}
	id := ihos.NewID()
	err := v.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO nursing_visits (id, order_id, nurse_id, started_at, ended_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			id, orderID, nurseID, ihos.FormatTime(started), end, ihos.FormatTime(time.Now()))
		return err
	})
	return id, err
}

// EndVisit sets the end of a visit.
func (v NursingVisits) EndVisit(ctx context.Context, id string, ended time.Time) error {
	return v.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE nursing_visits SET ended_at = ? WHERE id = ?`, ihos.FormatTime(ended), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ihos.Errorf(ihos.ENotFound, "上门服务记录不存在")
		}
		return nil
	})
}
