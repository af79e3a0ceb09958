package appliance

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	stdsync "sync"
	"time"
	"unicode/utf8"

	"ihos"
	"ihos/certs"
	"ihos/certs/ca"
	"ihos/certs/ntp"
	"ihos/certs/svs"
	"ihos/internal/audit"
	"ihos/internal/auth"
	"ihos/internal/console"
	"ihos/internal/node"
	"ihos/internal/sqldb"
	"ihos/internal/web"
)

//go:embed templates/signing.html
var signingPageTemplate string

// signingAdmin is the console page 签名验签服务: the signing server's status
// and switch, its time source, applications, trust chains, certificate store,
// signature log, configuration backup, and the staff e-signature certificates.
type signingAdmin struct {
	s    *signing
	node *node.Node

	mu      stdsync.Mutex
	notices map[string]signingNotice // by session: what the next page view shows once
}

func newSigningAdmin(s *signing, n *node.Node) *signingAdmin {
	return &signingAdmin{s: s, node: n, notices: map[string]signingNotice{}}
}

// signingNotice is a message for the next view of the page after an action:
// an error in Chinese, a result with figures, or a new application token
// (shown this once).
type signingNotice struct {
	Err   bool
	Text  string
	App   string // with Token: the application the token belongs to
	Token string
	at    time.Time
}

// The page's tabs.
var signingTabs = []struct{ Name, Label string }{
	{"overview", "运行状态与时间源"}, {"apps", "应用与访问策略"}, {"trust", "信任链"}, {"certs", "证书库"},
	{"log", "签名日志"}, {"staff", "人员签名证书"}, {"backup", "配置备份与恢复"},
}

var revocationLabels = map[string]string{
	svs.RevocationNone: "不检查吊销", svs.RevocationCRL: "CRL", svs.RevocationOCSP: "OCSP", svs.RevocationCRLOCSP: "OCSP（不可用时用 CRL）",
}

var opLabels = map[string]string{
	svs.OpSign: "数据签名", svs.OpVerify: "数据验签", svs.OpSignMessage: "消息签名（PKCS#7）",
	svs.OpVerifyMessage: "消息验签（PKCS#7）", svs.OpTimestamp: "时间戳",
}

var keyUses = map[string]string{svs.DefaultKey: "默认签名密钥，供应用签名", tsaKeyName: "时间戳服务（TSA）"}

// The revocation reasons staff certificates may be revoked for.
var staffRevokeReasons = []int{ca.ReasonKeyCompromise, ca.ReasonSuperseded, ca.ReasonCessationOfOperation}

type option struct {
	Value, Label string
	Selected     bool
}

// The page's data, one tab at a time.
type signingView struct {
	Tab      string
	Tabs     []option
	CanWrite bool
	Notice   *signingNotice
	Overview *signingOverview
	Apps     *signingApps
	Trust    *signingTrust
	Certs    *signingCerts
	Log      *signingLog
	Staff    *signingStaff
}

type signingOverview struct {
	Enabled                bool
	Clock                  clockView
	SignsToday, FailsToday int
	VerifiesToday          int
	LoggedSinceStart       int64
	Keys                   []keyView
	NTP                    ntpForm
}

type clockView struct {
	State   string // off, ok, stopped
	Label   string
	Offset  string // "+12.3 毫秒", or ""
	Server  string
	Checked string
	Reason  string
	LastErr string
}

type keyView struct {
	Name, Use, Subject, Serial, NotAfter string
	Expired                              bool
}

type ntpForm struct {
	Servers     string // one per line
	Enabled     bool
	MaxOffsetMS int64
	Stored      bool // saved on the console (else the configuration file)
}

type signingApps struct {
	Apps    []appView
	New     appForm
	Edit    *appForm
	KeyOpts []option
	RevOpts []option
}

type appView struct {
	ID, Name, KeyName, Chains, Revocation, Note, Created string
	Timestamp, Enabled, Platform                         bool
}

type appForm struct {
	ID, Name, Note string
	Timestamp      bool
	Keys           []option
	Chains         []option
	Revocations    []option
}

type signingTrust struct {
	HospitalSubject, HospitalNotAfter string
	Chains                            []trustChainView
}

type trustChainView struct {
	Name string
	Rows []trustRow
}

type trustRow struct {
	Kind, Subject, NotAfter, Fingerprint, CRLURL, CRLStatus string
	CRLBad                                                  bool
}

type signingCerts struct {
	Q                string
	Total            int
	Items            []certRow
	Detail           *certDetail
	PrevURL, NextURL string
}

type certRow struct {
	Serial, CommonName, Subject, Issuer, SubjectID, NotBefore, NotAfter, ImportedBy, ImportedAt string
	Expired                                                                                     bool
}

type certDetail struct {
	certRow
	Fingerprint string
	PEM         string
}

type signingLog struct {
	App, Op, Result string
	Apps            []option
	Ops             []option
	Results         []option
	Entries         []logRow
	Total           int
}

type logRow struct {
	At, App, Op, Key, DataSM3, Reason, Serial, Remote string
	DataLen                                           int64
	OK                                                bool
}

type signingStaff struct {
	Q       string
	Rows    []staffRow
	Reasons []option
}

type staffRow struct {
	StaffID, Name, Serial, Created, NotAfter, Status, Revoked string
	Good                                                      bool
}

func (g *signingAdmin) page(a *auth.Service) console.Page {
	flashes := map[string]string{
		"overview.api-on": "签名验签接口已启用", "overview.api-off": "签名验签接口已停用，调用方将收到“服务已停用”",
		"apps.updated": "应用策略已保存", "apps.enabled": "应用已启用", "apps.disabled": "应用已停用，其令牌立即失效",
		"trust.removed": "信任链已删除", "staff.revoked": "证书已吊销，CRL 和 OCSP 立即生效", "backup.restored": "配置已从备份恢复",
	}
	return console.Page{
		Name: "signing", Title: "签名验签服务", Perm: "signing.read", Template: signingPageTemplate,
		Data: g.data, Flashes: flashes,
		Post: func(r *http.Request, action string) (string, error) {
			if err := a.Authorize(r.Context(), "signing.write", ""); err != nil {
				return "", err
			}
			tab, flash, err := g.post(r, action)
			if err != nil {
				// What staff can correct is shown on the tab they were on;
				// anything else is the console's error page.
				switch ihos.ErrorCode(err) {
				case ihos.EInvalid, ihos.EConflict, ihos.ENotFound, ihos.EUnavailable:
					g.notify(r, signingNotice{Err: true, Text: errorText(err)})
					return tab + ".failed", nil
				}
				return "", err
			}
			return tab + "." + flash, nil
		},
	}
}

// errorText is an error's message with its field messages, for a notice.
func errorText(err error) string {
	var e *ihos.Error
	if !errors.As(err, &e) {
		return ihos.ErrorMessage(err)
	}
	if len(e.Fields) == 0 {
		return e.Message
	}
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	msgs := make([]string, len(keys))
	for i, k := range keys {
		msgs[i] = e.Fields[k]
	}
	return "输入有误：" + strings.Join(msgs, "；")
}

func sessionKey(r *http.Request) string {
	if s, ok := auth.SessionFrom(r.Context()); ok {
		return s.CSRF
	}
	if a, ok := ihos.ActorFrom(r.Context()); ok {
		return a.UserID
	}
	return ""
}

// notify keeps n for the session's next view of the page.
func (g *signingAdmin) notify(r *http.Request, n signingNotice) {
	key := sessionKey(r)
	if key == "" {
		return
	}
	n.at = time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, old := range g.notices {
		if time.Since(old.at) > 10*time.Minute {
			delete(g.notices, k)
		}
	}
	g.notices[key] = n
}

// takeNotice returns the session's notice once.
func (g *signingAdmin) takeNotice(r *http.Request) *signingNotice {
	key := sessionKey(r)
	g.mu.Lock()
	defer g.mu.Unlock()
	n, ok := g.notices[key]
	if !ok || key == "" {
		return nil
	}
	delete(g.notices, key)
	if time.Since(n.at) > 10*time.Minute {
		return nil
	}
	return &n
}

func (g *signingAdmin) data(r *http.Request) (any, error) {
	ctx := r.Context()
	q := r.URL.Query()
	tab := q.Get("tab")
	if tab == "" { // after an action: the tab it was on
		tab, _, _ = strings.Cut(q.Get("msg"), ".")
	}
	if !slices.ContainsFunc(signingTabs, func(t struct{ Name, Label string }) bool { return t.Name == tab }) {
		tab = "overview"
	}
	actor, _ := ihos.ActorFrom(ctx)
	v := &signingView{Tab: tab, CanWrite: auth.Can(actor.Role, "signing.write")}
	if q.Get("msg") != "" {
		v.Notice = g.takeNotice(r)
	}
	for _, t := range signingTabs {
		v.Tabs = append(v.Tabs, option{Value: t.Name, Label: t.Label, Selected: t.Name == tab})
	}
	var err error
	switch tab {
	case "overview":
		v.Overview, err = g.overview(ctx)
	case "apps":
		v.Apps, err = g.apps(ctx, q.Get("edit"))
	case "trust":
		v.Trust, err = g.trust(ctx)
	case "certs":
		v.Certs, err = g.certs(ctx, q)
	case "log":
		v.Log, err = g.log(ctx, q)
	case "staff":
		v.Staff, err = g.staff(ctx, q.Get("q"))
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

func showTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(ihos.Shanghai).Format("2006-01-02 15:04:05")
}

func showDate(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(ihos.Shanghai).Format("2006-01-02")
}

func showOffset(d time.Duration) string {
	return fmt.Sprintf("%+.1f 毫秒", float64(d)/float64(time.Millisecond))
}

func clockOf(st ntp.Status) clockView {
	cv := clockView{Checked: showTime(st.Checked), Reason: st.Reason, LastErr: st.LastErr}
	if now := time.Now().In(ihos.Shanghai); !st.Checked.IsZero() && st.Checked.In(ihos.Shanghai).Format("20060102") == now.Format("20060102") {
		cv.Checked = "今天 " + st.Checked.In(ihos.Shanghai).Format("15:04:05")
	}
	if st.Last != nil {
		cv.Offset, cv.Server = showOffset(st.Last.Offset), st.Last.Server
	}
	switch {
	case !st.Enabled || len(st.Servers) == 0:
		cv.State, cv.Label = "off", "未开启同步"
	case st.Ready:
		cv.State, cv.Label = "ok", "已同步"
	default:
		cv.State, cv.Label = "stopped", "签名已暂停"
	}
	return cv
}

func (g *signingAdmin) overview(ctx context.Context) (*signingOverview, error) {
	ov := &signingOverview{Enabled: g.s.svs.Enabled(), Clock: clockOf(g.s.clock.Status()), LoggedSinceStart: g.s.svs.LogStats().Entries}
	now := time.Now().In(ihos.Shanghai)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, ihos.Shanghai)
	count := func(f svs.LogFilter) (int, error) {
		f.From, f.PageSize = today, 1
		_, n, err := g.s.svs.Logs(ctx, f)
		return n, err
	}
	for _, c := range []struct {
		n *int
		f svs.LogFilter
	}{
		{&ov.SignsToday, svs.LogFilter{Op: svs.OpSign, Result: "ok"}},
		{&ov.SignsToday, svs.LogFilter{Op: svs.OpSignMessage, Result: "ok"}},
		{&ov.VerifiesToday, svs.LogFilter{Op: svs.OpVerify}},
		{&ov.VerifiesToday, svs.LogFilter{Op: svs.OpVerifyMessage}},
		{&ov.FailsToday, svs.LogFilter{Result: "fail"}},
	} {
		n, err := count(c.f)
		if err != nil {
			return nil, err
		}
		*c.n += n
	}
	keys, err := g.s.svs.Keys.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		use := keyUses[k.Name]
		if use == "" {
			use = "应用签名"
		}
		ov.Keys = append(ov.Keys, keyView{Name: k.Name, Use: use, Subject: k.Subject, Serial: k.Serial, NotAfter: showDate(k.NotAfter), Expired: time.Now().After(k.NotAfter)})
	}
	st := g.s.clock.Status()
	ov.NTP = ntpForm{Servers: strings.Join(st.Servers, "\n"), Enabled: st.Enabled, MaxOffsetMS: st.MaxOffset.Milliseconds()}
	_, ov.NTP.Stored, err = loadNTPConfig(ctx, g.node.DB, ntp.Config{})
	if err != nil {
		return nil, err
	}
	return ov, nil
}

func (g *signingAdmin) chainNames(ctx context.Context) ([]string, []svs.TrustCert, error) {
	list, err := g.s.svs.ListTrust(ctx)
	if err != nil {
		return nil, nil, err
	}
	names := []string{svs.ChainHospital}
	for _, t := range list {
		if !slices.Contains(names, t.Chain) {
			names = append(names, t.Chain)
		}
	}
	return names, list, nil
}

func chainLabel(name string) string {
	if name == svs.ChainHospital {
		return "hospital（医院 CA）"
	}
	return name
}

func (g *signingAdmin) appForm(ctx context.Context, a svs.App) (appForm, error) {
	f := appForm{ID: a.ID, Name: a.Name, Note: a.Note, Timestamp: a.Timestamp}
	keys, err := g.s.svs.Keys.List(ctx)
	if err != nil {
		return f, err
	}
	for _, k := range keys {
		if k.Name == tsaKeyName { // its certificate is for timestamps only
			continue
		}
		use := keyUses[k.Name]
		if use == "" {
			use = k.Subject
		}
		f.Keys = append(f.Keys, option{Value: k.Name, Label: k.Name + "（" + use + "）", Selected: k.Name == a.KeyName})
	}
	names, _, err := g.chainNames(ctx)
	if err != nil {
		return f, err
	}
	for _, n := range names {
		f.Chains = append(f.Chains, option{Value: n, Label: chainLabel(n), Selected: slices.Contains(a.TrustChains, n)})
	}
	for _, p := range []string{svs.RevocationCRL, svs.RevocationOCSP, svs.RevocationCRLOCSP, svs.RevocationNone} {
		f.Revocations = append(f.Revocations, option{Value: p, Label: revocationLabels[p], Selected: p == a.Revocation})
	}
	return f, nil
}

func (g *signingAdmin) apps(ctx context.Context, edit string) (*signingApps, error) {
	list, err := g.s.svs.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	v := &signingApps{}
	for _, a := range list {
		chains := make([]string, len(a.TrustChains))
		for i, c := range a.TrustChains {
			chains[i] = chainLabel(c)
		}
		v.Apps = append(v.Apps, appView{ID: a.ID, Name: a.Name, KeyName: a.KeyName, Chains: strings.Join(chains, "、"),
			Revocation: revocationLabels[a.Revocation], Note: a.Note, Created: showTime(a.CreatedAt), Timestamp: a.Timestamp,
			Enabled: a.Enabled, Platform: a.Name == platformApp})
		if edit != "" && a.ID == edit {
			f, err := g.appForm(ctx, a)
			if err != nil {
				return nil, err
			}
			v.Edit = &f
		}
	}
	if v.New, err = g.appForm(ctx, svs.App{KeyName: svs.DefaultKey, TrustChains: []string{svs.ChainHospital}, Revocation: svs.RevocationCRL, Timestamp: true}); err != nil {
		return nil, err
	}
	return v, nil
}

func (g *signingAdmin) trust(ctx context.Context) (*signingTrust, error) {
	root := g.s.ca.Certificate()
	v := &signingTrust{HospitalSubject: root.Subject.String(), HospitalNotAfter: showDate(root.NotAfter)}
	_, list, err := g.chainNames(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range list {
		row := trustRow{Kind: "中间 CA", Subject: t.Subject, Fingerprint: t.Fingerprint, CRLURL: t.CRLURL}
		if len(row.Fingerprint) > 16 {
			row.Fingerprint = row.Fingerprint[:16] + "…"
		}
		if t.Kind == svs.TrustRoot {
			row.Kind = "根 CA"
		}
		if t.Cert != nil {
			row.NotAfter = showDate(t.Cert.NotAfter)
		}
		switch {
		case t.CRLURL == "":
			row.CRLStatus = "未配置 CRL 地址"
		case t.CRLError != "":
			row.CRLStatus, row.CRLBad = "获取失败："+t.CRLError, true
			if !t.CRLFetchedAt.IsZero() {
				row.CRLStatus += "（仍使用 " + showTime(t.CRLFetchedAt) + " 获取的 CRL）"
			}
		case t.CRLFetchedAt.IsZero():
			row.CRLStatus = "尚未获取"
		default:
			row.CRLStatus = "本次更新 " + showTime(t.CRLThisUpdate) + "，下次更新 " + showTime(t.CRLNextUpdate) + "（获取于 " + showTime(t.CRLFetchedAt) + "）"
			if !t.CRLNextUpdate.IsZero() && time.Now().After(t.CRLNextUpdate) {
				row.CRLStatus, row.CRLBad = "已过期："+row.CRLStatus, true
			}
		}
		if n := len(v.Chains); n == 0 || v.Chains[n-1].Name != t.Chain {
			v.Chains = append(v.Chains, trustChainView{Name: t.Chain})
		}
		c := &v.Chains[len(v.Chains)-1]
		c.Rows = append(c.Rows, row)
	}
	return v, nil
}

func certRowOf(c svs.StoredCert) certRow {
	return certRow{Serial: c.Serial, CommonName: c.CommonName, Subject: c.Subject, Issuer: c.Issuer, SubjectID: c.SubjectID,
		NotBefore: showDate(c.NotBefore), NotAfter: showDate(c.NotAfter), ImportedBy: c.ImportedBy, ImportedAt: showTime(c.ImportedAt),
		Expired: time.Now().After(c.NotAfter)}
}

const certsPageSize = 50

func (g *signingAdmin) certs(ctx context.Context, q url.Values) (*signingCerts, error) {
	v := &signingCerts{Q: strings.TrimSpace(q.Get("q"))}
	if serial := q.Get("serial"); serial != "" {
		sc, err := g.s.svs.StoredCertificate(ctx, serial)
		if err != nil {
			return nil, err
		}
		d := &certDetail{certRow: certRowOf(sc), PEM: sc.CertPEM}
		if c, err := certs.ParseCertificate([]byte(sc.CertPEM)); err == nil {
			sum := certs.SM3Sum(c.Raw)
			d.Fingerprint = strings.ToUpper(hex.EncodeToString(sum[:]))
		}
		v.Detail = d
		return v, nil
	}
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	list, total, err := g.s.svs.SearchCerts(ctx, v.Q, page, certsPageSize)
	if err != nil {
		return nil, err
	}
	v.Total = total
	for _, c := range list {
		v.Items = append(v.Items, certRowOf(c))
	}
	link := func(p int) string {
		u := url.Values{"tab": {"certs"}, "page": {strconv.Itoa(p)}}
		if v.Q != "" {
			u.Set("q", v.Q)
		}
		return "?" + u.Encode()
	}
	if page > 1 {
		v.PrevURL = link(page - 1)
	}
	if page*certsPageSize < total {
		v.NextURL = link(page + 1)
	}
	return v, nil
}

func (g *signingAdmin) log(ctx context.Context, q url.Values) (*signingLog, error) {
	v := &signingLog{App: q.Get("app"), Op: q.Get("op"), Result: q.Get("result")}
	if _, ok := opLabels[v.Op]; !ok {
		v.Op = ""
	}
	if v.Result != "ok" && v.Result != "fail" {
		v.Result = ""
	}
	if utf8.RuneCountInString(v.App) > 100 {
		v.App = ""
	}
	apps, err := g.s.svs.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		v.Apps = append(v.Apps, option{Value: a.Name, Label: a.Name, Selected: a.Name == v.App})
	}
	for _, op := range []string{svs.OpSign, svs.OpVerify, svs.OpSignMessage, svs.OpVerifyMessage, svs.OpTimestamp} {
		v.Ops = append(v.Ops, option{Value: op, Label: opLabels[op], Selected: op == v.Op})
	}
	v.Results = []option{{Value: "ok", Label: "成功", Selected: v.Result == "ok"}, {Value: "fail", Label: "失败", Selected: v.Result == "fail"}}
	entries, total, err := g.s.svs.Logs(ctx, svs.LogFilter{App: v.App, Op: v.Op, Result: v.Result, PageSize: 100})
	if err != nil {
		return nil, err
	}
	v.Total = total
	for _, e := range entries {
		row := logRow{At: showTime(e.At), App: e.App, Op: opLabels[e.Op], Key: e.KeyName, DataSM3: e.DataSM3, Reason: e.Reason,
			Serial: e.SignerSerial, Remote: e.Remote, DataLen: e.DataLen, OK: e.OK}
		if row.Op == "" {
			row.Op = e.Op
		}
		if len(row.DataSM3) > 16 {
			row.DataSM3 = row.DataSM3[:16] + "…"
		}
		if row.Remote == "in-process" {
			row.Remote = "本机平台"
		}
		v.Entries = append(v.Entries, row)
	}
	return v, nil
}

func (g *signingAdmin) staff(ctx context.Context, q string) (*signingStaff, error) {
	v := &signingStaff{Q: strings.TrimSpace(q)}
	for _, r := range staffRevokeReasons {
		v.Reasons = append(v.Reasons, option{Value: strconv.Itoa(r), Label: ca.ReasonText(r)})
	}
	query, args := `SELECT staff_id, name, cert_serial, created_at FROM staff_keys`, []any{}
	if v.Q != "" {
		query += ` WHERE name LIKE ?` + sqldb.Escape + ` OR staff_id = ? OR cert_serial = ?`
		args = append(args, sqldb.Contains(v.Q), v.Q, strings.ToLower(v.Q))
	}
	rows, err := g.node.DB.QueryContext(ctx, query+` ORDER BY created_at DESC LIMIT 200`, args...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r staffRow
		var created string
		if err := rows.Scan(&r.StaffID, &r.Name, &r.Serial, &created); err != nil {
			return nil, ihos.Internal(err)
		}
		t, _ := ihos.ParseTime(created)
		r.Created = showTime(t)
		v.Rows = append(v.Rows, r)
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	rows.Close()
	for i := range v.Rows {
		r := &v.Rows[i]
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			r.Status = "序列号无效"
			continue
		}
		rec, err := g.s.ca.Lookup(ctx, serial)
		if err != nil {
			return nil, err
		}
		r.NotAfter = showDate(rec.NotAfter)
		switch rec.Status {
		case ca.StatusGood:
			r.Status, r.Good = "有效", true
			if time.Now().After(rec.NotAfter) {
				r.Status, r.Good = "已过期", false
			}
		case ca.StatusRevoked:
			r.Status = "已吊销"
			r.Revoked = showTime(rec.RevokedAt) + "（" + ca.ReasonText(rec.Reason) + "）"
		default:
			r.Status = "CA 中无此证书"
		}
	}
	return v, nil
}

// post runs an action and returns the tab to go back to and the flash key.
func (g *signingAdmin) post(r *http.Request, action string) (tab, flash string, err error) {
	ctx := r.Context()
	form := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	switch action {
	case "api-on", "api-off":
		on := action == "api-on"
		return "overview", action, g.s.svs.SetEnabled(ctx, on)
	case "ntp-save":
		cfg, err := parseNTPForm(r)
		if err != nil {
			return "overview", "", err
		}
		old := g.s.clock.Status().Config
		cfg.Interval = old.Interval
		if err := saveNTPConfig(ctx, g.node.DB, old, cfg); err != nil {
			return "overview", "", err
		}
		g.s.clock.Configure(cfg)
		g.notify(r, g.checkNotice(ctx, "时间源设置已保存并立即生效。"))
		return "overview", "ntp-saved", nil
	case "ntp-check":
		st := g.s.clock.Status()
		if !st.Enabled || len(st.Servers) == 0 {
			return "overview", "", ihos.Errorf(ihos.EInvalid, "未开启时间同步或未配置时间服务器，无法校时")
		}
		g.notify(r, g.checkNotice(ctx, ""))
		return "overview", "ntp-checked", nil
	case "app-create", "app-update":
		a := svs.App{ID: form("id"), Name: form("name"), KeyName: form("key_name"), TrustChains: r.PostForm["trust_chains"],
			Revocation: form("revocation"), Timestamp: form("timestamp") == "true", Note: form("note")}
		if action == "app-update" {
			old, err := g.findApp(ctx, a.ID)
			if err != nil {
				return "apps", "", err
			}
			a.Name = old.Name // the name is not changed: calling systems and the log know the application by it
			return "apps", "updated", g.s.svs.UpdateApp(ctx, a)
		}
		a.ID = ""
		token, err := g.s.svs.CreateApp(ctx, a)
		if err != nil {
			return "apps", "", err
		}
		g.notify(r, signingNotice{Text: "已新建应用 " + a.Name + "。", App: a.Name, Token: token})
		return "apps", "created", nil
	case "app-enable", "app-disable":
		on := action == "app-enable"
		if on {
			flash = "enabled"
		} else {
			flash = "disabled"
		}
		return "apps", flash, g.s.svs.SetAppEnabled(ctx, form("id"), on)
	case "app-rotate":
		app, err := g.findApp(ctx, form("id"))
		if err != nil {
			return "apps", "", err
		}
		token, err := g.s.svs.RotateToken(ctx, app.ID)
		if err != nil {
			return "apps", "", err
		}
		text := "已为应用 " + app.Name + " 更换令牌，旧令牌已失效。"
		if app.Name == platformApp {
			text += "本院平台会在下次签名时自动换用新令牌。"
		}
		g.notify(r, signingNotice{Text: text, App: app.Name, Token: token})
		return "apps", "rotated", nil
	case "trust-import":
		list, err := g.s.svs.ImportTrust(ctx, form("chain"), []byte(r.PostFormValue("pem")), form("crl_url"))
		if err != nil {
			return "trust", "", err
		}
		text := fmt.Sprintf("已导入信任链 %s 的 %d 个 CA 证书。", form("chain"), len(list))
		if form("crl_url") != "" {
			text += "CRL 正在后台获取，稍后刷新本页查看。"
		}
		g.notify(r, signingNotice{Text: text})
		return "trust", "imported", nil
	case "trust-remove":
		return "trust", "removed", g.s.svs.RemoveTrust(ctx, form("chain"))
	case "trust-refresh":
		if err := g.s.svs.RefreshCRLs(ctx); err != nil {
			if _, ok := err.(*ihos.Error); ok { // the database, not a CRL server
				return "trust", "", err
			}
			g.notify(r, signingNotice{Err: true, Text: "部分 CRL 获取失败，已保留上次获取的 CRL，原因见下表。"})
			return "trust", "refresh-failed", nil
		}
		g.notify(r, signingNotice{Text: "CRL 已刷新，新的 CRL 立即用于验证。"})
		return "trust", "refreshed", nil
	case "cert-import":
		sc, err := g.s.svs.ImportCert(ctx, []byte(r.PostFormValue("pem")))
		if err != nil {
			return "certs", "", err
		}
		g.notify(r, signingNotice{Text: fmt.Sprintf("证书已导入证书库：%s（序列号 %s）。", sc.CommonName, sc.Serial)})
		return "certs", "imported", nil
	case "restore":
		return "backup", "restored", g.restore(ctx, []byte(r.PostFormValue("backup")))
	case "staff-revoke":
		serialText := strings.ToLower(form("serial"))
		serial, ok := new(big.Int).SetString(serialText, 16)
		if !ok {
			return "staff", "", ihos.Errorf(ihos.EInvalid, "证书序列号无效")
		}
		reason, _ := strconv.Atoi(form("reason"))
		if !slices.Contains(staffRevokeReasons, reason) {
			return "staff", "", ihos.Errorf(ihos.EInvalid, "请选择吊销原因")
		}
		var n int
		if err := g.node.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM staff_keys WHERE cert_serial = ?`, serial.Text(16)).Scan(&n); err != nil {
			return "staff", "", ihos.Internal(err)
		}
		if n == 0 {
			return "staff", "", ihos.Errorf(ihos.ENotFound, "没有序列号为 %s 的人员签名证书", serial.Text(16))
		}
		return "staff", "revoked", g.s.ca.Revoke(ctx, serial, reason)
	}
	return "overview", "", ihos.Errorf(ihos.ENotFound, "未知操作")
}

// findApp returns the application with id.
func (g *signingAdmin) findApp(ctx context.Context, id string) (svs.App, error) {
	apps, err := g.s.svs.ListApps(ctx)
	if err != nil {
		return svs.App{}, err
	}
	i := slices.IndexFunc(apps, func(a svs.App) bool { return a.ID == id })
	if id == "" || i < 0 {
		return svs.App{}, ihos.Errorf(ihos.ENotFound, "应用不存在")
	}
	return apps[i], nil
}

// checkNotice checks the clock now and says how it went, after prefix.
func (g *signingAdmin) checkNotice(ctx context.Context, prefix string) signingNotice {
	st := g.s.clock.Status()
	if !st.Enabled || len(st.Servers) == 0 {
		return signingNotice{Text: prefix + "时间同步已关闭：签名使用本机时钟。"}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.s.clock.Check(cctx); err != nil {
		return signingNotice{Err: true, Text: prefix + "校时失败，暂停签名和时间戳服务：" + ihos.Truncate(err.Error(), 300)}
	}
	st = g.s.clock.Status()
	if st.Last == nil {
		return signingNotice{Text: prefix}
	}
	text := fmt.Sprintf("%s校时完成：本机时间与 %s 相差 %s。", prefix, st.Last.Server, showOffset(st.Last.Offset))
	// Beyond the limit the notice is red; the status says why signing stopped.
	return signingNotice{Err: !st.Ready, Text: text}
}

// The time source's settings are kept in svs_settings under this name, as
// JSON; without the row the configuration file's values apply.
const ntpSettingName = "ntp"

type ntpSettings struct {
	Servers     []string `json:"servers"`
	Enabled     bool     `json:"enabled"`
	MaxOffsetMS int64    `json:"max_offset_ms"`
}

func settingsOf(c ntp.Config) ntpSettings {
	return ntpSettings{Servers: append([]string{}, c.Servers...), Enabled: c.Enabled, MaxOffsetMS: c.MaxOffset.Milliseconds()}
}

// loadNTPConfig returns the time source's configuration saved on the console,
// or defaults when none was saved; stored says which.
func loadNTPConfig(ctx context.Context, db *sqldb.DB, defaults ntp.Config) (cfg ntp.Config, stored bool, err error) {
	var raw string
	err = db.QueryRowContext(ctx, `SELECT value FROM svs_settings WHERE name = ?`, ntpSettingName).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return defaults, false, nil
	}
	if err != nil {
		return defaults, false, ihos.Internal(fmt.Errorf("appliance: read the time source settings: %w", err))
	}
	var s ntpSettings
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return defaults, false, ihos.Internal(fmt.Errorf("appliance: the time source settings are damaged: %w", err))
	}
	cfg = defaults
	cfg.Servers, cfg.Enabled, cfg.MaxOffset = s.Servers, s.Enabled, time.Duration(s.MaxOffsetMS)*time.Millisecond
	return cfg, true, nil
}

// saveNTPConfig stores cfg and audits the change from old.
func saveNTPConfig(ctx context.Context, db *sqldb.DB, old, cfg ntp.Config) error {
	after, err := json.Marshal(settingsOf(cfg))
	if err != nil {
		return ihos.Internal(err)
	}
	if len(after) > 500 {
		return ihos.Invalid(map[string]string{"servers": "时间服务器过多或地址过长"})
	}
	before, _ := json.Marshal(settingsOf(old))
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM svs_settings WHERE name = ?`, ntpSettingName); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO svs_settings (name, value) VALUES (?, ?)`, ntpSettingName, string(after)); err != nil {
			return err
		}
		summary := "修改时间源设置：关闭同步"
		if cfg.Enabled {
			summary = fmt.Sprintf("修改时间源设置：%s，允许偏差 %d 毫秒", strings.Join(cfg.Servers, "、"), cfg.MaxOffset.Milliseconds())
		}
		return audit.Append(ctx, db, tx, audit.Entry{Action: "update", Resource: "svs_settings", RecordID: ntpSettingName,
			Summary: ihos.Truncate(summary, 300), Before: before, After: after})
	})
	if err != nil {
		return ihos.Internal(fmt.Errorf("appliance: save the time source settings: %w", err))
	}
	return nil
}

var ntpHostRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// checkNTPSettings validates settings from the form or a backup.
func checkNTPSettings(s ntpSettings) (ntp.Config, error) {
	fields := map[string]string{}
	var servers []string
	for _, srv := range s.Servers {
		srv = strings.TrimSpace(srv)
		if srv == "" || slices.Contains(servers, srv) {
			continue
		}
		host, port := srv, ""
		if h, p, err := net.SplitHostPort(srv); err == nil {
			host, port = h, p
		}
		ok := len(srv) <= 80 && host != "" && (ntpHostRE.MatchString(host) || net.ParseIP(host) != nil)
		if port != "" {
			n, err := strconv.Atoi(port)
			ok = ok && err == nil && n > 0 && n < 65536
		}
		if !ok {
			fields["servers"] = fmt.Sprintf("时间服务器地址 %q 无效（应为主机名或 IP，可带 :端口，最长 80 个字符）", ihos.Truncate(srv, 80))
			continue
		}
		servers = append(servers, srv)
	}
	if len(servers) > 5 {
		fields["servers"] = "最多填写 5 个时间服务器"
	}
	if s.Enabled && len(servers) == 0 && fields["servers"] == "" {
		fields["servers"] = "开启同步时请至少填写一个时间服务器"
	}
	if s.MaxOffsetMS < 1 || s.MaxOffsetMS > 600_000 {
		fields["max_offset_ms"] = "允许的最大偏差应为 1 到 600000 毫秒"
	}
	if len(fields) > 0 {
		return ntp.Config{}, ihos.Invalid(fields)
	}
	return ntp.Config{Servers: servers, Enabled: s.Enabled, MaxOffset: time.Duration(s.MaxOffsetMS) * time.Millisecond}, nil
}

func parseNTPForm(r *http.Request) (ntp.Config, error) {
	s := ntpSettings{Servers: strings.FieldsFunc(r.PostFormValue("servers"), func(c rune) bool { return c == '\n' || c == '\r' || c == ',' || c == ' ' }),
		Enabled: r.PostFormValue("enabled") == "true"}
	ms := strings.TrimSpace(r.PostFormValue("max_offset_ms"))
	if ms == "" {
		s.MaxOffsetMS = 1000
	} else if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
		s.MaxOffsetMS = n
	} else {
		return ntp.Config{}, ihos.Invalid(map[string]string{"max_offset_ms": "允许的最大偏差应为整数毫秒"})
	}
	return checkNTPSettings(s)
}

// backupDocument is the download: the signing server's backup (svs.Backup)
// with the time source's settings beside it.
func (g *signingAdmin) backup(ctx context.Context) ([]byte, error) {
	raw, err := g.s.svs.Backup(ctx)
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, ihos.Internal(err)
	}
	settings, _ := json.Marshal(settingsOf(g.s.clock.Status().Config))
	doc["ntp"] = settings
	return json.MarshalIndent(doc, "", "  ")
}

// restore restores a backup made by backup (or by svs.Backup alone), the
// time source included when the backup has it.
func (g *signingAdmin) restore(ctx context.Context, data []byte) error {
	if len(strings.TrimSpace(string(data))) == 0 {
		return ihos.Invalid(map[string]string{"backup": "请选择备份文件"})
	}
	var doc struct {
		NTP *ntpSettings `json:"ntp"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return ihos.Errorf(ihos.EInvalid, "备份文件不是有效的 JSON")
	}
	var cfg ntp.Config
	if doc.NTP != nil {
		var err error
		if cfg, err = checkNTPSettings(*doc.NTP); err != nil {
			return ihos.Errorf(ihos.EInvalid, "备份中的时间源设置无效：%s", errorText(err))
		}
	}
	if err := g.s.svs.Restore(ctx, data); err != nil {
		return err
	}
	if doc.NTP != nil {
		old := g.s.clock.Status().Config
		cfg.Interval = old.Interval
		if err := saveNTPConfig(ctx, g.node.DB, old, cfg); err != nil {
			return err
		}
		g.s.clock.Configure(cfg)
		// Configure forgets the last measurement; measure again now, as
		// saving the settings does, so signing does not pause until the
		// clock's next round. A failure shows on the page's clock status.
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := g.s.clock.Check(cctx); err != nil {
			slog.Warn("signing: time check after restore", "err", err)
		}
	}
	return nil
}

// routes registers what the console page cannot serve: the backup download
// and the page's script.
func (g *signingAdmin) routes(mux *http.ServeMux) {
	mux.Handle("GET /console/x/signing/backup", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if _, ok := ihos.ActorFrom(r.Context()); !ok {
			http.Redirect(w, r, "/console/login?next="+url.QueryEscape("/console/x/signing?tab=backup"), http.StatusFound)
			return nil
		}
		if err := g.node.Auth.Authorize(r.Context(), "signing.write", ""); err != nil {
			return err
		}
		b, err := g.backup(r.Context())
		if err != nil {
			return err
		}
		name := "ihos-signing-backup-" + time.Now().In(ihos.Shanghai).Format("20060102-150405") + ".json"
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
		return nil
	}))
	mux.HandleFunc("GET /console/x/signing/signing.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Write([]byte(signingScript))
	})
}

// signingScript reads a chosen file into the form's text box (so the form
// posts as an ordinary form with its CSRF token; a DER certificate becomes
// PEM) and copies a new token. Without it the text boxes still take a paste.
const signingScript = `// 签名验签服务页面：把选择的文件读入文本框；复制令牌。
(function () {
  function pem(bytes) {
    var s = '';
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    var b64 = btoa(s).replace(/(.{64})/g, '$1\n');
    return '-----BEGIN CERTIFICATE-----\n' + b64 + '\n-----END CERTIFICATE-----\n';
  }
  document.addEventListener('change', function (ev) {
    var input = ev.target;
    if (!input.matches || !input.matches('input[type=file][data-load-into]')) return;
    var target = document.querySelector(input.dataset.loadInto);
    var f = input.files && input.files[0];
    if (!target || !f) return;
    if (f.size > 8 * 1024 * 1024) {
      window.alert('文件过大（不能超过 8 MB）');
      input.value = '';
      return;
    }
    var r = new FileReader();
    r.onload = function () {
      var bytes = new Uint8Array(r.result);
      var text = new TextDecoder('utf-8').decode(bytes);
      var head = text.replace(/^\uFEFF/, '').trimStart();
      target.value = (head.indexOf('-----BEGIN') === 0 || head.charAt(0) === '{' || input.dataset.kind === 'text') ? text : pem(bytes);
      target.dispatchEvent(new Event('input', {bubbles: true}));
    };
    r.readAsArrayBuffer(f);
  });
  document.addEventListener('click', function (ev) {
    var b = ev.target.closest('[data-copy]');
    if (!b) return;
    var el = document.querySelector(b.dataset.copy);
    if (!el) return;
    el.select();
    var done = function () { b.textContent = '已复制'; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(el.value).then(done, function () { document.execCommand('copy'); done(); });
    } else {
      document.execCommand('copy');
      done();
    }
  });
})();
`
