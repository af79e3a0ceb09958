package transport

import (
	"context"
	"errors"
	"testing"
	"time"

	"ihos"
	"ihos/drivers/printersim"
)

func TestUSBLPMissing(t *testing.T) {
	_, err := Open(context.Background(), USBLP, "/dev/usb/lp97")
	checkError(t, err, ihos.EUnavailable, "不存在")
	_, err = Open(context.Background(), USBLP, "/dev/usb/../sda")
	checkError(t, err, ihos.EInvalid, "/dev/usb/lp0")
}

// openUSBLPOn opens any device as usblp does, bypassing the address check,
// so the non-blocking write, poll and status code runs against a pty. (The
// usblp-only parts, EINVAL on read and LPGETSTATUS, need real hardware.)
func openUSBLPOn(t *testing.T, ctx context.Context, path string) Conn {
	t.Helper()
	c, err := openUSBLP(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestUSBLPOverPTY(t *testing.T) {
	p := startPTYPrinter(t, [4]byte{0x12, 0x16, 0, 0x12}) // cover open
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := openUSBLPOn(t, ctx, p.slave)
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Online || !st.CoverOpen || st.PaperOut {
		t.Errorf("status = %+v", st)
	}
	// Large enough to fill the pty buffer, so writes hit EAGAIN and poll.
	var data []byte
	for len(data) < 256<<10 {
		data = append(data, ticket(t, "患者：王五")...)
	}
	if n, err := c.Write(data); err != nil || n != len(data) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	p.waitData(t, data)
}

// TestUSBLPStalled checks that a printer that stops accepting data (paper
// out) makes Write fail at the job's deadline instead of hanging.
func TestUSBLPStalled(t *testing.T) {
	_, slave := openPTY(t) // nobody reads the master
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c := openUSBLPOn(t, ctx, slave)
	start := time.Now()
	_, err := c.Write(make([]byte, 1<<20))
	checkError(t, err, ihos.EUnavailable, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded inside", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stalled write returned after %v", d)
	}
	c.Close()
}

// TestUSBLPWaitProcessed reads process ID responses through the usblp code
// against the simulator's serial pty.
func TestUSBLPWaitProcessed(t *testing.T) {
	s := startSim(t)
	path, err := s.ServeSerial()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := openUSBLPOn(t, ctx, path)
	defer c.Close()
	if err := confirmSim(t, c, "0201", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	s.SetMode(printersim.CoverOpen)
	if err := confirmSim(t, c, "0202", 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cover open: %v", err)
	}
	if st, err := c.Status(ctx); err != nil || !st.CoverOpen {
		t.Fatalf("status %+v, %v", st, err)
	}
}
