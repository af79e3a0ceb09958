// Package cloud is the internet-facing service: the patient H5 / mini-program
// API, the doctor and nurse apps, video rooms, online payment and message push.
// It runs on SQLite by default and on MySQL/MariaDB in production, and never
// dials into a hospital: hospitals dial out to it.
//
// It holds a replica of every connected hospital's master data (through package
// sync) and serves the public catalogue patients browse; the patient, doctor
// and nurse journeys arrive with their issues.
package cloud

import (
	"errors"

	"context"
	"crypto/tls"
	"flag"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"ihos"
	"ihos/accounts"
	"ihos/certs"
	"ihos/doctorapp"
	"ihos/emr"
	"ihos/h5"
	"ihos/internal/admin"
	"ihos/internal/entities"
	"ihos/internal/node"
	"ihos/internal/patients"
	"ihos/payments"
	"ihos/prescriptions"
	"ihos/staffauth"
	"ihos/sync"
	"ihos/visits"
)

// Config is the cloud's configuration.
type Config struct {
	node.Config
	// LeafListen is where hospitals' appliances connect their sync link
	// ("host:port"; port 0 picks a free one, reported by /api/sync/status).
	// Empty: no hospital can connect.
	LeafListen string `json:"leaf_listen" env:"IHOS_LEAF_LISTEN"`
	// LeafURL is the address appliances dial, told to them at enrollment
	// (nats-leaf://cloud.example.com:7422). Default: the listener's address.
	LeafURL string `json:"leaf_url" env:"IHOS_LEAF_URL"`
	// LeafHosts are extra names and addresses the leafnode server certificate
	// is valid for (the host of LeafURL, localhost and 127.0.0.1 always are).
	LeafHosts []string `json:"leaf_hosts" env:"IHOS_LEAF_HOSTS"`
	// NATSURL makes an external NATS server or cluster the hub (production):
	// the cloud connects to it as a client instead of embedding one. Its
	// leafnode listener, TLS (with <data dir>/pki/ca.crt, server.crt,
	// server.key) and JetStream domain "hub" are configured by IT; LeafURL
	// must then say where hospitals dial.
	NATSURL string `json:"nats_url" env:"IHOS_NATS_URL"`
	// PayChannel is the online payment channel for self-pay (see
	// PayChannelConfig); without its url no self-pay payment can be made.
	PayChannel PayChannelConfig `json:"paychannel"`
	// Patients is what the patient accounts reach outside (SMS codes,
	// real-name verification; see PatientConfig).
	Patients PatientConfig `json:"patients"`
}

// DefaultHTTP is where the cloud listens unless told otherwise.
const DefaultHTTP = "127.0.0.1:8080"

// App is a running cloud node.
type App struct {
	Node    *node.Node
	Store   *admin.Store
	Replica *sync.Replica
	Link    *sync.Link
	Handler http.Handler
	// Hospitals is the register of hospitals and their enrollment.
	Hospitals *Hospitals
	// Payments is the payment service (docs/decisions/0012).
	Payments *payments.Service
	// Visits is the online visit service (package visits); a paid booking
	// opens its visit through it.
	Visits *visits.Service
	// Patients is the patient accounts service; its Authorize authorises
	// patient requests (package accounts).
	Patients *accounts.Service
	// Staff is the doctor and pharmacist app logins; its Authorize and
	// RequireRealNameToday guard the staff routes (package staffauth).
	Staff *staffauth.Service
	// Prescriptions is the online prescription service (package
	// prescriptions); the payment API asks its Payable before it charges.
	Prescriptions *prescriptions.Service
	payDone       chan struct{} // closed when the payment resolver has stopped
	stop          context.CancelFunc
	monitor       *nats.Conn // external NATS only

	// EMR is the online outpatient record and exam/lab order service
	// (package emr).
	EMR *emr.Service
}

// New opens the cloud's node and wires its routes.
func New(ctx context.Context, cfg Config) (*App, error) {
	if cfg.NodeID == "" {
		cfg.NodeID = "cloud"
	}
	hosp := &Hospitals{enabled: map[string]string{}}
	opts := node.Options{Kind: "cloud", AllowMySQL: true, JetStreamDom: sync.HubDomain, LeafListen: cfg.LeafListen}
	external := cfg.NATSURL != ""
	if external {
		if cfg.LeafListen != "" || cfg.LeafURL == "" {
			return nil, ihos.Errorf(ihos.EInvalid, "使用外部消息服务（nats_url）时，须设置医院同步地址 leaf_url，且不设置 leaf_listen")
		}
		opts.NoBroker, opts.LeafListen = true, ""
	}
	if cfg.LeafListen != "" {
		// Hospitals connect over mutual TLS only, each bound by its certificate
		// to its own account.
		opts.LeafTLS = func(dataDir string) (*tls.Config, error) {
			ca, err := certs.LoadOrCreateCA(filepath.Join(dataDir, "pki"))
			if err != nil {
				return nil, err
			}
			srv, err := ca.ServerCert(filepath.Join(dataDir, "pki"), leafHosts(cfg))
			if err != nil {
				return nil, err
			}
			hosp.ca = ca
			return ca.HubTLS(srv), nil
		}
		opts.HospitalOf = hosp.hospitalOf
	}
	n, err := node.Open(ctx, cfg.Config, opts)
	if err != nil {
		return nil, err
	}
	hosp.db = n.DB
	var dial func(string) (*nats.Conn, jetstream.JetStream, error)
	var monitor *nats.Conn
	if external {
		// The CA signs hospitals' certificates; the server certificate is for the
		// external server's leafnode TLS.
		pki := filepath.Join(n.Config.DataDir, "pki")
		if hosp.ca, err = certs.LoadOrCreateCA(pki); err == nil {
			_, err = hosp.ca.ServerCert(pki, leafHosts(cfg))
		}
		if err == nil {
			monitor, err = nats.Connect(cfg.NATSURL, nats.Name("cloud-health"), nats.MaxReconnects(-1))
		}
		if err != nil {
			n.Close()
			return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "无法连接消息服务集群 " + cfg.NATSURL, Err: err}
		}
		n.NATSCheck = func() error {
			if !monitor.IsConnected() {
				return errors.New("disconnected")
			}
			return nil
		}
		dial = sync.URLDial(cfg.NATSURL)
	} else {
		dial = sync.BrokerDial(n.Broker)
	}
	hosp.leafURL = func() string {
		if cfg.LeafURL != "" {
			return cfg.LeafURL
		}
		return "nats-leaf://" + leafAddr(n)
	}
	if err := hosp.load(ctx); err != nil {
		n.Close()
		return nil, err
	}
	replica, err := sync.NewReplica(ctx, n.DB, sync.Cloud, cfg.Config.NodeID,
		entities.Registry())
	if err != nil {
		n.Close()
		return nil, err
	}
	feed := startFeed(replica) // before the link starts: the message center and doctor statistics follow its feed (notices.go)
	// Sealed columns cross under each hospital's transit key (decision 0014).
	replica.Keys = &sync.Keys{Local: n.Sealer}
	replica.Keys.TransitKey = replica.StoredTransitKey
	store := admin.NewStore(n.DB, n.Sealer, n.Auth, patients.Resource())
	store.OnWrite = replica.OnWrite("")
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	link, err := sync.StartHub(lctx, dial, replica, hosp.IDs()...)
	if err != nil {
		stop()
		if monitor != nil {
			monitor.Close()
		}
		n.Close()
		return nil, err
	}
	hosp.link = link
	store.AfterCommit = link.Kick
	a := &App{Node: n, Store: store, Replica: replica, Link: link, Hospitals: hosp, stop: stop, monitor: monitor}
	if err := link.ServeSync(); err != nil {
		a.Close()
		return nil, err
	}
	if addr := leafAddr(n); addr != "" {
		// Scripts and operators read the bound address (a port of 0 picks one).
		if err := os.WriteFile(filepath.Join(n.Config.DataDir, "leaf.addr"), []byte(addr+"\n"), 0o644); err != nil {
			a.Close()
			return nil, err
		}
		slog.Info("sync: accepting hospital links over mutual TLS", "leaf", addr, "url", hosp.leafURL())
	}
	mux := http.NewServeMux()
	mux.Handle("GET /api/sync/status", link.StatusHandler())
	catalog{db: n.DB}.routes(mux)
	signup{store: store, hospitals: hosp}.routes(mux)
	hisLink{node: n, link: link}.routes(mux)
	hosp.routes(mux, n)
	if err := startPayments(ctx, cfg, n, a, mux); err != nil {
		a.Close()
		return nil, err
	}
	startReconcile(lctx, n, a, mux)
	if err := startBillpay(a, mux); err != nil {
		a.Close()
		return nil, err
	}
	startPatients(cfg, n, a, mux)
	startStaff(cfg, n, a, mux)
	if err := startVisits(lctx, cfg, n, a, mux); err != nil {
		a.Close()
		return nil, err
	}
	startBooking(lctx, n, a, mux)
	startPrescriptions(lctx, n, a, mux)
	startEMR(lctx, n, a, mux) // after startPrescriptions: it shares its signer and HIS
	if err := startWorkbench(ctx, n, a, mux); err != nil {
		a.Close()
		return nil, err
	}
	doctorapp.New(n.DB, a.Staff, a.Prescriptions).Routes(mux) // the doctor/pharmacist app at /doctor/
	// The message center, ratings, the patient's history (notices.go).
	startPatientSide(lctx, n, a, mux, feed)
	a.payDone = make(chan struct{})
	go runPayments(lctx, a.Payments, a.payDone)
	h5.Routes(mux, hosp) // the patients' mobile pages at /h5/
	mux.Handle("GET /healthz", n.Health())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		landing.Execute(w, map[string]string{"Version": ihos.Version, "Database": n.DB.Engine})
	})
	a.Handler = n.Auth.Middleware(mux)
	return a, nil
}

// Close stops the sync link and releases the node.
func (a *App) Close() {
	a.stop()
	if a.payDone != nil {
		<-a.payDone // the resolver uses the database: let it finish first
	}
	a.Link.Close()
	if a.monitor != nil {
		a.monitor.Close()
	}
	a.Node.Close()
}

// leafAddr is the embedded hub's leafnode address ("" with an external hub).
func leafAddr(n *node.Node) string {
	if n.Broker == nil {
		return ""
	}
	return n.Broker.LeafAddr()
}

// Run is the cloud's main: it parses args, starts, and serves until ctx ends.
func Run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "hospital" {
		return HospitalCLI(ctx, args[1:], os.Stdout)
	}
	cfg := Config{Config: node.Config{HTTP: DefaultHTTP}}
	fs := flag.NewFlagSet("ihos-cloud", flag.ContinueOnError)
	path := cfg.Flags(fs)
	fs.StringVar(&cfg.LeafListen, "leaf-listen", cfg.LeafListen, "医院同步连接的监听地址，如 0.0.0.0:7422")
	return node.Run(ctx, fs, args, &cfg, path, func(ctx context.Context) (*node.Node, http.Handler, error) {
		a, err := New(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		return a.Node, a.Handler, nil
	})
}

var landing = template.Must(template.New("landing").Parse(`<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>互联网医院 · 云端服务</title></head>
<body style="font-family: 'PingFang SC','Microsoft YaHei','WenQuanYi Micro Hei',sans-serif; max-width: 640px; margin: 60px auto; color: #1f2933">
<h1 style="color:#0b5cab">互联网医院 · 云端服务</h1>
<p>本服务为患者（小程序 / H5）、医生和护士（App）提供线上服务接口。</p>
<p>运行状态：<a href="/healthz">/healthz</a>　版本：{{.Version}}　数据库：{{.Database}}</p>
</body></html>`))

// leafHosts are the names the leafnode server certificate covers.
func leafHosts(cfg Config) []string {
	hosts := []string{"localhost", "127.0.0.1"}
	if h, _, err := net.SplitHostPort(cfg.LeafListen); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
		hosts = append(hosts, h)
	}
	if u, err := url.Parse(cfg.LeafURL); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	if name, err := os.Hostname(); err == nil {
		hosts = append(hosts, strings.ToLower(name))
	}
	hosts = append(hosts, cfg.LeafHosts...)
	slices.Sort(hosts)
	return slices.Compact(hosts)
}
