// Package idsim simulates the identity-verification service package
// idverify talks to, over a real HTTP socket: it accepts the valid GB 11643
// numbers of its list with their names and rejects the rest (DESIGN §4).
// The list starts with the HIS simulator's demo patients, so the demo's
// people can verify; tests add their own.
//
//	GET  /control               mode and list size
//	POST /control/mode          {"mode": "up"|"down"|"slow"|"error", …}
//	POST /control/people        {"name", "id_number"} adds a person
package idsim

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"

	"ihos"
	"ihos/his/hissim"
	"ihos/idverify"
	"ihos/internal/simulate"
)

// Person is an entry of the citizen list.
type Person struct {
	Name     string `json:"name"`
	IDNumber string `json:"id_number"`
}

// Config configures a simulator.
type Config struct {
	HTTPAddr string // default 127.0.0.1:0
	AppCode  string
	// People are added to the HIS demo patients.
	People []Person
	Logger *slog.Logger
}

// Sim is a running simulator.
type Sim struct {
	cfg    Config
	url    string
	srv    *simulate.Server
	mu     sync.Mutex
	mode   simulate.Switch
	people map[string]string // ID number → name
	calls  int
}

// DemoPeople are the HIS simulator's demo patients as the list holds them.
func DemoPeople() []Person {
	out := make([]Person, len(hissim.DemoPatients))
	for i, p := range hissim.DemoPatients {
		out[i] = Person{Name: p.Name, IDNumber: p.IDNumber}
	}
	return out
}

// Start listens and serves until Close.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, err
	}
	s := &Sim{cfg: cfg, url: "http://" + l.Addr().String(), people: map[string]string{}}
	s.mode.ErrorText = "核验服务异常"
	s.mode.Set(simulate.Mode{Name: simulate.Up})
	for _, p := range append(DemoPeople(), cfg.People...) {
		s.Add(p)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+idverify.Path, simulate.Service(s.mode.Get, "实名认证服务维护中", s.verify))
	mux.HandleFunc("GET /control", s.state)
	mux.HandleFunc("POST /control/mode", simulate.ModeHandler(s.SetMode, s.state))
	mux.HandleFunc("POST /control/people", func(w http.ResponseWriter, r *http.Request) {
		var p Person
		if !simulate.ReadJSON(w, r, &p) {
			return
		}
		if !ihos.ValidIDNumber(p.IDNumber) || p.Name == "" {
			simulate.Message(w, http.StatusBadRequest, "需要姓名和校验位正确的身份证号")
			return
		}
		s.Add(p)
		s.state(w, r)
	})
	s.srv = simulate.Serve(l, mux, cfg.Logger)
	return s, nil
}

// URL is the service's base URL (idverify.Client.URL), also the base of /control.
func (s *Sim) URL() string { return s.url }

// Close stops the simulator.
func (s *Sim) Close() error { return s.srv.Close() }

// Add puts a person on the list.
func (s *Sim) Add(p Person) {
	s.mu.Lock()
	s.people[strings.ToUpper(p.IDNumber)] = p.Name
	s.mu.Unlock()
}

// Calls is how many verifications were answered.
func (s *Sim) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// SetMode sets how the service behaves.
func (s *Sim) SetMode(m simulate.Mode) error { return s.mode.Set(m) }

func (s *Sim) state(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n, m, calls := len(s.people), s.mode.Get(), s.calls
	s.mu.Unlock()
	simulate.JSON(w, http.StatusOK, map[string]any{"mode": m.JSON(), "people": n, "calls": calls})
}

func (s *Sim) verify(w http.ResponseWriter, r *http.Request) {
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "APPCODE "); !ok || auth != s.cfg.AppCode {
		simulate.JSON(w, http.StatusUnauthorized, idverify.Answer{Code: "401", Message: "Invalid AppCode"})
		return
	}
	var req idverify.Request
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<14)).Decode(&req); err != nil || req.Name == "" || len(req.IDCardNo) != 18 {
		simulate.JSON(w, http.StatusOK, idverify.Answer{Code: "400", Message: "参数错误"})
		return
	}
	s.mu.Lock()
	m := s.mode.Get()
	name, known := s.people[strings.ToUpper(req.IDCardNo)]
	s.calls++
	s.mu.Unlock()
	if m.Name == simulate.Error {
		simulate.JSON(w, http.StatusOK, idverify.Answer{Code: "500", Message: m.Text})
		return
	}
	d := &idverify.Detail{Res: idverify.ResNoRecord, Description: "无此身份证号码"}
	switch {
	case !ihos.ValidIDNumber(req.IDCardNo) || !known:
	case name != req.Name:
		d = &idverify.Detail{Res: idverify.ResMismatch, Description: "不一致"}
	default:
		d = &idverify.Detail{Res: idverify.ResMatch, Description: "一致", Birthday: req.IDCardNo[6:14]}
		d.Sex = "女"
		if (req.IDCardNo[16]-'0')%2 == 1 {
			d.Sex = "男"
		}
	}
	simulate.JSON(w, http.StatusOK, idverify.Answer{Code: "0", Message: "成功", Result: d})
}
