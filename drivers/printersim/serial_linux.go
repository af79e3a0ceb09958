//go:build linux

package printersim

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"ihos"
)

// ServeSerial opens a pseudo-terminal and serves the printer on it as on a
// TCP connection (same status answers, same tickets); a program under test
// opens the returned path (/dev/pts/N) as it would a USB-serial adapter.
// The terminal is in raw mode, so bytes pass unchanged in both directions,
// and the baud rate the client sets is accepted and ignored.
//
// The simulator keeps the terminal's client side open itself, so clients
// may open and close the path any number of times. A consequence: status
// answers a client requested but did not read stay queued for the next
// client, as on a real serial line; clients should flush input when they
// open the port. Each call opens another terminal; Close closes them all.
func (s *Sim) ServeSerial() (path string, err error) {
	p, err := openPTY()
	if err != nil {
		return "", ihos.Errorf(ihos.EUnavailable, "无法创建模拟串口：%v", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		p.Close()
		return "", ihos.Errorf(ihos.EUnavailable, "打印机模拟器已关闭")
	}
	s.conns[p] = struct{}{}
	s.ptys = append(s.ptys, p.path)
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			p.Close()
			s.mu.Lock()
			delete(s.conns, p)
			s.mu.Unlock()
		}()
		s.serve(p.master, SourceSerial)
	}()
	return p.path, nil
}

// pty is a pseudo-terminal: the master the simulator serves and a slave fd
// held open so that the master never reads EIO between clients.
type pty struct {
	master *os.File
	slave  int
	path   string
	once   sync.Once
}

func (p *pty) Close() error {
	var err error
	p.once.Do(func() {
		err = p.master.Close()
		unix.Close(p.slave)
	})
	return err
}

// openPTY opens /dev/ptmx, unlocks and names its slave, and puts the slave
// in raw mode. The master is non-blocking so that os.NewFile makes it
// pollable: read deadlines work and Close interrupts a pending Read.
func openPTY() (*pty, error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	fail := func(err error) (*pty, error) {
		unix.Close(m)
		return nil, err
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		return fail(fmt.Errorf("unlock pty: %w", err))
	}
	n, err := unix.IoctlGetUint32(m, unix.TIOCGPTN)
	if err != nil {
		return fail(fmt.Errorf("pty number: %w", err))
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	sl, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", path, err))
	}
	if err := makeRaw(sl); err != nil {
		unix.Close(sl)
		return fail(fmt.Errorf("raw mode %s: %w", path, err))
	}
	return &pty{master: os.NewFile(uintptr(m), "/dev/ptmx"), slave: sl, path: path}, nil
}

// makeRaw sets fd's terminal to raw mode as cfmakeraw(3) does: no echo, no
// line editing or signals, no CR/LF translation, 8 data bits, reads return
// as soon as one byte is there.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
