// Package audit keeps the audit trail the regulations ask for: who did what, when,
// from where, with the record before and after. Entries are appended in the same
// transaction as the change they describe, so a change without its entry (or the
// reverse) cannot be committed.
//
// The log is a hash chain with SM3: each entry's hash covers its own fields and
// the previous entry's hash. Editing or deleting any entry breaks every later
// hash, which Verify detects. The chain tip lives in audit_head, whose row is
// locked by each append so concurrent writers cannot fork the chain.
package audit

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"ihos"
	"ihos/internal/sqldb"
)

// Actions that are not changes of a record.
const (
	ActionLogin       = "login"
	ActionLoginFailed = "login_failed"
	ActionLogout      = "logout"
	ActionDenied      = "denied"
)

// Entry is one audit record.
type Entry struct {
	ID        string          `json:"id"`
	Seq       int64           `json:"seq"`
	At        time.Time       `json:"at"`
	ActorID   string          `json:"actor_id"`
	ActorName string          `json:"actor_name"`
	Action    string          `json:"action"`
	Resource  string          `json:"resource"`
	RecordID  string          `json:"record_id"`
	Summary   string          `json:"summary"`
	Before    json.RawMessage `json:"before,omitempty"`
	After     json.RawMessage `json:"after,omitempty"`
	IP        string          `json:"ip"`
	RequestID string          `json:"request_id"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
}

// Append adds e to the log inside tx. The actor and request fields are filled
// from ctx when e leaves them empty; before and after are marshalled to JSON.
func Append(ctx context.Context, db *sqldb.DB, tx *sql.Tx, e Entry) error {
	if a, ok := ihos.ActorFrom(ctx); ok {
		if e.ActorID == "" {
			e.ActorID, e.ActorName = a.UserID, a.Username
		}
		if e.IP == "" {
			e.IP = a.IP
		}
		if e.RequestID == "" {
			e.RequestID = a.RequestID
		}
	}
	if e.ActorID == "" && e.ActorName == "" {
		e.ActorID, e.ActorName = ihos.System.UserID, ihos.System.Username
	}
	var seq int64
	var prev string
	if err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`+db.ForUpdate()).Scan(&seq, &prev); err != nil {
		return fmt.Errorf("audit: read head: %w", err)
	}
	e.ID = ihos.NewID()
	e.Seq = seq + 1
	e.At = time.Now().UTC().Truncate(time.Microsecond)
	e.PrevHash = prev
	e.Summary = ihos.Truncate(e.Summary, 500)
	e.Hash = hash(e)
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (id, seq, at, actor_id, actor_name, action, resource, record_id, summary, before_json, after_json, ip, request_id, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.Seq, ihos.FormatTime(e.At), e.ActorID, e.ActorName, e.Action, e.Resource, e.RecordID, e.Summary,
		nullJSON(e.Before), nullJSON(e.After), e.IP, e.RequestID, e.PrevHash, e.Hash)
	if err != nil {
		return fmt.Errorf("audit: insert: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, e.Seq, e.Hash); err != nil {
		return fmt.Errorf("audit: move head: %w", err)
	}
	return nil
}

// Record appends e in a transaction of its own, for events that change nothing
// else: logins, failed logins, denied actions.
func Record(ctx context.Context, db *sqldb.DB, e Entry) error {
	return db.Tx(ctx, func(tx *sql.Tx) error { return Append(ctx, db, tx, e) })
}

// hash is SM3 over the previous hash and every field, each length-prefixed so no
// two different entries serialise the same.
func hash(e Entry) string {
	h := sm3.New()
	for _, f := range []string{e.PrevHash, strconv.FormatInt(e.Seq, 10), e.ID, ihos.FormatTime(e.At), e.ActorID, e.ActorName,
		e.Action, e.Resource, e.RecordID, e.Summary, string(e.Before), string(e.After), e.IP, e.RequestID} {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func nullJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// Filter selects entries for List.
type Filter struct {
	Resource string
	RecordID string
	ActorID  string
	Action   string
	Q        string // matched against summary and actor name
	Page     int    // 1-based
	PageSize int
}

// List returns entries newest first and the total count.
func List(ctx context.Context, db *sqldb.DB, f Filter) ([]Entry, int, error) {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if f.Resource != "" {
		add("resource = ?", f.Resource)
	}
	if f.RecordID != "" {
		add("record_id = ?", f.RecordID)
	}
	if f.ActorID != "" {
		add("actor_id = ?", f.ActorID)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Q != "" {
		where = append(where, "(summary LIKE ?"+sqldb.Escape+" OR actor_name LIKE ?"+sqldb.Escape+")")
		like := sqldb.Contains(f.Q)
		args = append(args, like, like)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log`+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("audit: count: %w", err)
	}
	if f.PageSize <= 0 || f.PageSize > 200 {
		f.PageSize = 20
	}
	if f.Page <= 0 {
		f.Page = 1
	}
	rows, err := db.QueryContext(ctx, `SELECT `+columns+` FROM audit_log`+cond+` ORDER BY seq DESC LIMIT ? OFFSET ?`,
		append(args, f.PageSize, (f.Page-1)*f.PageSize)...)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: list: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scan(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, e)
	}
	return out, total, rows.Err()
}

const columns = `id, seq, at, actor_id, actor_name, action, resource, record_id, summary, before_json, after_json, ip, request_id, prev_hash, hash`

func scan(rows *sql.Rows) (Entry, error) {
	var e Entry
	var at string
	var before, after sql.NullString
	if err := rows.Scan(&e.ID, &e.Seq, &at, &e.ActorID, &e.ActorName, &e.Action, &e.Resource, &e.RecordID, &e.Summary,
		&before, &after, &e.IP, &e.RequestID, &e.PrevHash, &e.Hash); err != nil {
		return e, fmt.Errorf("audit: scan: %w", err)
	}
	e.At, _ = ihos.ParseTime(at)
	if before.Valid {
		e.Before = json.RawMessage(before.String)
	}
	if after.Valid {
		e.After = json.RawMessage(after.String)
	}
	return e, nil
}

// Verify walks the whole chain in order and returns the seq of the first entry
// whose hash does not match, or 0 when the chain is intact. It also checks the
// head points at the last entry, so truncating the tail is detected.
func Verify(ctx context.Context, db *sqldb.DB) (badSeq int64, err error) {
	rows, err := db.QueryContext(ctx, `SELECT `+columns+` FROM audit_log ORDER BY seq`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	prev := strings.Repeat("0", 64)
	var last int64
	for rows.Next() {
		e, err := scan(rows)
		if err != nil {
			return 0, err
		}
		if e.Seq != last+1 || e.PrevHash != prev || hash(e) != e.Hash {
			return e.Seq, nil
		}
		prev, last = e.Hash, e.Seq
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var headSeq int64
	var headHash string
	if err := db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&headSeq, &headHash); err != nil {
		return 0, err
	}
	if headSeq != last || headHash != prev {
		return last + 1, nil
	}
	return 0, nil
}
