package h5_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"ihos/h5"
)

type hospitals []string

func (h hospitals) IDs() []string { return append([]string(nil), h...) }
func (h hospitals) Known(id string) bool {
	for _, x := range h {
		if x == id {
			return true
		}
	}
	return false
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestPage serves the shell: the hospital it starts with, versioned assets,
// a CSP that keeps everything on the cloud's origin, and nothing fetched
// from anywhere else (no CDN, no web fonts).
func TestPage(t *testing.T) {
	mux := http.NewServeMux()
	h5.Routes(mux, hospitals{"h2", "h1"})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, body := get(t, srv.URL+"/h5/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
	if !strings.Contains(body, `data-hospital="h1"`) || !strings.Contains(body, `data-hospitals="h1,h2"`) {
		t.Fatalf("default hospital: %s", body)
	}
	if _, body := get(t, srv.URL+"/h5/?hospital=h2"); !strings.Contains(body, `data-hospital="h2"`) {
		t.Fatal("?hospital=h2 not taken")
	}
	if _, body := get(t, srv.URL+"/h5/?hospital=nowhere"); !strings.Contains(body, `data-hospital="h1"`) {
		t.Fatal("an unknown hospital was taken")
	}
	for _, want := range []string{"首页", "消息", "我的", `lang="zh-CN"`, "width=device-width"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "style=") {
		t.Error("inline script or style: the CSP forbids them")
	}
	assets := regexp.MustCompile(`/h5/static/[a-z0-9.]+\?v=[0-9a-f]{12}`).FindAllString(body, -1)
	if len(assets) != 2 {
		t.Fatalf("assets %q", assets)
	}
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|@font-face`)
	for _, a := range assets {
		resp, body := get(t, srv.URL+a)
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") == "" {
			t.Fatalf("%s: %d %q", a, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
		// The SVG namespace is a name, not an address fetched.
		if m := external.FindString(strings.ReplaceAll(body, "'http://www.w3.org/2000/svg'", "")); m != "" {
			t.Errorf("%s refers outside the cloud: %q", a, m)
		}
		if strings.Contains(a, ".css") && strings.Contains(body, "url(") {
			t.Errorf("%s loads a resource", a)
		}
	}
	if resp, _ := get(t, srv.URL+"/h5"); resp.Request.URL.Path != "/h5/" {
		t.Fatalf("/h5 went to %s", resp.Request.URL)
	}
}
