package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ihos/paychannel"
)

func TestRun(t *testing.T) { testRun(t, "RSA") }

// TestRunSM2 is the demo merchant on the channel's 国密 option: an SM2 API
// key next to the RSA one, SM2 platform certificate.
func TestRunSM2(t *testing.T) { testRun(t, "SM2") }

func testRun(t *testing.T, alg string) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "demo-credentials.json")
	os.WriteFile(creds, []byte(`{"his":{"http":"http://127.0.0.1:8095"}}`), 0o600)
	keyFile := filepath.Join(dir, "keys", "merchant_key.pem")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-http", "127.0.0.1:0", "-credentials", creds, "-merchant-key", keyFile,
			"-db", filepath.Join(dir, "pay-sim.db"), "-auto-pay", "0s", "-log-level", "error", "-alg", alg}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var addrs map[string]string
	if err := json.Unmarshal([]byte(line), &addrs); err != nil || addrs["url"] == "" {
		t.Fatalf("stdout line %q: %v", line, err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("merchant key file: %v %v", fi, err)
	}
	b, _ := os.ReadFile(creds)
	var all map[string]map[string]string
	if err := json.Unmarshal(b, &all); err != nil || all["his"]["http"] == "" {
		t.Fatalf("credentials file = %s (%v)", b, err)
	}
	pc := all["paychannel"]

	// What the payment service would do with the credentials entry.
	if pc["algorithm"] != alg {
		t.Fatalf("entry algorithm %q, want %q", pc["algorithm"], alg)
	}
	kb, _ := os.ReadFile(pc["merchant_key"])
	key, err := paychannel.ParsePrivateKeyPEM(kb)
	if err != nil || paychannel.SchemeOf(key) != paychannel.AuthScheme {
		t.Fatalf("merchant_key: %T %v", key, err)
	}
	if alg == "SM2" {
		kb, _ := os.ReadFile(pc["merchant_sm2_key"])
		if key, err = paychannel.ParsePrivateKeyPEM(kb); err != nil || paychannel.SchemeOf(key) != paychannel.AuthSchemeSM2 {
			t.Fatalf("merchant_sm2_key: %T %v", key, err)
		}
		if fi, err := os.Stat(pc["merchant_sm2_key"]); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("merchant SM2 key file: %v %v", fi, err)
		}
	}
	resp, err := http.Get(pc["platform_cert_url"])
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	pub, serial, err := paychannel.ParsePublicKeyPEM(pb)
	if err != nil || serial != pc["platform_serial"] {
		t.Fatalf("platform cert: serial %q (entry %q), %v", serial, pc["platform_serial"], err)
	}
	c := &paychannel.Client{BaseURL: pc["url"], MchID: pc["mchid"], AppID: pc["appid"], SerialNo: pc["serial_no"], Key: key,
		PlatformKey: pub, PlatformSerial: serial, APIv3Key: []byte(pc["apiv3_key"])}
	if _, err := c.CreateNative(ctx, paychannel.Order{OutTradeNo: "DEMO00000001", Description: "挂号费", Total: 50, NotifyURL: "http://127.0.0.1:1/notify"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		tr, err := c.Query(ctx, "DEMO00000001")
		if err == nil && tr.Paid() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("auto-pay: %+v, %v", tr, err)
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop")
	}
}
