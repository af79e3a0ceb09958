package hissim

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"ihos/his/mllp"
)

// Config configures a simulator.
type Config struct {
	DataDir     string        // the SQLite file his-sim.db lives here; seeded with demo data on first start
	MLLPAddr    string        // default "127.0.0.1:0"
	HTTPAddr    string        // default "127.0.0.1:0"
	ResultsTo   string        // MLLP address ORU^R01 results are pushed to; "" keeps them for HTTP polling only
	ResultDelay time.Duration // from order to result; default 5 s, negative for at once
	Logger      *slog.Logger  // default: discard
}

// Mode is how the simulator behaves, as POST /control/mode sets it.
type Mode struct {
	Name    string        // "up", "down", "slow" or "error"
	Delay   time.Duration // slow: how long every answer waits
	AckCode string        // error: MSA-1 of every answer to a non-query message, "AE" (default) or "AR"
	Text    string        // error: the reason given
}

// Mode names.
const (
	ModeUp    = "up"
	ModeDown  = "down"
	ModeSlow  = "slow"
	ModeError = "error"
)

// Received is one message that arrived, as GET /control/messages lists it.
type Received struct {
	ControlID    string    `json:"control_id"`
	Type         string    `json:"type"` // ADT^A04, OMP^O09 …; a JSON message counts as the HL7 type of its event
	Via          string    `json:"via"`  // mllp or http
	PatientHISID string    `json:"patient_his_id"`
	Placer       []string  `json:"placer"`
	Duplicate    bool      `json:"duplicate"`
	AckCode      string    `json:"ack_code"`
	At           time.Time `json:"at"`
}

// Sim is a running HIS simulator.
type Sim struct {
	cfg Config
	log *slog.Logger
	db  *sql.DB
	// group commits the message handlers' transactions together (group.go).
	group *committer

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	modeMu   sync.Mutex // serialises mode changes
	mu       sync.Mutex // guards what follows
	mode     Mode
	mllpAddr string
	mllpSrv  *mllp.Server
	closed   bool

	httpURL string
	httpSrv *http.Server

	todayMu sync.Mutex // serialises ensureToday
	today   string     // the day (yyyyMMdd, Beijing) today's demo registrations were made for

	wakeResults chan struct{} // an order with a result to come was stored
	wakePush    chan struct{} // a result to push was stored, or the mode changed
}

// Start opens (and on first start seeds) the database in cfg.DataDir, starts
// the MLLP and HTTP listeners and the result producer, and returns once both
// listeners accept connections.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	if cfg.MLLPAddr == "" {
		cfg.MLLPAddr = "127.0.0.1:0"
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	switch {
	case cfg.ResultDelay == 0:
		cfg.ResultDelay = 5 * time.Second
	case cfg.ResultDelay < 0:
		cfg.ResultDelay = 0
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "his-sim")
	db, err := openDB(ctx, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := seed(ctx, db, time.Now()); err != nil {
		db.Close()
		return nil, fmt.Errorf("hissim: seed demo data: %w", err)
	}
	if err := seedReports(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("hissim: seed demo reports: %w", err)
	}
	// A restart resumes pending pushes at once rather than after their backoff.
	if _, err := db.ExecContext(ctx, `UPDATE results SET next_try = 0 WHERE push_state = 'pending'`); err != nil {
		db.Close()
		return nil, fmt.Errorf("hissim: %w", err)
	}
	s := &Sim{
		cfg: cfg, log: log, db: db, group: newCommitter(db),
		mode:        Mode{Name: ModeUp},
		wakeResults: make(chan struct{}, 1),
		wakePush:    make(chan struct{}, 1),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.ensureToday(ctx); err != nil {
		s.group.close()
		db.Close()
		return nil, fmt.Errorf("hissim: %w", err)
	}

	ml, err := net.Listen("tcp", cfg.MLLPAddr)
	if err != nil {
		s.group.close()
		db.Close()
		return nil, fmt.Errorf("hissim: MLLP listen: %w", err)
	}
	s.mllpAddr = ml.Addr().String()
	hl, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		ml.Close()
		s.group.close()
		db.Close()
		return nil, fmt.Errorf("hissim: HTTP listen: %w", err)
	}
	s.httpURL = "http://" + hl.Addr().String()
	s.serveMLLP(ml)
	s.httpSrv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		if err := s.httpSrv.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("HTTP server stopped", "err", err)
		}
	}()
	go func() { defer s.wg.Done(); s.produceResults() }()
	go func() { defer s.wg.Done(); s.pushResults() }()
	s.log.Info("HIS simulator started", "mllp", s.mllpAddr, "http", s.httpURL, "data", cfg.DataDir, "results_to", cfg.ResultsTo)
	return s, nil
}

// serveMLLP starts an MLLP server on l. Called with s.mu held or before the
// Sim is shared.
func (s *Sim) serveMLLP(l net.Listener) {
	srv := &mllp.Server{Handler: s.handleHL7, Logger: s.log}
	s.mllpSrv = srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(l); err != nil && !s.isClosed() {
			s.log.Debug("MLLP server stopped", "err", err)
		}
	}()
}

func (s *Sim) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// MLLPAddr is the address the MLLP listener is bound to (it stays the same
// across mode down and up).
func (s *Sim) MLLPAddr() string { return s.mllpAddr }

// HTTPURL is the base URL of the HTTP API and the control API.
func (s *Sim) HTTPURL() string { return s.httpURL }

// currentMode returns the mode.
func (s *Sim) currentMode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// SetMode switches the mode. Down closes the MLLP listener and its
// connections (connections are refused) and makes /his/api answer 503; any
// other mode listens again on the same address. Errors (an unknown mode, the
// address taken meanwhile) are logged; use ChangeMode to see them.
func (s *Sim) SetMode(m Mode) {
	if err := s.ChangeMode(m); err != nil {
		s.log.Error("set mode", "mode", m.Name, "err", err)
	}
}

// ChangeMode is SetMode that reports its error.
func (s *Sim) ChangeMode(m Mode) error {
	switch m.Name {
	case ModeUp, ModeDown, ModeSlow:
	case ModeError:
		switch m.AckCode {
		case "":
			m.AckCode = "AE"
		case "AE", "AR":
		default:
			return fmt.Errorf("%w: ack_code must be AE or AR, not %q", errBadMode, m.AckCode)
		}
		if m.Text == "" {
			m.Text = "HIS 模拟故障：拒绝处理"
		}
	default:
		return fmt.Errorf("%w: unknown mode %q (up, down, slow, error)", errBadMode, m.Name)
	}
	if m.Delay < 0 {
		m.Delay = 0
	}
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("simulator closed")
	}
	old := s.mode
	srv := s.mllpSrv
	if m.Name == ModeDown {
		s.mllpSrv = nil
	}
	// The mode changes before the listener closes, so that an answer still
	// being written on a closing connection is not counted as accepted twice.
	s.mode = m
	s.mu.Unlock()
	switch {
	case m.Name == ModeDown && srv != nil:
		srv.Close()
	case m.Name != ModeDown && srv == nil:
		var l net.Listener
		var err error
		for range 50 { // the old port may linger a moment
			if l, err = net.Listen("tcp", s.mllpAddr); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			s.mu.Lock()
			s.mode = old
			s.mu.Unlock()
			return fmt.Errorf("listen again on %s: %w", s.mllpAddr, err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			l.Close()
			return errors.New("simulator closed")
		}
		s.serveMLLP(l)
		s.mu.Unlock()
	}
	s.log.Info("mode changed", "from", old.Name, "to", m.Name, "delay", m.Delay, "ack_code", m.AckCode, "text", m.Text)
	wake(s.wakePush)
	return nil
}

// Close stops the listeners and background work and closes the database.
// Everything acknowledged is on disk: Start on the same DataDir carries on.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.mllpSrv
	s.mllpSrv = nil
	s.mu.Unlock()
	s.cancel()
	if srv != nil {
		srv.Close()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.httpSrv.Shutdown(sctx); err != nil {
		s.httpSrv.Close()
	}
	s.wg.Wait()
	s.group.close()
	s.log.Info("HIS simulator stopped")
	return s.db.Close()
}

// Received lists the messages that arrived, in arrival order. msgType
// filters: "" for all, "OMP^O09" for one type and trigger, "OMP" for every
// trigger of a type.
func (s *Sim) Received(msgType string) []Received {
	out, err := s.received(context.Background(), msgType)
	if err != nil {
		s.log.Error("list received messages", "err", err)
	}
	return out
}

func (s *Sim) received(ctx context.Context, msgType string) ([]Received, error) {
	q := `SELECT control_id, type, via, patient_his_id, placer, duplicate, ack_code, at FROM arrivals`
	var args []any
	switch {
	case msgType == "":
	case strings.Contains(msgType, "^"):
		q += ` WHERE type = ?`
		args = append(args, msgType)
	default:
		q += ` WHERE type = ? OR type LIKE ?`
		args = append(args, msgType, msgType+"^%")
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY seq`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Received{}
	for rows.Next() {
		var r Received
		var placer, at string
		if err := rows.Scan(&r.ControlID, &r.Type, &r.Via, &r.PatientHISID, &placer, &r.Duplicate, &r.AckCode, &at); err != nil {
			return out, err
		}
		r.Placer = strings.Fields(placer)
		if r.Placer == nil {
			r.Placer = []string{}
		}
		r.At = parseDB(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// wake signals a background loop without blocking.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// pause waits d (slow mode), or less when ctx ends.
func pause(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
