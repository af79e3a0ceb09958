package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"ihos/certs"
	"ihos/insurance/mobile"
	"ihos/insurance/mobile/mobilesim"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "demo-credentials.json")
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
	var addr map[string]string
	if err := json.Unmarshal([]byte(line), &addr); err != nil || addr["url"] == "" {
		t.Fatalf("stdout %q: %v", line, err)
	}
	b, _ := os.ReadFile(creds)
	var all map[string]map[string]string
	if err := json.Unmarshal(b, &all); err != nil || all["his"]["http"] == "" {
		t.Fatalf("credentials %s: %v", b, err)
	}
	mp := all["mobilepay"]
	if mp["url"] != addr["url"] || len(mp["app_id"]) < 16 || mp["app_secret"] == "" || mp["org_codg"] == "" {
		t.Fatalf("mobilepay credentials %v", mp)
	}
	if fi, err := os.Stat(mp["org_key_file"]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %q: %v %v", mp["org_key_file"], fi, err)
	}
	keyPEM, _ := os.ReadFile(mp["org_key_file"])
	k, err := certs.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode([]byte(mp["centre_pub_pem"]))
	pub, err := smx509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	c := &mobile.Client{BaseURL: mp["url"], AppID: mp["app_id"], AppSecret: mp["app_secret"], OrgCodg: mp["org_codg"],
		Key: k.(*sm2.PrivateKey), CentrePub: pub.(*ecdsa.PublicKey)}

	resp, err := http.Post(mp["url"]+"/control/auth", "application/json", strings.NewReader(`{"id_number":"110101199003078515"}`))
	if err != nil {
		t.Fatal(err)
	}
	var a mobilesim.Auth
	json.NewDecoder(resp.Body).Decode(&a)
	resp.Body.Close()
	id, tok, err := c.Upload6201(ctx, mobile.FeeUpload{MedOrgOrd: "CMD-1", PayAuthNo: a.PayAuthNo, UldLatlnt: a.UldLatlnt,
		AcctUsedFlag: "1", MedfeeSumamt: 5000, FeeDetailList: []mobile.FeeDetail{{FeedetlSn: "1", DetItemFeeSumamt: 5000}}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Order6202(ctx, mobile.OrderRequest{PayAuthNo: a.PayAuthNo, PayOrdID: id, PayToken: tok})
	if err != nil || r.State != mobile.Settled || r.FundPay != 3500 || r.PsnAcctPay != 1500 {
		t.Fatalf("6202 = %+v, %v", r, err)
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
