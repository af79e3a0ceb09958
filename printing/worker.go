package printing

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"time"

	"ihos"
	"ihos/drivers/escpos"
	"ihos/drivers/transport"
)

// Printer states shown in the console (LiveStatus.State).
const (
	StateOnline    = "online"
	StatePaperOut  = "paper_out"
	StateCoverOpen = "cover_open"
	StateOffline   = "offline"
	StateError     = "error"
	StateNoStatus  = "no_status" // a one-way transport (the Windows spooler)
	StateUnchecked = "unchecked" // not asked yet
	StateStopped   = "stopped"   // disabled: no worker runs
)

// StateLabels names the printer states for staff.
var StateLabels = map[string]string{
	StateOnline: "在线", StatePaperOut: "缺纸", StateCoverOpen: "纸仓盖打开", StateOffline: "离线", StateError: "故障",
	StateNoStatus: "无法查询状态（单向连接）", StateUnchecked: "尚未检查", StateStopped: "已停用",
}

// Print confirmation support of a printer (LiveStatus.Confirm): whether it
// answers process ID requests (see the package comment).
const (
	ConfirmUnchecked   = ""            // not found out yet
	ConfirmSupported   = "supported"   // jobs are confirmed by the printer
	ConfirmUnsupported = "unsupported" // the status-only fallback is used
)

// ConfirmLabels names the confirmation support for staff.
var ConfirmLabels = map[string]string{
	ConfirmUnchecked: "尚未检查打印完成确认", ConfirmSupported: "支持打印完成确认", ConfirmUnsupported: "不支持打印完成确认",
}

// LiveStatus is what is known about a printer now.
type LiveStatus struct {
	State        string    `json:"state"`
	Label        string    `json:"label"`
	PaperNearEnd bool      `json:"paper_near_end"`
	CheckedAt    time.Time `json:"checked_at,omitzero"`
	LastError    string    `json:"last_error"`
	// Confirm tells whether the printer confirms each printed ticket
	// (ConfirmSupported) or only reports its status (ConfirmUnsupported),
	// as found out by its worker since it started.
	Confirm      string `json:"confirm"`
	ConfirmLabel string `json:"confirm_label"`
}

// Live returns the last known status of printer id.
func (s *Service) Live(id string) LiveStatus {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.live[id]; l != nil {
		return *l
	}
	return LiveStatus{State: StateUnchecked, Label: StateLabels[StateUnchecked]}
}

func (s *Service) setLive(id string, l LiveStatus) {
	l.Label = StateLabels[l.State]
	l.ConfirmLabel = ConfirmLabels[l.Confirm]
	s.mu.Lock()
	s.live[id] = &l
	s.mu.Unlock()
}

// fault names what keeps st from printing ("" when it can print).
func fault(st escpos.Status) (state, msg string) {
	switch {
	case st.CoverOpen:
		return StateCoverOpen, "纸仓盖打开"
	case st.PaperOut:
		return StatePaperOut, "缺纸"
	case st.Error:
		return StateError, "打印机故障（如切刀卡纸）"
	case !st.Online:
		return StateOffline, "打印机离线"
	}
	return StateOnline, ""
}

// Run recovers jobs a stopped service left in flight, then keeps one worker
// running per enabled printer until ctx ends. Workers finish the job they are
// sending before Run returns.
func (s *Service) Run(ctx context.Context) {
	s.init()
	for {
		err := s.recoverInFlight(ctx)
		if err == nil {
			break
		}
		s.Logger.Error("printing: recover jobs in flight", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.RefreshInterval):
		}
	}
	defer s.stopAll()
	for {
		if err := s.reconcile(ctx); err != nil && ctx.Err() == nil {
			s.Logger.Error("printing: read printers", "err", err)
		}
		t := time.NewTimer(s.RefreshInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.notify:
			t.Stop()
		case <-t.C:
		}
	}
}

// recoverInFlight turns jobs left "printing" by a stopped service into
// "unknown": their bytes may have been printed, and only a person at the
// printer can tell.
func (s *Service) recoverInFlight(ctx context.Context) error {
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		now := ihos.FormatTime(time.Now())
		_, err := tx.ExecContext(ctx, `UPDATE print_jobs SET status = ?, last_error = ?, updated_at = ? WHERE status = ?`,
			StatusUnknown, "服务在打印过程中停止，无法确认是否已打印：请查看打印机后确认", now, StatusPrinting)
		return err
	})
}

// reconcile starts workers for enabled printers, restarts those whose
// configuration changed and stops the others. Jobs of deleted printers fail:
// they can no longer print and must not look as if they were waiting.
func (s *Service) reconcile(ctx context.Context) error {
	ps, err := s.printers(ctx, true)
	if err != nil {
		return err
	}
	want := map[string]Printer{}
	for _, p := range ps {
		want[p.ID] = p
	}
	var stop []*worker
	var start []Printer
	s.mu.Lock()
	for id, w := range s.workers {
		if p, ok := want[id]; !ok || p != w.p {
			stop = append(stop, w)
			delete(s.workers, id)
		}
	}
	for _, p := range ps {
		if s.workers[p.ID] == nil {
			start = append(start, p)
		}
	}
	s.mu.Unlock()
	for _, w := range stop {
		w.stop()
		if _, ok := want[w.p.ID]; !ok {
			s.setLive(w.p.ID, LiveStatus{State: StateStopped})
		}
	}
	for _, p := range start {
		w := newWorker(ctx, s, p)
		s.mu.Lock()
		s.workers[p.ID] = w
		s.mu.Unlock()
	}
	return s.failOrphans(ctx)
}

// failOrphans marks the waiting jobs of deleted printers failed.
func (s *Service) failOrphans(ctx context.Context) error {
	var n int
	const orphans = ` FROM print_jobs WHERE status IN ('queued', 'unknown') AND printer_id IN (SELECT id FROM printers WHERE deleted_at IS NOT NULL)`
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*)`+orphans).Scan(&n); err != nil || n == 0 {
		return err
	}
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		now := ihos.FormatTime(time.Now())
		_, err := tx.ExecContext(ctx, `UPDATE print_jobs SET status = ?, last_error = ?, updated_at = ? WHERE status IN ('queued', 'unknown')
			AND printer_id IN (SELECT id FROM printers WHERE deleted_at IS NOT NULL)`, StatusFailed, "打印机已删除", now)
		return err
	})
}

func (s *Service) stopAll() {
	s.mu.Lock()
	ws := make([]*worker, 0, len(s.workers))
	for id, w := range s.workers {
		ws = append(ws, w)
		delete(s.workers, id)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.cancel()
	}
	for _, w := range ws {
		<-w.done
	}
}

// worker prints one printer's jobs in order. Only its goroutine touches conn.
type worker struct {
	s      *Service
	p      Printer
	kickc  chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	conn       transport.Conn
	connCancel context.CancelFunc // aborts conn's I/O (a write that does not finish)
	backoff    time.Duration
	lastCheck  time.Time
	kicked     bool
	confirm    string // ConfirmUnchecked, ConfirmSupported or ConfirmUnsupported
	probes     int    // probes sent, for their IDs
}

// setLive records the printer's live status with its confirmation support.
func (w *worker) setLive(l LiveStatus) {
	l.Confirm = w.confirm
	w.s.setLive(w.p.ID, l)
}

// setConfirm records whether the printer answers process ID requests.
func (w *worker) setConfirm(c string) {
	if c == w.confirm {
		return
	}
	w.confirm = c
	if c == ConfirmSupported {
		w.s.Logger.Info("printing: printer confirms printed tickets (ESC/POS process ID)", "printer", w.p.Name)
	} else {
		w.s.Logger.Warn("printing: printer does not answer process ID requests; a fault while printing needs a person to confirm",
			"printer", w.p.Name)
	}
	w.s.mu.Lock()
	if l := w.s.live[w.p.ID]; l != nil {
		l.Confirm, l.ConfirmLabel = c, ConfirmLabels[c]
	}
	w.s.mu.Unlock()
}

func newWorker(ctx context.Context, s *Service, p Printer) *worker {
	wctx, cancel := context.WithCancel(ctx)
	w := &worker{s: s, p: p, kickc: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go w.run(wctx)
	return w
}

func (w *worker) wake() {
	select {
	case w.kickc <- struct{}{}:
	default:
	}
}

func (w *worker) stop() {
	w.cancel()
	<-w.done
}

func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	defer w.closeConn()
	for {
		wait := w.step(ctx)
		if ctx.Err() != nil {
			return
		}
		w.kicked = false
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.kickc:
			t.Stop()
			w.kicked = true
		case <-t.C:
		}
	}
}

// head is the first job of the lane that is not finished.
type head struct {
	id, status string
	next       time.Time
}

func (w *worker) head(ctx context.Context) (head, bool, error) {
	var h head
	var next string
	err := w.s.DB.QueryRowContext(ctx, `SELECT id, status, next_attempt_at FROM print_jobs
		WHERE printer_id = ? AND status IN ('queued', 'printing', 'unknown') ORDER BY seq LIMIT 1`, w.p.ID).Scan(&h.id, &h.status, &next)
	if errors.Is(err, sql.ErrNoRows) {
		return h, false, nil
	}
	if err != nil {
		return h, false, err
	}
	h.next, _ = ihos.ParseTime(next)
	return h, true, nil
}

// step does the next thing the lane needs and returns how long to wait
// before the following one (0: at once). A kick ends the wait early.
func (w *worker) step(ctx context.Context) time.Duration {
	interval := w.s.StatusInterval
	h, ok, err := w.head(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.s.Logger.Error("printing: read queue", "printer", w.p.Name, "err", err)
		}
		return interval
	}
	now := time.Now()
	poll := func() time.Duration {
		if now.Sub(w.lastCheck) >= interval {
			w.check(ctx)
		}
		return max(interval-time.Since(w.lastCheck), time.Millisecond)
	}
	switch {
	case !ok || h.status == StatusUnknown:
		// Idle, or held until a person confirms the head job: keep the
		// console's status fresh.
		return poll()
	case h.status == StatusPrinting:
		// Only when recording an outcome failed: the bytes may be out.
		w.settle(ctx, h.id, StatusUnknown, "未能记录打印结果，无法确认是否已打印：请查看打印机后确认")
		return 0
	case h.next.After(now) && !w.kicked:
		// Backing off. A printer that answers is watched so that it resumes
		// as soon as its paper is back; an unreachable one is dialled only at
		// the backoff's pace.
		if w.conn != nil && now.Sub(w.lastCheck) >= interval && w.check(ctx) {
			return w.attempt(ctx, h.id)
		}
		wait := h.next.Sub(now)
		if w.conn != nil {
			wait = min(wait, max(interval-time.Since(w.lastCheck), time.Millisecond))
		}
		return wait
	}
	return w.attempt(ctx, h.id)
}

// check asks the printer's status for the console and reports whether it can
// print.
func (w *worker) check(ctx context.Context) bool {
	st, err := w.status(ctx)
	switch {
	case errors.Is(err, transport.ErrNoStatus):
		return true
	case err != nil:
		return false
	}
	_, msg := fault(st)
	return msg == ""
}

// status asks the printer's status, opening the connection when needed, and
// records it as the live status. A kept connection that fails is replaced by
// a fresh one once: printers close idle connections and forget them when
// switched off and on.
func (w *worker) status(ctx context.Context) (escpos.Status, error) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	reused := w.conn != nil
	st, err := w.askStatus(sctx)
	if err != nil && reused && !errors.Is(err, transport.ErrNoStatus) && sctx.Err() == nil {
		w.closeConn()
		st, err = w.askStatus(sctx)
	}
	w.lastCheck = time.Now()
	l := LiveStatus{CheckedAt: w.lastCheck.UTC()}
	switch {
	case errors.Is(err, transport.ErrNoStatus):
		l.State = StateNoStatus
	case err != nil:
		w.closeConn()
		l.State, l.LastError = StateOffline, ihos.ErrorMessage(err)
	default:
		l.State, l.LastError = fault(st)
		l.PaperNearEnd = st.PaperNearEnd
	}
	w.setLive(l)
	return st, err
}

func (w *worker) askStatus(ctx context.Context) (escpos.Status, error) {
	if w.conn == nil {
		// A transport binds the context given to Open to the whole
		// connection, so it gets one that lives as long as the worker's use
		// of it (not one request's), with a cancel of its own that aborts a
		// write that does not finish. Dialling is bounded by the transport.
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c, err := w.s.Open(cctx, w.p.Transport, w.p.Address)
		if err != nil {
			cancel()
			return escpos.Status{}, err
		}
		w.conn, w.connCancel = c, cancel
	}
	return w.conn.Status(ctx)
}

func (w *worker) closeConn() {
	if w.conn != nil {
		w.conn.Close()
		w.connCancel()
		w.conn, w.connCancel = nil, nil
	}
}

// nextBackoff doubles the lane's backoff within MinBackoff..MaxBackoff and
// returns a jittered wait of half to all of it, so printers that failed
// together do not retry together.
func (w *worker) nextBackoff() time.Duration {
	b := min(max(2*w.backoff, w.s.MinBackoff), w.s.MaxBackoff)
	w.backoff = b
	return b/2 + rand.N(b/2+1)
}

// attempt sends job id once (see the package comment) and returns how long
// the lane waits before its next step.
func (w *worker) attempt(ctx context.Context, id string) time.Duration {
	// Once begun, an attempt is finished and recorded even if the service is
	// stopping: the bytes may already be on their way.
	jctx := context.WithoutCancel(ctx)

	// 1. The printer must be ready before anything is sent.
	st, err := w.status(ctx)
	noStatus := errors.Is(err, transport.ErrNoStatus)
	if err != nil && !noStatus {
		return w.hold(jctx, id, "打印机离线："+ihos.ErrorMessage(err))
	}
	if _, msg := fault(st); err == nil && msg != "" {
		return w.hold(jctx, id, msg)
	}
	if noStatus {
		w.setConfirm(ConfirmUnsupported)
	}
	if w.confirm == ConfirmUnchecked {
		if wait, ok := w.probe(ctx, id); !ok {
			return wait
		}
	}

	// 2. From this commit on, a crash leaves the job for a person to settle.
	job, ok, err := w.markPrinting(jctx, id)
	if err != nil {
		w.s.Logger.Error("printing: mark job printing", "printer", w.p.Name, "job", id, "err", err)
		return w.s.StatusInterval
	}
	if !ok {
		return 0 // cancelled meanwhile
	}
	data := job.data
	pid := processID(job.seq, job.attempt)
	if w.confirm == ConfirmSupported {
		cmd, _ := escpos.ProcessIDCommand(pid) // digits: always valid
		data = append(data[:len(data):len(data)], cmd...)
	}

	// 3. Send the ticket (and the process ID request); a write that does
	// not finish in time is aborted.
	n, err := w.write(data)
	if err != nil {
		msg := ihos.ErrorMessage(err)
		w.closeConn()
		w.setLive(LiveStatus{State: StateOffline, CheckedAt: time.Now().UTC(), LastError: msg})
		if n < len(job.data) {
			// The cut is among the bytes the printer did not get: no complete
			// ticket came out, so the whole ticket is sent again.
			w.settle(jctx, id, StatusQueued, "发送中断，稍后重新发送："+msg)
			return w.nextBackoff()
		}
		w.settle(jctx, id, StatusUnknown, "发送后连接中断，无法确认是否已打印："+msg)
		return 0
	}
	if w.s.wrote != nil {
		w.s.wrote(id)
	}

	// 4. Learn the outcome: the printer's confirmation, or its status.
	switch {
	case noStatus:
		w.settle(jctx, id, StatusPrinted, "")
		w.backoff = 0
		return 0
	case w.confirm == ConfirmSupported:
		return w.await(ctx, jctx, id, pid)
	}
	sctx, cancel := context.WithTimeout(jctx, 5*time.Second)
	st, err = w.conn.Status(sctx)
	cancel()
	w.lastCheck = time.Now()
	switch {
	case errors.Is(err, transport.ErrNoStatus):
	case err != nil:
		msg := ihos.ErrorMessage(err)
		w.closeConn()
		w.setLive(LiveStatus{State: StateOffline, CheckedAt: w.lastCheck.UTC(), LastError: msg})
		w.settle(jctx, id, StatusUnknown, "打印后打印机无响应，无法确认是否已打印："+msg)
		return 0
	default:
		state, msg := fault(st)
		w.setLive(LiveStatus{State: state, CheckedAt: w.lastCheck.UTC(), LastError: msg, PaperNearEnd: st.PaperNearEnd})
		if msg != "" {
			w.settle(jctx, id, StatusUnknown, "打印过程中"+msg+"：请查看打印机，凭条完整打出请点“已打印”，否则点“重新打印”")
			return 0
		}
	}
	w.settle(jctx, id, StatusPrinted, "")
	w.backoff = 0
	return 0
}

// write writes data to the connection, aborting a write that does not
// finish in time (a printer that stopped reading).
func (w *worker) write(data []byte) (int, error) {
	timeout := 15*time.Second + time.Duration(len(data))*time.Second/900 // 9600 baud is ~960 bytes/s
	abort := time.AfterFunc(timeout, w.connCancel)
	defer abort.Stop()
	return w.conn.Write(data)
}

// processID is the process ID of attempt a of the job numbered seq: four
// digits, the last three of seq and the last of a, so that the response to
// an earlier job or an earlier attempt of this one is never taken for this
// attempt's (jobs are confirmed one at a time, in order).
func processID(seq int64, a int) [4]byte {
	n := int((seq%1000+1000)%1000)*10 + (a%10+10)%10
	return [4]byte{'0' + byte(n/1000), '0' + byte(n/100%10), '0' + byte(n/10%10), '0' + byte(n%10)}
}

// nextProbeID is the process ID of a probe: "P" and three digits.
func (w *worker) nextProbeID() [4]byte {
	w.probes++
	n := w.probes % 1000
	return [4]byte{'P', '0' + byte(n/100), '0' + byte(n/10%10), '0' + byte(n%10)}
}

// sendProbe sends a process ID request with no print data before it.
func (w *worker) sendProbe() ([4]byte, error) {
	id := w.nextProbeID()
	cmd, _ := escpos.ProcessIDCommand(id)
	_, err := w.write(cmd)
	return id, err
}

// expired is a context that is over: WaitProcessed with it only looks at
// the responses already received.
var expired = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// probe finds out whether a printer that is ready answers process ID
// requests: it sends one with no print data before it, which a printer
// that implements the command answers at once. No answer within
// ConfirmGrace while the printer still reports no fault means it does not.
// probe reports false, with the wait before the lane's next step, when it
// could not tell (the printer faulted meanwhile, or the connection broke)
// and job id stays queued.
func (w *worker) probe(ctx context.Context, id string) (time.Duration, bool) {
	jctx := context.WithoutCancel(ctx)
	c, ok := w.conn.(transport.Confirmer)
	if !ok {
		w.setConfirm(ConfirmUnsupported)
		return 0, true
	}
	pid, err := w.sendProbe()
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, w.s.ConfirmGrace)
		err = c.WaitProcessed(wctx, pid)
		cancel()
	}
	switch {
	case err == nil:
		w.setConfirm(ConfirmSupported)
		return 0, true
	case errors.Is(err, transport.ErrNoStatus):
		w.setConfirm(ConfirmUnsupported)
		return 0, true
	case ctx.Err() != nil:
		return 0, false
	case !errors.Is(err, context.DeadlineExceeded):
		msg := ihos.ErrorMessage(err)
		w.closeConn()
		w.setLive(LiveStatus{State: StateOffline, CheckedAt: time.Now().UTC(), LastError: msg})
		return w.hold(jctx, id, "打印机离线："+msg), false
	}
	st, err := w.status(ctx)
	if err != nil {
		return w.hold(jctx, id, "打印机离线："+ihos.ErrorMessage(err)), false
	}
	if _, msg := fault(st); msg != "" {
		return w.hold(jctx, id, msg), false
	}
	w.setConfirm(ConfirmUnsupported)
	return 0, true
}

// maxSilentProbes is how many probes a printer that reports no fault may
// leave unanswered, one per ConfirmGrace, before a job it did not confirm
// is left for a person: it no longer answers process ID requests (it was
// replaced by another model, say), or it is still busy with a very long
// ticket.
const maxSilentProbes = 3

// await waits for the process ID response of job id, which was just sent
// with process ID pid, and records the outcome (see the package comment):
//
//   - the response: printed;
//   - a later probe answered and pid not: the printer processed everything
//     up to the probe without processing the job, so it cleared it (on a
//     fault, typically): the job is queued to be sent again;
//   - the connection broke, the service stopped, or no probe answered for
//     maxSilentProbes rounds while the printer reported no fault: unknown.
//
// While the printer reports a fault it waits: a printer that keeps its
// buffer finishes the ticket once the fault is cleared.
func (w *worker) await(ctx, jctx context.Context, id string, pid [4]byte) time.Duration {
	c := w.conn.(transport.Confirmer)
	slice := min(w.s.StatusInterval, 500*time.Millisecond)
	var (
		probes  [][4]byte // probes sent after the job
		silent  int       // probes sent since the printer was last seen faulted
		healthy = time.Now()
		lastMsg string
	)
	broken := func(err error, what string) time.Duration {
		msg := ihos.ErrorMessage(err)
		w.closeConn()
		w.setLive(LiveStatus{State: StateOffline, CheckedAt: time.Now().UTC(), LastError: msg})
		w.settle(jctx, id, StatusUnknown, what+"，无法确认是否已打印："+msg)
		return 0
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, slice)
		err := c.WaitProcessed(wctx, pid)
		cancel()
		switch {
		case err == nil:
			if lastMsg != "" {
				w.s.Logger.Info("printing: printer finished a ticket after a fault", "printer", w.p.Name, "job", id, "fault", lastMsg)
			}
			w.settle(jctx, id, StatusPrinted, "")
			w.backoff = 0
			return 0
		case ctx.Err() != nil:
			w.settle(jctx, id, StatusUnknown, "服务停止时打印机尚未确认打印完成：请查看打印机后确认")
			return 0
		case !errors.Is(err, context.DeadlineExceeded):
			return broken(err, "等待打印完成确认时连接中断")
		}
		for _, p := range probes {
			if c.WaitProcessed(expired, p) == nil {
				why := "打印机未打印该凭条（可能在打印过程中缺纸、开盖或离线）"
				if lastMsg != "" {
					why = "打印过程中" + lastMsg + "，打印机未打印该凭条"
				}
				w.s.Logger.Warn("printing: printer did not print a ticket; sending it again", "printer", w.p.Name, "job", id, "fault", lastMsg)
				w.settle(jctx, id, StatusQueued, why+"，已自动重新发送")
				return 0
			}
		}
		sctx, cancel := context.WithTimeout(jctx, 5*time.Second)
		st, err := w.conn.Status(sctx)
		cancel()
		w.lastCheck = time.Now()
		if err != nil {
			return broken(err, "等待打印完成确认时打印机无响应")
		}
		state, msg := fault(st)
		w.setLive(LiveStatus{State: state, CheckedAt: w.lastCheck.UTC(), LastError: msg, PaperNearEnd: st.PaperNearEnd})
		if msg != "" {
			if msg != lastMsg || !healthy.IsZero() {
				w.note(jctx, id, "打印过程中"+msg+"：恢复后自动确认是否已打印")
			}
			lastMsg, healthy, silent = msg, time.Time{}, 0
			continue
		}
		if healthy.IsZero() {
			healthy = time.Now()
			continue
		}
		if time.Since(healthy) < w.s.ConfirmGrace {
			continue
		}
		if silent == maxSilentProbes {
			w.setConfirm(ConfirmUnsupported)
			w.settle(jctx, id, StatusUnknown, "打印机未确认打印完成，无法确认是否已打印：请查看打印机后确认")
			return 0
		}
		p, err := w.sendProbe()
		if err != nil {
			return broken(err, "等待打印完成确认时连接中断")
		}
		probes = append(probes, p)
		silent++
		healthy = time.Now()
	}
}

// note updates the last error of a job being printed, for the console.
func (w *worker) note(ctx context.Context, id, msg string) {
	err := w.s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE print_jobs SET last_error = ?, updated_at = ? WHERE id = ? AND status = ?`,
			ihos.Truncate(msg, 500), ihos.FormatTime(time.Now()), id, StatusPrinting)
		return err
	})
	if err != nil {
		w.s.Logger.Error("printing: record job note", "printer", w.p.Name, "job", id, "err", err)
	}
}

// hold keeps a queued job back after the printer was found not ready.
func (w *worker) hold(ctx context.Context, id, msg string) time.Duration {
	wait := w.nextBackoff()
	err := w.s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE print_jobs SET last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = ?`,
			ihos.Truncate(msg, 500), ihos.FormatTime(time.Now().Add(wait)), ihos.FormatTime(time.Now()), id, StatusQueued)
		return err
	})
	if err != nil {
		w.s.Logger.Error("printing: record wait", "printer", w.p.Name, "job", id, "err", err)
	}
	return wait
}

// sending is a job claimed for sending.
type sending struct {
	data    []byte
	seq     int64
	attempt int // 1 for the first
}

// markPrinting claims a queued job for sending and returns its bytes; false
// when it is no longer queued (cancelled meanwhile).
func (w *worker) markPrinting(ctx context.Context, id string) (sending, bool, error) {
	var j sending
	if err := w.s.DB.QueryRowContext(ctx, `SELECT data, seq, attempts FROM print_jobs WHERE id = ?`, id).Scan(&j.data, &j.seq, &j.attempt); err != nil {
		return j, false, err
	}
	j.attempt++
	var n int64
	err := w.s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE print_jobs SET status = ?, attempts = attempts + 1, updated_at = ? WHERE id = ? AND status = ?`,
			StatusPrinting, ihos.FormatTime(time.Now()), id, StatusQueued)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return j, n == 1, err
}

// settle records the outcome of a send. It is retried for a while: a job left
// "printing" is later taken as unknown, which is safe but needs a person.
func (w *worker) settle(ctx context.Context, id, to, msg string) {
	now := time.Now()
	q := `UPDATE print_jobs SET status = ?, last_error = ?, updated_at = ?`
	args := []any{to, ihos.Truncate(msg, 500), ihos.FormatTime(now)}
	switch to {
	case StatusPrinted:
		q += `, printed_at = ?`
		args = append(args, ihos.FormatTime(now))
	case StatusQueued:
		q += `, next_attempt_at = ?`
		args = append(args, ihos.FormatTime(now.Add(w.backoff)))
	}
	args = append(args, id, StatusPrinting)
	var err error
	for try := 0; try < 5; try++ {
		err = w.s.DB.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, q+` WHERE id = ? AND status = ?`, args...)
			return err
		})
		if err == nil {
			if w.s.settled != nil {
				w.s.settled(id)
			}
			return
		}
		time.Sleep(time.Duration(try+1) * 100 * time.Millisecond)
	}
	w.s.Logger.Error("printing: record job outcome", "printer", w.p.Name, "job", id, "status", to, "err", err)
}

// PrinterView is a printer with its live status and queue, for the console
// and the API.
type PrinterView struct {
	Printer
	Live    LiveStatus `json:"live"`
	Queued  int        `json:"queued"`  // waiting (including the one being sent)
	Unknown int        `json:"unknown"` // waiting for a person to confirm
}

// Printers lists the printers (enabled or not) with their live status and
// queue depth.
func (s *Service) Printers(ctx context.Context) ([]PrinterView, error) {
	ps, err := s.printers(ctx, false)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	type key struct{ id, status string }
	counts := map[key]int{}
	rows, err := s.DB.QueryContext(ctx, `SELECT printer_id, status, COUNT(*) FROM print_jobs WHERE status IN ('queued', 'printing', 'unknown') GROUP BY printer_id, status`)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k key
		var n int
		if err := rows.Scan(&k.id, &k.status, &n); err != nil {
			return nil, ihos.Internal(err)
		}
		counts[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	views := make([]PrinterView, 0, len(ps))
	for _, p := range ps {
		v := PrinterView{Printer: p, Live: s.Live(p.ID),
			Queued:  counts[key{p.ID, StatusQueued}] + counts[key{p.ID, StatusPrinting}],
			Unknown: counts[key{p.ID, StatusUnknown}]}
		if !p.Enabled {
			v.Live = LiveStatus{State: StateStopped, Label: StateLabels[StateStopped]}
		}
		views = append(views, v)
	}
	return views, nil
}

// TransportLabels names the transports for staff.
var TransportLabels = map[string]string{
	transport.TCP: "网络（TCP 9100）", transport.Serial: "串口", transport.USBLP: "USB 打印机设备",
	transport.Spooler: "Windows 打印队列", transport.USB: "USB 直连",
}
