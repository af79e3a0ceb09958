package printersim

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"ihos/drivers/escpos"
)

func startSim(t *testing.T) *Sim {
	t.Helper()
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dial(t *testing.T, s *Sim) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitTickets polls until the simulator holds n tickets.
func waitTickets(t *testing.T, s *Sim, n int) []*escpos.Ticket {
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

func receipt(w io.Writer, name string) error {
	p := escpos.New(w, escpos.Options{})
	p.Init().Align(escpos.Center).Bold(true).Line("挂号凭条").Bold(false).
		Align(escpos.Left).Line(name).QR("REG-0001", 6, escpos.QRLevelM).Feed(3).Cut(false)
	return p.Flush()
}

func checkReceipt(t *testing.T, tk *escpos.Ticket, name string) {
	t.Helper()
	if len(tk.Lines) < 2 || tk.Lines[0] != "挂号凭条" || tk.Lines[1] != name {
		t.Fatalf("lines = %q", tk.Lines)
	}
	if tk.Align[0] != escpos.Center || !tk.Bold[0] || tk.Bold[1] {
		t.Errorf("style: align %v bold %v", tk.Align, tk.Bold)
	}
	if !slices.Equal(tk.QRCodes, []string{"REG-0001"}) || tk.Cuts != 1 {
		t.Errorf("QR %q cuts %d", tk.QRCodes, tk.Cuts)
	}
}

func TestReceipt(t *testing.T) {
	s := startSim(t)
	c := dial(t, s)
	if err := receipt(c, "张三"); err != nil {
		t.Fatal(err)
	}
	checkReceipt(t, waitTickets(t, s, 1)[0], "张三")
}

func TestTwoTicketsOneConnection(t *testing.T) {
	s := startSim(t)
	c := dial(t, s)
	if err := receipt(c, "张三"); err != nil {
		t.Fatal(err)
	}
	// Status query between tickets must not end up in the print data.
	if _, err := c.Write(escpos.StatusRequest(1)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	if err := receipt(c, "李四"); err != nil {
		t.Fatal(err)
	}
	ts := waitTickets(t, s, 2)
	checkReceipt(t, ts[0], "张三")
	checkReceipt(t, ts[1], "李四")
}

func TestPendingAtClose(t *testing.T) {
	s := startSim(t)
	c := dial(t, s)
	p := escpos.New(c, escpos.Options{})
	if err := p.Init().Line("no cut").Flush(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	ts := waitTickets(t, s, 1)
	if !slices.Equal(ts[0].Lines, []string{"no cut"}) || ts[0].Cuts != 0 {
		t.Fatalf("ticket = %+v", ts[0])
	}
}

func TestSplitWrites(t *testing.T) {
	s := startSim(t)
	c := dial(t, s)
	p := escpos.New(io.Discard, escpos.Options{})
	p.Init().Line("拆分").QR("SPLIT", 4, escpos.QRLevelL).Cut(true)
	for _, b := range p.Bytes() {
		if _, err := c.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	tk := waitTickets(t, s, 1)[0]
	if !slices.Equal(tk.Lines, []string{"拆分"}) || !slices.Equal(tk.QRCodes, []string{"SPLIT"}) || tk.Cuts != 1 {
		t.Fatalf("ticket = %+v", tk)
	}
}

func query(t *testing.T, c net.Conn) escpos.Status {
	t.Helper()
	var parts []escpos.Status
	for n := byte(1); n <= 4; n++ {
		if _, err := c.Write(escpos.StatusRequest(n)); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		st, err := escpos.ParseStatus(n, b[0])
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, st)
	}
	return escpos.Merge(parts...)
}

func TestStatusModes(t *testing.T) {
	s := startSim(t)
	c := dial(t, s)
	for _, tc := range []struct {
		mode                       Mode
		online, cover, paper, near bool
	}{
		{Online, true, false, false, false},
		{PaperOut, false, false, true, true},
		{CoverOpen, false, true, false, false},
		{Online, true, false, false, false},
	} {
		s.SetMode(tc.mode)
		st := query(t, c)
		if st.Online != tc.online || st.CoverOpen != tc.cover || st.PaperOut != tc.paper || st.PaperNearEnd != tc.near || st.Error {
			t.Errorf("%s: status %+v", tc.mode, st)
		}
	}
	if len(s.Tickets()) != 0 {
		t.Errorf("status queries produced tickets: %d", len(s.Tickets()))
	}
}

func TestPaperOutDiscards(t *testing.T) {
	s := startSim(t)
	s.SetMode(PaperOut)
	c := dial(t, s)
	if err := receipt(c, "张三"); err != nil {
		t.Fatal(err)
	}
	query(t, c) // round trip: the receipt bytes have been processed
	s.SetMode(Online)
	if err := receipt(c, "李四"); err != nil {
		t.Fatal(err)
	}
	ts := waitTickets(t, s, 1)
	time.Sleep(20 * time.Millisecond)
	if ts = s.Tickets(); len(ts) != 1 {
		t.Fatalf("got %d tickets, want 1", len(ts))
	}
	checkReceipt(t, ts[0], "李四")
}

func TestOfflineRefuses(t *testing.T) {
	s := startSim(t)
	addr := s.Addr()
	s.SetMode(Offline)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("dial succeeded while offline")
	}
	s.SetMode(Online)
	if s.Addr() != addr {
		t.Fatalf("address changed: %s -> %s", addr, s.Addr())
	}
	c := dial(t, s)
	if err := receipt(c, "张三"); err != nil {
		t.Fatal(err)
	}
	checkReceipt(t, waitTickets(t, s, 1)[0], "张三")
}

func TestDecodeErrorKeepsTicket(t *testing.T) {
	s := startSim(t)
	c := dial(t, s)
	// ESC @, text, an unknown command (ESC 0x7F), then a cut.
	if _, err := c.Write([]byte("\x1b@ok\n\x1b\x7fjunk\x1dVA\x00")); err != nil {
		t.Fatal(err)
	}
	tk := waitTickets(t, s, 1)[0]
	if !slices.Equal(tk.Lines, []string{"ok"}) {
		t.Fatalf("lines = %q", tk.Lines)
	}
}
