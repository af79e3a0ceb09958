package his

import (
	"context"
	"database/sql"
	"log/slog"
	stdsync "sync"
	"time"

	"ihos"
	"ihos/internal/sqldb"
)

// Exchange is one message to or from the HIS with its answer, as it crossed
// the wire: what the message log keeps for audit and for the console's search.
type Exchange struct {
	At        time.Time
	Direction string // "out" (we asked or sent) or "in" (the HIS sent)
	Type      string // ADT^A04, QBP^Q22, ORU^R01, POST /his/api/messages …
	ControlID string
	AckCode   string
	AckText   string
	Err       string // transport error, when there was no answer
	Elapsed   time.Duration
	Request   string
	Response  string
}

type collectorKey struct{}

// withCollector makes the adapters append the exchanges of calls made with
// ctx to *into, so the caller can log them in its own transaction (the queue
// does, so an answer and its log entry commit together).
func withCollector(ctx context.Context, into *[]Exchange) context.Context {
	return context.WithValue(ctx, collectorKey{}, into)
}

// Recorder receives the adapters' exchanges: those of a call made with a
// collector go to the collector, the rest (queries, inbound messages) are
// written to the message log in small batches by a background writer.
type Recorder struct {
	DB *sqldb.DB

	mu      stdsync.Mutex
	pending []Exchange
	wake    chan struct{}
	once    stdsync.Once
}

// Observe is the adapters' hook.
func (r *Recorder) Observe(ctx context.Context, ex Exchange) {
	if ex.At.IsZero() {
		ex.At = time.Now()
	}
	if into, ok := ctx.Value(collectorKey{}).(*[]Exchange); ok {
		*into = append(*into, ex)
		return
	}
	if r == nil || r.DB == nil {
		return
	}
	r.once.Do(func() { r.wake = make(chan struct{}, 1) })
	r.mu.Lock()
	r.pending = append(r.pending, ex)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run writes observed exchanges until ctx ends, then writes what is left.
func (r *Recorder) Run(ctx context.Context) {
	r.once.Do(func() { r.wake = make(chan struct{}, 1) })
	for {
		select {
		case <-ctx.Done():
			r.Flush(context.WithoutCancel(ctx))
			return
		case <-r.wake:
			time.Sleep(20 * time.Millisecond) // gather a few into one commit
			r.Flush(ctx)
		}
	}
}

// Flush writes the exchanges observed so far.
func (r *Recorder) Flush(ctx context.Context) {
	r.mu.Lock()
	batch := r.pending
	r.pending = nil
	r.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	err := r.DB.Tx(ctx, func(tx *sql.Tx) error {
		for _, ex := range batch {
			if err := logExchange(ctx, r.DB, tx, ex, ""); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		slog.ErrorContext(ctx, "his: write message log", "err", err, "lost", len(batch))
	}
}

// maxLogged bounds what the log keeps of one message; a 1 MB report is kept
// in full in its own table, not twice.
const maxLogged = 64 << 10

func logExchange(ctx context.Context, db *sqldb.DB, tx *sql.Tx, ex Exchange, lane string) error {
	_, err := db.TxExec(ctx, tx, `INSERT INTO his_messages (id, at, direction, type, control_id, lane, ack_code, ack_text, error, elapsed_ms, request, response)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ihos.NewID(), ihos.FormatTime(ex.At), ex.Direction, ihos.Truncate(ex.Type, 24), ihos.Truncate(ex.ControlID, 64), ihos.Truncate(lane, 64),
		ihos.Truncate(ex.AckCode, 4), ihos.Truncate(ex.AckText, 500), ihos.Truncate(ex.Err, 500), ex.Elapsed.Milliseconds(),
		truncateBytes(ex.Request, maxLogged), truncateBytes(ex.Response, maxLogged))
	return err
}

// truncateBytes cuts s to at most n bytes on a rune boundary.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
