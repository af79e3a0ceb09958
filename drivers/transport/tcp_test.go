package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"ihos"
	"ihos/drivers/escpos"
	"ihos/drivers/printersim"
)

func startSim(t *testing.T) *printersim.Sim {
	t.Helper()
	s, err := printersim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func waitTickets(t *testing.T, s *printersim.Sim, n int) []*escpos.Ticket {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		ts := s.Tickets()
		if len(ts) >= n {
			return ts
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d tickets, want %d", len(ts), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTCPPrint(t *testing.T) {
	s := startSim(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := Open(ctx, TCP, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Online || st.PaperOut || st.CoverOpen {
		t.Errorf("status before printing = %+v", st)
	}
	if _, err := c.Write(ticket(t, "患者：张三")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx); err != nil { // status right after a job
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	tk := waitTickets(t, s, 1)[0]
	if len(tk.Lines) < 3 || tk.Lines[0] != "挂号凭条" || tk.Lines[1] != "患者：张三" || tk.Cuts != 1 {
		t.Fatalf("ticket = %q, cuts %d", tk.Lines, tk.Cuts)
	}
}

func TestTCPStatusModes(t *testing.T) {
	s := startSim(t)
	ctx := context.Background()
	tests := []struct {
		mode                        printersim.Mode
		online, paperOut, coverOpen bool
	}{
		{printersim.Online, true, false, false},
		{printersim.PaperOut, false, true, false},
		{printersim.CoverOpen, false, false, true},
	}
	for _, tt := range tests {
		s.SetMode(tt.mode)
		c, err := Open(ctx, TCP, s.Addr())
		if err != nil {
			t.Fatalf("%s: %v", tt.mode, err)
		}
		st, err := c.Status(ctx)
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", tt.mode, err)
		}
		if st.Online != tt.online || st.PaperOut != tt.paperOut || st.CoverOpen != tt.coverOpen {
			t.Errorf("%s: status = %+v", tt.mode, st)
		}
	}

	s.SetMode(printersim.Offline)
	_, err := Open(ctx, TCP, s.Addr())
	checkError(t, err, ihos.EUnavailable, "无法连接网络打印机")
}

// TestTCPSilent checks a peer that accepts but never answers (a printer
// port held by something else, or the wrong device).
func TestTCPSilent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // read and ignore everything, close on EOF
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	c, err := Open(context.Background(), TCP, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Status(context.Background())
	checkError(t, err, ihos.EUnavailable, "打印机无响应")
	if d := time.Since(start); d > 3*statusTimeout {
		t.Errorf("silent status took %v", d)
	}
}

// TestTCPCancel checks that cancelling the job's context aborts a write
// that is blocked because the printer does not read.
func TestTCPCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // never read from
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Open(ctx, TCP, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { (<-accepted).Close() }()
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = c.Write(make([]byte, 64<<20))
	checkError(t, err, ihos.EUnavailable, "已取消")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled inside", err)
	}
	c.Close()
}
