package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"ihos/his/hissim"
	"ihos/idverify"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-http", "127.0.0.1:0", "-log-level", "error"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	var c credentials
	if err := json.Unmarshal([]byte(line), &c); err != nil || c.URL == "" || c.AppCode == "" {
		cancel()
		t.Fatalf("ready line %q: %v", line, err)
	}
	p := hissim.DemoPatients[1]
	r, err := (&idverify.Client{URL: c.URL, AppCode: c.AppCode}).Verify(context.Background(), p.Name, p.IDNumber)
	if err != nil || !r.Match {
		t.Fatalf("demo patient: %+v %v", r, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
	}
}
