package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"ihos/internal/browsertest"
)

// The console's 数据同步 page shows the live link to the cloud, and its 核对
// button compares both sides.
func TestConsoleSyncPage(t *testing.T) {
	b := browsertest.New(t)
	s := start(t)
	var creds map[string]struct{ Username, Password string }
	raw, _ := os.ReadFile(filepath.Join(filepath.Dir(s.appliance.Node.Config.DataDir), "creds.json"))
	if err := json.Unmarshal(raw, &creds); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "demo data replicated", func() bool {
		var n int
		s.cloud.Node.DB.QueryRow(`SELECT COUNT(*) FROM staff WHERE hospital_id = 'h1'`).Scan(&n)
		return n >= 36
	})
	load := func(sel string) {
		t.Helper()
		browsertest.Get(b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel))))
	}
	text := func(sel string) string {
		t.Helper()
		return strings.TrimSpace(browsertest.Get(b, chromedp.Text(chromedp.CSS(sel))))
	}
	b.Run(chromedp.Navigate(s.appURL+"/console/login"),
		chromedp.SendKeys(chromedp.ID("username"), creds["console"].Username),
		chromedp.SendKeys(chromedp.ID("password"), creds["console"].Password))
	load("#login")
	b.Run(chromedp.Navigate(s.appURL + "/console/x/sync"))
	if got := text("main.content h1"); got != "数据同步" {
		t.Fatalf("page title %q", got)
	}
	if got := text(".cards .card .num"); got != "已连接" {
		t.Errorf("link state %q, want 已连接", got)
	}
	load("#verify")
	if got := text(".flash.ok"); !strings.Contains(got, "核对完成") {
		t.Errorf("flash after verify %q", got)
	}
	if got := text("#verify-result"); !strings.Contains(got, "两侧数据一致") {
		t.Errorf("verify result %q", got)
	}
	b.Screenshot("sync-page")
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
