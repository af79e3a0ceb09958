package e2e

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the simulator's own file is read directly

	"ihos/internal/node"
	"ihos/internal/sqldb"
	"ihos/paychannel"
	"ihos/paychannel/paysim"
)

// The payment e2e harness: the payment channel simulator as the real
// bin/ihos-pay-sim process, the cloud configured for it the way scripts/run
// does (IHOS_PAYCHANNEL_* from the simulator's credentials entry), and an
// HTTP client that behaves like a phone: it retries a call whose answer it
// lost, with the same business id or refund request key.

var (
	paySimOnce stdsync.Once
	paySimErr  error
)

// paySimBinary builds ihos-pay-sim next to the other binaries.
func paySimBinary(t *testing.T) string {
	t.Helper()
	dir := binaries(t)
	paySimOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", dir+"/", "ihos/paychannel/cmd/ihos-pay-sim")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			paySimErr = fmt.Errorf("go build ihos-pay-sim: %v\n%s", err, out)
		}
	})
	if paySimErr != nil {
		t.Fatal(paySimErr)
	}
	return filepath.Join(dir, "ihos-pay-sim")
}

// paySimProc is a running bin/ihos-pay-sim with its demo merchant.
type paySimProc struct {
	t      *testing.T
	dir    string
	cmd    *exec.Cmd
	url    string
	entry  map[string]string // the "paychannel" credentials entry it wrote
	client *paychannel.Client
}

// startPaySim starts the simulator with its state in dir/sim.db and a demo
// merchant whose key it generates into dir.
func startPaySim(t *testing.T, dir string, log io.Writer) *paySimProc {
	t.Helper()
	bin := paySimBinary(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	creds := filepath.Join(dir, "credentials.json")
	s := &paySimProc{t: t, dir: dir}
	s.cmd = exec.Command(bin, "-http", "127.0.0.1:0", "-db", filepath.Join(dir, "sim.db"),
		"-merchant-key", filepath.Join(dir, "merchant_key.pem"), "-credentials", creds, "-log-level", "warn")
	s.cmd.Stderr = log
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- line
		io.Copy(io.Discard, out)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatal("ihos-pay-sim did not start in 30 s")
	}
	var addrs map[string]string
	if err := json.Unmarshal([]byte(line), &addrs); err != nil || addrs["url"] == "" {
		t.Fatalf("ihos-pay-sim stdout %q: %v", line, err)
	}
	s.url = addrs["url"]
	b, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]map[string]string
	if err := json.Unmarshal(b, &all); err != nil || all["paychannel"]["mchid"] == "" {
		t.Fatalf("credentials %s: %s (%v)", creds, b, err)
	}
	s.entry = all["paychannel"]
	// The merchant's own client, for the daily bill.
	kb, err := os.ReadFile(s.entry["merchant_key"])
	if err != nil {
		t.Fatal(err)
	}
	key, err := paychannel.ParsePrivateKeyPEM(kb)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := httpGet(s.entry["platform_cert_url"])
	if err != nil {
		t.Fatal(err)
	}
	pub, serial, err := paychannel.ParsePublicKeyPEM(cert)
	if err != nil {
		t.Fatal(err)
	}
	s.client = &paychannel.Client{BaseURL: s.url, MchID: s.entry["mchid"], AppID: s.entry["appid"], SerialNo: s.entry["serial_no"],
		Key: key, PlatformKey: pub, PlatformSerial: serial, APIv3Key: []byte(s.entry["apiv3_key"])}
	return s
}

func httpGet(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// cloudEnv points the cloud processes started after it at the simulator, as
// scripts/run does; the payment timeouts are shortened for the test.
func (s *paySimProc) cloudEnv(t *testing.T, payTimeout, queryAfter time.Duration) {
	for env, key := range map[string]string{
		"IHOS_PAYCHANNEL_URL": "url", "IHOS_PAYCHANNEL_MCHID": "mchid", "IHOS_PAYCHANNEL_APPID": "appid",
		"IHOS_PAYCHANNEL_SERIAL_NO": "serial_no", "IHOS_PAYCHANNEL_MERCHANT_KEY": "merchant_key",
		"IHOS_PAYCHANNEL_APIV3_KEY": "apiv3_key", "IHOS_PAYCHANNEL_PLATFORM_CERT_URL": "platform_cert_url",
		"IHOS_PAYCHANNEL_PLATFORM_SERIAL": "platform_serial",
	} {
		t.Setenv(env, s.entry[key])
	}
	t.Setenv("IHOS_PAY_TIMEOUT", payTimeout.String())
	t.Setenv("IHOS_PAY_QUERY_AFTER", queryAfter.String())
}

// setMode replaces the simulator's mode through its control API.
func (s *paySimProc) setMode(m paysim.Mode) error {
	b, _ := json.Marshal(m)
	resp, err := http.Post(s.url+"/control/mode", "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST /control/mode: %d %s", resp.StatusCode, body)
	}
	return nil
}

// counters are the simulator's counts of what it did (GET /control).
func (s *paySimProc) counters() map[string]int64 {
	b, err := httpGet(s.url + "/control")
	if err != nil {
		return nil
	}
	var st struct {
		Counters map[string]int64 `json:"counters"`
	}
	json.Unmarshal(b, &st)
	return st.Counters
}

func (s *paySimProc) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
}

// simOrder and simRefund are the simulator's own records (the JSON it keeps
// in its SQLite file): what the channel says happened.
type simOrder struct {
	OutTradeNo    string `json:"out_trade_no"`
	State         string `json:"state"`
	TransactionID string `json:"transaction_id"`
	Total         int64  `json:"total"`
	Attach        string `json:"attach"`
}

type simRefund struct {
	OutRefundNo string `json:"out_refund_no"`
	RefundID    string `json:"refund_id"`
	OutTradeNo  string `json:"out_trade_no"`
	Status      string `json:"status"`
	Refund      int64  `json:"refund"`
	Total       int64  `json:"total"`
}

// records reads every order and refund the simulator holds, by
// out_trade_no and out_refund_no.
func (s *paySimProc) records(t *testing.T) (map[string]simOrder, map[string]simRefund) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(filepath.Join(s.dir, "sim.db"))+"?_pragma=busy_timeout(5000)&mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	orders := map[string]simOrder{}
	refunds := map[string]simRefund{}
	read := func(table string, f func([]byte) error) {
		rows, err := db.Query(`SELECT data FROM ` + table)
		if err != nil {
			t.Fatalf("simulator %s: %v", table, err)
		}
		defer rows.Close()
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			if err := f(b); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	read("orders", func(b []byte) error {
		var o simOrder
		err := json.Unmarshal(b, &o)
		orders[o.OutTradeNo] = o
		return err
	})
	read("refunds", func(b []byte) error {
		var f simRefund
		err := json.Unmarshal(b, &f)
		refunds[f.OutRefundNo] = f
		return err
	})
	return orders, refunds
}

// phone calls the cloud's payment API as a client that loses answers when
// the cloud dies: a call without an answer (connection refused or reset), a
// 503 (the channel's outcome unknown) or a 500 is made again, unchanged,
// until it gets an answer or the deadline passes. 500s are counted (and the
// first logged): the chaos test fails on any. It authenticates with the
// cloud's command-line token, which a restarted cloud renews: a 401 makes it
// read the token again.
type phone struct {
	base      string
	tokenFile string
	token     atomic.Value // string
	hc        *http.Client
	retried   atomic.Int64 // calls made again
	internal  atomic.Int64 // 500 answers
	logf      func(format string, args ...any)
	logged    atomic.Int64
}

func newPhone(base, dataDir string, logf func(string, ...any)) *phone {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	p := &phone{base: base, tokenFile: filepath.Join(dataDir, node.CLITokenFile), hc: &http.Client{Transport: tr, Timeout: 20 * time.Second}, logf: logf}
	p.reloadToken()
	return p
}

func (p *phone) reloadToken() {
	b, _ := os.ReadFile(p.tokenFile)
	p.token.Store(strings.TrimSpace(string(b)))
}

// once makes one call: status 0 when no answer came.
func (p *phone) once(method, path string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.base+path, rd)
	req.Header.Set(node.CLITokenHeader, p.token.Load().(string))
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, []byte(err.Error())
	}
	return resp.StatusCode, b
}

// call makes the call until it has an answer that is not "try again" and
// decodes a 2xx answer into out.
func (p *phone) call(method, path string, body, out any) (int, []byte) {
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, b := p.once(method, path, body)
		again := false
		switch code {
		case 0, http.StatusServiceUnavailable, http.StatusBadGateway:
			again = true
		case http.StatusInternalServerError:
			again = true
			p.internal.Add(1)
			if p.logged.Add(1) <= 10 {
				p.logf("%s %s: 500 %s", method, path, b)
			}
		case http.StatusUnauthorized:
			again = true
			p.reloadToken()
		}
		if !again || time.Now().After(deadline) {
			if code/100 == 2 && out != nil {
				if err := json.Unmarshal(b, out); err != nil {
					return -1, []byte(fmt.Sprintf("decode %s: %v", b, err))
				}
			}
			return code, b
		}
		p.retried.Add(1)
		time.Sleep(50 * time.Millisecond)
	}
}

// openDB opens a service's SQLite database alongside the running service
// (WAL lets both read).
func openDB(t *testing.T, path string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
