package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestRun starts the command on free ports, reads the line it prints, asks
// its control API and stops it as a signal would.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-data", t.TempDir(), "-mllp", "127.0.0.1:0", "-http", "127.0.0.1:0", "-result-delay", "1s"}, w, io.Discard)
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var addrs struct{ MLLP, HTTP string }
	if err := json.Unmarshal([]byte(line), &addrs); err != nil || addrs.MLLP == "" || addrs.HTTP == "" {
		t.Fatalf("printed %q (%v)", line, err)
	}
	conn, err := net.DialTimeout("tcp", addrs.MLLP, time.Second)
	if err != nil {
		t.Fatalf("MLLP not listening: %v", err)
	}
	conn.Close()
	resp, err := http.Get(addrs.HTTP + "/control")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Mode struct{ Mode string } `json:"mode"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != 200 || st.Mode.Mode != "up" {
		t.Errorf("/control: %d %+v", resp.StatusCode, st)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
	}
	if code := run(context.Background(), []string{"-nosuchflag"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("bad flag: exit code %d", code)
	}
}
