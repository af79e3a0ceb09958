package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ihos/sms"
)

func TestRun(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "demo-credentials.json")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs := &strings.Builder{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-http", "127.0.0.1:0", "-demo", "-credentials", creds}, pw, logs)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	var c credentials
	if err := json.Unmarshal([]byte(line), &c); err != nil || c.URL == "" {
		cancel()
		t.Fatalf("ready line %q: %v", line, err)
	}
	cl := &sms.Client{URL: c.URL, AccessKeyID: c.AccessKeyID, AccessKeySecret: c.AccessKeySecret, SignName: c.SignName, TemplateCode: c.TemplateCode}
	if err := cl.SendCode(context.Background(), "13800138000", "246810"); err != nil {
		t.Fatal(err)
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
	if !strings.Contains(logs.String(), `"code":"246810"`) {
		t.Fatalf("demo mode did not log the code: %s", logs)
	}
}
