package appliance

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"

	"ihos"
	"ihos/internal/auth"
	"ihos/internal/console"
	"ihos/internal/web"
	"ihos/sync"
)

//go:embed templates/sync.html
var syncPageTemplate string

// syncAdmin is the appliance's sync administration: the console page 数据同步,
// the JSON API the page and the CLI use, and the CLI token.
type syncAdmin struct {
	link     *sync.Link
	hospital string
	token    string // the CLI's credential, in <data dir>/cli.token

	mu     stdsync.Mutex
	report *sync.Report // the last verify, shown on the page
}

// cliTokenFile is where the running appliance leaves the token its own CLI
// (`ihos-appliance sync …`) authenticates with. Only who can read the data dir
// (root, the service user) can use it.
const cliTokenFile = "cli.token"

// CLITokenHeader carries the CLI token.
const CLITokenHeader = "X-IHOS-CLI-Token"

func newSyncAdmin(dataDir string, link *sync.Link, hospital string) (*syncAdmin, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	s := &syncAdmin{link: link, hospital: hospital, token: hex.EncodeToString(b)}
	if err := os.WriteFile(filepath.Join(dataDir, cliTokenFile), []byte(s.token+"\n"), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

var syncEntityLabels = map[string]string{
	"institutions": "医疗机构", "departments": "科室", "staff": "医务人员", "doctor_profiles": "医生主页", "patients": "患者账号",
}

type entityOption struct{ Name, Label string }

func (s *syncAdmin) page(a *auth.Service) console.Page {
	return console.Page{
		Name: "sync", Title: "数据同步", Perm: "sync.read", Template: syncPageTemplate,
		Data: func(r *http.Request) (any, error) {
			st, err := s.link.Status(r.Context())
			if err != nil {
				return nil, err
			}
			conflicts, err := s.link.Replica.Conflicts(r.Context(), 50)
			if err != nil {
				return nil, ihos.Internal(err)
			}
			rejects, err := s.link.Replica.Rejects(r.Context(), 50)
			if err != nil {
				return nil, ihos.Internal(err)
			}
			actor, _ := ihos.ActorFrom(r.Context())
			var ents []entityOption
			for _, e := range s.link.Replica.Entities.Entities() {
				ents = append(ents, entityOption{Name: e.Name, Label: syncEntityLabels[e.Name] + "（" + e.Name + "）"})
			}
			s.mu.Lock()
			rep := s.report
			s.mu.Unlock()
			return map[string]any{"Status": st, "Conflicts": conflicts, "Rejects": rejects, "Report": rep,
				"Entities": ents, "CanWrite": auth.Can(actor.Role, "sync.write")}, nil
		},
		Post: func(r *http.Request, action string) (string, error) {
			if err := a.Authorize(r.Context(), "sync.write", ""); err != nil {
				return "", err
			}
			switch action {
			case "verify":
				if _, err := s.verify(r.Context()); err != nil {
					return "", err
				}
				return "verified", nil
			case "resync":
				if _, err := s.link.Resync(r.Context(), s.hospital, r.PostFormValue("entity")); err != nil {
					return "", err
				}
				return "resync", nil
			}
			return "", ihos.Errorf(ihos.ENotFound, "未知操作")
		},
		Flashes: map[string]string{"verified": "核对完成，结果见下方", "resync": "已发起重新同步，数据将在几秒内到达"},
	}
}

func (s *syncAdmin) verify(ctx context.Context) (*sync.Report, error) {
	rep, err := s.link.Verify(ctx, s.hospital)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.report = rep
	s.mu.Unlock()
	return rep, nil
}

// routes registers the sync API: status for anyone who can reach the service
// (like /healthz), verify and resync for a session with sync.write or the CLI.
func (s *syncAdmin) routes(mux *http.ServeMux, a *auth.Service) {
	mux.Handle("GET /api/sync/status", s.link.StatusHandler())
	mux.Handle("POST /api/sync/verify", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, err := s.authorize(r, a)
		if err != nil {
			return err
		}
		rep, err := s.verify(ctx)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, rep)
		return nil
	}))
	mux.Handle("POST /api/sync/resync", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, err := s.authorize(r, a)
		if err != nil {
			return err
		}
		var in struct {
			Entity string `json:"entity"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		n, err := s.link.Resync(ctx, s.hospital, in.Entity)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"entity": in.Entity, "rows": n})
		return nil
	}))
}

// authorize admits the CLI (by its token) as the system actor, or a session
// holding sync.write.
func (s *syncAdmin) authorize(r *http.Request, a *auth.Service) (context.Context, error) {
	if t := r.Header.Get(CLITokenHeader); t != "" {
		if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(t)), []byte(s.token)) != 1 {
			return nil, ihos.Errorf(ihos.EUnauthorized, "命令行凭据无效：请在运行中的服务所在机器上执行")
		}
		act := ihos.Actor{UserID: "cli", Username: "cli", Name: "命令行", Role: auth.RoleSysAdmin, IP: web.ClientIP(r), RequestID: web.RequestID(r.Context())}
		return ihos.WithActor(r.Context(), act), nil
	}
	return r.Context(), a.Authorize(r.Context(), "sync.write", "")
}
