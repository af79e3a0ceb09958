package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"ihos"
)

// HubDomain is the cloud's JetStream domain. Each hospital's appliance runs its
// own domain (its hospital id), so the two JetStream APIs never mix across the
// leafnode link.
const HubDomain = "hub"

// Stream limits per hospital and direction. A stream keeps a message until its
// consumer has acknowledged it (interest retention), so what it holds is the
// backlog not yet applied; Discard=New makes a full stream refuse new messages
// (the sender keeps them in its outbox and retries) rather than silently drop
// old ones. See docs/decisions/0008.
const (
	StreamMaxMsgs  = 5_000_000
	StreamMaxBytes = 8 << 30
	// DedupeWindow is JetStream's Nats-Msg-Id window: a first line of defence;
	// the inbox table is the guarantee.
	DedupeWindow = 10 * time.Minute
)

// UpSubject carries hospital → cloud changes; DownSubject cloud → hospital.
func UpSubject(hospital string) string   { return "ihos.sync." + hospital + ".up" }
func DownSubject(hospital string) string { return "ihos.sync." + hospital + ".down" }

// UpStream and DownStream are the hub's per-hospital streams.
func UpStream(hospital string) string   { return "SYNC_UP_" + hospital }
func DownStream(hospital string) string { return "SYNC_DOWN_" + hospital }

// Consumer names.
const (
	CloudConsumer     = "cloud"
	ApplianceConsumer = "appliance"
)

// Link moves changes between a replica and the hub's streams: a relay that
// publishes the outbox and consumers that apply incoming changes. The cloud runs
// one Link for all its hospitals; an appliance runs one for its own.
type Link struct {
	Replica *Replica
	// Hospital is the appliance's own hospital id; empty on the cloud.
	Hospital string
	// Connected reports whether the link to the other side is up (an appliance
	// asks its leafnode; the cloud is always "up" for its own streams).
	Connected func() bool
	// Dial opens the connection and JetStream context for a hospital's streams:
	// on an appliance, its connection addressing the hub's domain; on the cloud,
	// a connection bound to the hospital's own account.
	Dial func(hospital string) (*nats.Conn, jetstream.JetStream, error)

	kick         chan struct{}
	lastContact  atomic.Int64 // unix ms of the last successful exchange with the other side
	ackedThrough atomic.Int64 // the relay's highest acknowledged outbox seq
	applyLagMs   atomic.Int64
	applied      atomic.Int64
	duplicates   atomic.Int64
	rejected     atomic.Int64
	mu           stdsync.Mutex
	peers        map[string]*peer
	handlers     map[string]Handler
	consuming    map[string]context.CancelFunc
	wg           stdsync.WaitGroup

	ctx              context.Context // the link's life, from Start
	pendingConsumers []string        // hospitals added before Start
}

// peer is the connection to one hospital's streams.
type peer struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// NewLink returns a link; Start runs it.
func NewLink(r *Replica, hospital string, dial func(hospital string) (*nats.Conn, jetstream.JetStream, error)) *Link {
	return &Link{Replica: r, Hospital: hospital, Dial: dial, kick: make(chan struct{}, 1),
		peers: map[string]*peer{}, handlers: map[string]Handler{}, consuming: map[string]context.CancelFunc{},
		Connected: func() bool { return true }}
}

// peer returns (dialling on first use) the connection for hospital, with every
// RPC method served on it.
func (l *Link) peer(hospital string) (*peer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p, ok := l.peers[hospital]; ok {
		return p, nil
	}
	nc, js, err := l.Dial(hospital)
	if err != nil {
		return nil, err
	}
	p := &peer{nc: nc, js: js}
	for method, h := range l.handlers {
		if err := l.subscribe(p, hospital, method, h); err != nil {
			nc.Close()
			return nil, err
		}
	}
	l.peers[hospital] = p
	return p, nil
}

// Kick wakes the relay: call it after committing a captured change so it
// leaves at once instead of at the next poll.
func (l *Link) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// EnsureHospital creates (or updates) a hospital's two streams and their
// durable consumers on the hub. The cloud calls it for every enrolled hospital.
func EnsureHospital(ctx context.Context, js jetstream.JetStream, hospital string) error {
	if !ihos.ValidHospitalID(hospital) {
		return fmt.Errorf("sync: bad hospital id %q", hospital)
	}
	for _, st := range []struct{ name, subject, consumer string }{
		{UpStream(hospital), UpSubject(hospital), CloudConsumer},
		{DownStream(hospital), DownSubject(hospital), ApplianceConsumer},
	} {
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: st.name, Subjects: []string{st.subject},
			Retention: jetstream.InterestPolicy, Discard: jetstream.DiscardNew,
			MaxMsgs: StreamMaxMsgs, MaxBytes: StreamMaxBytes,
			Storage: jetstream.FileStorage, Duplicates: DedupeWindow,
		})
		if err != nil {
			return fmt.Errorf("sync: stream %s: %w", st.name, err)
		}
		_, err = js.CreateOrUpdateConsumer(ctx, st.name, jetstream.ConsumerConfig{
			Durable: st.consumer, AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: 30 * time.Second, MaxAckPending: 1000, DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err != nil {
			return fmt.Errorf("sync: consumer %s/%s: %w", st.name, st.consumer, err)
		}
	}
	return nil
}

// Start runs the relay, and on an appliance the consumer of its down stream,
// until ctx ends. The cloud adds its hospitals' consumers with Consume.
func (l *Link) Start(ctx context.Context) {
	l.mu.Lock()
	l.ctx = ctx
	pending := l.pendingConsumers
	l.pendingConsumers = nil
	l.mu.Unlock()
	l.wg.Add(1)
	go func() { defer l.wg.Done(); l.relay(ctx) }()
	if l.Hospital != "" {
		l.Consume(l.Hospital)
	}
	for _, h := range pending {
		l.Consume(h)
	}
}

// Wait waits for the link's goroutines after its context ended.
func (l *Link) Wait() { l.wg.Wait() }

// relay publishes outbox messages in commit order and removes each only after
// the hub's stream acknowledged it. On failure it keeps the rest and retries
// with backoff, so the backlog drains in order when the link returns.
func (l *Link) relay(ctx context.Context) {
	backoff := 100 * time.Millisecond
	// Acknowledged messages are deleted from the outbox in batches, not after
	// every round: each delete is a durable transaction on the appliance's one
	// SQLite writer, which the writes of the staff compete for. A crash between
	// an acknowledgement and its delete only sends the message again, which
	// the inbox on the other side skips.
	var ackedThrough, deletedThrough int64
	lastFlush := time.Now()
	flush := func() {
		if ackedThrough > deletedThrough {
			if err := l.Replica.SentThrough(context.WithoutCancel(ctx), ackedThrough); err == nil {
				deletedThrough = ackedThrough
				lastFlush = time.Now()
			}
		}
	}
	defer flush()
	for ctx.Err() == nil {
		pending, err := l.Replica.PendingAfter(ctx, ackedThrough, 512)
		if err == nil && len(pending) > 0 {
			var sent int
			sent, err = l.publish(ctx, pending)
			if sent > 0 {
				ackedThrough = pending[sent-1].Seq
				l.ackedThrough.Store(ackedThrough)
				backoff = 100 * time.Millisecond
				l.lastContact.Store(time.Now().UnixMilli())
			}
			if ackedThrough-deletedThrough >= 2000 || time.Since(lastFlush) > 250*time.Millisecond {
				flush()
			}
			if err == nil {
				continue // more may be waiting
			}
		}
		flush() // idle or failing: nothing to batch with
		wait := 50 * time.Millisecond
		if err != nil {
			if ctx.Err() == nil {
				slog.WarnContext(ctx, "sync relay: publish failed, will retry", "err", err, "retry_in", backoff.String())
			}
			wait, backoff = backoff, min(backoff*2, 2*time.Second)
		}
		select {
		case <-ctx.Done():
		case <-l.kick:
		case <-time.After(wait):
		}
	}
}

// publish sends a batch asynchronously and waits for the acks; it returns how
// long the acknowledged prefix of pending is.
func (l *Link) publish(ctx context.Context, pending []Pending) (int, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(pending))
	var firstErr error
	for _, p := range pending {
		subject := UpSubject(p.Hospital)
		stream := UpStream(p.Hospital)
		if l.Replica.Side == Cloud {
			subject, stream = DownSubject(p.Hospital), DownStream(p.Hospital)
		}
		data, err := l.Replica.outgoing(ctx, p.Hospital, p.Payload)
		if err != nil {
			firstErr = err
			break
		}
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
		pr, err := l.peer(p.Hospital)
		if err != nil {
			firstErr = err
			break
		}
		f, err := pr.js.PublishMsgAsync(msg, jetstream.WithMsgID(p.ChangeID), jetstream.WithExpectStream(stream))
		if err != nil {
			firstErr = err
			break
		}
		futures = append(futures, f)
	}
	acked := make([]int64, 0, len(futures))
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
wait:
	for i, f := range futures {
		select {
		case <-f.Ok():
			acked = append(acked, pending[i].Seq)
		case err := <-f.Err():
			if firstErr == nil {
				firstErr = err
			}
			break wait
		case <-timeout.C:
			if firstErr == nil {
				firstErr = errors.New("no acknowledgement from the hub within 10s")
			}
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	return len(acked), firstErr
}

// Consume starts applying hospital's incoming stream: the down stream on an
// appliance, the up stream on the cloud.
//
// Consumers live as long as the link (the context given to Start), whatever
// the context of the request that added the hospital; before Start they wait
// for it.
func (l *Link) Consume(hospital string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.consuming[hospital]; ok {
		return
	}
	if l.ctx == nil {
		l.pendingConsumers = append(l.pendingConsumers, hospital)
		return
	}
	cctx, cancel := context.WithCancel(l.ctx)
	l.consuming[hospital] = cancel
	l.wg.Add(1)
	go func() { defer l.wg.Done(); l.consume(cctx, hospital) }()
}

func (l *Link) consume(ctx context.Context, hospital string) {
	stream, durable := UpStream(hospital), CloudConsumer
	if l.Replica.Side == Appliance {
		stream, durable = DownStream(hospital), ApplianceConsumer
	}
	backoff := 100 * time.Millisecond
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		var err error
		if cons == nil {
			var pr *peer
			if pr, err = l.peer(hospital); err == nil {
				cons, err = pr.js.Consumer(ctx, stream, durable)
			}
		}
		if err == nil {
			var batch jetstream.MessageBatch
			batch, err = cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
			if err == nil {
				// Apply what has arrived as soon as it arrives, in one
				// transaction for whatever queued up behind the first message:
				// low latency when quiet, one fsync per batch under load.
				ch := batch.Messages()
				for msg := range messagesUntil(ctx, ch) {
					msgs := []jetstream.Msg{msg}
				more:
					for len(msgs) < 256 {
						select {
						case m, ok := <-ch:
							if !ok {
								break more
							}
							msgs = append(msgs, m)
						default:
							break more
						}
					}
					l.handleBatch(ctx, hospital, msgs)
				}
				err = batch.Error()
				if err == nil || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
					l.lastContact.Store(time.Now().UnixMilli())
					backoff = 100 * time.Millisecond
					continue
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		slog.WarnContext(ctx, "sync consumer: fetch failed, will retry", "hospital", hospital, "err", err, "retry_in", backoff.String())
		cons = nil
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// handleBatch applies a fetched batch in one transaction and acknowledges
// every message after it committed. Messages that fail the checks are handled
// (rejected) one by one first; if the batch transaction fails, each message is
// applied on its own, so one bad message cannot hold up the others.
func (l *Link) handleBatch(ctx context.Context, hospital string, msgs []jetstream.Msg) {
	var good []jetstream.Msg
	var envs []*Envelope
	for _, msg := range msgs {
		env, err := Decode(msg.Data())
		if err == nil {
			err = l.Replica.Check(hospital, env)
		}
		if err != nil {
			l.handle(ctx, hospital, msg)
			continue
		}
		good, envs = append(good, msg), append(envs, env)
	}
	if len(envs) == 0 {
		return
	}
	applied, err := l.Replica.ApplyBatch(ctx, hospital, envs)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		for _, msg := range good {
			l.handle(ctx, hospital, msg)
		}
		return
	}
	for i, msg := range good {
		if applied[i] {
			l.applied.Add(1)
			l.applyLagMs.Store(time.Since(envs[i].At).Milliseconds())
		} else {
			l.duplicates.Add(1)
		}
		msg.Ack()
	}
}

// handle applies one message and acknowledges it only after the apply
// committed. A message that can never apply is recorded and terminated so it
// does not block the stream; a database failure is retried later.
func (l *Link) handle(ctx context.Context, hospital string, msg jetstream.Msg) {
	env, err := Decode(msg.Data())
	applied := false
	if err == nil {
		applied, err = l.Replica.Apply(ctx, hospital, env)
	}
	var rej *RejectError
	switch {
	case err == nil:
		if applied {
			l.applied.Add(1)
			l.applyLagMs.Store(time.Since(env.At).Milliseconds())
		} else {
			l.duplicates.Add(1)
		}
		msg.Ack()
	case errors.As(err, &rej) || env == nil:
		l.rejected.Add(1)
		slog.ErrorContext(ctx, "sync: message rejected", "hospital", hospital, "err", err)
		if rerr := l.Replica.Reject(context.WithoutCancel(ctx), hospital, err.Error(), msg.Data()); rerr != nil {
			msg.NakWithDelay(time.Second)
			return
		}
		msg.Term()
	case ctx.Err() != nil:
		// Shutting down: the message is redelivered after AckWait.
	default:
		slog.ErrorContext(ctx, "sync: apply failed, will retry", "hospital", hospital, "err", err)
		msg.NakWithDelay(time.Second)
	}
}

// Status is what the status endpoint and the console show.
type Status struct {
	State            string    `json:"state"` // connected or disconnected
	Side             Side      `json:"side"`
	Node             string    `json:"node"`
	Hospital         string    `json:"hospital,omitempty"`
	LastContact      time.Time `json:"last_contact,omitzero"`
	Backlog          int       `json:"backlog"`
	OldestUnsentAgeS float64   `json:"oldest_unsent_age_s"`
	ApplyLagMs       int64     `json:"apply_lag_ms"`
	Applied          int64     `json:"applied"`    // changes applied since start
	Duplicates       int64     `json:"duplicates"` // redelivered changes skipped since start
	Conflicts        int       `json:"conflicts"`
	Rejected         int       `json:"rejected"`
	// StreamUsagePct is how full the fullest of the hospital streams is (of
	// StreamMaxMsgs / StreamMaxBytes); StreamAlarm is set from
	// StreamAlarmPct on, well before a full stream starts refusing changes.
	StreamUsagePct float64 `json:"stream_usage_pct"`
	StreamAlarm    bool    `json:"stream_alarm"`
}

// StreamAlarmPct is the stream usage at which the status raises its alarm.
const StreamAlarmPct = 80

// Status reports the link's state.
func (l *Link) Status(ctx context.Context) (Status, error) {
	s := Status{State: "disconnected", Side: l.Replica.Side, Node: l.Replica.Origin, Hospital: l.Hospital,
		ApplyLagMs: l.applyLagMs.Load(), Applied: l.applied.Load(), Duplicates: l.duplicates.Load()}
	if l.Connected() {
		s.State = "connected"
	}
	if ms := l.lastContact.Load(); ms > 0 {
		s.LastContact = time.UnixMilli(ms).UTC()
	}
	n, oldest, err := l.Replica.BacklogAfter(ctx, l.ackedThrough.Load())
	if err != nil {
		return s, ihos.Internal(err)
	}
	s.Backlog = n
	if !oldest.IsZero() {
		s.OldestUnsentAgeS = time.Since(oldest).Seconds()
	}
	if err := l.Replica.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM sync_conflicts`).Scan(&s.Conflicts); err != nil {
		return s, ihos.Internal(err)
	}
	if err := l.Replica.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM sync_rejects`).Scan(&s.Rejected); err != nil {
		return s, ihos.Internal(err)
	}
	s.StreamUsagePct = l.streamUsage(ctx)
	if s.StreamAlarm = s.StreamUsagePct >= StreamAlarmPct; s.StreamAlarm {
		slog.WarnContext(ctx, "sync: a hospital stream is filling up; check the consumer on the other side", "usage_pct", s.StreamUsagePct)
	}
	return s, nil
}

// streamUsage returns the fullest stream's usage in percent, over the streams
// this side can see (best effort: an unreachable hub reports 0).
func (l *Link) streamUsage(ctx context.Context) float64 {
	l.mu.Lock()
	peers := make(map[string]*peer, len(l.peers))
	for h, p := range l.peers {
		peers[h] = p
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var worst float64
	for h, p := range peers {
		for _, name := range []string{UpStream(h), DownStream(h)} {
			st, err := p.js.Stream(ctx, name)
			if err != nil {
				continue
			}
			info := st.CachedInfo()
			if info == nil {
				continue
			}
			if c := info.Config; c.MaxMsgs > 0 {
				worst = max(worst, 100*float64(info.State.Msgs)/float64(c.MaxMsgs))
			}
			if c := info.Config; c.MaxBytes > 0 {
				worst = max(worst, 100*float64(info.State.Bytes)/float64(c.MaxBytes))
			}
		}
	}
	return worst
}

// messagesUntil yields the messages of a fetch until the fetch ends or ctx is
// cancelled: a pull request whose expiry notice never comes (the other side went
// away mid-request) must not hold up shutdown.
func messagesUntil(ctx context.Context, ch <-chan jetstream.Msg) func(func(jetstream.Msg) bool) {
	return func(yield func(jetstream.Msg) bool) {
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok || !yield(m) {
					return
				}
			}
		}
	}
}
