package staffauth_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"ihos"
	"ihos/internal/pii"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/sms"
	"ihos/sms/smssim"
	"ihos/staffauth"
)

type clock struct {
	mu gosync.Mutex
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
	db    *sqldb.DB
	svc   *staffauth.Service
	sms   *smssim.Sim
	url   string
	clock *clock
	seal  *pii.Sealer
}

// setup runs the service over a real socket on db, which plays both sides:
// Grant writes staff_app_logins as the appliance does, and the cloud reads
// the same rows as its replica.
func setup(t *testing.T, db *sqldb.DB) *env {
	t.Helper()
	ctx := context.Background()
	sim, err := smssim.Start(ctx, smssim.Config{AccessKeyID: "k", AccessKeySecret: "s", SignName: "示例医院", TemplateCode: "SMS_1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	sealer, err := pii.New(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	// 09:00 in Shanghai.
	c := &clock{t: time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)}
	svc := staffauth.New(db, sealer)
	svc.Now = c.now
	svc.BcryptCost = 4
	svc.Hospital = "h1"
	svc.SMS = &sms.Client{URL: sim.URL(), AccessKeyID: "k", AccessKeySecret: "s", SignName: "示例医院", TemplateCode: "SMS_1", HTTP: &http.Client{Timeout: 5 * time.Second}}
	mux := http.NewServeMux()
	svc.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &env{t: t, db: db, svc: svc, sms: sim, url: srv.URL, clock: c, seal: sealer}
	now := ihos.FormatTime(c.now())
	e.exec(`INSERT INTO departments (id, hospital_id, institution_id, code, name, category, created_at, updated_at) VALUES ('d1', 'h1', 'i1', 'NK', '内科', '临床科室', ?, ?)`, now, now)
	return e
}

func (e *env) exec(q string, args ...any) {
	e.t.Helper()
	if err := e.db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := e.db.TxExec(context.Background(), tx, q, args...)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
}

// staff adds a staff row (as the console or the replica would hold it).
func (e *env) staff(id, name, kind, phone string) {
	e.t.Helper()
	sealed, err := e.seal.Seal(phone)
	if err != nil {
		e.t.Fatal(err)
	}
	now := ihos.FormatTime(e.clock.now())
	e.exec(`INSERT INTO staff (id, hospital_id, institution_id, department_id, job_no, name, kind, title, license_no, practice_since, phone, phone_bidx, enabled, created_at, updated_at)
		VALUES (?, 'h1', 'i1', 'd1', ?, ?, ?, '主治医师', 'LIC-1', 2010, ?, ?, 1, ?, ?)`, id, id, name, kind, sealed, e.seal.Index(phone), now, now)
}

func (e *env) grant(staffID string) string {
	e.t.Helper()
	pw, err := e.svc.Grant(context.Background(), staffID)
	if err != nil {
		e.t.Fatal(err)
	}
	return pw
}

// call sends a JSON request with a bearer token ("" for none) and decodes
// the answer into out (may be nil); it returns the status and the message.
func (e *env) call(method, path, token string, body, out any) (int, string) {
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
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	json.NewDecoder(resp.Body).Decode(&raw)
	var msg struct {
		Message string `json:"message"`
	}
	json.Unmarshal(raw, &msg)
	if out != nil {
		json.Unmarshal(raw, out)
	}
	return resp.StatusCode, msg.Message
}

type session struct {
	Token string `json:"token"`
	CSRF  string `json:"csrf_token"`
	Staff struct {
		ID            string `json:"id"`
		Name          string `json:"name"`
		Kind          string `json:"kind"`
		Title         string `json:"title"`
		Department    string `json:"department"`
		MustChange    bool   `json:"must_change"`
		RealNameToday bool   `json:"realname_today"`
	} `json:"staff"`
}

func (e *env) login(phone, password string) (session, int, string) {
	e.t.Helper()
	var s session
	code, msg := e.call("POST", "/api/staff/login", "", map[string]string{"phone": phone, "password": password}, &s)
	return s, code, msg
}

// loginReady logs in with the issued password and replaces it.
func (e *env) loginReady(phone, issued, chosen string) session {
	e.t.Helper()
	s, code, msg := e.login(phone, issued)
	if code != http.StatusOK {
		e.t.Fatalf("login: %d %s", code, msg)
	}
	if code, msg := e.call("POST", "/api/staff/password", s.Token, map[string]string{"old_password": issued, "new_password": chosen}, nil); code != http.StatusNoContent {
		e.t.Fatalf("change password: %d %s", code, msg)
	}
	return s
}

func TestLoginAndMustChange(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		e := setup(t, db)
		e.staff("s1", "王医生", ihos.StaffDoctor, "13800000001")
		pw := e.grant("s1")
		// The login phone rests sealed, found by its blind index.
		var phone, bidx string
		e.db.QueryRow(`SELECT phone, phone_bidx FROM staff_app_logins WHERE staff_id = 's1'`).Scan(&phone, &bidx)
		if plain, err := e.svc.Sealer.Open(phone); err != nil || plain != "13800000001" || strings.Contains(phone, "13800000001") {
			t.Fatalf("login phone %q opens to %q, %v", phone, plain, err)
		}
		if bidx != e.svc.Sealer.Index("13800000001") {
			t.Fatalf("login phone index %q", bidx)
		}
		var hash string
		e.db.QueryRow(`SELECT password_hash FROM staff_app_logins WHERE staff_id = 's1'`).Scan(&hash)
		if strings.Contains(hash, pw) || !strings.HasPrefix(hash, "$2") {
			t.Fatalf("stored password is not a bcrypt hash: %q", hash)
		}
		if _, code, msg := e.login("13800000001", "wrong-password-1"); code != http.StatusUnauthorized || msg != "手机号或密码错误" {
			t.Fatalf("wrong password: %d %s", code, msg)
		}
		if _, code, _ := e.login("13900000009", pw); code != http.StatusUnauthorized {
			t.Fatalf("unknown phone: %d", code)
		}
		s, code, msg := e.login("13800000001", pw)
		if code != http.StatusOK || !s.Staff.MustChange || s.Staff.Name != "王医生" || s.Staff.Department != "内科" || s.Staff.Title != "主治医师" {
			t.Fatalf("login: %d %s %+v", code, msg, s)
		}
		// Until the password is changed the session only reaches me and password.
		var me session
		if code, _ := e.call("GET", "/api/staff/me", s.Token, nil, &me); code != http.StatusOK || me.Staff.Kind != ihos.StaffDoctor || !me.Staff.MustChange {
			t.Fatalf("me: %d %+v", code, me)
		}
		if code, msg := e.call("POST", "/api/staff/realname/code", s.Token, nil, nil); code != http.StatusForbidden || msg != "首次登录请先修改密码" {
			t.Fatalf("before changing: %d %s", code, msg)
		}
		if code, _ := e.call("POST", "/api/staff/password", s.Token, map[string]string{"old_password": pw, "new_password": "short"}, nil); code != http.StatusBadRequest {
			t.Fatalf("weak password: %d", code)
		}
		if code, _ := e.call("POST", "/api/staff/password", s.Token, map[string]string{"old_password": "nope", "new_password": "Better-pass-2026"}, nil); code != http.StatusBadRequest {
			t.Fatalf("wrong old password: %d", code)
		}
		if code, msg := e.call("POST", "/api/staff/password", s.Token, map[string]string{"old_password": pw, "new_password": "Better-pass-2026"}, nil); code != http.StatusNoContent {
			t.Fatalf("change: %d %s", code, msg)
		}
		req, _ := http.NewRequest("GET", e.url, nil)
		req.Header.Set("Authorization", "Bearer "+s.Token)
		st, err := e.svc.Authorize(req)
		if err != nil || st.ID != "s1" || st.MustChange {
			t.Fatalf("authorize: %v %+v", err, st)
		}
		if _, code, _ := e.login("13800000001", pw); code != http.StatusUnauthorized {
			t.Fatalf("issued password after change: %d", code)
		}
		if s2, code, _ := e.login("13800000001", "Better-pass-2026"); code != http.StatusOK || s2.Staff.MustChange {
			t.Fatalf("chosen password: %d %+v", code, s2)
		}
		// A new issue from the console replaces the chosen password.
		pw2 := e.grant("s1")
		if _, code, _ := e.login("13800000001", "Better-pass-2026"); code != http.StatusUnauthorized {
			t.Fatalf("chosen password after reissue: %d", code)
		}
		if s3, code, _ := e.login("13800000001", pw2); code != http.StatusOK || !s3.Staff.MustChange {
			t.Fatalf("reissued: %d %+v", code, s3)
		}
		// Logout ends the session.
		if code, _ := e.call("POST", "/api/staff/logout", s.Token, nil, nil); code != http.StatusNoContent {
			t.Fatalf("logout: %d", code)
		}
		if code, _ := e.call("GET", "/api/staff/me", s.Token, nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("after logout: %d", code)
		}
	})
}

func TestLockout(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		e := setup(t, db)
		e.staff("s1", "王医生", ihos.StaffDoctor, "13800000001")
		pw := e.grant("s1")
		for i := 0; i < 4; i++ {
			if _, code, _ := e.login("13800000001", "wrong-password-1"); code != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d", i+1, code)
			}
		}
		if _, code, msg := e.login("13800000001", "wrong-password-1"); code != http.StatusTooManyRequests || !strings.Contains(msg, "15 分钟") {
			t.Fatalf("fifth failure: %d %s", code, msg)
		}
		if _, code, msg := e.login("13800000001", pw); code != http.StatusTooManyRequests || !strings.Contains(msg, "已锁定") {
			t.Fatalf("right password while locked: %d %s", code, msg)
		}
		e.clock.add(15*time.Minute + time.Second)
		if _, code, msg := e.login("13800000001", pw); code != http.StatusOK {
			t.Fatalf("after the lockout: %d %s", code, msg)
		}
		var failed int
		e.db.QueryRow(`SELECT failed_attempts FROM staff_app_state WHERE staff_id = 's1'`).Scan(&failed)
		if failed != 0 {
			t.Fatalf("failures after a good login: %d", failed)
		}
		// Guesses in parallel all count.
		e.staff("s2", "周医生", ihos.StaffDoctor, "13800000004")
		pw2 := e.grant("s2")
		var wg gosync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.login("13800000004", "wrong-password-1")
			}()
		}
		wg.Wait()
		if _, code, _ := e.login("13800000004", pw2); code != http.StatusTooManyRequests {
			t.Fatalf("right password after 8 parallel guesses: %d", code)
		}
	})
}

func TestOnlyActiveDoctorsAndPharmacists(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		e := setup(t, db)
		ctx := context.Background()
		e.staff("n1", "李护士", ihos.StaffNurse, "13800000002")
		if _, err := e.svc.Grant(ctx, "n1"); err == nil || !strings.Contains(err.Error(), "只有医师、药师") {
			t.Fatalf("grant to a nurse: %v", err)
		}
		// A nurse's row arriving anyway (granted by a later version) still cannot log in.
		hash, _ := bcrypt.GenerateFromPassword([]byte("Nurse-pass-2026"), 4)
		now := ihos.FormatTime(e.clock.now())
		sealed, _ := e.svc.Sealer.Seal("13800000002")
		e.exec(`INSERT INTO staff_app_logins (id, hospital_id, staff_id, phone, phone_bidx, enabled, password_hash, must_change, issued_at, version, created_at, updated_at)
			VALUES ('x1', 'h1', 'n1', ?, ?, 1, ?, 0, ?, 1, ?, ?)`, sealed, e.svc.Sealer.Index("13800000002"), string(hash), now, now, now)
		if _, code, msg := e.login("13800000002", "Nurse-pass-2026"); code != http.StatusForbidden || msg != "只有医师、药师可以登录互联网诊疗" {
			t.Fatalf("nurse: %d %s", code, msg)
		}
		e.staff("p1", "赵药师", ihos.StaffPharmacist, "13800000003")
		e.exec(`UPDATE staff SET title = '主管药师' WHERE id = 'p1'`)
		ppw := e.grant("p1")
		if s, code, msg := e.login("13800000003", ppw); code != http.StatusOK || s.Staff.Kind != ihos.StaffPharmacist {
			t.Fatalf("pharmacist: %d %s", code, msg)
		}
		e.staff("s2", "周医生", ihos.StaffDoctor, "13800000004")
		pw := e.grant("s2")
		e.exec(`UPDATE staff SET kind = 'nurse' WHERE id = 's2'`)
		if _, code, msg := e.login("13800000004", pw); code != http.StatusForbidden || msg != "只有医师、药师可以登录互联网诊疗" {
			t.Fatalf("kind changed to nurse: %d %s", code, msg)
		}
		e.exec(`UPDATE staff SET kind = 'doctor', enabled = 0 WHERE id = 's2'`)
		if _, code, msg := e.login("13800000004", pw); code != http.StatusForbidden || !strings.Contains(msg, "已停用") {
			t.Fatalf("disabled staff: %d %s", code, msg)
		}
		if _, err := e.svc.Grant(ctx, "s2"); err == nil {
			t.Fatal("grant to a disabled staff member")
		}
		e.exec(`UPDATE staff SET enabled = 1, license_no = '' WHERE id = 's2'`)
		if _, code, msg := e.login("13800000004", pw); code != http.StatusForbidden || !strings.Contains(msg, "执业资格") {
			t.Fatalf("no licence: %d %s", code, msg)
		}
		e.exec(`UPDATE staff SET license_no = 'LIC-2' WHERE id = 's2'`)
		if err := e.svc.Disable(ctx, "s2"); err != nil {
			t.Fatal(err)
		}
		if _, code, msg := e.login("13800000004", pw); code != http.StatusForbidden || !strings.Contains(msg, "未开通或已停用") {
			t.Fatalf("app access disabled: %d %s", code, msg)
		}
	})
}

func TestSessionExpiryAndRevocation(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		e := setup(t, db)
		e.staff("s1", "王医生", ihos.StaffDoctor, "13800000001")
		pw := e.grant("s1")
		s := e.loginReady("13800000001", pw, "Better-pass-2026")
		// Idle for more than 12 hours: gone.
		e.clock.add(12*time.Hour + time.Minute)
		if code, _ := e.call("GET", "/api/staff/me", s.Token, nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("idle session: %d", code)
		}
		// In use every 11 hours it still ends 7 days after login.
		s, _, _ = e.login("13800000001", "Better-pass-2026")
		for i := 0; i < 15; i++ {
			e.clock.add(11 * time.Hour)
			if code, _ := e.call("GET", "/api/staff/me", s.Token, nil, nil); code != http.StatusOK {
				t.Fatalf("session in use after %d h: %d", 11*(i+1), code)
			}
		}
		e.clock.add(11 * time.Hour) // 176 h > 7 days
		if code, _ := e.call("GET", "/api/staff/me", s.Token, nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("session past its maximum age: %d", code)
		}
		// The console disables the staff member; the replicated row arrives.
		s, _, _ = e.login("13800000001", "Better-pass-2026")
		if code, _ := e.call("GET", "/api/staff/me", s.Token, nil, nil); code != http.StatusOK {
			t.Fatalf("fresh session: %d", code)
		}
		e.exec(`UPDATE staff SET enabled = 0, version = version + 1 WHERE id = 's1'`)
		if code, msg := e.call("GET", "/api/staff/me", s.Token, nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("session of a disabled staff member: %d %s", code, msg)
		}
		var n int
		e.db.QueryRow(`SELECT COUNT(*) FROM staff_app_sessions WHERE staff_id = 's1'`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d sessions left", n)
		}
		// Re-enabled, the revoked session stays ended.
		e.exec(`UPDATE staff SET enabled = 1 WHERE id = 's1'`)
		if code, _ := e.call("GET", "/api/staff/me", s.Token, nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("revoked session came back: %d", code)
		}
		// Deleting the replica of the staff row works the same way.
		s, _, _ = e.login("13800000001", "Better-pass-2026")
		e.exec(`UPDATE staff SET deleted_at = ? WHERE id = 's1'`, ihos.FormatTime(e.clock.now()))
		if code, _ := e.call("GET", "/api/staff/me", s.Token, nil, nil); code != http.StatusUnauthorized {
			t.Fatalf("session of a deleted staff member: %d", code)
		}
	})
}

func TestDailyRealName(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		e := setup(t, db)
		ctx := context.Background()
		e.staff("s1", "王医生", ihos.StaffDoctor, "13800000001")
		pw := e.grant("s1")
		s := e.loginReady("13800000001", pw, "Better-pass-2026")
		req, _ := http.NewRequest("GET", e.url, nil)
		req.Header.Set("Authorization", "Bearer "+s.Token)
		st, err := e.svc.Authorize(req)
		if err != nil {
			t.Fatal(err)
		}
		var ie *ihos.Error
		if err := e.svc.RequireRealNameToday(ctx, st); !errors.As(err, &ie) || ie.Message != "请先完成今日实名认证" || ie.Code != ihos.EForbidden {
			t.Fatalf("before the check: %v", err)
		}
		if code, msg := e.call("POST", "/api/staff/realname/code", s.Token, nil, nil); code != http.StatusNoContent {
			t.Fatalf("code: %d %s", code, msg)
		}
		if code, _ := e.call("POST", "/api/staff/realname/code", s.Token, nil, nil); code != http.StatusTooManyRequests {
			t.Fatalf("second code at once: %d", code)
		}
		code := e.sms.LastCode("13800000001")
		if len(code) != 6 {
			t.Fatalf("no SMS to the phone on record: %q", code)
		}
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		if c, msg := e.call("POST", "/api/staff/realname", s.Token, map[string]string{"code": wrong}, nil); c != http.StatusBadRequest || msg != "验证码错误，请重新输入" {
			t.Fatalf("wrong code: %d %s", c, msg)
		}
		var out session
		if c, msg := e.call("POST", "/api/staff/realname", s.Token, map[string]string{"code": code}, &out); c != http.StatusOK || !out.Staff.RealNameToday {
			t.Fatalf("confirm: %d %s", c, msg)
		}
		if err := e.svc.RequireRealNameToday(ctx, st); err != nil {
			t.Fatalf("after the check: %v", err)
		}
		var me session
		if c, _ := e.call("GET", "/api/staff/me", s.Token, nil, &me); c != http.StatusOK || !me.Staff.RealNameToday {
			t.Fatalf("me: %d %+v", c, me)
		}
		// 19:00 in Shanghai: still today.
		e.clock.add(10 * time.Hour)
		if err := e.svc.RequireRealNameToday(ctx, st); err != nil {
			t.Fatalf("same day: %v", err)
		}
		e.call("GET", "/api/staff/me", s.Token, nil, nil)
		// 01:00 the next day (17:00 UTC the same UTC day): again.
		e.clock.add(6 * time.Hour)
		if err := e.svc.RequireRealNameToday(ctx, st); !errors.Is(err, staffauth.ErrRealName) {
			t.Fatalf("next day: %v", err)
		}
		if c, _ := e.call("GET", "/api/staff/me", s.Token, nil, &me); c != http.StatusOK || me.Staff.RealNameToday {
			t.Fatalf("me next day: %d %+v", c, me)
		}
		if c, _ := e.call("POST", "/api/staff/realname/code", s.Token, nil, nil); c != http.StatusNoContent {
			t.Fatalf("code next day: %d", c)
		}
		if c, _ := e.call("POST", "/api/staff/realname", s.Token, map[string]string{"code": e.sms.LastCode("13800000001")}, nil); c != http.StatusOK {
			t.Fatalf("confirm next day: %d", c)
		}
		if err := e.svc.RequireRealNameToday(ctx, st); err != nil {
			t.Fatalf("after next day's check: %v", err)
		}
	})
}

// A cookie session must send its CSRF token on writes.
func TestCookieCSRF(t *testing.T) {
	e := setup(t, sqldbtest.SQLite(t))
	e.staff("s1", "王医生", ihos.StaffDoctor, "13800000001")
	pw := e.grant("s1")
	s := e.loginReady("13800000001", pw, "Better-pass-2026")
	send := func(csrf string) int {
		req, _ := http.NewRequest("POST", e.url+"/api/staff/realname/code", nil)
		req.AddCookie(&http.Cookie{Name: staffauth.CookieName, Value: s.Token})
		if csrf != "" {
			req.Header.Set(staffauth.CSRFHeader, csrf)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := send(""); c != http.StatusForbidden {
		t.Fatalf("without CSRF: %d", c)
	}
	if c := send(s.CSRF); c != http.StatusNoContent {
		t.Fatalf("with CSRF: %d", c)
	}
}

// Login phones a release before sealing left in clear text are sealed at
// start, without a new version, and still log in.
func TestSealPhonesOfEarlierReleases(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		e := setup(t, db)
		e.staff("s1", "王医生", ihos.StaffDoctor, "13800000001")
		pw := e.grant("s1")
		e.exec(`UPDATE staff_app_logins SET phone = '13800000001', phone_bidx = '' WHERE staff_id = 's1'`)
		if err := e.svc.SealPhones(context.Background()); err != nil {
			t.Fatal(err)
		}
		var phone string
		var version int
		e.db.QueryRow(`SELECT phone, version FROM staff_app_logins WHERE staff_id = 's1'`).Scan(&phone, &version)
		if plain, err := e.svc.Sealer.Open(phone); err != nil || plain != "13800000001" || version != 1 {
			t.Fatalf("after SealPhones: %q (%q, %v), version %d", phone, plain, err, version)
		}
		if _, code, msg := e.login("13800000001", pw); code != http.StatusOK {
			t.Fatalf("login after sealing: %d %s", code, msg)
		}
	})
}
