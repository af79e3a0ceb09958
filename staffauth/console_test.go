package staffauth_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/auth"
	"ihos/internal/console"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
)

// The console page grants app access: the initial password shows once, to
// whoever granted it, and logs the doctor in; a department administrator
// may not grant.
func TestConsolePage(t *testing.T) {
	e := setup(t, sqldbtest.SQLite(t))
	e.staff("s1", "王医生", ihos.StaffDoctor, "13800000001")
	ctx := context.Background()
	a := auth.New(e.db)
	a.BcryptCost = 4
	p := e.svc.Page(a)
	staff := &admin.Resource{Name: "staff", Table: "staff", Perm: "masterdata", Display: "name",
		Fields: []admin.Field{{Name: "name", Label: "姓名", Type: admin.Text}}}
	c := console.New(admin.NewStore(e.db, nil, a, staff), a, "test")
	c.AddPage(p) // panics on a template error
	if _, err := a.CreateUser(ctx, auth.User{Username: "hadmin", DisplayName: "医院管理员", Role: auth.RoleHospitalAdmin}, "Hospital-Pass-2026"); err != nil {
		t.Fatal(err)
	}
	sess, err := a.Login(ctx, "hadmin", "Hospital-Pass-2026", "127.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Routes(mux)
	srv := httptest.NewServer(web.Middleware(a.Middleware(mux)))
	t.Cleanup(srv.Close)
	cookie := auth.CookieName + "=" + sess.Token
	get := func() string {
		req, _ := http.NewRequest("GET", srv.URL+"/console/x/staff-app", nil)
		req.Header.Set("Cookie", cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("page: %d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	if html := get(); !strings.Contains(html, "王医生") || !strings.Contains(html, "开通互联网诊疗账号</button>") {
		t.Fatalf("page before granting: %s", html)
	}
	form := url.Values{"csrf_token": {sess.CSRF}, "id": {"s1"}}
	req, _ := http.NewRequest("POST", srv.URL+"/console/x/staff-app/grant", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", cookie)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		t.Fatalf("grant: %d", resp.StatusCode)
	}
	html := get()
	m := regexp.MustCompile(`生成初始密码：<b class="code">([A-Za-z0-9]+)</b>`).FindStringSubmatch(html)
	if m == nil || !strings.Contains(html, "已开通") {
		t.Fatalf("password not shown: %s", html)
	}
	if strings.Contains(get(), m[1]) {
		t.Fatal("the password shows twice")
	}
	if s, code, msg := e.login("13800000001", m[1]); code != http.StatusOK || !s.Staff.MustChange {
		t.Fatalf("login with the console's password: %d %s", code, msg)
	}
	// A department administrator may not grant.
	dctx := ihos.WithActor(ctx, ihos.Actor{UserID: "d", Role: auth.RoleDeptAdmin, DepartmentID: "d1", Scoped: true})
	r := httptest.NewRequestWithContext(dctx, "POST", "/console/x/staff-app/grant", strings.NewReader(url.Values{"id": {"s1"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if _, err := p.Post(r, "grant"); err == nil {
		t.Fatal("a department administrator granted app access")
	}
}
