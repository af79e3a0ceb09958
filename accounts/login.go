package accounts

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/pii"
	"ihos/internal/web"
	"ihos/sms"
)

// RequestCode sends a new 6-digit login code to phone. Only the newest code
// of a phone is valid. A phone may ask once every ResendAfter and
// PhonePerHour times an hour, an address IPPerHour times an hour; the code
// is stored as a keyed hash and expires after CodeTTL.
func (s *Service) RequestCode(ctx context.Context, phone, ip string) error {
	phone, err := checkPhone(phone)
	if err != nil {
		return err
	}
	if s.SMS == nil {
		return ihos.Errorf(ihos.EUnavailable, "短信服务未配置，暂时无法发送验证码")
	}
	now := s.now()
	bidx := s.Sealer.Index(phone)
	id, code := ihos.NewID(), sms.NewCode()
	hourAgo := ihos.FormatTime(now.Add(-time.Hour))
	err = s.tx(ctx, func(tx *sql.Tx) (error, error) {
		var n int
		var last sql.NullString
		if err := s.DB.TxQueryRow(ctx, tx, `SELECT COUNT(*), MAX(created_at) FROM patient_sms_codes WHERE phone_bidx = ? AND created_at > ?`, bidx, hourAgo).Scan(&n, &last); err != nil {
			return nil, err
		}
		if last.Valid {
			if t, err := ihos.ParseTime(last.String); err == nil && now.Sub(t) < s.ResendAfter {
				wait := int((s.ResendAfter - now.Sub(t) + time.Second - 1) / time.Second)
				return ihos.Errorf(ihos.ETooMany, "验证码已发送，请 %d 秒后再试", wait), nil
			}
		}
		if n >= s.PhonePerHour {
			return ihos.Errorf(ihos.ETooMany, "该手机号获取验证码过于频繁，请 1 小时后再试"), nil
		}
		if err := s.DB.TxQueryRow(ctx, tx, `SELECT COUNT(*) FROM patient_sms_codes WHERE ip = ? AND created_at > ?`, ip, hourAgo).Scan(&n); err != nil {
			return nil, err
		}
		if ip != "" && n >= s.IPPerHour {
			return ihos.Errorf(ihos.ETooMany, "获取验证码过于频繁，请稍后再试"), nil
		}
		ts := ihos.FormatTime(now)
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE patient_sms_codes SET used_at = ? WHERE phone_bidx = ? AND used_at IS NULL`, ts, bidx); err != nil {
			return nil, err
		}
		if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO patient_sms_codes (id, phone_bidx, code_hash, ip, attempts, created_at, expires_at) VALUES (?, ?, ?, ?, 0, ?, ?)`,
			id, bidx, s.codeHash(id, code), ip, ts, ihos.FormatTime(now.Add(s.CodeTTL))); err != nil {
			return nil, err
		}
		return nil, audit.Append(ctx, s.DB, tx, audit.Entry{ActorName: pii.Mask(phone, 3, 4), IP: ip, Action: "sms_code",
			Resource: "patient_accounts", RecordID: id, Summary: "发送登录验证码到 " + pii.Mask(phone, 3, 4)})
	})
	if err != nil {
		return err
	}
	if err := s.SMS.SendCode(ctx, phone, code); err != nil {
		// A code the patient never received must not stay valid.
		s.DB.Tx(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
			_, err := s.DB.TxExec(ctx, tx, `UPDATE patient_sms_codes SET used_at = ? WHERE id = ?`, ihos.FormatTime(now), id)
			return err
		})
		return err
	}
	return nil
}

// codeHash is keyed (the pii index key lives outside the database), so the
// table alone does not give the 10⁶ possible codes away.
func (s *Service) codeHash(id, code string) string {
	return s.Sealer.Index("sms-code:" + id + ":" + code)
}

// Session is a patient's login.
type Session struct {
	Token     string    `json:"token"`
	CSRF      string    `json:"csrf_token"`
	ExpiresAt time.Time `json:"expires_at"`
	Patient   Patient   `json:"patient"`
	// Created is true when this login opened a new account (sign-up).
	Created bool `json:"created"`
}

// Login checks phone's code and opens a session, creating the account at
// hospital on first login.
func (s *Service) Login(ctx context.Context, hospital, phone, code, ip, userAgent string) (*Session, error) {
	phone, err := checkPhone(phone)
	if err != nil {
		return nil, err
	}
	if !ihos.ValidHospitalID(hospital) || (s.Hospital != nil && !s.Hospital(hospital)) {
		return nil, ihos.Invalid(map[string]string{"hospital_id": "该医院尚未开通互联网医院"})
	}
	if len(code) != 6 || !digits(code) {
		return nil, &ihos.Error{Code: ihos.EInvalid, Message: "请输入 6 位数字验证码", Fields: map[string]string{"code": "请输入 6 位数字验证码"}}
	}
	now := s.now()
	ts := ihos.FormatTime(now)
	bidx := s.Sealer.Index(phone)
	masked := pii.Mask(phone, 3, 4)
	sess := &Session{Token: web.NewSessionToken(), CSRF: web.NewSessionToken(), ExpiresAt: now.Add(s.MaxAge)}
	err = s.tx(ctx, func(tx *sql.Tx) (error, error) {
		var id, hash, expires string
		var attempts int
		err := s.DB.TxQueryRow(ctx, tx, `SELECT id, code_hash, expires_at, attempts FROM patient_sms_codes
			WHERE phone_bidx = ? AND used_at IS NULL ORDER BY created_at DESC LIMIT 1`+s.DB.ForUpdate(), bidx).Scan(&id, &hash, &expires, &attempts)
		if errors.Is(err, sql.ErrNoRows) {
			return codeRefusal("验证码已失效，请重新获取"), nil
		}
		if err != nil {
			return nil, err
		}
		if exp, _ := ihos.ParseTime(expires); !now.Before(exp) {
			_, err := s.DB.TxExec(ctx, tx, `UPDATE patient_sms_codes SET used_at = ? WHERE id = ?`, ts, id)
			return codeRefusal("验证码已过期，请重新获取"), err
		}
		if subtle.ConstantTimeCompare([]byte(hash), []byte(s.codeHash(id, code))) != 1 {
			attempts++
			var used any
			refusal := codeRefusal("验证码错误，请重新输入")
			if attempts >= s.MaxAttempts {
				used, refusal = ts, codeRefusal("验证码错误次数过多，请重新获取")
			}
			if _, err := s.DB.TxExec(ctx, tx, `UPDATE patient_sms_codes SET attempts = ?, used_at = ? WHERE id = ?`, attempts, used, id); err != nil {
				return nil, err
			}
			return refusal, audit.Append(ctx, s.DB, tx, audit.Entry{ActorName: masked, IP: ip, Action: audit.ActionLoginFailed,
				Resource: "patient_accounts", Summary: fmt.Sprintf("患者登录失败：验证码错误（第 %d 次）", attempts)})
		}
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE patient_sms_codes SET used_at = ? WHERE id = ?`, ts, id); err != nil {
			return nil, err
		}
		var p Patient
		var enabled int
		err = s.DB.TxQueryRow(ctx, tx, `SELECT id, patient_id, enabled FROM patient_accounts WHERE hospital_id = ? AND phone_bidx = ?`+s.DB.ForUpdate(),
			hospital, bidx).Scan(&p.AccountID, &p.PatientID, &enabled)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			sealed, err := s.Sealer.Seal(phone)
			if err != nil {
				return nil, err
			}
			p.AccountID, enabled, sess.Created = ihos.NewID(), 1, true
			if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO patient_accounts (id, hospital_id, phone, phone_bidx, patient_id, enabled, version, created_at, updated_at)
				VALUES (?, ?, ?, ?, '', 1, 1, ?, ?)`, p.AccountID, hospital, sealed, bidx, ts, ts); err != nil {
				return nil, err
			}
			if err := audit.Append(ctx, s.DB, tx, audit.Entry{ActorID: p.AccountID, ActorName: masked, IP: ip, Action: "create",
				Resource: "patient_accounts", RecordID: p.AccountID, Summary: "患者注册：" + masked}); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, err
		}
		if enabled == 0 {
			return ihos.Errorf(ihos.EForbidden, "账号已停用，请联系医院"), nil
		}
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE patient_accounts SET last_login_at = ? WHERE id = ?`, ts, p.AccountID); err != nil {
			return nil, err
		}
		if err := s.sessions().Insert(ctx, tx, sess.Token, sess.CSRF, p.AccountID, ip, userAgent, now, sess.ExpiresAt); err != nil {
			return nil, err
		}
		return nil, audit.Append(ctx, s.DB, tx, audit.Entry{ActorID: p.AccountID, ActorName: masked, IP: ip, Action: audit.ActionLogin,
			Resource: "patient_accounts", RecordID: p.AccountID, Summary: "患者登录"})
	})
	if err != nil {
		return nil, err
	}
	p, _, err := s.lookup(ctx, web.SessionTokenHash(sess.Token))
	if err != nil {
		return nil, err
	}
	sess.Patient = p
	return sess, nil
}

func codeRefusal(msg string) error {
	return &ihos.Error{Code: ihos.EInvalid, Message: msg, Fields: map[string]string{"code": msg}}
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Lookup returns the patient of a session token. A session ends IdleTimeout
// after its last use and MaxAge after login; last use is written at most
// once a minute.
func (s *Service) Lookup(ctx context.Context, token string) (Patient, error) {
	if token == "" || len(token) > 100 {
		return Patient{}, ErrNoSession
	}
	p, _, err := s.lookup(ctx, web.SessionTokenHash(token))
	return p, err
}

func (s *Service) lookup(ctx context.Context, th string) (Patient, string, error) {
	var (
		p                           Patient
		csrf, expires, seen, sealed string
		name                        sql.NullString
		enabled                     int
	)
	err := s.DB.QueryRowContext(ctx, `SELECT a.id, a.hospital_id, a.phone, a.patient_id, a.enabled, p.name, s.csrf_token, s.expires_at, s.last_seen_at
		FROM patient_sessions s JOIN patient_accounts a ON a.id = s.account_id LEFT JOIN patients p ON p.id = a.patient_id
		WHERE s.token_hash = ?`, th).Scan(&p.AccountID, &p.HospitalID, &sealed, &p.PatientID, &enabled, &name, &csrf, &expires, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return Patient{}, "", ErrNoSession
	}
	if err != nil {
		return Patient{}, "", ihos.Internal(err)
	}
	if !s.sessions().Live(ctx, th, enabled != 0, expires, seen, s.now(), s.IdleTimeout) {
		return Patient{}, "", ErrNoSession
	}
	phone, err := s.Sealer.Open(sealed)
	if err != nil {
		return Patient{}, "", ihos.Internal(err)
	}
	p.Phone = pii.Mask(phone, 3, 4)
	p.Name = name.String
	p.Verified = p.PatientID != ""
	return p, csrf, nil
}

// sessions is the patient_sessions table's mechanics.
func (s *Service) sessions() web.Sessions {
	return web.Sessions{DB: s.DB, Table: "patient_sessions", Owner: "account_id", Log: "accounts"}
}

// Logout ends the session of token.
func (s *Service) Logout(ctx context.Context, token string) error {
	th := web.SessionTokenHash(token)
	p, _, err := s.lookup(ctx, th)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) (error, error) {
		if err := s.sessions().Delete(ctx, tx, th); err != nil {
			return nil, err
		}
		return nil, audit.Append(ctx, s.DB, tx, audit.Entry{ActorID: p.AccountID, ActorName: p.Phone, Action: audit.ActionLogout,
			Resource: "patient_accounts", RecordID: p.AccountID, Summary: "患者退出登录"})
	})
}

// Revoke ends every session of an account (a disabled account, a lost phone).
func (s *Service) Revoke(ctx context.Context, accountID, reason string) error {
	return s.tx(ctx, func(tx *sql.Tx) (error, error) {
		if err := s.sessions().DeleteOwner(ctx, tx, accountID); err != nil {
			return nil, err
		}
		return nil, s.record(ctx, tx, "revoke_sessions", "patient_accounts", accountID, "结束患者账号的全部登录："+reason)
	})
}
