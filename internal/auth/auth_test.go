package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/audit"
	"ihos/internal/auth"
	"ihos/internal/masterdata"
	"ihos/internal/pii"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
)

const (
	goodPassword = "Zhang2026san"
	badPassword  = "Wrong2026pass"
)

// clock is the time the services under test see; tests move it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newService returns a Service on db with a fast bcrypt and the test clock. A
// second Service on the same db and clock stands for the process after a restart:
// it has no session cache and must read the sessions table.
func newService(db *sqldb.DB, clk *clock) *auth.Service {
	s := auth.New(db)
	s.BcryptCost = 4
	s.Now = clk.Now
	return s
}

func createUser(t *testing.T, s *auth.Service, username, role, dept string) auth.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), auth.User{Username: username, DisplayName: "用户 " + username, Role: role, DepartmentID: dept}, goodPassword)
	if err != nil {
		t.Fatalf("CreateUser %s: %v", username, err)
	}
	return u
}

func login(t *testing.T, s *auth.Service, username, password string) *auth.Session {
	t.Helper()
	sess, err := s.Login(context.Background(), username, password, "10.1.2.3", "Go-test")
	if err != nil {
		t.Fatalf("Login %s: %v", username, err)
	}
	return sess
}

func wantCode(t *testing.T, err error, code string) *ihos.Error {
	t.Helper()
	var e *ihos.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	return e
}

func auditEntries(t *testing.T, db *sqldb.DB, action string) []audit.Entry {
	t.Helper()
	entries, total, err := audit.List(context.Background(), db, audit.Filter{Action: action, PageSize: 200})
	if err != nil {
		t.Fatalf("audit.List: %v", err)
	}
	if total != len(entries) {
		t.Fatalf("audit.List %s: total %d but %d entries", action, total, len(entries))
	}
	return entries
}

func alive(s *auth.Service, token string) bool {
	_, err := s.Lookup(context.Background(), token)
	return err == nil
}

func TestLogin(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		clk := newClock()
		s := newService(db, clk)
		u := createUser(t, s, "zhangsan", auth.RoleHospitalAdmin, "")

		sess := login(t, s, "  zhangsan ", goodPassword)
		if sess.Token == "" || sess.CSRF == "" || sess.Token == sess.CSRF {
			t.Errorf("session token %q, csrf %q: want two different random values", sess.Token, sess.CSRF)
		}
		if sess.User != u {
			t.Errorf("session user = %+v, want %+v", sess.User, u)
		}
		if want := clk.Now().Add(s.MaxAge); !sess.ExpiresAt.Equal(want) {
			t.Errorf("expires at %v, want %v", sess.ExpiresAt, want)
		}
		got, err := s.Lookup(context.Background(), sess.Token)
		if err != nil || got.User != u || got.CSRF != sess.CSRF {
			t.Fatalf("Lookup = %+v, %v", got, err)
		}
		// The session is in the database, not only in this process.
		if got, err := newService(db, clk).Lookup(context.Background(), sess.Token); err != nil || got.User != u || got.CSRF != sess.CSRF {
			t.Errorf("Lookup after restart = %+v, %v", got, err)
		}
		logins := auditEntries(t, db, audit.ActionLogin)
		if len(logins) != 1 || logins[0].ActorID != u.ID || logins[0].ActorName != "zhangsan" || logins[0].IP != "10.1.2.3" {
			t.Errorf("login audit = %+v", logins)
		}

		// A wrong password and an unknown user look the same to the caller.
		var messages []string
		for _, c := range []struct{ username, password string }{
			{"zhangsan", badPassword},
			{"lisi", goodPassword},
			{"ZHANGSAN", goodPassword}, // usernames are exact
		} {
			_, err := s.Login(context.Background(), c.username, c.password, "10.1.2.4", "Go-test")
			if c.username == "ZHANGSAN" && db.Engine == sqldb.MySQL && err == nil {
				continue // MySQL compares with a case-insensitive collation
			}
			e := wantCode(t, err, ihos.EUnauthorized)
			messages = append(messages, e.Message)
		}
		for _, m := range messages {
			if m != "用户名或密码错误" {
				t.Errorf("failed login message = %q, want 用户名或密码错误 for every cause", m)
			}
		}
		// Every failed attempt is audited, with who tried and from where.
		failed := auditEntries(t, db, audit.ActionLoginFailed)
		if len(failed) != len(messages) {
			t.Fatalf("%d login_failed entries for %d failed logins: %+v", len(failed), len(messages), failed)
		}
		for _, e := range failed {
			if e.IP != "10.1.2.4" || !strings.HasPrefix(e.Summary, "登录失败：") {
				t.Errorf("login_failed entry = %+v", e)
			}
		}
		wrongPw := failed[len(failed)-1] // newest first: the wrong password was the first attempt
		if wrongPw.ActorID != u.ID || wrongPw.RecordID != u.ID || !strings.Contains(wrongPw.Summary, "密码错误") {
			t.Errorf("wrong password entry = %+v", wrongPw)
		}
		unknown := failed[len(failed)-2]
		if !strings.Contains(unknown.Summary, "用户不存在") || !strings.Contains(unknown.Summary+unknown.ActorName, "lisi") {
			t.Errorf("unknown user entry = %+v: want the attempted username recorded", unknown)
		}

		// Empty or absurd input is refused with the same message.
		for _, c := range []struct{ username, password string }{
			{"", goodPassword}, {"zhangsan", ""}, {"   ", goodPassword},
			{strings.Repeat("a", 65), goodPassword}, {"zhangsan", strings.Repeat("a1", 101)},
		} {
			_, err := s.Login(context.Background(), c.username, c.password, "", "")
			if e := wantCode(t, err, ihos.EUnauthorized); e.Message != "用户名或密码错误" {
				t.Errorf("Login(%q, %q) message = %q", c.username, c.password, e.Message)
			}
		}
	})
}

func TestLockout(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		clk := newClock()
		s := newService(db, clk)
		createUser(t, s, "zhangsan", auth.RoleHospitalAdmin, "")
		ctx := context.Background()
		try := func(pw string) error {
			_, err := s.Login(ctx, "zhangsan", pw, "10.1.2.3", "")
			return err
		}

		// Failures separated by a success do not add up.
		for i := 0; i < s.MaxFailures-1; i++ {
			wantCode(t, try(badPassword), ihos.EUnauthorized)
		}
		if err := try(goodPassword); err != nil {
			t.Fatalf("login after %d failures: %v", s.MaxFailures-1, err)
		}
		for i := 0; i < s.MaxFailures-1; i++ {
			wantCode(t, try(badPassword), ihos.EUnauthorized)
		}

		// The MaxFailures-th consecutive failure locks the account.
		e := wantCode(t, try(badPassword), ihos.EForbidden)
		if !strings.Contains(e.Message, "锁定") || !strings.Contains(e.Message, "15 分钟") {
			t.Errorf("lockout message = %q", e.Message)
		}
		// While locked even the right password is refused, with the minutes left.
		clk.Add(s.LockFor - 2*time.Minute)
		e = wantCode(t, try(goodPassword), ihos.EForbidden)
		if !strings.Contains(e.Message, "已锁定") || !strings.Contains(e.Message, "2 分钟") {
			t.Errorf("locked message = %q, want the minutes left", e.Message)
		}
		clk.Add(2*time.Minute - time.Second)
		wantCode(t, try(goodPassword), ihos.EForbidden)

		// After LockFor the right password works, and the count starts again.
		clk.Add(2 * time.Second)
		if err := try(goodPassword); err != nil {
			t.Fatalf("login after the lockout: %v", err)
		}
		wantCode(t, try(badPassword), ihos.EUnauthorized)

		// A lockout that has run out lets the next failures count from zero too.
		for i := 0; i < s.MaxFailures-2; i++ {
			wantCode(t, try(badPassword), ihos.EUnauthorized)
		}
		wantCode(t, try(badPassword), ihos.EForbidden)
		clk.Add(s.LockFor + time.Second)
		wantCode(t, try(badPassword), ihos.EUnauthorized)

		// 4+4+1 + 2 locked attempts + 1 + 3+1 + 1 = 17 failures, each audited.
		failed := auditEntries(t, db, audit.ActionLoginFailed)
		if len(failed) != 17 {
			t.Errorf("%d login_failed entries, want 17", len(failed))
		}
		var locks, lockedTries int
		for _, f := range failed {
			if strings.Contains(f.Summary, "账号已锁定") {
				locks++
			}
			if strings.Contains(f.Summary, "账号锁定中") {
				lockedTries++
			}
		}
		if locks != 2 || lockedTries != 2 {
			t.Errorf("audit shows %d lockouts and %d attempts while locked, want 2 and 2", locks, lockedTries)
		}
	})
}

func TestDisabledUser(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		clk := newClock()
		s := newService(db, clk)
		sealer, err := pii.LoadOrCreate(filepath.Join(t.TempDir(), "pii.key"))
		if err != nil {
			t.Fatal(err)
		}
		store := admin.NewStore(db, sealer, s, append(masterdata.Resources(), s.UsersResource())...)
		users, _ := store.Resource("users")
		sys := ihos.WithActor(context.Background(), ihos.Actor{UserID: "u-sys", Username: "root", Role: auth.RoleSysAdmin})
		u := createUser(t, s, "zhangsan", auth.RoleHospitalAdmin, "")
		sess := login(t, s, "zhangsan", goodPassword)

		// Disabling the user in 控制台用户管理 ends their session at once...
		if _, err := store.SetEnabled(sys, users, u.ID, false); err != nil {
			t.Fatal(err)
		}
		if alive(s, sess.Token) || alive(newService(db, clk), sess.Token) {
			t.Error("the session of a disabled user still works")
		}
		// ...and they cannot log in again; a wrong password does not reveal the state.
		_, err = s.Login(context.Background(), "zhangsan", goodPassword, "", "")
		if e := wantCode(t, err, ihos.EForbidden); !strings.Contains(e.Message, "停用") {
			t.Errorf("disabled login message = %q", e.Message)
		}
		_, err = s.Login(context.Background(), "zhangsan", badPassword, "", "")
		wantCode(t, err, ihos.EUnauthorized)
		failed := auditEntries(t, db, audit.ActionLoginFailed)
		if len(failed) != 2 || !strings.Contains(failed[1].Summary, "账号已停用") {
			t.Errorf("login_failed entries = %+v", failed)
		}

		// A disabled user's sessions are refused even by a process that never
		// saw the change (the session row is checked against the user).
		if _, err := store.SetEnabled(sys, users, u.ID, true); err != nil {
			t.Fatal(err)
		}
		sess = login(t, s, "zhangsan", goodPassword)
		if _, err := db.ExecContext(context.Background(), `UPDATE console_users SET enabled = 0 WHERE id = ?`, u.ID); err != nil {
			t.Fatal(err)
		}
		if alive(newService(db, clk), sess.Token) {
			t.Error("a fresh process accepted the session of a disabled user")
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		clk := newClock()
		s := newService(db, clk)
		createUser(t, s, "zhangsan", auth.RoleHospitalAdmin, "")

		t.Run("idle", func(t *testing.T) {
			sess := login(t, s, "zhangsan", goodPassword)
			// Use keeps a session alive past IdleTimeout since login.
			clk.Add(s.IdleTimeout - time.Minute)
			if !alive(s, sess.Token) {
				t.Fatal("session expired before IdleTimeout")
			}
			clk.Add(s.IdleTimeout - time.Minute)
			if !alive(s, sess.Token) {
				t.Fatal("a session in use expired")
			}
			// Unused for longer than IdleTimeout, it is gone, also from the database.
			clk.Add(s.IdleTimeout + time.Second)
			_, err := s.Lookup(context.Background(), sess.Token)
			if e := wantCode(t, err, ihos.EUnauthorized); !strings.Contains(e.Message, "重新登录") {
				t.Errorf("expired session message = %q", e.Message)
			}
			if alive(newService(db, clk), sess.Token) {
				t.Error("an idle-expired session still works after a restart")
			}
		})

		t.Run("idle across restart", func(t *testing.T) {
			sess := login(t, s, "zhangsan", goodPassword)
			clk.Add(10 * time.Minute)
			if !alive(s, sess.Token) { // written back: the last write is over a minute old
				t.Fatal("session expired early")
			}
			restarted := newService(db, clk)
			clk.Add(s.IdleTimeout - time.Minute)
			if !alive(restarted, sess.Token) {
				t.Fatal("after a restart the session expired although it was used within IdleTimeout")
			}
			clk.Add(s.IdleTimeout + time.Second)
			if alive(newService(db, clk), sess.Token) {
				t.Error("after a restart an idle session still works")
			}
		})

		t.Run("max age", func(t *testing.T) {
			sess := login(t, s, "zhangsan", goodPassword)
			start := clk.Now()
			for clk.Now().Sub(start) < s.MaxAge-20*time.Minute {
				clk.Add(20 * time.Minute)
				if !alive(s, sess.Token) {
					t.Fatalf("session in use expired after %v, before MaxAge %v", clk.Now().Sub(start), s.MaxAge)
				}
			}
			clk.Add(start.Add(s.MaxAge + time.Second).Sub(clk.Now()))
			if alive(s, sess.Token) {
				t.Errorf("session in use still works after MaxAge %v", s.MaxAge)
			}
			if alive(newService(db, clk), sess.Token) {
				t.Error("a session past MaxAge still works after a restart")
			}
		})
	})
}

func TestLogoutAndRevoke(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		clk := newClock()
		s := newService(db, clk)
		ctx := context.Background()
		zhang := createUser(t, s, "zhangsan", auth.RoleHospitalAdmin, "")
		createUser(t, s, "lisi", auth.RoleAuditor, "")

		// Logout ends that session only.
		a := login(t, s, "zhangsan", goodPassword)
		b := login(t, s, "zhangsan", goodPassword)
		s.Logout(ctx, a.Token)
		if alive(s, a.Token) || alive(newService(db, clk), a.Token) {
			t.Error("session still works after Logout")
		}
		if !alive(s, b.Token) {
			t.Error("Logout ended another session of the same user")
		}
		logouts := auditEntries(t, db, audit.ActionLogout)
		if len(logouts) != 1 || logouts[0].ActorID != zhang.ID {
			t.Errorf("logout audit = %+v", logouts)
		}
		s.Logout(ctx, a.Token)   // twice: nothing happens
		s.Logout(ctx, "garbage") // unknown: nothing happens
		if n := len(auditEntries(t, db, audit.ActionLogout)); n != 1 {
			t.Errorf("%d logout entries after logging out a dead session, want 1", n)
		}

		// RevokeUser ends every session of the user, in this process and in the database.
		c := login(t, s, "zhangsan", goodPassword)
		other := login(t, s, "lisi", goodPassword)
		if err := s.RevokeUser(ctx, zhang.ID); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{b.Token, c.Token} {
			if alive(s, tok) || alive(newService(db, clk), tok) {
				t.Error("session still works after RevokeUser")
			}
		}
		if !alive(s, other.Token) {
			t.Error("RevokeUser ended another user's session")
		}
		// Revoking in one process removes the rows, so another process that had
		// not cached the session refuses it too.
		d := login(t, s, "zhangsan", goodPassword)
		if err := newService(db, clk).RevokeUser(ctx, zhang.ID); err != nil {
			t.Fatal(err)
		}
		if alive(newService(db, clk), d.Token) {
			t.Error("session still in the database after RevokeUser")
		}
	})
}

func TestAuthorize(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s := newService(db, newClock())
		as := func(role, dept string) context.Context {
			r, _ := auth.RoleByName(role)
			return ihos.WithActor(context.Background(), ihos.Actor{UserID: "u-" + role, Username: role, Role: role, DepartmentID: dept, Scoped: r.Scoped, IP: "10.9.9.9"})
		}

		wantCode(t, s.Authorize(context.Background(), "masterdata.read", ""), ihos.EUnauthorized)

		cases := []struct {
			role, dept, perm, recDept string
			ok                        bool
		}{
			{auth.RoleSysAdmin, "", "users.write", "", true},
			{auth.RoleSysAdmin, "", "audit.read", "", true},
			{auth.RoleHospitalAdmin, "", "masterdata.write", "", true},
			{auth.RoleHospitalAdmin, "", "masterdata.write", "d-2", true},
			{auth.RoleHospitalAdmin, "", "audit.read", "", true},
			{auth.RoleHospitalAdmin, "", "users.read", "", false},
			{auth.RoleHospitalAdmin, "", "users.write", "", false},
			{auth.RoleDeptAdmin, "d-1", "masterdata.read", "", true},
			{auth.RoleDeptAdmin, "d-1", "masterdata.read", "d-2", true},
			{auth.RoleDeptAdmin, "d-1", "masterdata.write", "d-1", true},
			{auth.RoleDeptAdmin, "d-1", "masterdata.write", "*", true},
			{auth.RoleDeptAdmin, "d-1", "masterdata.write", "d-2", false},
			{auth.RoleDeptAdmin, "d-1", "masterdata.write", "", false},
			{auth.RoleDeptAdmin, "d-1", "audit.read", "", false},
			{auth.RoleDeptAdmin, "d-1", "users.read", "", false},
			{auth.RoleAuditor, "", "masterdata.read", "", true},
			{auth.RoleAuditor, "", "users.read", "", true},
			{auth.RoleAuditor, "", "audit.read", "", true},
			{auth.RoleAuditor, "", "masterdata.write", "*", false},
			{auth.RoleAuditor, "", "users.write", "", false},
			{"nobody", "", "masterdata.read", "", false},
		}
		denied := 0
		for _, c := range cases {
			err := s.Authorize(as(c.role, c.dept), c.perm, c.recDept)
			if c.ok {
				if err != nil {
					t.Errorf("%s (dept %s) %s on %q: %v, want allowed", c.role, c.dept, c.perm, c.recDept, err)
				}
				continue
			}
			denied++
			if e := wantCode(t, err, ihos.EForbidden); e.Message != "您没有执行此操作的权限" {
				t.Errorf("denial message = %q", e.Message)
			}
		}

		// Each denial is audited with the actor, the permission and the department.
		entries := auditEntries(t, db, audit.ActionDenied)
		if len(entries) != denied {
			t.Fatalf("%d denied entries for %d denials", len(entries), denied)
		}
		var deptDenial *audit.Entry
		for i, e := range entries {
			if e.ActorID == "" || e.ActorID == ihos.System.UserID || e.IP != "10.9.9.9" || !strings.HasPrefix(e.Summary, "无权限：") {
				t.Errorf("denied entry = %+v", e)
			}
			if e.ActorID == "u-"+auth.RoleDeptAdmin && strings.Contains(e.Summary, "d-2") {
				deptDenial = &entries[i]
			}
		}
		if deptDenial == nil || !strings.Contains(deptDenial.Summary, "masterdata.write") {
			t.Errorf("no denied entry naming masterdata.write on department d-2: %+v", entries)
		}
		if bad, err := audit.Verify(context.Background(), db); err != nil || bad != 0 {
			t.Errorf("audit chain: first bad %d, %v", bad, err)
		}
	})
}

// echo reports the actor the middleware put in the request.
func echo(w http.ResponseWriter, r *http.Request) {
	a, ok := ihos.ActorFrom(r.Context())
	if !ok {
		io.WriteString(w, "anonymous")
		return
	}
	io.WriteString(w, a.Username+"/"+a.Role)
}

func TestMiddleware(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		s := newService(db, newClock())
		createUser(t, s, "zhangsan", auth.RoleHospitalAdmin, "")
		mux := http.NewServeMux()
		s.Routes(mux, "/api/admin", false)
		mux.HandleFunc("/echo", echo)
		srv := httptest.NewServer(web.Middleware(s.Middleware(mux)))
		t.Cleanup(srv.Close)

		do := func(method, path string, body io.Reader, header map[string]string) (int, string, *http.Response) {
			t.Helper()
			req, err := http.NewRequest(method, srv.URL+path, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b), resp
		}
		errorBody := func(body string) web.ErrorBody {
			t.Helper()
			var e web.ErrorBody
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("error body %q: %v", body, err)
			}
			return e
		}

		// The login API: bad input, bad password, then a session and its cookie.
		code, body, _ := do("POST", "/api/admin/login", strings.NewReader(`{}`), nil)
		if e := errorBody(body); code != 400 || e.Fields["username"] != "请输入用户名" || e.Fields["password"] != "请输入密码" {
			t.Errorf("empty login: %d %s", code, body)
		}
		code, body, _ = do("POST", "/api/admin/login", strings.NewReader(`{"username":"zhangsan","password":"`+badPassword+`"}`), nil)
		if e := errorBody(body); code != 401 || e.Code != ihos.EUnauthorized || e.Message != "用户名或密码错误" {
			t.Errorf("bad login: %d %s", code, body)
		}
		code, body, resp := do("POST", "/api/admin/login", strings.NewReader(`{"username":"zhangsan","password":"`+goodPassword+`"}`), nil)
		if code != 200 {
			t.Fatalf("login: %d %s", code, body)
		}
		var sess auth.Session
		if err := json.Unmarshal([]byte(body), &sess); err != nil || sess.Token == "" || sess.CSRF == "" {
			t.Fatalf("login body %s: %v", body, err)
		}
		var cookie *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == auth.CookieName {
				cookie = c
			}
		}
		if cookie == nil || cookie.Value != sess.Token || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" {
			t.Fatalf("session cookie = %+v", cookie)
		}
		withCookie := func(extra map[string]string) map[string]string {
			h := map[string]string{"Cookie": auth.CookieName + "=" + sess.Token}
			for k, v := range extra {
				h[k] = v
			}
			return h
		}
		const me = "zhangsan/" + auth.RoleHospitalAdmin

		// Safe methods need no CSRF token.
		if code, body, _ := do("GET", "/echo", nil, withCookie(nil)); code != 200 || body != me {
			t.Errorf("GET with cookie: %d %q", code, body)
		}
		if code, body, _ := do("GET", "/api/admin/me", nil, withCookie(nil)); code != 200 || !strings.Contains(body, `"role_label":"医院管理员"`) {
			t.Errorf("GET me: %d %s", code, body)
		}

		// A bearer token is never sent by a browser on its own: no CSRF token needed.
		if code, body, _ := do("POST", "/echo", nil, map[string]string{"Authorization": "Bearer " + sess.Token}); code != 200 || body != me {
			t.Errorf("POST with bearer: %d %q", code, body)
		}
		// A cookie is: without the token, or with a wrong one, the write is refused.
		for name, h := range map[string]map[string]string{
			"no token":     withCookie(nil),
			"wrong header": withCookie(map[string]string{auth.CSRFHeader: sess.Token}),
			"wrong field":  withCookie(map[string]string{"Content-Type": "application/x-www-form-urlencoded"}),
		} {
			var body io.Reader
			if name == "wrong field" {
				body = strings.NewReader(url.Values{"csrf_token": {"x" + sess.CSRF}}.Encode())
			}
			code, resp, _ := do("POST", "/echo", body, h)
			if e := errorBody(resp); code != 403 || e.Code != ihos.EForbidden || !strings.Contains(e.Message, "CSRF") || !strings.Contains(e.Message, "刷新") {
				t.Errorf("POST with cookie, %s: %d %s", name, code, resp)
			}
		}
		// The CSRF token in the header or in the form passes.
		if code, body, _ := do("POST", "/echo", nil, withCookie(map[string]string{auth.CSRFHeader: sess.CSRF})); code != 200 || body != me {
			t.Errorf("POST with cookie and CSRF header: %d %q", code, body)
		}
		form := url.Values{"csrf_token": {sess.CSRF}, "name": {"心内科"}}.Encode()
		if code, body, _ := do("POST", "/echo", strings.NewReader(form), withCookie(map[string]string{"Content-Type": "application/x-www-form-urlencoded"})); code != 200 || body != me {
			t.Errorf("POST with cookie and csrf_token field: %d %q", code, body)
		}
		// DELETE and PUT are writes too.
		if code, _, _ := do("DELETE", "/echo", nil, withCookie(nil)); code != 403 {
			t.Errorf("DELETE with cookie and no CSRF: %d", code)
		}

		// An unknown or malformed token is simply anonymous; routes decide.
		for _, h := range []map[string]string{
			{"Authorization": "Bearer nope"},
			{"Cookie": auth.CookieName + "=nope"},
			{"Authorization": "Bearer " + strings.Repeat("x", 500)},
		} {
			if code, body, _ := do("POST", "/echo", nil, h); code != 200 || body != "anonymous" {
				t.Errorf("POST with %v: %d %q", h, code, body)
			}
		}
		if code, _, _ := do("GET", "/api/admin/me", nil, nil); code != 401 {
			t.Errorf("GET me anonymous: %d", code)
		}

		// Logging out through the API needs the CSRF token and ends the session.
		if code, _, _ := do("POST", "/api/admin/logout", nil, withCookie(nil)); code != 403 {
			t.Errorf("logout without CSRF: %d", code)
		}
		if code, body, _ := do("POST", "/api/admin/logout", nil, withCookie(map[string]string{auth.CSRFHeader: sess.CSRF})); code != 204 {
			t.Errorf("logout: %d %s", code, body)
		}
		if code, _, _ := do("GET", "/api/admin/me", nil, withCookie(nil)); code != 401 {
			t.Errorf("GET me after logout: %d", code)
		}
		if code, body, _ := do("POST", "/echo", nil, map[string]string{"Authorization": "Bearer " + sess.Token}); code != 200 || body != "anonymous" {
			t.Errorf("bearer after logout: %d %q", code, body)
		}
	})
}

func TestCheckPassword(t *testing.T) {
	for _, c := range []struct {
		pw string
		ok bool
	}{
		{"abcdefghi1", true},
		{"Zhang2026san", true},
		{"a1" + strings.Repeat("b", 70), true}, // 72 bytes: bcrypt's limit
		{"", false},
		{"abc12345", false},  // short
		{"abcdefgh1", false}, // 9
		{"abcdefghij", false},
		{"1234567890", false},
		{"          ", false},
		{"a1" + strings.Repeat("b", 71), false}, // 73 bytes
	} {
		err := auth.CheckPassword(c.pw)
		if (err == nil) != c.ok {
			t.Errorf("CheckPassword(%q) = %v, want ok=%v", c.pw, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "密码") {
			t.Errorf("CheckPassword(%q) message %q is not the Chinese policy", c.pw, err)
		}
	}

	// CreateUser applies the policy and reports it on the password field.
	s := newService(sqldbtest.SQLite(t), newClock())
	_, err := s.CreateUser(context.Background(), auth.User{Username: "weak", DisplayName: "弱密码", Role: auth.RoleAuditor}, "123456")
	if e := wantCode(t, err, ihos.EInvalid); !strings.Contains(e.Fields["password"], "10 位") {
		t.Errorf("weak password fields = %v", e.Fields)
	}
	_, err = s.CreateUser(context.Background(), auth.User{Username: "x", DisplayName: "x", Role: "root"}, goodPassword)
	wantCode(t, err, ihos.EInvalid)
	createUser(t, s, "dup", auth.RoleAuditor, "")
	_, err = s.CreateUser(context.Background(), auth.User{Username: "dup", DisplayName: "重复", Role: auth.RoleAuditor}, goodPassword)
	wantCode(t, err, ihos.EConflict)
}

func TestCan(t *testing.T) {
	perms := []string{"masterdata.read", "masterdata.write", "users.read", "users.write", "audit.read", "audit.write", "billing.read"}
	want := map[string][]bool{
		auth.RoleSysAdmin:      {true, true, true, true, true, true, true},
		auth.RoleHospitalAdmin: {true, true, false, false, true, false, false},
		auth.RoleDeptAdmin:     {true, true, false, false, false, false, false},
		auth.RoleAuditor:       {true, false, true, false, true, false, true},
		"":                     {false, false, false, false, false, false, false},
		"SYSADMIN":             {false, false, false, false, false, false, false},
	}
	for role, row := range want {
		for i, p := range perms {
			if got := auth.Can(role, p); got != row[i] {
				t.Errorf("Can(%q, %q) = %v, want %v", role, p, got, row[i])
			}
		}
	}
	if len(auth.Roles) != 4 {
		t.Errorf("%d roles, want 4", len(auth.Roles))
	}
	for _, r := range auth.Roles {
		got, ok := auth.RoleByName(r.Name)
		if !ok || got.Label == "" || got.Scoped != (r.Name == auth.RoleDeptAdmin) {
			t.Errorf("role %s = %+v", r.Name, got)
		}
	}
}
