// Package ntp is the signing server's time source: an SNTP client (RFC 4330,
// the client side of NTP v4, RFC 5905) that measures the local clock's offset
// from configured servers, and a readiness check that refuses signatures and
// timestamps while the clock is known to be wrong. A signature's time is
// evidence (电子病历应用管理规范 requires a reliable time source), so a clock
// that drifted or could not be checked must stop signing rather than sign with
// a wrong time.
package ntp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	stdsync "sync"
	"time"

	"ihos"
)

// ntpEpochOffset is the number of seconds from 1900-01-01 (NTP's era 0) to
// 1970-01-01 (Unix).
const ntpEpochOffset = 2208988800

// toNTP encodes t as a 64-bit NTP timestamp.
func toNTP(t time.Time) uint64 {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// fromNTP decodes a 64-bit NTP timestamp (era 0, good until 2036; after that
// the era rolls over and values below 2^31 seconds mean era 1).
func fromNTP(v uint64) time.Time {
	secs := int64(v >> 32)
	if secs < 1<<31 { // era 1 (after 2036-02-07)
		secs += 1 << 32
	}
	nanos := int64((v & 0xffffffff) * 1e9 >> 32)
	return time.Unix(secs-ntpEpochOffset, nanos)
}

// Sample is one measurement against one server.
type Sample struct {
	Server  string        `json:"server"`
	Offset  time.Duration `json:"offset"` // server time − local time
	Delay   time.Duration `json:"delay"`  // round trip minus the server's processing
	Stratum int           `json:"stratum"`
	At      time.Time     `json:"at"`
}

// Query asks one server for the time. now is the local clock (time.Now in
// production; tests pass a skewed clock).
func Query(ctx context.Context, server string, now func() time.Time) (Sample, error) {
	if now == nil {
		now = time.Now
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "123")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return Sample{}, err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(3 * time.Second)
	}
	conn.SetDeadline(deadline)

	req := make([]byte, 48)
	req[0] = 0<<6 | 4<<3 | 3 // LI 0, version 4, mode 3 (client)
	t1 := now()
	binary.BigEndian.PutUint64(req[40:], toNTP(t1)) // transmit timestamp, echoed back as origin
	if _, err := conn.Write(req); err != nil {
		return Sample{}, err
	}
	resp := make([]byte, 512)
	n, err := conn.Read(resp)
	t4 := now()
	if err != nil {
		return Sample{}, err
	}
	return parseReply(server, resp[:n], t1, t4)
}

// parseReply checks a server's reply to the request sent at t1 (local) and
// received at t4 (local), and computes the offset and delay.
func parseReply(server string, resp []byte, t1, t4 time.Time) (Sample, error) {
	if len(resp) < 48 {
		return Sample{}, fmt.Errorf("ntp: short reply from %s (%d bytes)", server, len(resp))
	}
	mode := resp[0] & 7
	stratum := int(resp[1])
	if mode != 4 {
		return Sample{}, fmt.Errorf("ntp: reply from %s is not a server reply (mode %d)", server, mode)
	}
	if stratum == 0 || stratum > 15 {
		return Sample{}, fmt.Errorf("ntp: %s is unsynchronised or sent a kiss-o'-death (stratum %d)", server, stratum)
	}
	if binary.BigEndian.Uint64(resp[24:]) != toNTP(t1) {
		return Sample{}, fmt.Errorf("ntp: reply from %s does not answer our request", server)
	}
	t2 := fromNTP(binary.BigEndian.Uint64(resp[32:])) // server receive
	t3 := fromNTP(binary.BigEndian.Uint64(resp[40:])) // server transmit
	offset := (t2.Sub(t1) + t3.Sub(t4)) / 2
	delay := t4.Sub(t1) - t3.Sub(t2)
	return Sample{Server: server, Offset: offset, Delay: max(delay, 0), Stratum: stratum, At: t4}, nil
}

// Config is the time source's configuration, changed at run time from the
// console.
type Config struct {
	Servers   []string      `json:"servers"`    // host or host:port; empty: synchronisation is off
	Enabled   bool          `json:"enabled"`    // synchronisation (and the readiness check) on
	MaxOffset time.Duration `json:"max_offset"` // refuse signing beyond this offset (default 1 s)
	Interval  time.Duration `json:"interval"`   // between checks (default 64 s)
}

// Status is what the console shows.
type Status struct {
	Config
	Last    *Sample   `json:"last,omitempty"` // the last good sample
	LastErr string    `json:"last_error"`
	Checked time.Time `json:"checked"`
	Ready   bool      `json:"ready"`
	Reason  string    `json:"reason"` // why not ready, in Chinese
}

// Clock checks the local clock against the configured servers.
type Clock struct {
	Now func() time.Time // default time.Now

	mu      stdsync.Mutex
	cfg     Config
	last    *Sample
	lastErr string
	checked time.Time
	wake    chan struct{}
}

// NewClock returns a clock with cfg; Run does the checking.
func NewClock(cfg Config) *Clock {
	c := &Clock{wake: make(chan struct{}, 1)}
	c.Configure(cfg)
	return c
}

// Configure replaces the configuration and checks again at once.
func (c *Clock) Configure(cfg Config) {
	if cfg.MaxOffset <= 0 {
		cfg.MaxOffset = time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 64 * time.Second
	}
	c.mu.Lock()
	c.cfg = cfg
	c.last, c.lastErr = nil, ""
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Check queries the servers in turn and keeps the first good answer.
func (c *Clock) Check(ctx context.Context) error {
	c.mu.Lock()
	cfg := c.cfg
	c.mu.Unlock()
	if !cfg.Enabled || len(cfg.Servers) == 0 {
		return nil
	}
	var errs []error
	for _, srv := range cfg.Servers {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		s, err := Query(qctx, srv, c.Now)
		cancel()
		if err == nil {
			c.mu.Lock()
			c.last, c.lastErr, c.checked = &s, "", time.Now()
			c.mu.Unlock()
			return nil
		}
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	c.mu.Lock()
	c.lastErr, c.checked = err.Error(), time.Now()
	c.mu.Unlock()
	return err
}

// Run checks every interval until ctx ends.
func (c *Clock) Run(ctx context.Context) {
	for {
		c.Check(ctx)
		c.mu.Lock()
		every := c.cfg.Interval
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-time.After(every):
		}
	}
}

// Ready returns nil when signing may go on: synchronisation is off (the
// local clock is trusted, as configured), or the last check, no older than
// three intervals, found the offset within the limit. Otherwise an
// EUnavailable error says why, in Chinese.
func (c *Clock) Ready() error {
	st := c.Status()
	if st.Ready {
		return nil
	}
	return ihos.Errorf(ihos.EUnavailable, "%s", st.Reason)
}

// Status reports the configuration, the last measurement and readiness.
func (c *Clock) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{Config: c.cfg, Last: c.last, LastErr: c.lastErr, Checked: c.checked, Ready: true}
	if !c.cfg.Enabled || len(c.cfg.Servers) == 0 {
		return st
	}
	switch {
	case c.last == nil:
		st.Ready, st.Reason = false, "尚未与时间源同步，暂停签名和时间戳服务"
		if c.lastErr != "" {
			st.Reason += "（" + ihos.Truncate(c.lastErr, 100) + "）"
		}
	case time.Since(c.last.At) > 3*c.cfg.Interval:
		st.Ready, st.Reason = false, fmt.Sprintf("已 %d 分钟未能与时间源同步，暂停签名和时间戳服务", int(time.Since(c.last.At).Minutes()))
	case math.Abs(float64(c.last.Offset)) > float64(c.cfg.MaxOffset):
		st.Ready, st.Reason = false, fmt.Sprintf("本机时间与时间源相差 %.3f 秒，超过允许的 %.3f 秒，暂停签名和时间戳服务",
			c.last.Offset.Seconds(), c.cfg.MaxOffset.Seconds())
	}
	return st
}
