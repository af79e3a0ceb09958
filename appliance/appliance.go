// Package appliance is the service that runs on the hospital's own servers. It
// owns the hospital's master data and the LAN console staff use to manage it,
// and (in later work) the links to HIS, the insurance front-end, the signing
// server, printers and the kiosk. It keeps working when the internet link is
// down.
package appliance

import (
	"context"
	"flag"
	"net/http"

	"ihos/internal/admin"
	"ihos/internal/console"
	"ihos/internal/masterdata"
	"ihos/internal/node"
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
}

// DefaultHTTP is where the console listens unless told otherwise.
const DefaultHTTP = "127.0.0.1:8090"

// Product is the console's name in its title bar.
const Product = "互联网医院 · 院内管理控制台"

// App is a running appliance.
type App struct {
	Node    *node.Node
	Store   *admin.Store
	Console *console.Console
	Handler http.Handler
}

// New opens the appliance's node and wires its routes; Run serves it.
func New(ctx context.Context, cfg Config) (*App, error) {
	n, err := node.Open(ctx, cfg.Config, node.Options{Kind: "appliance", SyncAlways: true})
	if err != nil {
		return nil, err
	}
	resources := append(masterdata.Resources(), n.Auth.UsersResource())
	store := admin.NewStore(n.DB, n.Sealer, n.Auth, resources...)
	a := &App{Node: n, Store: store, Console: console.New(store, n.Auth, Product)}
	a.Console.Secure = cfg.SecureCookies

	mux := http.NewServeMux()
	mux.Handle("GET /healthz", n.Health())
	n.Auth.Routes(mux, "/api/admin", cfg.SecureCookies)
	store.AuditRoutes(mux, "/api/admin")
	store.Routes(mux, "/api/admin")
	a.Console.Routes(mux)
	a.Handler = n.Auth.Middleware(mux)

	if err := a.firstStart(ctx, cfg); err != nil {
		n.Close()
		return nil, err
	}
	return a, nil
}

// Close releases the node.
func (a *App) Close() { a.Node.Close() }

// Run is the appliance's main: it parses args, starts, and serves until ctx ends.
func Run(ctx context.Context, args []string) error {
	cfg := Config{Config: node.Config{HTTP: DefaultHTTP}}
	fs := flag.NewFlagSet("ihos-appliance", flag.ContinueOnError)
	path := cfg.Flags(fs)
	fs.BoolVar(&cfg.Demo, "demo", cfg.Demo, "首次启动时生成演示医院数据")
	fs.StringVar(&cfg.Credentials, "credentials", cfg.Credentials, "首次启动生成的登录账号写入此文件")
	return node.Run(ctx, fs, args, &cfg, path, func(ctx context.Context) (*node.Node, http.Handler, error) {
		a, err := New(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		return a.Node, a.Handler, nil
	})
}
