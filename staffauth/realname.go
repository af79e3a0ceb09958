package staffauth

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/pii"
	"ihos/sms"
)

// RequireRealNameToday refuses a visit action of st before today's
// real-name check (Asia/Shanghai day). The visit and prescription APIs call
// it with the Staff that Authorize returned.
func (s *Service) RequireRealNameToday(ctx context.Context, st Staff) error {
	var one int
	err := s.DB.QueryRowContext(ctx, `SELECT 1 FROM staff_realname_checks WHERE staff_id = ? AND day = ?`, st.ID, s.today()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrRealName
	}
	if err != nil {
		return ihos.Internal(err)
	}
	return nil
}

// SendRealNameCode sends a 6-digit code to the phone of st's record for
// today's real-name check. Only the newest code is valid; a new one may be
// asked for every ResendAfter.
func (s *Service) SendRealNameCode(ctx context.Context, st Staff) error {
	if s.SMS == nil {
		return ihos.Errorf(ihos.EUnavailable, "短信服务未配置，暂时无法发送验证码")
	}
	now := s.now()
	id, code := ihos.NewID(), sms.NewCode()
	var phone string
	err := s.tx(ctx, func(tx *sql.Tx) (error, error) {
		if err := s.DB.TxQueryRow(ctx, tx, `SELECT phone FROM staff_app_logins WHERE staff_id = ?`, st.ID).Scan(&phone); err != nil {
			return nil, err
		}
		if phone == "" {
			return ihos.Errorf(ihos.EInvalid, "您的登录手机号缺失，请联系医院"), nil
		}
		if pii.IsSealed(phone) {
			var err error
			if phone, err = s.Sealer.Open(phone); err != nil {
				return nil, err
			}
		}
		var last sql.NullString
		if err := s.DB.TxQueryRow(ctx, tx, `SELECT MAX(created_at) FROM staff_realname_codes WHERE staff_id = ?`, st.ID).Scan(&last); err != nil {
			return nil, err
		}
		if t, err := ihos.ParseTime(last.String); last.Valid && err == nil && now.Sub(t) < s.ResendAfter {
			wait := int((s.ResendAfter - now.Sub(t) + time.Second - 1) / time.Second)
			return ihos.Errorf(ihos.ETooMany, "验证码已发送，请 %d 秒后再试", wait), nil
		}
		ts := ihos.FormatTime(now)
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE staff_realname_codes SET used_at = ? WHERE staff_id = ? AND used_at IS NULL`, ts, st.ID); err != nil {
			return nil, err
		}
		if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO staff_realname_codes (id, staff_id, code_hash, attempts, created_at, expires_at) VALUES (?, ?, ?, 0, ?, ?)`,
			id, st.ID, s.codeHash(id, code), ts, ihos.FormatTime(now.Add(s.CodeTTL))); err != nil {
			return nil, err
		}
		return nil, audit.Append(ctx, s.DB, tx, audit.Entry{ActorID: st.ID, ActorName: st.Name, Action: "sms_code",
			Resource: "staff_realname_checks", RecordID: id, Summary: "发送实名认证验证码到 " + st.Phone})
	})
	if err != nil {
		return err
	}
	if err := s.SMS.SendCode(ctx, phone, code); err != nil {
		// A code the doctor never received must not stay valid.
		s.DB.Tx(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
			_, err := s.DB.TxExec(ctx, tx, `UPDATE staff_realname_codes SET used_at = ? WHERE id = ?`, ihos.FormatTime(now), id)
			return err
		})
		return err
	}
	return nil
}

// codeHash is keyed (the pii index key lives outside the database).
func (s *Service) codeHash(id, code string) string {
	return s.Sealer.Index("staff-realname:" + id + ":" + code)
}

// ConfirmRealName checks st's code and records today's real-name check.
func (s *Service) ConfirmRealName(ctx context.Context, st Staff, code string) error {
	if len(code) != 6 || !digits(code) {
		return codeRefusal("请输入 6 位数字验证码")
	}
	now := s.now()
	ts := ihos.FormatTime(now)
	day := s.today()
	return s.tx(ctx, func(tx *sql.Tx) (error, error) {
		var id, hash, expires string
		var attempts int
		err := s.DB.TxQueryRow(ctx, tx, `SELECT id, code_hash, expires_at, attempts FROM staff_realname_codes
			WHERE staff_id = ? AND used_at IS NULL ORDER BY created_at DESC LIMIT 1`+s.DB.ForUpdate(), st.ID).Scan(&id, &hash, &expires, &attempts)
		if errors.Is(err, sql.ErrNoRows) {
			return codeRefusal("验证码已失效，请重新获取"), nil
		}
		if err != nil {
			return nil, err
		}
		if exp, _ := ihos.ParseTime(expires); !now.Before(exp) {
			_, err := s.DB.TxExec(ctx, tx, `UPDATE staff_realname_codes SET used_at = ? WHERE id = ?`, ts, id)
			return codeRefusal("验证码已过期，请重新获取"), err
		}
		if !checkCode(hash, s.codeHash(id, code)) {
			attempts++
			var used any
			refusal := codeRefusal("验证码错误，请重新输入")
			if attempts >= s.MaxAttempts {
				used, refusal = ts, codeRefusal("验证码错误次数过多，请重新获取")
			}
			_, err := s.DB.TxExec(ctx, tx, `UPDATE staff_realname_codes SET attempts = ?, used_at = ? WHERE id = ?`, attempts, used, id)
			return refusal, err
		}
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE staff_realname_codes SET used_at = ? WHERE id = ?`, ts, id); err != nil {
			return nil, err
		}
		var one int
		err = s.DB.TxQueryRow(ctx, tx, `SELECT 1 FROM staff_realname_checks WHERE staff_id = ? AND day = ?`, st.ID, day).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			_, err = s.DB.TxExec(ctx, tx, `INSERT INTO staff_realname_checks (staff_id, day, verified_at) VALUES (?, ?, ?)`, st.ID, day, ts)
		}
		if err != nil {
			return nil, err
		}
		return nil, audit.Append(ctx, s.DB, tx, audit.Entry{ActorID: st.ID, ActorName: st.Name, Action: "realname",
			Resource: "staff_realname_checks", RecordID: st.ID, Summary: "医务人员完成今日实名认证（" + day + "，短信验证码）"})
	})
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
