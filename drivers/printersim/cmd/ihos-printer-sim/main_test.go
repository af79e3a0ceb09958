package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"ihos/drivers/escpos"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "demo-credentials.json")
	if err := os.WriteFile(creds, []byte(`{"his": {"mllp": "127.0.0.1:2575"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "tickets")
	args := []string{"-tcp", "127.0.0.1:0", "-http", "127.0.0.1:0", "-width", "58", "-out", outDir, "-credentials", creds}
	if runtime.GOOS == "linux" {
		args = append(args, "-serial")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := run(ctx, args, pw, io.Discard)
		pw.Close()
		done <- code
	}()

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no address line: %v", err)
	}
	go io.Copy(io.Discard, pr)
	var addrs map[string]string
	if err := json.Unmarshal([]byte(line), &addrs); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if runtime.GOOS == "linux" && !strings.HasPrefix(addrs["serial"], "/dev/pts/") {
		t.Errorf("serial %q", addrs["serial"])
	}

	// The credentials file keeps the HIS key and gains the printer.
	var file map[string]map[string]string
	b, err := os.ReadFile(creds)
	if err != nil || json.Unmarshal(b, &file) != nil {
		t.Fatalf("credentials: %s %v", b, err)
	}
	if file["his"]["mllp"] != "127.0.0.1:2575" || file["printer"]["tcp"] != addrs["tcp"] ||
		file["printer"]["control"] != addrs["control"] || file["printer"]["serial"] != addrs["serial"] {
		t.Fatalf("credentials file %s, addresses %v", b, addrs)
	}

	c, err := net.DialTimeout("tcp", addrs["tcp"], 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p := escpos.New(c, escpos.Options{Width: escpos.Width58mm})
	p.Init().Align(escpos.Center).Line("测试页").QR("QR-TEST", 4, escpos.QRLevelM).Barcode128("BC-1").Cut(false)
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Close()

	txt := filepath.Join(outDir, "0001.txt")
	deadline := time.Now().Add(3 * time.Second)
	for {
		b, err := os.ReadFile(txt)
		if err == nil && len(b) > 0 {
			if want := "测试页\n[二维码] QR-TEST\n[条码] BC-1\n"; string(b) != want {
				t.Fatalf("0001.txt = %q, want %q", b, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("0001.txt not written")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, err := os.Stat(filepath.Join(outDir, "0001.png")); err != nil || st.Size() == 0 {
		t.Fatalf("0001.png: %v", err)
	}

	resp, err := http.Get(addrs["control"] + "/state")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Tickets   int `json:"tickets"`
		WidthDots int `json:"width_dots"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Tickets != 1 || st.WidthDots != escpos.Width58mm {
		t.Errorf("state %+v", st)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not stop")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-width", "70"}, {"-log-level", "loud"}, {"-nope"}} {
		if code := run(context.Background(), args, io.Discard, io.Discard); code != 2 {
			t.Errorf("%v: exit %d", args, code)
		}
	}
}
