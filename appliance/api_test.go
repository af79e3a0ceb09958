package appliance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"ihos/appliance"
	"ihos/internal/auth"
	"ihos/internal/node"
	"ihos/internal/web"
)

// httpClient gives up on a request that hangs (a deadlock in the service) instead
// of hanging the test binary.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// han matches a Chinese character: every message a user sees is in Chinese.
var han = regexp.MustCompile(`\p{Han}`)

// instance is a running appliance served over real HTTP.
type instance struct {
	app   *appliance.App
	srv   *httptest.Server
	creds map[string]appliance.Credential
}

// startAppliance starts an appliance with demo data on dataDir, writing (or, on a
// restart, keeping) the logins in credPath, and serves it through the same
// middleware as production.
func startAppliance(t testing.TB, dataDir, credPath string) *instance {
	t.Helper()
	a, err := appliance.New(context.Background(), appliance.Config{
		Config:      node.Config{DataDir: dataDir, HTTP: "127.0.0.1:0", LogLevel: "warn"},
		Demo:        true,
		Credentials: credPath,
	})
	if err != nil {
		t.Fatalf("appliance.New: %v", err)
	}
	srv := httptest.NewServer(web.Middleware(a.Handler))
	in := &instance{app: a, srv: srv, creds: readCreds(t, credPath)}
	t.Cleanup(in.close)
	return in
}

// close stops the server and the app; calling it twice is harmless.
func (in *instance) close() {
	if in.srv != nil {
		in.srv.Close()
		in.srv = nil
	}
	if in.app != nil {
		in.app.Close()
		in.app = nil
	}
}

func readCreds(t testing.TB, path string) map[string]appliance.Credential {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	var creds map[string]appliance.Credential
	if err := json.Unmarshal(b, &creds); err != nil {
		t.Fatalf("credentials file is not JSON: %v", err)
	}
	for _, k := range []string{"console", "console_hospital_admin", "console_dept_admin", "console_auditor"} {
		if creds[k].Username == "" || len(creds[k].Password) < 10 {
			t.Fatalf("credentials file lacks a usable %q login: %+v", k, creds[k])
		}
	}
	return creds
}

// client calls the JSON API with a bearer token (or none).
type client struct {
	t     testing.TB
	base  string
	token string
}

func (in *instance) anon(t testing.TB) *client { return &client{t: t, base: in.srv.URL} }

// login logs in with the credentials stored under key and returns a client
// carrying the session's bearer token.
func (in *instance) login(t testing.TB, key string) *client {
	t.Helper()
	c := in.anon(t)
	cr := in.creds[key]
	status, body := c.do("POST", "/api/admin/login", map[string]string{"username": cr.Username, "password": cr.Password})
	if status != http.StatusOK {
		t.Fatalf("login %s: %d %s", cr.Username, status, body)
	}
	var sess struct {
		Token string `json:"token"`
		User  struct {
			Username string `json:"username"`
			Role     string `json:"role"`
		} `json:"user"`
	}
	if err := json.Unmarshal(body, &sess); err != nil || sess.Token == "" {
		t.Fatalf("login %s: no token in %s (%v)", cr.Username, body, err)
	}
	if sess.User.Username != cr.Username || sess.User.Role != cr.Role {
		t.Fatalf("login %s: session user %+v, want role %s", cr.Username, sess.User, cr.Role)
	}
	c.token = sess.Token
	return c
}

// do sends body (raw when []byte or string, JSON otherwise) and returns the status
// and response body.
func (c *client) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	resp := c.send(method, path, body, nil)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

func (c *client) send(method, path string, body any, header http.Header) *http.Response {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// json calls the API, checks the status, and decodes the JSON object answered.
func (c *client) json(method, path string, body any, want int) map[string]any {
	c.t.Helper()
	status, b := c.do(method, path, body)
	if status != want {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, status, want, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("%s %s: body is not a JSON object: %v: %s", method, path, err, b)
	}
	return m
}

// fail calls the API expecting an error and checks the error body: the status's
// code, a Chinese message, and Chinese field messages.
func (c *client) fail(method, path string, body any, want int, code string) web.ErrorBody {
	c.t.Helper()
	status, b := c.do(method, path, body)
	if status != want {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, status, want, b)
	}
	e := checkErrorBody(c.t, b)
	if e.Code != code {
		c.t.Fatalf("%s %s: code %q, want %q; body %s", method, path, e.Code, code, b)
	}
	return e
}

// checkErrorBody asserts b is {"code","message","fields"} with a non-empty code and
// Chinese messages.
func checkErrorBody(t testing.TB, b []byte) web.ErrorBody {
	t.Helper()
	var e web.ErrorBody
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body is not {code,message,fields} JSON: %v: %q", err, b)
	}
	if e.Code == "" || !han.MatchString(e.Message) {
		t.Fatalf("error body lacks a code or a Chinese message: %s", b)
	}
	for k, v := range e.Fields {
		if !han.MatchString(v) {
			t.Fatalf("field %q message %q is not Chinese", k, v)
		}
	}
	return e
}

func items(t testing.TB, page map[string]any) []map[string]any {
	t.Helper()
	raw, ok := page["items"].([]any)
	if !ok {
		t.Fatalf("page has no items array: %v", page)
	}
	out := make([]map[string]any, len(raw))
	for i, v := range raw {
		out[i] = v.(map[string]any)
	}
	return out
}

func total(t testing.TB, page map[string]any) int {
	t.Helper()
	n, ok := page["total"].(float64)
	if !ok {
		t.Fatalf("page has no total: %v", page)
	}
	return int(n)
}

// find returns the first record of a list whose field equals value.
func (c *client) find(resource, field, value string) map[string]any {
	c.t.Helper()
	page := c.json("GET", "/api/admin/"+resource+"?page_size=100&"+url.Values{field: {value}}.Encode(), nil, 200)
	its := items(c.t, page)
	if len(its) == 0 {
		c.t.Fatalf("no %s with %s=%s", resource, field, value)
	}
	return its[0]
}

func str(v any) string { s, _ := v.(string); return s }

// TestAdminAPI exercises the whole admin HTTP contract against a real appliance
// with the demo hospital.
func TestAdminAPI(t *testing.T) {
	in := startAppliance(t, t.TempDir(), filepath.Join(t.TempDir(), "creds.json"))
	admin := in.login(t, "console")

	t.Run("healthz", func(t *testing.T) {
		h := in.anon(t).json("GET", "/healthz", nil, 200)
		if h["status"] != "ok" || h["service"] != "appliance" || h["database"] != "sqlite" {
			t.Fatalf("healthz = %v", h)
		}
	})

	t.Run("demo data", func(t *testing.T) {
		c := *admin
		c.t = t
		insts := items(t, c.json("GET", "/api/admin/institutions", nil, 200))
		var main, branch map[string]any
		for _, it := range insts {
			if str(it["parent_id"]) == "" {
				main = it
			} else {
				branch = it
			}
		}
		if len(insts) < 2 || main == nil || branch == nil || branch["parent_id"] != main["id"] ||
			branch["parent_id_name"] != main["name"] || main["grade"] != "三级甲等" {
			t.Fatalf("want a main institution with a branch, got %v", insts)
		}
		if n := total(t, c.json("GET", "/api/admin/departments", nil, 200)); n < 8 {
			t.Fatalf("departments = %d, want ≥ 8", n)
		}
		if n := total(t, c.json("GET", "/api/admin/staff", nil, 200)); n < 30 {
			t.Fatalf("staff = %d, want ≥ 30", n)
		}
		// Branch departments hang off the branch.
		if n := total(t, c.json("GET", "/api/admin/departments?institution_id="+str(branch["id"]), nil, 200)); n < 1 {
			t.Fatalf("the branch has no departments")
		}
		for _, title := range []string{"主任医师", "副主任医师", "主治医师", "住院医师", "主任护师", "护师", "护士", "主任药师", "药师", "主管技师"} {
			if n := total(t, c.json("GET", "/api/admin/staff?"+url.Values{"title": {title}}.Encode(), nil, 200)); n == 0 {
				t.Errorf("no staff with title %s", title)
			}
		}
		for _, name := range []string{"心血管内科", "儿科", "药剂科", "医务科"} {
			c.find("departments", "q", name)
		}
		users := items(t, c.json("GET", "/api/admin/users", nil, 200))
		roles := map[string]bool{}
		for _, u := range users {
			roles[str(u["role"])] = true
			if _, ok := u["password"]; ok {
				t.Fatalf("users list shows a password field: %v", u)
			}
			if _, ok := u["password_hash"]; ok {
				t.Fatalf("users list shows a password hash: %v", u)
			}
		}
		for _, r := range []string{auth.RoleSysAdmin, auth.RoleHospitalAdmin, auth.RoleDeptAdmin, auth.RoleAuditor} {
			if !roles[r] {
				t.Errorf("no demo user with role %s", r)
			}
		}
	})

	t.Run("login", func(t *testing.T) {
		c := in.anon(t)
		cr := in.creds["console"]
		resp := c.send("POST", "/api/admin/login", map[string]string{"username": cr.Username, "password": cr.Password}, nil)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("login status %d", resp.StatusCode)
		}
		var cookie *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == auth.CookieName {
				cookie = ck
			}
		}
		if cookie == nil || cookie.Value == "" || !cookie.HttpOnly {
			t.Fatalf("login set no HttpOnly session cookie: %v", resp.Cookies())
		}
		// The cookie alone authenticates reads; writes also need the CSRF token.
		h := http.Header{"Cookie": {cookie.String()}}
		if r := c.send("GET", "/api/admin/departments", nil, h); r.StatusCode != 200 {
			t.Fatalf("cookie read: %d", r.StatusCode)
		} else {
			r.Body.Close()
		}
		r := c.send("POST", "/api/admin/departments", map[string]any{}, h)
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 403 || checkErrorBody(t, b).Code != "forbidden" {
			t.Fatalf("cookie write without CSRF token: %d %s", r.StatusCode, b)
		}

		e := c.fail("POST", "/api/admin/login", map[string]string{"username": cr.Username, "password": cr.Password + "x"}, 401, "unauthorized")
		if e.Message != "用户名或密码错误" {
			t.Fatalf("wrong password message %q", e.Message)
		}
		c.fail("POST", "/api/admin/login", map[string]string{"username": "nobody", "password": "abcdefgh12345"}, 401, "unauthorized")
		e = c.fail("POST", "/api/admin/login", map[string]string{}, 400, "invalid")
		if e.Fields["username"] == "" || e.Fields["password"] == "" {
			t.Fatalf("empty login fields: %v", e.Fields)
		}
		c.fail("POST", "/api/admin/login", "{not json", 400, "invalid")
		c.fail("POST", "/api/admin/login", `{"username": 5, "password": "x"}`, 400, "invalid")
	})

	t.Run("401 without session", func(t *testing.T) {
		c := in.anon(t)
		for _, p := range []struct{ m, path string }{
			{"GET", "/api/admin/staff"}, {"POST", "/api/admin/departments"}, {"GET", "/api/admin/departments/x"},
			{"PUT", "/api/admin/departments/x"}, {"DELETE", "/api/admin/departments/x"},
			{"POST", "/api/admin/departments/x/enable"}, {"GET", "/api/admin/nosuch"},
			{"GET", "/api/admin/audit"}, {"GET", "/api/admin/audit/verify"}, {"GET", "/api/admin/me"},
		} {
			c.fail(p.m, p.path, "{}", 401, "unauthorized")
		}
		bad := &client{t: t, base: in.srv.URL, token: "not-a-session-token"}
		bad.fail("GET", "/api/admin/staff", nil, 401, "unauthorized")
	})

	t.Run("list", func(t *testing.T) {
		c := *admin
		c.t = t
		page := c.json("GET", "/api/admin/departments?q="+url.QueryEscape("心血管"), nil, 200)
		if its := items(t, page); total(t, page) != 1 || its[0]["name"] != "心血管内科" {
			t.Fatalf("q=心血管: %v", page)
		}
		// LIKE wildcards and SQL in q are literal text.
		for _, q := range []string{"%", "_", "' OR 1=1 --", `"; DROP TABLE staff; --`, "!", "\\"} {
			if n := total(t, c.json("GET", "/api/admin/staff?q="+url.QueryEscape(q), nil, 200)); n != 0 {
				t.Errorf("q=%q matched %d staff", q, n)
			}
		}
		all := total(t, c.json("GET", "/api/admin/staff", nil, 200))
		seen := map[string]bool{}
		for p := 1; ; p++ {
			page := c.json("GET", fmt.Sprintf("/api/admin/staff?page=%d&page_size=7&sort=job_no", p), nil, 200)
			its := items(t, page)
			if page["page"] != float64(p) || page["page_size"] != float64(7) || total(t, page) != all {
				t.Fatalf("page %d header: %v", p, page)
			}
			if len(its) == 0 {
				break
			}
			if len(its) > 7 {
				t.Fatalf("page %d has %d items", p, len(its))
			}
			for _, it := range its {
				if seen[str(it["id"])] {
					t.Fatalf("record %v on two pages", it["id"])
				}
				seen[str(it["id"])] = true
			}
		}
		if len(seen) != all {
			t.Fatalf("paging saw %d of %d staff", len(seen), all)
		}
		// Sorting, both ways.
		var codes []string
		for _, it := range items(t, c.json("GET", "/api/admin/departments?sort=-code&page_size=100", nil, 200)) {
			codes = append(codes, str(it["code"]))
		}
		if !slices.IsSortedFunc(codes, func(a, b string) int { return strings.Compare(b, a) }) || len(codes) < 8 {
			t.Fatalf("sort=-code: %v", codes)
		}
		// Filters combine and are exact.
		page = c.json("GET", "/api/admin/staff?kind=doctor&title="+url.QueryEscape("主任医师")+"&page_size=100", nil, 200)
		if total(t, page) == 0 {
			t.Fatal("no chief physicians")
		}
		for _, it := range items(t, page) {
			if it["kind"] != "doctor" || it["title"] != "主任医师" {
				t.Fatalf("filter kind=doctor&title=主任医师 returned %v", it)
			}
		}
		for _, it := range items(t, c.json("GET", "/api/admin/departments?online=false&page_size=100", nil, 200)) {
			if it["online"] != false {
				t.Fatalf("online=false returned %v", it)
			}
		}
		// Invalid list parameters are 400 with Chinese field messages.
		for q, field := range map[string]string{
			"page=0": "page", "page=abc": "page", "page_size=101": "page_size", "page_size=-1": "page_size",
			"page=99999999999999999999999": "page", "sort=location": "sort", "sort=password": "sort",
			"nosuch=1": "nosuch", "online=maybe": "online", "enabled=x": "enabled", "category=" + url.QueryEscape("外星"): "category",
			"q=" + strings.Repeat("长", 51): "q", "q=%FF%FE": "q",
		} {
			e := c.fail("GET", "/api/admin/departments?"+q, nil, 400, "invalid")
			if e.Fields[field] == "" {
				t.Errorf("?%s: no message for %s: %v", q, field, e.Fields)
			}
		}
		// A page past the end is empty, not an error.
		if its := items(t, c.json("GET", "/api/admin/staff?page=1000000000", nil, 200)); len(its) != 0 {
			t.Fatalf("page past the end has %d items", len(its))
		}
	})

	var inst map[string]any
	t.Run("crud", func(t *testing.T) {
		c := *admin
		c.t = t
		inst = c.find("institutions", "code", "440101000001")
		dept := c.json("POST", "/api/admin/departments", map[string]any{
			"institution_id": inst["id"], "code": "TST01", "name": "测试门诊", "category": "临床",
			"phone": "020-87651234", "sort_order": 500, "online": true, "intro": "第一行\n第二行",
		}, 201)
		id := str(dept["id"])
		if id == "" || dept["version"] != float64(1) || dept["enabled"] != true || dept["name"] != "测试门诊" ||
			dept["institution_id_name"] != inst["name"] || dept["sort_order"] != float64(500) || dept["intro"] != "第一行\n第二行" {
			t.Fatalf("created %v", dept)
		}
		got := c.json("GET", "/api/admin/departments/"+id, nil, 200)
		if got["code"] != "TST01" || got["version"] != float64(1) {
			t.Fatalf("get %v", got)
		}
		// A GET body can be sent back as is (system and *_name fields are ignored).
		got["name"] = "测试门诊（新）"
		upd := c.json("PUT", "/api/admin/departments/"+id, got, 200)
		if upd["name"] != "测试门诊（新）" || upd["version"] != float64(2) || upd["code"] != "TST01" {
			t.Fatalf("updated %v", upd)
		}
		e := c.fail("PUT", "/api/admin/departments/"+id, map[string]any{"version": 1, "name": "旧版本"}, 409, "conflict")
		if !strings.Contains(e.Message, "已被他人修改") {
			t.Fatalf("stale version message %q", e.Message)
		}
		c.fail("PUT", "/api/admin/departments/"+id, map[string]any{"name": "无版本"}, 400, "invalid")
		if d := c.json("POST", "/api/admin/departments/"+id+"/disable", nil, 200); d["enabled"] != false || d["version"] != float64(3) {
			t.Fatalf("disabled %v", d)
		}
		if n := total(t, c.json("GET", "/api/admin/departments?enabled=false&code=TST01", nil, 200)); n != 1 {
			t.Fatalf("enabled=false filter found %d", n)
		}
		if d := c.json("POST", "/api/admin/departments/"+id+"/enable", nil, 200); d["enabled"] != true || d["version"] != float64(4) {
			t.Fatalf("enabled %v", d)
		}
		// Enabling an enabled record changes nothing.
		if d := c.json("POST", "/api/admin/departments/"+id+"/enable", nil, 200); d["version"] != float64(4) {
			t.Fatalf("re-enabled %v", d)
		}
		// Unique code among live records.
		e = c.fail("POST", "/api/admin/departments", map[string]any{"institution_id": inst["id"], "code": "TST01", "name": "重复", "category": "临床"}, 409, "conflict")
		if e.Fields["code"] == "" {
			t.Fatalf("duplicate code: %v", e)
		}
		// A referenced record cannot be deleted.
		c.fail("DELETE", "/api/admin/institutions/"+str(inst["id"]), nil, 409, "conflict")

		// The audit trail holds every change with the record before and after.
		audit := c.json("GET", "/api/admin/audit?resource=departments&record_id="+id, nil, 200)
		entries := items(t, audit)
		var actions []string
		for _, en := range entries {
			actions = append(actions, str(en["action"]))
			if en["actor_name"] != in.creds["console"].Username || en["record_id"] != id {
				t.Fatalf("audit entry %v", en)
			}
		}
		if want := []string{"enable", "disable", "update", "create"}; !slices.Equal(actions, want) {
			t.Fatalf("audit actions %v, want %v", actions, want)
		}
		update := entries[2]
		before, _ := update["before"].(map[string]any)
		after, _ := update["after"].(map[string]any)
		if before["name"] != "测试门诊" || after["name"] != "测试门诊（新）" || before["version"] != float64(1) || after["version"] != float64(2) {
			t.Fatalf("update audit before %v after %v", before, after)
		}
		if entries[3]["before"] != nil || entries[3]["after"].(map[string]any)["code"] != "TST01" {
			t.Fatalf("create audit %v", entries[3])
		}

		if s, b := c.do("DELETE", "/api/admin/departments/"+id, nil); s != 204 || len(b) != 0 {
			t.Fatalf("delete: %d %s", s, b)
		}
		c.fail("GET", "/api/admin/departments/"+id, nil, 404, "not_found")
		c.fail("DELETE", "/api/admin/departments/"+id, nil, 404, "not_found")
		c.fail("PUT", "/api/admin/departments/"+id, map[string]any{"version": 5}, 404, "not_found")
		c.fail("POST", "/api/admin/departments/"+id+"/enable", nil, 404, "not_found")
		if n := total(t, c.json("GET", "/api/admin/departments?code=TST01", nil, 200)); n != 0 {
			t.Fatalf("deleted department still listed")
		}
		// The code is free again once the holder is deleted.
		c.json("POST", "/api/admin/departments", map[string]any{"institution_id": inst["id"], "code": "TST01", "name": "测试门诊", "category": "临床"}, 201)
		if en := items(t, c.json("GET", "/api/admin/audit?action=delete&record_id="+id, nil, 200)); len(en) != 1 || en[0]["after"] != nil {
			t.Fatalf("delete audit %v", en)
		}
	})

	t.Run("400 invalid input", func(t *testing.T) {
		c := *admin
		c.t = t
		e := c.fail("POST", "/api/admin/departments", map[string]any{}, 400, "invalid")
		for _, f := range []string{"institution_id", "code", "name", "category"} {
			if !strings.HasPrefix(e.Fields[f], "请填写") {
				t.Errorf("missing %s: %q", f, e.Fields[f])
			}
		}
		e = c.fail("POST", "/api/admin/departments", map[string]any{
			"institution_id": 7, "code": strings.Repeat("码", 33), "name": "a\x00b", "category": "外星",
			"phone": "12345", "sort_order": "十", "online": "maybe", "bogus": 1, "parent_id": []any{1},
		}, 400, "invalid")
		for f, msg := range map[string]string{
			"institution_id": "应为文本", "code": "不能超过 32 个字", "name": "包含控制字符", "category": "请从列表中选择",
			"phone": "电话号码格式不正确", "sort_order": "请输入整数", "online": "请选择是或否", "bogus": "未知字段", "parent_id": "应为文本",
		} {
			if !strings.Contains(e.Fields[f], msg) {
				t.Errorf("field %s: %q, want %q", f, e.Fields[f], msg)
			}
		}
		for _, n := range []string{"10000", "-1", "1.5", "1e400", "99999999999999999999999"} {
			e = c.fail("POST", "/api/admin/departments", `{"sort_order": `+n+`}`, 400, "invalid")
			if e.Fields["sort_order"] == "" {
				t.Errorf("sort_order %s accepted: %v", n, e.Fields)
			}
		}
		dept := c.find("departments", "code", "XNK")
		staff := map[string]any{"institution_id": inst["id"], "department_id": dept["id"], "job_no": "X1", "name": "测试", "kind": "doctor"}
		for _, bad := range []struct{ field, value, msg string }{
			{"id_number", "440104199001011234", "校验位不正确"}, {"id_number", "4401041990010112", "应为 18 位"},
			{"id_number", idNumber("44010419901301123"), "出生日期无效"}, {"id_number", idNumber("44010421000101123"), "出生日期无效"},
			{"phone", "1390000000", "电话号码格式不正确"}, {"gender", "未知", "请从列表中选择"},
			{"title", "主任护师", "不能使用职称"}, {"practice_since", "1800", "年份应在"}, {"practice_since", "2101", "不能大于"},
		} {
			body := maps.Clone(staff)
			body[bad.field] = bad.value
			e := c.fail("POST", "/api/admin/staff", body, 400, "invalid")
			if !strings.Contains(e.Fields[bad.field], bad.msg) {
				t.Errorf("staff %s=%s: %v, want %q", bad.field, bad.value, e.Fields, bad.msg)
			}
		}
		e = c.fail("POST", "/api/admin/staff", map[string]any{
			"institution_id": inst["id"], "department_id": dept["id"], "job_no": "X1", "name": "测试", "kind": "admin", "online": true,
		}, 400, "invalid")
		if e.Fields["online"] == "" || e.Fields["license_no"] == "" || e.Fields["id_number"] == "" {
			t.Errorf("online qualification rules: %v", e.Fields)
		}
		e = c.fail("POST", "/api/admin/users", map[string]any{"username": "newuser", "display_name": "新用户", "role": "sysadmin", "password": "short"}, 400, "invalid")
		// The policy's own message ("密码至少 10 位…") is what the person should
		// see; Store.merge currently overwrites it with "请填写密码" (reported).
		if e.Fields["password"] == "" {
			t.Errorf("weak password: %v", e.Fields)
		}
		e = c.fail("POST", "/api/admin/users", map[string]any{"username": "newuser", "display_name": "新用户", "role": "dept_admin", "password": "abcdefgh1234"}, 400, "invalid")
		if e.Fields["department_id"] == "" {
			t.Errorf("dept admin without department: %v", e.Fields)
		}
		// Bodies that are not one JSON object.
		for _, body := range []string{"", "null", "[]", `"text"`, "42", "{", `{"a":1}{"b":2}`, `{} x`, `{}]`,
			strings.Repeat("[", 20000) + strings.Repeat("]", 20000), `{"code": "` + strings.Repeat("x", 1<<20) + `"}`} {
			c.fail("POST", "/api/admin/departments", body, 400, "invalid")
		}
		c.fail("PUT", "/api/admin/departments/"+str(dept["id"]), `{"version": "abc"}`, 400, "invalid")
	})

	t.Run("403 and department scope", func(t *testing.T) {
		auditor := in.login(t, "console_auditor")
		dadmin := in.login(t, "console_dept_admin")
		hadmin := in.login(t, "console_hospital_admin")
		xnk := admin.find("departments", "code", "XNK")
		hxk := admin.find("departments", "code", "HXK")
		hxkStaff := admin.find("staff", "department_id", str(hxk["id"]))
		newDept := map[string]any{"institution_id": inst["id"], "code": "AUD01", "name": "审计测试科", "category": "临床"}

		// The auditor reads everything and changes nothing.
		auditor.json("GET", "/api/admin/staff", nil, 200)
		auditor.json("GET", "/api/admin/users", nil, 200)
		auditor.json("GET", "/api/admin/audit", nil, 200)
		auditor.fail("POST", "/api/admin/departments", newDept, 403, "forbidden")
		auditor.fail("PUT", "/api/admin/departments/"+str(xnk["id"]), map[string]any{"version": xnk["version"], "name": "改名"}, 403, "forbidden")
		auditor.fail("DELETE", "/api/admin/staff/"+str(hxkStaff["id"]), nil, 403, "forbidden")
		auditor.fail("POST", "/api/admin/departments/"+str(xnk["id"])+"/disable", nil, 403, "forbidden")

		// The department administrator of 心血管内科 sees and changes only it.
		if its := items(t, dadmin.json("GET", "/api/admin/departments?page_size=100", nil, 200)); len(its) != 1 || its[0]["id"] != xnk["id"] {
			t.Fatalf("dept admin sees departments %v", its)
		}
		staff := items(t, dadmin.json("GET", "/api/admin/staff?page_size=100", nil, 200))
		if len(staff) == 0 {
			t.Fatal("dept admin sees no staff")
		}
		for _, s := range staff {
			if s["department_id"] != xnk["id"] {
				t.Fatalf("dept admin sees staff of another department: %v", s)
			}
		}
		dadmin.fail("GET", "/api/admin/staff/"+str(hxkStaff["id"]), nil, 404, "not_found")
		dadmin.fail("PUT", "/api/admin/departments/"+str(hxk["id"]), map[string]any{"version": hxk["version"], "name": "改名"}, 403, "forbidden")
		dadmin.fail("POST", "/api/admin/departments/"+str(hxk["id"])+"/disable", nil, 403, "forbidden")
		dadmin.fail("PUT", "/api/admin/staff/"+str(hxkStaff["id"]), map[string]any{"version": hxkStaff["version"], "name": "改名"}, 403, "forbidden")
		dadmin.fail("DELETE", "/api/admin/staff/"+str(hxkStaff["id"]), nil, 403, "forbidden")
		dadmin.fail("POST", "/api/admin/staff", map[string]any{"institution_id": inst["id"], "department_id": hxk["id"], "job_no": "Z9001", "name": "越权", "kind": "doctor"}, 403, "forbidden")
		dadmin.fail("POST", "/api/admin/departments", newDept, 403, "forbidden")
		// Moving an own record into another department is refused too.
		own := staff[0]
		dadmin.fail("PUT", "/api/admin/staff/"+str(own["id"]), map[string]any{"version": own["version"], "department_id": hxk["id"]}, 403, "forbidden")
		dadmin.fail("GET", "/api/admin/users", nil, 403, "forbidden")
		dadmin.fail("GET", "/api/admin/audit", nil, 403, "forbidden")
		// Within its department it may work.
		s := dadmin.json("POST", "/api/admin/staff", map[string]any{"institution_id": inst["id"], "department_id": xnk["id"], "job_no": "Z9002", "name": "本科室", "kind": "doctor"}, 201)
		dadmin.json("PUT", "/api/admin/staff/"+str(s["id"]), map[string]any{"version": 1, "title": "住院医师"}, 200)

		// The hospital administrator manages master data but not console users.
		hadmin.json("POST", "/api/admin/departments", newDept, 201)
		hadmin.fail("GET", "/api/admin/users", nil, 403, "forbidden")
		hadmin.json("GET", "/api/admin/audit/verify", nil, 200)

		// Denials are audited.
		if n := total(t, admin.json("GET", "/api/admin/audit?action=denied", nil, 200)); n < 5 {
			t.Fatalf("only %d denials audited", n)
		}
	})

	t.Run("404", func(t *testing.T) {
		c := *admin
		c.t = t
		for _, p := range []struct{ m, path string }{
			{"GET", "/api/admin/nosuch"}, {"POST", "/api/admin/nosuch"}, {"GET", "/api/admin/nosuch/1"},
			{"GET", "/api/admin/staff/01HZZZZZZZZZZZZZZZZZZZZZZZ"}, {"GET", "/api/admin/staff/" + strings.Repeat("9", 200)},
			{"PUT", "/api/admin/staff/nosuch"}, {"DELETE", "/api/admin/institutions/nosuch"},
			{"POST", "/api/admin/staff/nosuch/disable"}, {"GET", "/api/admin/staff/a/b/c"}, {"GET", "/api/admin/"},
			{"POST", "/api/admin/audit"},
		} {
			c.fail(p.m, p.path, `{"version":1}`, 404, "not_found")
		}
		// A method the route does not take is a JSON error too.
		c.fail("PATCH", "/api/admin/staff", "{}", 405, "method_not_allowed")
		c.fail("DELETE", "/api/admin/staff", nil, 405, "method_not_allowed")
	})

	t.Run("personal data masked", func(t *testing.T) {
		c := *admin
		c.t = t
		xnk := c.find("departments", "code", "XNK")
		const phone = "13912345678"
		idno := idNumber("11010519491231002")
		s := c.json("POST", "/api/admin/staff", map[string]any{
			"institution_id": inst["id"], "department_id": xnk["id"], "job_no": "M0001", "name": "脱敏测试", "kind": "doctor",
			"title": "主治医师", "phone": phone, "id_number": strings.ToLower(idno), "license_no": "110440100000001",
			"practice_since": 2010, "online": true,
		}, 201)
		id := str(s["id"])
		if s["phone"] != "139****5678" || s["id_number"] != "110105**********"+idno[16:] {
			t.Fatalf("created staff not masked: phone %v id_number %v", s["phone"], s["id_number"])
		}
		for _, path := range []string{"/api/admin/staff/" + id, "/api/admin/staff?page_size=100", "/api/admin/staff?phone=" + phone,
			"/api/admin/audit?resource=staff&record_id=" + id} {
			status, b := c.do("GET", path, nil)
			if status != 200 || bytes.Contains(b, []byte(phone)) || bytes.Contains(b, []byte(idno[:14])) {
				t.Fatalf("GET %s: %d, plain personal data in %s", path, status, b)
			}
		}
		// Exact search by the plain values still finds the record (blind index).
		for _, q := range []string{"phone=" + phone, "id_number=" + idno, "id_number=" + strings.ToLower(idno), "q=" + phone} {
			if page := c.json("GET", "/api/admin/staff?"+q, nil, 200); total(t, page) != 1 || items(t, page)[0]["id"] != id {
				t.Fatalf("?%s: %v", q, page)
			}
		}
		// Sending the masked values back leaves the plain values unchanged.
		got := c.json("GET", "/api/admin/staff/"+id, nil, 200)
		got["name"] = "脱敏测试二"
		c.json("PUT", "/api/admin/staff/"+id, got, 200)
		if n := total(t, c.json("GET", "/api/admin/staff?phone="+phone, nil, 200)); n != 1 {
			t.Fatal("the phone changed when its masked value was sent back")
		}
		// The ID number is unique among staff.
		e := c.fail("POST", "/api/admin/staff", map[string]any{
			"institution_id": inst["id"], "department_id": xnk["id"], "job_no": "M0002", "name": "重复身份证", "kind": "doctor", "id_number": idno,
		}, 409, "conflict")
		if e.Fields["id_number"] == "" {
			t.Fatalf("duplicate id number: %v", e)
		}
		// Staff without an ID number do not collide with each other.
		for _, no := range []string{"M0003", "M0004"} {
			c.json("POST", "/api/admin/staff", map[string]any{"institution_id": inst["id"], "department_id": xnk["id"], "job_no": no, "name": "无证件", "kind": "admin"}, 201)
		}
	})

	t.Run("users", func(t *testing.T) {
		c := *admin
		c.t = t
		xnk := c.find("departments", "code", "XNK")
		u := c.json("POST", "/api/admin/users", map[string]any{"username": "tester1", "display_name": "测试用户", "role": "dept_admin",
			"department_id": xnk["id"], "password": "Abcdefg12345"}, 201)
		if _, ok := u["password"]; ok {
			t.Fatalf("created user shows password: %v", u)
		}
		tc := (&instance{srv: in.srv, creds: map[string]appliance.Credential{"x": {Username: "tester1", Password: "Abcdefg12345", Role: "dept_admin"}}}).login(t, "x")
		tc.json("GET", "/api/admin/departments", nil, 200)
		// The username cannot change; disabling the user ends their sessions.
		e := c.fail("PUT", "/api/admin/users/"+str(u["id"]), map[string]any{"version": 1, "username": "tester2"}, 400, "invalid")
		if e.Fields["username"] == "" {
			t.Fatalf("username change: %v", e)
		}
		c.json("POST", "/api/admin/users/"+str(u["id"])+"/disable", nil, 200)
		tc.fail("GET", "/api/admin/departments", nil, 401, "unauthorized")
		c.fail("POST", "/api/admin/login", map[string]string{"username": "tester1", "password": "Abcdefg12345"}, 403, "forbidden")
	})

	t.Run("audit verify", func(t *testing.T) {
		c := *admin
		c.t = t
		v := c.json("GET", "/api/admin/audit/verify", nil, 200)
		if v["intact"] != true || v["first_bad_seq"] != float64(0) {
			t.Fatalf("verify %v", v)
		}
		for q, field := range map[string]string{"page=abc": "page", "page=0": "page", "page_size=-5": "page_size", "q=%FF": "q"} {
			if e := c.fail("GET", "/api/admin/audit?"+q, nil, 400, "invalid"); e.Fields[field] == "" {
				t.Errorf("audit ?%s: %v", q, e.Fields)
			}
		}
		c.json("GET", "/api/admin/audit?page=9223372036854775807&page_size=200", nil, 200)
	})
}

// TestRestartKeepsData closes the appliance and opens it again on the same data
// dir: the data is still there, nothing is seeded twice, and the generated
// passwords still work.
func TestRestartKeepsData(t *testing.T) {
	dataDir, credPath := t.TempDir(), filepath.Join(t.TempDir(), "creds.json")
	in := startAppliance(t, dataDir, credPath)
	c := in.login(t, "console")
	counts := func(c *client) map[string]int {
		m := map[string]int{}
		for _, r := range []string{"institutions", "departments", "staff", "users"} {
			m[r] = total(c.t, c.json("GET", "/api/admin/"+r, nil, 200))
		}
		m["audit_create"] = total(c.t, c.json("GET", "/api/admin/audit?action=create", nil, 200))
		return m
	}
	inst := c.find("institutions", "code", "440101000001")
	d := c.json("POST", "/api/admin/departments", map[string]any{"institution_id": inst["id"], "code": "KEEP1", "name": "重启测试科", "category": "临床"}, 201)
	before := counts(c)
	credBytes, err := os.ReadFile(credPath)
	if err != nil {
		t.Fatal(err)
	}
	in.close()

	in2 := startAppliance(t, dataDir, credPath)
	if after, _ := os.ReadFile(credPath); !bytes.Equal(after, credBytes) {
		t.Fatalf("restart rewrote the credentials file")
	}
	for _, key := range []string{"console", "console_hospital_admin", "console_dept_admin", "console_auditor"} {
		in2.login(t, key)
	}
	c2 := in2.login(t, "console")
	if after := counts(c2); !maps.Equal(before, after) {
		t.Fatalf("counts before restart %v, after %v", before, after)
	}
	got := c2.json("GET", "/api/admin/departments/"+str(d["id"]), nil, 200)
	if got["name"] != "重启测试科" || got["version"] != float64(1) {
		t.Fatalf("after restart %v", got)
	}
	// Personal data sealed with the key in the data dir opens after a restart.
	s := items(t, c2.json("GET", "/api/admin/staff?page_size=1", nil, 200))[0]
	if p := str(s["phone"]); len(p) != 11 || !strings.Contains(p, "****") {
		t.Fatalf("staff phone after restart %q", p)
	}
	if v := c2.json("GET", "/api/admin/audit/verify", nil, 200); v["intact"] != true {
		t.Fatalf("audit chain after restart %v", v)
	}
}

// idNumber completes 17 digits with the GB 11643 check character.
func idNumber(base string) string {
	weights := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i, w := range weights {
		sum += int(base[i]-'0') * w
	}
	return base + string("10X98765432"[sum%11])
}
