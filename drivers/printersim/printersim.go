// Package printersim simulates an ESC/POS ticket printer on a raw TCP port
// (the "port 9100" protocol) and, on Linux, on a pseudo-terminal standing in
// for a serial port: it answers DLE EOT real-time status requests and
// process ID requests (GS ( H function 48), and decodes the print data it
// receives into escpos.Tickets, one per cut, keeping the raw bytes so that
// each ticket can be drawn as the paper would look (package ticketimage).
// Handler serves a control page to watch the tickets and switch the
// simulated state (online, paper out, cover open, offline).
//
// # Faults
//
// The simulator is a printer that loses data on a fault, the hard case for
// a print queue: while its mode is not online it discards the print data it
// receives, and a fault that it notices in the middle of a ticket (a byte
// of the ticket arrives while the mode is not online) clears its buffer:
// that whole ticket is lost, the rest of it up to its cut is discarded too,
// and it is counted by Lost. Tickets are never printed in part. A fault
// that comes and goes between two reads of the connection goes unnoticed,
// as a printer that had nothing to print would not care.
//
// # Process ID
//
// A process ID request (GS ( H fn 48, escpos.ProcessID) is answered with
// 37h 22h d1 d2 d3 d4 00h when everything received since the previous
// request (or since the connection opened) was processed: every ticket in
// between was printed. If one was lost, the request is not answered, as
// Epson specifies for IDs related to data a printer cleared. A request
// whose data was all printed before a fault is answered even while the
// mode is not online: the related data was processed. An offline serial
// printer answers nothing, so it holds that response and sends it when it
// is back (the latest one only). SetProcessIDSupport(false) makes it a
// printer that ignores the command.
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
	lost    int
	noPID   bool // process ID requests are not answered
	bps     int  // bytes processed per second; 0: as fast as they come
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

// SetProcessIDSupport makes the simulator answer process ID requests (the
// default) or ignore them, as many compatible printers do.
func (s *Sim) SetProcessIDSupport(on bool) {
	s.mu.Lock()
	s.noPID = !on
	s.mu.Unlock()
}

func (s *Sim) answersProcessID() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.noPID
}

// SetSpeed limits how fast the simulator takes in data, in bytes per second
// (0, the default: as fast as it arrives), like a printer that prints as
// it receives and stops reading when its buffer is full. A slow printer
// lets a test switch the mode while a large ticket is still arriving.
func (s *Sim) SetSpeed(bytesPerSecond int) {
	s.mu.Lock()
	s.bps = max(bytesPerSecond, 0)
	s.mu.Unlock()
}

func (s *Sim) speed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bps
}

// Lost returns how many tickets the simulator dropped because the mode
// was not online while they arrived (see the package comment).
func (s *Sim) Lost() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lost
}

func (s *Sim) addLost() {
	s.mu.Lock()
	s.lost++
	s.mu.Unlock()
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
// answers status requests at once, collects print data into tickets, one
// per cut, and answers process ID requests (see the package comment). A TCP
// connection ends after IdleTimeout without data, and what it sent after
// the last cut is a ticket of its own. A serial line never ends by itself:
// pending data becomes a ticket after SerialGap of silence, and an offline
// serial printer answers nothing at all, as if switched off (an offline TCP
// printer refuses connections instead).
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
		// spoiled: data of the current ticket was lost to a fault; the
		// rest of it, up to its cut, is dropped too.
		spoiled bool
		// lost: a ticket was lost since the last process ID request,
		// which is therefore not answered.
		lost bool
		// held is a process ID response an offline serial printer sends
		// when it is back.
		held []byte
	)
	// flush ends the current ticket with what is pending.
	flush := func() {
		buf = append(buf, in...)
		if len(buf) > 0 {
			if s.Mode() == Online && !spoiled {
				s.addTicket(buf, source)
			} else {
				s.addLost()
				lost = true
			}
		}
		in, buf, spoiled = nil, nil, false
	}
	for {
		if err := c.SetReadDeadline(time.Now().Add(idle)); err != nil {
			break
		}
		bps := s.speed()
		p := chunk
		if bps > 0 {
			p = chunk[:min(len(chunk), 4<<10)]
		}
		n, err := c.Read(p)
		in = append(in, p[:n]...)
		for len(in) > 0 {
			k, kind := nextToken(in)
			if k == 0 {
				break // incomplete command: wait for more bytes
			}
			tok := in[:k]
			mode := s.Mode()
			online := mode == Online
			if held != nil && !(serial && mode == Offline) {
				if _, werr := c.Write(held); werr != nil {
					return
				}
				held = nil
			}
			if !online && len(buf) > 0 {
				// A fault in the middle of a ticket: the printer clears
				// its buffer.
				buf, spoiled = nil, true
			}
			switch kind {
			case tokStatus:
				if serial && mode == Offline {
					break
				}
				if _, werr := c.Write([]byte{statusByte(mode, tok[2])}); werr != nil {
					return
				}
			case tokCut:
				if online && !spoiled {
					buf = append(buf, tok...)
					s.addTicket(buf, source)
				} else {
					s.addLost()
					lost = true
				}
				buf, spoiled = nil, false
			case tokProcessID:
				if !lost && !spoiled && s.answersProcessID() {
					resp := append([]byte{escpos.ResponseHeader, 0x22}, tok[7:11]...)
					resp = append(resp, 0)
					if serial && mode == Offline {
						held = resp // only the latest is kept, as Epson's printers do
					} else if _, werr := c.Write(resp); werr != nil {
						return
					}
				}
				lost, spoiled = false, false
			default:
				switch {
				case !online:
					spoiled = true
				case !spoiled:
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
		if bps > 0 && n > 0 {
			time.Sleep(time.Duration(n) * time.Second / time.Duration(bps))
		}
		if err != nil {
			if serial && errors.Is(err, os.ErrDeadlineExceeded) {
				flush()
				if held != nil && s.Mode() != Offline {
					if _, werr := c.Write(held); werr != nil {
						return
					}
					held = nil
				}
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
	tokProcessID // GS ( H fn 48
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
			k, kind := need(in, 5+(int(in[3])|int(in[4])<<8))
			if k == 11 && in[2] == 'H' && in[5] == 48 && in[6] == 48 {
				kind = tokProcessID
			}
			return k, kind
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
