package appliance_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"ihos"
	"ihos/internal/browsertest"
)

// 对账管理 on the console shows the replica of the cloud's runs: per side the
// tally, the 3201 result, and each mismatch with its suggested action.
func TestReconcileConsoleBrowser(t *testing.T) {
	b := browsertest.New(t)
	dir := t.TempDir()
	in := startAppliance(t, filepath.Join(dir, "data"), filepath.Join(dir, "creds.json"))
	db := in.app.Node.DB
	ctx := context.Background()
	creds := in.creds["console_hospital_admin"]
	day := time.Now().In(ihos.Shanghai).AddDate(0, 0, -1).Format(time.DateOnly)
	now := ihos.FormatTime(time.Now())
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO reconcile_runs (id, hospital_id, day, source, status, ours_count, ours_pay, theirs_count, theirs_pay, matched, mismatches, started_at, finished_at, updated_at)
		VALUES ('run-ch', 'h1', ?, 'channel', 'done', 3, 30000, 3, 30000, 3, 0, ?, ?, ?)`, day, now, now, now)
	exec(`INSERT INTO reconcile_runs (id, hospital_id, day, source, status, ours_count, ours_pay, theirs_count, theirs_pay, matched, mismatches, stmt_status, stmt_detail, started_at, finished_at, updated_at)
		VALUES ('run-ins', 'h1', ?, 'insurance', 'done', 2, 9000, 2, 9000, 2, 0, 'balanced', '310/390 对账一致', ?, ?, ?)`, day, now, now, now)
	exec(`INSERT INTO reconcile_runs (id, hospital_id, day, source, status, ours_count, ours_pay, theirs_count, theirs_pay, matched, mismatches, started_at, finished_at, updated_at)
		VALUES ('run-his', 'h1', ?, 'his', 'done', 2, 9050, 1, 2300, 1, 1, ?, ?, ?)`, day, now, now, now)
	exec(`INSERT INTO reconcile_items (id, hospital_id, run_id, day, source, record_key, record_kind, kind, ours, theirs, ours_ref, ours_status, suggestion, created_at, updated_at)
		VALUES ('item-1', 'h1', 'run-his', ?, 'his', 'pay-77', 'payment', 'missing_theirs', 6750, NULL, 'pay-77', 'paid', '重发费用消息', ?, ?)`, day, now, now)

	b.Run(chromedp.Navigate(in.srv.URL+"/console/login"),
		chromedp.SendKeys(chromedp.ID("username"), creds.Username), chromedp.SendKeys(chromedp.ID("password"), creds.Password))
	browsertest.Get(b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS("#login"))))
	browsertest.Get(b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(`nav.sidebar a[href="/console/x/reconcile"]`))))
	b.Run(chromedp.Navigate(in.srv.URL + "/console/x/reconcile?day=" + day))
	body := browsertest.Get(b, chromedp.Text(chromedp.CSS("main.content")))
	for _, want := range []string{"对账管理", "重发费用消息", "67.50", "pay-77（已支付）"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	b.Screenshot("reconcile")
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("browser console errors: %v", errs)
	}
}
