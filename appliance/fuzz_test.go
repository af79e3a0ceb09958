package appliance_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzMethods are the methods FuzzAdminAPI picks from by index.
var fuzzMethods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}

// fuzzRoles are the logins FuzzAdminAPI sends requests as: the method byte
// selects role (byte / len(fuzzMethods)) and method (byte % len(fuzzMethods)).
var fuzzRoles = []string{"console", "console_dept_admin", "console_auditor", "console_hospital_admin"}

// op encodes a role index and a method index into FuzzAdminAPI's first input.
func op(role, method int) uint8 { return uint8(role*len(fuzzMethods) + method) }

// placeholders returns real record ids for the "$name" placeholders fuzz inputs
// may contain, so the corpus reaches records that exist, not only 404s.
func placeholders(t testing.TB, c *client) *strings.Replacer {
	t.Helper()
	inst := c.find("institutions", "code", "440101000001")
	branch := c.find("institutions", "code", "440101000002")
	dept := c.find("departments", "code", "XNK")
	staff := c.find("staff", "department_id", str(dept["id"]))
	other := c.find("departments", "code", "HXK")
	otherStaff := c.find("staff", "department_id", str(other["id"]))
	// A user of its own, never one whose session the fuzzer uses.
	user := c.json("POST", "/api/admin/users", map[string]any{"username": "fuzz_target", "display_name": "模糊测试用户",
		"role": "dept_admin", "department_id": dept["id"], "password": "Fuzz12345678"}, 201)
	return strings.NewReplacer("$inst", str(inst["id"]), "$branch", str(branch["id"]), "$dept", str(dept["id"]),
		"$staff", str(staff["id"]), "$other_dept", str(other["id"]), "$other_staff", str(otherStaff["id"]), "$user", str(user["id"]))
}

// escapeQuery keeps a raw query string as the fuzzer wrote it, except for the
// bytes that cannot appear in a request line at all, which it percent-encodes.
func escapeQuery(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c <= ' ' || c >= 0x7f || c == '#' {
			b.WriteString(url.QueryEscape(string([]byte{c})))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// FuzzAdminAPI sends arbitrary requests to the admin API of one running appliance
// with the sessions of each console role: no input may produce a 5xx or a panic, an
// authenticated request is never answered 401, and every error is JSON with a
// code and a Chinese message.
func FuzzAdminAPI(f *testing.F) {
	in := startAppliance(f, f.TempDir(), filepath.Join(f.TempDir(), "creds.json"))
	tokens := make([]string, len(fuzzRoles))
	for i, key := range fuzzRoles {
		tokens[i] = in.login(f, key).token
	}
	ids := placeholders(f, &client{t: f, base: in.srv.URL, token: tokens[0]})
	noRedirect := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	long := strings.Repeat("长", 3000)
	for _, s := range []struct {
		method       uint8
		resource, id string
		query, body  string
	}{
		// Lists.
		{0, "departments", "", "q=" + url.QueryEscape("心血管") + "&page=1&page_size=10&sort=-code", ""},
		{0, "staff", "", "kind=doctor&title=" + url.QueryEscape("主任医师") + "&online=true&enabled=1", ""},
		{0, "staff", "", "q=%25", ""},
		{0, "staff", "", "q=_", ""},
		{0, "staff", "", "q=' OR 1=1 --", ""},
		{0, "staff", "", "q=%FF%FE%00", ""},
		{0, "staff", "", "q=" + strings.Repeat("a", 60), ""},
		{0, "staff", "", "page=99999999999999999999&page_size=0", ""},
		{0, "staff", "", "page=-1&page_size=1e400", ""},
		{0, "staff", "", "page=1000000000&page_size=100", ""},
		{0, "staff", "", "sort=--code&sort=-&nosuch=1", ""},
		{0, "staff", "", "phone=13912345678&id_number=110105194912310021", ""},
		{0, "staff", "", "id_number=%FF&phone=%00&gender=" + url.QueryEscape("是"), ""},
		{0, "staff", "", "department_id=$dept&institution_id=$inst&practice_since=2000", ""},
		{0, "departments", "", "enabled=" + url.QueryEscape("否") + "&online=maybe&category=" + url.QueryEscape("临床"), ""},
		{0, "institutions", "", "parent_id=$inst&grade=x;y=z&a=%zz", ""},
		{0, "users", "", "role=auditor&department_id=$dept&csrf_token=x", ""},
		// Records.
		{0, "departments", "$dept", "", ""},
		{0, "staff", "$staff", "", ""},
		{0, "users", "$user", "", ""},
		{0, "staff", strings.Repeat("9", 100), "", ""},
		{0, "staff", "a/b/c", "", ""},
		{0, "staff", "../../console", "", ""},
		{0, "nosuch", "", "", ""},
		{0, "", "", "", ""},
		{0, "me", "", "", ""},
		{0, "audit", "", "resource=departments&record_id=$dept&page=2&page_size=200", ""},
		{0, "audit", "", "page=-1&page_size=abc&q=%FF", ""},
		{0, "audit", "verify", "", ""},
		// Creates.
		{1, "departments", "", "", `{"institution_id":"$inst","code":"FZ1","name":"模糊测试科","category":"临床","phone":"020-87651234","sort_order":10,"online":true}`},
		{1, "departments", "", "", `{"institution_id":"$inst","code":"' OR 1=1 --","name":"%_!","category":"临床","parent_id":"$dept"}`},
		{1, "staff", "", "", `{"institution_id":"$inst","department_id":"$dept","job_no":"FZ0001","name":"测试","kind":"doctor","title":"主治医师","phone":"13912345678","id_number":"11010519491231002x","license_no":"1","practice_since":2000,"online":true}`},
		{1, "staff", "", "", `{"institution_id":"$inst","department_id":"$dept","job_no":"FZ0002","name":"测试","kind":"admin","online":true,"practice_since":1e400}`},
		{1, "institutions", "", "", `{"code":"FZ-I","name":"分院","parent_id":"$inst","grade":"三级甲等","intro":"a\nb\tc"}`},
		{1, "users", "", "", `{"username":"fuzz1","display_name":"模糊","role":"dept_admin","department_id":"$dept","password":"abcdefgh12"}`},
		{1, "users", "", "", `{"username":"fuzz2","display_name":"模糊","role":"sysadmin","password":"` + strings.Repeat("a1", 40) + `"}`},
		{1, "departments", "", "", `null`},
		{1, "departments", "", "", `[]`},
		{1, "departments", "", "", `{"a":{"b":{"c":[1,2,{"d":null}]}}}`},
		{1, "departments", "", "", strings.Repeat("[", 10001) + strings.Repeat("]", 10001)},
		{1, "departments", "", "", `{"name":"` + "\xff\xfe" + `","code":"\ud800"}`},
		{1, "departments", "", "", `{"name":"` + long + `","intro":"` + long + `"}`},
		{1, "departments", "", "", `{"name":"𠀀😀` + "\u202e" + `","sort_order":-1,"online":"是","code":123456789012345678901234567890}`},
		{1, "departments", "", "", `{"sort_order":99999999999999999999999999,"online":1,"phone":["x"]}`},
		{1, "departments", "", "", `{} {}`},
		{1, "departments", "", "", `{}]`},
		{1, "departments", "", "", ``},
		{1, "login", "", "", `{"username":"admin","password":"wrong-password-1"}`},
		// Updates, state changes, deletes.
		{2, "departments", "$dept", "", `{"version":1,"name":"新名字"}`},
		{2, "departments", "$dept", "", `{"version":1e400}`},
		{2, "staff", "$staff", "", `{"version":99999999999999999999999}`},
		{2, "staff", "$staff", "", `{"version":null,"phone":"139****1234"}`},
		{2, "staff", "$staff", "", `{"version":"1","department_id":"$dept","id_number":""}`},
		{2, "institutions", "$inst", "", `{"version":1,"parent_id":"$inst"}`},
		{2, "institutions", "$branch", "", `{"version":1,"parent_id":"$branch"}`},
		{2, "users", "$user", "", `{"version":1,"username":"other","password":"` + strings.Repeat("x1", 50) + `"}`},
		{2, "users", "$user", "", `{"version":1,"role":"nosuch","department_id":7}`},
		{3, "departments", "$dept", "", ""},
		{3, "institutions", "$branch", "", ""},
		{3, "staff", "nosuch", "", ""},
		{1, "departments", "$dept/enable", "", ""},
		{1, "staff", "$staff/disable", "", ""},
		{1, "staff", "$staff/nosuch", "", ""},
		// Other methods.
		{4, "staff", "", "", `{}`},
		{5, "staff", "$staff", "", ""},
		{6, "departments", "", "", ""},
		// Other roles. A department administrator's change to another department's
		// record was once denied inside the write transaction, whose audit entry
		// then waited for the only SQLite writer forever.
		{op(1, 2), "departments", "$other_dept", "", `{"version":1,"name":"越权"}`},
		{op(1, 2), "staff", "$other_staff", "", `{"version":1,"name":"越权"}`},
		{op(1, 2), "staff", "$staff", "", `{"version":1,"department_id":"$other_dept"}`},
		{op(1, 1), "staff", "$other_staff/disable", "", ""},
		{op(1, 3), "staff", "$other_staff", "", ""},
		{op(1, 1), "staff", "", "", `{"institution_id":"$inst","department_id":"$other_dept","job_no":"FZ0003","name":"越权","kind":"doctor"}`},
		{op(1, 1), "staff", "", "", `{"institution_id":"$inst","department_id":"$dept","job_no":"FZ0004","name":"本科室","kind":"doctor"}`},
		{op(1, 0), "staff", "$other_staff", "", ""},
		{op(1, 0), "users", "", "", ""},
		{op(2, 1), "departments", "", "", `{"institution_id":"$inst","code":"FZ2","name":"审计员","category":"临床"}`},
		{op(2, 2), "departments", "$dept", "", `{"version":1}`},
		{op(2, 0), "audit", "verify", "", ""},
		{op(3, 3), "users", "$user", "", ""},
		{op(3, 0), "audit", "", "action=denied", ""},
	} {
		f.Add(s.method, s.resource, s.id, s.query, []byte(s.body))
	}

	f.Fuzz(func(t *testing.T, method uint8, resource, id, query string, body []byte) {
		if resource == "logout" {
			t.Skip("logging out would end the session every other input uses")
		}
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		token := tokens[int(method)/len(fuzzMethods)%len(tokens)]
		resource, id, query = ids.Replace(resource), ids.Replace(id), ids.Replace(query)
		body = []byte(ids.Replace(string(body)))
		segs := []string{"api", "admin", url.PathEscape(resource)}
		if id != "" {
			for _, s := range strings.Split(id, "/") {
				segs = append(segs, url.PathEscape(s))
			}
		}
		target := in.srv.URL + "/" + strings.Join(segs, "/")
		if query != "" {
			target += "?" + escapeQuery(query)
		}
		req, err := http.NewRequest(m, target, bytes.NewReader(body))
		if err != nil {
			t.Skipf("not a request: %v", err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v (did the handler panic?)", m, target, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: read body: %v", m, target, err)
		}
		switch {
		case resp.StatusCode >= 500:
			t.Fatalf("%s %s: status %d: %s", m, target, resp.StatusCode, b)
		case resp.StatusCode == http.StatusUnauthorized && resource != "login":
			t.Fatalf("%s %s: 401 with a valid session: %s", m, target, b)
		case m == "HEAD":
			// No body to check.
		case resp.StatusCode >= 400:
			checkErrorBody(t, b)
		case resp.StatusCode >= 300:
			// The mux redirects paths with "." or empty segments to their clean form.
			if resp.Header.Get("Location") == "" {
				t.Fatalf("%s %s: %d without Location", m, target, resp.StatusCode)
			}
		case resp.StatusCode == http.StatusNoContent:
			if len(b) != 0 {
				t.Fatalf("%s %s: 204 with a body: %q", m, target, b)
			}
		default:
			if !json.Valid(b) {
				t.Fatalf("%s %s: %d with a body that is not JSON: %q", m, target, resp.StatusCode, b)
			}
		}
	})
}

// FuzzLogin posts arbitrary bodies to the login endpoint: never a 5xx or a panic,
// only 200 with a token or a JSON error with a Chinese message.
func FuzzLogin(f *testing.F) {
	in := startAppliance(f, f.TempDir(), filepath.Join(f.TempDir(), "creds.json"))
	pw := strings.NewReplacer("$password", in.creds["console_auditor"].Password)
	for _, s := range []string{
		`{"username":"shenji","password":"$password"}`,
		`{"username":" shenji ","password":"$password","extra":[1,{"a":null}]}`,
		`{"username":"shenji","password":"$password"}{"x":1}`,
		`{"username":"admin","password":"wrong-password-1"}`,
		`{"username":"nobody","password":"abcdefgh12345"}`,
		`{}`, `null`, `[]`, `"admin"`, `1e400`, ``, `{`,
		`{"username":null,"password":null}`,
		`{"username":["admin"],"password":{"a":1}}`,
		`{"username":"admin","password":1e400}`,
		`{"username":99999999999999999999999,"password":true}`,
		`{"username":"' OR 1=1 --","password":"' OR '1'='1"}`,
		`{"username":"%","password":"_"}`,
		`{"username":"\u0000admin","password":"\ud800"}`,
		`{"username":"` + "\xff\xfe" + `","password":"` + "\xc0\x80" + `"}`,
		`{"username":"` + strings.Repeat("管", 70) + `","password":"` + strings.Repeat("p", 300) + `"}`,
		`{"username":"   ","password":"   "}`,
		strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c := in.anon(t)
		status, b := c.do("POST", "/api/admin/login", []byte(pw.Replace(string(body))))
		switch status {
		case http.StatusOK:
			var sess struct {
				Token string `json:"token"`
				CSRF  string `json:"csrf_token"`
			}
			if err := json.Unmarshal(b, &sess); err != nil || sess.Token == "" || sess.CSRF == "" {
				t.Fatalf("200 without a session: %s", b)
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
			checkErrorBody(t, b)
		default:
			t.Fatalf("login %q: status %d: %s", body, status, b)
		}
	})
}
