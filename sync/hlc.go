package sync

import (
	"fmt"
	"strconv"
	"strings"
	stdsync "sync"
	"time"
)

// HLC is a hybrid logical clock timestamp: wall-clock milliseconds in the high
// 48 bits and a logical counter in the low 16. It orders events across the
// appliance and the cloud even when their clocks disagree by a little, and it
// stays close to real time, so "who wrote last" means what people expect.
type HLC uint64

// Physical returns the wall-clock part.
func (h HLC) Physical() time.Time { return time.UnixMilli(int64(h >> 16)).UTC() }

// String is the fixed-width hex form stored in the database (text order is
// clock order).
func (h HLC) String() string { return fmt.Sprintf("%016x", uint64(h)) }

// ParseHLC parses the String form.
func ParseHLC(s string) (HLC, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 16, 64)
	if err != nil || len(s) != 16 {
		return 0, fmt.Errorf("sync: bad HLC %q", s)
	}
	return HLC(n), nil
}

// Stamp is an HLC with the node that made it; ties on the clock are broken by
// the origin, so every node picks the same winner.
type Stamp struct {
	HLC    HLC    `json:"hlc"`
	Origin string `json:"origin"`
}

// After reports whether s wins over o.
func (s Stamp) After(o Stamp) bool {
	if s.HLC != o.HLC {
		return s.HLC > o.HLC
	}
	return s.Origin > o.Origin
}

// Clock issues HLC timestamps.
type Clock struct {
	mu   stdsync.Mutex
	last HLC
	Now  func() time.Time // the wall clock; tests replace it
}

// NewClock returns a clock that never goes below floor (the newest timestamp
// this node is known to have issued, read back from storage at start).
func NewClock(floor HLC) *Clock { return &Clock{last: floor, Now: time.Now} }

const logicalMask = 1<<16 - 1

// Tick returns a timestamp for a local event, greater than every timestamp
// issued or observed before.
func (c *Clock) Tick() HLC {
	c.mu.Lock()
	defer c.mu.Unlock()
	wall := HLC(uint64(c.Now().UnixMilli()) << 16)
	if wall > c.last {
		c.last = wall
	} else {
		c.last++ // same or earlier millisecond: count up (the counter carries into the next ms if it ever overflows)
	}
	return c.last
}

// Observe folds in a timestamp received from another node, so the next Tick is
// after it.
func (c *Clock) Observe(remote HLC) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if remote > c.last {
		c.last = remote
	}
}
