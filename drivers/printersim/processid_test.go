package printersim

import (
	"bytes"
	"io"
	"testing"
	"time"

	"ihos/drivers/escpos"
)

func receiptBytes(t *testing.T, name string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := receipt(&b, name); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// answered sends GS ( H fn 48 with id followed by DLE EOT 1 and reports
// whether the process ID response came before the status byte.
func answered(t *testing.T, rw io.ReadWriter, id string) bool {
	t.Helper()
	cmd, err := escpos.ProcessIDCommand([4]byte([]byte(id)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rw.Write(append(cmd, escpos.StatusRequest(1)...)); err != nil {
		t.Fatal(err)
	}
	return readUntilStatus(t, rw, id)
}

// readUntilStatus reads up to the next status byte and reports whether the
// process ID response for id came before it; anything else fails.
func readUntilStatus(t *testing.T, rw io.ReadWriter, id string) bool {
	t.Helper()
	if d, ok := rw.(interface{ SetReadDeadline(time.Time) error }); ok {
		d.SetReadDeadline(time.Now().Add(2 * time.Second))
	}
	var got []byte
	b := make([]byte, 1)
	for {
		if _, err := io.ReadFull(rw, b); err != nil {
			t.Fatalf("read after % X: %v", got, err)
		}
		if len(got) == 0 && escpos.IsStatusByte(b[0]) {
			return false
		}
		got = append(got, b[0])
		if len(got) == escpos.ProcessIDResponseLen {
			pid, n, ok := escpos.ParseProcessID(got)
			if !ok || n != 7 || string(pid[:]) != id {
				t.Fatalf("response % X, want process ID %q", got, id)
			}
			if _, err := io.ReadFull(rw, b); err != nil || !escpos.IsStatusByte(b[0]) {
				t.Fatalf("after the response: % X, %v", b, err)
			}
			return true
		}
	}
}

func TestProcessIDOnline(t *testing.T) {
	s := startSim(t)
	c := dial(t, s)
	c.Write(receiptBytes(t, "张三"))
	if !answered(t, c, "0001") {
		t.Fatal("not answered")
	}
	if ts := s.Tickets(); len(ts) != 1 {
		t.Fatalf("%d tickets", len(ts))
	}
	// A request with no data before it is answered at once.
	if !answered(t, c, "P001") {
		t.Fatal("bare request not answered")
	}
}

func TestProcessIDLostOnPaperOut(t *testing.T) {
	s := startSim(t)
	c := dial(t, s)
	s.SetMode(PaperOut)
	c.Write(receiptBytes(t, "张三"))
	if answered(t, c, "0011") {
		t.Fatal("answered for a ticket that was discarded")
	}
	s.SetMode(Online)
	c.Write(receiptBytes(t, "张三"))
	if !answered(t, c, "0012") {
		t.Fatal("resent ticket not answered")
	}
	if n := len(s.Tickets()); n != 1 || s.Lost() != 1 {
		t.Fatalf("%d tickets, %d lost; want 1 and 1", n, s.Lost())
	}
}

// A ticket printed before the fault: its request is answered even though
// it arrives while the paper is out.
func TestProcessIDAfterPrintedTicket(t *testing.T) {
	s := startSim(t)
	c := dial(t, s)
	c.Write(receiptBytes(t, "张三"))
	query(t, c) // the ticket is processed
	s.SetMode(PaperOut)
	if !answered(t, c, "0021") {
		t.Fatal("not answered")
	}
	if len(s.Tickets()) != 1 || s.Lost() != 0 {
		t.Fatalf("%d tickets, %d lost", len(s.Tickets()), s.Lost())
	}
}

// A fault in the middle of a ticket loses the whole ticket, even if the
// printer is back before its end: nothing is printed in part and the
// request is not answered.
func TestProcessIDMidTicketFault(t *testing.T) {
	s := startSim(t)
	c := dial(t, s)
	data := receiptBytes(t, "张三")
	half := bytes.Index(data, []byte{0x1D, '(', 'k'}) // a command boundary: the QR code
	c.Write(data[:half])
	query(t, c)
	s.SetMode(CoverOpen)
	query(t, c) // the simulator notices the fault
	s.SetMode(Online)
	c.Write(data[half:])
	if answered(t, c, "0031") {
		t.Fatal("answered for a lost ticket")
	}
	c.Write(data)
	if !answered(t, c, "0032") {
		t.Fatal("resent ticket not answered")
	}
	ts := s.Tickets()
	if len(ts) != 1 || s.Lost() != 1 {
		t.Fatalf("%d tickets, %d lost; want 1 and 1", len(ts), s.Lost())
	}
	checkReceipt(t, ts[0], "张三")
}

func TestProcessIDUnsupported(t *testing.T) {
	s := startSim(t)
	s.SetProcessIDSupport(false)
	c := dial(t, s)
	c.Write(receiptBytes(t, "张三"))
	if answered(t, c, "0041") {
		t.Fatal("answered although support is off")
	}
	if len(s.Tickets()) != 1 {
		t.Fatalf("%d tickets", len(s.Tickets()))
	}
}

func TestSpeed(t *testing.T) {
	s := startSim(t)
	s.SetSpeed(200 << 10)
	c := dial(t, s)
	p := escpos.New(io.Discard, escpos.Options{})
	p.Init().Line("慢").Raw(bytes.Repeat([]byte{'.'}, 40<<10)).Line("").Cut(false)
	start := time.Now()
	c.Write(p.Bytes())
	waitTickets(t, s, 1)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("40 KiB at 200 KiB/s took %v", d)
	}
}
