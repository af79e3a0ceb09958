//go:build linux

package sync_test

// The sync benchmarks of docs/benchmarks.md ("Sync"): end-to-end throughput
// appliance → cloud against raw JetStream, commit-to-commit lag at a steady
// rate, and the drain of a large backlog after a partition. Each benchmark
// starts its own pair in this process, as startPair does: a hub broker (domain
// "hub"), a leaf broker (domain "h1", SyncAlways) dialling it through a
// nettest.Proxy, a SQLite replica on each side, sync.StartHub and
// sync.StartLeaf. Both sides share the process, its two CPUs and its memory.
//
// They run only with -bench; all setup is inside the Benchmark functions.
// They read /proc, hence linux only.

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"ihos"
	"ihos/internal/broker"
	"ihos/internal/nettest"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/sync"
)

// benchEnv reads a positive integer knob from the environment.
func benchEnv(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(s, "_", ""))
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

type benchPair struct {
	appDB, cloudDB     *sqldb.DB
	app, cloud         *sync.Replica
	appLink, cloudLink *sync.Link
	hub, leaf          *broker.Broker
	proxy              *nettest.Proxy
	inst               string // an institution id for the departments rows
}

// startBenchPair starts hub, leaf, replicas and links with link_test.go's
// startPair, quietly.
func startBenchPair(b *testing.B) *benchPair {
	b.Helper()
	// The relay logs a warning at every retry while a link is cut.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	b.Cleanup(func() { slog.SetDefault(prev) })
	sp := startPair(b, sqldbtest.SQLite(b))
	return &benchPair{hub: sp.hub, leaf: sp.leaf, proxy: sp.proxy, appDB: sp.app.db, cloudDB: sp.cloud.db,
		app: sp.app.replica, cloud: sp.cloud.replica, appLink: sp.appLink, cloudLink: sp.cloudLink, inst: ihos.NewID()}
}

func benchWait(b *testing.B, d time.Duration, what string, ok func() bool) time.Duration {
	b.Helper()
	return waitFor(b, d, what, ok)
}

// applied is how many envelopes the cloud's link has applied (an atomic
// counter the link increments after each batch commits).
func (p *benchPair) applied(b *testing.B) int64 {
	st, err := p.cloudLink.Status(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return st.Applied
}

const benchDeptInsert = `INSERT INTO departments (id, institution_id, code, name, category, location, phone, sort_order, intro, version, created_at, updated_at, hospital_id)
VALUES (?, ?, ?, ?, '临床', '门诊楼三层东区', '020-12345678', ?, ?, 1, ?, ?, 'h1')`

// insertDepts inserts n departments rows numbered from base with plain SQL in
// tx and returns their refs for Capture.
func (p *benchPair) insertDepts(ctx context.Context, tx *sql.Tx, base, n int) ([]sync.Ref, error) {
	now := ihos.FormatTime(time.Now())
	refs := make([]sync.Ref, n)
	for k := range n {
		id := ihos.NewID()
		i := base + k
		if _, err := p.appDB.TxExec(ctx, tx, benchDeptInsert, id, p.inst, fmt.Sprintf("B%07d", i), fmt.Sprintf("第%d临床科室", i), i,
			"本科室开设普通门诊、专家门诊和专病门诊。", now, now); err != nil {
			return nil, err
		}
		refs[k] = sync.Ref{Entity: "departments", ID: id}
	}
	return refs, nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// memMB returns VmRSS, RssAnon and RssFile of this process in MB.
func memMB() (rss, anon, file float64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmRSS":
			rss = kb / 1024
		case "RssAnon":
			anon = kb / 1024
		case "RssFile":
			file = kb / 1024
		}
	}
	return
}

// rssSampler samples the process's memory every 200 ms until closed, keeping
// the maxima of the current phase.
type rssSampler struct {
	mu                stdsync.Mutex
	maxRSS, maxAnon   float64
	fileAtMax         float64
	lastRSS, lastAnon float64
	stop, done        chan struct{}
}

func startRSS() *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			rss, anon, file := memMB()
			s.mu.Lock()
			s.lastRSS, s.lastAnon = rss, anon
			if rss > s.maxRSS {
				s.maxRSS, s.fileAtMax = rss, file
			}
			s.maxAnon = max(s.maxAnon, anon)
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// phase returns the maxima since the last call (with one fresh sample) and
// starts new ones.
func (s *rssSampler) phase() (maxRSS, maxAnon, fileAtMax float64) {
	rss, anon, file := memMB()
	s.mu.Lock()
	defer s.mu.Unlock()
	if rss > s.maxRSS {
		s.maxRSS, s.fileAtMax = rss, file
	}
	maxRSS, maxAnon, fileAtMax = s.maxRSS, max(s.maxAnon, anon), s.fileAtMax
	s.maxRSS, s.maxAnon, s.fileAtMax = 0, 0, 0
	return
}

func (s *rssSampler) last() (rss, anon float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastRSS, s.lastAnon
}

func (s *rssSampler) close() {
	close(s.stop)
	<-s.done
}

// BenchmarkSyncThroughput measures replication appliance → cloud of local
// transactions of 10 departments rows each (plain SQL plus one Capture of the
// 10 refs in the same transaction, so one 10-row envelope per transaction), in
// three phases:
//
//   - live: the appliance commits IHOS_BENCH_SYNC_TX (default 20,000)
//     transactions back to back from one goroutine while the link runs.
//     rows/s is the row changes from the first commit to the last envelope
//     applied on the cloud; commit_rows/s is the producer's own rate. One
//     SQLite writer committing with synchronous=FULL is the ceiling here.
//   - capacity: the link is cut, a quarter as many transactions are queued,
//     the link is restored and the relay kicked; capacity_rows/s is the row
//     changes from the first to the last envelope applied: what the sync path
//     does with a full outbox, free of the producer.
//   - raw: the envelopes queued in the capacity phase (the outbox's JSON,
//     cycled to IHOS_BENCH_SYNC_TX messages) are published from the leaf to a
//     hub stream configured like SYNC_UP_h1 (same config, and a durable
//     consumer that does not consume, so the messages stay stored as they do
//     until the cloud acks them): pipelined async publishes waiting for every
//     ack (raw_msgs/s), and windows of 512 each waiting for all its acks
//     before the next, as the relay does (raw512_msgs/s).
//
// ratio is the live envelopes/s ÷ raw_msgs/s, capacity_ratio the capacity
// phase's envelopes/s ÷ raw_msgs/s.
func BenchmarkSyncThroughput(b *testing.B) {
	txs := benchEnv(b, "IHOS_BENCH_SYNC_TX", 20_000)
	capTxs := max(txs/4, 1)
	const rowsPerTx = 10
	p := startBenchPair(b)
	ctx := context.Background()
	b.Logf("load average before: %s", loadAvg())
	commit := func(i int) {
		if err := p.appDB.Tx(ctx, func(tx *sql.Tx) error {
			refs, err := p.insertDepts(ctx, tx, i*rowsPerTx, rowsPerTx)
			if err != nil {
				return err
			}
			return p.app.Capture(ctx, tx, "h1", refs...)
		}); err != nil {
			b.Fatal(err)
		}
	}

	// Live.
	cpu0 := cpuSeconds()
	start := time.Now()
	var maxBacklog int
	for i := range txs {
		commit(i)
		if i%1000 == 999 {
			n, _, _ := p.app.Backlog(ctx)
			maxBacklog = max(maxBacklog, n)
		}
	}
	committed := time.Since(start)
	backlogAtEnd, _, _ := p.app.Backlog(ctx)
	benchWait(b, 10*time.Minute, "every envelope applied on the cloud", func() bool { return p.applied(b) >= int64(txs) })
	total := time.Since(start)
	cpu := cpuSeconds() - cpu0
	if n := count(p.cloudDB, `SELECT COUNT(*) FROM departments`); n != txs*rowsPerTx {
		b.Fatalf("cloud has %d departments, want %d", n, txs*rowsPerTx)
	}
	rows := float64(txs * rowsPerTx)
	b.Logf("live: %d tx × %d rows committed in %v (%.0f rows/s committed; outbox sampled every 1,000 tx at most %d, %d at the last commit); all applied after %v: %.0f rows/s end to end; %.1f s CPU, %.0f µs CPU per row (both sides); load average %s",
		txs, rowsPerTx, committed.Round(time.Millisecond), rows/committed.Seconds(), maxBacklog, backlogAtEnd,
		total.Round(time.Millisecond), rows/total.Seconds(), cpu, cpu/rows*1e6, loadAvg())

	// Capacity: a queued backlog of the same transactions.
	p.proxy.Cut()
	benchWait(b, 10*time.Second, "leafnode down", func() bool { return p.leaf.Server().NumLeafNodes() == 0 })
	start = time.Now()
	for i := range capTxs {
		commit(txs + i)
	}
	queued := time.Since(start)
	pending, err := p.app.Pending(ctx, capTxs)
	if err != nil || len(pending) != capTxs {
		b.Fatalf("outbox: %d of %d pending: %v", len(pending), capTxs, err)
	}
	payloads := make([][]byte, txs)
	var size int
	for i := range payloads {
		payloads[i] = pending[i%capTxs].Payload
		size += len(payloads[i])
	}
	base := p.applied(b)
	p.proxy.Restore(b)
	benchWait(b, 30*time.Second, "leafnode up", func() bool { return p.leaf.Server().NumLeafNodes() == 1 })
	p.appLink.Kick()
	benchWait(b, 30*time.Second, "first queued envelope applied", func() bool { return p.applied(b) > base })
	cpu0 = cpuSeconds()
	first := time.Now()
	firstApplied := p.applied(b)
	benchWait(b, 10*time.Minute, "queued envelopes applied", func() bool { return p.applied(b) >= base+int64(capTxs) })
	capDur := time.Since(first)
	capCPU := cpuSeconds() - cpu0
	capEnvs := float64(base + int64(capTxs) - firstApplied)
	capRate := capEnvs / capDur.Seconds()
	b.Logf("capacity: %d tx queued while cut in %v (%.0f rows/s committed with the link idle); drained %.0f envelopes in %v from the first apply: %.0f rows/s, %.0f µs CPU per row",
		capTxs, queued.Round(time.Millisecond), float64(capTxs*rowsPerTx)/queued.Seconds(), capEnvs, capDur.Round(time.Millisecond),
		capRate*rowsPerTx, capCPU/(capEnvs*rowsPerTx)*1e6)

	// Raw JetStream.
	rawRate, rawCPU := rawPublish(b, p, "BENCH_RAW", payloads, 0)
	raw512Rate, raw512CPU := rawPublish(b, p, "BENCH_RAW512", payloads, 512)
	b.Logf("raw JetStream leaf → hub: %d envelopes (mean %d bytes): pipelined %.0f msgs/s (%.0f rows/s, %.0f µs CPU/msg); windows of 512 %.0f msgs/s (%.0f µs CPU/msg); load average after: %s",
		len(payloads), size/len(payloads), rawRate, rawRate*rowsPerTx, rawCPU*1e6, raw512Rate, raw512CPU*1e6, loadAvg())

	syncRate := float64(txs) / total.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(rows/total.Seconds(), "rows/s")
	b.ReportMetric(rows/committed.Seconds(), "commit_rows/s")
	b.ReportMetric(capRate*rowsPerTx, "capacity_rows/s")
	b.ReportMetric(cpu/rows*1e6, "cpu_us/row")
	b.ReportMetric(rawRate, "raw_msgs/s")
	b.ReportMetric(raw512Rate, "raw512_msgs/s")
	b.ReportMetric(syncRate/rawRate, "ratio")
	b.ReportMetric(capRate/rawRate, "capacity_ratio")
}

// rawPublish creates a hub stream configured as sync.EnsureHospital configures
// SYNC_UP_h1, with a durable consumer like the cloud's that never consumes,
// and publishes payloads to it from the leaf as the relay does (domain "hub",
// a Nats-Msg-Id, the expected stream), waiting for every ack. window 0
// pipelines all publishes (nats.go's default of at most 4,000 in flight);
// otherwise it publishes window messages and waits for all their acks before
// the next window, as the relay does. It returns msgs/s and the process CPU
// seconds per message.
func rawPublish(b *testing.B, p *benchPair, stream string, payloads [][]byte, window int) (float64, float64) {
	b.Helper()
	ctx := context.Background()
	hnc, err := p.hub.Connect()
	if err != nil {
		b.Fatal(err)
	}
	defer hnc.Close()
	hjs, _ := jetstream.New(hnc)
	up, err := hjs.Stream(ctx, sync.UpStream("h1"))
	if err != nil {
		b.Fatal(err)
	}
	cfg := up.CachedInfo().Config
	subject := "bench." + strings.ToLower(stream)
	cfg.Name, cfg.Subjects = stream, []string{subject}
	if _, err := hjs.CreateStream(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	cons, err := up.Consumer(ctx, sync.CloudConsumer)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := hjs.CreateOrUpdateConsumer(ctx, stream, cons.CachedInfo().Config); err != nil {
		b.Fatal(err)
	}
	nc, err := p.leaf.Connect(nats.Name("bench-raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.NewWithDomain(nc, sync.HubDomain)
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuSeconds()
	start := time.Now()
	if window == 0 {
		window = len(payloads)
	}
	for lo := 0; lo < len(payloads); lo += window {
		hi := min(lo+window, len(payloads))
		futures := make([]jetstream.PubAckFuture, 0, hi-lo)
		for i := lo; i < hi; i++ {
			msg := &nats.Msg{Subject: subject, Data: payloads[i], Header: nats.Header{}}
			for {
				f, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(fmt.Sprintf("%s-%d", stream, i)), jetstream.WithExpectStream(stream))
				if err == nil {
					futures = append(futures, f)
					break
				}
				if err != jetstream.ErrTooManyStalledMsgs {
					b.Fatal(err)
				}
			}
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			case <-time.After(30 * time.Second):
				b.Fatal("no ack in 30 s")
			}
		}
	}
	d := time.Since(start)
	cpu := cpuSeconds() - cpu0
	if info, err := hjs.Stream(ctx, stream); err != nil || info.CachedInfo().State.Msgs != uint64(len(payloads)) {
		b.Fatalf("raw stream %s: %v %+v", stream, err, info.CachedInfo().State)
	}
	return float64(len(payloads)) / d.Seconds(), cpu / float64(len(payloads))
}

// BenchmarkSyncLag measures the lag from a commit on the appliance to the
// commit of its apply on the cloud, at a steady 500 single-row transactions a
// second (IHOS_BENCH_LAG_RATE) for 20 s (IHOS_BENCH_LAG_SECONDS). The producer
// commits on a fixed schedule (commit i at start + i/rate, at once when
// late); the commit time is taken when Tx returns. A poller reads new
// sync_inbox rows on the cloud every millisecond; a change counts as applied
// when its inbox row is first seen. kick=off is the admin store's path today
// (nothing wakes the relay: it polls the outbox every 50 ms when idle);
// kick=on calls Link.Kick after each commit. db_p99_ms is the lag from the
// inbox's own timestamps (applied_at − committed_at: the capture time, before
// the origin's commit, to the start of the apply transaction).
func BenchmarkSyncLag(b *testing.B) {
	for _, kick := range []bool{false, true} {
		name := "kick=off"
		if kick {
			name = "kick=on"
		}
		b.Run(name, func(b *testing.B) { benchLag(b, kick) })
	}
}

func benchLag(b *testing.B, kick bool) {
	rate := benchEnv(b, "IHOS_BENCH_LAG_RATE", 500)
	secs := benchEnv(b, "IHOS_BENCH_LAG_SECONDS", 20)
	n := rate * secs
	p := startBenchPair(b)
	ctx := context.Background()
	b.Logf("load average before: %s", loadAvg())

	// By change id: captures are numbered in the outbox only when the relay
	// promotes them, after their commit.
	commitAt := make(map[string]time.Time, n)
	seenAt := make(map[string]time.Time, n) // the poller's until it reports
	stop := make(chan struct{})
	pollDone := make(chan int)
	go func() {
		var last int64
		seen := 0
		for {
			rows, err := p.cloudDB.Query(`SELECT rowid, change_id FROM sync_inbox WHERE rowid > ? ORDER BY rowid`, last)
			if err == nil {
				now := time.Now()
				for rows.Next() {
					var id string
					if rows.Scan(&last, &id) == nil {
						if _, ok := seenAt[id]; !ok {
							seenAt[id] = now
							seen++
						}
					}
				}
				rows.Close()
			}
			if seen >= n {
				pollDone <- seen
				return
			}
			select {
			case <-stop:
				pollDone <- seen
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	interval := time.Second / time.Duration(rate)
	late := 0
	start := time.Now()
	for i := range n {
		next := start.Add(time.Duration(i) * interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		} else if d < -10*time.Millisecond {
			late++
		}
		var changeID string
		if err := p.appDB.Tx(ctx, func(tx *sql.Tx) error {
			refs, err := p.insertDepts(ctx, tx, i, 1)
			if err != nil {
				return err
			}
			if err := p.app.Capture(ctx, tx, "h1", refs...); err != nil {
				return err
			}
			// SQLite's newest rowid in the write transaction is this capture.
			return tx.QueryRowContext(ctx, `SELECT change_id FROM sync_capture ORDER BY rowid DESC LIMIT 1`).Scan(&changeID)
		}); err != nil {
			b.Fatal(err)
		}
		commitAt[changeID] = time.Now()
		if kick {
			p.appLink.Kick()
		}
	}
	produced := time.Since(start)
	var seen int
	select {
	case seen = <-pollDone:
	case <-time.After(60 * time.Second):
		close(stop)
		seen = <-pollDone
	}
	if seen < n {
		b.Fatalf("%d of %d changes seen on the cloud after 60 s", seen, n)
	}
	lags := make([]time.Duration, 0, n)
	for id, at := range commitAt {
		seen, ok := seenAt[id]
		if !ok {
			b.Fatalf("change %s never seen on the cloud", id)
		}
		lags = append(lags, seen.Sub(at))
	}
	slices.Sort(lags)

	var dbLags []time.Duration
	rows, err := p.cloudDB.Query(`SELECT committed_at, applied_at FROM sync_inbox`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var c, a string
		rows.Scan(&c, &a)
		ct, _ := ihos.ParseTime(c)
		at, _ := ihos.ParseTime(a)
		dbLags = append(dbLags, at.Sub(ct))
	}
	rows.Close()
	slices.Sort(dbLags)

	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.Logf("%d single-row changes in %v (%.0f/s, %d commits started >10 ms late); lag commit → visible on the cloud: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms; inbox applied_at − committed_at: p50 %.1f ms, p99 %.1f ms; load average after: %s",
		n, produced.Round(time.Millisecond), float64(n)/produced.Seconds(), late,
		ms(pct(lags, 50)), ms(pct(lags, 90)), ms(pct(lags, 99)), ms(lags[len(lags)-1]),
		ms(pct(dbLags, 50)), ms(pct(dbLags, 99)), loadAvg())
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(n)/produced.Seconds(), "changes/s")
	b.ReportMetric(ms(pct(lags, 50)), "p50_ms")
	b.ReportMetric(ms(pct(lags, 99)), "p99_ms")
	b.ReportMetric(ms(lags[len(lags)-1]), "max_ms")
	b.ReportMetric(ms(pct(dbLags, 99)), "db_p99_ms")
}

// pct is the q-th percentile of sorted d (nearest rank).
func pct(d []time.Duration, q int) time.Duration {
	i := (len(d)*q + 99) / 100
	return d[max(0, min(len(d), i)-1)]
}

// BenchmarkSyncBacklogDrain cuts the link, queues IHOS_BENCH_DRAIN (default
// 1,000,000) row changes in the appliance's outbox as single-row envelopes
// (IHOS_BENCH_DRAIN_ROWS rows per envelope, default 1: one admin write is one
// transaction of one row) inside local transactions of 1,000 rows (plain SQL
// and one Capture per envelope), restores the link and times the drain until
// the cloud has applied every envelope.
//
// Unlike the other benchmarks, the cloud side runs in a child process (this
// test binary again, running TestSyncBenchCloudProcess): the hub broker, the
// cloud's SQLite replica and StartHub. This process is the appliance alone:
// the leaf broker, the appliance's replica and StartLeaf, so its memory is the
// appliance's. Both processes' VmRSS and RssAnon (/proc/<pid>/status) are
// sampled every 200 ms (the child reports its own every 100 ms) and the maximum
// of each phase is reported. IHOS_BENCH_HEAPPROFILE=file writes a heap profile
// of this (appliance) process when a quarter of the backlog is applied.
func BenchmarkSyncBacklogDrain(b *testing.B) {
	n := benchEnv(b, "IHOS_BENCH_DRAIN", 1_000_000)
	perEnv := benchEnv(b, "IHOS_BENCH_DRAIN_ROWS", 1)
	const perTx = 1000
	ctx, cancel := context.WithCancel(context.Background())
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	b.Cleanup(func() { slog.SetDefault(prev) })
	b.Logf("load average before: %s", loadAvg())

	cloud := startCloudProcess(b)
	px := nettest.NewProxy(b, cloud.leafAddr)
	leaf, err := broker.Start(broker.Options{Name: "h1", StoreDir: b.TempDir(), Domain: "h1", SyncAlways: true,
		LeafRemotes: []string{"nats-leaf://" + px.Addr()}, LeafReconnect: 100 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	p := &benchPair{leaf: leaf, proxy: px, appDB: sqldbtest.SQLite(b), inst: ihos.NewID()}
	if p.app, err = sync.NewReplica(ctx, p.appDB, sync.Appliance, "appliance-h1", entities()); err != nil {
		b.Fatal(err)
	}
	if p.appLink, err = sync.StartLeaf(ctx, leaf, p.app, "h1"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cancel()
		p.appLink.Close()
		leaf.Shutdown()
	})
	benchWait(b, 10*time.Second, "leafnode connected", func() bool { return leaf.Server().NumLeafNodes() == 1 })
	mem := startRSS()
	defer mem.close()
	time.Sleep(time.Second)
	idleRSS, idleAnon, _ := memMB()
	cloudIdle, _ := cloud.mem()
	cloud.phase()

	p.proxy.Cut()
	benchWait(b, 10*time.Second, "leafnode down", func() bool { return leaf.Server().NumLeafNodes() == 0 })
	start := time.Now()
	envs := 0
	for base := 0; base < n; base += perTx {
		if err := p.appDB.Tx(ctx, func(tx *sql.Tx) error {
			refs, err := p.insertDepts(ctx, tx, base, min(perTx, n-base))
			if err != nil {
				return err
			}
			for lo := 0; lo < len(refs); lo += perEnv {
				if err := p.app.Capture(ctx, tx, "h1", refs[lo:min(lo+perEnv, len(refs))]...); err != nil {
					return err
				}
				envs++
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	queued := time.Since(start)
	backlog, _, _ := p.app.Backlog(ctx)
	var outboxBytes int64
	p.appDB.QueryRow(`SELECT (SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM sync_outbox) + (SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM sync_capture)`).Scan(&outboxBytes)
	genRSS, genAnon, genFile := mem.phase()
	b.Logf("queued %d row changes as %d envelopes (%d in the outbox, %.0f MB of payload) in %v while cut (%.0f rows/s); appliance max RSS %.0f MB (anon %.0f MB, file-backed %.0f MB; idle before %.0f MB, anon %.0f MB); load average %s",
		n, envs, backlog, float64(outboxBytes)/1e6, queued.Round(time.Millisecond), float64(n)/queued.Seconds(),
		genRSS, genAnon, genFile, idleRSS, idleAnon, loadAvg())
	if backlog != envs {
		b.Fatalf("outbox and staging hold %d envelopes, want %d", backlog, envs)
	}

	cpu0 := cpuSeconds()
	cloud.phase()
	start = time.Now()
	p.proxy.Restore(b)
	reconnect := benchWait(b, 30*time.Second, "leafnode up", func() bool { return leaf.Server().NumLeafNodes() == 1 })
	first := benchWait(b, 30*time.Second, "first change applied", func() bool { return cloud.applied.Load() > 0 })
	lastLog := time.Now()
	heapAt := int64(envs / 4)
	heapFile := os.Getenv("IHOS_BENCH_HEAPPROFILE")
	var outboxEmpty time.Duration
	for cloud.applied.Load() < int64(envs) {
		if time.Since(start) > 20*time.Minute {
			b.Fatalf("drain: %d of %d envelopes applied after 20 minutes", cloud.applied.Load(), envs)
		}
		if heapFile != "" && cloud.applied.Load() >= heapAt {
			writeHeapProfile(b, heapFile)
			heapFile = ""
		}
		if outboxEmpty == 0 {
			if left, _, _ := p.app.Backlog(ctx); left == 0 {
				outboxEmpty = time.Since(start)
			}
		}
		if time.Since(lastLog) >= 20*time.Second {
			lastLog = time.Now()
			left, _, _ := p.app.Backlog(ctx)
			rss, anon := mem.last()
			crss, canon := cloud.mem()
			b.Logf("  %v: %d applied, %d left in the outbox; appliance RSS %.0f MB (anon %.0f MB), cloud RSS %.0f MB (anon %.0f MB); load average %s",
				time.Since(start).Round(time.Second), cloud.applied.Load(), left, rss, anon, crss, canon, loadAvg())
		}
		time.Sleep(50 * time.Millisecond)
	}
	drained := time.Since(start)
	cpu := cpuSeconds() - cpu0
	drainRSS, drainAnon, drainFile := mem.phase()
	cloudRSS, cloudAnon := cloud.phase()
	if got := cloud.count(b, `SELECT COUNT(*) FROM departments`); got != n {
		b.Fatalf("cloud has %d departments, want %d", got, n)
	}
	b.Logf("drained %d envelopes (%d row changes) in %v (leafnode back after %v, first apply after %v, outbox empty after %v): %.0f envelopes/s, %.0f rows/s; appliance process %.1f s CPU (%.0f µs per envelope), max RSS %.0f MB (anon %.0f MB, file-backed %.0f MB at the max); cloud process (hub + cloud replica) max RSS %.0f MB (anon %.0f MB, %.0f MB idle); load average after: %s",
		envs, n, drained.Round(time.Millisecond), reconnect.Round(time.Millisecond), first.Round(time.Millisecond), outboxEmpty.Round(time.Second),
		float64(envs)/drained.Seconds(), float64(n)/drained.Seconds(), cpu, cpu/float64(envs)*1e6,
		drainRSS, drainAnon, drainFile, cloudRSS, cloudAnon, cloudIdle, loadAvg())
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(queued.Seconds(), "queue_s")
	b.ReportMetric(drained.Seconds(), "drain_s")
	b.ReportMetric(float64(n)/drained.Seconds(), "rows/s")
	b.ReportMetric(max(genRSS, drainRSS), "app_max_rss_MB")
	b.ReportMetric(max(genAnon, drainAnon), "app_max_anon_MB")
	b.ReportMetric(cloudRSS, "cloud_max_rss_MB")
}

func writeHeapProfile(b *testing.B, file string) {
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// cloudProcess is the child process running the cloud side.
type cloudProcess struct {
	leafAddr string
	dbPath   string
	applied  atomic.Int64

	mu              stdsync.Mutex
	rss, anon       float64
	maxRSS, maxAnon float64
}

func (c *cloudProcess) mem() (float64, float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rss, c.anon
}

// phase returns the maxima since the last call and starts new ones.
func (c *cloudProcess) phase() (float64, float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, a := c.maxRSS, c.maxAnon
	c.maxRSS, c.maxAnon = 0, 0
	return r, a
}

// count runs a counting query on the cloud's database (read-only, from this
// process).
func (c *cloudProcess) count(b *testing.B, q string) int {
	db, err := sql.Open("sqlite", "file:"+c.dbPath+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// startCloudProcess runs TestSyncBenchCloudProcess in a child process and
// follows its reports; the child stops when the benchmark ends.
func startCloudProcess(b *testing.B) *cloudProcess {
	b.Helper()
	dir := b.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSyncBenchCloudProcess$", "-test.bench=^$", "-test.count=1")
	cmd.Env = append(os.Environ(), "IHOS_BENCH_CLOUD_DIR="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	c := &cloudProcess{dbPath: filepath.Join(dir, "cloud.db")}
	leafAddr := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			f := strings.Fields(s.Text())
			switch {
			case len(f) == 2 && f[0] == "LEAF":
				leafAddr <- f[1]
			case len(f) == 4 && f[0] == "STATUS":
				n, _ := strconv.ParseInt(f[1], 10, 64)
				rss, _ := strconv.ParseFloat(f[2], 64)
				anon, _ := strconv.ParseFloat(f[3], 64)
				c.applied.Store(n)
				c.mu.Lock()
				c.rss, c.anon = rss, anon
				c.maxRSS, c.maxAnon = max(c.maxRSS, rss), max(c.maxAnon, anon)
				c.mu.Unlock()
			}
		}
	}()
	select {
	case c.leafAddr = <-leafAddr:
	case <-time.After(30 * time.Second):
		b.Fatal("the cloud process did not start in 30 s")
	}
	return c
}

// TestSyncBenchCloudProcess is the cloud side of BenchmarkSyncBacklogDrain,
// run by it in a child process: the hub broker, the cloud's replica and its
// link. It reports the leafnode address, then every 100 ms the envelopes
// applied and its own memory, on stdout, until its stdin closes. In a normal
// test run it skips.
func TestSyncBenchCloudProcess(t *testing.T) {
	dir := os.Getenv("IHOS_BENCH_CLOUD_DIR")
	if dir == "" {
		t.Skip("the cloud side of BenchmarkSyncBacklogDrain, run by it")
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hub, err := broker.Start(broker.Options{Name: "hub", StoreDir: filepath.Join(dir, "hub"), Domain: sync.HubDomain, LeafListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Shutdown()
	db, err := sqldb.Open(ctx, filepath.Join(dir, "cloud.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cloud, err := sync.NewReplica(ctx, db, sync.Cloud, "cloud", entities())
	if err != nil {
		t.Fatal(err)
	}
	link, err := sync.StartHub(ctx, sync.BrokerDial(hub), cloud, "h1")
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	defer cancel()
	fmt.Printf("LEAF %s\n", hub.LeafAddr())
	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(eof) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-eof:
			return
		case <-tick.C:
			st, _ := link.Status(ctx)
			rss, anon, _ := memMB()
			fmt.Printf("STATUS %d %.1f %.1f\n", st.Applied, rss, anon)
		}
	}
}
