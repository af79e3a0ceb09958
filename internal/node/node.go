// Package node is the skeleton both services run on: command-line flags and the
// config file, the JSON logger, the data directory, the database, the personal
// data key, the embedded NATS server, console authentication, the HTTP server
// with graceful shutdown, and /healthz. The appliance and the cloud add their own
// routes and jobs on top; everything here is written once for both.
package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"ihos"
	"ihos/internal/auth"
	"ihos/internal/broker"
	"ihos/internal/config"
	"ihos/internal/pii"
	"ihos/internal/sqldb"
	"ihos/internal/web"
)

// Config is what every node is configured with. Precedence: built-in defaults,
// then the config file, then IHOS_* environment variables, then flags.
type Config struct {
	DataDir    string `json:"data_dir" env:"IHOS_DATA_DIR"`       // where everything the node keeps lives
	HTTP       string `json:"http" env:"IHOS_HTTP"`               // listen address of the HTTP server
	Database   string `json:"database" env:"IHOS_DATABASE"`       // "" = SQLite in the data dir; "mysql://user:pass@tcp(host:3306)/db"
	LogLevel   string `json:"log_level" env:"IHOS_LOG_LEVEL"`     // debug, info, warn, error
	NATSListen string `json:"nats_listen" env:"IHOS_NATS_LISTEN"` // "" = no NATS client port (in-process only); never port 4222
	NodeID     string `json:"node_id" env:"IHOS_NODE_ID"`         // this node's id in sync; default derived from the kind
}

// Flags binds the common flags to c; services add their own to fs before parsing.
// It returns a pointer to the --config value.
func (c *Config) Flags(fs *flag.FlagSet) *string {
	path := fs.String("config", "", "配置文件路径（JSON）")
	fs.Func("data-dir", "数据目录", func(s string) error { c.DataDir = s; return nil })
	fs.Func("http", "HTTP 监听地址，如 127.0.0.1:8090", func(s string) error { c.HTTP = s; return nil })
	fs.Func("database", "数据库：留空为数据目录中的 SQLite；MySQL 写作 mysql://user:pass@tcp(host:3306)/db", func(s string) error { c.Database = s; return nil })
	fs.Func("log-level", "日志级别：debug/info/warn/error", func(s string) error { c.LogLevel = s; return nil })
	return path
}

// Load parses args with fs (which must have c.Flags bound) and applies the
// config file and environment under the flags: flags are applied last by parsing
// twice, once to find --config and once after the file and environment.
func Load(fs *flag.FlagSet, args []string, cfg any, configPath *string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return ihos.Errorf(ihos.EInvalid, "命令行参数有误：%v", err)
	}
	if err := config.Load(*configPath, *configPath != "", cfg); err != nil {
		return err
	}
	return fs.Parse(args)
}

// DefaultDataDir is where a node keeps its data when not told: the system-wide
// application data folder when running as root/service, the user's otherwise.
func DefaultDataDir(kind string) string {
	if runtime.GOOS == "windows" {
		if pd := os.Getenv("ProgramData"); pd != "" {
			return filepath.Join(pd, "ihos", kind)
		}
	}
	if os.Geteuid() == 0 {
		return filepath.Join("/var/lib/ihos", kind)
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "ihos", kind)
	}
	return filepath.Join("data", kind)
}

// Node is a running service's shared parts.
type Node struct {
	Kind   string // "appliance" or "cloud"
	Config Config
	DB     *sqldb.DB
	Sealer *pii.Sealer
	Broker *broker.Broker
	Auth   *auth.Service
	// NATSCheck reports the health of an external NATS when there is no
	// embedded broker.
	NATSCheck func() error
	started   time.Time

	cliToken string
}

// Options are the per-service choices Open needs.
type Options struct {
	Kind         string   // "appliance" or "cloud"
	SyncAlways   bool     // fsync every JetStream write (the appliance)
	AllowMySQL   bool     // the appliance runs on SQLite only
	JetStreamDom string   // JetStream domain; default the node id
	LeafListen   string   // the cloud: where hospitals' leafnodes connect
	LeafRemotes  []string // an appliance: the cloud hub it dials out to
	// LeafTLS returns the leafnode TLS config, given the resolved data dir (the
	// cloud's CA and server certificate, an appliance's enrolled certificate).
	LeafTLS func(dataDir string) (*tls.Config, error)
	// HospitalOf maps a hospital's verified leafnode certificate to its id; set
	// on the cloud, it isolates each hospital in its own account.
	HospitalOf func(*x509.Certificate) (string, bool)
	// NoBroker skips the embedded NATS server: the cloud in production uses an
	// external NATS cluster instead.
	NoBroker bool
}

// Open prepares a node: creates the data dir, installs the JSON logger as slog's
// default, opens and migrates the database, loads (or creates) the personal data
// key, and starts the embedded NATS server.
func Open(ctx context.Context, cfg Config, opts Options) (*Node, error) {
	started := time.Now()
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir(opts.Kind)
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = abs
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, ihos.Errorf(ihos.EUnavailable, "无法创建数据目录 %s：%v", cfg.DataDir, err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cmp(cfg.LogLevel, "info"))); err != nil {
		return nil, ihos.Errorf(ihos.EInvalid, "日志级别 %q 无效（debug/info/warn/error）", cfg.LogLevel)
	}
	slog.SetDefault(web.NewLogger(os.Stderr, level).With("service", opts.Kind))
	if cfg.NodeID == "" {
		cfg.NodeID = opts.Kind
	}
	dsn := cfg.Database
	if dsn == "" {
		dsn = filepath.Join(cfg.DataDir, opts.Kind+".db")
	} else if strings.HasPrefix(dsn, "mysql://") && !opts.AllowMySQL {
		return nil, ihos.Errorf(ihos.EInvalid, "%s 只支持 SQLite 数据库", opts.Kind)
	}
	n := &Node{Kind: opts.Kind, Config: cfg, started: started}
	if n.DB, err = sqldb.Open(ctx, dsn); err != nil {
		return nil, fmt.Errorf("数据库：%w", err)
	}
	if n.Sealer, err = pii.LoadOrCreate(filepath.Join(cfg.DataDir, "keys", "pii.key")); err != nil {
		n.Close()
		return nil, err
	}
	n.Auth = auth.New(n.DB)
	if err := n.writeCLIToken(); err != nil {
		n.Close()
		return nil, err
	}
	if opts.NoBroker {
		return n, nil
	}
	var leafTLS *tls.Config
	if opts.LeafTLS != nil {
		if leafTLS, err = opts.LeafTLS(cfg.DataDir); err != nil {
			n.Close()
			return nil, err
		}
	}
	n.Broker, err = broker.Start(broker.Options{
		Name:       opts.Kind + "-" + cfg.NodeID,
		StoreDir:   filepath.Join(cfg.DataDir, "jetstream"),
		Domain:     cmp(opts.JetStreamDom, cfg.NodeID),
		Listen:     cfg.NATSListen,
		SyncAlways: opts.SyncAlways,
		Logger:     slog.Default(),

		LeafListen:  opts.LeafListen,
		LeafRemotes: opts.LeafRemotes,
		LeafTLS:     leafTLS,
		HospitalOf:  opts.HospitalOf,
	})
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Close stops the broker and closes the database.
func (n *Node) Close() {
	if n.Broker != nil {
		n.Broker.Shutdown()
	}
	if n.DB != nil {
		n.DB.Close()
	}
}

// Health serves GET /healthz: 200 with the build and the state of the database
// and the broker, or 503 when either is down.
func (n *Node) Health() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		checks := map[string]string{"database": "ok", "nats": "ok"}
		status := http.StatusOK
		if err := n.DB.PingContext(ctx); err != nil {
			checks["database"], status = err.Error(), http.StatusServiceUnavailable
		}
		switch {
		case n.Broker != nil:
			if !n.Broker.Server().Running() || !n.Broker.Server().JetStreamEnabled() {
				checks["nats"], status = "down", http.StatusServiceUnavailable
			}
		case n.NATSCheck != nil:
			if err := n.NATSCheck(); err != nil {
				checks["nats"], status = err.Error(), http.StatusServiceUnavailable
			}
		}
		state := "ok"
		if status != http.StatusOK {
			state = "degraded"
		}
		web.WriteJSON(w, status, map[string]any{
			"status": state, "service": n.Kind, "node": n.Config.NodeID,
			"version": ihos.Version, "commit": ihos.Commit, "go": runtime.Version(),
			"database": n.DB.Engine, "checks": checks,
			"uptime_s": int64(time.Since(n.started).Seconds()),
		})
	})
}

// Serve serves h on the configured address until ctx is cancelled, then shuts
// down gracefully (in-flight requests get 10 s).
func (n *Node) Serve(ctx context.Context, h http.Handler) error {
	ln, err := net.Listen("tcp", n.Config.HTTP)
	if err != nil {
		return ihos.Errorf(ihos.EUnavailable, "无法监听 %s：%v", n.Config.HTTP, err)
	}
	srv := &http.Server{
		Handler:           web.Middleware(h),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
	slog.Info("started", "kind", n.Kind, "http", "http://"+ln.Addr().String(), "data_dir", n.Config.DataDir,
		"database", n.DB.Engine, "version", ihos.Version, "startup_ms", time.Since(n.started).Milliseconds())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	slog.Info("stopped", "kind", n.Kind)
	return err
}

// Run is the body of both services' Run: parse args and config into cfg, start
// the service with start, serve its handler until ctx ends, then close the node.
func Run(ctx context.Context, fs *flag.FlagSet, args []string, cfg any, configPath *string,
	start func(ctx context.Context) (*Node, http.Handler, error)) error {
	if err := Load(fs, args, cfg, configPath); err != nil {
		return err
	}
	n, h, err := start(ctx)
	if err != nil {
		return err
	}
	defer n.Close()
	return n.Serve(ctx, h)
}
