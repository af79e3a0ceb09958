// Package printersim simulates an ESC/POS ticket printer on a raw TCP port
// (the "port 9100" protocol) and, on Linux, on a pseudo-terminal standing in
// for a serial port: it answers DLE EOT real-time status requests and decodes
// the print data it receives into escpos.Tickets, one per cut, keeping the
// raw bytes so that each ticket can be drawn as the paper would look
// (package ticketimage). Handler serves a control page to watch the tickets
// and switch the simulated state (online, paper out, cover open, offline).
package printersim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"ihos"
	"ihos/drivers/escpos"
	"ihos/drivers/ticketimage"
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
	// SerialGap ends a ticket on the serial port when print data without a
	// cut is followed by this much silence: a serial line has no
	// connection whose end would close the ticket, as TCP has.
	SerialGap = time.Second
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

// Sources of a Printed ticket.
const (
	SourceTCP    = "tcp"
	SourceSerial = "serial"
)

// Printed is one ticket the simulator received.
type Printed struct {
	// Seq numbers tickets from 1 in the order they were completed; it is
	// the index in Printed() and Tickets() plus one.
	Seq    int
	Time   time.Time
	Source string // SourceTCP or SourceSerial
	// Data is the print data as received, up to and including the cut;
	// status requests are not part of it.
	Data []byte
	// Ticket is Data decoded; after a decode error it holds what was
	// decoded before the bad command, and Err says why.
	Ticket *escpos.Ticket
	Err    string
}

// Sim is a running printer simulator. Its methods are safe for concurrent use.
type Sim struct {
	addr string

	mu      sync.Mutex
	mode    Mode
	ln      net.Listener // nil while offline or closed
	closed  bool
	conns   map[io.Closer]struct{} // TCP connections and pty masters
	ptys    []string
	printed []Printed
	onPrint func(Printed)
	wg      sync.WaitGroup
}

// Start listens on addr (for example "127.0.0.1:0") in online mode.
func Start(addr string) (*Sim, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("printersim: %w", err)
	}
	s := &Sim{addr: ln.Addr().String(), mode: Online, ln: ln, conns: map[io.Closer]struct{}{}}
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
	ts := make([]*escpos.Ticket, len(s.printed))
	for i, p := range s.printed {
		ts[i] = p.Ticket
	}
	return ts
}

// Printed returns every ticket received, in the order they were completed.
// The records are shared: callers must not modify Data or Ticket.
func (s *Sim) Printed() []Printed {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Printed(nil), s.printed...)
}

// OnPrint sets a function called with each ticket once it is complete (the
// command writes files with it). It runs on the connection's goroutine, so
// a slow fn slows that printer connection down, as a slow printer would.
func (s *Sim) OnPrint(fn func(Printed)) {
	s.mu.Lock()
	s.onPrint = fn
	s.mu.Unlock()
}

// PNG draws ticket i (an index into Printed and Tickets) as printed on paper
// widthDots wide (escpos.Width58mm, Width80mm or Width106mm).
func (s *Sim) PNG(i int, widthDots int) ([]byte, error) {
	s.mu.Lock()
	if i < 0 || i >= len(s.printed) {
		n := len(s.printed)
		s.mu.Unlock()
		return nil, ihos.Errorf(ihos.ENotFound, "没有第 %d 张票据（共 %d 张）", i+1, n)
	}
	t := s.printed[i].Ticket
	s.mu.Unlock()
	return ticketimage.PNG(t, widthDots)
}

// SerialPaths returns the pseudo-terminals ServeSerial opened.
func (s *Sim) SerialPaths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ptys...)
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
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.serve(c, SourceTCP)
		}()
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

func (s *Sim) addTicket(data []byte, source string) {
	t, err := escpos.Decode(data, CodePage)
	p := Printed{Time: time.Now(), Source: source, Data: data, Ticket: t}
	if err != nil {
		slog.Warn("printersim: decode ticket", "err", err, "bytes", len(data), "source", source)
		p.Err = err.Error()
	}
	s.mu.Lock()
	p.Seq = len(s.printed) + 1
	s.printed = append(s.printed, p)
	fn := s.onPrint
	s.mu.Unlock()
	slog.Info("printersim: ticket printed", "seq", p.Seq, "source", source, "bytes", len(data), "lines", len(t.Lines))
	if fn != nil {
		fn(p)
	}
}

// conn is what serve needs of a connection; net.Conn and the pty master
// (a pollable *os.File) both have it.
type conn interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
}

// serve runs the ESC/POS protocol on one byte stream until it ends: it
// answers status requests at once and collects print data into tickets,
// one per cut. A TCP connection ends after IdleTimeout without data, and
// what it sent after the last cut is a ticket of its own. A serial line
// never ends by itself: pending data becomes a ticket after SerialGap of
// silence, and an offline serial printer answers nothing at all, as if
// switched off (an offline TCP printer refuses connections instead).
func (s *Sim) serve(c conn, source string) {
	serial := source == SourceSerial
	idle := IdleTimeout
	if serial {
		idle = SerialGap
	}
	var (
		in    []byte // received bytes not yet consumed
		buf   []byte // print data of the current ticket
		chunk = make([]byte, 32<<10)
	)
	// flush ends the current ticket with what is pending.
	flush := func() {
		buf = append(buf, in...)
		if len(buf) > 0 && s.Mode() == Online {
			s.addTicket(buf, source)
		}
		in, buf = nil, nil
	}
	for {
		if err := c.SetReadDeadline(time.Now().Add(idle)); err != nil {
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
			mode := s.Mode()
			keep := mode == Online
			switch kind {
			case tokStatus:
				if serial && mode == Offline {
					break
				}
				if _, werr := c.Write([]byte{statusByte(mode, tok[2])}); werr != nil {
					return
				}
			case tokCut:
				if keep {
					buf = append(buf, tok...)
					s.addTicket(buf, source)
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
			slog.Warn("printersim: ticket exceeds limit, dropping it", "limit", MaxTicket, "source", source)
			if !serial {
				return
			}
			in, buf = nil, nil
		}
		if err != nil {
			if serial && errors.Is(err, os.ErrDeadlineExceeded) {
				flush()
				continue
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) &&
				!errors.Is(err, os.ErrDeadlineExceeded) {
				slog.Debug("printersim: read", "err", err, "source", source)
			}
			break
		}
	}
	// Connection closed: what remains ends a ticket.
	flush()
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
