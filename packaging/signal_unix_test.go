//go:build unix

package packaging

import (
	"bytes"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/kardianos/service"
)

// TestForegroundSIGTERM runs the whole command as an operator would and stops it
// the way systemd or `kill` does.
func TestForegroundSIGTERM(t *testing.T) {
	if !service.Interactive() {
		t.Skip("not interactive: the test runs under a service manager")
	}
	started := make(chan []string, 1)
	p := blockingProgram(started, nil)
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(p, []string{"--data-dir", "d"}, &stdout, &stderr) }()
	select {
	case args := <-started:
		if !slices.Equal(args, []string{"--data-dir", "d"}) {
			t.Errorf("Run got %q", args)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run not started")
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d, stderr %q", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not stop Run")
	}
}
