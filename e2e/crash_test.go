package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	stdsync "sync"
	"syscall"
	"testing"
	"time"

	"ihos/internal/sqldb"
)

// The crash tests run the real binaries as processes and kill them with
// SIGKILL at random moments while changes are being written: every change
// committed before a kill must reach the other side exactly once.

var (
	buildOnce stdsync.Once
	binDir    string
	buildErr  error
)

func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "ihos-e2e-bin")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "ihos/appliance/cmd/ihos-appliance", "ihos/cloud/cmd/ihos-cloud")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a service process the test can kill and restart.
type proc struct {
	t    *testing.T
	name string
	args []string
	addr string
	log  *os.File
	cmd  *exec.Cmd
}

func (p *proc) start() {
	p.t.Helper()
	p.cmd = exec.Command(filepath.Join(binaries(p.t), p.name), p.args...)
	p.cmd.Stderr, p.cmd.Stdout = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + p.addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	b, _ := os.ReadFile(p.log.Name())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	p.t.Fatalf("%s did not become healthy in 20s; last log lines:\n%s", p.name, strings.Join(lines[max(0, len(lines)-15):], "\n"))
}

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
}

type crashRig struct {
	t         *testing.T
	dir       string
	cloud     *proc
	appliance *proc
	token     string
}

func newCrashRig(t *testing.T) *crashRig {
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "services.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	r := &crashRig{t: t, dir: dir}
	r.cloud = &proc{t: t, name: "ihos-cloud", addr: freeAddr(t), log: logf}
	leaf := freeAddr(t)
	r.cloud.args = []string{"--data-dir", filepath.Join(dir, "cloud"), "--http", r.cloud.addr, "--leaf-listen", leaf, "--log-level", "warn"}
	r.appliance = &proc{t: t, name: "ihos-appliance", addr: freeAddr(t), log: logf}
	r.appliance.args = []string{"--data-dir", filepath.Join(dir, "appliance"), "--http", r.appliance.addr,
		"--credentials", filepath.Join(dir, "creds.json"), "--cloud-leaf", "nats-leaf://" + leaf, "--log-level", "warn"}
	r.cloud.start()
	// Enroll the hospital with the two tools, as IT would.
	out, err := exec.Command(filepath.Join(binaries(t), "ihos-cloud"), "hospital", "add", "--id", "h1", "--name", "崩溃测试医院",
		"--data-dir", filepath.Join(dir, "cloud"), "--http", r.cloud.addr, "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("hospital add: %v\n%s", err, out)
	}
	var code struct{ Code string }
	if err := json.Unmarshal(out, &code); err != nil || code.Code == "" {
		t.Fatalf("hospital add output: %s", out)
	}
	if out, err := exec.Command(filepath.Join(binaries(t), "ihos-appliance"), "enroll", "--cloud", "http://"+r.cloud.addr, "--code", code.Code,
		"--data-dir", filepath.Join(dir, "appliance")).CombinedOutput(); err != nil {
		t.Fatalf("enroll: %v\n%s", err, out)
	}
	r.appliance.start()
	t.Cleanup(func() { r.appliance.stop(); r.cloud.stop() })
	var creds map[string]struct{ Username, Password string }
	b, _ := os.ReadFile(filepath.Join(dir, "creds.json"))
	json.Unmarshal(b, &creds)
	var sess struct{ Token string }
	if code := postJSON(t, "http://"+r.appliance.addr+"/api/admin/login", "", map[string]string{"username": creds["console"].Username, "password": creds["console"].Password}, &sess); code != 200 {
		t.Fatalf("login: %d", code)
	}
	r.token = sess.Token
	var inst map[string]any
	if code := postJSON(t, "http://"+r.appliance.addr+"/api/admin/institutions", r.token, map[string]any{"code": "H1", "name": "崩溃测试医院"}, &inst); code != 201 {
		t.Fatalf("institution: %d", code)
	}
	return r
}

var crashClient = &http.Client{Timeout: 5 * time.Second}

func postJSON(t *testing.T, url, token string, body, out any) int {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := crashClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		json.Unmarshal(data, out)
	}
	return resp.StatusCode
}

// writer creates records until stop closes and returns the ids the service
// acknowledged (HTTP 201: committed).
func writer(t *testing.T, create func(i int) (string, int), stop <-chan struct{}) []string {
	var acked []string
	for i := 0; ; i++ {
		select {
		case <-stop:
			return acked
		default:
		}
		id, code := create(i)
		switch code {
		case 201:
			acked = append(acked, id)
		case 0:
			time.Sleep(20 * time.Millisecond) // down: retry when it is back
		default:
			t.Errorf("unexpected status %d", code)
			return acked
		}
	}
}

// killLoop SIGKILLs p at random moments and restarts it, n times.
func killLoop(p *proc, n int) {
	for k := 0; k < n; k++ {
		time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
		p.kill()
		p.start()
	}
}

// settle waits until every change each side captured has been applied on the
// other (reading both databases while the services run, as SQLite's WAL
// allows), then returns the databases.
func (r *crashRig) settle() (app, cloud *sqldb.DB) {
	t := r.t
	ctx := context.Background()
	var err error
	if app, err = sqldb.Open(ctx, filepath.Join(r.dir, "appliance", "appliance.db")); err != nil {
		t.Fatal(err)
	}
	if cloud, err = sqldb.Open(ctx, filepath.Join(r.dir, "cloud", "cloud.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close(); cloud.Close() })
	start := time.Now()
	for {
		a2c := captured(app) - scalar(cloud, `SELECT COUNT(*) FROM sync_inbox WHERE origin = 'appliance-h1'`)
		c2a := captured(cloud) - scalar(app, `SELECT COUNT(*) FROM sync_inbox WHERE origin = 'cloud'`)
		if a2c == 0 && c2a == 0 {
			break
		}
		if time.Since(start) > 90*time.Second {
			t.Fatalf("not converged after %v: %d changes appliance→cloud and %d cloud→appliance not applied; log %s", time.Since(start), a2c, c2a, r.cloud.log.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("converged %v after the last kill", time.Since(start).Round(time.Millisecond))
	return app, cloud
}

func ids(t *testing.T, db *sqldb.DB, q string) map[string]bool {
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		out[id] = true
	}
	return out
}

func scalar(db *sqldb.DB, q string) int {
	var n int
	db.QueryRow(q).Scan(&n)
	return n
}

// captured counts the changes a side ever captured: the ones its relay
// numbered into the outbox (the outbox sequence) and the ones still staged.
func captured(db *sqldb.DB) int {
	return scalar(db, `SELECT CAST(value AS INTEGER) FROM sync_state WHERE name = 'outbox_seq'`) + scalar(db, `SELECT COUNT(*) FROM sync_capture`)
}

// exactlyOnce checks that every change one side captured was applied on the
// other exactly once: the other's inbox holds as many of the origin's changes
// as the origin captured, and the records match.
func exactlyOnce(t *testing.T, from, to *sqldb.DB, origin, table, where string, acked []string) {
	t.Helper()
	seq := captured(from)
	applied := scalar(to, `SELECT COUNT(*) FROM sync_inbox WHERE origin = '`+origin+`'`)
	if applied != seq {
		t.Errorf("%s captured %d changes, the other side applied %d", origin, seq, applied)
	}
	src := ids(t, from, `SELECT id FROM `+table+where)
	dst := ids(t, to, `SELECT id FROM `+table+where)
	for _, id := range acked {
		if !src[id] {
			t.Errorf("acknowledged %s %s lost at its origin", table, id)
		}
		if !dst[id] {
			t.Errorf("acknowledged %s %s never reached the other side", table, id)
		}
	}
	if len(src) != len(dst) {
		t.Errorf("%s: %d at the origin, %d at the other side", table, len(src), len(dst))
	}
	t.Logf("%s: %d acknowledged, %d committed at the origin, %d changes applied exactly once", table, len(acked), len(src), applied)
}

func TestCrashApplianceKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs real processes")
	}
	r := newCrashRig(t)
	var inst struct{ Items []map[string]any }
	req, _ := http.NewRequest("GET", "http://"+r.appliance.addr+"/api/admin/institutions", nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := crashClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&inst)
	resp.Body.Close()
	instID := inst.Items[0]["id"]
	stop := make(chan struct{})
	done := make(chan []string)
	go func() {
		done <- writer(t, func(i int) (string, int) {
			var rec map[string]any
			code := postJSON(t, "http://"+r.appliance.addr+"/api/admin/departments", r.token,
				map[string]any{"institution_id": instID, "code": fmt.Sprintf("K%05d", i), "name": fmt.Sprintf("崩溃科室%d", i), "category": "临床"}, &rec)
			id, _ := rec["id"].(string)
			if code == 409 { // the previous attempt committed before the kill took its answer
				return "", 201
			}
			return id, code
		}, stop)
	}()
	killLoop(r.appliance, 20)
	close(stop)
	acked := <-done
	acked = compact(acked)
	app, cloud := r.settle()
	exactlyOnce(t, app, cloud, "appliance-h1", "departments", "", acked)
}

func TestCrashCloudKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs real processes")
	}
	r := newCrashRig(t)
	stop := make(chan struct{})
	done := make(chan []string)
	go func() {
		done <- writer(t, func(i int) (string, int) {
			var rec map[string]any
			code := postJSON(t, "http://"+r.cloud.addr+"/api/public/patients", "",
				map[string]any{"hospital_id": "h1", "name": fmt.Sprintf("患者%d", i), "phone": fmt.Sprintf("137%08d", i)}, &rec)
			id, _ := rec["id"].(string)
			if code == 409 {
				return "", 201
			}
			return id, code
		}, stop)
	}()
	killLoop(r.cloud, 20)
	close(stop)
	acked := compact(<-done)
	app, cloud := r.settle()
	exactlyOnce(t, cloud, app, "cloud", "patients", "", acked)
	// The appliance's own changes (the institution) crossed the other way despite the kills.
	exactlyOnce(t, app, cloud, "appliance-h1", "institutions", "", nil)
}

func compact(ids []string) []string {
	out := ids[:0]
	for _, id := range ids {
		if strings.TrimSpace(id) != "" {
			out = append(out, id)
		}
	}
	return out
}
