package insurance

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"ihos"
	"ihos/internal/sqldb"
)

// CallLog keeps every call to the platform in the table insurance_calls
// (migration 00016), bodies masked: set Client.Observe = log.Observe. It is
// what a settlement whose answer was lost is looked up by (ByMsgID), and
// what the insurance office asks for in a dispute.
type CallLog struct {
	DB     *sqldb.DB
	Logger *slog.Logger // failures to write; nil: slog.Default()
}

// maxLoggedBody bounds one stored body; a 2204 of many lines is cut, not lost.
const maxLoggedBody = 256 << 10

// Observe writes ex. It runs in the caller's request but outlives its
// context: a call that timed out is exactly the one whose record matters.
// A failed write is logged and does not fail the call.
func (l *CallLog) Observe(ctx context.Context, ex Exchange) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	answered := 0
	if ex.Answered {
		answered = 1
	}
	err := l.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := l.DB.TxExec(ctx, tx, `INSERT INTO insurance_calls (id, at, infno, msgid, inf_refmsgid, infcode, answered, error, elapsed_ms, request, response)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ihos.NewID(), ihos.FormatTime(ex.At), ihos.Truncate(ex.Infno, 4), ihos.Truncate(ex.MsgID, 30), ihos.Truncate(ex.InfRefMsgID, 30),
			ex.Infcode, answered, ihos.Truncate(ex.Err, 500), ex.Elapsed.Milliseconds(),
			cutBytes(ex.Request, maxLoggedBody), cutBytes(ex.Response, maxLoggedBody))
		return err
	})
	if err != nil {
		log := l.Logger
		if log == nil {
			log = slog.Default()
		}
		log.ErrorContext(ctx, "insurance: write call log", "infno", ex.Infno, "msgid", ex.MsgID, "err", err)
	}
}

// ByMsgID returns the calls sent under msgid, oldest first.
func (l *CallLog) ByMsgID(ctx context.Context, msgid string) ([]Exchange, error) {
	rows, err := l.DB.QueryContext(ctx, `SELECT at, infno, msgid, inf_refmsgid, infcode, answered, error, elapsed_ms, request, response
		FROM insurance_calls WHERE msgid = ? ORDER BY at, id`, msgid)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	var out []Exchange
	for rows.Next() {
		var ex Exchange
		var at string
		var answered int
		var ms int64
		if err := rows.Scan(&at, &ex.Infno, &ex.MsgID, &ex.InfRefMsgID, &ex.Infcode, &answered, &ex.Err, &ms, &ex.Request, &ex.Response); err != nil {
			return nil, ihos.Internal(err)
		}
		ex.At, _ = ihos.ParseTime(at)
		ex.Answered, ex.Elapsed = answered == 1, time.Duration(ms)*time.Millisecond
		out = append(out, ex)
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	return out, nil
}

// cutBytes cuts s to at most n bytes on a rune boundary.
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
