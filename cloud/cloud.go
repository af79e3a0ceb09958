// Package cloud is the internet-facing service: the patient H5 / mini-program
// API, the doctor and nurse apps, video rooms, online payment and message push.
// It runs on SQLite by default and on MySQL/MariaDB in production, and never
// dials into a hospital: hospitals dial out to it.
//
// This first version serves its health and a landing page; the patient, doctor
// and nurse journeys arrive with their issues.
package cloud

import (
	"context"
	"flag"
	"html/template"
	"net/http"

	"ihos"
	"ihos/internal/node"
)

// Config is the cloud's configuration.
type Config struct {
	node.Config
}

// DefaultHTTP is where the cloud listens unless told otherwise.
const DefaultHTTP = "127.0.0.1:8080"

// App is a running cloud node.
type App struct {
	Node    *node.Node
	Handler http.Handler
}

// New opens the cloud's node and wires its routes.
func New(ctx context.Context, cfg Config) (*App, error) {
	n, err := node.Open(ctx, cfg.Config, node.Options{Kind: "cloud", AllowMySQL: true})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", n.Health())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		landing.Execute(w, map[string]string{"Version": ihos.Version, "Database": n.DB.Engine})
	})
	return &App{Node: n, Handler: n.Auth.Middleware(mux)}, nil
}

// Close releases the node.
func (a *App) Close() { a.Node.Close() }

// Run is the cloud's main: it parses args, starts, and serves until ctx ends.
func Run(ctx context.Context, args []string) error {
	cfg := Config{Config: node.Config{HTTP: DefaultHTTP}}
	fs := flag.NewFlagSet("ihos-cloud", flag.ContinueOnError)
	path := cfg.Flags(fs)
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
