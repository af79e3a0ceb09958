package svs

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ihos"
	"ihos/certs"
	"ihos/internal/sqldb"
)

// Operations in the signature log.
const (
	OpSign          = "sign"
	OpVerify        = "verify"
	OpSignMessage   = "sign_message"
	OpVerifyMessage = "verify_message"
	OpTimestamp     = "timestamp"
)

// LogEntry is one row of the signature log.
type LogEntry struct {
	ID           string    `json:"id"`
	At           time.Time `json:"at"`
	App          string    `json:"app"`
	Op           string    `json:"op"`
	KeyName      string    `json:"key_name"`
	DataSM3      string    `json:"data_sm3"`
	DataLen      int64     `json:"data_len"`
	OK           bool      `json:"ok"`
	Reason       string    `json:"reason"`
	SignerSerial string    `json:"signer_serial"`
	Remote       string    `json:"remote"`
}

func dataDigest(data []byte) string {
	h := certs.SM3Sum(data)
	return hex.EncodeToString(h[:])
}

// logWriter is the group commit of the signature log: callers hand an entry
// over and wait; one goroutine inserts every entry waiting at that moment in
// one transaction (one fsync), then releases them all. While it commits, the
// next batch gathers, so the batch size follows the load without a timer.
type logWriter struct {
	db     *sqldb.DB
	max    int
	linger time.Duration
	ch     chan *logReq
	syslog *syslogWriter

	batches, entries, commitNanos atomic.Int64

	stopOnce sync.Once
	stopping chan struct{} // closed by close: no new entries
	done     chan struct{} // closed when run has returned
}

type logReq struct {
	e    LogEntry
	done chan error
}

var reqPool = sync.Pool{New: func() any { return &logReq{done: make(chan error, 1)} }}

// errLogStopped is returned for entries handed over while the service stops.
var errLogStopped = ihos.Errorf(ihos.EUnavailable, "签名日志服务已停止，请稍后重试")

func newLogWriter(db *sqldb.DB, max int, linger time.Duration, sl *syslogWriter) *logWriter {
	if max <= 0 {
		max = 1000
	}
	if linger == 0 {
		linger = 2 * time.Millisecond
	}
	return &logWriter{db: db, max: max, linger: linger, ch: make(chan *logReq, 4*max), syslog: sl,
		stopping: make(chan struct{}), done: make(chan struct{})}
}

// write logs e durably and returns when it is committed.
func (w *logWriter) write(ctx context.Context, e LogEntry) error {
	if w == nil {
		return ihos.Errorf(ihos.EUnavailable, "签名验签服务尚未启动")
	}
	r := reqPool.Get().(*logReq)
	r.e = e
	select {
	case w.ch <- r:
	case <-w.stopping:
		reqPool.Put(r)
		return errLogStopped
	case <-ctx.Done():
		reqPool.Put(r)
		return ihos.Errorf(ihos.EUnavailable, "请求已取消")
	}
	// Once handed over the entry will be committed or failed; wait for the
	// verdict even if the caller gives up, so the request can be reused.
	select {
	case err := <-r.done:
		reqPool.Put(r)
		return err
	case <-w.done:
		select {
		case err := <-r.done:
			reqPool.Put(r)
			return err
		default:
			return errLogStopped // never answered: do not reuse r
		}
	}
}

func (w *logWriter) close() {
	w.stopOnce.Do(func() { close(w.stopping) })
	<-w.done
}

func (w *logWriter) run() {
	defer close(w.done)
	batch := make([]*logReq, 0, w.max)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var first *logReq
		select {
		case first = <-w.ch:
		case <-w.stopping:
			// Write what was handed over before the stop, then leave.
			for {
				batch = batch[:0]
			drain:
				for len(batch) < w.max {
					select {
					case r := <-w.ch:
						batch = append(batch, r)
					default:
						break drain
					}
				}
				if len(batch) == 0 {
					return
				}
				w.commit(batch)
			}
		}
		batch = append(batch[:0], first)
	gather:
		for len(batch) < w.max {
			select {
			case r := <-w.ch:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		// More than one entry was waiting: requests arrive concurrently, and
		// lingering a moment lets many more share the transaction (its WAL
		// write and fsync are most of the cost). A lone caller never waits.
		if len(batch) > 1 && len(batch) < w.max && w.linger > 0 {
			timer.Reset(w.linger)
		linger:
			for len(batch) < w.max {
				select {
				case r := <-w.ch:
					batch = append(batch, r)
				case <-timer.C:
					break linger
				}
			}
			timer.Stop()
		}
		w.commit(batch)
	}
}

// commit inserts the batch in one transaction and answers every request.
func (w *logWriter) commit(batch []*logReq) {
	t0 := time.Now()
	defer func() {
		w.batches.Add(1)
		w.entries.Add(int64(len(batch)))
		w.commitNanos.Add(int64(time.Since(t0)))
	}()
	err := w.db.Tx(context.Background(), func(tx *sql.Tx) error {
		return insertLog(context.Background(), w.db, tx, batch)
	})
	if err != nil {
		slog.Error("svs: write the signature log", "err", err.Error(), "entries", len(batch))
		err = &ihos.Error{Code: ihos.EUnavailable, Message: "签名日志写入失败，本次操作未完成，请稍后重试", Err: err}
	}
	for _, r := range batch {
		if err == nil && w.syslog != nil {
			w.syslog.send(r.e)
		}
		r.done <- err
	}
}

const logColumns = `(id, at, app, op, key_name, data_sm3, data_len, result, reason, signer_serial, remote)`

// Chunk sizes of the multi-row INSERTs: each size has one constant statement
// text, so all of them are prepared once and reused (sqldb's statement cache).
var logChunks = []int{256, 32, 1}

var logInserts = func() map[int]string {
	m := map[int]string{}
	for _, n := range logChunks {
		var b strings.Builder
		b.WriteString("INSERT INTO svs_log " + logColumns + " VALUES ")
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?,?,?,?,?,?)")
		}
		m[n] = b.String()
	}
	return m
}()

func insertLog(ctx context.Context, db *sqldb.DB, tx *sql.Tx, batch []*logReq) error {
	args := make([]any, 0, 11*logChunks[0])
	for len(batch) > 0 {
		n := 1
		for _, c := range logChunks {
			if len(batch) >= c {
				n = c
				break
			}
		}
		args = args[:0]
		for _, r := range batch[:n] {
			e := &r.e
			result := "ok"
			if !e.OK {
				result = "fail"
			}
			args = append(args, e.ID, ihos.FormatTime(e.At), ihos.Truncate(e.App, 100), e.Op, e.KeyName, e.DataSM3, e.DataLen,
				result, ihos.Truncate(e.Reason, 500), e.SignerSerial, ihos.Truncate(e.Remote, 64))
		}
		if _, err := db.TxExec(ctx, tx, logInserts[n], args...); err != nil {
			return fmt.Errorf("svs: insert %d log entries: %w", n, err)
		}
		batch = batch[n:]
	}
	return nil
}

// LogStats describes the work of the signature-log writer since Start.
type LogStats struct {
	Batches    int64         `json:"batches"`     // transactions committed
	Entries    int64         `json:"entries"`     // entries written
	CommitTime time.Duration `json:"commit_time"` // total time spent in those transactions
}

// LogStats returns the group-commit counters (for the status page and the
// benchmark).
func (s *Server) LogStats() LogStats {
	if s.log == nil {
		return LogStats{}
	}
	return LogStats{Batches: s.log.batches.Load(), Entries: s.log.entries.Load(), CommitTime: time.Duration(s.log.commitNanos.Load())}
}

// LogFilter selects log entries for Logs.
type LogFilter struct {
	App      string
	Op       string
	Result   string // ok, fail
	Serial   string
	DataSM3  string
	From, To time.Time
	Page     int // 1-based
	PageSize int // default 50, at most 500
}

// Logs returns signature-log entries, newest first, and the total count.
func (s *Server) Logs(ctx context.Context, f LogFilter) ([]LogEntry, int, error) {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if f.App != "" {
		add("app = ?", f.App)
	}
	if f.Op != "" {
		add("op = ?", f.Op)
	}
	if f.Result != "" {
		add("result = ?", f.Result)
	}
	if f.Serial != "" {
		add("signer_serial = ?", strings.ToLower(f.Serial))
	}
	if f.DataSM3 != "" {
		add("data_sm3 = ?", strings.ToLower(f.DataSM3))
	}
	if !f.From.IsZero() {
		add("at >= ?", ihos.FormatTime(f.From))
	}
	if !f.To.IsZero() {
		add("at < ?", ihos.FormatTime(f.To))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	size := f.PageSize
	if size <= 0 {
		size = 50
	}
	size = min(size, 500)
	page := max(f.Page, 1)
	var total int
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM svs_log`+cond, args...).Scan(&total); err != nil {
		return nil, 0, ihos.Internal(err)
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT id, at, app, op, key_name, data_sm3, data_len, result, reason, signer_serial, remote FROM svs_log`+
		cond+` ORDER BY at DESC, id DESC LIMIT ? OFFSET ?`, append(args, size, (page-1)*size)...)
	if err != nil {
		return nil, 0, ihos.Internal(err)
	}
	defer rows.Close()
	var out []LogEntry
	for rows.Next() {
		var e LogEntry
		var at, result string
		if err := rows.Scan(&e.ID, &at, &e.App, &e.Op, &e.KeyName, &e.DataSM3, &e.DataLen, &result, &e.Reason, &e.SignerSerial, &e.Remote); err != nil {
			return nil, 0, ihos.Internal(err)
		}
		e.At, _ = ihos.ParseTime(at)
		e.OK = result == "ok"
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, ihos.Internal(err)
	}
	return out, total, nil
}

// record writes one log entry for an operation and waits for it. Filling the
// common fields here keeps the handlers short.
func (s *Server) record(ctx context.Context, app *App, op, keyName string, data []byte, ok bool, reason, serial, remote string) error {
	e := LogEntry{ID: ihos.NewID(), At: s.now().UTC(), Op: op, KeyName: keyName, DataSM3: dataDigest(data), DataLen: int64(len(data)),
		OK: ok, Reason: reason, SignerSerial: serial, Remote: remote}
	if app != nil {
		e.App = app.Name
	}
	return s.log.write(ctx, e)
}
