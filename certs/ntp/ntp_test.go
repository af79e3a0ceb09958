package ntp

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"ihos"
)

// serve runs the time-source simulator on a local UDP port with a clock
// skewed by skew, as a server at the given stratum (Serve's replies say
// stratum 2; other strata are rewritten here to test refusals).
func serve(t *testing.T, skew time.Duration, stratum byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if stratum == 2 || stratum == 1 {
		go Serve(pc, func() time.Time { return time.Now().Add(skew) })
		return pc.LocalAddr().String()
	}
	go func() {
		buf := make([]byte, 512)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil || n < 48 {
				return
			}
			resp := make([]byte, 48)
			resp[0], resp[1] = 0x24, stratum
			copy(resp[24:32], buf[40:48])
			pc.WriteTo(resp, addr)
		}
	}()
	return pc.LocalAddr().String()
}

func TestTimestampRoundTrip(t *testing.T) {
	for _, tm := range []time.Time{time.Date(2026, 11, 26, 5, 0, 0, 123456789, time.UTC), time.Date(2036, 3, 1, 0, 0, 0, 0, time.UTC)} {
		got := fromNTP(toNTP(tm))
		if d := got.Sub(tm); d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("%v → %v", tm, got)
		}
	}
}

func TestQueryMeasuresOffset(t *testing.T) {
	addr := serve(t, 3*time.Second, 2)
	s, err := Query(context.Background(), addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Offset - 3*time.Second; d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Fatalf("offset %v, want about 3s", s.Offset)
	}
	if s.Stratum != 2 || s.Delay < 0 || s.Delay > time.Second {
		t.Fatalf("sample %+v", s)
	}
	if _, err := Query(context.Background(), serve(t, 0, 0), nil); err == nil {
		t.Fatal("a stratum-0 (kiss-o'-death) reply was accepted")
	}
}

func TestReadiness(t *testing.T) {
	ctx := context.Background()
	// Off (the default without servers): the local clock is trusted.
	c := NewClock(Config{})
	if err := c.Ready(); err != nil {
		t.Fatalf("sync off: %v", err)
	}
	// On, in step.
	c.Configure(Config{Enabled: true, Servers: []string{serve(t, 20*time.Millisecond, 1)}, MaxOffset: time.Second})
	if err := c.Ready(); err == nil || !strings.Contains(err.Error(), "尚未与时间源同步") {
		t.Fatalf("before the first check: %v", err)
	}
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(); err != nil {
		t.Fatalf("in step: %v", err)
	}
	// The local clock five seconds off: refused, with the offset in the reason.
	c.Configure(Config{Enabled: true, Servers: []string{serve(t, 5*time.Second, 1)}, MaxOffset: time.Second})
	c.Check(ctx)
	err := c.Ready()
	if ihos.ErrorCode(err) != ihos.EUnavailable || !(strings.Contains(err.Error(), "相差 5.0") || strings.Contains(err.Error(), "相差 4.99")) {
		t.Fatalf("five seconds off: %v", err)
	}
	// No server answers: refused, and the status says why.
	dead, _ := net.ListenPacket("udp", "127.0.0.1:0")
	addr := dead.LocalAddr().String()
	dead.Close()
	c.Configure(Config{Enabled: true, Servers: []string{addr}})
	if err := c.Check(ctx); err == nil {
		t.Fatal("a dead server answered")
	}
	if st := c.Status(); st.Ready || st.LastErr == "" {
		t.Fatalf("status with a dead server: %+v", st)
	}
	// Switching synchronisation off makes it ready again.
	c.Configure(Config{Enabled: false, Servers: []string{addr}})
	if err := c.Ready(); err != nil {
		t.Fatalf("switched off: %v", err)
	}
}

// A garbled, truncated or hostile reply is an error, never a panic.
func FuzzParseReply(f *testing.F) {
	t1 := time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)
	good := make([]byte, 48)
	good[0], good[1] = 0x24, 2
	binary.BigEndian.PutUint64(good[24:], toNTP(t1))
	binary.BigEndian.PutUint64(good[32:], toNTP(t1.Add(time.Millisecond)))
	binary.BigEndian.PutUint64(good[40:], toNTP(t1.Add(2*time.Millisecond)))
	f.Add(good)
	f.Add(good[:47])
	f.Add(make([]byte, 48))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseReply("fuzz", b, t1, t1.Add(5*time.Millisecond))
		if err == nil && (s.Stratum < 1 || s.Stratum > 15) {
			t.Fatalf("accepted stratum %d", s.Stratum)
		}
	})
}
