package svs

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"ihos"
	"ihos/certs"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
)

// Revocation policies: what verify level 2 checks.
const (
	RevocationNone    = "none"
	RevocationCRL     = "crl"
	RevocationOCSP    = "ocsp"
	RevocationCRLOCSP = "crl+ocsp"
)

// ChainHospital is the trust chain of the hospital CA. It always exists.
const ChainHospital = "hospital"

// DefaultKey is the key name applications sign with when none is given.
const DefaultKey = "default"

// App is an application allowed to call the API, with its policy.
type App struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	KeyName string `json:"key_name"` // the key it signs with (default "default")
	// TrustChains are the chains a certificate may chain to at verify level
	// 1 and 2 (default: ["hospital"]).
	TrustChains []string `json:"trust_chains"`
	// Revocation is what level 2 checks: none, crl (default), ocsp, crl+ocsp.
	Revocation string `json:"revocation"`
	// Timestamp: signed messages carry a timestamp token from the server's TSA.
	Timestamp bool      `json:"timestamp"`
	Note      string    `json:"note"`
	Enabled   bool      `json:"enabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	tokenHash [32]byte
}

// appIndex is the immutable snapshot of the applications the API checks
// tokens against; it is replaced, never changed, after every change.
type appIndex struct {
	byHash map[[32]byte]*App
}

// authenticate returns the enabled application whose token is token.
func (s *Server) authenticate(token string) (*App, bool) {
	if token == "" || len(token) > 512 {
		return nil, false
	}
	idx := s.apps.Load()
	if idx == nil {
		return nil, false
	}
	h := certs.SM3Sum([]byte(token))
	a, ok := idx.byHash[h]
	// The map is keyed by the hash, so timing reveals nothing about the token;
	// the comparison is repeated in constant time all the same.
	if !ok || subtle.ConstantTimeCompare(a.tokenHash[:], h[:]) != 1 || !a.Enabled {
		return nil, false
	}
	return a, true
}

func newToken() (token string, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", ihos.Internal(err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	h := certs.SM3Sum([]byte(token))
	return token, hex.EncodeToString(h[:]), nil
}

// CreateApp registers an application and returns its bearer token, which is
// shown only this once. Empty fields get the defaults documented on App.
func (s *Server) CreateApp(ctx context.Context, a App) (string, error) {
	a, err := s.checkApp(ctx, a)
	if err != nil {
		return "", err
	}
	token, hash, err := newToken()
	if err != nil {
		return "", err
	}
	if a.ID == "" {
		a.ID = ihos.NewID()
	}
	now := ihos.FormatTime(s.now())
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO svs_apps (id, name, token_hash, key_name, trust_chain, revocation, use_timestamp, note, enabled, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
			a.ID, a.Name, hash, a.KeyName, strings.Join(a.TrustChains, ","), a.Revocation, boolInt(a.Timestamp), a.Note, now, now)
		if err != nil {
			if sqldb.IsUniqueViolation(err) {
				return ihos.Invalid(map[string]string{"name": "已有同名应用"})
			}
			return err
		}
		a.Enabled = true
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "create", Resource: "svs_apps", RecordID: a.ID,
			Summary: "新建签名验签应用：" + a.Name, After: jsonOf(a)})
	})
	if err != nil {
		return "", wrapInternal(err)
	}
	return token, s.reloadApps(ctx)
}

// UpdateApp replaces the policy of an application (found by ID, or by Name
// when ID is empty): its key, trust chains, revocation check, timestamp and
// note; empty fields get their defaults. The token and the enabled flag stay
// (SetAppEnabled switches it).
func (s *Server) UpdateApp(ctx context.Context, a App) error {
	a, err := s.checkApp(ctx, a)
	if err != nil {
		return err
	}
	return s.changeApp(ctx, firstNonEmpty(a.ID, a.Name), "update", func(old App) (App, string, error) {
		a.ID, a.Name, a.CreatedAt, a.Enabled = old.ID, old.Name, old.CreatedAt, old.Enabled
		return a, "修改签名验签应用策略：" + old.Name, nil
	}, func(ctx context.Context, tx *sql.Tx, a App) error {
		_, err := tx.ExecContext(ctx, `UPDATE svs_apps SET key_name = ?, trust_chain = ?, revocation = ?, use_timestamp = ?, note = ?, enabled = ?, updated_at = ? WHERE id = ?`,
			a.KeyName, strings.Join(a.TrustChains, ","), a.Revocation, boolInt(a.Timestamp), a.Note, boolInt(a.Enabled), ihos.FormatTime(a.UpdatedAt), a.ID)
		return err
	})
}

// DisableApp switches an application off (by id or name): its token stops
// working at once.
func (s *Server) DisableApp(ctx context.Context, idOrName string) error {
	return s.SetAppEnabled(ctx, idOrName, false)
}

// SetAppEnabled switches an application (by id or name) on or off.
func (s *Server) SetAppEnabled(ctx context.Context, idOrName string, on bool) error {
	return s.changeApp(ctx, idOrName, "update", func(old App) (App, string, error) {
		a := old
		a.Enabled = on
		if on {
			return a, "启用签名验签应用：" + old.Name, nil
		}
		return a, "停用签名验签应用：" + old.Name, nil
	}, func(ctx context.Context, tx *sql.Tx, a App) error {
		_, err := tx.ExecContext(ctx, `UPDATE svs_apps SET enabled = ?, updated_at = ? WHERE id = ?`, boolInt(a.Enabled), ihos.FormatTime(a.UpdatedAt), a.ID)
		return err
	})
}

// RotateToken gives an application (by id or name) a new token and returns it;
// the old token stops working at once.
func (s *Server) RotateToken(ctx context.Context, idOrName string) (string, error) {
	token, hash, err := newToken()
	if err != nil {
		return "", err
	}
	err = s.changeApp(ctx, idOrName, "update", func(old App) (App, string, error) {
		return old, "更换签名验签应用令牌：" + old.Name, nil
	}, func(ctx context.Context, tx *sql.Tx, a App) error {
		_, err := tx.ExecContext(ctx, `UPDATE svs_apps SET token_hash = ?, updated_at = ? WHERE id = ?`, hash, ihos.FormatTime(a.UpdatedAt), a.ID)
		return err
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// changeApp reads the application, lets change compute the new state, writes
// it with write and an audit entry in one transaction, and reloads the index.
func (s *Server) changeApp(ctx context.Context, idOrName, action string, change func(App) (App, string, error),
	write func(context.Context, *sql.Tx, App) error) error {
	idOrName = strings.TrimSpace(idOrName)
	if idOrName == "" {
		return ihos.Errorf(ihos.EInvalid, "请指定应用")
	}
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, appSelect+` WHERE id = ? OR name = ?`+s.DB.ForUpdate(), idOrName, idOrName)
		if err != nil {
			return err
		}
		list, err := scanApps(rows)
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return ihos.Errorf(ihos.ENotFound, "应用 %s 不存在", idOrName)
		}
		old := list[0]
		a, summary, err := change(old)
		if err != nil {
			return err
		}
		a.UpdatedAt = s.now()
		if err := write(ctx, tx, a); err != nil {
			return err
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: action, Resource: "svs_apps", RecordID: a.ID,
			Summary: summary, Before: jsonOf(old), After: jsonOf(a)})
	})
	if err != nil {
		return wrapInternal(err)
	}
	return s.reloadApps(ctx)
}

// checkApp validates a and fills its defaults.
func (s *Server) checkApp(ctx context.Context, a App) (App, error) {
	fields := map[string]string{}
	a.Name = strings.TrimSpace(a.Name)
	if n := utf8.RuneCountInString(a.Name); n == 0 || n > 100 {
		fields["name"] = "请填写应用名称（最长 100 个字符）"
	} else if strings.ContainsAny(a.Name, ",\r\n") {
		fields["name"] = "应用名称不能包含逗号或换行"
	}
	a.KeyName = strings.TrimSpace(a.KeyName)
	if a.KeyName == "" {
		a.KeyName = DefaultKey
	}
	if ok, err := s.Keys.Has(ctx, a.KeyName); err != nil {
		return a, err
	} else if !ok {
		fields["key_name"] = fmt.Sprintf("签名密钥 %s 不存在", a.KeyName)
	}
	var chains []string
	for _, c := range a.TrustChains {
		for _, c := range strings.Split(c, ",") {
			if c = strings.TrimSpace(c); c != "" && !slices.Contains(chains, c) {
				chains = append(chains, c)
			}
		}
	}
	if len(chains) == 0 {
		chains = []string{ChainHospital}
	}
	known := s.trust.Load()
	for _, c := range chains {
		if c != ChainHospital && (known == nil || known.chains[c] == nil) {
			fields["trust_chains"] = fmt.Sprintf("信任链 %s 不存在，请先导入", c)
		}
	}
	if len(strings.Join(chains, ",")) > 500 {
		fields["trust_chains"] = "信任链过多"
	}
	a.TrustChains = chains
	a.Revocation = strings.ToLower(strings.TrimSpace(a.Revocation))
	switch a.Revocation {
	case "":
		a.Revocation = RevocationCRL
	case RevocationNone, RevocationCRL, RevocationOCSP, RevocationCRLOCSP:
	default:
		fields["revocation"] = "吊销检查方式应为 none、crl、ocsp 或 crl+ocsp"
	}
	if utf8.RuneCountInString(a.Note) > 200 {
		fields["note"] = "备注最长 200 个字符"
	}
	if len(fields) > 0 {
		return a, ihos.Invalid(fields)
	}
	return a, nil
}

const appSelect = `SELECT id, name, token_hash, key_name, trust_chain, revocation, use_timestamp, note, enabled, created_at, updated_at FROM svs_apps`

func scanApps(rows *sql.Rows) ([]App, error) {
	defer rows.Close()
	var out []App
	for rows.Next() {
		var a App
		var hash, chains, created, updated string
		var ts, enabled int
		if err := rows.Scan(&a.ID, &a.Name, &hash, &a.KeyName, &chains, &a.Revocation, &ts, &a.Note, &enabled, &created, &updated); err != nil {
			return nil, err
		}
		if b, err := hex.DecodeString(hash); err == nil && len(b) == 32 {
			copy(a.tokenHash[:], b)
		}
		for _, c := range strings.Split(chains, ",") {
			if c = strings.TrimSpace(c); c != "" {
				a.TrustChains = append(a.TrustChains, c)
			}
		}
		if len(a.TrustChains) == 0 {
			a.TrustChains = []string{ChainHospital}
		}
		a.Timestamp, a.Enabled = ts != 0, enabled != 0
		a.CreatedAt, _ = ihos.ParseTime(created)
		a.UpdatedAt, _ = ihos.ParseTime(updated)
		out = append(out, a)
	}
	return out, rows.Err()
}

// ListApps returns every application, by name.
func (s *Server) ListApps(ctx context.Context) ([]App, error) {
	rows, err := s.DB.QueryContext(ctx, appSelect+` ORDER BY name`)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	list, err := scanApps(rows)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	return list, nil
}

// reloadApps rebuilds the token index from the table.
func (s *Server) reloadApps(ctx context.Context) error {
	s.reload.Lock()
	defer s.reload.Unlock()
	list, err := s.ListApps(ctx)
	if err != nil {
		return err
	}
	idx := &appIndex{byHash: make(map[[32]byte]*App, len(list))}
	for i := range list {
		idx.byHash[list[i].tokenHash] = &list[i]
	}
	s.apps.Store(idx)
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// wrapInternal passes *ihos.Error through and wraps anything else.
func wrapInternal(err error) error {
	if err == nil {
		return nil
	}
	var e *ihos.Error
	if errors.As(err, &e) {
		return err
	}
	return ihos.Internal(err)
}

func jsonOf(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}
