package web_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"ihos"
	"ihos/internal/web"
)

var han = regexp.MustCompile(`\p{Han}`)

// decodeServer serves DecodeJSON into a map (the admin API's shape) and into a
// struct (the login's shape) over real HTTP: 200 with what was decoded, or the
// error as WriteError renders it.
func decodeServer(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(web.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if r.URL.Path == "/struct" {
				var in struct {
					Username string   `json:"username"`
					N        int      `json:"n"`
					Tags     []string `json:"tags"`
				}
				if err := web.DecodeJSON(r, &in); err != nil {
					return err
				}
				web.WriteJSON(w, 200, in)
				return nil
			}
			var in map[string]any
			if err := web.DecodeJSON(r, &in); err != nil {
				return err
			}
			web.WriteJSON(w, 200, in)
			return nil
		}).ServeHTTP(w, r)
	})))
	t.Cleanup(srv.Close)
	return srv
}

func post(t testing.TB, url string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func checkInvalid(t testing.TB, status int, b []byte) web.ErrorBody {
	t.Helper()
	var e web.ErrorBody
	if err := json.Unmarshal(b, &e); err != nil || status != 400 || e.Code != ihos.EInvalid || !han.MatchString(e.Message) {
		t.Fatalf("want 400 invalid with a Chinese message, got %d %s", status, b)
	}
	for k, v := range e.Fields {
		if !han.MatchString(v) {
			t.Fatalf("field %s message %q", k, v)
		}
	}
	return e
}

func TestDecodeJSON(t *testing.T) {
	srv := decodeServer(t)
	for body, want := range map[string]string{
		"":                "请求内容为空",
		"  \n":            "请求内容为空",
		"{":               "不是合法的 JSON",
		"[]":              "必须是 JSON 对象",
		`"x"`:             "必须是 JSON 对象",
		`{"a":1} {"b":2}`: "只能包含一个",
		`{"a":1}]`:        "只能包含一个",
		`{"a":1}}`:        "只能包含一个",
		`{"a":1}x`:        "只能包含一个",
		`{"x":"` + strings.Repeat("a", web.MaxBody) + `"}`: "过大",
	} {
		status, b := post(t, srv.URL+"/map", []byte(body))
		if e := checkInvalid(t, status, b); !strings.Contains(e.Message, want) {
			t.Errorf("body %.40q: message %q, want %q", body, e.Message, want)
		}
	}
	status, b := post(t, srv.URL+"/struct", []byte(`{"username": 5}`))
	if e := checkInvalid(t, status, b); e.Fields["username"] == "" {
		t.Fatalf("type error not reported on its field: %s", b)
	}
	// Trailing white space is fine, and numbers keep their text.
	status, b = post(t, srv.URL+"/map", []byte("{\"n\": 12345678901234567890, \"f\": 1e400}\r\n\t "))
	if status != 200 || !bytes.Contains(b, []byte("12345678901234567890")) || !bytes.Contains(b, []byte("1e400")) {
		t.Fatalf("decode: %d %s", status, b)
	}
	// A body of exactly MaxBody is accepted.
	exact := []byte(`{"x":"` + strings.Repeat("a", web.MaxBody-8) + `"}`)
	if status, b := post(t, srv.URL+"/map", exact); status != 200 || len(exact) != web.MaxBody {
		t.Fatalf("body of MaxBody bytes: %d %.100s", status, b)
	}
}

func TestMiddlewareRecoversPanics(t *testing.T) {
	srv := httptest.NewServer(web.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	})))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("X-Request-ID", "abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e web.ErrorBody
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != 500 || e.Code != ihos.EInternal || !strings.Contains(e.Message, "abc-123") || resp.Header.Get("X-Request-ID") != "abc-123" {
		t.Fatalf("panic: %d %+v", resp.StatusCode, e)
	}
	if strings.Contains(e.Message, "boom") {
		t.Fatal("the panic value leaked to the client")
	}
}

func TestWriteErrorStatus(t *testing.T) {
	for code, status := range map[string]int{
		ihos.EInvalid: 400, ihos.EUnauthorized: 401, ihos.EForbidden: 403, ihos.ENotFound: 404,
		ihos.EConflict: 409, ihos.EUnavailable: 503, ihos.EInternal: 500,
	} {
		rec := httptest.NewRecorder()
		web.WriteError(rec, httptest.NewRequest("GET", "/", nil), ihos.Errorf(code, "出错了"))
		if rec.Code != status {
			t.Errorf("%s: status %d, want %d", code, rec.Code, status)
		}
	}
	rec := httptest.NewRecorder()
	web.WriteError(rec, httptest.NewRequest("GET", "/", nil), errors.New("secret detail"))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret") {
		t.Fatalf("plain error: %d %s", rec.Code, rec.Body)
	}
}

// jsonSpace reports whether c is white space in JSON's grammar.
func jsonSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// FuzzDecodeJSON feeds arbitrary bodies to DecodeJSON: it never panics, every
// failure is a 400 invalid error with a Chinese message, and a JSON object is
// accepted exactly when the body is one valid JSON object (or null) of at most
// MaxBody bytes.
func FuzzDecodeJSON(f *testing.F) {
	// The access log of every execution would cost more than the execution.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Cleanup(func() { slog.SetDefault(prev) })
	srv := decodeServer(f)
	for _, s := range []string{
		`{"username":"admin","password":"abc12345678"}`, `{"a":{"b":[1,2,{"c":null}]}}`, `null`, `[]`, `{}`, ``, ` `,
		`{"n":99999999999999999999999}`, `{"n":1e400}`, `{"n":-0}`, `{"n":1.5e-400}`, `{"tags":["a",1]}`,
		`{"username":"' OR 1=1 --"}`, `{"username":"%_"}`, `{"s":"\u0000\ud800\udfff"}`, "{\"s\":\"\xff\xfe\"}",
		`{"a":1}{"b":2}`, `{"a":1}]`, `{"a":1} x`, `{"a":1,}`, `{'a':1}`, `{"a":01}`, `{"a":1`, "\ufeff{}",
		`{"username":"` + strings.Repeat("长", 1000) + `"}`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100), `{"a":1}` + "\v",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, asStruct bool) {
		path := "/map"
		if asStruct {
			path = "/struct"
		}
		status, b := post(t, srv.URL+path, body)
		if status != 200 {
			checkInvalid(t, status, b)
		}
		if asStruct {
			return
		}
		i, j := 0, len(body)
		for i < j && jsonSpace(body[i]) {
			i++
		}
		for j > i && jsonSpace(body[j-1]) {
			j--
		}
		v := body[i:j]
		want := len(body) <= web.MaxBody && json.Valid(v) && (bytes.HasPrefix(v, []byte("{")) || string(v) == "null")
		if (status == 200) != want {
			t.Fatalf("body %q: status %d (%s), want accepted=%v", body, status, b, want)
		}
	})
}
