package sync

import (
	"testing"
	"time"
)

func TestClockMonotonicUnderSkew(t *testing.T) {
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	c := NewClock(0)
	c.Now = func() time.Time { return now }
	a := c.Tick()
	b := c.Tick()
	if b <= a || b.Physical() != a.Physical() {
		t.Fatalf("same-ms ticks: %v %v", a, b)
	}
	// The wall clock steps back (NTP correction): the clock does not.
	now = now.Add(-time.Second)
	if d := c.Tick(); d <= b {
		t.Fatalf("clock went back: %v <= %v", d, b)
	}
	// A message from a node whose clock runs ahead pulls this clock forward.
	remote := HLC(uint64(now.Add(time.Minute).UnixMilli())<<16 | 5)
	c.Observe(remote)
	if e := c.Tick(); e <= remote {
		t.Fatalf("tick %v not after observed %v", e, remote)
	}
	h, err := ParseHLC(remote.String())
	if err != nil || h != remote {
		t.Fatalf("round trip %v: %v %v", remote, h, err)
	}
	if _, err := ParseHLC("xyz"); err == nil {
		t.Fatal("bad HLC parsed")
	}
}

func TestStampTieBreak(t *testing.T) {
	a := Stamp{HLC: 100, Origin: "appliance-h1"}
	b := Stamp{HLC: 100, Origin: "cloud"}
	if !b.After(a) || a.After(b) {
		t.Fatal("tie not broken by origin")
	}
	if !(Stamp{HLC: 101, Origin: "a"}).After(b) {
		t.Fatal("clock does not dominate origin")
	}
}
