package appliance_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"ihos/appliance"
	"ihos/internal/browsertest"
	"ihos/internal/node"
	"ihos/internal/web"
)

// TestConsoleBrowser drives the LAN console in a real headless chromium against
// a real demo appliance: login (wrong password first), creating a department
// through the form (empty required fields first), finding it with the search
// box, disabling it through the confirm dialog, and finding the disable in the
// audit log.
func TestConsoleBrowser(t *testing.T) {
	b := browsertest.New(t)

	dir := t.TempDir()
	credFile := filepath.Join(dir, "initial-credentials.json")
	a, err := appliance.New(context.Background(), appliance.Config{
		Config:      node.Config{DataDir: filepath.Join(dir, "data"), HTTP: "127.0.0.1:0"},
		Demo:        true,
		Credentials: credFile,
	})
	if err != nil {
		t.Fatalf("appliance.New: %v", err)
	}
	t.Cleanup(a.Close)
	srv := httptest.NewServer(web.Middleware(a.Handler))
	t.Cleanup(srv.Close)
	password := consoleCredential(t, credFile, "console")

	// Every confirm() the page opens is recorded and accepted.
	dialogs := make(chan string, 10)
	dctx, stopDialogs := context.WithCancel(b.Ctx)
	t.Cleanup(stopDialogs)
	dialogEvents := chromedp.Events(dctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogEvents {
			if err != nil {
				return
			}
			select {
			case dialogs <- ev.Message:
			default:
			}
			chromedp.Call(dctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()

	text := func(sel string) string {
		t.Helper()
		return strings.TrimSpace(browsertest.Get(b, chromedp.Text(chromedp.CSS(sel))))
	}
	eval := func(js string) string {
		t.Helper()
		return browsertest.Get(b, chromedp.Evaluate[string](js))
	}
	path := func() string {
		t.Helper()
		u, err := url.Parse(browsertest.Get(b, chromedp.Location()))
		if err != nil {
			t.Fatal(err)
		}
		return u.RequestURI()
	}
	// clickAndLoad clicks and waits for the page the click loads.
	clickAndLoad := func(sel string) {
		t.Helper()
		browsertest.Get(b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel))))
	}
	status := func() int {
		t.Helper()
		return browsertest.Get(b, chromedp.Evaluate[int](`performance.getEntriesByType('navigation')[0].responseStatus`))
	}

	// Anonymous: the console sends us to the login page, remembering where we were going.
	b.Run(chromedp.Navigate(srv.URL + "/console/"))
	if got := path(); got != "/console/login?next=%2Fconsole%2F" {
		t.Errorf("anonymous /console/ ended at %q, want the login page", got)
	}
	if got := browsertest.Get(b, chromedp.Title()); !strings.Contains(got, "登录") || !strings.Contains(got, appliance.Product) {
		t.Errorf("login page title = %q", got)
	}
	b.Screenshot("login")

	// A wrong password: the Chinese message, the username kept, still on the login page.
	b.Run(
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), "wrong-password-1"),
	)
	clickAndLoad("#login")
	if got := text(".flash.err"); got != "用户名或密码错误" {
		t.Errorf("wrong password message = %q, want 用户名或密码错误", got)
	}
	if got := status(); got != 401 {
		t.Errorf("wrong password status = %d, want 401", got)
	}
	if got := browsertest.Get(b, chromedp.Value(chromedp.ID("username"))); got != "admin" {
		t.Errorf("username after a failed login = %q, want it kept", got)
	}
	if got := browsertest.Get(b, chromedp.Value(chromedp.ID("password"))); got != "" {
		t.Errorf("password after a failed login = %q, want it cleared", got)
	}
	b.Screenshot("login-wrong-password")

	// The right password lands on the page we first asked for.
	b.Run(chromedp.SendKeys(chromedp.ID("password"), password))
	clickAndLoad("#login")
	if got := path(); got != "/console/" {
		t.Fatalf("after login at %q, want /console/", got)
	}
	if got := text(".topbar .user"); got != "系统管理员（系统管理员）" {
		t.Errorf("top bar user = %q", got)
	}
	if got := text("main.content h1"); got != "首页" {
		t.Errorf("home heading = %q", got)
	}
	if got := text(".cards"); !strings.Contains(got, "科室信息管理") || !strings.Contains(got, "15") {
		t.Errorf("home cards = %q, want 科室信息管理 with the 15 demo departments", got)
	}
	b.Screenshot("home")

	// 科室信息管理 → 新增科室.
	clickAndLoad(`nav.sidebar a[href="/console/r/departments"]`)
	if got := text("main.content h1"); got != "科室信息管理" {
		t.Errorf("list heading = %q", got)
	}
	if got := text("nav.sidebar a.active"); got != "科室信息管理" {
		t.Errorf("active menu item = %q", got)
	}
	if got := eval(`String(document.querySelectorAll('#grid tbody tr').length)`); got != "15" {
		t.Errorf("department rows = %s, want the 15 demo departments", got)
	}
	b.Screenshot("departments")
	if got := text("#new"); got != "新增科室" {
		t.Errorf("new button = %q", got)
	}
	clickAndLoad("#new")
	if got := text("main.content h1"); got != "新增科室" {
		t.Errorf("form heading = %q", got)
	}
	b.Screenshot("department-new")

	// Saving the empty form shows the form again with a Chinese message under
	// every required field.
	clickAndLoad("#save")
	if got := path(); got != "/console/r/departments/new" {
		t.Errorf("empty form submit ended at %q, want the form again", got)
	}
	if got := status(); got != 400 {
		t.Errorf("empty form status = %d, want 400", got)
	}
	if got := text(".flash.err"); got != "输入有误，请检查标出的字段" {
		t.Errorf("empty form message = %q", got)
	}
	han := regexp.MustCompile(`\p{Han}`)
	for _, f := range []string{"institution_id", "code", "name", "category"} {
		msg := text(`.field.has-error:has(#f-` + f + `) .field-error`)
		if !han.MatchString(msg) {
			t.Errorf("field %s error = %q, want a Chinese message", f, msg)
		}
	}
	if got := eval(`String(document.querySelectorAll('.field.has-error').length)`); got != "4" {
		t.Errorf("fields with errors = %s, want the 4 required ones", got)
	}
	b.Screenshot("department-new-empty")

	// Fill it in as a user would and save.
	const code, name = "ZLFLK", "肿瘤放疗科"
	inst := eval(`[...document.querySelectorAll('#f-institution_id option')].find(o => o.textContent === '示例市第一人民医院').value`)
	if inst == "" {
		t.Fatal("示例市第一人民医院 is not among the 所属机构 options")
	}
	b.Run(
		chromedp.SetValue(chromedp.ID("f-institution_id"), inst),
		chromedp.SendKeys(chromedp.ID("f-code"), code),
		chromedp.SendKeys(chromedp.ID("f-name"), name),
		chromedp.SetValue(chromedp.ID("f-category"), "临床"),
		chromedp.SendKeys(chromedp.ID("f-location"), "放疗中心 1 层"),
	)
	b.Screenshot("department-new-filled")
	clickAndLoad("#save")
	if got := path(); got != "/console/r/departments?msg=created" {
		t.Errorf("after create at %q, want the list", got)
	}
	if got := text(".flash.ok"); got != "已新增" {
		t.Errorf("create flash = %q, want 已新增", got)
	}
	b.Screenshot("department-created")

	// Search for it by name: it is the only row.
	b.Run(chromedp.SendKeys(chromedp.ID("q"), name))
	clickAndLoad("#search")
	rows := browsertest.Get(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#grid tbody tr')].map(r => r.innerText)`))
	if len(rows) != 1 || !strings.Contains(rows[0], name) || !strings.Contains(rows[0], code) ||
		!strings.Contains(rows[0], "示例市第一人民医院") || !strings.Contains(rows[0], "启用") {
		t.Fatalf("search for %s: rows %q, want only the new department, enabled", name, rows)
	}
	if got := text("p.muted"); got != "共 1 条" {
		t.Errorf("search count = %q, want 共 1 条", got)
	}
	b.Screenshot("department-search")

	// 停用 asks first; accepting it disables the department and keeps the search.
	if got := text("#grid tbody tr form[action$='/disable'] button"); got != "停用" {
		t.Errorf("row action = %q, want 停用", got)
	}
	clickAndLoad("#grid tbody tr form[action$='/disable'] button")
	select {
	case msg := <-dialogs:
		if msg != "确定停用吗？" {
			t.Errorf("confirm dialog = %q, want 确定停用吗？", msg)
		}
	default:
		t.Error("停用 did not ask for confirmation")
	}
	if got := text(".flash.ok"); got != "已停用" {
		t.Errorf("disable flash = %q, want 已停用", got)
	}
	if got := browsertest.Get(b, chromedp.Value(chromedp.ID("q"))); got != name {
		t.Errorf("search box after disable = %q, want the search kept", got)
	}
	rows = browsertest.Get(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#grid tbody tr')].map(r => r.innerText)`))
	if len(rows) != 1 || !strings.Contains(rows[0], name) {
		t.Fatalf("after disable: rows %q, want the department alone", rows)
	}
	if got := text("#grid tbody tr .tag"); got != "停用" {
		t.Errorf("status after disable = %q, want 停用", got)
	}
	if got := text("#grid tbody tr form[action$='/enable'] button"); got != "启用" {
		t.Errorf("row action after disable = %q, want 启用", got)
	}
	b.Screenshot("department-disabled")

	// The audit log's newest entry is the disable, naming the department.
	clickAndLoad(`nav.sidebar a[href="/console/audit"]`)
	if got := text("main.content h1"); got != "审计日志" {
		t.Errorf("audit heading = %q", got)
	}
	first := browsertest.Get(b, chromedp.Evaluate[[]string](`[...document.querySelector('#audit > tbody > tr').cells].map(c => c.innerText.trim())`))
	if len(first) != 7 || first[2] != "admin" || first[3] != "停用" || !strings.Contains(first[4], name) {
		t.Errorf("newest audit entry = %q, want admin 停用 …%s", first, name)
	}
	b.Screenshot("audit")

	// Its 前后对比 shows, in Chinese, the one field that changed.
	b.Run(chromedp.Click(chromedp.CSS("#audit tbody tr details summary")))
	diff := browsertest.Get(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#audit tbody tr:first-child table.diff tbody tr')].map(r => r.innerText.replace(/\s+/g, ' ').trim())`))
	if len(diff) != 1 || diff[0] != "状态 启用 停用" {
		t.Errorf("disable diff rows = %q, want only 状态 启用 → 停用", diff)
	}
	b.Screenshot("audit-diff")

	// Filtering by 停用 finds exactly that entry.
	b.Run(chromedp.SetValue(chromedp.CSS(`select[name="action"]`), "disable"))
	clickAndLoad(`form.filters button[type="submit"]`)
	rows = browsertest.Get(b, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#audit > tbody > tr')].map(r => r.innerText)`))
	if len(rows) != 1 || !strings.Contains(rows[0], "停用科室："+name) {
		t.Errorf("audit filtered by 停用: %q, want the one disable of %s", rows, name)
	}
	b.Screenshot("audit-disable")

	// Chromium logs the 401 of the failed login and the 400 of the rejected
	// form as failed resource loads; those statuses are intended (and checked
	// above). Anything else is a fault of the page.
	expected := []string{
		"status of 401 (Unauthorized) (" + srv.URL + "/console/login)",
		"status of 400 (Bad Request) (" + srv.URL + "/console/r/departments/new)",
	}
	for _, e := range b.ConsoleErrors() {
		if !strings.HasPrefix(e, "log network: Failed to load resource: the server responded with a ") ||
			!slices.ContainsFunc(expected, func(x string) bool { return strings.HasSuffix(e, x) }) {
			t.Errorf("console error: %s", e)
		}
	}
}

// consoleCredential returns the password first start generated for key.
func consoleCredential(t *testing.T, file, key string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	var creds map[string]appliance.Credential
	if err := json.Unmarshal(raw, &creds); err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	c, ok := creds[key]
	if !ok || c.Password == "" {
		t.Fatalf("credentials file has no password for %q: %s", key, raw)
	}
	return c.Password
}
