package sync_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"ihos/internal/sqldb/sqldbtest"
)

// A slow call must not hold up the other calls of the same method: the
// insurance centre taking seconds on one settlement would otherwise stall
// every patient paying at that moment.
func TestRPCSlowCallDoesNotBlockOthers(t *testing.T) {
	p := startPair(t, sqldbtest.SQLite(t))
	release := make(chan struct{})
	err := p.appLink.Serve("test.echo", func(ctx context.Context, _ string, raw json.RawMessage) (any, error) {
		var req struct{ Slow bool }
		json.Unmarshal(raw, &req)
		if req.Slow {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return map[string]bool{"slow": req.Slow}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The subscription's interest reaches the cloud over the leafnode a
	// moment after Serve returns.
	waitFor(t, 5*time.Second, "method served across the link", func() bool {
		var out map[string]bool
		return p.cloudLink.Call(ctx, "h1", "test.echo", map[string]bool{"Slow": false}, &out) == nil
	})
	slowDone := make(chan error, 1)
	go func() {
		var out map[string]bool
		slowDone <- p.cloudLink.Call(ctx, "h1", "test.echo", map[string]bool{"Slow": true}, &out)
	}()
	time.Sleep(100 * time.Millisecond) // the slow call is being handled
	var out map[string]bool
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := p.cloudLink.Call(cctx, "h1", "test.echo", map[string]bool{"Slow": false}, &out); err != nil || out["slow"] {
		t.Fatalf("fast call behind a slow one: %v %v", err, out)
	}
	close(release)
	if err := <-slowDone; err != nil {
		t.Fatalf("slow call: %v", err)
	}
}
