package visits

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"ihos"
)

// Server-sent event streams. Two kinds:
//
//   - a visit's stream (GET /api/visits/{id}/events): its messages, system
//     messages included (event names opened, accepted, ended, cancelled, or
//     message), each with id = the message's seq, and "queue" events with the
//     visit's place in the queue while it waits;
//   - a party's stream (GET /api/events, the message center): the messages of
//     all the party's visits, each with id = its feed position, plus "queue"
//     events for the patient's waiting visits and "worklist" events with the
//     doctor's number of waiting patients.
//
// A client that reconnects sends the last id it saw (Last-Event-ID, as
// EventSource does, or ?last_event_id=) and gets everything after it, in order,
// once. Queue and worklist events carry no id: they are the current state,
// sent again at every (re)connection.

// batch is how many messages one database read sends.
const batch = 200

func (s *Service) heartbeat() time.Duration {
	if s.Heartbeat > 0 {
		return s.Heartbeat
	}
	return 15 * time.Second
}

// lastEventID is the client's resume point: 0 means from the start.
func lastEventID(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, ihos.Invalid(map[string]string{"last_event_id": "Last-Event-ID 无效"})
	}
	return n, nil
}

// sse writes one stream. Writes are buffered and sent by flush.
type sse struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf bytes.Buffer
	hb  time.Duration
}

func newSSE(w http.ResponseWriter, hb time.Duration) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events through at once
	w.WriteHeader(http.StatusOK)
	e := &sse{w: w, rc: http.NewResponseController(w), hb: hb}
	// EventSource waits this long before reconnecting.
	e.buf.WriteString("retry: 2000\n\n")
	return e
}

func (e *sse) event(id, name string, v any) {
	data, _ := json.Marshal(v)
	if id != "" {
		fmt.Fprintf(&e.buf, "id: %s\n", id)
	}
	fmt.Fprintf(&e.buf, "event: %s\ndata: %s\n\n", name, data)
}

func (e *sse) message(id int64, m *Message) {
	name := m.Event
	if name == "" {
		name = "message"
	}
	e.event(strconv.FormatInt(id, 10), name, m)
}

// flush sends what is buffered. The server's write timeout would end a long
// stream: each write moves the deadline to a little past the next heartbeat.
func (e *sse) flush() error {
	if e.buf.Len() == 0 {
		return nil
	}
	e.rc.SetWriteDeadline(time.Now().Add(2*e.hb + 10*time.Second))
	_, err := e.w.Write(e.buf.Bytes())
	e.buf.Reset()
	if err != nil {
		return err
	}
	return e.rc.Flush()
}

// run sends fill's output at the start, after every wake-up of l and at every
// heartbeat (with a comment line that keeps proxies from closing an idle
// connection), until the client goes away. fill(queue) reads from the
// stream's cursor; queue tells it the queue may have moved.
func (s *Service) run(ctx context.Context, e *sse, l *Listener, fill func(queue bool) error) error {
	hb := time.NewTicker(s.heartbeat())
	defer hb.Stop()
	queue := true
	for {
		if err := fill(queue); err != nil {
			// The answer has started: the error can only be logged, and
			// the client reconnects and resumes.
			slog.ErrorContext(ctx, "visits: stream", "err", err)
			return nil
		}
		if err := e.flush(); err != nil {
			return nil // the client went away
		}
		select {
		case <-ctx.Done():
			return nil
		case <-l.C:
			queue = s.Hub.takeQueue(l)
		case <-hb.C:
			e.buf.WriteString(": ping\n\n")
			queue = false
		}
	}
}

var errNoHub = ihos.Errorf(ihos.EUnavailable, "消息推送暂不可用")

// ServeVisitEvents streams visit visitID to by, its patient or doctor.
func (s *Service) ServeVisitEvents(w http.ResponseWriter, r *http.Request, by Party, visitID string) error {
	if s.Hub == nil {
		return errNoHub
	}
	ctx := r.Context()
	cursor, err := lastEventID(r)
	if err != nil {
		return err
	}
	v, err := s.load(ctx, visitID)
	if err != nil {
		return err
	}
	if err := party(by, v); err != nil {
		return err
	}
	// Listen before the first read: a message committed in between wakes
	// the listener and is read then.
	l := s.Hub.Listen(visitKey(v.ID), queueKey(v.DoctorID))
	defer s.Hub.Close(l)
	e := newSSE(w, s.heartbeat())
	status, lastPos := v.Status, -1
	return s.run(ctx, e, l, func(queue bool) error {
		for {
			msgs, err := s.messagesAfter(ctx, v.ID, cursor, batch)
			if err != nil {
				return err
			}
			for _, m := range msgs {
				e.message(m.Seq, m)
				cursor = m.Seq
				if to, ok := transitions[m.Event]; ok {
					status = to.to
				}
			}
			if len(msgs) < batch {
				break
			}
		}
		if !queue {
			return nil
		}
		pos := 0
		if status == StatusWaiting {
			cur, err := s.load(ctx, v.ID)
			if err != nil {
				return err
			}
			if cur.Status == StatusWaiting {
				if pos, err = s.position(ctx, cur); err != nil {
					return err
				}
			}
		}
		if pos != lastPos {
			e.event("", "queue", QueueEvent{VisitID: v.ID, Position: pos})
			lastPos = pos
		}
		return nil
	})
}

// QueueEvent is the "queue" event: the visit's place in its doctor's queue
// (0: it no longer waits).
type QueueEvent struct {
	VisitID  string `json:"visit_id"`
	Position int    `json:"position"`
}

// WorklistEvent is the "worklist" event of a doctor's stream.
type WorklistEvent struct {
	Waiting int `json:"waiting"`
}

// ServeEvents streams every visit of by (a patient or a doctor): the message
// center.
func (s *Service) ServeEvents(w http.ResponseWriter, r *http.Request, by Party) error {
	if s.Hub == nil {
		return errNoHub
	}
	if (by.Role != RolePatient && by.Role != RoleDoctor) || by.ID == "" {
		return ihos.Errorf(ihos.EForbidden, "只有患者和医生有消息中心")
	}
	ctx := r.Context()
	cursor, err := lastEventID(r)
	if err != nil {
		return err
	}
	var l *Listener
	if by.Role == RoleDoctor {
		l = s.Hub.Listen(doctorKey(by.ID), queueKey(by.ID))
	} else {
		l = s.Hub.Listen(patientKey(by.ID))
	}
	defer s.Hub.Close(l)
	var extra func(context.Context, func(string, any)) error
	if s.Extra != nil {
		extra = s.Extra(r, by)
	}
	e := newSSE(w, s.heartbeat())
	sent := map[string]int{} // visit → last position sent
	lastWaiting := -1
	return s.run(ctx, e, l, func(queue bool) error {
		moved := false
		for {
			msgs, err := s.feedAfter(ctx, by, cursor, batch)
			if err != nil {
				return err
			}
			for _, m := range msgs {
				e.message(m.Feed, m)
				cursor = m.Feed
				moved = moved || m.Event != ""
			}
			if len(msgs) < batch {
				break
			}
		}
		if extra != nil {
			if err := extra(ctx, func(name string, v any) { e.event("", name, v) }); err != nil {
				return err
			}
		}
		if !queue && !moved {
			return nil
		}
		if by.Role == RoleDoctor {
			var n int
			if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM visits WHERE doctor_id = ? AND status = ? AND deleted_at IS NULL`,
				by.ID, StatusWaiting).Scan(&n); err != nil {
				return err
			}
			if n != lastWaiting {
				e.event("", "worklist", WorklistEvent{Waiting: n})
				lastWaiting = n
			}
			return nil
		}
		// A patient: the positions of their waiting visits, and listen to
		// the queues they wait in.
		waiting, err := s.patientWaiting(ctx, by.ID)
		if err != nil {
			return err
		}
		keys := []string{patientKey(by.ID)}
		for _, v := range waiting {
			keys = append(keys, queueKey(v.DoctorID))
			if sent[v.ID] != v.QueuePosition {
				e.event("", "queue", QueueEvent{VisitID: v.ID, Position: v.QueuePosition})
				sent[v.ID] = v.QueuePosition
			}
		}
		for id, pos := range sent {
			if pos != 0 && !containsVisit(waiting, id) {
				e.event("", "queue", QueueEvent{VisitID: id, Position: 0})
				delete(sent, id)
			}
		}
		s.Hub.SetKeys(l, keys...)
		return nil
	})
}

func containsVisit(vs []*Visit, id string) bool {
	for _, v := range vs {
		if v.ID == id {
			return true
		}
	}
	return false
}

// patientWaiting returns the patient's waiting visits with their positions.
func (s *Service) patientWaiting(ctx context.Context, patient string) ([]*Visit, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+visitCols+` FROM visits WHERE patient_id = ? AND status = ? AND deleted_at IS NULL`, patient, StatusWaiting)
	if err != nil {
		return nil, err
	}
	var out []*Visit
	for rows.Next() {
		v, err := scanVisit(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, v := range out {
		if v.QueuePosition, err = s.position(ctx, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}
