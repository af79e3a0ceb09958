// Package printersim simulates an ESC/POS ticket printer on a raw TCP port
// (the "port 9100" protocol): it answers DLE EOT real-time status requests
// and decodes the print data it receives into escpos.Tickets, one per cut.
package printersim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"ihos/drivers/escpos"
)

// Mode is the simulated printer state.
type Mode string

// Modes.
const (
	Online    Mode = "online"
	PaperOut  Mode = "paper_out"
	CoverOpen Mode = "cover_open"
	Offline   Mode = "offline"
)

// Limits.
const (
	// IdleTimeout closes a connection that sends nothing for this long.
	IdleTimeout = 60 * time.Second
	// MaxTicket is the largest print data accepted for one ticket; a
	// connection exceeding it is closed and its pending data dropped.
	MaxTicket = 16 << 20
)

// CodePage is the code page tickets are decoded with.
const CodePage = escpos.CodePageGB18030

// Control bytes.
const (
	dle = 0x10
	eot = 0x04
	esc = 0x1B
	gs  = 0x1D
)

// Sim is a running printer simulator. Its methods are safe for concurrent use.
type Sim struct {
	addr string

	mu      sync.Mutex
	mode    Mode
	ln      net.Listener // nil while offline or closed
	closed  bool
	conns   map[net.Conn]struct{}
	tickets []*escpos.Ticket
	wg      sync.WaitGroup
}

// Start listens on addr (for example "127.0.0.1:0") in online mode.
func Start(addr string) (*Sim, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("printersim: %w", err)
	}
	s := &Sim{addr: ln.Addr().String(), mode: Online, ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept(ln)
	return s, nil
}

// Addr returns the address the simulator listens on (stable across
// offline periods).
func (s *Sim) Addr() string { return s.addr }

// Mode returns the current mode.
func (s *Sim) Mode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// SetMode switches the simulated state. Offline closes the listener so new
// connections are refused; any other mode listens again on the same address.
// An unknown mode is treated as Online.
func (s *Sim) SetMode(m Mode) {
	switch m {
	case Online, PaperOut, CoverOpen, Offline:
	default:
		slog.Warn("printersim: unknown mode, using online", "mode", m)
		m = Online
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.mode = m
	if m == Offline {
		if s.ln != nil {
			s.ln.Close()
			s.ln = nil
		}
		return
	}
	if s.ln == nil {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			slog.Error("printersim: listen again", "addr", s.addr, "err", err)
			return
		}
		s.ln = ln
		s.wg.Add(1)
		go s.accept(ln)
	}
}

// Tickets returns the decoded tickets in the order they were completed.
func (s *Sim) Tickets() []*escpos.Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*escpos.Ticket(nil), s.tickets...)
}

// Close stops listening, closes all connections and waits for their
// handlers to finish.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *Sim) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // listener closed (offline or Close)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// statusByte builds the DLE EOT n answer for mode m (Epson layout: bits 1
// and 4 always set, bits 0 and 7 clear).
func statusByte(m Mode, n byte) byte {
	b := byte(0x12)
	switch n {
	case escpos.StatusPrinter:
		if m != Online {
			b |= 0x08 // offline
		}
	case escpos.StatusOffline:
		switch m {
		case CoverOpen:
			b |= 0x04 // cover open
		case PaperOut:
			b |= 0x20 // printing stopped by paper end
		}
	case escpos.StatusPaper:
		if m == PaperOut {
			b |= 0x0C | 0x60 // near end and paper end
		}
	}
	return b
}

func (s *Sim) addTicket(data []byte) {
	t, err := escpos.Decode(data, CodePage)
	if err != nil {
		slog.Warn("printersim: decode ticket", "err", err, "bytes", len(data))
	}
	s.mu.Lock()
	s.tickets = append(s.tickets, t)
	s.mu.Unlock()
}

func (s *Sim) serve(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	var (
		in    []byte // received bytes not yet consumed
		buf   []byte // print data of the current ticket
		chunk = make([]byte, 32<<10)
	)
	for {
		if err := c.SetReadDeadline(time.Now().Add(IdleTimeout)); err != nil {
			break
		}
		n, err := c.Read(chunk)
		in = append(in, chunk[:n]...)
		for len(in) > 0 {
			k, kind := nextToken(in)
			if k == 0 {
				break // incomplete command: wait for more bytes
			}
			tok := in[:k]
			keep := s.Mode() == Online
			switch kind {
			case tokStatus:
				if _, werr := c.Write([]byte{statusByte(s.Mode(), tok[2])}); werr != nil {
					return
				}
			case tokCut:
				if keep {
					buf = append(buf, tok...)
					s.addTicket(buf)
				}
				buf = nil
			default:
				if keep {
					buf = append(buf, tok...)
				}
			}
			in = in[k:]
		}
		if len(buf)+len(in) > MaxTicket {
			slog.Warn("printersim: ticket exceeds limit, closing connection", "limit", MaxTicket)
			return
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				slog.Debug("printersim: read", "err", err)
			}
			break
		}
	}
	// Connection closed: what remains ends a ticket.
	buf = append(buf, in...)
	if len(buf) > 0 && s.Mode() == Online {
		s.addTicket(buf)
	}
}

type tokKind int

const (
	tokData tokKind = iota
	tokStatus
	tokCut
)

// nextToken returns the length of the next unit of in and its kind, or 0 if
// in starts with a command that is not complete yet. It knows the length of
// the commands that carry arbitrary binary data (GS ( , GS v 0, GS k) so
// that bytes inside them are never mistaken for a status request or a cut.
func nextToken(in []byte) (int, tokKind) {
	switch in[0] {
	case dle:
		if len(in) < 3 {
			return 0, tokData
		}
		if in[1] == eot && in[2] >= 1 && in[2] <= 4 {
			return 3, tokStatus
		}
		return 1, tokData
	case esc:
		if len(in) < 2 {
			return 0, tokData
		}
		switch in[1] {
		case 'a', 'E', '!', '-', 'd', 'G', 'M', '3', 't', 'R', 'V', '{', 'U', ' ':
			return need(in, 3)
		case 'p':
			return need(in, 5)
		}
		return 2, tokData
	case gs:
		if len(in) < 2 {
			return 0, tokData
		}
		switch in[1] {
		case 'V':
			if len(in) < 3 {
				return 0, tokData
			}
			if in[2] == 65 || in[2] == 66 {
				if len(in) < 4 {
					return 0, tokData
				}
				return 4, tokCut
			}
			return 3, tokCut
		case '(':
			if len(in) < 5 {
				return 0, tokData
			}
			return need(in, 5+(int(in[3])|int(in[4])<<8))
		case 'k':
			if len(in) < 4 {
				return 0, tokData
			}
			if in[2] == 73 {
				return need(in, 4+int(in[3]))
			}
			return 3, tokData
		case 'v':
			if len(in) < 8 {
				return 0, tokData
			}
			if in[2] == '0' {
				return need(in, 8+(int(in[4])|int(in[5])<<8)*(int(in[6])|int(in[7])<<8))
			}
			return 2, tokData
		}
		return 2, tokData
	}
	// A run of plain bytes up to the next control byte we care about.
	i := 1
	for i < len(in) && in[i] != dle && in[i] != esc && in[i] != gs {
		i++
	}
	return i, tokData
}

func need(in []byte, n int) (int, tokKind) {
	if len(in) < n {
		return 0, tokData
	}
	return n, tokData
}
