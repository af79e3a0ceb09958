package printing

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/internal/admin"
)

// TestAPI drives the JSON API with an authorizer that admits printing.read
// and refuses printing.write, then one that admits both.
func TestAPI(t *testing.T) {
	s := newService(t)
	sim := startSim(t)
	pid := addPrinter(t, s.DB, "API 打印机", sim.Addr())
	run(t, s)
	j := enqueue(t, s, pid, 5)
	waitFor(t, "printed", 5*time.Second, func() bool { return jobStatus(t, s, j.ID) == StatusPrinted })

	canWrite := false
	mux := http.NewServeMux()
	s.Routes(mux, func(r *http.Request, perm string) (context.Context, error) {
		if perm == "printing.write" && !canWrite {
			return nil, ihos.Errorf(ihos.EForbidden, "您没有执行此操作的权限")
		}
		return ihos.WithActor(r.Context(), ihos.Actor{UserID: "u9", Username: "desk09"}), nil
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(method, path, body string, want int, out any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ps struct{ Printers []PrinterView }
	call("GET", "/api/printing/printers", "", 200, &ps)
	if len(ps.Printers) != 1 || ps.Printers[0].Live.State != StateOnline {
		t.Errorf("printers %+v", ps)
	}
	var js struct{ Jobs []Job }
	call("GET", "/api/printing/jobs?printer="+pid+"&status=printed", "", 200, &js)
	if len(js.Jobs) != 1 || js.Jobs[0].ID != j.ID {
		t.Errorf("jobs %+v", js)
	}
	call("GET", "/api/printing/jobs?status=bogus", "", 400, nil)
	call("POST", "/api/printing/jobs/"+j.ID+"/reprint", "", 403, nil)
	canWrite = true
	var r Job
	call("POST", "/api/printing/jobs/"+j.ID+"/reprint", "", 201, &r)
	if r.ReprintOf != j.ID || r.Source != "console:desk09" {
		t.Errorf("reprint %+v", r)
	}
	var tp Job
	call("POST", "/api/printing/printers/"+pid+"/test", "", 201, &tp)
	call("POST", "/api/printing/printers/nope/test", "", 404, nil)
	call("POST", "/api/printing/jobs/"+j.ID+"/confirm", `{"printed": true}`, 409, nil)
	waitFor(t, "reprint and test page printed", 5*time.Second, func() bool { return len(sim.Tickets()) == 3 })
	call("GET", "/api/printing/live.js", "", 200, nil)
}

// TestPageTemplate renders the console page with the layout's functions.
func TestPageTemplate(t *testing.T) {
	s := newService(t)
	pid := addPrinter(t, s.DB, "模板打印机", "127.0.0.1:1")
	old := addPrinter(t, s.DB, "旧款打印机", "127.0.0.1:2")
	s.init()
	s.setLive(old, LiveStatus{State: StateOnline, Confirm: ConfirmUnsupported})
	enqueue(t, s, pid, 1)
	page := s.Page(nil)
	tmpl := template.Must(template.New("layout").Funcs(template.FuncMap{
		"localtime": func(v any) string { return "2026-01-01 08:00:00" },
	}).Parse(`{{template "content" .}}` + page.Template))
	ctx := ihos.WithActor(context.Background(), ihos.Actor{Role: "hospital_admin"})
	req := httptest.NewRequest("GET", "/console/x/printing", nil).WithContext(ctx)
	data, err := page.Data(req)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, map[string]any{"Data": data, "CSRF": "tok"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"模板打印机", "尚未检查", "排队中", "测试打印", "printing-live", "/api/printing/live.js", "不支持打印完成确认"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

type allowAll struct{}

func (allowAll) Authorize(context.Context, string, string) error { return nil }

// TestPrintersResource creates printers through the generic resource layer.
func TestPrintersResource(t *testing.T) {
	s := newService(t)
	store := admin.NewStore(s.DB, nil, allowAll{}, s.Resources()...)
	res, err := store.Resource("printers")
	if err != nil {
		t.Fatal(err)
	}
	ctx := ihos.WithActor(context.Background(), ihos.Actor{UserID: "u1", Username: "admin"})
	rec, err := store.Create(ctx, res, map[string]any{"name": "门诊一楼自助机", "location": "门诊一楼", "transport": "tcp",
		"address": "192.168.1.50:9100", "paper_mm": "80", "code_page": "GBK"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Printer(ctx, rec["id"].(string))
	if err != nil || p.PaperMM != 80 || p.CodePage != "GBK" || !p.Enabled {
		t.Fatalf("printer %+v %v", p, err)
	}
	_, err = store.Create(ctx, res, map[string]any{"name": "坏地址", "transport": "tcp", "address": "192.168.1.50:99999", "paper_mm": "58", "code_page": "GB18030"})
	var e *ihos.Error
	if !errors.As(err, &e) || e.Fields["address"] == "" {
		t.Fatalf("bad address accepted: %v", err)
	}
	_, err = store.Create(ctx, res, map[string]any{"name": "坏纸宽", "transport": "tcp", "address": "10.0.0.1", "paper_mm": "75", "code_page": "GB18030"})
	if !errors.As(err, &e) || e.Fields["paper_mm"] == "" {
		t.Fatalf("bad paper accepted: %v", err)
	}
}
