package kiosk

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"ihos"
	"ihos/internal/audit"
)

// Pairing and device limits.
const (
	// CodeTTL is how long a pairing code can be used.
	CodeTTL = 10 * time.Minute
	// maxFailures wrong codes from one address within failureWindow block it
	// for the rest of the window: 5 guesses in 10 minutes against a million
	// codes.
	maxFailures   = 5
	failureWindow = 10 * time.Minute
	// seenEvery limits the writes of last_seen_at.
	seenEvery = 30 * time.Second
	// OnlineWithin: a kiosk seen this recently counts as online (its start
	// screen asks for its status every 30 s).
	OnlineWithin = 2 * time.Minute
)

// CookieName is the device cookie. It is sent only to /kiosk/.
const CookieName = "ihos_kiosk"

// Messages the kiosk shows.
const (
	msgUnpaired = "本机尚未登记，请联系信息科在管理控制台生成配对码"
	msgDisabled = "本机暂停服务，请到人工窗口办理"
)

// Kiosk is a registered kiosk.
type Kiosk struct {
	ID          string
	Name        string
	Location    string
	PrinterID   string
	IdleSeconds int
	Enabled     bool
	Paired      bool
	PairedAt    time.Time
	LastSeen    time.Time
}

// Online reports whether the kiosk asked for anything within OnlineWithin of now.
func (k Kiosk) Online(now time.Time) bool {
	return !k.LastSeen.IsZero() && now.Sub(k.LastSeen) < OnlineWithin
}

type pendingCode struct {
	code    string
	by      string // the console user who generated it: only they see it
	expires time.Time
}

const kioskColumns = `id, name, location, COALESCE(printer_id, ''), idle_seconds, enabled, device_token_hash, COALESCE(paired_at, ''), COALESCE(last_seen_at, '')`

func scanKiosk(row interface{ Scan(...any) error }) (Kiosk, error) {
	var k Kiosk
	var enabled int
	var token, paired, seen string
	if err := row.Scan(&k.ID, &k.Name, &k.Location, &k.PrinterID, &k.IdleSeconds, &enabled, &token, &paired, &seen); err != nil {
		return k, err
	}
	k.Enabled, k.Paired = enabled == 1, token != ""
	k.PairedAt, _ = ihos.ParseTime(paired)
	k.LastSeen, _ = ihos.ParseTime(seen)
	if k.IdleSeconds < 15 {
		k.IdleSeconds = 15
	}
	return k, nil
}

// Kiosks lists the registered kiosks by name.
func (s *Service) Kiosks(ctx context.Context) ([]Kiosk, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+kioskColumns+` FROM kiosks WHERE deleted_at IS NULL ORDER BY name, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Kiosk
	for rows.Next() {
		k, err := scanKiosk(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Kiosk returns one kiosk.
func (s *Service) Kiosk(ctx context.Context, id string) (Kiosk, error) {
	k, err := scanKiosk(s.DB.QueryRowContext(ctx, `SELECT `+kioskColumns+` FROM kiosks WHERE id = ? AND deleted_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return k, ihos.Errorf(ihos.ENotFound, "自助机不存在或已删除")
	}
	return k, err
}

func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func codeHash(kioskID, code string) string { return hashHex(kioskID + ":" + code) }

// NewPairingCode makes a one-time 6-digit code for kiosk id, valid for
// CodeTTL, replacing any earlier one; only its hash is stored. The device
// typing it becomes the kiosk (a device paired before loses it). Audited.
func (s *Service) NewPairingCode(ctx context.Context, id string) (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1000000))
	if err != nil {
		return "", err
	}
	code := fmt.Sprintf("%06d", n.Int64())
	now := s.now()
	k, err := s.Kiosk(ctx, id)
	if err != nil {
		return "", err
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE kiosks SET pairing_code_hash = ?, pairing_expires_at = ? WHERE id = ?`,
			codeHash(id, code), ihos.FormatTime(now.Add(CodeTTL)), id); err != nil {
			return err
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "pairing_code", Resource: "kiosks", RecordID: id,
			Summary: fmt.Sprintf("为自助机「%s」生成配对码（%d 分钟内有效）", k.Name, int(CodeTTL/time.Minute))})
	})
	if err != nil {
		return "", err
	}
	actor, _ := ihos.ActorFrom(ctx)
	s.mu.Lock()
	if s.codes == nil {
		s.codes = map[string]pendingCode{}
	}
	s.codes[id] = pendingCode{code: code, by: actor.UserID, expires: now.Add(CodeTTL)}
	s.mu.Unlock()
	return code, nil
}

// pendingCodes returns the unexpired codes the user generated, by kiosk id.
func (s *Service) pendingCodes(userID string) map[string]string {
	now := s.now()
	out := map[string]string{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, c := range s.codes {
		switch {
		case now.After(c.expires):
			delete(s.codes, id)
		case c.by == userID:
			out[id] = c.code
		}
	}
	return out
}

// Pair trades a pairing code for a device token. ip limits guessing: after
// maxFailures wrong codes in failureWindow the address is refused until the
// window passes. The kiosk's pending code is used up; the token's hash
// replaces the previous device's. Audited as the kiosk.
func (s *Service) Pair(ctx context.Context, code, ip string) (k Kiosk, token string, err error) {
	now := s.now()
	s.mu.Lock()
	if s.failures == nil {
		s.failures = map[string][]time.Time{}
	}
	recent := s.failures[ip][:0]
	for _, t := range s.failures[ip] {
		if now.Sub(t) < failureWindow {
			recent = append(recent, t)
		}
	}
	s.failures[ip] = recent
	blocked := len(recent) >= maxFailures
	s.mu.Unlock()
	if blocked {
		return k, "", ihos.Errorf(ihos.EForbidden, "配对码错误次数过多，请 10 分钟后再试")
	}
	if len(code) != 6 {
		return k, "", ihos.Errorf(ihos.EInvalid, "请输入 6 位配对码")
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT id, pairing_code_hash FROM kiosks WHERE deleted_at IS NULL AND pairing_code_hash <> '' AND pairing_expires_at > ?`, ihos.FormatTime(now))
	if err != nil {
		return k, "", err
	}
	var id string
	for rows.Next() {
		var kid, h string
		if err := rows.Scan(&kid, &h); err != nil {
			rows.Close()
			return k, "", err
		}
		if subtle.ConstantTimeCompare([]byte(h), []byte(codeHash(kid, code))) == 1 {
			id = kid
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return k, "", err
	}
	if id == "" {
		s.mu.Lock()
		s.failures[ip] = append(s.failures[ip], now)
		s.mu.Unlock()
		return k, "", ihos.Errorf(ihos.EInvalid, "配对码不正确或已过期，请核对后重新输入")
	}
	var b [32]byte
	rand.Read(b[:])
	token = hex.EncodeToString(b[:])
	if k, err = s.Kiosk(ctx, id); err != nil {
		return k, "", err
	}
	ctx = ihos.WithActor(ctx, kioskActor(k, ip))
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE kiosks SET device_token_hash = ?, pairing_code_hash = '', pairing_expires_at = NULL, paired_at = ?, last_seen_at = ?
			WHERE id = ? AND pairing_code_hash <> ''`, hashHex(token), ihos.FormatTime(now), ihos.FormatTime(now), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 { // a second device used the same code at the same moment
			return ihos.Errorf(ihos.EConflict, "配对码已被使用，请重新生成")
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "pair", Resource: "kiosks", RecordID: id,
			Summary: fmt.Sprintf("自助机「%s」完成配对（设备地址 %s）", k.Name, ip)})
	})
	if err != nil {
		return k, "", err
	}
	s.mu.Lock()
	delete(s.codes, id)
	s.abandon(s.sessions[id])
	delete(s.sessions, id)
	s.mu.Unlock()
	k.Paired, k.PairedAt, k.LastSeen = true, now, now
	return k, token, nil
}

// SetEnabled enables or disables a kiosk from the console. A disabled kiosk
// is refused every API call at once and its patient session ends. Audited.
func (s *Service) SetEnabled(ctx context.Context, id string, enabled bool) error {
	k, err := s.Kiosk(ctx, id)
	if err != nil {
		return err
	}
	action, verb := "enable", "启用"
	if !enabled {
		action, verb = "disable", "停用"
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE kiosks SET enabled = ?, version = version + 1, updated_at = ? WHERE id = ?`,
			boolInt(enabled), ihos.FormatTime(s.now()), id); err != nil {
			return err
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: action, Resource: "kiosks", RecordID: id,
			Summary: fmt.Sprintf("%s自助机「%s」", verb, k.Name),
			Before:  []byte(fmt.Sprintf(`{"enabled":%t}`, k.Enabled)), After: []byte(fmt.Sprintf(`{"enabled":%t}`, enabled))})
	})
	if err != nil {
		return err
	}
	if !enabled {
		s.mu.Lock()
		s.abandon(s.sessions[id])
		delete(s.sessions, id)
		s.mu.Unlock()
	}
	return nil
}

// Unpair forgets the kiosk's device: it shows 本机尚未登记 until paired again. Audited.
func (s *Service) Unpair(ctx context.Context, id string) error {
	k, err := s.Kiosk(ctx, id)
	if err != nil {
		return err
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE kiosks SET device_token_hash = '', paired_at = NULL WHERE id = ?`, id); err != nil {
			return err
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "unpair", Resource: "kiosks", RecordID: id,
			Summary: fmt.Sprintf("解除自助机「%s」的设备配对", k.Name)})
	})
	if err == nil {
		s.mu.Lock()
		s.abandon(s.sessions[id])
		delete(s.sessions, id)
		s.mu.Unlock()
	}
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// device returns the kiosk of the request's device cookie; ok is false for a
// device that is not paired (no cookie, or a token no kiosk holds). It notes
// the kiosk as seen.
func (s *Service) device(r *http.Request) (k Kiosk, ok bool, err error) {
	c, err := r.Cookie(CookieName)
	if err != nil || len(c.Value) != 64 {
		return k, false, nil
	}
	ctx := r.Context()
	k, err = scanKiosk(s.DB.QueryRowContext(ctx, `SELECT `+kioskColumns+` FROM kiosks WHERE device_token_hash = ? AND deleted_at IS NULL`, hashHex(c.Value)))
	if errors.Is(err, sql.ErrNoRows) {
		return k, false, nil
	}
	if err != nil {
		return k, false, err
	}
	now := s.now()
	s.mu.Lock()
	if s.seen == nil {
		s.seen = map[string]time.Time{}
	}
	stale := now.Sub(s.seen[k.ID]) >= seenEvery
	if stale {
		s.seen[k.ID] = now
	}
	s.mu.Unlock()
	if stale {
		if err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE kiosks SET last_seen_at = ? WHERE id = ?`, ihos.FormatTime(now), k.ID)
			return err
		}); err != nil {
			return k, false, err
		}
		k.LastSeen = now
	}
	return k, true, nil
}

// kioskActor is who a kiosk's actions are audited as.
func kioskActor(k Kiosk, ip string) ihos.Actor {
	return ihos.Actor{UserID: "kiosk:" + k.ID, Username: "kiosk:" + k.Name, Name: "自助机 " + k.Name, IP: ip}
}

func (s *Service) setCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: token, Path: "/kiosk/", MaxAge: 10 * 365 * 24 * 3600,
		HttpOnly: true, Secure: s.Secure, SameSite: http.SameSiteStrictMode})
}
