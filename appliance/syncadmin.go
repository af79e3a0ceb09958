package appliance

import (
	"context"
	_ "embed"
	"net/http"
	stdsync "sync"

	"ihos"
	"ihos/internal/auth"
	"ihos/internal/console"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/sync"
)

//go:embed templates/sync.html
var syncPageTemplate string

// syncAdmin is the appliance's sync administration: the console page 数据同步,
// the JSON API the page and the CLI use, and the CLI token.
type syncAdmin struct {
	node     *node.Node
	link     *sync.Link
	hospital string

	mu     stdsync.Mutex
	report *sync.Report // the last verify, shown on the page
}

func newSyncAdmin(n *node.Node, link *sync.Link, hospital string) *syncAdmin {
	return &syncAdmin{node: n, link: link, hospital: hospital}
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
func (s *syncAdmin) routes(mux *http.ServeMux) {
	mux.Handle("GET /api/sync/status", s.link.StatusHandler())
	mux.Handle("POST /api/sync/verify", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, err := s.node.AuthorizeCLIOr(r, "sync.write")
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
		ctx, err := s.node.AuthorizeCLIOr(r, "sync.write")
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
