package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ihos"
	"ihos/einvoice"
)

// startRun runs the command with args and returns its stdout line and a
// function that stops it and checks the exit code.
func startRun(t *testing.T, args ...string) (map[string]string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"-http", "127.0.0.1:0", "-log-level", "error"}, args...), pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	var out map[string]string
	if err := json.Unmarshal([]byte(line), &out); err != nil || out["url"] == "" || out["service"] != out["url"]+"/api/medical/" {
		cancel()
		t.Fatalf("stdout line %q: %v", line, err)
	}
	return out, func() {
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
}

func readCreds(t *testing.T, path string) (map[string]json.RawMessage, credentials) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	var c credentials
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(all["einvoice"], &c); err != nil {
		t.Fatal(err)
	}
	return all, c
}

func TestRun(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "demo-credentials.json")
	if err := os.WriteFile(creds, []byte(`{"his":{"http":"http://127.0.0.1:8095"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stop := startRun(t, "-credentials", creds)
	if out["key"] != "" {
		t.Fatal("key printed although a credentials file holds it")
	}
	all, c := readCreds(t, creds)
	if all["his"] == nil || c.URL != out["service"] || c.AppID != "IHOSDEMO" || len(c.Key) != 32 {
		t.Fatalf("credentials = %s", all["einvoice"])
	}
	cl := &einvoice.Client{BaseURL: c.URL, AppID: c.AppID, Key: c.Key}
	if _, err := cl.Query(context.Background(), "NONE"); ihos.ErrorCode(err) != ihos.ENotFound {
		t.Fatalf("query of an unknown busNo: %v", err)
	}
	stop()

	// A restart with the same file keeps the key.
	_, stop = startRun(t, "-credentials", creds)
	_, c2 := readCreds(t, creds)
	stop()
	if c2.Key != c.Key {
		t.Fatalf("key changed on restart: %s → %s", c.Key, c2.Key)
	}

	// -key wins, and without a credentials file the key is printed.
	out, stop = startRun(t, "-key", "given-key")
	stop()
	if out["key"] != "given-key" {
		t.Fatalf("stdout line %v", out)
	}
}
