package transport

import (
	"context"
	"io"
	"sync"
	"time"

	"ihos"
	"ihos/drivers/escpos"
)

const (
	// maxRememberedIDs bounds the process IDs kept for WaitProcessed.
	// The print queue waits for one ticket at a time, so a handful would
	// do; older ones are dropped first.
	maxRememberedIDs = 32
	// waitSlice is the longest single read of WaitProcessed, so that the
	// end of its context is noticed within it.
	waitSlice = 200 * time.Millisecond
)

// backChannel parses what a printer sends back on one connection: status
// bytes for Status, process ID responses for WaitProcessed (see the
// package comment). Its mutex makes the two safe to call from different
// goroutines, although a Conn is used by one.
type backChannel struct {
	read readFunc

	mu  sync.Mutex
	in  []byte    // bytes read and not parsed yet (an incomplete block)
	ids [][4]byte // process IDs received and not yet waited for, oldest first
	buf [64]byte
}

// fill reads once, waiting until deadline at most.
func (b *backChannel) fill(deadline time.Time) error {
	n, err := b.read(b.buf[:], deadline)
	b.in = append(b.in, b.buf[:n]...)
	return err
}

// next parses the bytes read: it remembers process ID responses and
// returns the first status byte, if any. An incomplete response block stays
// for the next read. Other bytes are skipped.
func (b *backChannel) next() (byte, bool) {
	for len(b.in) > 0 {
		c := b.in[0]
		if c == escpos.ResponseHeader {
			id, n, ok := escpos.ParseProcessID(b.in)
			if n == 0 {
				return 0, false // wait for the rest of the block
			}
			b.in = b.in[n:]
			if ok {
				b.remember(id)
			}
			continue
		}
		b.in = b.in[1:]
		if escpos.IsStatusByte(c) {
			return c, true
		}
	}
	return 0, false
}

func (b *backChannel) remember(id [4]byte) {
	if len(b.ids) == maxRememberedIDs {
		b.ids = append(b.ids[:0], b.ids[1:]...)
	}
	b.ids = append(b.ids, id)
}

// take removes id from the remembered IDs and reports whether it was there.
func (b *backChannel) take(id [4]byte) bool {
	for i, x := range b.ids {
		if x == id {
			b.ids = append(b.ids[:i], b.ids[i+1:]...)
			return true
		}
	}
	return false
}

// dropStale parses what was read so far and drops its status bytes: they
// arrived before the request about to be sent, so they answer an earlier
// one (a query that timed out) and would be taken for the new answer.
func (b *backChannel) dropStale() {
	for {
		if _, ok := b.next(); !ok {
			return
		}
	}
}

// status sends DLE EOT 1, 2 and 4 and merges the answers. The first
// unanswered request ends the query: a printer that answers nothing is
// EUnavailable "打印机无响应"; a partial answer is returned as it is
// (escpos.Status reports only what was received). Bytes that are neither
// status bytes nor response blocks (automatic status back, noise) are
// skipped. A late answer to an earlier, timed-out query that arrives after
// the new request cannot be told apart from the current answer.
func (b *backChannel) status(ctx context.Context, w io.Writer) (escpos.Status, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var parts []escpos.Status
	for _, n := range []byte{escpos.StatusPrinter, escpos.StatusOffline, escpos.StatusPaper} {
		if err := ctx.Err(); err != nil {
			return escpos.Status{}, unavailable(err, "查询打印机状态超时或已取消")
		}
		b.dropStale()
		if _, err := w.Write(escpos.StatusRequest(n)); err != nil {
			return escpos.Status{}, err
		}
		deadline := time.Now().Add(statusTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		s, ok, err := b.readStatus(n, deadline)
		if err != nil {
			return escpos.Status{}, err
		}
		if !ok {
			break
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		if err := ctx.Err(); err != nil {
			return escpos.Status{}, unavailable(err, "查询打印机状态超时或已取消")
		}
		return escpos.Status{}, ihos.Errorf(ihos.EUnavailable, "打印机无响应")
	}
	return escpos.Merge(parts...), nil
}

func (b *backChannel) readStatus(n byte, deadline time.Time) (escpos.Status, bool, error) {
	for {
		if c, ok := b.next(); ok {
			if s, err := escpos.ParseStatus(n, c); err == nil {
				return s, true, nil
			}
			continue
		}
		if !time.Now().Before(deadline) {
			return escpos.Status{}, false, nil
		}
		if err := b.fill(deadline); err != nil {
			return escpos.Status{}, false, err
		}
	}
}

// waitProcessed implements Confirmer.WaitProcessed.
func (b *backChannel) waitProcessed(ctx context.Context, id [4]byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		b.dropStale()
		if b.take(id) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return unavailable(err, "等待打印机确认打印完成超时或已取消")
		}
		deadline := time.Now().Add(waitSlice)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if err := b.fill(deadline); err != nil {
			return err
		}
	}
}
