package tickets

import (
	"context"
	"embed"
	"net/http"
	"net/url"
	"strconv"

	"ihos"
	"ihos/internal/web"
)

//go:embed templates/console
var consoleFS embed.FS

// Authorizer checks that the request may use perm and returns the context
// to continue with (the appliance passes node.AuthorizeCLIOr, as for the HIS
// API).
type Authorizer = web.Authorizer

// Permissions: the printing resource's.
const (
	permRead  = "printing.read"
	permWrite = "printing.write"
)

type saveRequest struct {
	Source string `json:"source"`
}

type draftRequest struct {
	Kind   string `json:"kind"`
	Paper  int    `json:"paper"`
	Source string `json:"source"`
}

// Routes registers the template API under /api/tickets: printing.read to
// look and preview, printing.write to save and reset.
//
//	GET    /api/tickets/templates              every kind's template in force
//	GET    /api/tickets/templates/{kind}       one, with its history
//	PUT    /api/tickets/templates/{kind}       {"source": …} save (checked first)
//	DELETE /api/tickets/templates/{kind}       back to the built-in default
//	POST   /api/tickets/drafts                 {"kind","paper","source"} check a draft → {"id","url"}
//	GET    /api/tickets/preview?kind=&paper=[&draft=]   image/png of the sample ticket
//	POST   /api/tickets/preview                {"kind","paper","source"} → image/png
//	GET    /api/tickets/editor.js, editor.css  the console editor's script and style
func (s *Store) Routes(mux *http.ServeMux, authorize Authorizer) {
	handle := web.Guard(mux, authorize)
	handle("GET /api/tickets/templates", permRead, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		var out []Template
		for _, k := range Kinds {
			t, err := s.Template(ctx, k)
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"templates": out})
		return nil
	})
	handle("GET /api/tickets/templates/{kind}", permRead, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		t, err := s.Template(ctx, r.PathValue("kind"))
		if err != nil {
			return err
		}
		h, err := s.History(ctx, t.Kind, 20)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"template": t, "history": h})
		return nil
	})
	handle("PUT /api/tickets/templates/{kind}", permWrite, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		var req saveRequest
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		t, err := s.Save(ctx, r.PathValue("kind"), req.Source)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"template": t})
		return nil
	})
	handle("DELETE /api/tickets/templates/{kind}", permWrite, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		if err := s.Reset(ctx, r.PathValue("kind")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	handle("POST /api/tickets/drafts", permRead, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		var req draftRequest
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		if _, err := (Format{PaperMM: req.Paper}).widthDots(); err != nil {
			return err
		}
		id, err := s.PutDraft(req.Kind, req.Source)
		if err != nil {
			return err
		}
		u := "/api/tickets/preview?" + url.Values{"kind": {req.Kind}, "paper": {strconv.Itoa(req.Paper)}, "draft": {id}}.Encode()
		web.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "url": u})
		return nil
	})
	handle("GET /api/tickets/preview", permRead, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		paper, _ := strconv.Atoi(q.Get("paper"))
		png, err := s.Preview(ctx, q.Get("kind"), paper, q.Get("draft"))
		if err != nil {
			return err
		}
		writePNG(w, png)
		return nil
	})
	handle("POST /api/tickets/preview", permRead, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		var req draftRequest
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		if err := Check(req.Kind, req.Source); err != nil {
			return err
		}
		c, err := parseTemplate(req.Kind, req.Source)
		if err != nil {
			return err
		}
		f := Format{PaperMM: req.Paper}
		b, err := render(c, Sample(req.Kind), f, s.Hospital, s.Logo)
		if err != nil {
			return err
		}
		png, err := PreviewPNG(b, f)
		if err != nil {
			return err
		}
		writePNG(w, png)
		return nil
	})
	static := func(name, ctype string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := consoleFS.ReadFile("templates/console/" + name)
			if err != nil {
				web.WriteError(w, r, ihos.Errorf(ihos.ENotFound, "文件不存在"))
				return
			}
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "no-cache")
			w.Write(b)
		}
	}
	mux.Handle("GET /api/tickets/editor.js", static("editor.js", "text/javascript; charset=utf-8"))
	mux.Handle("GET /api/tickets/editor.css", static("editor.css", "text/css; charset=utf-8"))
}

func writePNG(w http.ResponseWriter, png []byte) {
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(png)))
	w.Write(png)
}
