package mllp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"ihos/his/hl7"
)

var quiet = slog.New(slog.DiscardHandler)

func accept(_ context.Context, m *hl7.Message) *hl7.Message {
	return hl7.Ack(m, hl7.AckAccept, "", "")
}

// startServer serves s on a fresh port of 127.0.0.1 and closes it when the test ends.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, s, l)
}

func serveOn(t *testing.T, s *Server, l net.Listener) string {
	t.Helper()
	if s.Logger == nil {
		s.Logger = quiet
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after Close", err)
		}
	})
	return l.Addr().String()
}

func message(id string) *hl7.Message {
	m := hl7.New("ADT", "A04", "ADT_A01", id)
	m.Set("PID-3", "P000123")
	m.Set("PID-5", "张三")
	return m
}

// rawConn is a test peer that writes bytes of its choosing and reads frames.
type rawConn struct {
	net.Conn
	r *Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{Conn: c, r: NewReader(c, 0)}
}

func (c *rawConn) send(t *testing.T, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func (c *rawConn) reply(t *testing.T) *hl7.Message {
	t.Helper()
	b, err := c.r.ReadMessage()
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	m, err := hl7.Parse(b)
	if err != nil {
		t.Fatalf("reply does not parse: %v\n%q", err, b)
	}
	return m
}

func encoded(t *testing.T, m *hl7.Message) string {
	t.Helper()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServerAcknowledgesInOrder(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	addr := startServer(t, &Server{Handler: func(ctx context.Context, m *hl7.Message) *hl7.Message {
		mu.Lock()
		seen = append(seen, m.Get("PID-5"))
		mu.Unlock()
		return hl7.Ack(m, hl7.AckAccept, "", "")
	}})
	c := dialRaw(t, addr)
	// Three frames in one write, with junk between them: three replies, in order.
	c.send(t, "\r\n"+frame(encoded(t, message("A1")))+"\n"+frame(encoded(t, message("A2")))+frame(encoded(t, message("A3"))))
	for _, id := range []string{"A1", "A2", "A3"} {
		r := c.reply(t)
		if r.Get("MSA-1") != "AA" || r.Get("MSA-2") != id || r.Get("MSH-9-2") != "A04" {
			t.Errorf("reply to %s: MSA %q %q", id, r.Get("MSA-1"), r.Get("MSA-2"))
		}
	}
	if len(seen) != 3 || seen[0] != "张三" {
		t.Errorf("handler saw %q", seen)
	}
}

func TestServerRejectsWhatDoesNotParse(t *testing.T) {
	addr := startServer(t, &Server{Handler: accept})
	c := dialRaw(t, addr)
	for _, tc := range []struct {
		in, code, control string
	}{
		{"hello", "100", ""},
		{"MSH|^~\\&|HIS|H1|IHOS|IHOS|20240101||ORU^R01||P|2.5.1", "101", ""},
		{"MSH|^~\\&|HIS|H1|IHOS|IHOS|20240101||ORU^R01|C7|P|2.5.1\rpid|1", "100", "C7"},
		{"MSH|^~\\&|HIS|H1|IHOS|IHOS|20240101||ORU^R01|C8|P|2.5.1|||||CHN|KOI8-R", "200", "C8"},
		{"MSH|^~\\&|HIS|H1|IHOS|IHOS|20240101||ORU^R01|C9|P|2.5.1\rPID|1||\xff", "102", "C9"},
		{"", "100", ""},
	} {
		c.send(t, frame(tc.in))
		r := c.reply(t)
		if r.Get("MSA-1") != "AR" || r.Get("ERR-3") != tc.code || r.Get("MSA-2") != tc.control {
			t.Errorf("%.30q: MSA-1 %q ERR-3 %q MSA-2 %q, want AR %s %q", tc.in, r.Get("MSA-1"), r.Get("ERR-3"), r.Get("MSA-2"), tc.code, tc.control)
		}
		if tc.control != "" && r.Get("MSH-5") != "HIS" {
			t.Errorf("%.30q: NAK MSH-5 %q", tc.in, r.Get("MSH-5"))
		}
	}
	// The connection still works.
	c.send(t, frame(encoded(t, message("OK1"))))
	if r := c.reply(t); r.Get("MSA-1") != "AA" {
		t.Errorf("after the rejects: %q", r.Get("MSA-1"))
	}
}

// lockedBuffer is a log destination the test may read while the server writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestServerNilReplyAndPanic(t *testing.T) {
	var logs lockedBuffer
	addr := startServer(t, &Server{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Handler: func(ctx context.Context, m *hl7.Message) *hl7.Message {
		switch m.ControlID() {
		case "NIL":
			return nil
		case "PANIC":
			panic("handler bug")
		case "UNENCODABLE":
			r := hl7.Ack(m, hl7.AckAccept, "", "")
			r.Add("bad")
			return r
		}
		return hl7.Ack(m, hl7.AckAccept, "", "")
	}})
	c := dialRaw(t, addr)
	for _, tc := range []struct{ id, ack, text, code string }{
		{"NIL", "AE", "no reply", "207"},
		{"PANIC", "AE", "internal error", "207"},
		{"OK", "AA", "", ""},
		{"PANIC", "AE", "internal error", "207"},
		{"UNENCODABLE", "AE", "reply could not be encoded", "207"},
		{"OK2", "AA", "", ""},
	} {
		c.send(t, frame(encoded(t, message(tc.id))))
		r := c.reply(t)
		if r.Get("MSA-1") != tc.ack || r.Get("MSA-2") != tc.id || r.Get("MSA-3") != tc.text || r.Get("ERR-3") != tc.code {
			t.Errorf("%s: MSA %q %q %q ERR-3 %q", tc.id, r.Get("MSA-1"), r.Get("MSA-2"), r.Get("MSA-3"), r.Get("ERR-3"))
		}
	}
	if out := logs.String(); strings.Count(out, "handler panicked") != 2 || !strings.Contains(out, "handler bug") {
		t.Errorf("panics not logged:\n%s", out)
	}
	// No handler at all behaves like a nil reply.
	addr = startServer(t, &Server{})
	c = dialRaw(t, addr)
	c.send(t, frame(encoded(t, message("X"))))
	if r := c.reply(t); r.Get("MSA-1") != "AE" {
		t.Errorf("no handler: %q", r.Get("MSA-1"))
	}
}

func TestServerRepliesInRequestCharset(t *testing.T) {
	addr := startServer(t, &Server{Handler: func(ctx context.Context, m *hl7.Message) *hl7.Message {
		if m.Get("PID-5") != "张三" {
			return hl7.Ack(m, hl7.AckError, "wrong name "+m.Get("PID-5"), hl7.CodeDataType)
		}
		// A reply made with hl7.New declares UTF-8; the server answers in GB 18030.
		r := hl7.New("RSP", "K22", "RSP_K21", "")
		r.Set("MSA-1", "AA")
		r.Set("MSA-2", m.ControlID())
		r.Set("PID-5", "张三")
		return r
	}})
	m := message("GB1")
	m.Set("MSH-18", "GB18030")
	c := dialRaw(t, addr)
	c.send(t, frame(encoded(t, m)))
	b, err := c.r.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	gb, _ := simplifiedchinese.GB18030.NewEncoder().String("张三")
	if !bytes.Contains(b, []byte(gb)) || bytes.Contains(b, []byte("张三")) {
		t.Fatalf("reply not in GB 18030: %q", b)
	}
	r, err := hl7.Parse(b)
	if err != nil || r.Get("PID-5") != "张三" || r.Get("MSH-18") != "GB18030" {
		t.Fatalf("reply: %v %q", err, b)
	}
}

func TestLargeMessage(t *testing.T) {
	value := strings.Repeat("检验报告ABCDEFGHIJ", 1<<16) // 1.4 MB in UTF-8
	addr := startServer(t, &Server{Handler: func(ctx context.Context, m *hl7.Message) *hl7.Message {
		r := hl7.Ack(m, hl7.AckAccept, "", "")
		r.Set("OBX-5", m.Get("OBX-5"))
		return r
	}})
	c := &Client{Addr: addr}
	defer c.Close()
	m := message("BIG")
	m.Set("OBX-2", "TX")
	m.Set("OBX-5", value)
	r, err := c.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Get("OBX-5"); got != value {
		t.Fatalf("echoed value of %d bytes, want %d", len(got), len(value))
	}
}

func TestServerMaxSize(t *testing.T) {
	addr := startServer(t, &Server{Handler: accept, MaxSize: 1000})
	c := dialRaw(t, addr)
	m := message("BIG2")
	m.Set("OBX-5", strings.Repeat("x", 2000))
	c.send(t, frame(encoded(t, m)))
	r := c.reply(t)
	if r.Get("MSA-1") != "AR" || r.Get("MSA-2") != "BIG2" || r.Get("ERR-3") != "102" || !strings.Contains(r.Get("MSA-3"), "1000") {
		t.Errorf("NAK: %q %q %q %q", r.Get("MSA-1"), r.Get("MSA-2"), r.Get("ERR-3"), r.Get("MSA-3"))
	}
	if _, err := c.r.ReadMessage(); err != io.EOF {
		t.Errorf("connection not closed after the NAK: %v", err)
	}

	// A Client gets the NAK, and its next Send works on a new connection.
	cl := &Client{Addr: addr}
	defer cl.Close()
	r, err := cl.Send(context.Background(), m)
	if err != nil || r.Get("MSA-1") != "AR" {
		t.Fatalf("too large through the client: %v", err)
	}
	if r, err := cl.Send(context.Background(), message("SMALL")); err != nil || r.Get("MSA-1") != "AA" {
		t.Fatalf("after the NAK: %v", err)
	}
}

// waitClosed reads from c until the server closes it, and returns how long that took.
func waitClosed(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, c)
	if err != nil {
		t.Fatalf("connection not closed by the server within %v: %v", limit, err)
	}
	return time.Since(start)
}

func TestSlowLoris(t *testing.T) {
	addr := startServer(t, &Server{Handler: accept, FrameTimeout: 500 * time.Millisecond, IdleTimeout: 10 * time.Second})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		c.Write([]byte{StartBlock})
		for _, b := range []byte("MSH|^~\\&|slowly, one byte at a time") {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	if d := waitClosed(t, c, 5*time.Second); d < 400*time.Millisecond {
		t.Errorf("closed after %v, before the frame timeout", d)
	}
}

func TestIdleTimeout(t *testing.T) {
	addr := startServer(t, &Server{Handler: accept, IdleTimeout: 300 * time.Millisecond})
	c := dialRaw(t, addr)
	c.send(t, frame(encoded(t, message("I1"))))
	c.reply(t)
	// Bytes that start no frame do not keep the connection open.
	c.send(t, "\r\n\r\n")
	if d := waitClosed(t, c, 5*time.Second); d > 2*time.Second {
		t.Errorf("idle connection closed after %v", d)
	}
}

func TestServerClose(t *testing.T) {
	entered := make(chan struct{})
	var finished atomic.Bool
	s := &Server{Logger: quiet, Handler: func(ctx context.Context, m *hl7.Message) *hl7.Message {
		close(entered)
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond)
		finished.Store(true)
		return nil
	}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	c := dialRaw(t, l.Addr().String())
	c.send(t, frame(encoded(t, message("C1"))))
	<-entered
	s.Close()
	if !finished.Load() {
		t.Error("Close returned before the handler")
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("still accepting after Close")
	}
	if err := s.Serve(l); err != nil {
		t.Errorf("Serve on a closed server: %v", err)
	}
}

func TestClientReconnects(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	s1 := &Server{Handler: accept, Logger: quiet}
	go s1.Serve(l)
	c := &Client{Addr: addr, DialTimeout: time.Second}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Send(ctx, message("R1")); err != nil {
		t.Fatal(err)
	}
	s1.Close()

	// Nobody listening: the error says the peer is unavailable.
	_, err = c.Send(ctx, message("R2"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("server down: %v, want ErrUnavailable", err)
	}

	// The server comes back on the same port.
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, &Server{Handler: accept}, l2)
	r, err := c.Send(ctx, message("R3"))
	if err != nil || r.Get("MSA-2") != "R3" {
		t.Fatalf("after the restart: %v", err)
	}
}

func TestClientStaleConnection(t *testing.T) {
	// The server closes an idle connection; the next Send notices and sends again on a
	// new connection instead of failing.
	addr := startServer(t, &Server{Handler: accept, IdleTimeout: 100 * time.Millisecond})
	c := &Client{Addr: addr}
	defer c.Close()
	for i := range 3 {
		if _, err := c.Send(context.Background(), message(fmt.Sprint("S", i))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// silentServer accepts connections, reads them and never answers.
func silentServer(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return l.Addr().String(), &accepted
}

func TestClientReplyTimeout(t *testing.T) {
	addr, accepted := silentServer(t)
	c := &Client{Addr: addr, ReplyTimeout: 200 * time.Millisecond}
	defer c.Close()
	for i := range 2 {
		start := time.Now()
		_, err := c.Send(context.Background(), message("T1"))
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("send %d: %v, want ErrUnavailable wrapping a deadline", i, err)
		}
		if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
			t.Errorf("send %d gave up after %v", i, d)
		}
	}
	if n := accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (a new one after the timeout)", n)
	}

	// A context deadline shorter than ReplyTimeout wins, and cancellation is reported
	// as such.
	c.ReplyTimeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Send(ctx, message("T2")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("context deadline: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("context deadline honoured after %v", d)
	}
}

func TestClientConcurrentSends(t *testing.T) {
	var active, maxActive atomic.Int32
	addr := startServer(t, &Server{Handler: func(ctx context.Context, m *hl7.Message) *hl7.Message {
		n := active.Add(1)
		defer active.Add(-1)
		if n > maxActive.Load() {
			maxActive.Store(n)
		}
		time.Sleep(time.Millisecond)
		return hl7.Ack(m, hl7.AckAccept, m.Get("PID-3"), "")
	}})
	c := &Client{Addr: addr}
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for g := range 10 {
		wg.Go(func() {
			for i := range 10 {
				id := fmt.Sprintf("G%dM%d", g, i)
				m := message(id)
				m.Set("PID-3", id)
				r, err := c.Send(context.Background(), m)
				if err != nil {
					errs <- err
					continue
				}
				if r.Get("MSA-2") != id || r.Get("MSA-3") != id {
					errs <- fmt.Errorf("reply to %s: %q %q", id, r.Get("MSA-2"), r.Get("MSA-3"))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if maxActive.Load() != 1 {
		t.Errorf("%d handlers ran at once on one connection", maxActive.Load())
	}
}

func TestClientRejectsWrongReply(t *testing.T) {
	addr := startServer(t, &Server{Handler: func(ctx context.Context, m *hl7.Message) *hl7.Message {
		r := hl7.Ack(m, hl7.AckAccept, "", "")
		r.Set("MSA-2", "SOMETHING-ELSE")
		return r
	}})
	c := &Client{Addr: addr}
	defer c.Close()
	if _, err := c.Send(context.Background(), message("W1")); !errors.Is(err, ErrBadReply) {
		t.Fatalf("mismatched MSA-2: %v", err)
	}
	c.Close()
	if _, err := c.Send(context.Background(), message("W2")); !errors.Is(err, ErrClientClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// serveBytes runs one server connection over net.Pipe with data as the peer's input,
// and fails if the server panics (the test binary dies), hangs, or writes a reply that
// does not parse.
func serveBytes(t *testing.T, data []byte, limit int) {
	s := &Server{Handler: accept, MaxSize: limit, Logger: quiet,
		IdleTimeout: time.Second, FrameTimeout: time.Second, WriteTimeout: time.Second}
	s.mu.Lock()
	s.initLocked()
	s.handlers.Add(1)
	s.mu.Unlock()
	srv, peer := net.Pipe()
	done := make(chan struct{})
	go func() {
		s.serveConn(srv)
		close(done)
	}()
	replies := make(chan error, 1)
	go func() {
		r := NewReader(peer, 0)
		for {
			b, err := r.ReadMessage()
			if err != nil {
				replies <- nil
				return
			}
			if _, err := hl7.Parse(b); err != nil {
				replies <- fmt.Errorf("reply does not parse: %v\n%q", err, b)
				return
			}
		}
	}()
	peer.SetWriteDeadline(time.Now().Add(5 * time.Second))
	peer.Write(data)
	peer.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("server connection did not end")
	}
	if err := <-replies; err != nil {
		t.Fatal(err)
	}
}
