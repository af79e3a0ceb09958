package appliance_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"html"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ihos"
	"ihos/appliance"
	"ihos/certs"
	"ihos/certs/ntp"
	"ihos/internal/node"
	"ihos/internal/web"
)

// consoleUser is a browser-like client of the console: a session cookie, the
// page's CSRF token, and redirects left for the test to follow.
type consoleUser struct {
	t    testing.TB
	base string
	hc   *http.Client
	csrf string
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func consoleLogin(t testing.TB, base, username, password string) *consoleUser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	u := &consoleUser{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	resp, err := u.hc.PostForm(base+"/console/login", url.Values{"username": {username}, "password": {password}, "next": {"/console/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("console login %s: %d", username, resp.StatusCode)
	}
	_, body := u.get("/console/")
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the home page of %s", username)
	}
	u.csrf = html.UnescapeString(m[1])
	return u
}

func (u *consoleUser) get(path string) (int, string) {
	u.t.Helper()
	resp, err := u.hc.Get(u.base + path)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post submits a form with the CSRF token and returns the status and where it
// redirects.
func (u *consoleUser) post(path string, form url.Values) (int, string) {
	u.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", u.csrf)
	resp, err := u.hc.PostForm(u.base+path, form)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Location")
}

// action posts a signing page action and returns the page it leads to.
func (u *consoleUser) action(name string, form url.Values) string {
	u.t.Helper()
	code, loc := u.post("/console/x/signing/"+name, form)
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/x/signing?msg=") {
		u.t.Fatalf("%s: %d → %q", name, code, loc)
	}
	code, body := u.get(loc)
	if code != 200 {
		u.t.Fatalf("%s: the page after it: %d", name, code)
	}
	return body
}

// noticeText is the text of the page's notice (or "").
func noticeText(page string) string {
	i := strings.Index(page, `id="signing-notice"`)
	if i < 0 {
		return ""
	}
	rest := page[i:]
	if j := strings.Index(rest, "</div>\n\n"); j >= 0 {
		rest = rest[:j]
	}
	return html.UnescapeString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(rest, " "))
}

var tokenRE = regexp.MustCompile(`id="token-value" value="([^"]+)"`)

func svsToken(t testing.TB, credFile string) string {
	t.Helper()
	var creds struct {
		SVS struct {
			Token string `json:"token"`
		} `json:"svs"`
	}
	raw, _ := os.ReadFile(credFile)
	if err := json.Unmarshal(raw, &creds); err != nil || creds.SVS.Token == "" {
		t.Fatalf("no svs token in the credentials file: %s", raw)
	}
	return creds.SVS.Token
}

// svsSign calls /api/svs/sign with token and returns the status.
func svsSign(t testing.TB, base, token string) int {
	t.Helper()
	body := `{"data":"` + base64.StdEncoding.EncodeToString([]byte("处方 RX-1")) + `"}`
	req, _ := http.NewRequest("POST", base+"/api/svs/sign", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// serveNTP answers SNTP requests on a local UDP port with a clock skewed by
// skew (stratum 2).
func serveNTP(t testing.TB, skew time.Duration) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go ntp.Serve(pc, func() time.Time { return time.Now().Add(skew) })
	return pc.LocalAddr().String()
}

// testCerts makes a CA certificate and a client certificate it issued (ECDSA
// P-256), as PEM.
func testCerts(t testing.TB, cn string) (caPEM, clientPEM string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
		return n.Add(n, big.NewInt(1))
	}
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: cn + " 根 CA", Organization: []string{"测试 CA 机构"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(5 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: cn, Organization: []string{"测试医院"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour), BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, leafKey.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	return enc(caDER), enc(leafDER)
}

// The console page 签名验签服务: who may see and use it, every action, and the
// backup round trip.
func TestSigningConsole(t *testing.T) {
	dir := t.TempDir()
	credFile := filepath.Join(dir, "creds.json")
	in := startAppliance(t, filepath.Join(dir, "data"), credFile)
	login := func(key string) *consoleUser {
		return consoleLogin(t, in.srv.URL, in.creds[key].Username, in.creds[key].Password)
	}
	admin, auditor, dept := login("console"), login("console_auditor"), login("console_dept_admin")
	demoToken := svsToken(t, credFile)

	// Who sees it.
	code, page := admin.get("/console/x/signing")
	if code != 200 || !strings.Contains(page, "<h1>签名验签服务</h1>") || !strings.Contains(page, "运行中") ||
		!strings.Contains(page, "签名验签服务器") || !strings.Contains(page, "互联网医院时间戳服务") || !strings.Contains(page, `id="api-off"`) {
		t.Fatalf("the page for sysadmin: %d\n%s", code, page)
	}
	for _, tab := range []string{"overview", "apps", "trust", "certs", "log", "staff", "backup"} {
		if code, page := admin.get("/console/x/signing?tab=" + tab); code != 200 || !strings.Contains(page, `aria-current="page"`) {
			t.Fatalf("tab %s: %d", tab, code)
		}
	}
	if code, page := dept.get("/console/x/signing"); code != http.StatusForbidden || !han.MatchString(page) {
		t.Fatalf("dept_admin: %d", code)
	}
	if _, home := dept.get("/console/"); strings.Contains(home, "/console/x/signing") {
		t.Fatal("the menu of dept_admin links the signing page")
	}
	if code, page := auditor.get("/console/x/signing"); code != 200 || strings.Contains(page, `id="api-off"`) || strings.Contains(page, `id="ntp-form"`) {
		t.Fatalf("auditor (read only): %d, forms shown", code)
	}

	// Every action needs signing.write, and the CSRF token.
	for _, action := range []string{"api-on", "api-off", "ntp-save", "ntp-check", "app-create", "app-update", "app-enable", "app-disable",
		"app-rotate", "trust-import", "trust-remove", "trust-refresh", "cert-import", "restore", "staff-revoke"} {
		if code, _ := auditor.post("/console/x/signing/"+action, url.Values{"name": {"x"}}); code != http.StatusForbidden {
			t.Errorf("auditor %s: %d, want 403", action, code)
		}
	}
	resp, err := admin.hc.PostForm(in.srv.URL+"/console/x/signing/api-off", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || svsSign(t, in.srv.URL, demoToken) != 200 {
		t.Fatalf("api-off without the CSRF token: %d", resp.StatusCode)
	}

	// The API switch.
	page = admin.action("api-off", nil)
	if !strings.Contains(page, "签名验签接口已停用") || !strings.Contains(page, `id="api-on"`) {
		t.Fatal("after api-off the page does not say so")
	}
	if code := svsSign(t, in.srv.URL, demoToken); code != http.StatusServiceUnavailable {
		t.Fatalf("sign with the API off: %d", code)
	}
	admin.action("api-on", nil)
	if code := svsSign(t, in.srv.URL, demoToken); code != 200 {
		t.Fatalf("sign with the API on again: %d", code)
	}

	// The time source: saved, applied at once, checked now.
	ntpAddr := serveNTP(t, 20*time.Millisecond)
	page = admin.action("ntp-save", url.Values{"servers": {ntpAddr}, "enabled": {"true"}, "max_offset_ms": {"800"}})
	if n := noticeText(page); !strings.Contains(n, "时间源设置已保存并立即生效") || !strings.Contains(n, "校时完成") {
		t.Fatalf("after ntp-save: notice %q", n)
	}
	if !strings.Contains(page, "已同步") || !strings.Contains(page, ntpAddr) || !strings.Contains(page, `value="800"`) || !strings.Contains(page, "当前设置来自控制台") {
		t.Fatalf("the page after ntp-save:\n%s", page)
	}
	page = admin.action("ntp-check", nil)
	if n := noticeText(page); !strings.Contains(n, "校时完成") || !strings.Contains(n, "毫秒") {
		t.Fatalf("after ntp-check: notice %q", n)
	}
	page = admin.action("ntp-save", url.Values{"servers": {""}, "enabled": {"true"}, "max_offset_ms": {"800"}})
	if n := noticeText(page); !strings.Contains(n, "开启同步时请至少填写一个时间服务器") {
		t.Fatalf("ntp-save without servers: notice %q", n)
	}
	if n := noticeText(admin.action("ntp-save", url.Values{"servers": {"bad host!"}, "max_offset_ms": {"0"}})); !strings.Contains(n, "无效") || !strings.Contains(n, "毫秒") {
		t.Fatalf("ntp-save with a bad server: notice %q", n)
	}

	// Applications: created with the token shown once; policy, switch, rotation.
	page = admin.action("app-create", url.Values{"name": {"emr"}, "key_name": {"default"}, "trust_chains": {"hospital"}, "revocation": {"crl"}, "timestamp": {"true"}, "note": {"电子病历系统"}})
	m := tokenRE.FindStringSubmatch(page)
	if m == nil || !strings.Contains(noticeText(page), "只显示这一次") {
		t.Fatalf("no token after app-create:\n%s", noticeText(page))
	}
	emrToken := m[1]
	if code := svsSign(t, in.srv.URL, emrToken); code != 200 {
		t.Fatalf("sign with the new application's token: %d", code)
	}
	if _, again := admin.get("/console/x/signing?tab=apps"); strings.Contains(again, emrToken) || !strings.Contains(again, "电子病历系统") {
		t.Fatal("the token is shown a second time, or the application is not listed")
	}
	if n := noticeText(admin.action("app-create", url.Values{"name": {"emr"}})); !strings.Contains(n, "已有同名应用") {
		t.Fatalf("a second emr: notice %q", n)
	}
	apps := appIDs(t, admin)
	emrID := apps["emr"]
	if code, edit := admin.get("/console/x/signing?tab=apps&edit=" + emrID); code != 200 || !strings.Contains(edit, "修改应用策略：emr") {
		t.Fatalf("edit form: %d", code)
	}
	page = admin.action("app-update", url.Values{"id": {emrID}, "key_name": {"default"}, "trust_chains": {"hospital"}, "revocation": {"none"}, "note": {"电子病历（不查吊销）"}})
	if !strings.Contains(page, "应用策略已保存") || !strings.Contains(page, "不检查吊销") || !strings.Contains(page, "电子病历（不查吊销）") {
		t.Fatalf("after app-update the policy is not shown: %q", noticeText(page))
	}
	admin.action("app-disable", url.Values{"id": {emrID}})
	if code := svsSign(t, in.srv.URL, emrToken); code != http.StatusUnauthorized {
		t.Fatalf("sign with a disabled application: %d", code)
	}
	admin.action("app-enable", url.Values{"id": {emrID}})
	page = admin.action("app-rotate", url.Values{"id": {emrID}})
	m = tokenRE.FindStringSubmatch(page)
	if m == nil || m[1] == emrToken {
		t.Fatal("no new token after app-rotate")
	}
	if svsSign(t, in.srv.URL, emrToken) != http.StatusUnauthorized || svsSign(t, in.srv.URL, m[1]) != 200 {
		t.Fatal("after rotation the old token works or the new one does not")
	}
	emrToken = m[1]

	// Trust chains.
	caPEM, clientPEM := testCerts(t, "检验科 LIS 接口")
	page = admin.action("trust-import", url.Values{"chain": {"testca"}, "pem": {caPEM}, "crl_url": {"http://127.0.0.1:1/test.crl"}})
	if n := noticeText(page); !strings.Contains(n, "已导入信任链 testca 的 1 个 CA 证书") {
		t.Fatalf("trust-import: notice %q", n)
	}
	if !strings.Contains(page, "检验科 LIS 接口 根 CA") || !strings.Contains(page, "根 CA") {
		t.Fatal("the imported chain is not listed")
	}
	if n := noticeText(admin.action("trust-import", url.Values{"chain": {"bad"}, "pem": {clientPEM}})); !strings.Contains(n, "不是 CA 证书") {
		t.Fatalf("a client certificate as a trust chain: notice %q", n)
	}
	page = admin.action("trust-refresh", nil)
	if n := noticeText(page); !strings.Contains(n, "部分 CRL 获取失败") || !strings.Contains(page, "获取失败") {
		t.Fatalf("trust-refresh with an unreachable CRL: notice %q", n)
	}
	admin.action("app-update", url.Values{"id": {emrID}, "trust_chains": {"hospital", "testca"}})
	if n := noticeText(admin.action("trust-remove", url.Values{"chain": {"testca"}})); !strings.Contains(n, "正被应用 emr 使用") {
		t.Fatalf("removing a chain in use: notice %q", n)
	}
	admin.action("app-update", url.Values{"id": {emrID}, "trust_chains": {"hospital"}})
	if page = admin.action("trust-remove", url.Values{"chain": {"testca"}}); !strings.Contains(page, "信任链已删除") || strings.Contains(page, "检验科 LIS 接口 根 CA") {
		t.Fatal("trust-remove did not remove the chain")
	}

	// The certificate store.
	page = admin.action("cert-import", url.Values{"pem": {clientPEM}})
	if n := noticeText(page); !strings.Contains(n, "证书已导入证书库：检验科 LIS 接口") {
		t.Fatalf("cert-import: notice %q", n)
	}
	if n := noticeText(admin.action("cert-import", url.Values{"pem": {"not a certificate"}})); !strings.Contains(n, "输入有误") {
		t.Fatalf("cert-import of rubbish: notice %q", n)
	}
	_, found := admin.get("/console/x/signing?tab=certs&q=" + url.QueryEscape("LIS 接口"))
	sm := regexp.MustCompile(`serial=([0-9a-f]+)">检验科 LIS 接口<`).FindStringSubmatch(found)
	if sm == nil || !strings.Contains(found, "共 1 张") {
		t.Fatalf("search by name does not find it:\n%s", found)
	}
	if _, none := admin.get("/console/x/signing?tab=certs&q=nobody"); !strings.Contains(none, "没有找到匹配的证书") {
		t.Fatal("a search for nobody finds something")
	}
	if _, bySerial := admin.get("/console/x/signing?tab=certs&q=" + sm[1]); !strings.Contains(bySerial, "共 1 张") {
		t.Fatal("search by serial does not find it")
	}
	if code, detail := admin.get("/console/x/signing?tab=certs&serial=" + sm[1]); code != 200 || !strings.Contains(detail, "-----BEGIN CERTIFICATE-----") || !strings.Contains(detail, "测试 CA 机构") {
		t.Fatalf("certificate detail: %d", code)
	}

	// The signature log, filtered.
	_, logPage := admin.get("/console/x/signing?tab=log&app=emr&op=sign&result=ok")
	logPage = logPage[strings.Index(logPage, `id="signing-log"`):]
	if !strings.Contains(logPage, "数据签名") || strings.Contains(logPage, ">demo<") || strings.Contains(logPage, "没有记录") {
		t.Fatalf("the log filtered on emr:\n%s", logPage)
	}
	if _, fails := admin.get("/console/x/signing?tab=log&result=fail&app=emr"); !strings.Contains(fails, "没有记录") {
		t.Fatal("the failure filter shows successes")
	}
	if _, ov := admin.get("/console/x/signing"); !regexp.MustCompile(`id="signs-today">[1-9]`).MatchString(ov) {
		t.Fatal("today's signatures are not counted")
	}

	// Staff e-signature certificates: listed with the CA's status, revoked.
	ctx := ihos.WithActor(context.Background(), ihos.System)
	cert, err := in.app.ESign.Enroll(ctx, "D1001", "李医生", "246810")
	if err != nil {
		t.Fatal(err)
	}
	serial := cert.SerialNumber.Text(16)
	if _, staff := admin.get("/console/x/signing?tab=staff&q=" + url.QueryEscape("李")); !strings.Contains(staff, serial) || !strings.Contains(staff, "有效") {
		t.Fatal("the staff certificate is not listed as good")
	}
	if n := noticeText(admin.action("staff-revoke", url.Values{"serial": {serial}, "reason": {"2"}})); !strings.Contains(n, "请选择吊销原因") {
		t.Fatalf("revoke for a reason not offered: notice %q", n)
	}
	page = admin.action("staff-revoke", url.Values{"serial": {serial}, "reason": {"1"}})
	if !strings.Contains(page, "证书已吊销") || !strings.Contains(page, "已吊销") || !strings.Contains(page, "密钥泄露") {
		t.Fatal("after staff-revoke the page does not show it revoked")
	}
	if rec, err := in.app.ESign.CA.Lookup(ctx, cert.SerialNumber); err != nil || rec.Status != "revoked" || rec.Reason != 1 {
		t.Fatalf("CA record after revoke: %+v %v", rec, err)
	}

	// Backup and restore.
	if code, _ := auditor.get("/console/x/signing/backup"); code != http.StatusForbidden {
		t.Fatalf("auditor downloads the backup: %d", code)
	}
	resp, err = admin.hc.Get(in.srv.URL + "/console/x/signing/backup")
	if err != nil {
		t.Fatal(err)
	}
	backup, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var doc struct {
		Format string `json:"format"`
		Apps   []struct {
			Name string `json:"name"`
		} `json:"apps"`
		NTP struct {
			Servers     []string `json:"servers"`
			MaxOffsetMS int64    `json:"max_offset_ms"`
		} `json:"ntp"`
	}
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") || json.Unmarshal(backup, &doc) != nil ||
		doc.Format != "ihos-svs-backup" || len(doc.Apps) != 2 || doc.NTP.MaxOffsetMS != 800 {
		t.Fatalf("backup: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Disposition"), ihos.Truncate(string(backup), 400))
	}
	admin.action("app-create", url.Values{"name": {"after-backup"}})
	admin.action("ntp-save", url.Values{"servers": {ntpAddr}, "enabled": {"true"}, "max_offset_ms": {"3000"}})
	if n := noticeText(admin.action("restore", url.Values{"backup": {`{"format":"something else"}`}})); !strings.Contains(n, "不是签名验签服务的备份文件") {
		t.Fatalf("restore of another file: notice %q", n)
	}
	page = admin.action("restore", url.Values{"backup": {string(backup)}})
	if !strings.Contains(page, "配置已从备份恢复") {
		t.Fatal("restore: no confirmation")
	}
	if ids := appIDs(t, admin); len(ids) != 2 || ids["after-backup"] != "" || ids["emr"] != emrID {
		t.Fatalf("applications after the restore: %v", ids)
	}
	if code := svsSign(t, in.srv.URL, emrToken); code != 200 {
		t.Fatalf("emr's token after the restore: %d", code)
	}
	if _, ov := admin.get("/console/x/signing"); !strings.Contains(ov, `value="800"`) {
		t.Fatal("the time source settings were not restored")
	}
}

var appRowRE = regexp.MustCompile(`<td><b>([^<]+)</b></td>[\s\S]*?edit=([0-9a-zA-Z-]+)"`)

// appIDs reads the application list of the page: name → id.
func appIDs(t testing.TB, u *consoleUser) map[string]string {
	t.Helper()
	_, page := u.get("/console/x/signing?tab=apps")
	i := strings.Index(page, `id="apps"`)
	j := strings.Index(page, "新建应用</h2>")
	if i < 0 || j < i {
		t.Fatal("no application table")
	}
	out := map[string]string{}
	for _, m := range appRowRE.FindAllStringSubmatch(page[i:j], -1) {
		out[html.UnescapeString(m[1])] = m[2]
	}
	return out
}

// The time source's settings saved on the console survive a restart; without
// them the configuration file's apply.
func TestSigningNTPSettingsPersist(t *testing.T) {
	dir := t.TempDir()
	dataDir, credFile := filepath.Join(dir, "data"), filepath.Join(dir, "creds.json")
	start := func() (*appliance.App, *httptest.Server) {
		a, err := appliance.New(context.Background(), appliance.Config{
			Config: node.Config{DataDir: dataDir, HTTP: "127.0.0.1:0", LogLevel: "warn"}, Demo: true, Credentials: credFile,
			Signing: appliance.SigningConfig{NTPServers: []string{"ntp.config-file.example"}, MaxOffset: 2 * time.Second},
		})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(web.Middleware(a.Handler))
		return a, srv
	}
	a, srv := start()
	creds := readCreds(t, credFile)
	admin := consoleLogin(t, srv.URL, creds["console"].Username, creds["console"].Password)
	_, page := admin.get("/console/x/signing")
	if !strings.Contains(page, "ntp.config-file.example") || !strings.Contains(page, `value="2000"`) || !strings.Contains(page, "当前设置来自配置文件") {
		t.Fatalf("before saving: not the configuration file's settings")
	}
	addr := serveNTP(t, 0)
	admin.action("ntp-save", url.Values{"servers": {addr + "\nntp.backup.example"}, "enabled": {"true"}, "max_offset_ms": {"250"}})
	srv.Close()
	a.Close()

	a, srv = start()
	defer a.Close()
	defer srv.Close()
	admin = consoleLogin(t, srv.URL, creds["console"].Username, creds["console"].Password)
	_, page = admin.get("/console/x/signing")
	if !strings.Contains(page, addr+"\nntp.backup.example") || !strings.Contains(page, `value="250"`) || !strings.Contains(page, "当前设置来自控制台") ||
		strings.Contains(page, "ntp.config-file.example") {
		t.Fatalf("after a restart the saved settings are gone:\n%s", page)
	}
	// The saved settings are in force: the clock checks against the server.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(page, "已同步") {
		if time.Now().After(deadline) {
			t.Fatal("the clock never synchronised with the saved server")
		}
		time.Sleep(100 * time.Millisecond)
		_, page = admin.get("/console/x/signing")
	}
}

// Without signing servers configured the platform signs in process through
// its own application "platform": logged, under the service switch and the
// time source, with a token that survives restarts and renews itself.
func TestPlatformSignerInProcess(t *testing.T) {
	dir := t.TempDir()
	dataDir, credFile := filepath.Join(dir, "data"), filepath.Join(dir, "creds.json")
	in := startAppliance(t, dataDir, credFile)
	ctx := context.Background()
	data := []byte(`{"rx":"RX-20260101-0001","drug":"阿莫西林胶囊 0.25g"}`)
	admin := consoleLogin(t, in.srv.URL, in.creds["console"].Username, in.creds["console"].Password)
	resp, err := admin.hc.Get(in.srv.URL + "/console/x/signing/backup")
	if err != nil {
		t.Fatal(err)
	}
	backupWithoutPlatform, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sig, certPEM, err := in.app.Signer.Sign(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certs.ParseCertificate([]byte(certPEM))
	if err != nil || cert.Subject.CommonName != "签名验签服务器" {
		t.Fatalf("signer certificate %v %v", cert, err)
	}
	if err := certs.VerifyData(cert.PublicKey, data, sig); err != nil {
		t.Fatalf("the signature does not verify: %v", err)
	}
	for level := 0; level <= 2; level++ {
		if ok, reason, err := in.app.Signer.Verify(ctx, data, sig, certPEM, level); err != nil || !ok {
			t.Fatalf("verify level %d: %v %q %v", level, ok, reason, err)
		}
	}
	if ok, reason, err := in.app.Signer.Verify(ctx, append([]byte("x"), data...), sig, certPEM, 2); err != nil || ok || !han.MatchString(reason) {
		t.Fatalf("verify changed data: %v %q %v", ok, reason, err)
	}
	var logged int
	in.app.Node.DB.QueryRow(`SELECT COUNT(*) FROM svs_log WHERE app = 'platform' AND remote = 'in-process'`).Scan(&logged)
	if logged != 5 {
		t.Fatalf("%d log entries of the platform, want 5", logged)
	}
	tokenFile := filepath.Join(dataDir, "keys", "svs-platform.token")
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}

	// The console's switch and the time source stop the platform's signing too.
	admin.action("api-off", nil)
	if _, _, err := in.app.Signer.Sign(ctx, data); ihos.ErrorCode(err) != ihos.EUnavailable || !strings.Contains(ihos.ErrorMessage(err), "已停用") {
		t.Fatalf("sign with the API off: %v", err)
	}
	admin.action("api-on", nil)
	admin.action("ntp-save", url.Values{"servers": {serveNTP(t, 5*time.Second)}, "enabled": {"true"}, "max_offset_ms": {"1000"}})
	if _, _, err := in.app.Signer.Sign(ctx, data); ihos.ErrorCode(err) != ihos.EUnavailable || !strings.Contains(ihos.ErrorMessage(err), "暂停签名") {
		t.Fatalf("sign with the clock 5 s off: %v", err)
	}
	admin.action("ntp-save", url.Values{"servers": {""}, "max_offset_ms": {"1000"}})

	// A rotated token (on the console) is replaced by itself.
	admin.action("app-rotate", url.Values{"id": {appIDs(t, admin)["platform"]}})
	if _, _, err := in.app.Signer.Sign(ctx, data); err != nil {
		t.Fatalf("sign after the console rotated the platform's token: %v", err)
	}
	// So is the application itself, gone with a restore of an older backup.
	admin.action("restore", url.Values{"backup": {string(backupWithoutPlatform)}})
	if _, ok := appIDs(t, admin)["platform"]; ok {
		t.Fatal("the restore kept the platform application")
	}
	if _, _, err := in.app.Signer.Sign(ctx, data); err != nil {
		t.Fatalf("sign after a restore without the platform application: %v", err)
	}
	tok1, _ := os.ReadFile(tokenFile)

	// A restart keeps the token: no new application, no new token.
	in.close()
	in = startAppliance(t, dataDir, credFile)
	if _, _, err := in.app.Signer.Sign(ctx, data); err != nil {
		t.Fatalf("sign after a restart: %v", err)
	}
	if tok2, _ := os.ReadFile(tokenFile); !bytes.Equal(tok1, tok2) {
		t.Fatal("a restart made a new token")
	}
	var apps int
	in.app.Node.DB.QueryRow(`SELECT COUNT(*) FROM svs_apps WHERE name = 'platform'`).Scan(&apps)
	if apps != 1 {
		t.Fatalf("%d platform applications", apps)
	}

	// A disabled platform application says so.
	admin = consoleLogin(t, in.srv.URL, in.creds["console"].Username, in.creds["console"].Password)
	admin.action("app-disable", url.Values{"id": {appIDs(t, admin)["platform"]}})
	if _, _, err := in.app.Signer.Sign(ctx, data); ihos.ErrorCode(err) != ihos.EUnavailable || !strings.Contains(ihos.ErrorMessage(err), "platform") {
		t.Fatalf("sign with the platform application disabled: %v", err)
	}
}

// With signing servers configured the platform's signer is the API client:
// calls spread over both servers and go on when one is down. The servers here
// are another appliance's /api/svs behind two listeners.
func TestPlatformSignerRemote(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	// Appliance B, the signing server.
	bSrv := httptest.NewUnstartedServer(nil)
	credB := filepath.Join(dir, "b-creds.json")
	b, err := appliance.New(ctx, appliance.Config{Config: node.Config{DataDir: filepath.Join(dir, "b"), HTTP: bSrv.Listener.Addr().String(), LogLevel: "warn"},
		Demo: true, Credentials: credB})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	var hits [2]atomic.Int64
	counted := func(i int) http.Handler {
		h := web.Middleware(b.Handler)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits[i].Add(1); h.ServeHTTP(w, r) })
	}
	bSrv.Config.Handler = counted(0)
	bSrv.Start()
	t.Cleanup(bSrv.Close)
	bSrv2 := httptest.NewServer(counted(1))
	t.Cleanup(bSrv2.Close)
	token := svsToken(t, credB)

	// A misconfigured client is refused at start.
	for _, sc := range []appliance.SigningConfig{{Servers: []string{bSrv.URL}}, {Servers: []string{"ftp://x"}, Token: token}} {
		_, err := appliance.New(ctx, appliance.Config{Config: node.Config{DataDir: filepath.Join(dir, "bad"), HTTP: "127.0.0.1:0", LogLevel: "warn"}, Signing: sc})
		if ihos.ErrorCode(err) != ihos.EInvalid || !han.MatchString(ihos.ErrorMessage(err)) {
			t.Fatalf("signing config %+v: %v", sc, err)
		}
	}

	// Appliance A, the platform, signs through B.
	a, err := appliance.New(ctx, appliance.Config{Config: node.Config{DataDir: filepath.Join(dir, "a"), HTTP: "127.0.0.1:0", LogLevel: "warn"},
		Signing: appliance.SigningConfig{Servers: []string{bSrv.URL, bSrv2.URL + "/"}, Token: token}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	data := []byte("检验报告 LIS-0001")
	var sig []byte
	var certPEM string
	for range 4 {
		if sig, certPEM, err = a.Signer.Sign(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	if hits[0].Load() == 0 || hits[1].Load() == 0 {
		t.Fatalf("calls not spread over both servers: %d, %d", hits[0].Load(), hits[1].Load())
	}
	if !strings.Contains(certPEM, "BEGIN CERTIFICATE") {
		t.Fatalf("cert %q", certPEM)
	}
	// One server goes away: every call still succeeds.
	bSrv2.Close()
	for range 4 {
		if ok, reason, err := a.Signer.Verify(ctx, data, sig, certPEM, 2); err != nil || !ok {
			t.Fatalf("verify with one server down: %v %q %v", ok, reason, err)
		}
		if _, _, err := a.Signer.Sign(ctx, data); err != nil {
			t.Fatalf("sign with one server down: %v", err)
		}
	}
	if ok, reason, err := a.Signer.Verify(ctx, []byte("changed"), sig, certPEM, 1); err != nil || ok || !han.MatchString(reason) {
		t.Fatalf("verify changed data: %v %q %v", ok, reason, err)
	}
	var logged int
	b.Node.DB.QueryRow(`SELECT COUNT(*) FROM svs_log WHERE app = 'demo'`).Scan(&logged)
	if logged != 13 {
		t.Fatalf("server B logged %d operations of the demo application, want 13", logged)
	}
}
