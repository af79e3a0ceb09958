package reconcile

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"ihos"
	"ihos/internal/console"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

// testAuthorize lets "Bearer ok" read and write and "Bearer ro" only read.
func testAuthorize(r *http.Request, perm string) (context.Context, error) {
	switch r.Header.Get("Authorization") {
	case "Bearer ok":
	case "Bearer ro":
		if perm != "payments.read" {
			return nil, ihos.Errorf(ihos.EForbidden, "无权限")
		}
	default:
		return nil, ihos.Errorf(ihos.EUnauthorized, "请先登录")
	}
	return ihos.WithActor(r.Context(), ihos.Actor{UserID: "u1", Username: "finance", Role: "hospital_admin"}), nil
}

func call(t *testing.T, srv *httptest.Server, token, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

func TestAPI(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		tx(t, db, func(tx *sql.Tx) {
			addPayment(t, db, tx, "PA", 1000, ihos.LegDone, at(9), at(9))
			addPayment(t, db, tx, "PB", 500, ihos.LegDone, at(9), at(9))
		})
		r := &Reconciler{DB: db, Hospitals: func() []string { return nil },
			Bill: billOf(paid("PA", 1000, at(9)))}
		mux := http.NewServeMux()
		r.AdminRoutes(mux, testAuthorize)
		r.RunRoutes(mux, testAuthorize)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)

		if code := call(t, srv, "ro", "POST", "/api/admin/reconcile/runs", RunRequest{Day: day}, nil); code != http.StatusForbidden {
			t.Errorf("read-only run: %d", code)
		}
		if code := call(t, srv, "", "GET", "/api/admin/reconcile/runs?day="+day, nil, nil); code != http.StatusUnauthorized {
			t.Errorf("anonymous list: %d", code)
		}
		if code := call(t, srv, "ok", "POST", "/api/admin/reconcile/runs", RunRequest{Day: "20261120"}, nil); code != http.StatusBadRequest {
			t.Errorf("bad day: %d", code)
		}
		var page RunsPage
		if code := call(t, srv, "ok", "POST", "/api/admin/reconcile/runs", RunRequest{Day: day, Source: "channel"}, &page); code != 200 ||
			len(page.Runs) != 1 || page.Runs[0].Mismatches != 1 {
			t.Fatalf("run: %d %+v", code, page)
		}
		if code := call(t, srv, "ok", "POST", "/api/admin/reconcile/runs", RunRequest{Day: day}, &page); code != 200 || len(page.Runs) != 3 {
			t.Fatalf("run all: %d %+v", code, page)
		}
		page = RunsPage{}
		if code := call(t, srv, "ro", "GET", "/api/admin/reconcile/runs?day="+day, nil, &page); code != 200 || len(page.Runs) != 3 ||
			page.Runs[0].Source != "channel" || page.Runs[0].Tally.Matched != 1 {
			t.Fatalf("list: %d %+v", code, page)
		}
		var items struct{ Items []Item }
		path := "/api/admin/reconcile/runs/" + page.Runs[0].ID + "/items"
		if code := call(t, srv, "ro", "GET", path, nil, &items); code != 200 || len(items.Items) != 1 ||
			items.Items[0].Key != "PB" || items.Items[0].Suggestion != "查询渠道订单，确认未支付后关闭" || items.Items[0].Label != "我方有、渠道无" {
			t.Fatalf("items: %d %+v", code, items)
		}
		if code := call(t, srv, "ro", "GET", "/api/admin/reconcile/runs/nope/items", nil, nil); code != http.StatusNotFound {
			t.Errorf("unknown run: %d", code)
		}
		id := items.Items[0].ID
		if code := call(t, srv, "ro", "POST", "/api/admin/reconcile/items/"+id+"/resolve", map[string]string{"note": "x"}, nil); code != http.StatusForbidden {
			t.Errorf("read-only resolve: %d", code)
		}
		if code := call(t, srv, "ok", "POST", "/api/admin/reconcile/items/"+id+"/resolve", map[string]string{"note": " "}, nil); code != http.StatusBadRequest {
			t.Errorf("resolve without a note: %d", code)
		}
		if code := call(t, srv, "ok", "POST", "/api/admin/reconcile/items/"+id+"/resolve", map[string]string{"note": "渠道确认未支付，已关闭订单"}, nil); code != 200 {
			t.Fatalf("resolve: %d", code)
		}
		if code := call(t, srv, "ok", "POST", "/api/admin/reconcile/items/"+id+"/resolve", map[string]string{"note": "again"}, nil); code != http.StatusConflict {
			t.Errorf("resolve twice: %d", code)
		}
		if code := call(t, srv, "ro", "GET", path+"?unresolved=1", nil, &items); code != 200 || len(items.Items) != 0 {
			t.Errorf("unresolved after resolve: %+v", items)
		}
		call(t, srv, "ro", "GET", path, nil, &items)
		if it := items.Items[0]; it.ResolvedBy != "finance" || it.Note != "渠道确认未支付，已关闭订单" || it.ResolvedAt.IsZero() {
			t.Errorf("resolved item %+v", it)
		}
		var summary, actor string
		if err := db.QueryRowContext(ctx, `SELECT summary, actor_name FROM audit_log WHERE action = 'resolve' AND resource = 'reconcile_items' AND record_id = ?`, id).
			Scan(&summary, &actor); err != nil || !strings.Contains(summary, "PB") || !strings.Contains(summary, "渠道确认未支付") {
			t.Errorf("audit: %q %q %v", summary, actor, err)
		}
	})
}

// fakeRemote records what the console asked of the cloud.
type fakeRemote struct{ runs, resolves []string }

func (f *fakeRemote) Run(_ context.Context, day, source string) error {
	f.runs = append(f.runs, day+" "+source)
	return nil
}

func (f *fakeRemote) Resolve(ctx context.Context, id, note string) error {
	a, _ := ihos.ActorFrom(ctx)
	f.resolves = append(f.resolves, id+" "+note+" "+a.Username)
	return nil
}

type roleAuth struct{}

func (roleAuth) Authorize(ctx context.Context, perm, _ string) error {
	a, _ := ihos.ActorFrom(ctx)
	if perm == "payments.write" && a.Role != "hospital_admin" {
		return ihos.Errorf(ihos.EForbidden, "无权限")
	}
	return nil
}

// TestConsolePage renders 对账管理 over stored runs (as the appliance's
// replica holds them) and posts its two actions to the remote.
func TestConsolePage(t *testing.T) {
	db := sqldbtest.SQLite(t)
	ctx := context.Background()
	tx(t, db, func(tx *sql.Tx) {
		addPayment(t, db, tx, "PA", 1000, ihos.LegDone, at(9), at(9))
		addPayment(t, db, tx, "PB", 500, ihos.LegDone, at(9), at(9))
		addPayment(t, db, tx, "PC", 700, ihos.LegDone, at(9), at(9))
	})
	r := &Reconciler{DB: db, Hospitals: func() []string { return []string{hosp} }, Bill: billOf(paid("PA", 1000, at(9))),
		Statement: func(context.Context, string, string) (bool, string, error) {
			return false, "", ihos.Errorf(ihos.EUnavailable, "医院系统暂时无法连接，请稍后再试")
		}}
	db.ExecContext(ctx, `UPDATE payments SET hospital_id = ?`, hosp)
	if _, err := r.RunDay(ctx, day, ""); err != nil {
		t.Fatal(err)
	}
	runs, _ := r.Runs(ctx, day, "")
	items, _ := r.Items(ctx, runs[0].ID, false)
	admin := ihos.WithActor(ctx, ihos.Actor{Username: "finance", Role: "hospital_admin"})
	if err := r.Resolve(admin, byKey(items, "PB").ID, "", "已关闭"); err != nil {
		t.Fatal(err)
	}

	remote := &fakeRemote{}
	page := r.Page(roleAuth{}, remote)
	c := console.New(nil, nil, "test")
	c.AddPage(page) // panics on a template error
	if page.Title != "对账管理" || page.Perm != "payments.read" {
		t.Errorf("page %s %s", page.Title, page.Perm)
	}
	tmpl := template.Must(template.New("layout").Funcs(template.FuncMap{
		"localtime": func(v any) string { return "2026-11-21 02:00:00" },
		"yuan":      ihos.FormatYuan,
	}).Parse(`{{template "content" .}}` + page.Template))
	render := func(url string, role string) string {
		t.Helper()
		req := httptest.NewRequest("GET", url, nil)
		req = req.WithContext(ihos.WithActor(req.Context(), ihos.Actor{Username: "finance", Role: role}))
		data, err := page.Data(req)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, map[string]any{"Data": data, "CSRF": "tok"}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	html := render("/console/x/reconcile?day="+day, "hospital_admin")
	for _, want := range []string{"支付渠道差异", "医保结算差异", "HIS 费用差异", "我方有、渠道无", "查询渠道订单，确认未支付后关闭",
		`data-stmt="unchecked"`, "医保中心总额对账（3201）：未核对", "医院系统暂时无法连接", "已处理", "已关闭", `action="/console/x/reconcile/resolve"`,
		`action="/console/x/reconcile/run"`, "重新对账", `value="` + day + `"`, `id="reconcile-open" class="bad">1<`, "¥10.00"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Count(html, `data-kind="missing_theirs"`) != 2 {
		t.Errorf("want PB and PC listed")
	}
	html = render("/console/x/reconcile?day="+day+"&unresolved=1", "auditor")
	if strings.Count(html, `data-kind="missing_theirs"`) != 1 || strings.Contains(html, "重新对账") || strings.Contains(html, "/console/x/reconcile/resolve") {
		t.Errorf("unresolved, read-only page:\n%s", html)
	}
	html = render("/console/x/reconcile?day=2026-01-01", "hospital_admin")
	if !strings.Contains(html, "2026-01-01 尚未对账") {
		t.Errorf("a day never run:\n%s", html)
	}
	html = render("/console/x/reconcile?day=bogus", "hospital_admin")
	if !strings.Contains(html, "对账日期格式应为") {
		t.Errorf("bad day not said")
	}

	post := func(action string, form url.Values, role string) (string, error) {
		req := httptest.NewRequest("POST", "/console/x/reconcile/"+action, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req = req.WithContext(ihos.WithActor(req.Context(), ihos.Actor{Username: "finance", Role: role}))
		return page.Post(req, action)
	}
	if flash, err := post("run", url.Values{"day": {day}, "source": {"his"}}, "hospital_admin"); err != nil || flash != "started" || page.Flashes[flash] == "" {
		t.Errorf("run: %q %v", flash, err)
	}
	if _, err := post("run", url.Values{"day": {"x"}}, "hospital_admin"); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Errorf("run bad day: %v", err)
	}
	pc := byKey(items, "PC").ID
	if flash, err := post("resolve", url.Values{"id": {pc}, "note": {"已补记"}}, "hospital_admin"); err != nil || flash != "resolved" {
		t.Errorf("resolve: %q %v", flash, err)
	}
	if _, err := post("resolve", url.Values{"id": {pc}, "note": {""}}, "hospital_admin"); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Errorf("resolve without a note: %v", err)
	}
	if _, err := post("resolve", url.Values{"id": {pc}, "note": {"x"}}, "auditor"); ihos.ErrorCode(err) != ihos.EForbidden {
		t.Errorf("read-only resolve: %v", err)
	}
	if len(remote.runs) != 1 || remote.runs[0] != day+" his" || len(remote.resolves) != 1 || remote.resolves[0] != pc+" 已补记 finance" {
		t.Errorf("remote got runs %v resolves %v", remote.runs, remote.resolves)
	}
}
