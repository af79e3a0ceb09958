// Package broker runs the NATS server with JetStream that both services embed: the
// appliance keeps its outbox stream in it and the cloud its hub streams, and the
// services talk to it through in-process connections.
//
// The embedded server never takes port 4222, where the machine's own NATS server
// may be running, and by default has no client listener at all. It does not
// install signal handlers (the process's main owns SIGINT and SIGTERM) and never
// exits the process: failures at start come back from Start as errors.
package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"ihos"
)

// Options configures the embedded server. Every field but StoreDir has a safe
// zero value; new fields (leafnode remotes, accounts) must keep it that way, so
// existing callers keep working when they are added.
type Options struct {
	Name       string // server name, e.g. "appliance-h1"
	StoreDir   string // JetStream store directory (inside the data dir)
	Domain     string // JetStream domain ("" = none)
	Listen     string // "" (default) = no client port at all; else "host:port" for a client listener, port 0 = any free port
	SyncAlways bool   // fsync every JetStream write (the appliance sets it: nothing acknowledged may be lost)
	// LeafListen makes this server a hub: "host:port" accepts leafnode
	// connections from hospitals (port 0 = a free port, see LeafAddr). Port 4222
	// is refused like Listen.
	LeafListen string
	// LeafRemotes makes this server a leaf: the hub URLs it dials out to
	// (nats-leaf://host:port). The hospital always dials out; the cloud never
	// dials in.
	LeafRemotes []string
	// LeafReconnect is how often a leaf retries a lost hub (default 1s).
	LeafReconnect time.Duration
	// LeafTLS secures the leafnode link: on a hub, the listener's config
	// (requiring client certificates); on a leaf, the client config.
	LeafTLS *tls.Config
	// HospitalOf makes the server a multi-hospital hub: it maps the verified
	// client certificate of a leafnode to its hospital id (false refuses the
	// connection); each hospital gets its own account. Requires LeafTLS.
	HospitalOf func(*x509.Certificate) (string, bool)
	Logger     *slog.Logger // nats-server logs routed into slog; nil = discard
}

// ForbiddenPort is the standard NATS client port. A system NATS server runs there
// on our machines, and an embedded server that took it (or clients that reached
// the wrong one) would mix two brokers' data.
const ForbiddenPort = 4222

// startTimeout bounds how long Start waits for the server to be ready.
const startTimeout = 10 * time.Second

// Broker is a running embedded NATS server.
type Broker struct {
	srv      *server.Server
	leafAddr string
	hub      *hubAuth
}

// Start starts the server with JetStream and waits until it accepts connections,
// at most 10 seconds. Errors are *ihos.Error: EInvalid for a bad Listen,
// EUnavailable when the server does not start (the cause, such as a port in use or
// an unusable store directory, is wrapped).
func Start(opts Options) (*Broker, error) {
	sopts, err := serverOptions(opts)
	if err != nil {
		return nil, err
	}
	var hub *hubAuth
	if opts.HospitalOf != nil {
		if opts.LeafTLS == nil {
			return nil, ihos.Internal(errors.New("broker: HospitalOf needs LeafTLS"))
		}
		hub = newHubAuth(opts.HospitalOf)
		sopts.CustomClientAuthentication = hub
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, startError(err)
	}
	log := newLogger(opts.Logger)
	srv.SetLoggerV2(log, log.enabled(slog.LevelDebug), log.enabled(levelTrace), false)

	srv.Start()
	// nats-server reports start-up failures (a port in use, an unusable store
	// directory) only through Logger.Fatalf and then carries on half started.
	if err := log.fatalError(); err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, startError(err)
	}
	if !srv.ReadyForConnections(startTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		if err := log.fatalError(); err != nil {
			return nil, startError(err)
		}
		return nil, startError(fmt.Errorf("not ready for connections after %v", startTimeout))
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, startError(errors.New("JetStream did not start"))
	}
	b := &Broker{srv: srv, hub: hub}
	if hub != nil {
		hub.b = b
	}
	if sopts.LeafNode.Port != 0 {
		b.leafAddr = net.JoinHostPort(sopts.LeafNode.Host, strconv.Itoa(sopts.LeafNode.Port))
	}
	return b, nil
}

// LeafAddr returns the "host:port" hubs accept leafnodes on, or "".
func (b *Broker) LeafAddr() string { return b.leafAddr }

// startError is the error of a failed start. Its message reaches the operator
// through the service's exit; the cause (nats-server's words) is for the log.
func startError(cause error) error {
	return &ihos.Error{Code: ihos.EUnavailable, Message: "内置消息服务（NATS）启动失败", Err: cause}
}

// invalidError is the error of an option the operator sets in the config.
func invalidError(format string, args ...any) error {
	return ihos.Errorf(ihos.EInvalid, format, args...)
}

// serverOptions translates opts into nats-server options.
func serverOptions(opts Options) (*server.Options, error) {
	if opts.StoreDir == "" {
		return nil, ihos.Internal(errors.New("broker: Options.StoreDir is required"))
	}
	o := &server.Options{
		ServerName:      opts.Name,
		JetStream:       true,
		JetStreamDomain: opts.Domain,
		StoreDir:        opts.StoreDir,
		SyncAlways:      opts.SyncAlways,
		NoSigs:          true, // the process's main handles signals
		DontListen:      true,
		Port:            server.RANDOM_PORT, // never the default 4222, even if DontListen were ignored
	}
	if opts.Listen != "" {
		host, port, err := splitListen(opts.Listen)
		if err != nil {
			return nil, err
		}
		o.DontListen = false
		o.Host = host
		o.Port = port
	}
	if opts.LeafListen != "" {
		host, port, err := splitListen(opts.LeafListen)
		if err != nil {
			return nil, err
		}
		if port == server.RANDOM_PORT {
			// Pick the port here so LeafAddr can report it.
			if port, err = freePort(host); err != nil {
				return nil, startError(err)
			}
		}
		o.LeafNode.Host, o.LeafNode.Port = host, port
		// Hospitals reach the hub through the address they were given (often a
		// load balancer or proxy); the hub's internal addresses are not
		// advertised to them.
		o.LeafNode.NoAdvertise = true
		o.LeafNode.TLSConfig = opts.LeafTLS
	}
	for _, u := range opts.LeafRemotes {
		parsed, err := url.Parse(u)
		if err != nil || parsed.Host == "" {
			return nil, invalidError("云端消息服务地址 %q 无效，应为 nats-leaf://主机:端口", u)
		}
		remote := &server.RemoteLeafOpts{URLs: []*url.URL{parsed}}
		if opts.LeafTLS != nil {
			remote.TLS, remote.TLSConfig = true, opts.LeafTLS
		}
		o.LeafNode.Remotes = append(o.LeafNode.Remotes, remote)
	}
	if len(opts.LeafRemotes) > 0 {
		o.LeafNode.ReconnectInterval = opts.LeafReconnect
		if o.LeafNode.ReconnectInterval == 0 {
			o.LeafNode.ReconnectInterval = time.Second
		}
	}
	return o, nil
}

// freePort asks the OS for a free port (never ForbiddenPort).
func freePort(host string) (int, error) {
	for {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port != ForbiddenPort {
			return port, nil
		}
	}
}

// splitListen parses "host:port" into nats-server's Host and Port, where port 0
// becomes server.RANDOM_PORT (nats-server reads 0 as its default, 4222).
func splitListen(listen string) (string, int, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, invalidError("消息服务监听地址 %q 无效，应为 \"主机:端口\"，如 \"127.0.0.1:4333\"", listen)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, invalidError("消息服务监听地址 %q 的端口 %q 无效", listen, p)
	}
	if port == ForbiddenPort {
		return "", 0, invalidError("消息服务监听地址 %q 不能使用端口 %d（留给本机的系统 NATS 服务），请换一个端口", listen, ForbiddenPort)
	}
	if host == "" {
		host = "0.0.0.0" // as net.Listen reads ":port"; nats-server's default host is the same
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// Connect opens an in-process connection to the server: no socket, no port, and
// it works with or without a client listener.
func (b *Broker) Connect(opts ...nats.Option) (*nats.Conn, error) {
	o := append([]nats.Option{nats.InProcessServer(b.srv)}, opts...)
	nc, err := nats.Connect("", o...)
	if err != nil {
		return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "无法连接内置消息服务（NATS）", Err: err}
	}
	return nc, nil
}

// Server returns the nats-server, for what Broker does not wrap (monitoring
// varz, ClientURL of a listener, leafnode state).
func (b *Broker) Server() *server.Server { return b.srv }

// Shutdown shuts the server down and waits until it has stopped, so the store
// directory is flushed and closed when it returns.
func (b *Broker) Shutdown() {
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
}

// levelTrace is the slog level of nats-server's protocol traces, below Debug.
const levelTrace = slog.LevelDebug - 4

// logger implements server.Logger on top of slog. It also remembers the first
// fatal error, which nats-server reports only through Fatalf.
type logger struct {
	l *slog.Logger

	mu    sync.Mutex
	fatal error
}

var _ server.Logger = (*logger)(nil)

func newLogger(l *slog.Logger) *logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &logger{l: l.With("component", "nats")}
}

func (l *logger) enabled(level slog.Level) bool {
	return l.l.Enabled(context.Background(), level)
}

func (l *logger) fatalError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}

func (l *logger) log(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if l.l.Enabled(ctx, level) { // skip the Sprintf of the many debug lines
		l.l.Log(ctx, level, fmt.Sprintf(format, v...))
	}
}

func (l *logger) Noticef(format string, v ...any) { l.log(slog.LevelInfo, format, v) }
func (l *logger) Warnf(format string, v ...any)   { l.log(slog.LevelWarn, format, v) }
func (l *logger) Errorf(format string, v ...any)  { l.log(slog.LevelError, format, v) }
func (l *logger) Debugf(format string, v ...any)  { l.log(slog.LevelDebug, format, v) }
func (l *logger) Tracef(format string, v ...any)  { l.log(levelTrace, format, v) }

// Fatalf logs at error level and records the error; unlike nats-server's own
// logger it does not exit the process, which belongs to the service.
func (l *logger) Fatalf(format string, v ...any) {
	l.mu.Lock()
	if l.fatal == nil {
		l.fatal = fmt.Errorf(format, v...)
	}
	l.mu.Unlock()
	l.log(slog.LevelError, format, v)
}
