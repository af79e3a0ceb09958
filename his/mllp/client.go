package mllp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"ihos/his/hl7"
)

// Default limits of a Client.
const (
	DefaultDialTimeout  = 5 * time.Second
	DefaultReplyTimeout = 30 * time.Second
)

var (
	// ErrUnavailable wraps every failure to get a reply from the peer: it could not be
	// reached, the connection broke, or no reply came in time. The message may or may
	// not have been processed, so the caller sends it again later with the same control
	// id (HL7 receivers recognise a resend by MSH-10).
	ErrUnavailable = errors.New("mllp: peer unavailable")
	// ErrBadReply is returned when the reply does not parse or its MSA-2 is not the
	// control id of the message sent.
	ErrBadReply = errors.New("mllp: bad reply")
	// ErrClientClosed is returned by Send after Close.
	ErrClientClosed = errors.New("mllp: client closed")
)

// Client sends messages over one persistent connection and waits for the reply on the
// same connection. It connects on first use and again after any failure. It is safe for
// concurrent use: sends are serialised, as MLLP allows one outstanding message per
// connection.
type Client struct {
	Addr         string
	DialTimeout  time.Duration // default 5 s
	ReplyTimeout time.Duration // default 30 s: from writing the message to reading the whole reply
	MaxSize      int           // largest reply accepted, default DefaultMaxSize

	once sync.Once
	turn chan struct{} // holds a token while a Send is under way

	mu     sync.Mutex // guards the fields below; Close takes it while a Send runs
	conn   net.Conn
	reader *Reader
	closed bool
}

// Send encodes m, writes it and returns the parsed reply. When the reply has an MSA
// segment, its MSA-2 must be m's control id. On any failure the connection is closed,
// so the next Send starts on a fresh one; errors from the transport wrap ErrUnavailable
// (and the underlying error), a reply that fails the checks gives ErrBadReply. When a
// connection that had been idle turns out to be closed by the peer before any reply
// byte arrived, Send dials again and sends once more at once: servers close idle
// connections, and the message was not taken.
func (c *Client) Send(ctx context.Context, m *hl7.Message) (*hl7.Message, error) {
	raw, err := m.Encode()
	if err != nil {
		return nil, err
	}
	c.once.Do(func() { c.turn = make(chan struct{}, 1) })
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.turn }()

	reply, reused, err := c.roundTrip(ctx, raw)
	if err != nil && reused && ctx.Err() == nil && peerClosed(err) {
		reply, _, err = c.roundTrip(ctx, raw)
	}
	if err != nil {
		return nil, err
	}
	rm, err := hl7.Parse(reply)
	if err != nil {
		c.drop()
		return nil, fmt.Errorf("%w from %s: %w", ErrBadReply, c.Addr, err)
	}
	if msa := rm.Segment("MSA"); msa != nil && msa.Get("2") != m.ControlID() {
		c.drop()
		return nil, fmt.Errorf("%w from %s: MSA-2 is %q, the message sent was %q", ErrBadReply, c.Addr, msa.Get("2"), m.ControlID())
	}
	return rm, nil
}

// peerClosed reports whether err says the peer had closed the connection before it
// sent anything back.
func peerClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// roundTrip writes one framed message and reads one frame back. reused reports whether
// the connection was already open before this call.
func (c *Client) roundTrip(ctx context.Context, raw []byte) (reply []byte, reused bool, err error) {
	conn, r, reused, err := c.connect(ctx)
	if err != nil {
		return nil, false, err
	}
	wait := timeout(c.ReplyTimeout, DefaultReplyTimeout)
	dl := deadline(wait)
	ctxDeadline := false
	if d, ok := ctx.Deadline(); ok && (dl.IsZero() || d.Before(dl)) {
		dl, ctxDeadline = d, true
	}
	conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	fail := func(op string, err error) ([]byte, bool, error) {
		c.dropConn(conn)
		if ctx.Err() != nil {
			return nil, reused, fmt.Errorf("mllp: %s %s: %w", op, c.Addr, ctx.Err())
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if ctxDeadline {
				// The connection's deadline can fire a moment before the context's.
				return nil, reused, fmt.Errorf("mllp: %s %s: %w", op, c.Addr, context.DeadlineExceeded)
			}
			return nil, reused, fmt.Errorf("%w: no reply from %s within %v: %w", ErrUnavailable, c.Addr, wait, err)
		}
		return nil, reused, fmt.Errorf("%w: %s %s: %w", ErrUnavailable, op, c.Addr, err)
	}
	if err := WriteMessage(conn, raw); err != nil {
		if errors.Is(err, ErrFrameByte) {
			return nil, reused, err
		}
		return fail("send to", err)
	}
	reply, err = r.ReadMessage()
	if err != nil {
		return fail("read reply from", err)
	}
	return reply, reused, nil
}

// connect returns the open connection, dialling one if there is none.
func (c *Client) connect(ctx context.Context) (net.Conn, *Reader, bool, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, nil, false, ErrClientClosed
	}
	if c.conn != nil {
		conn, r := c.conn, c.reader
		c.mu.Unlock()
		return conn, r, true, nil
	}
	c.mu.Unlock()

	d := net.Dialer{Timeout: timeout(c.DialTimeout, DefaultDialTimeout)}
	conn, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, false, fmt.Errorf("mllp: connect to %s: %w", c.Addr, ctx.Err())
		}
		return nil, nil, false, fmt.Errorf("%w: connect to %s: %w", ErrUnavailable, c.Addr, err)
	}
	r := NewReader(conn, c.MaxSize)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		conn.Close()
		return nil, nil, false, ErrClientClosed
	}
	c.conn, c.reader = conn, r
	return conn, r, false, nil
}

// dropConn closes conn if it is still the client's connection.
func (c *Client) dropConn(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conn.Close()
	if c.conn == conn {
		c.conn, c.reader = nil, nil
	}
}

// drop closes the current connection.
func (c *Client) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.reader = nil, nil
	}
}

// Close closes the connection, interrupting a Send under way, and makes later Sends
// fail with ErrClientClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn != nil {
		err := c.conn.Close()
		c.conn, c.reader = nil, nil
		return err
	}
	return nil
}
