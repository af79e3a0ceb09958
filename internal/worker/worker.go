// Package worker runs the background passes of the workflow services
// (booking, prescriptions): a service whose work is driven by another's
// commits (a payment paid) polls its own tables, and is kicked by the other
// after each commit so it need not wait for the next tick.
package worker

import (
	"context"
	"log/slog"
	"time"
)

// Loop runs pass until ctx ends: at once, then every interval after a pass
// ends, or as soon as wake receives (Kick). A failed pass is logged as what
// (not when ctx ended) and the loop goes on: a pass reads its work from the
// database, so the next one, or another process's, picks up what it left.
func Loop(ctx context.Context, every time.Duration, wake <-chan struct{}, log *slog.Logger, what string, pass func(context.Context) error) {
	for {
		if err := pass(ctx); err != nil && ctx.Err() == nil {
			log.Warn(what, "err", err)
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-wake:
			t.Stop()
		}
	}
}

// Kick wakes the Loop waiting on wake (a channel with a buffer of one)
// without blocking: a kick already pending wakes it just as well.
func Kick(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}
