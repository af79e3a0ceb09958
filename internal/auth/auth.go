// Package auth authenticates console users and authorises what they do: password
// hashing (bcrypt), login with lockout after repeated failures, sessions that
// expire when idle and at a hard limit, CSRF protection for cookie sessions, and
// role permissions. Every failed login and every denied action goes to the audit
// log.
package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/crypto/bcrypt"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
	"ihos/internal/web"
)

// CookieName is the session cookie the console pages use.
const CookieName = "ihos_session"

// CSRFHeader carries the CSRF token on cookie-authenticated writes from scripts;
// forms send it as the csrf_token field.
const CSRFHeader = "X-CSRF-Token"

// User is a console user as the rest of the service sees it.
type User struct {
	ID           string `json:"id"`
	Username     string `json:"username"`
	DisplayName  string `json:"display_name"`
	Role         string `json:"role"`
	DepartmentID string `json:"department_id,omitempty"`
}

// Session is a logged-in user's session.
type Session struct {
	Token     string    `json:"token"`
	CSRF      string    `json:"csrf_token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      User      `json:"user"`
}

// Service holds users and sessions. The zero values of the policy fields are
// replaced by the defaults in New.
type Service struct {
	db *sqldb.DB

	IdleTimeout time.Duration // a session unused this long expires (default 30 min)
	MaxAge      time.Duration // a session expires this long after login regardless (default 12 h)
	MaxFailures int           // consecutive failed logins before a lockout (default 5)
	LockFor     time.Duration // how long a lockout lasts (default 15 min)
	BcryptCost  int           // default bcrypt.DefaultCost+2
	Now         func() time.Time

	mu    sync.Mutex
	cache map[string]*cached // by token hash

	dummyOnce sync.Once
	dummy     []byte
}

type cached struct {
	user      User
	csrf      string
	expires   time.Time
	lastSeen  time.Time
	persisted time.Time
}

// New returns a Service with the default policy.
func New(db *sqldb.DB) *Service {
	return &Service{
		db:          db,
		IdleTimeout: 30 * time.Minute,
		MaxAge:      12 * time.Hour,
		MaxFailures: 5,
		LockFor:     15 * time.Minute,
		BcryptCost:  bcrypt.DefaultCost + 2,
		Now:         time.Now,
		cache:       map[string]*cached{},
	}
}

// CheckPassword enforces the password policy: at least 10 characters with both
// letters and digits. The message is shown to the person choosing it.
func CheckPassword(pw string) error {
	var letter, digit bool
	for _, r := range pw {
		letter = letter || unicode.IsLetter(r)
		digit = digit || unicode.IsDigit(r)
	}
	if len([]rune(pw)) < 10 || !letter || !digit {
		return errors.New("密码至少 10 位，且须同时包含字母和数字")
	}
	if len(pw) > 72 {
		return errors.New("密码不能超过 72 个字节")
	}
	return nil
}

// HashPassword checks the policy and returns the bcrypt hash of pw.
func (s *Service) HashPassword(pw string) (string, error) {
	if err := CheckPassword(pw); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.BcryptCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// CreateUser adds a console user; seeding and the first-start setup use it.
func (s *Service) CreateUser(ctx context.Context, u User, password string) (User, error) {
	if _, ok := RoleByName(u.Role); !ok {
		return User{}, ihos.Errorf(ihos.EInvalid, "未知角色 %s", u.Role)
	}
	hash, err := s.HashPassword(password)
	if err != nil {
		return User{}, ihos.Invalid(map[string]string{"password": err.Error()})
	}
	if u.ID == "" {
		u.ID = ihos.NewID()
	}
	now := ihos.FormatTime(s.Now())
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO console_users (id, username, display_name, password_hash, role, department_id, password_changed_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, u.ID, u.Username, u.DisplayName, hash, u.Role, nullString(u.DepartmentID), now, now, now)
		if sqldb.IsUniqueViolation(err) {
			return ihos.Errorf(ihos.EConflict, "用户名 %s 已存在", u.Username)
		}
		if err != nil {
			return err
		}
		return audit.Append(ctx, s.db, tx, audit.Entry{Action: "create", Resource: "users", RecordID: u.ID,
			Summary: "新增控制台用户：" + u.Username})
	})
	return u, err
}

// dummyHash is compared against when the username is unknown, so a wrong
// username takes as long as a wrong password and does not reveal which users exist.
// It is made on first use, at the service's cost, so start-up does not pay for it.
func (s *Service) dummyHash() []byte {
	s.dummyOnce.Do(func() {
		s.dummy, _ = bcrypt.GenerateFromPassword([]byte("not-a-real-password-0"), s.BcryptCost)
	})
	return s.dummy
}

// Login checks a username and password and opens a session. Five wrong passwords
// in a row lock the account for LockFor; every failure is audited.
func (s *Service) Login(ctx context.Context, username, password, ip, userAgent string) (*Session, error) {
	bad := ihos.Errorf(ihos.EUnauthorized, "用户名或密码错误")
	username = strings.TrimSpace(username)
	if username == "" || password == "" || len(username) > 64 || len(password) > 200 {
		return nil, bad
	}
	var (
		u                 User
		hash              string
		dept, lockedUntil sql.NullString
		failed, enabled   int
		deleted           sql.NullString
	)
	err := s.db.QueryRowContext(ctx, `SELECT id, username, display_name, password_hash, role, department_id, failed_logins, locked_until, enabled, deleted_at
		FROM console_users WHERE username = ?`, username).
		Scan(&u.ID, &u.Username, &u.DisplayName, &hash, &u.Role, &dept, &failed, &lockedUntil, &enabled, &deleted)
	if errors.Is(err, sql.ErrNoRows) || deleted.Valid {
		bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(password))
		// The audit layer files an entry without an actor id under "system", so the
		// name that was tried must go into the summary to be kept.
		s.auditFailure(ctx, "", username, ip, "用户不存在（尝试的用户名："+truncate(username, 64)+"）")
		return nil, bad
	}
	if err != nil {
		return nil, ihos.Internal(err)
	}
	u.DepartmentID = dept.String
	now := s.Now().UTC()
	if lockedUntil.Valid {
		if t, err := ihos.ParseTime(lockedUntil.String); err == nil && now.Before(t) {
			s.auditFailure(ctx, u.ID, username, ip, "账号锁定中")
			mins := int(math.Ceil(t.Sub(now).Minutes()))
			return nil, ihos.Errorf(ihos.EForbidden, "连续登录失败次数过多，账号已锁定，请 %d 分钟后再试或联系系统管理员", mins)
		}
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		failed++
		var lock any
		reason := fmt.Sprintf("密码错误（连续第 %d 次）", failed)
		if failed >= s.MaxFailures {
			lock, failed = ihos.FormatTime(now.Add(s.LockFor)), 0
			reason += "，账号已锁定"
		}
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE console_users SET failed_logins = ?, locked_until = ? WHERE id = ?`, failed, lock, u.ID); err != nil {
				return err
			}
			return audit.Append(ctx, s.db, tx, audit.Entry{ActorID: u.ID, ActorName: username, IP: ip,
				Action: audit.ActionLoginFailed, Resource: "users", RecordID: u.ID, Summary: "登录失败：" + reason})
		})
		if err != nil {
			return nil, ihos.Internal(err)
		}
		if lock != nil {
			return nil, ihos.Errorf(ihos.EForbidden, "连续登录失败次数过多，账号已锁定 %d 分钟", int(s.LockFor.Minutes()))
		}
		return nil, bad
	}
	if enabled == 0 {
		s.auditFailure(ctx, u.ID, username, ip, "账号已停用")
		return nil, ihos.Errorf(ihos.EForbidden, "账号已停用，请联系系统管理员")
	}
	sess := &Session{Token: web.NewSessionToken(), CSRF: web.NewSessionToken(), ExpiresAt: now.Add(s.MaxAge), User: u}
	th := web.SessionTokenHash(sess.Token)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE console_users SET failed_logins = 0, locked_until = NULL, last_login_at = ? WHERE id = ?`,
			ihos.FormatTime(now), u.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, csrf_token, ip, user_agent, created_at, expires_at, last_seen_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, th, u.ID, sess.CSRF, ip, truncate(userAgent, 200),
			ihos.FormatTime(now), ihos.FormatTime(sess.ExpiresAt), ihos.FormatTime(now)); err != nil {
			return err
		}
		return audit.Append(ctx, s.db, tx, audit.Entry{ActorID: u.ID, ActorName: username, IP: ip,
			Action: audit.ActionLogin, Resource: "users", RecordID: u.ID, Summary: "登录控制台"})
	})
	if err != nil {
		return nil, ihos.Internal(err)
	}
	s.mu.Lock()
	s.cache[th] = &cached{user: u, csrf: sess.CSRF, expires: sess.ExpiresAt, lastSeen: now, persisted: now}
	s.mu.Unlock()
	return sess, nil
}

func (s *Service) auditFailure(ctx context.Context, userID, username, ip, reason string) {
	err := audit.Record(ctx, s.db, audit.Entry{ActorID: userID, ActorName: truncate(username, 64), IP: ip,
		Action: audit.ActionLoginFailed, Resource: "users", RecordID: userID, Summary: "登录失败：" + reason})
	if err != nil {
		slog.ErrorContext(ctx, "audit login failure", "err", err)
	}
}

// ErrNoSession is returned by Lookup for a missing, expired or revoked session.
var ErrNoSession = ihos.Errorf(ihos.EUnauthorized, "未登录或登录已过期，请重新登录")

// Lookup returns the session of token. Sessions are cached in memory; last use is
// written back at most once a minute so a busy console does not turn every read
// into a database write.
func (s *Service) Lookup(ctx context.Context, token string) (*Session, error) {
	if token == "" || len(token) > 100 {
		return nil, ErrNoSession
	}
	th := web.SessionTokenHash(token)
	now := s.Now().UTC()
	s.mu.Lock()
	c := s.cache[th]
	s.mu.Unlock()
	if c == nil {
		var err error
		if c, err = s.load(ctx, th); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	expired := now.After(c.expires) || now.Sub(c.lastSeen) > s.IdleTimeout
	if !expired {
		c.lastSeen = now
	}
	persist := !expired && now.Sub(c.persisted) > time.Minute
	if persist {
		c.persisted = now
	}
	sess := &Session{Token: token, CSRF: c.csrf, ExpiresAt: c.expires, User: c.user}
	s.mu.Unlock()
	if expired {
		s.drop(ctx, th)
		return nil, ErrNoSession
	}
	if persist {
		s.db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?`, ihos.FormatTime(now), th)
			return err
		})
	}
	return sess, nil
}

func (s *Service) load(ctx context.Context, th string) (*cached, error) {
	var (
		c                 cached
		dept              sql.NullString
		expires, lastSeen string
		enabled           int
		deleted           sql.NullString
	)
	err := s.db.QueryRowContext(ctx, `SELECT u.id, u.username, u.display_name, u.role, u.department_id, u.enabled, u.deleted_at,
			s.csrf_token, s.expires_at, s.last_seen_at
		FROM sessions s JOIN console_users u ON u.id = s.user_id WHERE s.token_hash = ?`, th).
		Scan(&c.user.ID, &c.user.Username, &c.user.DisplayName, &c.user.Role, &dept, &enabled, &deleted, &c.csrf, &expires, &lastSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, ihos.Internal(err)
	}
	if enabled == 0 || deleted.Valid {
		s.drop(ctx, th)
		return nil, ErrNoSession
	}
	c.user.DepartmentID = dept.String
	c.expires, _ = ihos.ParseTime(expires)
	c.lastSeen, _ = ihos.ParseTime(lastSeen)
	c.persisted = c.lastSeen
	s.mu.Lock()
	s.cache[th] = &c
	s.mu.Unlock()
	return &c, nil
}

func (s *Service) drop(ctx context.Context, th string) {
	s.mu.Lock()
	delete(s.cache, th)
	s.mu.Unlock()
	s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, th)
		return err
	})
}

// Logout ends the session of token.
func (s *Service) Logout(ctx context.Context, token string) {
	if sess, err := s.Lookup(ctx, token); err == nil {
		audit.Record(ctx, s.db, audit.Entry{ActorID: sess.User.ID, ActorName: sess.User.Username,
			Action: audit.ActionLogout, Resource: "users", RecordID: sess.User.ID, Summary: "退出控制台"})
	}
	s.drop(ctx, web.SessionTokenHash(token))
}

// RevokeUser ends every session of a user; called when a user is disabled,
// deleted, or their role or password changes.
func (s *Service) RevokeUser(ctx context.Context, userID string) error {
	s.mu.Lock()
	for th, c := range s.cache {
		if c.user.ID == userID {
			delete(s.cache, th)
		}
	}
	s.mu.Unlock()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
		return err
	})
}

// Authorize returns nil when the actor in ctx holds perm (and, for a
// department-scoped role, when dept is the actor's own department or dept is
// "*" meaning "any record this actor may see"). Otherwise it audits the denial
// and returns an unauthorized or forbidden error.
func (s *Service) Authorize(ctx context.Context, perm, dept string) error {
	a, ok := ihos.ActorFrom(ctx)
	if !ok {
		return ErrNoSession
	}
	role, _ := RoleByName(a.Role)
	allowed := Can(a.Role, perm)
	if allowed && role.Scoped && strings.HasSuffix(perm, ".write") && dept != "*" {
		allowed = dept != "" && dept == a.DepartmentID
	}
	if allowed {
		return nil
	}
	summary := "无权限：" + perm
	if dept != "" && dept != "*" {
		summary += "（科室 " + dept + "）"
	}
	if err := audit.Record(ctx, s.db, audit.Entry{Action: audit.ActionDenied, Summary: summary}); err != nil {
		slog.ErrorContext(ctx, "audit denial", "err", err)
	}
	return ihos.Errorf(ihos.EForbidden, "您没有执行此操作的权限")
}

// Middleware puts the actor of a valid session into the request context; it does
// not reject anonymous requests (routes decide that). A session from the cookie
// must present its CSRF token on every unsafe method; a bearer token need not,
// since a browser never attaches one by itself.
func (s *Service) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, fromCookie := web.SessionToken(r, CookieName)
		if token != "" {
			sess, err := s.Lookup(r.Context(), token)
			if err == nil {
				if fromCookie && !web.SafeMethod(r.Method) && !web.CSRFValid(r, CSRFHeader, sess.CSRF) {
					web.WriteError(w, r, web.ErrCSRF)
					return
				}
				role, _ := RoleByName(sess.User.Role)
				ctx := ihos.WithActor(r.Context(), ihos.Actor{
					UserID: sess.User.ID, Username: sess.User.Username, Name: sess.User.DisplayName,
					Role: sess.User.Role, DepartmentID: sess.User.DepartmentID, Scoped: role.Scoped,
					IP: web.ClientIP(r), RequestID: web.RequestID(r.Context()),
				})
				ctx = withSession(ctx, sess)
				r = r.WithContext(ctx)
			}
		}
		next.ServeHTTP(w, r)
	})
}

type sessionKey struct{}

func withSession(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

// SessionFrom returns the session of the request, if any; pages use it for the
// CSRF token they embed in forms.
func SessionFrom(ctx context.Context) (*Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(*Session)
	return s, ok
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// Routes registers the login API under prefix:
//
//	POST {prefix}/login   {"username","password"} -> Session (and the session cookie)
//	POST {prefix}/logout  ends the session
//	GET  {prefix}/me      the current user
func (s *Service) Routes(mux *http.ServeMux, prefix string, secureCookie bool) {
	mux.Handle("POST "+prefix+"/login", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		if strings.TrimSpace(in.Username) == "" || in.Password == "" {
			bad := map[string]string{}
			if strings.TrimSpace(in.Username) == "" {
				bad["username"] = "请输入用户名"
			}
			if in.Password == "" {
				bad["password"] = "请输入密码"
			}
			return ihos.Invalid(bad)
		}
		sess, err := s.Login(r.Context(), in.Username, in.Password, web.ClientIP(r), r.UserAgent())
		if err != nil {
			return err
		}
		http.SetCookie(w, &http.Cookie{Name: CookieName, Value: sess.Token, Path: "/", Expires: sess.ExpiresAt,
			HttpOnly: true, Secure: secureCookie, SameSite: http.SameSiteStrictMode})
		web.WriteJSON(w, http.StatusOK, sess)
		return nil
	}))
	mux.Handle("POST "+prefix+"/logout", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		sess, ok := SessionFrom(r.Context())
		if !ok {
			return ErrNoSession
		}
		s.Logout(r.Context(), sess.Token)
		http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secureCookie})
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	mux.Handle("GET "+prefix+"/me", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		sess, ok := SessionFrom(r.Context())
		if !ok {
			return ErrNoSession
		}
		role, _ := RoleByName(sess.User.Role)
		web.WriteJSON(w, http.StatusOK, map[string]any{"user": sess.User, "role_label": role.Label, "expires_at": sess.ExpiresAt})
		return nil
	}))
}
