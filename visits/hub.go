package visits

import (
	"encoding/json"
	"log/slog"
	stdsync "sync"

	"github.com/nats-io/nats.go"
)

// Real-time push. A notice says only "visit V (of patient P and doctor D) has
// something new": it carries no message. A listener that is woken reads what
// it has not sent yet from the database, from its own cursor (the visit's seq,
// or the party's feed position). So the database alone decides order and
// content: a notice lost, duplicated or reordered on the way costs at most a
// late delivery (the stream also rereads at every heartbeat), never a lost,
// doubled or misordered message, and a reconnecting client resumes from its
// Last-Event-ID the same way.

// Notice tells the listeners of a visit and its parties to look again.
type Notice struct {
	Visit   string `json:"v"`
	Patient string `json:"p"`
	Doctor  string `json:"d"`
	// Queue is set when the doctor's waiting queue changed (a visit joined,
	// was accepted or cancelled): the positions of the others moved.
	Queue bool `json:"q,omitempty"`
}

// keys are the listener keys a notice wakes.
func (n Notice) keys() []string {
	k := []string{visitKey(n.Visit), patientKey(n.Patient), doctorKey(n.Doctor)}
	if n.Queue {
		k = append(k, queueKey(n.Doctor))
	}
	return k
}

func visitKey(id string) string   { return "v:" + id }
func patientKey(id string) string { return "p:" + id }
func doctorKey(id string) string  { return "d:" + id }
func queueKey(doctor string) string {
	return "q:" + doctor
}

// Bus carries notices to the hub of every cloud process. A *Hub is the bus
// of a single process; NATSBus spans all processes connected to one NATS.
type Bus interface {
	Publish(Notice)
}

// Hub wakes this process's listeners (open SSE streams).
type Hub struct {
	mu        stdsync.Mutex
	listeners map[string]map[*Listener]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{listeners: map[string]map[*Listener]struct{}{}} }

// Listener is one stream's registration. C receives a value (coalesced: at
// most one pending) whenever a notice for one of its keys arrives.
type Listener struct {
	C     chan struct{}
	keys  []string
	queue bool // a queue notice arrived since the last Take
}

// Publish delivers n to this process's listeners: the hub as the bus of a
// single process.
func (h *Hub) Publish(n Notice) { h.Deliver(n) }

// Deliver wakes every listener of one of n's keys.
func (h *Hub) Deliver(n Notice) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range n.keys() {
		for l := range h.listeners[k] {
			if n.Queue {
				l.queue = true
			}
			select {
			case l.C <- struct{}{}:
			default:
			}
		}
	}
}

// Listen registers a listener for keys; Close it when the stream ends.
func (h *Hub) Listen(keys ...string) *Listener {
	l := &Listener{C: make(chan struct{}, 1)}
	h.SetKeys(l, keys...)
	return l
}

// SetKeys replaces l's keys.
func (h *Hub) SetKeys(l *Listener, keys ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.remove(l)
	l.keys = keys
	for _, k := range keys {
		set := h.listeners[k]
		if set == nil {
			set = map[*Listener]struct{}{}
			h.listeners[k] = set
		}
		set[l] = struct{}{}
	}
}

// Close unregisters l.
func (h *Hub) Close(l *Listener) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.remove(l)
}

func (h *Hub) remove(l *Listener) {
	for _, k := range l.keys {
		if set := h.listeners[k]; set != nil {
			delete(set, l)
			if len(set) == 0 {
				delete(h.listeners, k)
			}
		}
	}
	l.keys = nil
}

// takeQueue reports and clears whether a queue notice arrived for l.
func (h *Hub) takeQueue(l *Listener) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := l.queue
	l.queue = false
	return q
}

// Listeners returns how many listeners are registered (for tests and health).
func (h *Hub) Listeners() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[*Listener]bool{}
	for _, set := range h.listeners {
		for l := range set {
			seen[l] = true
		}
	}
	return len(seen)
}

// NoticeSubject is the core NATS subject notices travel on. Core NATS (not
// JetStream): a notice is only a wake-up, and the database holds what it is
// about.
const NoticeSubject = "ihos.visits.notice"

// NATSBus publishes notices on NoticeSubject and delivers every notice it
// receives there (its own included) to the local hub, so a message posted to
// one cloud process reaches the streams open on every other one.
type NATSBus struct {
	nc  *nats.Conn
	hub *Hub
	sub *nats.Subscription
	log *slog.Logger
}

// NewNATSBus subscribes hub to NoticeSubject on nc.
func NewNATSBus(nc *nats.Conn, hub *Hub, log *slog.Logger) (*NATSBus, error) {
	if log == nil {
		log = slog.Default()
	}
	b := &NATSBus{nc: nc, hub: hub, log: log}
	sub, err := nc.Subscribe(NoticeSubject, func(m *nats.Msg) {
		var n Notice
		if err := json.Unmarshal(m.Data, &n); err != nil {
			b.log.Warn("visits: bad notice", "err", err)
			return
		}
		hub.Deliver(n)
	})
	if err != nil {
		return nil, err
	}
	// Many notices in a burst must not be dropped as a slow consumer: a
	// dropped one only delays a delivery to the next heartbeat, but that is
	// seconds.
	sub.SetPendingLimits(1<<20, 256<<20)
	b.sub = sub
	return b, nc.Flush()
}

// Publish sends n to every process. On a NATS failure it still wakes the
// local hub; the other processes catch up at their next heartbeat.
func (b *NATSBus) Publish(n Notice) {
	data, _ := json.Marshal(n)
	if err := b.nc.Publish(NoticeSubject, data); err != nil {
		b.log.Warn("visits: publish notice", "err", err)
		b.hub.Deliver(n)
	}
}

// Close unsubscribes.
func (b *NATSBus) Close() {
	if b.sub != nil {
		b.sub.Unsubscribe()
	}
}
