package his

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	stdsync "sync"
	"sync/atomic"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
)

// Outbound message states.
const (
	StatusPending   = "pending"   // waiting to be sent (or re-sent after a lost connection)
	StatusSent      = "sent"      // the HIS answered AA
	StatusFailed    = "failed"    // the HIS answered AE or AR: waits for a person to re-send or cancel
	StatusCancelled = "cancelled" // a person gave up on it
)

// Queue is the durable outbound queue of HIS messages. A workflow enqueues a
// message in the same transaction as the business change that causes it, so
// the message exists exactly when the change does; the queue's sender then
// delivers it, in order per lane (a lane is a patient: the HIS must see a
// patient's visit before the orders of that visit), with the control id fixed
// at enqueue so a resend after a crash or a lost ACK is harmless.
//
// A lost connection or a timeout leaves the message pending and backs the
// whole queue off (the HIS is down, not the message wrong); an AE or AR answer
// marks it failed and holds the rest of its lane until a person re-sends or
// cancels it in the console.
type Queue struct {
	DB  *sqldb.DB
	HIS ihos.HIS
	// Lanes is how many lanes are sent at the same time (default 8). A lane's
	// own messages are always sent one after the other.
	Lanes int
	// OnAnswer runs in the transaction that records the HIS's answer to a
	// message (AA, AE or AR), so what the answer means for the business (an
	// order accepted, its filler number) commits with it.
	OnAnswer func(ctx context.Context, tx *sql.Tx, m ihos.HISMessage, ack ihos.HISAck) error
	Logger   *slog.Logger

	kick    chan struct{}
	once    stdsync.Once
	lastOK  atomic.Int64 // unix nanos of the last answered message
	lastErr atomic.Value // string: the last transport error, "" after a success
	backoff atomic.Int64 // current backoff, nanos
}

func (q *Queue) init() {
	q.once.Do(func() {
		q.kick = make(chan struct{}, 1)
		if q.Lanes <= 0 {
			q.Lanes = 8
		}
		if q.Logger == nil {
			q.Logger = slog.Default()
		}
		q.lastErr.Store("")
	})
}

// Kick wakes the sender after a commit that enqueued something.
func (q *Queue) Kick() {
	q.init()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// Enqueue adds m to the queue inside tx. lane orders it (the patient; its HIS
// id when empty); m.ID and m.At are set when empty. The actor in ctx is
// recorded as who caused it, for the console.
func (q *Queue) Enqueue(ctx context.Context, tx *sql.Tx, lane string, m *ihos.HISMessage) error {
	if m.ID == "" {
		m.ID = ihos.NewID()
	}
	if m.At.IsZero() {
		m.At = time.Now().UTC().Truncate(time.Microsecond)
	}
	if lane == "" {
		lane = m.Data.Patient.HISID
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var seq int64
	if err := q.DB.TxQueryRow(ctx, tx, `SELECT COALESCE(MAX(seq), 0) FROM his_outbox`).Scan(&seq); err != nil {
		return fmt.Errorf("his: queue seq: %w", err)
	}
	by := ""
	if a, ok := ihos.ActorFrom(ctx); ok {
		by = a.Username
	}
	now := ihos.FormatTime(time.Now())
	_, err = q.DB.TxExec(ctx, tx, `INSERT INTO his_outbox (id, seq, lane, event, payload, status, next_at, created_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)`, m.ID, seq+1, ihos.Truncate(lane, 64), m.Event, string(payload), now, by, now, now)
	return err
}

type queued struct {
	id, lane string
	msg      ihos.HISMessage
	attempts int
}

type answer struct {
	q    queued
	ack  ihos.HISAck
	exs  []Exchange
	err  error // transport error: the answer is unknown
	took time.Duration
}

// Run sends queued messages until ctx ends.
func (q *Queue) Run(ctx context.Context) {
	q.init()
	for {
		sent, err := q.round(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := 2 * time.Second // a poll, in case a kick was missed
		switch {
		case err != nil:
			b := time.Duration(q.backoff.Load())
			b = min(max(2*b, 500*time.Millisecond), time.Minute)
			q.backoff.Store(int64(b))
			wait = b/2 + rand.N(b/2+1)
			q.Logger.Warn("his: sending paused", "err", err, "retry_in", wait.Round(time.Millisecond))
		case sent > 0:
			q.backoff.Store(0)
			continue // there may be more
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-q.kick:
			if err == nil {
				t.Stop()
				break
			}
			<-t.C // while backing off, a kick does not shorten the wait
		case <-t.C:
		}
	}
}

// window is how many pending messages one round reads.
const window = 512

// round sends one window of pending messages: each lane's in order, lanes in
// parallel. It returns how many were answered and the first transport error.
func (q *Queue) round(ctx context.Context) (int, error) {
	// Lanes held by a refused message are left out in the query itself, so
	// their waiting messages cannot fill the window and starve other lanes.
	blocked := map[string]bool{}
	rows, err := q.DB.QueryContext(ctx, `SELECT id, lane, payload, attempts FROM his_outbox
		WHERE status = 'pending' AND lane NOT IN (SELECT lane FROM his_outbox WHERE status = 'failed')
		ORDER BY seq LIMIT ?`, window)
	if err != nil {
		return 0, err
	}
	lanes := map[string][]queued{}
	var order []string
	for rows.Next() {
		var it queued
		var payload string
		if err := rows.Scan(&it.id, &it.lane, &payload, &it.attempts); err != nil {
			rows.Close()
			return 0, err
		}
		if blocked[it.lane] {
			continue
		}
		if err := json.Unmarshal([]byte(payload), &it.msg); err != nil {
			// Cannot happen for rows Enqueue wrote; fail it visibly rather than block the lane silently.
			it.msg.ID = it.id
			q.record(ctx, []answer{{q: it, ack: ihos.HISAck{Code: ihos.AckRejected, Text: "队列中的消息已损坏：" + err.Error()}}})
			blocked[it.lane] = true
			continue
		}
		if _, ok := lanes[it.lane]; !ok {
			order = append(order, it.lane)
		}
		lanes[it.lane] = append(lanes[it.lane], it)
	}
	rows.Close()
	if len(order) == 0 {
		return 0, nil
	}

	work := make(chan []queued)
	results := make(chan answer)
	var wg stdsync.WaitGroup
	for range min(q.Lanes, len(order)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lane := range work {
				for _, it := range lane {
					a := q.deliver(ctx, it)
					results <- a
					if a.err != nil || a.ack.Code != ihos.AckAccepted {
						break // the rest of the lane waits
					}
				}
			}
		}()
	}
	go func() {
		for _, l := range order {
			work <- lanes[l]
		}
		close(work)
		wg.Wait()
		close(results)
	}()

	// Answers are recorded in batches: one commit per batch rather than per
	// message. A crash before the commit re-sends those messages with the same
	// control ids, which the HIS acknowledges without acting twice.
	var (
		batch    []answer
		answered int
		firstErr error
	)
	flush := func() {
		if len(batch) > 0 {
			if err := q.record(ctx, batch); err != nil && firstErr == nil {
				firstErr = err
			}
			batch = batch[:0]
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case a, ok := <-results:
			if !ok {
				done = true
				break
			}
			if a.err != nil {
				if firstErr == nil {
					firstErr = a.err
				}
				q.lastErr.Store(a.err.Error())
			} else {
				answered++
				q.lastOK.Store(time.Now().UnixNano())
				q.lastErr.Store("")
			}
			batch = append(batch, a)
			if len(batch) >= 128 {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
	flush()
	return answered, firstErr
}

func (q *Queue) deliver(ctx context.Context, it queued) answer {
	var exs []Exchange
	cctx := withCollector(ctx, &exs)
	start := time.Now()
	ack, err := q.HIS.Deliver(cctx, it.msg)
	return answer{q: it, ack: ack, err: err, exs: exs, took: time.Since(start)}
}

// record commits the answers of one batch: the outbox rows, the message log
// and what each answer means for the business (OnAnswer).
func (q *Queue) record(ctx context.Context, batch []answer) error {
	ctx = context.WithoutCancel(ctx) // answers already received are recorded even at shutdown
	now := ihos.FormatTime(time.Now())
	return q.DB.Tx(ctx, func(tx *sql.Tx) error {
		for _, a := range batch {
			for _, ex := range a.exs {
				if err := logExchange(ctx, q.DB, tx, ex, a.q.lane); err != nil {
					return err
				}
			}
			if a.err != nil {
				if _, err := q.DB.TxExec(ctx, tx, `UPDATE his_outbox SET attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ? AND status = 'pending'`,
					ihos.Truncate(a.err.Error(), 500), now, a.q.id); err != nil {
					return err
				}
				continue
			}
			status := StatusSent
			if a.ack.Code != ihos.AckAccepted {
				status = StatusFailed
			}
			res, err := q.DB.TxExec(ctx, tx, `UPDATE his_outbox SET status = ?, attempts = attempts + 1, ack_code = ?, ack_text = ?, last_error = '', sent_at = ?, updated_at = ? WHERE id = ? AND status = 'pending'`,
				status, ihos.Truncate(a.ack.Code, 4), ihos.Truncate(a.ack.Text, 500), now, now, a.q.id)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue // cancelled while it was on the wire
			}
			if q.OnAnswer != nil {
				if err := q.OnAnswer(ctx, tx, a.q.msg, a.ack); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// QueueStatus is what the console and /api/his/status show about the queue.
type QueueStatus struct {
	Pending       int       `json:"pending"`
	Failed        int       `json:"failed"`
	OldestPending time.Time `json:"oldest_pending,omitzero"`
	OldestAgeSecs float64   `json:"oldest_pending_age_seconds"`
	LastAnswer    time.Time `json:"last_answer,omitzero"`
	LastError     string    `json:"last_error"`
	// Alarm is set when the HIS has not answered for a while with messages
	// waiting, or when messages failed: the console shows it in red.
	Alarm string `json:"alarm"`
}

// AlarmAfter is how long messages may wait unsent before the status raises an
// alarm.
const AlarmAfter = 2 * time.Minute

// Status reports the queue's state.
func (q *Queue) Status(ctx context.Context) (QueueStatus, error) {
	q.init()
	var s QueueStatus
	var oldest sql.NullString
	if err := q.DB.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM his_outbox WHERE status = 'pending'`).Scan(&s.Pending, &oldest); err != nil {
		return s, ihos.Internal(err)
	}
	if err := q.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM his_outbox WHERE status = 'failed'`).Scan(&s.Failed); err != nil {
		return s, ihos.Internal(err)
	}
	if oldest.Valid {
		if t, err := ihos.ParseTime(oldest.String); err == nil {
			s.OldestPending = t
			s.OldestAgeSecs = time.Since(t).Seconds()
		}
	}
	if n := q.lastOK.Load(); n > 0 {
		s.LastAnswer = time.Unix(0, n).UTC()
	}
	s.LastError, _ = q.lastErr.Load().(string)
	switch {
	case s.Pending > 0 && s.OldestAgeSecs > AlarmAfter.Seconds():
		s.Alarm = fmt.Sprintf("HIS 已 %d 分钟未接收消息，%d 条待发送", int(s.OldestAgeSecs/60), s.Pending)
	case s.Failed > 0:
		s.Alarm = fmt.Sprintf("%d 条消息被 HIS 拒绝，需人工处理", s.Failed)
	}
	return s, nil
}

// Resend puts a failed (or cancelled) message back in the queue with its
// original control id; the lane it holds resumes after it.
func (q *Queue) Resend(ctx context.Context, id string) error {
	return q.decide(ctx, id, StatusPending, "resend", "重新发送 HIS 消息")
}

// Cancel gives up on a failed or pending message; the lane it held resumes.
func (q *Queue) Cancel(ctx context.Context, id string) error {
	return q.decide(ctx, id, StatusCancelled, "cancel", "取消 HIS 消息")
}

var errNotActionable = ihos.Errorf(ihos.EConflict, "该消息已发送成功，不能再操作")

func (q *Queue) decide(ctx context.Context, id, to, action, summary string) error {
	err := q.DB.Tx(ctx, func(tx *sql.Tx) error {
		var status, event string
		err := tx.QueryRowContext(ctx, `SELECT status, event FROM his_outbox WHERE id = ?`+q.DB.ForUpdate(), id).Scan(&status, &event)
		if errors.Is(err, sql.ErrNoRows) {
			return ihos.Errorf(ihos.ENotFound, "消息不存在")
		}
		if err != nil {
			return err
		}
		if status == StatusSent || (to == StatusPending && status == StatusPending) || (to == StatusCancelled && status == StatusCancelled) {
			return errNotActionable
		}
		now := ihos.FormatTime(time.Now())
		if _, err := tx.ExecContext(ctx, `UPDATE his_outbox SET status = ?, next_at = ?, updated_at = ? WHERE id = ?`, to, now, now, id); err != nil {
			return err
		}
		return audit.Append(ctx, q.DB, tx, audit.Entry{Action: action, Resource: "his_outbox", RecordID: id,
			Summary: summary + "（" + event + "，原状态 " + status + "）"})
	})
	if err == nil {
		q.Kick()
	}
	return err
}
