package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ihos/certs"
	"ihos/internal/sqldb/sqldbtest"
)

// externalHub starts a nats-server process as the cloud's hub, the way
// production runs it: JetStream domain "hub", a leafnode listener with mutual
// TLS using the cloud's CA. It returns the client URL for the cloud and the
// leafnode URL for hospitals. The server is /usr/sbin/nats-server (Debian's
// package) or $IHOS_NATS_SERVER; without one the test is skipped, except in CI.
func externalHub(t *testing.T, cloudDir string) *hubProc {
	t.Helper()
	bin := os.Getenv("IHOS_NATS_SERVER")
	if bin == "" {
		bin = "/usr/sbin/nats-server"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no nats-server at %s but CI=true: the external hub test must run in CI", bin)
		}
		t.Skipf("no nats-server at %s (install Debian's nats-server or set IHOS_NATS_SERVER)", bin)
	}
	pki := filepath.Join(cloudDir, "pki")
	ca, err := certs.LoadOrCreateCA(pki)
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"127.0.0.1", "localhost"}
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, strings.ToLower(h))
	}
	if _, err := ca.ServerCert(pki, hosts); err != nil {
		t.Fatal(err)
	}
	client, leaf := freeAddr(t), freeAddr(t)
	conf := filepath.Join(t.TempDir(), "hub.conf")
	store := t.TempDir()
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`
server_name: ihos-hub
listen: %q
jetstream { store_dir: %q, domain: hub }
leafnodes {
  listen: %q
  no_advertise: true
  tls {
    cert_file: %q
    key_file: %q
    ca_file: %q
    verify: true
  }
}
`, client, store, leaf, filepath.Join(pki, "server.crt"), filepath.Join(pki, "server.key"), filepath.Join(pki, "ca.crt"))), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(t.TempDir(), "nats-server.log"))
	h := &hubProc{t: t, bin: bin, conf: conf, log: logf, client: client, leaf: leaf}
	h.start()
	t.Cleanup(func() { h.kill(); logf.Close() })
	return h
}

// hubProc is the external hub's process, which a test can kill and restart on
// the same store (an outage of the hub).
type hubProc struct {
	t            *testing.T
	bin, conf    string
	log          *os.File
	client, leaf string
	cmd          *exec.Cmd
}

func (h *hubProc) natsURL() string { return "nats://" + h.client }
func (h *hubProc) leafURL() string { return "nats-leaf://" + h.leaf }

func (h *hubProc) start() {
	h.t.Helper()
	h.cmd = exec.Command(h.bin, "-c", h.conf)
	h.cmd.Stdout, h.cmd.Stderr = h.log, h.log
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", h.leaf)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(h.log.Name())
			h.t.Fatalf("nats-server did not start:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *hubProc) kill() {
	if h.cmd != nil && h.cmd.Process != nil {
		h.cmd.Process.Kill()
		h.cmd.Wait()
	}
}

// Production mode: the hub is a separate nats-server process and the cloud
// runs on MariaDB. Both sides write while linked and converge: verify finds no
// difference, and the stream fill drops back to zero.
func TestExternalHubConverges(t *testing.T) {
	s := startWith(t, setup{cloudDatabase: sqldbtest.MySQLDSN(t), externalHub: true})
	const n = 300
	s.writeBothSides(t, n, "X", "外部集群", "135")
	took := s.inSync(t, 60*time.Second, "converged through the external hub")
	t.Logf("%d changes each way converged %v after the last write", n, took.Round(time.Millisecond))
	var health map[string]any
	if code := getJSON(t, s.cloudURL+"/healthz", &health); code != 200 {
		t.Fatalf("cloud health with an external hub: %d %v", code, health)
	}
}

// The external hub goes down (SIGKILL) while both sides keep writing; when it
// is back on the same store, both sides converge.
func TestExternalHubOutage(t *testing.T) {
	s := startWith(t, setup{cloudDatabase: sqldbtest.MySQLDSN(t), externalHub: true})
	s.inSync(t, 30*time.Second, "demo data replicated")
	s.hub.kill()
	const n = 200
	s.writeBothSides(t, n, "O", "停机期间", "134")
	if st, _ := s.appliance.Link.Status(adminCtx); st.Backlog == 0 {
		t.Fatal("appliance backlog empty while the hub is down")
	}
	s.hub.start()
	took := s.inSync(t, 90*time.Second, "converged after the hub came back")
	t.Logf("%d changes each way made during the hub outage converged %v after it came back", n, took.Round(time.Millisecond))
}
