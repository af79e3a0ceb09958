package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ihos"
	"ihos/certs"
	"ihos/internal/nettest"
	"ihos/internal/sqldb/sqldbtest"
)

// externalHub starts a nats-server process as the cloud's hub, the way
// production runs it: JetStream domain "hub", a leafnode listener with mutual
// TLS using the cloud's CA. It returns the client URL for the cloud and the
// leafnode URL for hospitals. The server is /usr/sbin/nats-server (Debian's
// package) or $IHOS_NATS_SERVER; without one the test is skipped, except in CI.
//
// via, when set, puts something (a cuttable proxy, standing for the load
// balancer hospitals reach the hub through) in front of the leafnode listener
// and returns its address: the cloud then tells hospitals that address, and the
// hub advertises it.
func externalHub(t *testing.T, cloudDir string, via func(leaf string) string) *hubProc {
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
	dial := leaf
	if via != nil {
		dial = via(leaf)
	}
	conf := filepath.Join(t.TempDir(), "hub.conf")
	store := t.TempDir()
	// no_advertise alone does not keep the hub's own leafnode listener out of
	// the INFO it sends leafs before nats-server 2.15 (nats-io/nats-server#8367,
	// fixed by #8451): Debian's 2.9 sends "leafnode_urls":[<listen>], the leaf
	// adds that URL ahead of its configured one, and after a disconnect it
	// redials the listener directly, past any proxy or load balancer. So the
	// hub also advertises the address hospitals are told to dial; a leaf drops
	// an advertised URL equal to its configured one.
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`
server_name: ihos-hub
listen: %q
jetstream { store_dir: %q, domain: hub }
leafnodes {
  listen: %q
  advertise: %q
  no_advertise: true
  tls {
    cert_file: %q
    key_file: %q
    ca_file: %q
    verify: true
  }
}
`, client, store, leaf, dial, filepath.Join(pki, "server.crt"), filepath.Join(pki, "server.key"), filepath.Join(pki, "ca.crt"))), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(t.TempDir(), "nats-server.log"))
	h := &hubProc{t: t, bin: bin, conf: conf, log: logf, client: client, leaf: leaf, dial: dial}
	h.start()
	t.Cleanup(func() { h.kill(); logf.Close() })
	return h
}

// hubProc is the external hub's process, which a test can kill and restart on
// the same store (an outage of the hub).
type hubProc struct {
	t         *testing.T
	bin, conf string
	log       *os.File
	client    string // the client listener, for the cloud
	leaf      string // the leafnode listener
	dial      string // where hospitals dial: leaf, or the proxy in front of it
	cmd       *exec.Cmd
}

func (h *hubProc) natsURL() string { return "nats://" + h.client }
func (h *hubProc) leafURL() string { return "nats-leaf://" + h.dial }

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

// A partition with the external hub: the link between the appliance and the
// hub (a proxy standing for the hub's load balancer) is cut while both sides
// keep writing, and restored. The appliance stays cut off the whole time (it
// does not find its way to the hub's own leafnode port), and when the link
// returns both sides converge: sync verify finds no difference.
func TestExternalHubPartition(t *testing.T) {
	var proxy *nettest.Proxy
	s := startWith(t, setup{cloudDatabase: sqldbtest.MySQLDSN(t), externalHub: true, via: func(leaf string) string {
		proxy = nettest.NewProxy(t, leaf)
		return proxy.Addr()
	}})
	ctx := adminCtx
	leaf := s.appliance.Node.Broker.Server()
	// leafConns lists where the appliance's leafnode connections go.
	leafConns := func() []string {
		lz, err := leaf.Leafz(nil)
		if err != nil {
			t.Fatal(err)
		}
		var c []string
		for _, l := range lz.Leafs {
			c = append(c, net.JoinHostPort(l.IP, fmt.Sprint(l.Port)))
		}
		return c
	}
	throughProxy := func(what string) {
		t.Helper()
		eventually(t, 10*time.Second, what, func() bool {
			c := leafConns()
			return len(c) == 1 && c[0] == proxy.Addr()
		})
	}
	s.inSync(t, 30*time.Second, "demo data replicated")
	throughProxy("the appliance linked to the hub through the proxy")

	proxy.Cut()
	cut := time.Now()
	bypassed := func(c []string) {
		t.Helper()
		t.Fatalf("the appliance reached the hub past the cut proxy (%s): leafnode connections %v", proxy.Addr(), c)
	}
	eventually(t, 10*time.Second, "link down", func() bool {
		st, _ := s.appliance.Link.Status(ctx)
		c := leafConns()
		for _, a := range c {
			if a != proxy.Addr() { // not the connection being torn down
				bypassed(c)
			}
		}
		return st.State == "disconnected" && len(c) == 0
	})
	// Watch the leaf for the whole partition: any leafnode connection means
	// it reached the hub past the cut (the leaf redials every second).
	var bypass atomic.Value
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if c := leafConns(); len(c) > 0 && bypass.Load() == nil {
				bypass.Store(c)
			}
		}
	}()

	n := partitionChanges()
	start := time.Now()
	s.writeBothSides(t, n, "E", "外部分区", "133")
	t.Logf("%d changes on each side while partitioned in %v", n, time.Since(start).Round(time.Millisecond))
	if c := bypass.Load(); c != nil {
		bypassed(c.([]string))
	}
	if _, err := s.appliance.Link.Verify(ctx, "h1"); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Fatalf("verify while partitioned: %v", err)
	}
	if st, _ := s.appliance.Link.Status(ctx); st.State != "disconnected" || st.Backlog == 0 {
		t.Fatalf("appliance while partitioned: state %s, backlog %d; want disconnected with a backlog", st.State, st.Backlog)
	}
	// The cloud's changes wait in the hospital's down stream on the hub.
	eventually(t, 10*time.Second, "cloud backlog in the down stream", func() bool {
		st, _ := s.cloud.Link.Status(ctx)
		return st.Backlog == 0 && st.StreamUsagePct > 0
	})
	// At least a few of the leaf's redials fall inside the cut.
	if d := 3*time.Second - time.Since(cut); d > 0 {
		time.Sleep(d)
	}
	close(stop)
	<-watched
	if c := bypass.Load(); c != nil {
		bypassed(c.([]string))
	}
	t.Logf("partitioned for %v, no leafnode connection", time.Since(cut).Round(time.Millisecond))

	proxy.Restore(t)
	took := s.inSync(t, 5*time.Minute, "both sides converged")
	t.Logf("converged %v after the link returned", took.Round(time.Millisecond))
	throughProxy("the appliance relinked through the proxy")
	eventually(t, 10*time.Second, "streams empty", func() bool {
		st, _ := s.cloud.Link.Status(ctx)
		return st.StreamUsagePct == 0 && !st.StreamAlarm
	})
	var onCloud, onAppliance int
	s.cloud.Node.DB.QueryRow(`SELECT COUNT(*) FROM departments WHERE hospital_id = 'h1' AND code LIKE 'E0%'`).Scan(&onCloud)
	s.appliance.Node.DB.QueryRow(`SELECT COUNT(*) FROM patients WHERE name LIKE '外部分区患者%'`).Scan(&onAppliance)
	if onCloud != n || onAppliance != n {
		t.Fatalf("after healing: %d departments on the cloud, %d patients on the appliance; want %d each", onCloud, onAppliance, n)
	}
}
