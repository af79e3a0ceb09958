package svs

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

var fuzzPaths = []string{
	"/api/svs/sign",
	"/api/svs/verify",
	"/api/svs/sign-message",
	"/api/svs/verify-message",
	"/api/svs/cert/parse",
	"/api/svs/cert/validate",
	"/api/svs/timestamp",
	"/api/svs/certs",
	"/api/svs/cert",
}

// FuzzHandlers sends arbitrary bodies to every endpoint: no panic, and no 5xx
// but the 503s of the switch, the clock gate and the TSA.
func FuzzHandlers(f *testing.F) {
	e := newEnv(f, envOptions{policy: App{Name: "模糊测试", Timestamp: true}})
	mux := http.NewServeMux()
	e.srv.Routes(mux)
	var sr signResponse
	e.post(e.token, "/api/svs/sign", map[string]string{"data": "YQ=="}, &sr)
	cert := sr.Cert
	seeds := []string{
		`{"data":"YWJj"}`,
		`{"data":"YWJj","detached":true}`,
		`{"data":"YWJj","signature":"MEQCIA==","cert":"CERT","level":2}`,
		`{"p7":"MIIB","data":"YWJj","level":1}`,
		`{"cert":"CERT","level":2}`,
		`{"cert":"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"}`,
		`{"data":null}`, `{}`, `[]`, `null`, `"x"`, `{"level":"1"}`, `{"level":-1}`, `{"level":1e99}`,
		`{"data":"====","signature":"@@"}`, `{"p7":""}`, `{"cert":"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----"}`,
		"\x30\x82\xff\xff", "",
	}
	for i := range fuzzPaths {
		for _, s := range seeds {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, path uint8, body []byte) {
		p := fuzzPaths[int(path)%len(fuzzPaths)]
		body = bytes.ReplaceAll(body, []byte("CERT"), []byte(jsonEscape(cert)))
		method := http.MethodPost
		if p == "/api/svs/certs" || p == "/api/svs/cert" {
			method = http.MethodGet
		}
		req := httptest.NewRequest(method, p, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.token)
		if p == "/api/svs/timestamp" {
			req.Header.Set("Content-Type", "application/timestamp-query")
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %q: HTTP %d %s", p, body, rec.Code, rec.Body)
		}
	})
}

func jsonEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '\n':
			b.WriteString(`\n`)
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
