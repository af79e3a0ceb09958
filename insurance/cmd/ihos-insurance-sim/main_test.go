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

	"ihos/insurance"
)

func TestRun(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "demo-credentials.json")
	if err := os.WriteFile(creds, []byte(`{"his":{"http":"http://127.0.0.1:8095"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-http", "127.0.0.1:0", "-credentials", creds, "-log-level", "error"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var addrs map[string]string
	if err := json.Unmarshal([]byte(line), &addrs); err != nil || addrs["url"] == "" || addrs["service"] != addrs["url"]+insurance.ServicePath {
		t.Fatalf("stdout line %q: %v", line, err)
	}
	b, _ := os.ReadFile(creds)
	var all map[string]map[string]string
	if err := json.Unmarshal(b, &all); err != nil || all["insurance"]["url"] != addrs["url"] || all["his"]["http"] == "" {
		t.Fatalf("credentials file = %s (%v)", b, err)
	}

	c := &insurance.Client{BaseURL: addrs["url"], Fixmedins: insurance.Institution{Code: "H11010500123", Name: "示范医院", MdtrtareaAdmvs: "110105"},
		Operator: insurance.Operator{Type: insurance.OpterKiosk, ID: "K1", Name: "自助机"}}
	p, err := c.PersonInfo(ctx, insurance.PersonQuery{MdtrtCertType: insurance.CertIDCard, MdtrtCertNo: "110101199003078515"})
	if err != nil || p.BaseInfo.PsnName != "张三" {
		t.Fatalf("1101 = %+v, %v", p, err)
	}

	resp, err := http.Get(addrs["url"] + "/control/settlements")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("settlements: %v %v", resp, err)
	}
	resp.Body.Close()

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
