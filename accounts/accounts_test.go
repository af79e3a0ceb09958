package accounts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"ihos"
	"ihos/accounts"
	"ihos/his"
	"ihos/his/hissim"
	"ihos/idverify"
	"ihos/idverify/idsim"
	"ihos/internal/pii"
	"ihos/internal/simulate"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/sms"
	"ihos/sms/smssim"
)

// idNumber makes a valid GB 11643 number for a birth date.
func idNumber(birth time.Time, seq string) string {
	s := "110101" + birth.Format("20060102") + seq
	return s + string(ihos.IDCheckDigit(s))
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	svc   *accounts.Service
	db    *sqldb.DB
	sms   *smssim.Sim
	ids   *idsim.Sim
	url   string
	clock *clock
	child string // a child under 6 on the verification list
	mu    sync.Mutex
	links []his.LinkRequest
}

func setup(t *testing.T, db *sqldb.DB) *env {
	t.Helper()
	ctx := context.Background()
	smsSim, err := smssim.Start(ctx, smssim.Config{AccessKeyID: "k", AccessKeySecret: "s", SignName: "示例医院", TemplateCode: "SMS_1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smsSim.Close() })
	e := &env{t: t, db: db, sms: smsSim, clock: &clock{t: time.Now().UTC()}}
	e.child = idNumber(time.Now().In(ihos.Shanghai).AddDate(-3, 0, 0), "002")
	idSim, err := idsim.Start(ctx, idsim.Config{AppCode: "app", People: []idsim.Person{
		{Name: "张小宝", IDNumber: e.child},
		{Name: "张十五", IDNumber: idNumber(time.Now().AddDate(-15, 0, 0), "013")},
		{Name: "张七岁", IDNumber: idNumber(time.Now().AddDate(-7, 0, 0), "021")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idSim.Close() })
	e.ids = idSim
	sealer, err := pii.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	svc := accounts.New(db, sealer)
	svc.SMS = &sms.Client{URL: smsSim.URL(), AccessKeyID: "k", AccessKeySecret: "s", SignName: "示例医院", TemplateCode: "SMS_1"}
	svc.IDs = &idverify.Client{URL: idSim.URL(), AppCode: "app"}
	svc.Hospital = func(id string) bool { return id == "h1" }
	svc.Now = e.clock.now
	svc.LinkPatient = func(ctx context.Context, hospital string, req his.LinkRequest) (his.PatientLink, error) {
		e.mu.Lock()
		e.links = append(e.links, req)
		e.mu.Unlock()
		for _, p := range hissim.DemoPatients {
			if p.IDNumber == req.IDNumber {
				return his.PatientLink{PatientID: req.PatientID, HISPatientID: p.HISID, Status: his.LinkLinked, Confidence: 100}, nil
			}
		}
		return his.PatientLink{}, ihos.Errorf(ihos.ENotFound, "未在医院 HIS 中找到该患者的档案，请先到院建档")
	}
	e.svc = svc
	mux := http.NewServeMux()
	svc.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

type answer struct {
	status int
	body   map[string]any
	resp   *http.Response
}

func (a answer) msg() string { m, _ := a.body["message"].(string); return m }

// call sends a request with a bearer token (auth "Bearer …") or a cookie
// (auth "cookie:TOKEN:CSRF").
func (e *env) call(method, path, auth string, body any) answer {
	e.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", "")
	switch {
	case strings.HasPrefix(auth, "cookie:"):
		parts := strings.SplitN(auth, ":", 3)
		req.AddCookie(&http.Cookie{Name: accounts.CookieName, Value: parts[1]})
		if parts[2] != "" {
			req.Header.Set(accounts.CSRFHeader, parts[2])
		}
	case auth != "":
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, resp: resp}
	json.NewDecoder(resp.Body).Decode(&a.body)
	return a
}

// login requests a code, reads it from the simulator and logs in.
func (e *env) login(phone string) (token, csrf string) {
	e.t.Helper()
	if a := e.call("POST", "/api/patient/sms-code", "", map[string]string{"phone": phone}); a.status != http.StatusNoContent {
		e.t.Fatalf("sms-code: %d %v", a.status, a.body)
	}
	a := e.call("POST", "/api/patient/login", "", map[string]string{"hospital_id": "h1", "phone": phone, "code": e.sms.LastCode(phone)})
	if a.status != http.StatusOK {
		e.t.Fatalf("login: %d %v", a.status, a.body)
	}
	return a.body["token"].(string), a.body["csrf_token"].(string)
}

func TestCodeFlow(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		e := setup(t, db)
		phone := "13800138000"
		if a := e.call("POST", "/api/patient/sms-code", "", map[string]string{"phone": "12345"}); a.status != 400 || a.msg() != "请输入正确的 11 位手机号码" {
			t.Fatalf("bad phone: %d %v", a.status, a.body)
		}
		if a := e.call("POST", "/api/patient/sms-code", "", map[string]string{"phone": phone}); a.status != 204 {
			t.Fatalf("sms-code: %d %v", a.status, a.body)
		}
		code := e.sms.LastCode(phone)
		if len(code) != 6 {
			t.Fatalf("code %q", code)
		}
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		a := e.call("POST", "/api/patient/login", "", map[string]string{"hospital_id": "h1", "phone": phone, "code": wrong})
		if a.status != 400 || a.msg() != "验证码错误，请重新输入" {
			t.Fatalf("wrong code: %d %v", a.status, a.body)
		}
		if a := e.call("POST", "/api/patient/login", "", map[string]string{"hospital_id": "h9", "phone": phone, "code": code}); a.status != 400 {
			t.Fatalf("unknown hospital: %d %v", a.status, a.body)
		}
		a = e.call("POST", "/api/patient/login", "", map[string]string{"hospital_id": "h1", "phone": phone, "code": code})
		if a.status != 200 || a.body["created"] != true {
			t.Fatalf("login: %d %v", a.status, a.body)
		}
		var cookie *http.Cookie
		for _, c := range a.resp.Cookies() {
			if c.Name == accounts.CookieName {
				cookie = c
			}
		}
		if cookie == nil || !cookie.HttpOnly || cookie.Value != a.body["token"] {
			t.Fatalf("cookie %+v", cookie)
		}
		token, csrf := a.body["token"].(string), a.body["csrf_token"].(string)
		// A code works once.
		if a := e.call("POST", "/api/patient/login", "", map[string]string{"hospital_id": "h1", "phone": phone, "code": code}); a.status != 400 || a.msg() != "验证码已失效，请重新获取" {
			t.Fatalf("code reused: %d %v", a.status, a.body)
		}
		me := e.call("GET", "/api/patient/me", token, nil)
		p, _ := me.body["patient"].(map[string]any)
		if me.status != 200 || p["phone"] != "138****8000" || p["verified"] != false {
			t.Fatalf("me: %d %v", me.status, me.body)
		}
		if me := e.call("GET", "/api/patient/me", "cookie:"+token+":", nil); me.status != 200 || me.body["csrf_token"] != csrf {
			t.Fatalf("me by cookie: %d %v", me.status, me.body)
		}
		// A cookie write needs the CSRF token; a bearer write does not.
		if a := e.call("POST", "/api/patient/realname", "cookie:"+token+":", map[string]string{}); a.status != 403 {
			t.Fatalf("cookie write without CSRF: %d %v", a.status, a.body)
		}
		// The phone is sealed at rest; the code is kept as a hash only.
		var sealed, hash string
		db.QueryRow(`SELECT phone FROM patient_accounts`).Scan(&sealed)
		db.QueryRow(`SELECT code_hash FROM patient_sms_codes`).Scan(&hash)
		if strings.Contains(sealed, phone) || !strings.HasPrefix(sealed, "sm4gcm1:") || strings.Contains(hash, code) {
			t.Fatalf("stored phone %q, code hash %q", sealed, hash)
		}
		// Logging in again finds the same account.
		e.clock.add(time.Minute + time.Second)
		tok2, _ := e.login(phone)
		me2 := e.call("GET", "/api/patient/me", tok2, nil)
		if me2.body["patient"].(map[string]any)["account_id"] != p["account_id"] {
			t.Fatalf("second login: %v vs %v", me2.body, p)
		}
		// Log out ends that session only.
		if a := e.call("POST", "/api/patient/logout", tok2, nil); a.status != 204 {
			t.Fatalf("logout: %d %v", a.status, a.body)
		}
		if a := e.call("GET", "/api/patient/me", tok2, nil); a.status != 401 {
			t.Fatalf("after logout: %d", a.status)
		}
		if a := e.call("GET", "/api/patient/me", token, nil); a.status != 200 {
			t.Fatalf("other session after logout: %d", a.status)
		}
		var n int
		db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE resource = 'patient_accounts' AND action IN ('create', 'login', 'login_failed', 'logout', 'sms_code')`).Scan(&n)
		if n < 7 {
			t.Fatalf("%d audit entries", n)
		}
	})
}

func TestCodeExpiryAttemptsAndRateLimits(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		e := setup(t, db)
		phone := "13900139000"
		login := func(code string) answer {
			return e.call("POST", "/api/patient/login", "", map[string]string{"hospital_id": "h1", "phone": phone, "code": code})
		}
		send := func(phone string) answer {
			return e.call("POST", "/api/patient/sms-code", "", map[string]string{"phone": phone})
		}
		if a := send(phone); a.status != 204 {
			t.Fatal(a.body)
		}
		// Again too soon.
		if a := send(phone); a.status != 429 || !strings.Contains(a.msg(), "秒后再试") {
			t.Fatalf("resend at once: %d %v", a.status, a.body)
		}
		// Expired after 5 minutes.
		e.clock.add(5*time.Minute + time.Second)
		if a := login(e.sms.LastCode(phone)); a.status != 400 || a.msg() != "验证码已过期，请重新获取" {
			t.Fatalf("expired: %d %v", a.status, a.body)
		}
		// Five wrong codes void it.
		if a := send(phone); a.status != 204 {
			t.Fatal(a.body)
		}
		code := e.sms.LastCode(phone)
		wrong := "123456"
		if wrong == code {
			wrong = "654321"
		}
		for i := 1; i <= 5; i++ {
			a := login(wrong)
			want := "验证码错误，请重新输入"
			if i == 5 {
				want = "验证码错误次数过多，请重新获取"
			}
			if a.status != 400 || a.msg() != want {
				t.Fatalf("wrong code %d: %d %v", i, a.status, a.body)
			}
		}
		if a := login(code); a.status != 400 || a.msg() != "验证码已失效，请重新获取" {
			t.Fatalf("right code after too many wrong: %d %v", a.status, a.body)
		}
		// A new code replaces the old one.
		e.clock.add(time.Minute)
		send(phone)
		old := e.sms.LastCode(phone)
		e.clock.add(time.Minute)
		send(phone)
		if a := login(old); old != e.sms.LastCode(phone) && a.status != 400 {
			t.Fatalf("replaced code accepted: %d %v", a.status, a.body)
		}
		// Five codes an hour per phone (four sent so far this hour).
		e.clock.add(time.Minute)
		if a := send(phone); a.status != 204 {
			t.Fatalf("fifth: %d %v", a.status, a.body)
		}
		e.clock.add(time.Minute)
		if a := send(phone); a.status != 429 || a.msg() != "该手机号获取验证码过于频繁，请 1 小时后再试" {
			t.Fatalf("sixth within the hour: %d %v", a.status, a.body)
		}
		e.clock.add(time.Hour)
		if a := send(phone); a.status != 204 {
			t.Fatalf("an hour later: %d %v", a.status, a.body)
		}
		// Per address: 20 an hour, whatever the phone.
		e.clock.add(2 * time.Hour)
		for i := 0; i < 20; i++ {
			if a := send(fmt.Sprintf("1370000%03d1", i)); a.status != 204 {
				t.Fatalf("phone %d: %d %v", i, a.status, a.body)
			}
		}
		if a := send("13611112222"); a.status != 429 || a.msg() != "获取验证码过于频繁，请稍后再试" {
			t.Fatalf("21st from one address: %d %v", a.status, a.body)
		}
		// A send the platform refuses leaves no valid code.
		e.clock.add(2 * time.Hour)
		e.sms.SetMode(simMode("down"))
		if a := send("13511112222"); a.status != 503 {
			t.Fatalf("platform down: %d %v", a.status, a.body)
		}
		var n int
		db.QueryRow(`SELECT COUNT(*) FROM patient_sms_codes WHERE used_at IS NULL AND created_at > ?`, ihos.FormatTime(e.clock.now().Add(-time.Minute))).Scan(&n)
		if n != 0 {
			t.Fatalf("%d valid codes after a failed send", n)
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		e := setup(t, db)
		token, _ := e.login("13700137000")
		// Used every few days, it lives until its absolute limit.
		for i := 0; i < 4; i++ {
			e.clock.add(6 * 24 * time.Hour)
			if a := e.call("GET", "/api/patient/me", token, nil); a.status != 200 {
				t.Fatalf("day %d: %d %v", 6*(i+1), a.status, a.body)
			}
		}
		e.clock.add(6 * 24 * time.Hour) // 30 days after login
		if a := e.call("GET", "/api/patient/me", token, nil); a.status != 401 || a.msg() != "未登录或登录已过期，请重新登录" {
			t.Fatalf("after 30 days: %d %v", a.status, a.body)
		}
		// Unused for more than 7 days, it ends.
		token, _ = e.login("13700137000")
		e.clock.add(7*24*time.Hour + time.Minute)
		if a := e.call("GET", "/api/patient/me", token, nil); a.status != 401 {
			t.Fatalf("idle: %d %v", a.status, a.body)
		}
		// Revoked, every session ends.
		e.clock.add(time.Hour)
		t1, _ := e.login("13700137000")
		e.clock.add(time.Hour)
		t2, _ := e.login("13700137000")
		p, err := e.svc.Lookup(context.Background(), t1)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Revoke(context.Background(), p.AccountID, "测试"); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{t1, t2} {
			if a := e.call("GET", "/api/patient/me", tok, nil); a.status != 401 {
				t.Fatalf("revoked: %d", a.status)
			}
		}
		var n int
		db.QueryRow(`SELECT COUNT(*) FROM patient_sessions`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d sessions left", n)
		}
	})
}

func TestRealNameAndMembers(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		e := setup(t, db)
		token, _ := e.login("13600136000")
		holder := hissim.DemoPatients[0]
		// Members need a verified holder.
		if a := e.call("POST", "/api/patient/members", token, map[string]any{"name": "李四", "id_number": hissim.DemoPatients[1].IDNumber, "relation": "parent"}); a.status != 403 {
			t.Fatalf("member before real name: %d %v", a.status, a.body)
		}
		bad := holder.IDNumber[:17] + "0"
		if bad == holder.IDNumber {
			bad = holder.IDNumber[:17] + "1"
		}
		calls := e.ids.Calls()
		if a := e.call("POST", "/api/patient/realname", token, map[string]string{"name": holder.Name, "id_number": bad}); a.status != 400 || a.msg() != "身份证号码校验不通过，请核对后重新输入" {
			t.Fatalf("bad checksum: %d %v", a.status, a.body)
		}
		if a := e.call("POST", "/api/patient/realname", token, map[string]string{"name": holder.Name, "id_number": "1234"}); a.status != 400 || a.msg() != "请输入 18 位居民身份证号码" {
			t.Fatalf("short number: %d %v", a.status, a.body)
		}
		if e.ids.Calls() != calls {
			t.Fatal("a number failing its checksum reached the verification service")
		}
		notListed := idNumber(time.Date(1980, 1, 2, 0, 0, 0, 0, time.UTC), "555")
		if a := e.call("POST", "/api/patient/realname", token, map[string]string{"name": holder.Name, "id_number": notListed}); a.status != 400 || a.msg() != "实名认证未通过：身份证号码不存在，请核对后重新输入" {
			t.Fatalf("not on the list: %d %v", a.status, a.body)
		}
		if a := e.call("POST", "/api/patient/realname", token, map[string]string{"name": "王小二", "id_number": holder.IDNumber}); a.status != 400 || a.msg() != "实名认证未通过：姓名与身份证号不一致，请核对后重新输入" {
			t.Fatalf("wrong name: %d %v", a.status, a.body)
		}
		if a := e.call("POST", "/api/patient/realname", token, map[string]string{"name": "张小宝", "id_number": e.child}); a.status != 400 || !strings.Contains(a.msg(), "未满 6 周岁的儿童不能单独注册") {
			t.Fatalf("a child as holder: %d %v", a.status, a.body)
		}
		a := e.call("POST", "/api/patient/realname", token, map[string]string{"name": holder.Name, "id_number": strings.ToLower(holder.IDNumber)})
		if a.status != 200 || a.body["relation"] != "self" || a.body["name"] != holder.Name || a.body["id_number"] != holder.IDNumber[:6]+"********"+holder.IDNumber[14:] {
			t.Fatalf("real name: %d %v", a.status, a.body)
		}
		selfID := a.body["id"].(string)
		if a := e.call("POST", "/api/patient/realname", token, map[string]string{"name": holder.Name, "id_number": holder.IDNumber}); a.status != 409 {
			t.Fatalf("twice: %d %v", a.status, a.body)
		}
		me := e.call("GET", "/api/patient/me", token, nil).body["patient"].(map[string]any)
		if me["verified"] != true || me["name"] != holder.Name || me["patient_id"] == "" {
			t.Fatalf("me %v", me)
		}
		// The same person cannot verify a second account.
		other, _ := e.login("13600136001")
		if a := e.call("POST", "/api/patient/realname", other, map[string]string{"name": holder.Name, "id_number": holder.IDNumber}); a.status != 409 {
			t.Fatalf("second account: %d %v", a.status, a.body)
		}
		// The ID number and phone are sealed in patients.
		var id, phone string
		db.QueryRow(`SELECT id_number, phone FROM patients WHERE id = ?`, me["patient_id"]).Scan(&id, &phone)
		if !strings.HasPrefix(id, "sm4gcm1:") || !strings.HasPrefix(phone, "sm4gcm1:") {
			t.Fatalf("stored %q %q", id, phone)
		}

		parent := hissim.DemoPatients[1]
		a = e.call("POST", "/api/patient/members", token, map[string]any{"name": parent.Name, "id_number": parent.IDNumber, "relation": "parent"})
		if a.status != 201 || a.body["relation_label"] != "父母" || a.body["guardian"] != false {
			t.Fatalf("parent: %d %v", a.status, a.body)
		}
		if a := e.call("POST", "/api/patient/members", token, map[string]any{"name": parent.Name, "id_number": parent.IDNumber, "relation": "parent"}); a.status != 409 {
			t.Fatalf("parent twice: %d %v", a.status, a.body)
		}
		// A child under 6: only their guardian may add them.
		if a := e.call("POST", "/api/patient/members", token, map[string]any{"name": "张小宝", "id_number": e.child, "relation": "child"}); a.status != 400 || a.msg() != "未满 6 周岁的儿童须由其监护人添加，请确认您是该儿童的监护人" {
			t.Fatalf("child without guardian: %d %v", a.status, a.body)
		}
		if a := e.call("POST", "/api/patient/members", token, map[string]any{"name": "张小宝", "id_number": e.child, "relation": "parent", "guardian": true}); a.status != 400 {
			t.Fatalf("child as a parent: %d %v", a.status, a.body)
		}
		a = e.call("POST", "/api/patient/members", token, map[string]any{"name": "张小宝", "id_number": e.child, "relation": "child", "guardian": true})
		if a.status != 201 || a.body["guardian"] != true || a.body["age"].(float64) != 3 {
			t.Fatalf("child with guardian: %d %v", a.status, a.body)
		}
		childID := a.body["id"].(string)
		// A child of 7 needs no guardian statement.
		seven := idNumber(time.Now().AddDate(-7, 0, 0), "021")
		if a := e.call("POST", "/api/patient/members", token, map[string]any{"name": "张七岁", "id_number": seven, "relation": "child"}); a.status != 201 {
			t.Fatalf("child of 7: %d %v", a.status, a.body)
		}
		// A holder under 18 cannot be a small child's guardian.
		teen, _ := e.login("13600136002")
		if a := e.call("POST", "/api/patient/realname", teen, map[string]string{"name": "张十五", "id_number": idNumber(time.Now().AddDate(-15, 0, 0), "013")}); a.status != 200 {
			t.Fatalf("teen real name: %d %v", a.status, a.body)
		}
		if a := e.call("POST", "/api/patient/members", teen, map[string]any{"name": "张小宝", "id_number": e.child, "relation": "other", "guardian": true}); a.status != 403 {
			t.Fatalf("teen as guardian: %d %v", a.status, a.body)
		}

		list := e.call("GET", "/api/patient/members", token, nil)
		ms, _ := list.body["members"].([]any)
		if list.status != 200 || len(ms) != 4 || ms[0].(map[string]any)["id"] != selfID {
			t.Fatalf("members: %d %v", list.status, list.body)
		}
		// Booking and payment find a member by their patients row, within the account only.
		pt, err := e.svc.Lookup(context.Background(), token)
		if err != nil {
			t.Fatal(err)
		}
		if m, err := e.svc.MemberByPatient(context.Background(), pt, me["patient_id"].(string)); err != nil || m.ID != selfID {
			t.Fatalf("member by patient: %+v %v", m, err)
		}
		ot, _ := e.svc.Lookup(context.Background(), other)
		if _, err := e.svc.MemberByPatient(context.Background(), ot, me["patient_id"].(string)); ihos.ErrorCode(err) != ihos.ENotFound {
			t.Fatalf("another account's person: %v", err)
		}
		// Another account cannot see or link them.
		if a := e.call("POST", "/api/patient/members/"+childID+"/link-his", other, nil); a.status != 404 {
			t.Fatalf("someone else's member: %d %v", a.status, a.body)
		}
		// Link to the HIS: the holder is there, the child is not.
		a = e.call("POST", "/api/patient/members/"+selfID+"/link-his", token, nil)
		if a.status != 200 || a.body["his_patient_id"] != holder.HISID || a.body["link_status"] != "linked" {
			t.Fatalf("link: %d %v", a.status, a.body)
		}
		e.mu.Lock()
		links := e.links
		e.mu.Unlock()
		if len(links) != 1 || links[0].IDNumber != holder.IDNumber || links[0].Name != holder.Name {
			t.Fatalf("link requests %+v", links)
		}
		if a := e.call("POST", "/api/patient/members/"+childID+"/link-his", token, nil); a.status != 404 || !strings.Contains(a.msg(), "请先到院建档") {
			t.Fatalf("child link: %d %v", a.status, a.body)
		}
		var n int
		db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE resource = 'patient_members'`).Scan(&n)
		if n != 6 { // self ×2, parent, child, child of 7, link
			t.Fatalf("%d member audit entries", n)
		}
	})
}

func TestRequiresGuardian(t *testing.T) {
	now := time.Now().In(ihos.Shanghai)
	day := func(y, m, d int) time.Time {
		return time.Date(now.Year()+y, now.Month()+time.Month(m), now.Day()+d, 0, 0, 0, 0, time.UTC)
	}
	for _, tt := range []struct {
		birth time.Time
		want  bool
	}{
		{day(0, 0, -1), true},
		{day(-5, 0, 0), true},
		{day(-6, 0, 1), true}, // sixth birthday tomorrow
		{day(-6, 0, 0), false},
		{day(-30, 0, 0), false},
	} {
		if got := accounts.RequiresGuardian(tt.birth); got != tt.want {
			t.Errorf("born %s: %v, want %v", tt.birth.Format(time.DateOnly), got, tt.want)
		}
	}
}

func simMode(name string) simulate.Mode { return simulate.Mode{Name: name} }
