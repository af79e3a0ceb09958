package staffauth

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/auth"
	"ihos/internal/pii"
	"ihos/internal/web"
)

// account is a staff_app_logins row with its staff, department and
// cloud-local state, as one query reads it.
type account struct {
	Staff
	phone              string
	loginEnabled       int
	staffEnabled       int
	staffDeleted       bool
	loginDeleted       bool
	deptFound          bool
	issuedHash, issued string
	mustChange         int
	ownHash, replaces  string
	failed             int
	lockedUntil        sql.NullString
}

const accountCols = `s.id, s.hospital_id, s.name, s.kind, s.title, s.department_id, COALESCE(d.name, ''), s.license_no,
	l.phone, l.enabled, s.enabled, s.deleted_at IS NOT NULL, l.deleted_at IS NOT NULL, d.id IS NOT NULL AND d.deleted_at IS NULL,
	l.password_hash, l.issued_at, l.must_change, COALESCE(st.password_hash, ''), COALESCE(st.replaces_hash, ''), COALESCE(st.failed_attempts, 0), st.locked_until`

const accountJoins = ` JOIN staff s ON s.id = l.staff_id LEFT JOIN departments d ON d.id = s.department_id
	LEFT JOIN staff_app_state st ON st.staff_id = l.staff_id `

const accountQuery = `SELECT ` + accountCols + ` FROM staff_app_logins l` + accountJoins

// scanAccount scans head (columns before the account's) and an account.
// open opens the sealed login phone for display (masked).
func scanAccount(sc interface{ Scan(...any) error }, open *pii.Sealer, head ...any) (*account, error) {
	a := &account{}
	err := sc.Scan(append(head, &a.ID, &a.HospitalID, &a.Name, &a.Kind, &a.Title, &a.DepartmentID, &a.Department, &a.LicenseNo,
		&a.phone, &a.loginEnabled, &a.staffEnabled, &a.staffDeleted, &a.loginDeleted, &a.deptFound,
		&a.issuedHash, &a.issued, &a.mustChange, &a.ownHash, &a.replaces, &a.failed, &a.lockedUntil)...)
	if err != nil {
		return nil, err
	}
	a.Phone = maskedPhone(a.phone, open)
	a.KindLabel = ihos.StaffKindLabels[a.Kind]
	// A password the doctor chose replaces the issued one until the
	// hospital issues a new one.
	a.MustChange = a.mustChange != 0
	if a.ownHash != "" && a.replaces == a.issuedHash {
		a.MustChange = false
	}
	return a, nil
}

func (a *account) hash() string {
	if a.ownHash != "" && a.replaces == a.issuedHash {
		return a.ownHash
	}
	return a.issuedHash
}

// refusal says why an account may not use the app now, nil when it may:
// app access enabled, the staff member active, a doctor or pharmacist with a
// department and a licence number on record (DESIGN §7).
func (a *account) refusal() error {
	switch {
	case a.loginEnabled == 0 || a.loginDeleted:
		return ihos.Errorf(ihos.EForbidden, "互联网诊疗账号未开通或已停用，请联系医院")
	case a.staffEnabled == 0 || a.staffDeleted:
		return ihos.Errorf(ihos.EForbidden, "您的医务人员信息已停用，请联系医院")
	case !slices.Contains(appKinds, a.Kind):
		return ihos.Errorf(ihos.EForbidden, "只有医师、药师可以登录互联网诊疗")
	case a.DepartmentID == "" || !a.deptFound || a.LicenseNo == "":
		return ihos.Errorf(ihos.EForbidden, "您的科室或执业资格信息不完整，请联系医院")
	}
	return nil
}

// Session is a staff member's login.
type Session struct {
	Token     string    `json:"token"`
	CSRF      string    `json:"csrf_token"`
	ExpiresAt time.Time `json:"expires_at"`
	Staff     Staff     `json:"staff"`
}

var errCredentials = ihos.Errorf(ihos.EUnauthorized, "手机号或密码错误")

// Login checks a phone and password and opens a session. MaxFailures wrong
// passwords in a row lock the account for LockFor; the count is the
// cloud's own.
func (s *Service) Login(ctx context.Context, phone, password, ip, userAgent string) (*Session, error) {
	phone = strings.TrimPrefix(strings.TrimSpace(phone), "+86")
	if phone == "" || password == "" || len(password) > 200 {
		return nil, errCredentials
	}
	now := s.now()
	rows, err := s.DB.QueryContext(ctx, accountQuery+`WHERE l.phone_bidx = ?`, s.Sealer.Index(phone))
	if err != nil {
		return nil, ihos.Internal(err)
	}
	var cands []*account
	for rows.Next() {
		a, err := scanAccount(rows, s.Sealer)
		if err != nil {
			rows.Close()
			return nil, ihos.Internal(err)
		}
		cands = append(cands, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	if len(cands) == 0 {
		bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(password)) // the same time as a real check
		s.auditFailure(ctx, "", pii.Mask(phone, 3, 4), ip, "手机号未开通")
		return nil, errCredentials
	}
	var match *account
	var locked bool
	for _, a := range cands {
		if until, err := ihos.ParseTime(a.lockedUntil.String); a.lockedUntil.Valid && err == nil && now.Before(until) {
			locked = true
			continue
		}
		if bcrypt.CompareHashAndPassword([]byte(a.hash()), []byte(password)) == nil {
			match = a
			break
		}
	}
	if match == nil {
		err := s.tx(ctx, func(tx *sql.Tx) (error, error) {
			var refusal error = errCredentials
			for _, a := range cands {
				if until, err := ihos.ParseTime(a.lockedUntil.String); a.lockedUntil.Valid && err == nil && now.Before(until) {
					continue
				}
				// Counted under the row lock, so parallel guesses all count.
				if err := s.setState(ctx, tx, a.ID, "failed_attempts = failed_attempts + 1"); err != nil {
					return nil, err
				}
				var failed int
				if err := s.DB.TxQueryRow(ctx, tx, `SELECT failed_attempts FROM staff_app_state WHERE staff_id = ?`, a.ID).Scan(&failed); err != nil {
					return nil, err
				}
				a.failed = failed - 1
				if failed >= s.MaxFailures {
					if err := s.setState(ctx, tx, a.ID, "failed_attempts = 0, locked_until = ?", ihos.FormatTime(now.Add(s.LockFor))); err != nil {
						return nil, err
					}
					refusal = lockedRefusal(s.LockFor)
				}
				if err := audit.Append(ctx, s.DB, tx, audit.Entry{ActorID: a.ID, ActorName: a.Name, IP: ip, Action: audit.ActionLoginFailed,
					Resource: "staff_app_logins", RecordID: a.ID, Summary: fmt.Sprintf("医务人员 App 登录失败：密码错误（连续第 %d 次）", a.failed+1)}); err != nil {
					return nil, err
				}
			}
			return refusal, nil
		})
		if locked && errors.Is(err, errCredentials) {
			return nil, lockedRefusal(s.LockFor)
		}
		return nil, err
	}
	if err := match.refusal(); err != nil {
		s.auditFailure(ctx, match.ID, match.Name, ip, err.Error())
		return nil, err
	}
	sess := &Session{Token: web.NewSessionToken(), CSRF: web.NewSessionToken(), ExpiresAt: now.Add(s.MaxAge)}
	err = s.tx(ctx, func(tx *sql.Tx) (error, error) {
		if err := s.setState(ctx, tx, match.ID, "failed_attempts = 0, locked_until = NULL"); err != nil {
			return nil, err
		}
		if err := s.sessions().Insert(ctx, tx, sess.Token, sess.CSRF, match.ID, ip, userAgent, now, sess.ExpiresAt); err != nil {
			return nil, err
		}
		return nil, audit.Append(ctx, s.DB, tx, audit.Entry{ActorID: match.ID, ActorName: match.Name, IP: ip, Action: audit.ActionLogin,
			Resource: "staff_app_logins", RecordID: match.ID, Summary: "医务人员 App 登录"})
	})
	if err != nil {
		return nil, err
	}
	st, _, err := s.lookup(ctx, web.SessionTokenHash(sess.Token))
	if err != nil {
		return nil, err
	}
	sess.Staff = st
	return sess, nil
}

func lockedRefusal(d time.Duration) error {
	return ihos.Errorf(ihos.ETooMany, "密码错误次数过多，账号已锁定，请 %d 分钟后再试", int(d/time.Minute))
}

// setState updates the cloud-local state row of a staff member, creating it
// first if needed.
func (s *Service) setState(ctx context.Context, tx *sql.Tx, staffID, set string, args ...any) error {
	ts := ihos.FormatTime(s.now())
	var one int
	err := s.DB.TxQueryRow(ctx, tx, `SELECT 1 FROM staff_app_state WHERE staff_id = ?`+s.DB.ForUpdate(), staffID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO staff_app_state (staff_id, updated_at) VALUES (?, ?)`, staffID, ts); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	_, err = s.DB.TxExec(ctx, tx, `UPDATE staff_app_state SET `+set+`, updated_at = ? WHERE staff_id = ?`, append(args, ts, staffID)...)
	return err
}

func (s *Service) auditFailure(ctx context.Context, id, name, ip, reason string) {
	err := s.DB.Tx(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		return audit.Append(ctx, s.DB, tx, audit.Entry{ActorID: id, ActorName: name, IP: ip, Action: audit.ActionLoginFailed,
			Resource: "staff_app_logins", RecordID: id, Summary: "医务人员 App 登录失败：" + reason})
	})
	if err != nil {
		slog.ErrorContext(ctx, "staffauth: audit failure", "err", err)
	}
}

// dummy is compared against when no account matches a phone, so the answer
// takes as long as a real check; made on first use.
var dummy = stdsync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("not-a-real-password-0"), DefaultPolicy.BcryptCost)
	return h
})

func (s *Service) dummyHash() []byte { return dummy() }

// lookup returns the staff member of a session and its CSRF token. The
// session ends when it expires or idles out, and as soon as the replicated
// staff or app-access row no longer admits its holder (disabled on the
// console). Last use is written at most once a minute.
func (s *Service) lookup(ctx context.Context, th string) (Staff, string, error) {
	var csrf, expires, seen string
	a, err := scanAccount(s.DB.QueryRowContext(ctx, `SELECT x.csrf_token, x.expires_at, x.last_seen_at, `+accountCols+`
		FROM staff_app_sessions x JOIN staff_app_logins l ON l.staff_id = x.staff_id`+accountJoins+`WHERE x.token_hash = ?`, th), s.Sealer, &csrf, &expires, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return Staff{}, "", ErrNoSession
	}
	if err != nil {
		return Staff{}, "", ihos.Internal(err)
	}
	if !s.sessions().Live(ctx, th, a.refusal() == nil, expires, seen, s.now(), s.IdleTimeout) {
		return Staff{}, "", ErrNoSession
	}
	var one int
	err = s.DB.QueryRowContext(ctx, `SELECT 1 FROM staff_realname_checks WHERE staff_id = ? AND day = ?`, a.ID, s.today()).Scan(&one)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Staff{}, "", ihos.Internal(err)
	}
	a.RealNameToday = err == nil
	return a.Staff, csrf, nil
}

// sessions is the staff_app_sessions table's mechanics.
func (s *Service) sessions() web.Sessions {
	return web.Sessions{DB: s.DB, Table: "staff_app_sessions", Owner: "staff_id", Log: "staffauth"}
}

// Logout ends the session of token.
func (s *Service) Logout(ctx context.Context, token string) error {
	th := web.SessionTokenHash(token)
	st, _, err := s.lookup(ctx, th)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) (error, error) {
		if err := s.sessions().Delete(ctx, tx, th); err != nil {
			return nil, err
		}
		return nil, audit.Append(ctx, s.DB, tx, audit.Entry{ActorID: st.ID, ActorName: st.Name, Action: audit.ActionLogout,
			Resource: "staff_app_logins", RecordID: st.ID, Summary: "医务人员 App 退出登录"})
	})
}

// Revoke ends every session of a staff member.
func (s *Service) Revoke(ctx context.Context, staffID, reason string) error {
	return s.tx(ctx, func(tx *sql.Tx) (error, error) {
		if err := s.sessions().DeleteOwner(ctx, tx, staffID); err != nil {
			return nil, err
		}
		return nil, audit.Append(ctx, s.DB, tx, audit.Entry{Action: "revoke_sessions", Resource: "staff_app_logins", RecordID: staffID,
			Summary: "结束医务人员 App 的全部登录：" + reason})
	})
}

// ChangePassword replaces the password of st (required after the first
// login with an issued password) under the console's password policy. The
// new password is the cloud's own: it stays valid until the hospital
// issues a new one. Every other session of st ends.
func (s *Service) ChangePassword(ctx context.Context, st Staff, token, oldPassword, newPassword string) error {
	a, err := scanAccount(s.DB.QueryRowContext(ctx, accountQuery+`WHERE l.staff_id = ?`, st.ID), s.Sealer)
	if err != nil {
		return ihos.Internal(err)
	}
	if bcrypt.CompareHashAndPassword([]byte(a.hash()), []byte(oldPassword)) != nil {
		return &ihos.Error{Code: ihos.EInvalid, Message: "原密码错误", Fields: map[string]string{"old_password": "原密码错误"}}
	}
	if err := auth.CheckPassword(newPassword); err != nil {
		return &ihos.Error{Code: ihos.EInvalid, Message: err.Error(), Fields: map[string]string{"new_password": err.Error()}}
	}
	if newPassword == oldPassword {
		return &ihos.Error{Code: ihos.EInvalid, Message: "新密码不能与原密码相同", Fields: map[string]string{"new_password": "新密码不能与原密码相同"}}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(newPassword), s.BcryptCost)
	if err != nil {
		return ihos.Internal(err)
	}
	return s.tx(ctx, func(tx *sql.Tx) (error, error) {
		if err := s.setState(ctx, tx, st.ID, "password_hash = ?, replaces_hash = ?", string(hash), a.issuedHash); err != nil {
			return nil, err
		}
		if _, err := s.DB.TxExec(ctx, tx, `DELETE FROM staff_app_sessions WHERE staff_id = ? AND token_hash <> ?`, st.ID, web.SessionTokenHash(token)); err != nil {
			return nil, err
		}
		return nil, audit.Append(ctx, s.DB, tx, audit.Entry{ActorID: st.ID, ActorName: st.Name, Action: "change_password",
			Resource: "staff_app_logins", RecordID: st.ID, Summary: "医务人员修改 App 登录密码"})
	})
}

// checkCode compares a stored code hash in constant time.
func checkCode(stored, got string) bool {
	return subtle.ConstantTimeCompare([]byte(stored), []byte(got)) == 1
}

// maskedPhone is the login phone as staff pages show it (138****8000): opened
// with the node's key when sealed; a value that will not open shows as stars
// rather than failing the login.
func maskedPhone(stored string, open *pii.Sealer) string {
	if !pii.IsSealed(stored) {
		return pii.Mask(stored, 3, 4)
	}
	phone, err := open.Open(stored)
	if err != nil {
		return "***********"
	}
	return pii.Mask(phone, 3, 4)
}
