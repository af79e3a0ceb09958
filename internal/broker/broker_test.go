package broker

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func startBroker(t *testing.T, opts Options) *Broker {
	t.Helper()
	b, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	return b
}

func connect(t *testing.T, b *Broker) *nats.Conn {
	t.Helper()
	nc, err := b.Connect(nats.Name("test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// TestPersistAcrossRestart is the appliance's promise: a message acknowledged by
// JetStream is still there after the server restarts on the same store.
func TestPersistAcrossRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := Options{Name: "appliance-h1", StoreDir: filepath.Join(t.TempDir(), "nats"), Domain: "h1", SyncAlways: true}

	b, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	if b.Server().Addr() != nil {
		t.Errorf("client listener at %v, want none", b.Server().Addr())
	}
	nc, err := b.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OUTBOX", Subjects: []string{"outbox.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "outbox.visit", []byte("挂号 1"), jetstream.WithMsgID("m1"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Stream != "OUTBOX" || ack.Sequence != 1 || ack.Domain != "h1" {
		t.Errorf("PubAck = %+v", ack)
	}
	nc.Close()
	b.Shutdown()
	b.Shutdown() // idempotent

	b = startBroker(t, opts)
	js, err = jetstream.New(connect(t, b))
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "OUTBOX")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "挂号 1" || msg.Subject != "outbox.visit" || msg.Header.Get(jetstream.MsgIDHeader) != "m1" {
		t.Errorf("after restart got %q on %q, headers %v", msg.Data, msg.Subject, msg.Header)
	}
}

// TestDomainAPI: with a domain, the JetStream API is also reachable through
// $JS.<domain>.API, which the sync link uses across the leafnode.
func TestDomainAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := startBroker(t, Options{StoreDir: t.TempDir(), Domain: "h7"})
	js, err := jetstream.NewWithDomain(connect(t, b), "h7")
	if err != nil {
		t.Fatal(err)
	}
	info, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Domain != "h7" {
		t.Errorf("domain %q, want h7", info.Domain)
	}
}

func TestListenForbiddenPort(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:4222", ":4222", "[::1]:4222", "localhost:04222"} {
		b, err := Start(Options{StoreDir: t.TempDir(), Listen: listen})
		if err == nil {
			b.Shutdown()
			t.Errorf("Listen %q: started, want an error", listen)
			continue
		}
		if !strings.Contains(err.Error(), "4222") {
			t.Errorf("Listen %q: error %q does not name the port", listen, err)
		}
	}
}

func TestBadOptions(t *testing.T) {
	for _, opts := range []Options{
		{},                                       // no store
		{StoreDir: "x", Listen: "127.0.0.1"},     // no port
		{StoreDir: "x", Listen: "127.0.0.1:abc"}, // bad port
		{StoreDir: "x", Listen: "127.0.0.1:70000"},
		{StoreDir: "x", Listen: "127.0.0.1:-1"},
	} {
		if b, err := Start(opts); err == nil {
			b.Shutdown()
			t.Errorf("Start(%+v) succeeded, want an error", opts)
		}
	}
}

func TestListenRandomPort(t *testing.T) {
	b := startBroker(t, Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	addr, ok := b.Server().Addr().(*net.TCPAddr)
	if !ok || addr.Port == 0 || addr.Port == ForbiddenPort {
		t.Fatalf("listener at %v", b.Server().Addr())
	}
	nc, err := nats.Connect(b.Server().ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !strings.HasSuffix(nc.ConnectedUrl(), ":"+strconv.Itoa(addr.Port)) {
		t.Errorf("connected to %s, listener at %v", nc.ConnectedUrl(), addr)
	}
	// The in-process connection works alongside the listener.
	inproc := connect(t, b)
	sub, err := inproc.SubscribeSync("ping")
	if err != nil {
		t.Fatal(err)
	}
	if err := inproc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("ping", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestListenPortInUse: a start failure comes back as an error, quickly, instead of
// the process exiting (nats-server's own logger) or a 10 s wait.
func TestListenPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	b, err := Start(Options{StoreDir: t.TempDir(), Listen: l.Addr().String()})
	if err == nil {
		b.Shutdown()
		t.Fatal("started on a port in use")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to fail", d)
	}
}

// TestStoreNotWritable: an unusable store directory is an error from Start.
func TestStoreNotWritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Start(Options{StoreDir: filepath.Join(file, "nats")}) // a directory under a file
	if err == nil {
		b.Shutdown()
		t.Fatal("started with a store under a regular file")
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogger(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b := startBroker(t, Options{Name: "appliance-log", StoreDir: t.TempDir(), Logger: log})
	b.Shutdown()
	out := buf.String()
	for _, want := range []string{`"component":"nats"`, `"level":"INFO"`, "Starting nats-server", "appliance-log"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `"level":"DEBUG"`) {
		t.Error("debug lines logged at info level")
	}
}
