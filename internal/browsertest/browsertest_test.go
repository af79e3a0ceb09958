package browsertest_test

import (
	"bytes"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ihos/internal/browsertest"
)

const okPage = `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>科室信息管理</title>
<style>body{font-family:sans-serif;margin:40px} h1{font-size:40px} #msg{font-size:28px}</style>
</head><body>
<h1>科室信息管理</h1>
<p id="msg">尚未保存</p>
<button id="save" onclick="document.getElementById('msg').textContent='已保存：内科'">保存</button>
<div style="height:1400px"></div>
<p>页面底部：全页截图</p>
</body></html>`

const badPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>bad</title></head><body>
<p id="p">坏页面</p>
<button id="boom" onclick="undefinedFunction()">boom</button>
<script>throw new Error("页面脚本出错 boom-on-load");</script>
</body></html>`

func serve(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(okPage))
	})
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(badPage))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestClickChineseAndScreenshot(t *testing.T) {
	srv := serve(t)
	b := browsertest.New(t)

	b.Run(chromedp.Navigate(srv.URL+"/ok"), chromedp.WaitVisible(chromedp.CSS("#save")))
	if got := browsertest.Get(b, chromedp.Text(chromedp.CSS("h1"))); got != "科室信息管理" {
		t.Errorf("h1 = %q, want 科室信息管理", got)
	}
	b.Run(chromedp.Click(chromedp.CSS("#save")))
	if got := browsertest.Get(b, chromedp.Text(chromedp.CSS("#msg"))); got != "已保存：内科" {
		t.Errorf("#msg after click = %q, want 已保存：内科", got)
	}

	path := b.Screenshot("科室 after click")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 {
		t.Fatalf("screenshot %s is empty", path)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", path, err)
	}
	// The page is taller than the 1280x900 viewport: the shot is full-page.
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != 1280 || h < 1500 {
		t.Errorf("screenshot is %dx%d, want 1280 wide and the full page (> 1500) high", w, h)
	}
	if errs := b.ConsoleErrors(); len(errs) != 0 {
		t.Errorf("ConsoleErrors() = %q, want none", errs)
	}
}

func TestConsoleErrorsCaptured(t *testing.T) {
	srv := serve(t)
	b := browsertest.New(t)

	b.Run(chromedp.Navigate(srv.URL+"/bad"), chromedp.WaitVisible(chromedp.CSS("#boom")))
	b.Run(chromedp.Click(chromedp.CSS("#boom")))
	// Wait until the page has handled the click (the handler throws).
	b.Run(chromedp.Evaluate[chromedp.Void](`console.error("控制台错误", 42)`))

	errs := b.ConsoleErrors()
	t.Logf("ConsoleErrors: %q", errs)
	for _, want := range []string{"boom-on-load", "undefinedFunction", "控制台错误 42"} {
		found := false
		for _, e := range errs {
			if strings.Contains(e, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("ConsoleErrors() = %q, has nothing with %q", errs, want)
		}
	}
}

// TestMissingBrowser runs itself in a child process with CHROMIUM_PATH set to
// a file that does not exist: New must skip, and with CI=true it must fail.
func TestMissingBrowser(t *testing.T) {
	if os.Getenv("BROWSERTEST_CHILD") == "missing" {
		browsertest.New(t)
		t.Fatal("New returned without a browser")
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingBrowser$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "BROWSERTEST_CHILD=missing", "CHROMIUM_PATH=/nonexistent/chromium", "CI="+ci)
		out, err := cmd.CombinedOutput()
		if !strings.Contains(string(out), "scripts/install-chromium") {
			t.Errorf("CI=%q: output has no install hint:\n%s", ci, out)
		}
		if ci == "true" {
			if err == nil || !strings.Contains(string(out), "--- FAIL") {
				t.Errorf("CI=true: want a failed test, got err=%v:\n%s", err, out)
			}
		} else if err != nil || !strings.Contains(string(out), "--- SKIP") {
			t.Errorf("CI unset: want a skipped test, got err=%v:\n%s", err, out)
		}
	}
}

// TestRunFailure runs itself in a child process, where an action times out:
// Run must fail the test, name the timeout, and save a screenshot first.
func TestRunFailure(t *testing.T) {
	if os.Getenv("BROWSERTEST_CHILD") == "runfail" {
		srv := serve(t)
		b := browsertest.New(t)
		b.Timeout = time.Second
		b.Run(chromedp.Navigate(srv.URL + "/bad"))
		b.Run(chromedp.WaitVisible(chromedp.CSS("#does-not-exist")))
		t.Fatal("Run returned after a failed action")
	}
	if _, err := os.Stat(browsertest.DefaultChromium); err != nil && os.Getenv("CHROMIUM_PATH") == "" {
		t.Skip("no chromium; run scripts/install-chromium")
	}
	shots := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunFailure$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "BROWSERTEST_CHILD=runfail", "BROWSERTEST_SHOTS="+shots)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the child test passed:\n%s", out)
	}
	for _, want := range []string{"--- FAIL", "deadline exceeded", "timeout 1s", "screenshot: " + shots, "boom-on-load"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output has no %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "Run returned after a failed action") {
		t.Errorf("Run did not stop the test:\n%s", out)
	}
	pngs, _ := filepath.Glob(filepath.Join(shots, "TestRunFailure", "*-failure.png"))
	if len(pngs) != 1 {
		t.Errorf("failure screenshots = %q, want one", pngs)
	}
}
