package tickets

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/console"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

func asAdmin() context.Context {
	return ihos.WithActor(context.Background(), ihos.Actor{UserID: "u1", Username: "admin", Role: "hospital_admin"})
}

func TestStore(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := asAdmin()
		s := &Store{DB: db, Hospital: "测试医院"}
		r := Sample(KindRegistration).(*Registration)
		r.Hospital = ""

		// Default template, hospital from the store.
		b, err := s.Render(ctx, r, Format{PaperMM: 80})
		if err != nil {
			t.Fatal(err)
		}
		if tk := decode(t, b, ""); tk.Lines[0] != "测试医院" || !slices.Contains(tk.Lines, "挂号凭条") {
			t.Fatalf("default render %q", tk.Lines[:3])
		}

		// An edit is used at once.
		src := "@center @bold {{.Hospital}}\n@center 网络挂号单\n姓名：{{.PatientName}}\n@qr {{.VisitNo}}\n@cut\n"
		tpl, err := s.Save(ctx, KindRegistration, strings.ReplaceAll(src, "\n", "\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		if tpl.Version != 1 || tpl.Default || tpl.Source != src || tpl.UpdatedBy != "admin" {
			t.Errorf("saved %+v", tpl)
		}
		b, err = s.Render(ctx, r, Format{PaperMM: 58})
		if err != nil {
			t.Fatal(err)
		}
		tk := decode(t, b, "")
		if !slices.Equal(tk.Lines, []string{"测试医院", "网络挂号单", "姓名：张三"}) || !slices.Equal(tk.QRCodes, []string{"MZ2506120037"}) {
			t.Errorf("edited render %q %q", tk.Lines, tk.QRCodes)
		}

		// A broken template is refused and the old one stays.
		if _, err := s.Save(ctx, KindRegistration, "a\n{{.Nope}}\n"); ihos.ErrorCode(err) != ihos.EInvalid || !strings.Contains(ihos.ErrorMessage(err), "第 2 行") {
			t.Errorf("broken save: %v", err)
		}
		if got, _ := s.Template(ctx, KindRegistration); got.Version != 1 {
			t.Errorf("version after refused save %d", got.Version)
		}

		// Reset goes back to the default; the history keeps everything.
		if err := s.Reset(ctx, KindRegistration); err != nil {
			t.Fatal(err)
		}
		if err := s.Reset(ctx, KindRegistration); ihos.ErrorCode(err) != ihos.EConflict {
			t.Errorf("second reset: %v", err)
		}
		got, _ := s.Template(ctx, KindRegistration)
		if !got.Default || got.Version != 2 || got.Source != DefaultSource(KindRegistration) {
			t.Errorf("after reset %+v", got)
		}
		b, _ = s.Render(ctx, r, Format{PaperMM: 80})
		if tk := decode(t, b, ""); !slices.Contains(tk.Lines, "挂号凭条") {
			t.Error("reset template not used")
		}
		h, err := s.History(ctx, KindRegistration, 10)
		if err != nil || len(h) != 2 || h[0].Action != "reset" || h[1].Source != src {
			t.Errorf("history %+v %v", h, err)
		}
		entries, _, err := audit.List(ctx, db, audit.Filter{Resource: "ticket_templates"})
		if err != nil || len(entries) != 2 || entries[1].RecordID != KindRegistration || !strings.Contains(entries[1].Summary, "挂号凭条") {
			t.Errorf("audit %+v %v", entries, err)
		}
		if bad, err := audit.Verify(ctx, db); err != nil || bad != 0 {
			t.Errorf("audit chain: %d %v", bad, err)
		}
	})
}

func TestAPI(t *testing.T) {
	db := sqldbtest.SQLite(t)
	s := &Store{DB: db, Hospital: "测试医院"}
	mux := http.NewServeMux()
	var perms []string
	s.Routes(mux, func(r *http.Request, perm string) (context.Context, error) {
		perms = append(perms, perm)
		if r.Header.Get("X-Role") == "viewer" && perm == permWrite {
			return nil, ihos.Errorf(ihos.EForbidden, "您没有执行此操作的权限")
		}
		return asAdmin(), nil
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	do := func(method, path, role string, body any) (*http.Response, []byte) {
		t.Helper()
		var rd *bytes.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		} else {
			rd = bytes.NewReader(nil)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Role", role)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(res.Body)
		return res, buf.Bytes()
	}

	res, png := do("GET", "/api/tickets/preview?kind=receipt&paper=80", "", nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("preview: %d %s %.80q", res.StatusCode, res.Header.Get("Content-Type"), png)
	}
	if dir := os.Getenv("TICKETS_PREVIEW_DIR"); dir != "" {
		os.WriteFile(dir+"/receipt_80.png", png, 0o644)
	}

	res, body := do("POST", "/api/tickets/drafts", "", map[string]any{"kind": "receipt", "paper": 58, "source": "a\n{{.Nope}}"})
	var e struct{ Code, Message string }
	json.Unmarshal(body, &e)
	if res.StatusCode != 400 || !strings.Contains(e.Message, "模板第 2 行") {
		t.Errorf("bad draft: %d %s", res.StatusCode, body)
	}
	res, body = do("POST", "/api/tickets/drafts", "", map[string]any{"kind": "receipt", "paper": 58, "source": "@center 草稿\n"})
	var d struct{ ID, URL string }
	json.Unmarshal(body, &d)
	if res.StatusCode != 200 || !strings.Contains(d.URL, "draft="+d.ID) {
		t.Fatalf("draft: %d %s", res.StatusCode, body)
	}
	if res, png := do("GET", d.URL, "", nil); res.StatusCode != 200 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("draft preview %d", res.StatusCode)
	}
	if res, _ := do("GET", "/api/tickets/preview?kind=receipt&paper=80&draft=nope", "", nil); res.StatusCode != 404 {
		t.Errorf("unknown draft %d", res.StatusCode)
	}
	if res, png := do("POST", "/api/tickets/preview", "", map[string]any{"kind": "report", "paper": 106, "source": DefaultSource(KindReport)}); res.StatusCode != 200 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("POST preview %d", res.StatusCode)
	}

	if res, _ := do("PUT", "/api/tickets/templates/receipt", "viewer", map[string]any{"source": "x\n"}); res.StatusCode != 403 {
		t.Errorf("viewer save %d", res.StatusCode)
	}
	if res, body := do("PUT", "/api/tickets/templates/receipt", "", map[string]any{"source": "@center 新收据\n"}); res.StatusCode != 200 {
		t.Errorf("save %d %s", res.StatusCode, body)
	}
	res, body = do("GET", "/api/tickets/templates/receipt", "", nil)
	var got struct {
		Template Template
		History  []Version
	}
	json.Unmarshal(body, &got)
	if res.StatusCode != 200 || got.Template.Source != "@center 新收据\n" || len(got.History) != 1 {
		t.Errorf("get %d %s", res.StatusCode, body)
	}
	if res, _ := do("DELETE", "/api/tickets/templates/receipt", "", nil); res.StatusCode != 204 {
		t.Errorf("reset %d", res.StatusCode)
	}
	if res, body := do("GET", "/api/tickets/templates", "", nil); res.StatusCode != 200 || !strings.Contains(string(body), `"nursing_order"`) {
		t.Errorf("list %d", res.StatusCode)
	}
	if res, _ := do("GET", "/api/tickets/editor.js", "", nil); res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("editor.js %d", res.StatusCode)
	}
	if !slices.Contains(perms, permWrite) || !slices.Contains(perms, permRead) {
		t.Errorf("perms asked %q", perms)
	}
}

// TestPageParses: the console page's template parses with the console's
// functions (AddPage panics otherwise) and its data renders for a kind.
func TestPageParses(t *testing.T) {
	db := sqldbtest.SQLite(t)
	s := &Store{DB: db}
	p := s.Page(nil)
	console.New(nil, nil, "测试").AddPage(p)
	req := httptest.NewRequest("GET", "/console/x/tickets?msg=saved_nursing_order", nil).WithContext(asAdmin())
	d, err := p.Data(req)
	if err != nil {
		t.Fatal(err)
	}
	m := d.(map[string]any)
	if m["Kind"] != KindNursingOrder || m["Paper"] != 80 || m["CanWrite"] != true {
		t.Errorf("data %v %v %v", m["Kind"], m["Paper"], m["CanWrite"])
	}
}
