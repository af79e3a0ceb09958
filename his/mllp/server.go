package mllp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"ihos/his/hl7"
)

// Handler answers one message. It returns the reply to send back on the same
// connection: usually hl7.Ack(m, ...), or the response to a query. A nil reply is sent
// as an AE acknowledgement saying "no reply". ctx is cancelled when the server closes.
type Handler func(ctx context.Context, m *hl7.Message) *hl7.Message

// Default limits of a Server.
const (
	DefaultIdleTimeout  = 5 * time.Minute
	DefaultFrameTimeout = 30 * time.Second
	DefaultWriteTimeout = 30 * time.Second
)

// Server accepts MLLP connections and answers every message with the Handler's reply
// (an ACK or a query response) on the same connection, in order: a connection's next
// message is read only after the reply to the previous one is written.
//
// A reply is encoded in the character set of the request: when the request declares
// one in MSH-18, the server writes that into the reply's MSH-18 before encoding it.
//
// Timeouts and sizes are zero for their defaults; a negative timeout disables it.
type Server struct {
	Handler      Handler
	MaxSize      int           // default DefaultMaxSize
	IdleTimeout  time.Duration // default 5 min: close a connection with no frame started
	FrameTimeout time.Duration // default 30 s: a frame must complete within this once started (slow-loris)
	WriteTimeout time.Duration // default 30 s
	Logger       *slog.Logger  // default slog.Default()

	mu        sync.Mutex
	closed    bool
	ctx       context.Context
	cancel    context.CancelFunc
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	handlers  sync.WaitGroup
}

func timeout(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// initLocked makes the server's bookkeeping on first use; s.mu is held.
func (s *Server) initLocked() {
	if s.ctx == nil {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[net.Conn]struct{}{}
	}
}

// Serve accepts connections on l and serves each in its own goroutine until Close. It
// returns nil after Close, and the listener's error if the listener fails otherwise.
// Serve may be called for several listeners.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.initLocked()
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and try again, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger().Warn("mllp: accept failed", "addr", l.Addr().String(), "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.handlers.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops accepting, closes the open connections, cancels the handlers' context and
// waits for running handlers to return. A reply a handler returns after that is
// dropped; the sender, having no acknowledgement, will send the message again.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.initLocked()
		s.cancel()
		for l := range s.listeners {
			l.Close()
		}
		for c := range s.conns {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.handlers.Wait()
	return nil
}

// serveConn reads, answers and writes messages on c until the peer closes it, a
// timeout or error ends it, or the server closes.
func (s *Server) serveConn(c net.Conn) {
	defer s.handlers.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	log := s.logger().With("remote", c.RemoteAddr().String())
	idle := timeout(s.IdleTimeout, DefaultIdleTimeout)
	frame := timeout(s.FrameTimeout, DefaultFrameTimeout)
	write := timeout(s.WriteTimeout, DefaultWriteTimeout)
	maxSize := s.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	r := NewReader(c, maxSize)
	inFrame := false
	r.frameStarted = func() {
		inFrame = true
		c.SetReadDeadline(deadline(frame))
	}
	for {
		inFrame = false
		c.SetReadDeadline(deadline(idle))
		raw, err := r.ReadMessage()
		var reply []byte
		switch {
		case errors.Is(err, ErrTooLarge):
			log.Warn("mllp: message too large, closing the connection", "limit", maxSize)
			reply = encodeNak(raw, hl7.CodeDataType, fmt.Sprintf("message larger than %d bytes", maxSize))
		case err != nil:
			var ne net.Error
			switch {
			case errors.Is(err, io.EOF):
				log.Debug("mllp: connection closed by peer")
			case errors.As(err, &ne) && ne.Timeout() && inFrame:
				log.Warn("mllp: frame not completed in time, closing the connection", "frame_timeout", frame)
			case errors.As(err, &ne) && ne.Timeout():
				log.Info("mllp: idle connection closed", "idle_timeout", idle)
			case s.isClosed():
			default:
				log.Warn("mllp: read failed", "err", err)
			}
			return
		default:
			reply = s.answer(log, raw)
		}
		if reply == nil {
			return
		}
		c.SetWriteDeadline(deadline(write))
		if werr := WriteMessage(c, reply); werr != nil {
			if !s.isClosed() {
				log.Warn("mllp: writing the reply failed", "err", werr)
			}
			return
		}
		if err != nil {
			return // after ErrTooLarge
		}
	}
}

func deadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// answer parses raw, runs the handler and returns the encoded reply, or nil when not
// even a NAK can be encoded (then the connection is closed).
func (s *Server) answer(log *slog.Logger, raw []byte) []byte {
	m, err := hl7.Parse(raw)
	if err != nil {
		code, reason := hl7.CodeInternal, err.Error()
		var pe *hl7.ParseError
		if errors.As(err, &pe) {
			code, reason = pe.Code, pe.Reason
		}
		log.Warn("mllp: rejected a message that does not parse", "code", code, "reason", reason)
		return encodeNak(raw, code, reason)
	}
	typ, trigger, _ := m.Type()
	log = log.With("control_id", m.ControlID(), "type", typ+"^"+trigger)
	start := time.Now()
	reply := s.call(log, m)
	if reply == nil {
		reply = hl7.Ack(m, hl7.AckError, "no reply", hl7.CodeInternal)
	}
	if cs := m.Charset(); cs != "" {
		if msh := reply.Segment("MSH"); msh != nil {
			msh.Set("18", cs)
		}
	}
	b, err := reply.Encode()
	if err != nil {
		log.Error("mllp: the handler's reply does not encode", "err", err)
		if b, err = hl7.Ack(m, hl7.AckError, "reply could not be encoded", hl7.CodeInternal).Encode(); err != nil {
			return encodeNak(raw, hl7.CodeInternal, "reply could not be encoded")
		}
	}
	log.Debug("mllp: answered", "ack", reply.Get("MSA-1"), "duration", time.Since(start))
	return b
}

// call runs the handler, turning a panic into an AE acknowledgement.
func (s *Server) call(log *slog.Logger, m *hl7.Message) (reply *hl7.Message) {
	if s.Handler == nil {
		return nil
	}
	defer func() {
		if v := recover(); v != nil {
			log.Error("mllp: handler panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			reply = hl7.Ack(m, hl7.AckError, "internal error", hl7.CodeInternal)
		}
	}()
	s.mu.Lock()
	ctx := s.ctx
	s.mu.Unlock()
	return s.Handler(ctx, m)
}

// encodeNak returns an AR acknowledgement of raw, encoded, or nil if that fails (it
// should not: hl7.Nak's answers always encode).
func encodeNak(raw []byte, code, reason string) []byte {
	b, err := hl7.Nak(raw, hl7.AckReject, code, reason).Encode()
	if err != nil {
		return nil
	}
	return b
}
