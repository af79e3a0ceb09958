package svs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"ihos"
	"ihos/certs/ca"
	"ihos/certs/tsa"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
)

// MaxBody is the largest request body the API accepts.
const MaxBody = 16 << 20

// Options tunes a Server. The zero value is usable.
type Options struct {
	// Syslog forwards every log entry as an RFC 5424 line: "udp://host:514" or
	// "tcp://host:514" (octet-counted framing, RFC 6587). Empty: no syslog.
	Syslog string
	// Hostname is the HOSTNAME of syslog lines; default os.Hostname().
	Hostname string
	// CRLRefresh is how often the CRLs of imported trust chains are fetched
	// again; 0 means one hour, a negative value turns the schedule off
	// (RefreshCRLs can still be called).
	CRLRefresh time.Duration
	// HTTPClient fetches CRLs and asks OCSP responders; default: a client with
	// a 10 s timeout.
	HTTPClient *http.Client
	// LogBatch is the most log entries one transaction of the signature log
	// inserts; default 1000.
	LogBatch int
	// LogLinger is how long the signature-log writer waits for more entries
	// before committing, when entries arrive concurrently (a lone caller never
	// waits); default 2 ms, negative: never.
	LogLinger time.Duration
}

// Server is the signing/verification service. Fill the exported fields, call
// Start, then Routes.
type Server struct {
	DB   *sqldb.DB
	CA   *ca.CA         // the hospital CA: the "hospital" trust chain, its CRL and OCSP
	Keys *KeyStore      // the named signing keys
	TSA  *tsa.Authority // may be nil: no timestamps
	Now  func() time.Time
	// Ready gates signing and timestamps (the NTP check): while it returns an
	// error, sign, sign-message and timestamp answer 503 with its text.
	Ready   func() error
	Options Options

	started atomic.Bool
	enabled atomic.Bool
	apps    atomic.Pointer[appIndex]
	trust   atomic.Pointer[trustSet]
	certs   certCache
	log     *logWriter
	syslog  *syslogWriter
	client  *http.Client
	kick    chan struct{} // asks the CRL schedule for a refresh now

	reload sync.Mutex // serialises rebuilding the in-memory indexes
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

// Setting names in svs_settings.
const settingEnabled = "enabled"

// Start loads the applications, trust chains and the service switch, and starts
// the signature-log writer, the syslog forwarder and the CRL schedule. Close
// stops them.
func (s *Server) Start(ctx context.Context) error {
	if s.DB == nil || s.CA == nil || s.Keys == nil {
		return errors.New("svs: Server needs DB, CA and Keys")
	}
	if s.started.Load() {
		return errors.New("svs: already started")
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	s.client = s.Options.HTTPClient
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	on, err := s.readEnabled(ctx)
	if err != nil {
		return err
	}
	s.enabled.Store(on)
	if err := s.reloadApps(ctx); err != nil {
		return err
	}
	if err := s.reloadTrust(ctx); err != nil {
		return err
	}
	if s.Options.Syslog != "" {
		host := s.Options.Hostname
		if host == "" {
			host, _ = os.Hostname()
		}
		if s.syslog, err = newSyslogWriter(s.Options.Syslog, host); err != nil {
			return err
		}
	}
	s.kick = make(chan struct{}, 1)
	bctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	s.log = newLogWriter(s.DB, s.Options.LogBatch, s.Options.LogLinger, s.syslog)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.log.run()
	}()
	if every := s.Options.CRLRefresh; every >= 0 {
		if every == 0 {
			every = time.Hour
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.refreshLoop(bctx, every)
		}()
	}
	s.started.Store(true)
	return nil
}

// Close stops the background work; log entries already handed over are
// written first.
func (s *Server) Close() error {
	if !s.started.Swap(false) {
		return nil
	}
	s.stop()
	s.log.close()
	s.wg.Wait()
	if s.syslog != nil {
		s.syslog.close()
	}
	return nil
}

func (s *Server) refreshLoop(ctx context.Context, every time.Duration) {
	// A first refresh soon after start, so chains imported with a CRL URL
	// have a current CRL without waiting a whole period.
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		if err := s.RefreshCRLs(ctx); err != nil && ctx.Err() == nil {
			slog.WarnContext(ctx, "svs: CRL refresh", "err", err.Error())
		}
		t.Reset(every)
	}
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Enabled reports whether the API is switched on.
func (s *Server) Enabled() bool { return s.enabled.Load() }

// SetEnabled switches the API on or off. The switch is persisted (it survives a
// restart and is part of the backup) and audited.
func (s *Server) SetEnabled(ctx context.Context, on bool) error {
	before := s.enabled.Load()
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := putSetting(ctx, tx, settingEnabled, boolText(on)); err != nil {
			return err
		}
		summary := "启用签名验签服务"
		if !on {
			summary = "停用签名验签服务"
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "update", Resource: "svs_settings", RecordID: settingEnabled,
			Summary: summary, Before: jsonOf(map[string]bool{"enabled": before}), After: jsonOf(map[string]bool{"enabled": on})})
	})
	if err != nil {
		return ihos.Internal(fmt.Errorf("svs: set enabled: %w", err))
	}
	s.enabled.Store(on)
	return nil
}

func (s *Server) readEnabled(ctx context.Context) (bool, error) {
	var v string
	err := s.DB.QueryRowContext(ctx, `SELECT value FROM svs_settings WHERE name = ?`, settingEnabled).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("svs: read settings: %w", err)
	}
	return v != "0", nil
}

func putSetting(ctx context.Context, tx *sql.Tx, name, value string) error {
	// Delete and insert: an UPDATE that changes nothing affects no row on MySQL.
	if _, err := tx.ExecContext(ctx, `DELETE FROM svs_settings WHERE name = ?`, name); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO svs_settings (name, value) VALUES (?, ?)`, name, value)
	return err
}

func boolText(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ready returns the 503 of the Ready gate, or nil.
func (s *Server) ready() error {
	if s.Ready == nil {
		return nil
	}
	err := s.Ready()
	if err == nil {
		return nil
	}
	var e *ihos.Error
	if errors.As(err, &e) && e.Code == ihos.EUnavailable {
		return e
	}
	msg := err.Error()
	if e != nil {
		msg = e.Message
	}
	return &ihos.Error{Code: ihos.EUnavailable, Message: msg}
}
