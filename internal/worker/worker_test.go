package worker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"ihos/internal/worker"
)

// A pass runs at once, a kick runs the next one long before the interval,
// a failing pass does not stop the loop, and the loop ends with ctx.
func TestLoop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	wake := make(chan struct{}, 1)
	var passes atomic.Int64
	ran := make(chan int64, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		worker.Loop(ctx, time.Hour, wake, slog.New(slog.NewTextHandler(io.Discard, nil)), "test pass", func(context.Context) error {
			n := passes.Add(1)
			ran <- n
			return errors.New("failed pass")
		})
	}()
	wait := func(want int64) {
		t.Helper()
		select {
		case n := <-ran:
			if n != want {
				t.Fatalf("pass %d, want %d", n, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("pass %d did not run", want)
		}
	}
	wait(1)
	worker.Kick(wake)
	worker.Kick(wake) // a second kick while one is pending does not block
	wait(2)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("loop did not end with its context")
	}
}
