package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/appliance"
	"ihos/cloud"
	"ihos/his/hissim"
	"ihos/internal/admin"
	"ihos/internal/auth"
	"ihos/internal/node"
	"ihos/internal/web"
)

type system struct {
	hub       *hubProc // the external hub, when there is one
	cloud     *cloud.App
	appliance *appliance.App
	cloudURL  string
	appURL    string
	his       *hissim.Sim // the HIS simulator, when setup.hisSim
}

func start(t *testing.T) *system {
	t.Helper()
	return startWith(t, setup{})
}

// setup varies how startWith starts the pair.
type setup struct {
	// via, when set, puts something (a cuttable proxy) between the appliance
	// and the cloud's leafnode port and returns the address to dial. With an
	// external hub, the cloud tells hospitals that address and the hub
	// advertises it (see externalHub).
	via func(leaf string) string
	// cloudDatabase is the cloud's database ("" = SQLite in its data dir).
	cloudDatabase string
	// externalHub runs the hub as a separate nats-server process (production
	// mode) instead of the cloud's embedded one.
	externalHub bool
	// hisSim starts the HIS simulator and points the appliance at it.
	hisSim bool
}

// startWith starts both services and enrolls the appliance with the cloud.
func startWith(t *testing.T, o setup) *system {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	var hub *hubProc
	ccfg := cloud.Config{Config: node.Config{DataDir: filepath.Join(dir, "cloud"), Database: o.cloudDatabase}, LeafListen: "127.0.0.1:0"}
	if o.externalHub {
		ccfg.LeafListen = ""
		hub = externalHub(t, filepath.Join(dir, "cloud"), o.via)
		ccfg.NATSURL, ccfg.LeafURL = hub.natsURL(), hub.leafURL()
	}
	c, err := cloud.New(ctx, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	cs := httptest.NewServer(web.Middleware(c.Handler))
	// Enroll the hospital the way IT does: a code from the cloud, traded by the
	// appliance for its certificate.
	code, err := c.Hospitals.Add(ctx, "h1", "示例市第一人民医院")
	if err != nil {
		t.Fatal(err)
	}
	appDir := filepath.Join(dir, "appliance")
	if _, err := appliance.Enroll(ctx, appDir, cs.URL, code.Code); err != nil {
		t.Fatal(err)
	}
	leaf := strings.TrimPrefix(code.LeafURL, "nats-leaf://")
	if o.via != nil && hub == nil {
		leaf = o.via(leaf)
	}
	acfg := appliance.Config{Config: node.Config{DataDir: appDir}, Demo: true,
		Credentials: filepath.Join(dir, "creds.json"), CloudLeaf: "nats-leaf://" + leaf}
	var sim *hissim.Sim
	if o.hisSim {
		acfg.HIS.Listen = freeAddr(t)
		var err error
		sim, err = hissim.Start(ctx, hissim.Config{DataDir: filepath.Join(dir, "his"), ResultsTo: acfg.HIS.Listen, ResultDelay: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sim.Close() })
		acfg.HIS.MLLP = sim.MLLPAddr()
	}
	a, err := appliance.New(ctx, acfg)
	if err != nil {
		cs.Close()
		c.Close()
		t.Fatal(err)
	}
	as := httptest.NewServer(web.Middleware(a.Handler))
	t.Cleanup(func() { as.Close(); cs.Close(); a.Close(); c.Close() })
	return &system{cloud: c, appliance: a, cloudURL: cs.URL, appURL: as.URL, hub: hub, his: sim}
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

func eventually(t *testing.T, d time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if ok() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v", what, d)
	return 0
}

type list[T any] struct {
	Items []T `json:"items"`
}

func TestMasterDataReachesCloudCatalogue(t *testing.T) {
	s := start(t)
	// The demo hospital's seed flows to the cloud on first connect.
	eventually(t, 10*time.Second, "demo departments in the public catalogue", func() bool {
		var l list[cloud.PublicDepartment]
		getJSON(t, s.cloudURL+"/api/public/departments?hospital=h1", &l)
		return len(l.Items) >= 8
	})
	eventually(t, 10*time.Second, "demo doctors in the public catalogue", func() bool {
		var docs list[cloud.PublicDoctor]
		getJSON(t, s.cloudURL+"/api/public/doctors?hospital=h1", &docs)
		return len(docs.Items) >= 10
	})

	// A department edited in the console shows in the cloud within a second.
	ctx := adminCtx
	res, _ := s.appliance.Store.Resource("departments")
	page, err := s.appliance.Store.List(ctx, res, admin.Query{Filters: map[string]string{"code": "XNK"}})
	if err != nil || page.Total != 1 {
		t.Fatalf("find XNK: %v %+v", err, page)
	}
	d := page.Items[0]
	if _, err := s.appliance.Store.Update(ctx, res, d["id"].(string), map[string]any{"version": d["version"], "name": "心血管内科（胸痛中心）"}); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 5*time.Second, "renamed department on the cloud", func() bool {
		var l list[cloud.PublicDepartment]
		getJSON(t, s.cloudURL+"/api/public/departments?hospital=h1", &l)
		for _, it := range l.Items {
			if it.Name == "心血管内科（胸痛中心）" {
				return true
			}
		}
		return false
	})
	t.Logf("console edit visible in the cloud catalogue after %v", took)
	if took > time.Second {
		t.Errorf("took %v, want under 1s", took)
	}
}

func TestPatientSignupReachesAppliance(t *testing.T) {
	s := start(t)
	body, _ := json.Marshal(map[string]any{"hospital_id": "h1", "name": "陈小明", "gender": "男", "birth_year": 1985, "phone": "13712345678"})
	start := time.Now()
	resp, err := http.Post(s.cloudURL+"/api/public/patients", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	json.NewDecoder(resp.Body).Decode(&rec)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || rec["phone"] != "137****5678" {
		t.Fatalf("signup: %d %v", resp.StatusCode, rec)
	}
	took := eventually(t, 5*time.Second, "patient on the appliance", func() bool {
		var name string
		s.appliance.Node.DB.QueryRow(`SELECT name FROM patients WHERE id = ? AND hospital_id = 'h1'`, rec["id"]).Scan(&name)
		return name == "陈小明"
	})
	t.Logf("patient visible on the appliance after %v (%v from the request)", took, time.Since(start))
	if took > time.Second {
		t.Errorf("took %v, want under 1s", took)
	}
	// The console shows the replica, read-only.
	sysCtx := ihos.WithActor(context.Background(), ihos.Actor{UserID: "t", Username: "t", Role: auth.RoleSysAdmin})
	pres, err := s.appliance.Store.Resource("patients")
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.appliance.Store.List(sysCtx, pres, admin.Query{Q: "陈小明"})
	if err != nil || page.Total != 1 || page.Items[0]["hospital_id"] != "h1" {
		t.Fatalf("patients on the appliance console: %v %+v", err, page)
	}
	if _, err := s.appliance.Store.Create(sysCtx, pres, map[string]any{"hospital_id": "h1", "name": "院内新建"}); ihos.ErrorCode(err) != ihos.EForbidden {
		t.Fatalf("appliance created a cloud-owned patient: %v", err)
	}
	if _, err := s.appliance.Store.SetEnabled(sysCtx, pres, rec["id"].(string), false); ihos.ErrorCode(err) != ihos.EForbidden {
		t.Fatalf("appliance disabled a cloud-owned patient: %v", err)
	}
	// The phone stays sealed on the cloud.
	var phone string
	s.appliance.Node.DB.QueryRow(`SELECT phone FROM patients WHERE id = ?`, rec["id"]).Scan(&phone)
	if phone != "" {
		t.Fatalf("phone replicated: %q", phone)
	}
	// Signing up twice with one phone is a conflict; a closed hospital is refused.
	resp, _ = http.Post(s.cloudURL+"/api/public/patients", "application/json", bytes.NewReader(body))
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("duplicate phone: %d", resp.StatusCode)
	}
	bad, _ := json.Marshal(map[string]any{"hospital_id": "h9", "name": "x", "phone": "13700000000"})
	resp, _ = http.Post(s.cloudURL+"/api/public/patients", "application/json", bytes.NewReader(bad))
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown hospital: %d", resp.StatusCode)
	}
	// Both sides report a connected link.
	for _, u := range []string{s.cloudURL, s.appURL} {
		var st map[string]any
		if code := getJSON(t, u+"/api/sync/status", &st); code != 200 || st["state"] != "connected" {
			t.Fatalf("%s status: %d %v", u, code, st)
		}
	}
}

// The appliance's CLI reports the link, verifies both sides against each other
// and resyncs an entity, through the running service.
func TestSyncCLI(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	dir := s.appliance.Node.Config.DataDir
	addr := strings.TrimPrefix(s.appURL, "http://")
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := appliance.SyncCLI(ctx, append(args, "--data-dir", dir, "--http", addr), &out)
		return out.String(), err
	}
	eventually(t, 10*time.Second, "demo data replicated", func() bool {
		st, _ := s.appliance.Link.Status(ctx)
		var n int
		s.cloud.Node.DB.QueryRow(`SELECT COUNT(*) FROM staff WHERE hospital_id = 'h1'`).Scan(&n)
		return st.Backlog == 0 && n >= 30
	})
	out, err := run("status")
	if err != nil || !strings.Contains(out, "同步链路：已连接") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	// Backlog 0 means the hub has it; the cloud may still be applying.
	eventually(t, 10*time.Second, "verify in sync", func() bool {
		out, err = run("verify")
		return err == nil && strings.Contains(out, "结果：两侧数据一致")
	})
	t.Logf("verify:\n%s", out)
	// Damage the cloud's copy of one doctor; verify finds it, resync repairs it.
	s.cloud.Node.DB.Exec(`DELETE FROM staff WHERE hospital_id = 'h1' AND job_no = 'D1001'`)
	out, err = run("verify")
	if ihos.ErrorCode(err) != ihos.EConflict || !strings.Contains(out, "对方缺少此记录") {
		t.Fatalf("verify after damage: %v\n%s", err, out)
	}
	out, err = run("resync", "staff")
	if err != nil || !strings.Contains(out, "已重新发送 staff") {
		t.Fatalf("resync: %v\n%s", err, out)
	}
	eventually(t, 10*time.Second, "in sync after resync", func() bool {
		out, err := run("verify")
		return err == nil && strings.Contains(out, "两侧数据一致")
	})
	// A wrong token is refused.
	os.WriteFile(filepath.Join(dir, "cli.token"), []byte("forged\n"), 0o600)
	if _, err := run("verify"); ihos.ErrorCode(err) != ihos.EUnauthorized {
		t.Fatalf("forged token: %v", err)
	}
}

// adminCtx is the system administrator the tests write as.
var adminCtx = ihos.WithActor(context.Background(), ihos.Actor{UserID: "t", Username: "t", Role: auth.RoleSysAdmin})

// writeBothSides makes n changes on each side at once: departments on the
// appliance (codes <tag>00000…, names <name>科室…) and patient accounts on the
// cloud (names <name>患者…, phones <phonePrefix>…).
func (s *system) writeBothSides(t *testing.T, n int, tag, name, phonePrefix string) {
	t.Helper()
	depts, _ := s.appliance.Store.Resource("departments")
	inst, _ := s.appliance.Store.Resource("institutions")
	ip, err := s.appliance.Store.List(adminCtx, inst, admin.Query{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	patients, _ := s.cloud.Store.Resource("patients")
	done := make(chan error, 2)
	go func() {
		for i := 0; i < n; i++ {
			if _, err := s.appliance.Store.Create(adminCtx, depts, map[string]any{"institution_id": ip.Items[0]["id"],
				"code": fmt.Sprintf("%s%05d", tag, i), "name": fmt.Sprintf("%s科室%d", name, i), "category": "临床"}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	go func() {
		for i := 0; i < n; i++ {
			if _, err := s.cloud.Store.Create(adminCtx, patients, map[string]any{"hospital_id": "h1", "name": fmt.Sprintf("%s患者%d", name, i),
				"phone": fmt.Sprintf("%s%08d", phonePrefix, i)}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for k := 0; k < 2; k++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// inSync waits until sync verify finds no difference and returns how long it took.
func (s *system) inSync(t *testing.T, d time.Duration, what string) time.Duration {
	t.Helper()
	return eventually(t, d, what, func() bool {
		rep, err := s.appliance.Link.Verify(adminCtx, "h1")
		return err == nil && rep.InSync
	})
}
