// Package appliance is the service that runs on the hospital's own servers. It
// owns the hospital's master data and the LAN console staff use to manage it,
// and (in later work) the links to HIS, the insurance front-end, the signing
// server, printers and the kiosk. It keeps working when the internet link is
// down.
package appliance

import (
	"context"
	"crypto/tls"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	stdsync "sync"

	"ihos"

	"ihos/certs/esign"
	"ihos/his"
	"ihos/insurance"
	"ihos/insurance/settle"
	"ihos/internal/admin"
	"ihos/internal/console"
	"ihos/internal/entities"
	"ihos/internal/masterdata"
	"ihos/internal/node"
	"ihos/internal/patients"
	"ihos/kiosk"
	"ihos/printing"
	"ihos/recorder"
	"ihos/sync"
	"ihos/tickets"
)

// Config is the appliance's configuration.
type Config struct {
	node.Config
	// Demo seeds a demo hospital (institutions, departments, staff and console
	// users) on first start.
	Demo bool `json:"demo" env:"IHOS_DEMO"`
	// Credentials is the JSON file first start writes the generated console
	// logins to (mode 0600). Default: initial-credentials.json in the data dir.
	Credentials string `json:"credentials" env:"IHOS_CREDENTIALS"`
	// SecureCookies marks the session cookie Secure; set it when the console is
	// served over HTTPS by a front proxy.
	SecureCookies bool `json:"secure_cookies" env:"IHOS_SECURE_COOKIES"`
	// HospitalID names this hospital to the cloud (its subjects, streams and
	// JetStream domain).
	HospitalID string `json:"hospital_id" env:"IHOS_HOSPITAL_ID"`
	// CloudLeaf is the cloud hub's leafnode URL (nats-leaf://host:7422); the
	// appliance dials out to it. Empty: run standalone, changes wait in the outbox.
	CloudLeaf string `json:"cloud_leaf" env:"IHOS_CLOUD_LEAF"`
	// HIS is the link to the hospital information system.
	HIS HISConfig `json:"his"`
	// Signing is the signing service: the hospital CA, time source, API.
	Signing SigningConfig `json:"signing"`
	// Insurance is the line to the national medical insurance platform.
	Insurance InsuranceConfig `json:"insurance"`
	// EInvoice is the account at the finance e-invoice platform.
	EInvoice EInvoiceConfig `json:"einvoice"`
	// Recorder is where body-worn recorders are looked for and how long
	// their footage is kept.
	Recorder RecorderConfig `json:"recorder"`
	// DemoPrinter is the ticket printer (host:port, ESC/POS on TCP) the demo
	// hospital's kiosk prints on; used with Demo on first start.
	DemoPrinter string `json:"demo_printer" env:"IHOS_DEMO_PRINTER"`
}

// DefaultHospitalID is the hospital id of a standalone or demo appliance.
const DefaultHospitalID = "h1"

// DefaultHTTP is where the console listens unless told otherwise.
const DefaultHTTP = "127.0.0.1:8090"

// Product is the console's name in its title bar.
const Product = "互联网医院 · 院内管理控制台"

// App is a running appliance.
type App struct {
	Node    *node.Node
	Store   *admin.Store
	Console *console.Console
	Replica *sync.Replica
	Link    *sync.Link
	Handler http.Handler
	HIS     *his.Service
	his     *hisLink
	// ESign is the staff e-signature service.
	ESign *esign.Service
	// Signer signs and verifies the platform's own data: in process with this
	// appliance's signing service, or over the configured signing servers
	// (SigningConfig.Servers: both hospital servers, or a hardware box).
	Signer DataSigner
	// Printing is the print queue and the printers; Tickets their templates.
	Printing *printing.Service
	Tickets  *tickets.Store
	// Kiosk is the self-service machines' pages and their registration.
	Kiosk *kiosk.Service
	// Recorder imports and keeps body-worn recorder footage.
	Recorder *recorder.Service
	// Insurance is the national insurance platform client (nil: not
	// configured); Settle runs the insurance legs of payments (quotes for
	// the kiosk in process, settlements for the cloud over the sync RPC).
	Insurance *insurance.Client
	Settle    *settle.Service
	signing   *signing
	stop      context.CancelFunc
	devices   stdsync.WaitGroup // the print workers and the recorder watcher
	// seededDemo is set when this start created the demo hospital.
	seededDemo bool
}

// New opens the appliance's node and wires its routes; Run serves it.
func New(ctx context.Context, cfg Config) (*App, error) {
	dataDir := cfg.DataDir
	if dataDir == "" {
		dataDir = node.DefaultDataDir("appliance")
	}
	enr, err := loadEnrollment(dataDir)
	if err != nil {
		return nil, err
	}
	if enr != nil {
		// Enrolled: the hospital id and the hub come from the enrollment (a
		// configured cloud_leaf still wins, for a hub that moved).
		if cfg.HospitalID != "" && cfg.HospitalID != enr.Hospital {
			return nil, ihos.Errorf(ihos.EInvalid, "配置的医院编号 %s 与登记的医院编号 %s 不一致", cfg.HospitalID, enr.Hospital)
		}
		cfg.HospitalID = enr.Hospital
		if cfg.CloudLeaf == "" {
			cfg.CloudLeaf = enr.LeafURL
		}
	}
	if cfg.HospitalID == "" {
		cfg.HospitalID = DefaultHospitalID
	}
	if !ihos.ValidHospitalID(cfg.HospitalID) {
		return nil, ihos.Errorf(ihos.EInvalid, "医院编号 %q 无效：只能包含字母、数字、- 和 _，最长 36 位", cfg.HospitalID)
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "appliance-" + cfg.HospitalID
	}
	opts := node.Options{Kind: "appliance", SyncAlways: true, JetStreamDom: cfg.HospitalID}
	if cfg.CloudLeaf != "" {
		opts.LeafRemotes = []string{cfg.CloudLeaf}
		if enr != nil {
			leaf := cfg.CloudLeaf
			opts.LeafTLS = func(dataDir string) (*tls.Config, error) { return leafTLS(dataDir, leaf) }
		}
	}
	n, err := node.Open(ctx, cfg.Config, opts)
	if err != nil {
		return nil, err
	}
	replica, err := sync.NewReplica(ctx, n.DB, sync.Appliance, cfg.NodeID, entities.Registry())
	if err != nil {
		n.Close()
		return nil, err
	}
	// Changes made before enrollment were captured for the default hospital id.
	if err := replica.Rehome(ctx, cfg.HospitalID); err != nil {
		n.Close()
		return nil, err
	}
	tix := &tickets.Store{DB: n.DB}
	prn := &printing.Service{DB: n.DB, Tickets: tix}
	rec := newRecorder(n, cfg.Recorder)
	resources := append(append(masterdata.Resources(), patients.Replica(), n.Auth.UsersResource()), his.Resources()...)
	resources = append(append(append(resources, prn.Resources()...), kiosk.Resources()...), recorder.Resources()...)
	store := admin.NewStore(n.DB, n.Sealer, n.Auth, resources...)
	// Every change of replicated master data is captured in its own transaction.
	store.OnWrite = replica.OnWrite(cfg.HospitalID)
	a := &App{Node: n, Store: store, Console: console.New(store, n.Auth, Product), Replica: replica,
		Printing: prn, Tickets: tix, Recorder: rec}
	a.Console.Secure = cfg.SecureCookies

	mux := http.NewServeMux()
	mux.Handle("GET /healthz", n.Health())
	n.Auth.Routes(mux, "/api/admin", cfg.SecureCookies)
	store.AuditRoutes(mux, "/api/admin")
	store.Routes(mux, "/api/admin")
	a.Handler = n.Auth.Middleware(mux)

	if a.signing, err = a.startSigning(ctx, cfg.Signing, n.Config.DataDir, n.Config.HTTP); err != nil {
		n.Close()
		return nil, err
	}
	a.ESign = a.signing.esign
	if a.Signer, err = a.signing.newSigner(cfg.Signing, n.Config.DataDir); err != nil {
		a.signing.close()
		n.Close()
		return nil, err
	}
	a.ESign.Routes(mux, n.AuthorizeCLIOr)
	a.Handler = a.signing.handler(a.Handler)
	if err := a.firstStart(ctx, cfg); err != nil {
		a.signing.close()
		n.Close()
		return nil, err
	}
	// The link lives until Close, whatever ctx New was given.
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	// Sealed columns cross under the hospital's transit key, fetched from the
	// cloud once (decision 0014). Set before the link starts relaying.
	replica.Keys = &sync.Keys{Local: n.Sealer, Dir: filepath.Join(cfg.DataDir, "keys")}
	emrs := newEMRHIS() // signed EMRs from the cloud to the HIS (emrhis.go)
	replica.Follow = emrs.follow
	if a.Link, err = sync.StartLeaf(lctx, n.Broker, replica, cfg.HospitalID); err != nil {
		stop()
		n.Close()
		return nil, err
	}
	a.stop = stop
	store.AfterCommit = a.Link.Kick
	if err := a.Link.ServeSync(); err != nil {
		a.Close()
		return nil, err
	}
	if a.his, err = a.startHIS(lctx, cfg.HIS, cfg.HospitalID, mux); err != nil {
		a.Close()
		return nil, err
	}
	a.HIS = a.his.svc
	emrs.start(a.HIS)
	if err := a.serveClinical(a.Link, cfg.HospitalID); err != nil { // prescriptions.RPCSign (clinical.go)
		a.Close()
		return nil, err
	}
	sa := newSyncAdmin(n, a.Link, cfg.HospitalID)
	sa.routes(mux)
	a.Console.AddPage(sa.page(n.Auth))
	a.Console.AddPage(a.HIS.Page(n.Auth, a.his.mode))
	sg := newSigningAdmin(a.signing, n)
	sg.routes(mux)
	a.Console.AddPage(sg.page(n.Auth))
	a.startDevices(lctx, cfg, mux)
	a.startOnlineVisits(mux) // 线上就诊记录, 医师工作量统计, 医师接诊情况查询 (onlinevisits.go)
	a.Console.Routes(mux)
	return a, nil
}

// Close stops the sync link and releases the node.
func (a *App) Close() {
	if a.his != nil {
		a.his.close()
	}
	if a.signing != nil {
		a.signing.close()
	}
	a.stop()
	a.devices.Wait()
	a.Link.Close()
	a.Node.Close()
}

// Run is the appliance's main: it parses args, starts, and serves until ctx ends.
func Run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "sync" {
		return SyncCLI(ctx, args[1:], os.Stdout)
	}
	if len(args) > 0 && args[0] == "verify" {
		return VerifyCLI(ctx, args[1:], os.Stdout)
	}
	if len(args) > 0 && args[0] == "enroll" {
		return EnrollCLI(ctx, args[1:], os.Stdout)
	}
	cfg := Config{Config: node.Config{HTTP: DefaultHTTP}}
	fs := flag.NewFlagSet("ihos-appliance", flag.ContinueOnError)
	path := cfg.Flags(fs)
	fs.BoolVar(&cfg.Demo, "demo", cfg.Demo, "首次启动时生成演示医院数据")
	fs.StringVar(&cfg.Credentials, "credentials", cfg.Credentials, "首次启动生成的登录账号写入此文件")
	fs.StringVar(&cfg.HospitalID, "hospital-id", cfg.HospitalID, "本院在云端的医院编号")
	fs.StringVar(&cfg.CloudLeaf, "cloud-leaf", cfg.CloudLeaf, "云端同步地址，如 nats-leaf://cloud.example.com:7422")
	fs.StringVar(&cfg.HIS.MLLP, "his-mllp", cfg.HIS.MLLP, "医院 HIS 的 HL7 MLLP 地址，如 10.0.0.5:2575")
	fs.StringVar(&cfg.HIS.URL, "his-url", cfg.HIS.URL, "医院 HIS 的 HTTP/JSON 接口地址（不用 HL7 时）")
	fs.StringVar(&cfg.HIS.Listen, "his-listen", cfg.HIS.Listen, "接收 HIS 检验检查结果的 MLLP 监听地址，如 0.0.0.0:2576")
	fs.StringVar(&cfg.Insurance.URL, "insurance-url", cfg.Insurance.URL, "医保信息平台（或医保前置机）地址")
	fs.StringVar(&cfg.DemoPrinter, "demo-printer", cfg.DemoPrinter, "演示数据：自助机使用的票据打印机地址（ESC/POS over TCP），如 127.0.0.1:9100")
	return node.Run(ctx, fs, args, &cfg, path, func(ctx context.Context) (*node.Node, http.Handler, error) {
		a, err := New(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		return a.Node, a.Handler, nil
	})
}
