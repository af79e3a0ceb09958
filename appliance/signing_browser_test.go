package appliance_test

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"ihos"
	"ihos/appliance"
	"ihos/internal/browsertest"
	"ihos/internal/node"
	"ihos/internal/web"
)

// TestSigningConsoleBrowser drives the page 签名验签服务 in a real headless
// chromium: the API switched off and on through the confirm dialog, an
// application created with its token shown once, a certificate file (DER)
// imported into the store and found by search, and the time source pointed at
// an NTP server 5 s ahead: signing stops and the page says why.
func TestSigningConsoleBrowser(t *testing.T) {
	b := browsertest.New(t)
	dir := t.TempDir()
	credFile := filepath.Join(dir, "creds.json")
	a, err := appliance.New(context.Background(), appliance.Config{
		Config: node.Config{DataDir: filepath.Join(dir, "data"), HTTP: "127.0.0.1:0", LogLevel: "warn"}, Demo: true, Credentials: credFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	srv := httptest.NewServer(web.Middleware(a.Handler))
	t.Cleanup(srv.Close)
	password := consoleCredential(t, credFile, "console")
	// A doctor's e-signature certificate, for the staff tab.
	if _, err := a.ESign.Enroll(ihos.WithActor(context.Background(), ihos.System), "D1001", "李医生", "246810"); err != nil {
		t.Fatal(err)
	}

	dialogs := make(chan string, 10)
	dctx, stopDialogs := context.WithCancel(b.Ctx)
	t.Cleanup(stopDialogs)
	go func() { // accept every confirm(), remembering what it asked
		for ev, err := range chromedp.Events(dctx, page.JavascriptDialogOpening) {
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
	confirmed := func(want string) {
		t.Helper()
		select {
		case msg := <-dialogs:
			if !strings.Contains(msg, want) {
				t.Errorf("confirm dialog %q, want it to mention %q", msg, want)
			}
		default:
			t.Errorf("no confirm dialog (%s)", want)
		}
	}
	text := func(sel string) string {
		t.Helper()
		return strings.TrimSpace(browsertest.Get(b, chromedp.Text(chromedp.CSS(sel))))
	}
	load := func(sel string) {
		t.Helper()
		browsertest.Get(b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel))))
	}
	exists := func(sel string) bool {
		t.Helper()
		return browsertest.Get(b, chromedp.Evaluate[bool](`document.querySelector(`+strconv.Quote(sel)+`) !== null`))
	}

	b.Run(chromedp.Navigate(srv.URL+"/console/login"),
		chromedp.SendKeys(chromedp.ID("username"), "admin"), chromedp.SendKeys(chromedp.ID("password"), password))
	load("#login")
	load(`nav.sidebar a[href="/console/x/signing"]`)
	if got := text("main.content h1"); got != "签名验签服务" {
		t.Fatalf("heading %q", got)
	}
	if got := text("#api-status .num"); got != "运行中" {
		t.Errorf("API status %q", got)
	}
	if got := text("#signing-keys"); !strings.Contains(got, "签名验签服务器") || !strings.Contains(got, "时间戳服务") {
		t.Errorf("keys table %q", got)
	}
	b.Screenshot("signing-overview")

	// The API switch, through the confirm dialog.
	load("#api-off")
	confirmed("停用签名验签接口")
	if got := text("#api-status .num"); got != "已停用" {
		t.Errorf("after switching off: %q", got)
	}
	if got := text(".flash.ok"); !strings.Contains(got, "签名验签接口已停用") {
		t.Errorf("flash after switching off: %q", got)
	}
	b.Screenshot("signing-api-off")
	load("#api-on")
	confirmed("启用签名验签接口")
	if got := text("#api-status .num"); got != "运行中" {
		t.Errorf("after switching on: %q", got)
	}

	// An application: the token is shown once.
	load(`#signing-tabs a[href$="tab=apps"]`)
	b.Run(chromedp.SendKeys(chromedp.ID("app-name"), "emr"), chromedp.SendKeys(chromedp.ID("app-note-"), "电子病历系统"))
	load("#app-create-submit")
	token := browsertest.Get(b, chromedp.Value(chromedp.ID("token-value")))
	if len(token) < 40 || !strings.Contains(text("#signing-notice"), "只显示这一次") {
		t.Fatalf("token %q, notice %q", token, text("#signing-notice"))
	}
	if got := text("#apps"); !strings.Contains(got, "emr") || !strings.Contains(got, "电子病历系统") || !strings.Contains(got, "demo") {
		t.Errorf("applications %q", got)
	}
	b.Screenshot("signing-app-token")
	b.Run(chromedp.Click(chromedp.CSS(`[data-copy="#token-value"]`)))
	browsertest.Get(b, chromedp.Poll[bool](`document.querySelector('[data-copy]').textContent === '已复制'`))
	if code := svsSign(t, srv.URL, token); code != 200 {
		t.Errorf("the shown token signs: %d", code)
	}
	b.Run(chromedp.Reload())
	if exists("#token-value") {
		t.Error("the token is shown again after a reload")
	}

	// The certificate store: a DER file read by the page's script into the
	// text box as PEM, imported, found by search, opened.
	_, clientPEM := testCerts(t, "影像科 PACS 接口")
	blk, _ := pem.Decode([]byte(clientPEM))
	derFile := filepath.Join(dir, "pacs.cer")
	if err := os.WriteFile(derFile, blk.Bytes, 0o600); err != nil {
		t.Fatal(err)
	}
	load(`#signing-tabs a[href$="tab=certs"]`)
	b.Run(chromedp.SetUploadFiles(chromedp.ID("cert-file"), []string{derFile}))
	browsertest.Get(b, chromedp.Poll[bool](`document.querySelector('#cert-pem-input').value.startsWith('-----BEGIN CERTIFICATE-----')`))
	load("#cert-import-submit")
	if got := text("#signing-notice"); !strings.Contains(got, "证书已导入证书库：影像科 PACS 接口") {
		t.Fatalf("after the import: %q", got)
	}
	b.Run(chromedp.SendKeys(chromedp.CSS(`#cert-search input[name=q]`), "PACS"))
	load(`#cert-search button[type=submit]`)
	if got := text("#certs tbody"); !strings.Contains(got, "影像科 PACS 接口") || !strings.Contains(got, "admin") {
		t.Errorf("search result %q", got)
	}
	b.Screenshot("signing-cert-search")
	load(`#certs tbody a`)
	if got := text("#cert-pem"); !strings.HasPrefix(got, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("detail PEM %q", ihos.Truncate(got, 80))
	}
	if got := text("#cert-detail"); !strings.Contains(got, "测试 CA 机构") || !strings.Contains(got, "SM3 指纹") {
		t.Errorf("detail %q", got)
	}
	b.Screenshot("signing-cert-detail")

	// The other tabs, for the record.
	caPEM, _ := testCerts(t, "第三方")
	load(`#signing-tabs a[href$="tab=trust"]`)
	b.Run(chromedp.SendKeys(chromedp.ID("trust-chain"), "thirdca"), chromedp.SetValue(chromedp.ID("trust-pem"), caPEM),
		chromedp.SendKeys(chromedp.ID("trust-crl"), "http://127.0.0.1:1/thirdca.crl"))
	load("#trust-import-submit")
	if got := text("#trust"); !strings.Contains(got, "thirdca") || !strings.Contains(got, "第三方 根 CA") {
		t.Errorf("trust chains %q", got)
	}
	b.Screenshot("signing-trust")
	load(`#signing-tabs a[href$="tab=log"]`)
	if got := text("#signing-log"); !strings.Contains(got, "emr") || !strings.Contains(got, "数据签名") {
		t.Errorf("log %q", got)
	}
	b.Screenshot("signing-log")
	load(`#signing-tabs a[href$="tab=staff"]`)
	if got := text("#staff-certs"); !strings.Contains(got, "李医生") || !strings.Contains(got, "有效") {
		t.Errorf("staff certificates %q", got)
	}
	b.Screenshot("signing-staff")
	load(`#signing-tabs a[href$="tab=backup"]`)
	b.Screenshot("signing-backup")

	// The time source: a server 5 s ahead stops signing, and the page says so.
	ntpAddr := serveNTP(t, 5e9)
	load(`#signing-tabs a[href$="tab=overview"]`)
	b.Run(chromedp.SetValue(chromedp.ID("ntp-servers"), ntpAddr), chromedp.SetValue(chromedp.ID("ntp-max"), "1000"))
	if !browsertest.Get(b, chromedp.Evaluate[bool](`document.querySelector('#ntp-enabled').checked`)) {
		b.Run(chromedp.Click(chromedp.ID("ntp-enabled")))
	}
	load("#ntp-save")
	if got := text("#clock-status .num"); got != "签名已暂停" {
		t.Errorf("time source status %q", got)
	}
	offset := text("#clock-offset")
	m := regexp.MustCompile(`^\+(\d+)\.\d 毫秒$`).FindStringSubmatch(offset)
	if n, _ := strconv.Atoi(safeIndex(m, 1)); n < 4900 || n > 5100 {
		t.Errorf("offset %q, want about +5000 ms", offset)
	}
	if got := text("#clock-reason"); !regexp.MustCompile(`相差 (4\.9|5\.0)\d\d 秒`).MatchString(got) || !strings.Contains(got, "暂停签名和时间戳服务") {
		t.Errorf("reason %q", got)
	}
	if got := text("#signing-notice"); !strings.Contains(got, "时间源设置已保存并立即生效") {
		t.Errorf("notice %q", got)
	}
	if code := svsSign(t, srv.URL, token); code != 503 {
		t.Errorf("signing with the clock 5 s off: %d", code)
	}
	b.Screenshot("signing-clock-stopped")
	load("#ntp-check")
	if got := text("#signing-notice"); !strings.Contains(got, "校时完成") || !regexp.MustCompile(`相差 \+(49|50)\d\d\.\d 毫秒`).MatchString(got) {
		t.Errorf("after 立即校时: %q", got)
	}
	if got := text("#clock-reason"); !strings.Contains(got, "暂停签名和时间戳服务") {
		t.Errorf("reason after 立即校时 %q", got)
	}
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("browser console errors: %v", errs)
	}
}

func safeIndex(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}
