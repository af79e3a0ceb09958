package printersim

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"ihos"
	"ihos/drivers/escpos"
	"ihos/internal/web"
)

// ModeLabels are the Chinese names of the modes, as the control page shows
// them.
var ModeLabels = map[Mode]string{
	Online:    "在线",
	PaperOut:  "缺纸",
	CoverOpen: "开盖",
	Offline:   "离线",
}

// Modes lists the modes in the order the control page offers them.
var Modes = []Mode{Online, PaperOut, CoverOpen, Offline}

// State is the JSON of GET /state.
type State struct {
	Mode      Mode     `json:"mode"`
	ModeLabel string   `json:"mode_label"`
	TCP       string   `json:"tcp"`
	Serial    []string `json:"serial"`
	Tickets   int      `json:"tickets"`
	WidthDots int      `json:"width_dots"`
}

// TicketJSON is one ticket in GET /tickets.
type TicketJSON struct {
	N        int      `json:"n"`
	Time     string   `json:"time"` // RFC 3339, UTC
	Source   string   `json:"source"`
	Bytes    int      `json:"bytes"`
	Lines    []string `json:"lines"`
	QRCodes  []string `json:"qr_codes"`
	Barcodes []string `json:"barcodes"`
	Cuts     int      `json:"cuts"`
	Error    string   `json:"error,omitempty"`
	PNG      string   `json:"png"` // path of the image, relative to the handler
}

// Handler serves the simulator's control page and API, for people and for
// scripts:
//
//	GET  /                the tickets received, newest first, drawn as on paper, and mode buttons (Chinese)
//	GET  /state           State as JSON
//	GET  /tickets         []TicketJSON, newest first
//	GET  /tickets/{n}.png ticket n (Printed.Seq) as PNG, widthDots wide
//	POST /mode            form or query field mode=online|paper_out|cover_open|offline;
//	                      answers State, or redirects to / when the form has redirect=1
//
// A POST from a page of another origin (the Origin header names another
// host) is refused, so that a web page cannot take the demo printer offline.
func (s *Sim) Handler(widthDots int) http.Handler {
	if widthDots <= 0 {
		widthDots = escpos.Width80mm
	}
	h := &control{s: s, width: widthDots, pngs: map[int][]byte{}}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", web.HandlerFunc(h.page))
	mux.Handle("GET /state", web.HandlerFunc(h.state))
	mux.Handle("GET /tickets", web.HandlerFunc(h.tickets))
	mux.Handle("GET /tickets/{file}", web.HandlerFunc(h.png))
	mux.Handle("POST /mode", web.HandlerFunc(h.mode))
	return mux
}

type control struct {
	s     *Sim
	width int

	mu   sync.Mutex
	pngs map[int][]byte // by Seq; tickets never change once printed
}

// maxCachedPNGs bounds the PNG cache (a drawn ticket is about 20 KB).
const maxCachedPNGs = 500

func (h *control) stateOf() State {
	m := h.s.Mode()
	return State{
		Mode: m, ModeLabel: ModeLabels[m], TCP: h.s.Addr(), Serial: h.s.SerialPaths(),
		Tickets: len(h.s.Tickets()), WidthDots: h.width,
	}
}

func (h *control) state(w http.ResponseWriter, r *http.Request) error {
	web.WriteJSON(w, http.StatusOK, h.stateOf())
	return nil
}

func ticketJSON(p Printed) TicketJSON {
	t := p.Ticket
	j := TicketJSON{
		N: p.Seq, Time: ihos.FormatTime(p.Time), Source: p.Source, Bytes: len(p.Data),
		Lines: t.Lines, QRCodes: t.QRCodes, Barcodes: t.Barcodes, Cuts: t.Cuts, Error: p.Err,
		PNG: "tickets/" + strconv.Itoa(p.Seq) + ".png",
	}
	for _, s := range []*[]string{&j.Lines, &j.QRCodes, &j.Barcodes} {
		if *s == nil {
			*s = []string{}
		}
	}
	return j
}

// newestFirst returns the tickets as JSON, newest first.
func (h *control) newestFirst() []TicketJSON {
	ps := h.s.Printed()
	out := make([]TicketJSON, 0, len(ps))
	for i := len(ps) - 1; i >= 0; i-- {
		out = append(out, ticketJSON(ps[i]))
	}
	return out
}

func (h *control) tickets(w http.ResponseWriter, r *http.Request) error {
	web.WriteJSON(w, http.StatusOK, h.newestFirst())
	return nil
}

func (h *control) png(w http.ResponseWriter, r *http.Request) error {
	file := r.PathValue("file")
	n, err := strconv.Atoi(strings.TrimSuffix(file, ".png"))
	if err != nil || !strings.HasSuffix(file, ".png") || n < 1 {
		return ihos.Errorf(ihos.ENotFound, "没有这张票据：%s", file)
	}
	h.mu.Lock()
	b, ok := h.pngs[n]
	h.mu.Unlock()
	if !ok {
		if b, err = h.s.PNG(n-1, h.width); err != nil {
			return err
		}
		h.mu.Lock()
		if len(h.pngs) >= maxCachedPNGs {
			clear(h.pngs)
		}
		h.pngs[n] = b
		h.mu.Unlock()
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
	return nil
}

func (h *control) mode(w http.ResponseWriter, r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return ihos.Errorf(ihos.EForbidden, "拒绝来自其他网站的请求")
		}
	}
	m := Mode(r.FormValue("mode"))
	if _, ok := ModeLabels[m]; !ok {
		return ihos.Invalid(map[string]string{"mode": "模式必须是 online、paper_out、cover_open 或 offline"})
	}
	h.s.SetMode(m)
	if r.FormValue("redirect") != "" {
		http.Redirect(w, r, "./", http.StatusSeeOther)
		return nil
	}
	web.WriteJSON(w, http.StatusOK, h.stateOf())
	return nil
}

type pageData struct {
	State   State
	Modes   []modeButton
	Tickets []pageTicket
}

type modeButton struct {
	Mode    Mode
	Label   string
	Current bool
}

type pageTicket struct {
	TicketJSON
	Local string // time in Asia/Shanghai
}

func (h *control) page(w http.ResponseWriter, r *http.Request) error {
	d := pageData{State: h.stateOf()}
	for _, m := range Modes {
		d.Modes = append(d.Modes, modeButton{m, ModeLabels[m], m == d.State.Mode})
	}
	for _, p := range h.s.Printed() {
		t := pageTicket{TicketJSON: ticketJSON(p), Local: p.Time.In(ihos.Shanghai).Format("2006-01-02 15:04:05")}
		d.Tickets = append([]pageTicket{t}, d.Tickets...)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	return pageTemplate.Execute(w, d)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>打印机模拟器</title>
<style>
body { font-family: sans-serif; margin: 1.5em; background: #eceff1; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .5em; }
.state { background: #fff; padding: .8em 1em; border-radius: 6px; margin-bottom: 1em; }
.state span { margin-right: 1.5em; }
.mode { font-weight: bold; }
.mode-online { color: #2e7d32; } .mode-paper_out, .mode-cover_open, .mode-offline { color: #c62828; }
form { display: inline; }
button { font-size: 1em; padding: .3em .9em; margin-right: .4em; cursor: pointer; }
button.current { background: #1565c0; color: #fff; border: 1px solid #0d47a1; }
.ticket { display: flex; gap: 1.5em; align-items: flex-start; background: #fff; padding: 1em; border-radius: 6px; margin-bottom: 1em; }
.ticket img { border: 1px solid #ccc; box-shadow: 0 1px 4px rgba(0,0,0,.2); image-rendering: pixelated; max-width: 100%; }
.meta { min-width: 18em; }
.meta h2 { font-size: 1.1em; margin: 0 0 .4em; }
pre { background: #f5f5f5; padding: .5em; white-space: pre-wrap; font-size: .9em; }
.error { color: #c62828; }
.empty { color: #666; }
</style>
</head>
<body>
<h1>打印机模拟器</h1>
<div class="state">
<span>状态：<span class="mode mode-{{.State.Mode}}">{{.State.ModeLabel}}</span></span>
<span>网络端口：{{.State.TCP}}</span>
{{range .State.Serial}}<span>串口：{{.}}</span>{{end}}
<span>已收到 <span id="count">{{.State.Tickets}}</span> 张票据</span>
<div style="margin-top:.6em">设置状态：
{{range .Modes}}<form method="post" action="mode"><input type="hidden" name="mode" value="{{.Mode}}"><input type="hidden" name="redirect" value="1"><button{{if .Current}} class="current"{{end}}>{{.Label}}</button></form>{{end}}
</div>
</div>
{{range .Tickets}}
<div class="ticket" id="ticket-{{.N}}">
<img src="{{.PNG}}" alt="第 {{.N}} 张票据">
<div class="meta">
<h2>第 {{.N}} 张</h2>
<p>{{.Local}} · {{if eq .Source "serial"}}串口{{else}}网络{{end}} · {{.Bytes}} 字节 · 切纸 {{.Cuts}} 次</p>
{{if .Error}}<p class="error">解码错误：{{.Error}}</p>{{end}}
<h3>文字</h3>
<pre>{{range .Lines}}{{.}}
{{end}}</pre>
{{if .QRCodes}}<h3>二维码</h3>{{range .QRCodes}}<pre>{{.}}</pre>{{end}}{{end}}
{{if .Barcodes}}<h3>条码</h3>{{range .Barcodes}}<pre>{{.}}</pre>{{end}}{{end}}
</div>
</div>
{{else}}
<p class="empty">还没有收到票据。</p>
{{end}}
<script>
// Reload when a ticket arrives or the mode changes elsewhere.
(function () {
  var count = {{.State.Tickets}}, mode = {{.State.Mode}};
  setInterval(function () {
    fetch("state").then(function (r) { return r.json(); }).then(function (s) {
      if (s.tickets !== count || s.mode !== mode) { location.reload(); }
    }).catch(function () {});
  }, 2000);
})();
</script>
</body>
</html>
`))
