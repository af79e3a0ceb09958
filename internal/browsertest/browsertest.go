// Package browsertest is the shared harness for the browser tests of the
// project. It starts a headless Debian chromium with chromedp, runs actions
// with a timeout, saves screenshots and collects the JavaScript errors of the
// page.
//
// A typical test:
//
//	b := browsertest.New(t)
//	b.Run(chromedp.Navigate(srv.URL), chromedp.Click(chromedp.CSS("#save")))
//	msg := browsertest.Get(b, chromedp.Text(chromedp.CSS("#msg")))
//	b.Screenshot("after-save")
//	if errs := b.ConsoleErrors(); len(errs) > 0 {
//		t.Errorf("JS errors: %q", errs)
//	}
//
// Install the browser and the CJK fonts with scripts/install-chromium. Without
// a browser New skips the test, except when CI=true, where it fails it.
//
// Set BROWSERTEST_SHOTS to a folder to keep the screenshots, in
// $BROWSERTEST_SHOTS/<TestName>/. Without it they go to t.TempDir() and are
// removed with it. Set CHROMIUM_PATH to use another browser binary.
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// DefaultChromium is the browser that New starts when CHROMIUM_PATH is empty.
const DefaultChromium = "/usr/bin/chromium"

// DefaultTimeout is the time that one call of Run, Get or Screenshot may take.
const DefaultTimeout = 30 * time.Second

// Browser is a headless chromium tab that belongs to one test.
type Browser struct {
	// Ctx is the chromedp context of the tab. Use it with chromedp.Run or
	// chromedp.Do for what Run and Get do not cover; it has no timeout of
	// its own, so prefer Run and Get.
	Ctx context.Context

	// Timeout limits each call of Run, Get and Screenshot. New sets it to
	// DefaultTimeout; a test may change it.
	Timeout time.Duration

	t testing.TB

	mu      sync.Mutex
	errs    []string
	shotDir string
	shotSeq int
}

// New starts a headless Debian chromium (/usr/bin/chromium, or $CHROMIUM_PATH)
// with --headless --no-sandbox --disable-gpu --disable-background-networking
// --no-first-run --disable-quic --disable-component-update --disable-sync, a
// fresh --user-data-dir in t.TempDir() and a 1280x900 window and viewport, and
// returns its tab. The browser stops when the test ends (t.Cleanup).
//
// When the browser is missing New calls t.Skip with a hint to run
// scripts/install-chromium, except when the environment variable CI is "true":
// then a missing browser fails the test. A browser that is there but does not
// start always fails the test.
func New(t testing.TB) *Browser {
	t.Helper()

	path := os.Getenv("CHROMIUM_PATH")
	if path == "" {
		path = DefaultChromium
	}
	if err := checkExecutable(path); err != nil {
		msg := fmt.Sprintf("browsertest: no chromium: %v; install it with scripts/install-chromium "+
			"(Debian packages chromium and a CJK font), or set CHROMIUM_PATH", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: a missing browser is a failure, not a skip)")
		}
		t.Skip(msg)
	}

	// TempDir first, so that its cleanup runs after the browser has stopped.
	dataDir := t.TempDir()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Chinese browser UI (file pickers, date inputs), as on hospital PCs.
		chromedp.Flag("lang", "zh-CN"),
		chromedp.UserDataDir(dataDir),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)

	b := &Browser{t: t, Timeout: DefaultTimeout}
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	b.Ctx = ctx
	t.Cleanup(func() {
		cancel()      // closes the browser
		allocCancel() // waits until the process has exited
	})

	// The first Run binds the browser's life to its context, so it must not
	// have a timeout; guard the start with a timer instead.
	started := make(chan error, 1)
	// In headless mode the window frame takes part of the 1280x900 window,
	// so set the viewport itself to 1280x900 too.
	go func() { started <- chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("browsertest: starting %s: %v", path, err)
		}
	case <-time.After(DefaultTimeout):
		t.Fatalf("browsertest: %s did not start within %v", path, DefaultTimeout)
	}
	return b
}

// Run runs the actions in order, each call limited by b.Timeout. On an error
// it saves a screenshot and then fails the test with t.Fatal.
func (b *Browser) Run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, b.Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(err)
	}
}

// Get runs one action that returns a value, such as chromedp.Text or
// chromedp.Evaluate, and returns the value. It fails the test as Run does.
// (It is a function and not a method because Go methods cannot be generic.)
func Get[T any](b *Browser, action chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, b.Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		b.fail(err)
	}
	return v
}

// Text returns the trimmed text of the first element matching the CSS
// selector sel (waiting for it, as chromedp does).
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(Get(b, chromedp.Text(chromedp.CSS(sel))))
}

// Visible waits until the element matching sel is visible.
func (b *Browser) Visible(sel string) {
	b.t.Helper()
	b.Run(chromedp.WaitVisible(chromedp.CSS(sel)))
}

// Click clicks the element matching sel.
func (b *Browser) Click(sel string) {
	b.t.Helper()
	b.Run(chromedp.Click(chromedp.CSS(sel)))
}

// WaitText waits up to 15 s until the text of sel contains want; otherwise
// it saves a screenshot and fails the test with what the element said.
func (b *Browser) WaitText(sel, want string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := b.Text(sel)
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			b.Screenshot("failure")
			b.t.Fatalf("%s: %q, want %q", sel, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Screenshot saves a full-page PNG named after name in the test's screenshot
// folder (t.TempDir(), or $BROWSERTEST_SHOTS/<TestName>/ when that is set),
// logs the path and returns it. It fails the test if it cannot.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	path, err := b.screenshot(name)
	if err != nil {
		b.t.Fatalf("browsertest: screenshot %q: %v", name, err)
	}
	b.t.Logf("browsertest: screenshot %s", path)
	return path
}

// ConsoleErrors returns, in order, the uncaught JavaScript exceptions and
// unhandled promise rejections, the console.error and console.assert failures,
// and the browser's error log entries (such as a failed resource load, but not
// the 404 of /favicon.ico) of the tab since New. An error that a timer or a later event throws shows up only
// once it has happened, so wait for the page's visible result first.
func (b *Browser) ConsoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errs...)
}

// fail saves a screenshot and fails the test with err and the page's errors.
func (b *Browser) fail(err error) {
	b.t.Helper()
	msg := fmt.Sprintf("browsertest: %v", err)
	if errors.Is(err, context.DeadlineExceeded) {
		msg += fmt.Sprintf(" (timeout %v)", b.Timeout)
	}
	if path, serr := b.screenshot("failure"); serr != nil {
		msg += fmt.Sprintf("\n  no screenshot: %v", serr)
	} else {
		msg += "\n  screenshot: " + path
		if os.Getenv("BROWSERTEST_SHOTS") == "" {
			msg += " (removed after the test; set BROWSERTEST_SHOTS=<dir> to keep it)"
		}
	}
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		msg += "\n  console errors:\n    " + strings.Join(errs, "\n    ")
	}
	b.t.Fatal(msg)
}

var unsafeChars = regexp.MustCompile(`[^\p{L}\p{N}._-]+`)

// screenshot saves a full-page PNG and returns its path.
func (b *Browser) screenshot(name string) (string, error) {
	dir, err := b.shotsDir()
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	b.shotSeq++
	seq := b.shotSeq
	b.mu.Unlock()
	clean := strings.Trim(unsafeChars.ReplaceAllString(name, "_"), "_")
	if clean == "" {
		clean = "shot"
	}
	path := filepath.Join(dir, fmt.Sprintf("%02d-%s.png", seq, clean))

	// A fresh timeout: the action that failed may have used up its own.
	ctx, cancel := context.WithTimeout(b.Ctx, b.Timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, fullPagePNG())
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// shotsDir returns the folder for the test's screenshots, and makes it.
func (b *Browser) shotsDir() (string, error) {
	b.mu.Lock()
	dir := b.shotDir
	b.mu.Unlock()
	if dir != "" {
		return dir, nil
	}
	if root := os.Getenv("BROWSERTEST_SHOTS"); root != "" {
		dir = filepath.Join(root, unsafeChars.ReplaceAllString(b.t.Name(), "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
	} else {
		dir = b.t.TempDir()
	}
	b.mu.Lock()
	b.shotDir = dir
	b.mu.Unlock()
	return dir, nil
}

// fullPagePNG captures the whole scrollable page, not only the viewport.
func fullPagePNG() chromedp.Action[[]byte] {
	return func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		m, err := cdp.Call(ctx, t, page.GetLayoutMetrics, cdp.Empty{})
		if err != nil {
			return nil, err
		}
		params := page.CaptureScreenshotParams{
			Format:                page.CaptureScreenshotFormatPng,
			FromSurface:           new(true),
			CaptureBeyondViewport: new(true),
		}
		if cs := m.CSSContentSize; cs != nil && cs.Width > 0 && cs.Height > 0 {
			params.Clip = &page.Viewport{
				Width:  math.Ceil(cs.Width),
				Height: math.Ceil(cs.Height),
				Scale:  1,
			}
		}
		res, err := cdp.Call(ctx, t, page.CaptureScreenshot, params)
		if err != nil {
			return nil, err
		}
		return res.Data, nil
	}
}

// listen runs on chromedp's reader goroutine for every event of the tab: it
// must be quick and must not run commands.
func (b *Browser) listen(ev any) {
	var msg string
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = exceptionText(e.ExceptionDetails)
	case *runtime.EventConsoleAPICalled:
		switch e.Type {
		case runtime.ConsoleAPICalledTypeError:
			msg = "console.error: " + argsText(e.Args) + stackPlace(e.StackTrace)
		case runtime.ConsoleAPICalledTypeAssert:
			msg = "console.assert: " + argsText(e.Args) + stackPlace(e.StackTrace)
		}
	case *log.EventEntryAdded:
		en := e.Entry
		// Console calls and exceptions arrive above as runtime events.
		// The 404 of the favicon that chromium asks for by itself is no
		// error of the page.
		if en != nil && en.Level == log.EntryLevelError && en.Source != log.EntrySourceJavascript &&
			!isFavicon(en.URL) {
			msg = "log " + string(en.Source) + ": " + en.Text
			if en.URL != "" {
				msg += " (" + en.URL + ")"
			}
		}
	}
	if msg == "" {
		return
	}
	b.mu.Lock()
	b.errs = append(b.errs, msg)
	b.mu.Unlock()
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "exception"
	}
	text := d.Text
	if d.Exception != nil {
		desc := valueText(d.Exception)
		desc, _, _ = strings.Cut(desc, "\n    at ") // the stack follows the message
		text = strings.TrimSpace(text + " " + desc)
	}
	where, line, col := d.URL, d.LineNumber, d.ColumnNumber
	if st := d.StackTrace; st != nil && len(st.CallFrames) > 0 {
		f := st.CallFrames[0]
		where, line, col = f.URL, f.LineNumber, f.ColumnNumber
	}
	if where != "" {
		text += fmt.Sprintf(" (%s:%d:%d)", where, line+1, col+1)
	}
	return text
}

func stackPlace(st *runtime.StackTrace) string {
	if st == nil || len(st.CallFrames) == 0 || st.CallFrames[0].URL == "" {
		return ""
	}
	f := st.CallFrames[0]
	return fmt.Sprintf(" (%s:%d:%d)", f.URL, f.LineNumber+1, f.ColumnNumber+1)
}

func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		parts = append(parts, valueText(a))
	}
	return strings.Join(parts, " ")
}

func valueText(o *runtime.RemoteObject) string {
	if o == nil {
		return "null"
	}
	if o.Type == runtime.RemoteObjectTypeString {
		var s string
		if json.Unmarshal([]byte(o.Value), &s) == nil {
			return s
		}
	}
	switch {
	case o.UnserializableValue != "":
		return string(o.UnserializableValue)
	case o.Description != "":
		return o.Description
	case len(o.Value) > 0:
		return string(o.Value)
	}
	return string(o.Type)
}

// isFavicon reports whether rawURL is the /favicon.ico of its site.
func isFavicon(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && u.Path == "/favicon.ico"
}

// checkExecutable reports why path is not an executable file.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}
