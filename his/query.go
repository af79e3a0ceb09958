package his

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"ihos"
	"ihos/internal/sqldb"
)

// OrderByID returns an order line with its result, when there is one.
func (s *Service) OrderByID(ctx context.Context, id string) (map[string]any, error) {
	var o Order
	var statusText, created string
	err := s.DB.QueryRowContext(ctx, `SELECT id, kind, patient_his_id, code, name, status, filler_order_no, message_id, status_text, created_at FROM his_orders WHERE id = ?`, id).
		Scan(&o.ID, &o.Kind, &o.PatientHISID, &o.Code, &o.Name, &o.Status, &o.FillerOrderNo, &o.MessageID, &statusText, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ihos.Errorf(ihos.ENotFound, "医嘱不存在")
	}
	if err != nil {
		return nil, ihos.Internal(err)
	}
	out := map[string]any{"order": o, "status_text": statusText, "created_at": created}
	var status, reported, obs string
	err = s.DB.QueryRowContext(ctx, `SELECT result_status, reported_at, observations FROM his_results WHERE order_id = ?`, id).Scan(&status, &reported, &obs)
	if err == nil {
		out["result"] = map[string]any{"result_status": status, "reported_at": reported, "observations": rawJSON(obs)}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return nil, ihos.Internal(err)
	}
	return out, nil
}

type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

// OutboxItem is a queued message as the console lists it.
type OutboxItem struct {
	ID        string    `json:"id"`
	Seq       int64     `json:"seq"`
	Lane      string    `json:"patient"`
	Event     string    `json:"event"`
	Status    string    `json:"status"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error"`
	AckCode   string    `json:"ack_code"`
	AckText   string    `json:"ack_text"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	SentAt    time.Time `json:"sent_at,omitzero"`
}

// List returns queued messages in queue order; status "" lists those that
// need attention (pending and failed).
func (q *Queue) List(ctx context.Context, status string, limit int) ([]OutboxItem, error) {
	where, args := `status IN ('pending', 'failed')`, []any{}
	if status != "" {
		where, args = `status = ?`, append(args, status)
	}
	rows, err := q.DB.QueryContext(ctx, `SELECT id, seq, lane, event, status, attempts, last_error, ack_code, ack_text, created_by, created_at, COALESCE(sent_at, '')
		FROM his_outbox WHERE `+where+` ORDER BY seq DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		var it OutboxItem
		var created, sent string
		if err := rows.Scan(&it.ID, &it.Seq, &it.Lane, &it.Event, &it.Status, &it.Attempts, &it.LastError, &it.AckCode, &it.AckText, &it.CreatedBy, &created, &sent); err != nil {
			return nil, ihos.Internal(err)
		}
		it.CreatedAt, _ = ihos.ParseTime(created)
		it.SentAt, _ = ihos.ParseTime(sent)
		out = append(out, it)
	}
	return out, rows.Err()
}

// LogQuery filters the message log.
type LogQuery struct {
	Text  string // in the control id or the message text
	Type  string // e.g. ORU^R01
	Lane  string // the patient's HIS id
	Limit int
}

// LogEntry is one logged exchange.
type LogEntry struct {
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	Direction string    `json:"direction"`
	Type      string    `json:"type"`
	ControlID string    `json:"control_id"`
	Patient   string    `json:"patient"`
	AckCode   string    `json:"ack_code"`
	AckText   string    `json:"ack_text"`
	Error     string    `json:"error"`
	ElapsedMS int64     `json:"elapsed_ms"`
	Request   string    `json:"request"`
	Response  string    `json:"response"`
}

// SearchLog lists logged exchanges, newest first.
func SearchLog(ctx context.Context, db *sqldb.DB, q LogQuery) ([]LogEntry, error) {
	where, args := "1 = 1", []any{}
	if q.Type != "" {
		where += " AND type = ?"
		args = append(args, q.Type)
	}
	if q.Lane != "" {
		where += " AND lane = ?"
		args = append(args, q.Lane)
	}
	if q.Text != "" {
		where += " AND (control_id = ? OR request LIKE ?" + sqldb.Escape + ")"
		args = append(args, q.Text, sqldb.Contains(q.Text))
	}
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 100
	}
	rows, err := db.QueryContext(ctx, `SELECT id, at, direction, type, control_id, lane, ack_code, ack_text, error, elapsed_ms, request, response
		FROM his_messages WHERE `+where+` ORDER BY at DESC LIMIT ?`, append(args, q.Limit)...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	var out []LogEntry
	for rows.Next() {
		var e LogEntry
		var at string
		if err := rows.Scan(&e.ID, &at, &e.Direction, &e.Type, &e.ControlID, &e.Patient, &e.AckCode, &e.AckText, &e.Error, &e.ElapsedMS, &e.Request, &e.Response); err != nil {
			return nil, ihos.Internal(err)
		}
		e.At, _ = ihos.ParseTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
