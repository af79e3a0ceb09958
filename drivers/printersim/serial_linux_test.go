//go:build linux

package printersim

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"ihos/drivers/escpos"
)

// openSerial opens the client side of the simulator's pty as a program
// would open a serial port, in raw mode.
func openSerial(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var rawErr error
	if err := rc.Control(func(fd uintptr) { rawErr = makeRaw(int(fd)) }); err != nil || rawErr != nil {
		t.Fatal(err, rawErr)
	}
	return f
}

func startSerial(t *testing.T) (*Sim, *os.File) {
	t.Helper()
	s := startSim(t)
	path, err := s.ServeSerial()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.SerialPaths(), []string{path}) {
		t.Fatalf("SerialPaths %q, served %q", s.SerialPaths(), path)
	}
	return s, openSerial(t, path)
}

// ask sends DLE EOT n and returns the answer, or ok = false if none came.
func ask(t *testing.T, f *os.File, n byte, wait time.Duration) (b byte, ok bool) {
	t.Helper()
	if _, err := f.Write(escpos.StatusRequest(n)); err != nil {
		t.Fatal(err)
	}
	if err := f.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(f, buf); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, false
		}
		t.Fatal(err)
	}
	return buf[0], true
}

func TestSerialReceipt(t *testing.T) {
	s, f := startSerial(t)
	var raw bytes.Buffer
	if err := receipt(io.MultiWriter(f, &raw), "张三"); err != nil {
		t.Fatal(err)
	}
	checkReceipt(t, waitTickets(t, s, 1)[0], "张三")
	p := s.Printed()[0]
	if p.Seq != 1 || p.Source != SourceSerial || !bytes.Equal(p.Data, raw.Bytes()) || p.Err != "" || p.Time.IsZero() {
		t.Errorf("printed %d %s err %q, %d bytes of %d", p.Seq, p.Source, p.Err, len(p.Data), raw.Len())
	}

	// A second client after the first closed: the pty stays usable.
	f.Close()
	f2 := openSerial(t, s.SerialPaths()[0])
	if err := receipt(f2, "李四"); err != nil {
		t.Fatal(err)
	}
	checkReceipt(t, waitTickets(t, s, 2)[1], "李四")
}

func TestSerialStatusModes(t *testing.T) {
	s, f := startSerial(t)
	for _, tc := range []struct {
		mode          Mode
		online, cover bool
		paper         bool
	}{
		{Online, true, false, false},
		{PaperOut, false, false, true},
		{CoverOpen, false, true, false},
		{Online, true, false, false},
	} {
		s.SetMode(tc.mode)
		var parts []escpos.Status
		for n := byte(1); n <= 4; n++ {
			b, ok := ask(t, f, n, 2*time.Second)
			if !ok {
				t.Fatalf("%s: no answer to DLE EOT %d", tc.mode, n)
			}
			st, err := escpos.ParseStatus(n, b)
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, st)
		}
		st := escpos.Merge(parts...)
		if st.Online != tc.online || st.CoverOpen != tc.cover || st.PaperOut != tc.paper {
			t.Errorf("%s: status %+v", tc.mode, st)
		}
	}
	// Offline: the serial printer is silent, as if switched off.
	s.SetMode(Offline)
	if b, ok := ask(t, f, 1, 200*time.Millisecond); ok {
		t.Errorf("offline printer answered 0x%02X", b)
	}
	s.SetMode(Online)
	if _, ok := ask(t, f, 1, 2*time.Second); !ok {
		t.Error("no answer after going online again")
	}
	if n := len(s.Tickets()); n != 0 {
		t.Errorf("status requests made %d tickets", n)
	}
}

func TestSerialPendingAfterGap(t *testing.T) {
	s, f := startSerial(t)
	p := escpos.New(f, escpos.Options{})
	if err := p.Init().Line("无切纸").Flush(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	deadline := start.Add(SerialGap + 3*time.Second)
	for len(s.Tickets()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("pending data never became a ticket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if tk := s.Tickets()[0]; !slices.Equal(tk.Lines, []string{"无切纸"}) || tk.Cuts != 0 {
		t.Fatalf("ticket %+v", tk)
	}
}

func TestSerialClose(t *testing.T) {
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	path, err := s.ServeSerial()
	if err != nil {
		t.Fatal(err)
	}
	f := openSerial(t, path)
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close hangs with a serial client connected")
	}
	if _, err := s.ServeSerial(); err == nil {
		t.Error("ServeSerial after Close succeeded")
	}
	f.Close()
}

// An offline serial printer answers nothing; it sends the process ID
// response of a ticket it printed once it is back.
func TestSerialProcessIDHeld(t *testing.T) {
	s, f := startSerial(t)
	f.Write(receiptBytes(t, "张三"))
	waitTickets(t, s, 1)
	s.SetMode(Offline)
	cmd, _ := escpos.ProcessIDCommand([4]byte{'0', '0', '5', '1'})
	f.Write(cmd)
	if _, ok := ask(t, f, 1, 200*time.Millisecond); ok {
		t.Fatal("offline serial printer answered")
	}
	s.SetMode(Online)
	f.Write(escpos.StatusRequest(1))
	if !readUntilStatus(t, f, "0051") {
		t.Fatal("held response not sent")
	}
}
