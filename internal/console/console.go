// Package console serves the LAN console's pages: login, the home page, and for
// every admin resource a list page (search, filters, paging) and a form (create,
// edit), plus the audit log. Pages are server-rendered html/template embedded in
// the binary; forms post back with the session's CSRF token. The pages call the
// same admin.Store as the JSON API, so the rules, permissions and audit trail are
// identical whichever way staff work.
package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/audit"
	"ihos/internal/auth"
	"ihos/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console serves the pages.
type Console struct {
	Store   *admin.Store
	Auth    *auth.Service
	Product string // shown in the title bar, e.g. "互联网医院 · 院内管理控制台"
	Secure  bool   // set the Secure flag on the session cookie (console served over TLS)

	pages map[string]*template.Template
	funcs template.FuncMap
	extra []*Page
}

// Page is a page a service adds to the console beside the resource pages: the
// sync status, later the printers and the kiosk. It is served at
// /console/x/<Name> and listed in the menu for roles holding Perm.
type Page struct {
	Name     string
	Title    string
	Perm     string
	Template string // the page's {{define "content"}}…{{end}}, rendered inside the layout with Data's result as .Data
	Data     func(r *http.Request) (any, error)
	// Post, if set, handles POST /console/x/<Name>/<action> (with the CSRF
	// token) and returns the key of a Flashes message to show after redirect.
	Post    func(r *http.Request, action string) (flash string, err error)
	Flashes map[string]string
	// After names the menu item (a resource's Name, or "x-" and a page's
	// Name) this page follows in the menu, to keep related pages together;
	// empty or not in the menu: the page goes at the end.
	After string

	tmpl *template.Template
}

// AddPage adds p; call it before Routes. A template error panics: it is a bug.
func (c *Console) AddPage(p Page) {
	p.tmpl = template.Must(template.Must(template.New("layout.html").Funcs(c.funcs).ParseFS(templateFS, "templates/layout.html")).Parse(p.Template))
	c.extra = append(c.extra, &p)
}

// New parses the templates; it panics on a template error, which is a bug.
func New(store *admin.Store, a *auth.Service, product string) *Console {
	c := &Console{Store: store, Auth: a, Product: product, pages: map[string]*template.Template{}}
	funcs := template.FuncMap{
		"localtime": localTime,
		"yuan":      ihos.FormatYuan,
		"cell":      cell,
		"inputValue": func(f admin.Field, v any) string {
			if f.Type == admin.Money {
				if n, ok := v.(int64); ok {
					return ihos.FormatYuan(n)
				}
			}
			if v == nil {
				return ""
			}
			return fmt.Sprint(v)
		},
		"isType":  func(f admin.Field, name string) bool { return typeName(f.Type) == name },
		"add":     func(a, b int) int { return a + b },
		"changes": c.changes,
		"actionLabel": func(a string) string {
			if l, ok := actionLabels[a]; ok {
				return l
			}
			return a
		},
	}
	c.funcs = funcs
	for _, page := range []string{"login", "home", "list", "form", "audit", "error"} {
		t := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html"))
		c.pages[page] = t
	}
	return c
}

var actionLabels = map[string]string{
	"create": "新增", "update": "修改", "enable": "启用", "disable": "停用", "delete": "删除",
	audit.ActionLogin: "登录", audit.ActionLoginFailed: "登录失败", audit.ActionLogout: "退出", audit.ActionDenied: "越权拒绝",
	// Actions of the printers, kiosks, recorders and payments.
	"export": "导出", "print": "打印", "reprint": "补打", "test_print": "测试打印", "cancel": "取消", "confirm": "确认",
	"pair": "配对", "unpair": "解除配对", "pairing_code": "生成配对码", "hold": "封存", "refund": "退款",
	"view": "查看", "resolve": "处理", "changed": "源文件被改动", "link": "关联", "import": "导入", "upload": "上传",
}

func typeName(t admin.FieldType) string {
	return [...]string{"text", "longtext", "int", "money", "bool", "enum", "ref", "phone", "idnumber", "password"}[t]
}

// localTime shows a stored time (text or time.Time) in Beijing time.
func localTime(v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case string:
		var err error
		if t, err = ihos.ParseTime(x); err != nil {
			return x
		}
	default:
		return fmt.Sprint(v)
	}
	return t.In(ihos.Shanghai).Format("2006-01-02 15:04:05")
}

// cell renders a record's value for a list cell or the audit diff (where
// records come back from JSON, so numbers are json.Number).
func cell(f admin.Field, rec admin.Record) string {
	v := rec[f.Name]
	switch f.Type {
	case admin.Bool:
		on, _ := v.(bool)
		switch {
		case f.Name == "enabled" && on:
			return "启用"
		case f.Name == "enabled":
			return "停用"
		case on:
			return "是"
		}
		return "否"
	case admin.Money:
		var n int64
		switch x := v.(type) {
		case int64:
			n = x
		case json.Number:
			n, _ = x.Int64()
		}
		return "¥" + ihos.FormatYuan(n)
	case admin.Ref:
		if name, _ := rec[f.Name+"_name"].(string); name != "" {
			return name
		}
	case admin.Enum:
		for _, o := range f.Options {
			if o.Value == v {
				return o.Label
			}
		}
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// change is one field of an audit entry's record before and after, for people.
type change struct {
	Label, Before, After string
}

// changes lists the fields an audited change touched, with the resource's Chinese
// labels and values shown as in the list (option labels, 是/否, names of
// referenced records). For a create or a delete, where only one side exists, it
// lists every field that has a value. Bookkeeping fields are left out.
func (c *Console) changes(resource string, before, after json.RawMessage) []change {
	decode := func(raw json.RawMessage) map[string]any {
		if len(raw) == 0 {
			return nil
		}
		m := map[string]any{}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if dec.Decode(&m) != nil {
			return nil
		}
		return m
	}
	b, a := decode(before), decode(after)
	if b == nil && a == nil {
		return nil
	}
	res, _ := c.Store.Resource(resource)
	var fields []admin.Field
	if res != nil {
		fields = append(fields, res.Fields...)
	}
	fields = append(fields, admin.Field{Name: "enabled", Label: "状态", Type: admin.Bool})
	show := func(f admin.Field, rec map[string]any) string {
		if v, ok := rec[f.Name]; !ok || v == nil {
			return ""
		}
		return cell(f, rec)
	}
	var out []change
	for _, f := range fields {
		if _, inB := b[f.Name]; !inB {
			if _, inA := a[f.Name]; !inA {
				continue
			}
		}
		ch := change{Label: f.Label, Before: show(f, b), After: show(f, a)}
		if b != nil && a != nil && ch.Before == ch.After {
			continue
		}
		if (b == nil || a == nil) && ch.Before+ch.After == "" {
			continue
		}
		out = append(out, ch)
	}
	return out
}

// Routes registers the pages under /console/ and the static files.
func (c *Console) Routes(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
	mux.Handle("GET /console/login", c.page(c.loginPage, false))
	mux.Handle("POST /console/login", c.page(c.loginSubmit, false))
	mux.Handle("POST /console/logout", c.page(c.logout, true))
	mux.Handle("GET /console/{$}", c.page(c.home, true))
	mux.Handle("GET /console/audit", c.page(c.auditPage, true))
	mux.Handle("GET /console/r/{resource}", c.page(c.list, true))
	mux.Handle("GET /console/r/{resource}/new", c.page(c.form, true))
	mux.Handle("POST /console/r/{resource}/new", c.page(c.form, true))
	mux.Handle("GET /console/r/{resource}/{id}", c.page(c.form, true))
	mux.Handle("POST /console/r/{resource}/{id}", c.page(c.form, true))
	mux.Handle("POST /console/r/{resource}/{id}/{action}", c.page(c.action, true))
	for _, p := range c.extra {
		mux.Handle("GET /console/x/"+p.Name, c.page(c.extraPage(p), true))
		if p.Post != nil {
			mux.Handle("POST /console/x/"+p.Name+"/{action}", c.page(c.extraPost(p), true))
		}
	}
}

func (c *Console) extraPage(p *Page) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, v *view) (string, error) {
		if err := c.Auth.Authorize(r.Context(), p.Perm, ""); err != nil {
			return "", err
		}
		data, err := p.Data(r)
		if err != nil {
			return "", err
		}
		v.Title, v.Active, v.Data = p.Title, "x-"+p.Name, data
		if msg := p.Flashes[r.URL.Query().Get("msg")]; msg != "" {
			v.Flash = msg
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := p.tmpl.Execute(w, v); err != nil {
			web.WriteError(httptestDiscard{}, r, err)
		}
		return "", nil
	}
}

func (c *Console) extraPost(p *Page) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, v *view) (string, error) {
		if err := c.Auth.Authorize(r.Context(), p.Perm, ""); err != nil {
			return "", err
		}
		flash, err := p.Post(r, r.PathValue("action"))
		if err != nil {
			return "", err
		}
		http.Redirect(w, r, "/console/x/"+p.Name+"?msg="+url.QueryEscape(flash), http.StatusSeeOther)
		return "", nil
	}
}

// view is what every page template receives.
type view struct {
	Product  string
	Title    string
	User     *auth.User
	RoleName string
	CSRF     string
	Menu     []menuItem
	Active   string
	Flash    string
	Error    string
	Data     any
}

type menuItem struct {
	Href, Label, Name string
}

type pageFunc func(w http.ResponseWriter, r *http.Request, v *view) (string, error)

// page adapts a page function: it requires a session when asked (redirecting to
// the login page), builds the common view, renders the named template, and
// renders errors as a page rather than JSON.
func (c *Console) page(fn pageFunc, needSession bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := &view{Product: c.Product}
		if sess, ok := auth.SessionFrom(r.Context()); ok {
			u := sess.User
			v.User, v.CSRF = &u, sess.CSRF
			role, _ := auth.RoleByName(u.Role)
			v.RoleName = role.Label
			v.Menu = c.menu(u.Role)
		} else if needSession {
			http.Redirect(w, r, "/console/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
			return
		}
		v.Flash = flashes[r.URL.Query().Get("msg")]
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		name, err := fn(w, r, v)
		if err != nil {
			var e *ihos.Error
			if !errors.As(err, &e) {
				e = ihos.Internal(err)
			}
			if e.Code == ihos.EUnauthorized {
				http.Redirect(w, r, "/console/login", http.StatusFound)
				return
			}
			web.WriteError(httptestDiscard{}, r, err) // logs internal errors the same way the API does
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(web.Status(e.Code))
			v.Title, v.Error = "出错了", e.Message
			c.pages["error"].Execute(w, v)
			return
		}
		if name == "" {
			return // the handler redirected
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := c.pages[name].Execute(w, v); err != nil {
			web.WriteError(httptestDiscard{}, r, err)
		}
	})
}

// httptestDiscard is a ResponseWriter that drops the body: page errors are
// rendered as HTML, but logged through web.WriteError so the log has one format.
type httptestDiscard struct{}

func (httptestDiscard) Header() http.Header         { return http.Header{} }
func (httptestDiscard) Write(b []byte) (int, error) { return len(b), nil }
func (httptestDiscard) WriteHeader(int)             {}

var flashes = map[string]string{
	"saved": "已保存", "created": "已新增", "enabled": "已启用", "disabled": "已停用", "deleted": "已删除", "bye": "已退出登录",
}

func (c *Console) menu(role string) []menuItem {
	var m []menuItem
	for _, res := range c.Store.Resources() {
		if auth.Can(role, res.Perm+".read") {
			m = append(m, menuItem{Href: "/console/r/" + res.Name, Label: res.Title, Name: res.Name})
		}
	}
	for _, p := range c.extra {
		if auth.Can(role, p.Perm) {
			item := menuItem{Href: "/console/x/" + p.Name, Label: p.Title, Name: "x-" + p.Name}
			if i := slices.IndexFunc(m, func(it menuItem) bool { return it.Name == p.After }); p.After != "" && i >= 0 {
				m = slices.Insert(m, i+1, item)
			} else {
				m = append(m, item)
			}
		}
	}
	if auth.Can(role, "audit.read") {
		m = append(m, menuItem{Href: "/console/audit", Label: "审计日志", Name: "audit"})
	}
	return m
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request, v *view) (string, error) {
	v.Title = "登录"
	v.Data = map[string]string{"Next": safeNext(r.URL.Query().Get("next")), "Username": ""}
	return "login", nil
}

func (c *Console) loginSubmit(w http.ResponseWriter, r *http.Request, v *view) (string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	username, password := r.PostFormValue("username"), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	sess, err := c.Auth.Login(r.Context(), username, password, web.ClientIP(r), r.UserAgent())
	if err != nil {
		v.Title, v.Error = "登录", ihos.ErrorMessage(err)
		v.Data = map[string]string{"Next": next, "Username": username}
		w.WriteHeader(web.Status(ihos.ErrorCode(err)))
		return "login", nil
	}
	c.setCookie(w, sess.Token, sess.ExpiresAt)
	http.Redirect(w, r, next, http.StatusSeeOther)
	return "", nil
}

func (c *Console) setCookie(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: auth.CookieName, Value: token, Path: "/", Expires: expires,
		HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteStrictMode})
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, v *view) (string, error) {
	if ck, err := r.Cookie(auth.CookieName); err == nil {
		c.Auth.Logout(r.Context(), ck.Value)
	}
	c.setCookie(w, "", time.Unix(1, 0))
	http.Redirect(w, r, "/console/login?msg=bye", http.StatusSeeOther)
	return "", nil
}

// safeNext keeps post-login redirects on this site.
func safeNext(s string) string {
	if !strings.HasPrefix(s, "/console/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\r\n") {
		return "/console/"
	}
	return s
}

type homeCard struct {
	Href, Title string
	Total       int
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, v *view) (string, error) {
	v.Title, v.Active = "首页", "home"
	var cards []homeCard
	for _, res := range c.Store.Resources() {
		if !auth.Can(v.User.Role, res.Perm+".read") {
			continue
		}
		p, err := c.Store.List(r.Context(), res, admin.Query{PageSize: 1})
		if err != nil {
			return "", err
		}
		cards = append(cards, homeCard{Href: "/console/r/" + res.Name, Title: res.Title, Total: p.Total})
	}
	v.Data = cards
	return "home", nil
}

type filterView struct {
	Field   admin.Field
	Options []admin.Option
	Value   string
}

type listView struct {
	Res       *admin.Resource
	Columns   []admin.Field
	Filters   []filterView
	Q         string
	Enabled   string
	Page      *admin.Page
	Pages     int
	PrevURL   string
	NextURL   string
	CanWrite  bool
	CanDelete bool
	Back      string // this page's URL, so row actions return to the same search and page
}

func (c *Console) list(w http.ResponseWriter, r *http.Request, v *view) (string, error) {
	res, err := c.Store.Resource(r.PathValue("resource"))
	if err != nil {
		return "", err
	}
	v.Title, v.Active = res.Title, res.Name
	query := r.URL.Query()
	query.Del("msg")
	q, err := admin.ParseQuery(query)
	if err != nil {
		return "", err
	}
	page, err := c.Store.List(r.Context(), res, q)
	if err != nil {
		return "", err
	}
	lv := &listView{Res: res, Q: q.Q, Enabled: query.Get("enabled"), Page: page,
		CanWrite:  auth.Can(v.User.Role, res.Perm+".write") && !res.ReadOnly,
		CanDelete: auth.Can(v.User.Role, res.Perm+".write") && !res.NoDelete && !res.ReadOnly}
	lv.Pages = int(math.Ceil(float64(page.Total) / float64(page.PageSize)))
	lv.Back = "/console/r/" + res.Name
	if len(query) > 0 {
		lv.Back += "?" + query.Encode()
	}
	for _, f := range res.Fields {
		if f.List {
			lv.Columns = append(lv.Columns, f)
		}
		if f.Filter && (f.Type == admin.Enum || f.Type == admin.Ref || f.Type == admin.Bool) {
			fv := filterView{Field: f, Value: query.Get(f.Name)}
			switch f.Type {
			case admin.Enum:
				fv.Options = f.Options
			case admin.Bool:
				fv.Options = []admin.Option{{Value: "true", Label: "是"}, {Value: "false", Label: "否"}}
			case admin.Ref:
				if fv.Options, err = c.refOptions(r, f); err != nil {
					return "", err
				}
			}
			lv.Filters = append(lv.Filters, fv)
		}
	}
	lv.PrevURL, lv.NextURL = pager(query, page.Page, lv.Pages)
	v.Data = lv
	return "list", nil
}

// refOptions lists the records a Ref field may point at (the first 100 by the
// referenced resource's order; enough for institutions and departments).
func (c *Console) refOptions(r *http.Request, f admin.Field) ([]admin.Option, error) {
	ref, err := c.Store.Resource(f.Ref)
	if err != nil {
		return nil, err
	}
	p, err := c.Store.List(r.Context(), ref, admin.Query{PageSize: admin.MaxPageSize})
	if err != nil {
		return nil, err
	}
	opts := make([]admin.Option, 0, len(p.Items))
	for _, it := range p.Items {
		label := fmt.Sprint(it[ref.Display])
		if it["enabled"] == false {
			label += "（已停用）"
		}
		opts = append(opts, admin.Option{Value: it["id"].(string), Label: label})
	}
	return opts, nil
}

type formField struct {
	admin.Field
	Value   any
	Error   string
	Options []admin.Option
}

type formView struct {
	Res     *admin.Resource
	ID      string
	Version any
	Fields  []formField
	Record  admin.Record
	History []audit.Entry
}

func (c *Console) form(w http.ResponseWriter, r *http.Request, v *view) (string, error) {
	res, err := c.Store.Resource(r.PathValue("resource"))
	if err != nil {
		return "", err
	}
	id := r.PathValue("id")
	v.Active = res.Name
	v.Title = "新增" + res.Noun
	var rec admin.Record
	if id != "" {
		v.Title = "编辑" + res.Noun
		if rec, err = c.Store.Get(r.Context(), res, id); err != nil {
			return "", err
		}
	}
	fieldErrors := map[string]string{}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			return "", ihos.Errorf(ihos.EInvalid, "表单内容过大或格式错误")
		}
		input, bad := formInput(res, r.PostForm)
		if len(bad) == 0 {
			if id == "" {
				_, err = c.Store.Create(r.Context(), res, input)
			} else {
				input["version"] = r.PostFormValue("version")
				_, err = c.Store.Update(r.Context(), res, id, input)
			}
		} else {
			err = ihos.Invalid(bad)
		}
		if err == nil {
			msg := "saved"
			if id == "" {
				msg = "created"
			}
			http.Redirect(w, r, "/console/r/"+res.Name+"?msg="+msg, http.StatusSeeOther)
			return "", nil
		}
		var e *ihos.Error
		if !errors.As(err, &e) || (e.Code != ihos.EInvalid && e.Code != ihos.EConflict) {
			return "", err
		}
		v.Error, fieldErrors = e.Message, e.Fields
		if rec == nil {
			rec = admin.Record{}
		}
		for k, val := range input {
			rec[k] = val
		}
		w.WriteHeader(web.Status(e.Code))
	}
	fv := &formView{Res: res, ID: id, Record: rec}
	if rec != nil {
		fv.Version = rec["version"]
	}
	for _, f := range res.Fields {
		ff := formField{Field: f, Error: fieldErrors[f.Name]}
		if rec != nil && f.Type != admin.Password {
			ff.Value = rec[f.Name]
		} else if rec == nil && f.Default != nil {
			ff.Value = f.Default // a new record's form starts from the default
		}
		switch f.Type {
		case admin.Enum:
			ff.Options = f.Options
		case admin.Ref:
			if ff.Options, err = c.refOptions(r, f); err != nil {
				return "", err
			}
		}
		fv.Fields = append(fv.Fields, ff)
	}
	if id != "" && auth.Can(v.User.Role, "audit.read") {
		fv.History, _, _ = audit.List(r.Context(), c.Store.DB, audit.Filter{Resource: res.Name, RecordID: id, PageSize: 10})
	}
	v.Data = fv
	return "form", nil
}

// formInput turns posted form values into admin input: unchecked boxes are false,
// money typed in yuan becomes fen.
func formInput(res *admin.Resource, form url.Values) (map[string]any, map[string]string) {
	input := map[string]any{}
	bad := map[string]string{}
	for _, f := range res.Fields {
		switch f.Type {
		case admin.Bool:
			input[f.Name] = form.Get(f.Name) == "true"
		case admin.Int:
			// An empty number box means 0 for an optional field (what the store
			// stores for a missing one), and "missing" for a required one.
			if _, ok := form[f.Name]; !ok {
				continue
			}
			s := strings.TrimSpace(form.Get(f.Name))
			if s == "" {
				if f.Required {
					bad[f.Name] = "请填写" + f.Label
					continue
				}
				s = "0"
			}
			input[f.Name] = s
		case admin.Money:
			s := strings.TrimSpace(form.Get(f.Name))
			if s == "" {
				input[f.Name] = "0"
				continue
			}
			fen, err := ihos.ParseYuan(s)
			if err != nil || fen < 0 || fen > 100_000_000_000 {
				bad[f.Name] = "请输入金额（元，最多两位小数），如 12.50"
				continue
			}
			input[f.Name] = strconv.FormatInt(fen, 10)
		default:
			if _, ok := form[f.Name]; ok {
				input[f.Name] = form.Get(f.Name)
			}
		}
	}
	if e, ok := form["enabled"]; ok {
		input["enabled"] = e[0]
	}
	return input, bad
}

func (c *Console) action(w http.ResponseWriter, r *http.Request, v *view) (string, error) {
	res, err := c.Store.Resource(r.PathValue("resource"))
	if err != nil {
		return "", err
	}
	id := r.PathValue("id")
	var msg string
	switch r.PathValue("action") {
	case "enable":
		msg = "enabled"
		_, err = c.Store.SetEnabled(r.Context(), res, id, true)
	case "disable":
		msg = "disabled"
		_, err = c.Store.SetEnabled(r.Context(), res, id, false)
	case "delete":
		msg = "deleted"
		err = c.Store.Delete(r.Context(), res, id)
	default:
		return "", ihos.Errorf(ihos.ENotFound, "未知操作")
	}
	if err != nil {
		return "", err
	}
	back := "/console/r/" + res.Name
	if ref := r.PostFormValue("back"); strings.HasPrefix(ref, back) && !strings.ContainsAny(ref, "\r\n\\") {
		back = ref
	}
	sep := "?"
	if strings.Contains(back, "?") {
		sep = "&"
	}
	http.Redirect(w, r, back+sep+"msg="+msg, http.StatusSeeOther)
	return "", nil
}

type auditView struct {
	Entries  []audit.Entry
	Total    int
	Page     int
	Pages    int
	Filter   audit.Filter
	PrevURL  string
	NextURL  string
	Actions  []admin.Option
	Resource []admin.Option
	Intact   bool
	BadSeq   int64
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, v *view) (string, error) {
	if err := c.Auth.Authorize(r.Context(), "audit.read", ""); err != nil {
		return "", err
	}
	v.Title, v.Active = "审计日志", "audit"
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	f := audit.Filter{Resource: q.Get("resource"), Action: q.Get("action"), Q: q.Get("q"), RecordID: q.Get("record_id"), Page: page, PageSize: 30}
	entries, total, err := audit.List(r.Context(), c.Store.DB, f)
	if err != nil {
		return "", err
	}
	if f.Page < 1 {
		f.Page = 1
	}
	av := &auditView{Entries: entries, Total: total, Page: f.Page, Filter: f, Pages: (total + 29) / 30}
	for _, a := range []string{"create", "update", "enable", "disable", "delete", audit.ActionLogin, audit.ActionLoginFailed, audit.ActionLogout, audit.ActionDenied} {
		av.Actions = append(av.Actions, admin.Option{Value: a, Label: actionLabels[a]})
	}
	for _, res := range c.Store.Resources() {
		av.Resource = append(av.Resource, admin.Option{Value: res.Name, Label: res.Title})
	}
	if q.Get("verify") == "1" {
		bad, err := audit.Verify(r.Context(), c.Store.DB)
		if err != nil {
			return "", err
		}
		av.BadSeq, av.Intact = bad, bad == 0
		if bad == 0 {
			v.Flash = "审计链校验通过：全部记录未被篡改"
		} else {
			v.Error = fmt.Sprintf("审计链校验失败：第 %d 条记录起被篡改或缺失", bad)
		}
	}
	av.PrevURL, av.NextURL = pager(q, f.Page, av.Pages, "verify")
	v.Data = av
	return "audit", nil
}

// pager returns the links to the previous and next page ("" at either end):
// the current query with another page number, without the parameters in drop.
func pager(q url.Values, page, pages int, drop ...string) (prev, next string) {
	link := func(p int) string {
		u := url.Values{}
		for k, vs := range q {
			u[k] = vs
		}
		for _, k := range drop {
			u.Del(k)
		}
		u.Set("page", strconv.Itoa(p))
		return "?" + u.Encode()
	}
	if page > 1 {
		prev = link(page - 1)
	}
	if page < pages {
		next = link(page + 1)
	}
	return prev, next
}
