package transport

import (
	"context"
	"errors"
	"testing"
	"time"

	"ihos"
	"ihos/drivers/escpos"
	"ihos/drivers/printersim"
)

// trickle is a back channel that delivers its bytes one per read.
type trickle struct{ b []byte }

func (r *trickle) read(p []byte, deadline time.Time) (int, error) {
	if len(r.b) == 0 {
		time.Sleep(time.Until(deadline))
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

func pidResponse(id string) []byte {
	return append(append([]byte{0x37, 0x22}, id...), 0)
}

func TestBackChannel(t *testing.T) {
	ctx := context.Background()
	expired, cancel := context.WithCancel(ctx)
	cancel()

	// A process ID response arriving with a status answer is remembered;
	// its digits ("2" is 0x32, which has the status bits) are not taken
	// for status bytes.
	f := &fakeIO{answers: map[byte][]byte{1: append(pidResponse("2222"), 0x1A), 2: {0x32}, 4: {0x12}}}
	b := &backChannel{read: f.read}
	s, err := b.status(ctx, f)
	if err != nil || s.Raw != [4]byte{0x1A, 0x32, 0, 0x12} {
		t.Fatalf("status %+v, %v", s, err)
	}
	if err := b.waitProcessed(expired, [4]byte([]byte("2222"))); err != nil {
		t.Fatalf("remembered ID: %v", err)
	}
	if err := b.waitProcessed(expired, [4]byte([]byte("2222"))); !errors.Is(err, context.Canceled) {
		t.Fatalf("ID taken twice: %v", err)
	}

	// Byte by byte, between stale status bytes and noise; another ID first.
	r := &trickle{b: append(append(append([]byte{0x12, 0x16}, pidResponse("0011")...), 0xFF, 0x37, 0x70, 0x12), pidResponse("0012")...)}
	b = &backChannel{read: r.read}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := b.waitProcessed(wctx, [4]byte([]byte("0012"))); err != nil {
		t.Fatal(err)
	}
	if err := b.waitProcessed(expired, [4]byte([]byte("0011"))); err != nil {
		t.Fatalf("earlier ID: %v", err)
	}

	// Nothing comes.
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = b.waitProcessed(tctx, [4]byte([]byte("0013")))
	checkError(t, err, ihos.EUnavailable, "")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}

	// Only the last few dozen IDs are kept.
	b = &backChannel{}
	for i := range maxRememberedIDs + 1 {
		b.remember([4]byte{'A', byte('0' + i/10), byte('0' + i%10), 'x'})
	}
	if b.take([4]byte{'A', '0', '0', 'x'}) || !b.take([4]byte{'A', '0', '1', 'x'}) {
		t.Error("oldest ID kept or second dropped")
	}
}

// confirmSim prints a ticket followed by a process ID request on c and
// reports whether the printer confirmed it within wait.
func confirmSim(t *testing.T, c Conn, id string, wait time.Duration) error {
	t.Helper()
	cmd, err := escpos.ProcessIDCommand([4]byte([]byte(id)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(append(ticket(t, "患者："+id), cmd...)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return c.(Confirmer).WaitProcessed(ctx, [4]byte([]byte(id)))
}

func TestTCPWaitProcessed(t *testing.T) {
	s := startSim(t)
	ctx := context.Background()
	c, err := Open(ctx, TCP, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := confirmSim(t, c, "0001", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Tickets()); n != 1 {
		t.Fatalf("confirmed with %d tickets", n)
	}

	// The response arrives while Status reads: it is kept for later.
	cmd, _ := escpos.ProcessIDCommand([4]byte([]byte("0002")))
	c.Write(append(ticket(t, "患者：李四"), cmd...))
	if st, err := c.Status(ctx); err != nil || !st.Online {
		t.Fatalf("status %+v, %v", st, err)
	}
	if err := confirmSim(t, c, "0003", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.(Confirmer).WaitProcessed(wctx, [4]byte([]byte("0002"))); err != nil {
		t.Fatalf("response read by Status: %v", err)
	}

	// Paper out: the ticket is lost and never confirmed.
	s.SetMode(printersim.PaperOut)
	err = confirmSim(t, c, "0004", 200*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("paper out: %v", err)
	}
	if st, err := c.Status(ctx); err != nil || !st.PaperOut {
		t.Fatalf("status %+v, %v", st, err)
	}
}
