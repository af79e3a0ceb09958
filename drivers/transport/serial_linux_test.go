package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"ihos"
	"ihos/drivers/escpos"
	"ihos/drivers/printersim"
)

// ptyPrinter is a serial printer on the master side of a pseudo-terminal:
// it answers DLE EOT requests with status[n-1] (0: silence) and collects
// everything else.
type ptyPrinter struct {
	slave  string // /dev/pts/N: the address to open
	master *os.File
	status [4]byte

	mu   sync.Mutex
	data []byte
	done chan struct{}
}

// openPTY opens a pty pair and puts the slave in raw mode (no echo of the
// answers, no newline translation). It holds one slave descriptor for the
// whole test, which also keeps the master readable (no EIO) when the Conn
// under test closes its own.
func openPTY(t *testing.T) (master *os.File, slave string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	var n uint32
	rc, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		if ierr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ierr != nil { // unlockpt
			return
		}
		n, ierr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN) // ptsname
	})
	if err != nil || ierr != nil {
		m.Close()
		t.Fatalf("pty setup: %v %v", err, ierr)
	}
	slave = fmt.Sprintf("/dev/pts/%d", n)
	sfd, err := unix.Open(slave, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		unix.Close(sfd)
	})
	tio, err := unix.IoctlGetTermios(sfd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	// cfmakeraw
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	if err := unix.IoctlSetTermios(sfd, unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	return m, slave
}

// startPTYPrinter serves the master side of a new pty.
func startPTYPrinter(t *testing.T, status [4]byte) *ptyPrinter {
	t.Helper()
	m, slave := openPTY(t)
	p := &ptyPrinter{slave: slave, master: m, status: status, done: make(chan struct{})}
	go p.serve()
	t.Cleanup(func() {
		m.Close()
		<-p.done
	})
	return p
}

func (p *ptyPrinter) serve() {
	defer close(p.done)
	buf := make([]byte, 4096)
	var in []byte
	for {
		n, err := p.master.Read(buf)
		in = append(in, buf[:n]...)
		for len(in) > 0 {
			if in[0] == 0x10 {
				if len(in) < 3 {
					break
				}
				if in[1] == 0x04 && in[2] >= 1 && in[2] <= 4 {
					if b := p.status[in[2]-1]; b != 0 {
						p.master.Write([]byte{b})
					}
					in = in[3:]
					continue
				}
			}
			p.mu.Lock()
			p.data = append(p.data, in[0])
			p.mu.Unlock()
			in = in[1:]
		}
		if err != nil {
			return
		}
	}
}

// waitData waits until the printer has received want.
func (p *ptyPrinter) waitData(t *testing.T, want []byte) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		p.mu.Lock()
		got := append([]byte(nil), p.data...)
		p.mu.Unlock()
		if bytes.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) || len(got) > len(want) {
			t.Fatalf("printer received %d bytes %q, want %d bytes", len(got), got, len(want))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSerialPrint(t *testing.T) {
	p := startPTYPrinter(t, [4]byte{0x12, 0x12, 0, 0x12})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := Open(ctx, Serial, p.slave+",9600")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Online || st.PaperOut || st.CoverOpen || st.Raw != [4]byte{0x12, 0x12, 0, 0x12} {
		t.Errorf("status = %+v", st)
	}
	data := ticket(t, "患者：李四")
	if n, err := c.Write(data); err != nil || n != len(data) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	p.waitData(t, data)
	tk, err := escpos.Decode(data, escpos.CodePageGB18030)
	if err != nil || tk.Lines[1] != "患者：李四" {
		t.Fatalf("decoded %q, %v", tk.Lines, err)
	}
}

func TestSerialStatusPaperOut(t *testing.T) {
	// Bytes as printersim answers in paper_out mode.
	p := startPTYPrinter(t, [4]byte{0x1A, 0x32, 0, 0x7E})
	c, err := Open(context.Background(), Serial, p.slave+",115200,8N1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Online || !st.PaperOut || !st.PaperNearEnd || st.CoverOpen {
		t.Errorf("status = %+v", st)
	}
}

func TestSerialSilent(t *testing.T) {
	p := startPTYPrinter(t, [4]byte{})
	c, err := Open(context.Background(), Serial, p.slave)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Status(context.Background())
	checkError(t, err, ihos.EUnavailable, "打印机无响应")
}

func TestSerialMissing(t *testing.T) {
	_, err := Open(context.Background(), Serial, "/dev/ttyUSB97,9600")
	checkError(t, err, ihos.EUnavailable, "不存在")
	_, err = Open(context.Background(), Serial, "/dev/null")
	checkError(t, err, ihos.EInvalid, "不是串口设备")
}

func TestSerialPorts(t *testing.T) {
	ports, err := SerialPorts()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if p.Name == "" || (p.USB && p.VID == "") {
			t.Errorf("port %+v", p)
		}
	}
	t.Logf("%d serial ports: %+v", len(ports), ports)
}

func TestSerialWaitProcessed(t *testing.T) {
	s, err := printersim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	path, err := s.ServeSerial()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(context.Background(), Serial, path+",115200")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := confirmSim(t, c, "0101", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	s.SetProcessIDSupport(false)
	if err := confirmSim(t, c, "0102", 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("printer without support: %v", err)
	}
	if n := len(s.Tickets()); n != 2 {
		t.Fatalf("%d tickets", n)
	}
}
