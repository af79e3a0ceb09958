package printing

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"ihos"
	"ihos/drivers/escpos"
	"ihos/drivers/printersim"
	"ihos/drivers/transport"
)

// TestFallbackWithoutProcessID: a printer that ignores process ID requests
// is found out by the first probe and printed to as before: status after
// the write, and a fault after it leaves the job for a person.
func TestFallbackWithoutProcessID(t *testing.T) {
	s := newService(t)
	sim := startSim(t)
	sim.SetProcessIDSupport(false)
	pid := addPrinter(t, s.DB, "旧款打印机", sim.Addr())
	var mu sync.Mutex
	faultAfter := ""
	s.wrote = func(id string) {
		mu.Lock()
		defer mu.Unlock()
		if id == faultAfter {
			sim.SetMode(printersim.PaperOut)
			faultAfter = ""
		}
	}
	run(t, s)
	a := enqueue(t, s, pid, 1)
	waitFor(t, "printed", 5*time.Second, func() bool { return jobStatus(t, s, a.ID) == StatusPrinted })
	if live := s.Live(pid); live.Confirm != ConfirmUnsupported || live.ConfirmLabel != "不支持打印完成确认" {
		t.Fatalf("live %+v", live)
	}

	b := enqueue(t, s, pid, 2)
	mu.Lock()
	faultAfter = b.ID
	mu.Unlock()
	c := enqueue(t, s, pid, 3)
	waitFor(t, "unknown", 5*time.Second, func() bool { return jobStatus(t, s, b.ID) == StatusUnknown })
	if j, _ := s.Job(context.Background(), b.ID); !strings.Contains(j.LastError, "缺纸") {
		t.Errorf("last error %q", j.LastError)
	}
	sim.SetMode(printersim.Online)
	time.Sleep(100 * time.Millisecond)
	if st := jobStatus(t, s, c.ID); st != StatusQueued {
		t.Fatalf("job behind the unknown one is %s", st)
	}
	seqs, _ := printed(sim)
	out := len(seqs) == 2
	if err := s.Confirm(ihos.WithActor(context.Background(), ihos.Actor{UserID: "u1", Username: "it01"}), b.ID, out); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lane done", 5*time.Second, func() bool { return jobStatus(t, s, c.ID) == StatusPrinted })
	if seqs, _ := printed(sim); fmt.Sprint(seqs) != "[1 2 3]" {
		t.Fatalf("printed %v", seqs)
	}
}

// TestPrinterStopsConfirming: a printer that confirmed jobs is replaced by
// one that does not answer. The job it does not confirm is not sent again
// (it may well have printed) but left for a person, and the printer is
// marked as not confirming.
func TestPrinterStopsConfirming(t *testing.T) {
	s := newService(t)
	sim := startSim(t)
	pid := addPrinter(t, s.DB, "自助机 K05", sim.Addr())
	run(t, s)
	a := enqueue(t, s, pid, 1)
	waitFor(t, "printed", 5*time.Second, func() bool { return jobStatus(t, s, a.ID) == StatusPrinted })
	if c := s.Live(pid).Confirm; c != ConfirmSupported {
		t.Fatalf("confirm %q", c)
	}
	sim.SetProcessIDSupport(false)
	b := enqueue(t, s, pid, 2)
	waitFor(t, "unknown", 5*time.Second, func() bool { return jobStatus(t, s, b.ID) == StatusUnknown })
	if c := s.Live(pid).Confirm; c != ConfirmUnsupported {
		t.Errorf("confirm %q", c)
	}
	if seqs, _ := printed(sim); fmt.Sprint(seqs) != "[1 2]" {
		t.Fatalf("printed %v", seqs)
	}
	if j, _ := s.Job(context.Background(), b.ID); j.Attempts != 1 {
		t.Errorf("attempts %d", j.Attempts)
	}
}

// keepingConn is a printer that keeps its buffer on paper out: after a job
// it reports paper out for outFor, then prints and confirms the job.
type keepingConn struct {
	mu      sync.Mutex
	resume  time.Time // zero: no job yet
	outFor  time.Duration
	written int
	probes  map[[4]byte]bool
}

func (c *keepingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) == 11 { // a bare probe
		c.probes[[4]byte(p[7:])] = true
		return len(p), nil
	}
	c.written++
	c.resume = time.Now().Add(c.outFor)
	return len(p), nil
}

func (c *keepingConn) paperOut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.resume.IsZero() && time.Now().Before(c.resume)
}

func (c *keepingConn) Status(context.Context) (escpos.Status, error) {
	if c.paperOut() {
		return escpos.Status{PaperOut: true, Raw: [4]byte{0x1A, 0x32, 0x12, 0x7E}}, nil
	}
	return escpos.Status{Online: true, Raw: [4]byte{0x12, 0x12, 0x12, 0x12}}, nil
}

func (c *keepingConn) WaitProcessed(ctx context.Context, id [4]byte) error {
	for {
		c.mu.Lock()
		ok := id[0] == 'P' && c.probes[id] || id[0] != 'P' && !c.resume.IsZero()
		c.mu.Unlock()
		if ok && !c.paperOut() {
			return nil
		}
		select {
		case <-ctx.Done():
			return &ihos.Error{Code: ihos.EUnavailable, Message: "超时", Err: ctx.Err()}
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (c *keepingConn) Close() error { return nil }

var _ transport.Confirmer = (*keepingConn)(nil)

// TestPaperOutKeepsBuffer: a printer that runs out of paper in the middle
// of a ticket and finishes it once paper is loaded confirms it then; the
// job is printed once, without a person and without being sent again.
func TestPaperOutKeepsBuffer(t *testing.T) {
	s := newService(t)
	conn := &keepingConn{outFor: 600 * time.Millisecond, probes: map[[4]byte]bool{}} // several ConfirmGrace periods
	s.Open = func(ctx context.Context, kind, address string) (transport.Conn, error) { return conn, nil }
	pid := addPrinter(t, s.DB, "自助机 K06", "127.0.0.1:1")
	run(t, s)
	j := enqueue(t, s, pid, 1)
	waitFor(t, "paper out seen", 5*time.Second, func() bool {
		j, _ := s.Job(context.Background(), j.ID)
		return j.Status == StatusPrinting && strings.Contains(j.LastError, "缺纸")
	})
	waitFor(t, "printed", 5*time.Second, func() bool { return jobStatus(t, s, j.ID) == StatusPrinted })
	j, _ = s.Job(context.Background(), j.ID)
	conn.mu.Lock()
	written := conn.written
	conn.mu.Unlock()
	if j.Attempts != 1 || written != 1 || j.LastError != "" {
		t.Errorf("job %+v, written %d times", j, written)
	}
}
