package svs

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"ihos"
	"ihos/certs"
	"ihos/internal/audit"
)

const backupFormat = "ihos-svs-backup"

// backup is the JSON document of Backup. Applications keep their token hashes
// so that after a restore every calling system goes on with the token it has;
// a backup therefore lets whoever holds it recognise tokens (not make them),
// and must be kept like the configuration it is. Keys stay sealed under the
// KEK: a backup is useless without the appliance's KEK, and a restore needs
// the same one.
type backup struct {
	Format    string        `json:"format"`
	Version   int           `json:"version"`
	CreatedAt time.Time     `json:"created_at"`
	Enabled   bool          `json:"enabled"`
	Apps      []backupApp   `json:"apps"`
	Keys      []backupKey   `json:"keys"`
	Trust     []backupTrust `json:"trust"`
	Certs     []backupCert  `json:"certs"`
}

type backupApp struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	TokenHash  string `json:"token_hash"`
	KeyName    string `json:"key_name"`
	TrustChain string `json:"trust_chain"`
	Revocation string `json:"revocation"`
	Timestamp  bool   `json:"timestamp"`
	Note       string `json:"note"`
	Enabled    bool   `json:"enabled"`
	CreatedAt  string `json:"created_at"`
	UpdatedAt  string `json:"updated_at"`
}

type backupKey struct {
	Name      string `json:"name"`
	Algorithm string `json:"algorithm"`
	CertPEM   string `json:"cert_pem"`
	SealedKey string `json:"sealed_key"`
	CreatedAt string `json:"created_at"`
}

type backupTrust struct {
	ID            string  `json:"id"`
	Chain         string  `json:"chain"`
	Kind          string  `json:"kind"`
	Subject       string  `json:"subject"`
	Fingerprint   string  `json:"fingerprint"`
	CertPEM       string  `json:"cert_pem"`
	CRLURL        string  `json:"crl_url"`
	CRL           *string `json:"crl"`
	CRLThisUpdate *string `json:"crl_this_update"`
	CRLNextUpdate *string `json:"crl_next_update"`
	CRLFetchedAt  *string `json:"crl_fetched_at"`
	CRLError      string  `json:"crl_error"`
	CreatedAt     string  `json:"created_at"`
}

type backupCert struct {
	Serial     string `json:"serial"`
	Subject    string `json:"subject"`
	Issuer     string `json:"issuer"`
	SubjectID  string `json:"subject_id"`
	CommonName string `json:"common_name"`
	NotBefore  string `json:"not_before"`
	NotAfter   string `json:"not_after"`
	CertPEM    string `json:"cert_pem"`
	ImportedBy string `json:"imported_by"`
	ImportedAt string `json:"imported_at"`
}

// Backup returns the service's configuration as JSON (see the package
// documentation for what it holds). The signature log is not included.
func (s *Server) Backup(ctx context.Context) ([]byte, error) {
	b := backup{Format: backupFormat, Version: 1, CreatedAt: s.now().UTC(), Apps: []backupApp{}, Keys: []backupKey{}, Trust: []backupTrust{}, Certs: []backupCert{}}
	on, err := s.readEnabled(ctx)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	b.Enabled = on
	err = s.readAll(ctx, `SELECT id, name, token_hash, key_name, trust_chain, revocation, use_timestamp, note, enabled, created_at, updated_at FROM svs_apps ORDER BY name`,
		func(rows *sql.Rows) error {
			var a backupApp
			var ts, en int
			if err := rows.Scan(&a.ID, &a.Name, &a.TokenHash, &a.KeyName, &a.TrustChain, &a.Revocation, &ts, &a.Note, &en, &a.CreatedAt, &a.UpdatedAt); err != nil {
				return err
			}
			a.Timestamp, a.Enabled = ts != 0, en != 0
			b.Apps = append(b.Apps, a)
			return nil
		})
	if err == nil {
		err = s.readAll(ctx, `SELECT name, algorithm, cert_pem, sealed_key, created_at FROM svs_keys ORDER BY name`, func(rows *sql.Rows) error {
			var k backupKey
			if err := rows.Scan(&k.Name, &k.Algorithm, &k.CertPEM, &k.SealedKey, &k.CreatedAt); err != nil {
				return err
			}
			b.Keys = append(b.Keys, k)
			return nil
		})
	}
	if err == nil {
		err = s.readAll(ctx, `SELECT id, chain, kind, subject, fingerprint, cert_pem, crl_url, crl, crl_this_update, crl_next_update, crl_fetched_at, crl_error, created_at FROM svs_trust ORDER BY chain, created_at`,
			func(rows *sql.Rows) error {
				var t backupTrust
				var crl, this, next, fetched sql.NullString
				if err := rows.Scan(&t.ID, &t.Chain, &t.Kind, &t.Subject, &t.Fingerprint, &t.CertPEM, &t.CRLURL, &crl, &this, &next, &fetched, &t.CRLError, &t.CreatedAt); err != nil {
					return err
				}
				t.CRL, t.CRLThisUpdate, t.CRLNextUpdate, t.CRLFetchedAt = strPtr(crl), strPtr(this), strPtr(next), strPtr(fetched)
				b.Trust = append(b.Trust, t)
				return nil
			})
	}
	if err == nil {
		err = s.readAll(ctx, `SELECT serial, subject, issuer, subject_id, common_name, not_before, not_after, cert_pem, imported_by, imported_at FROM svs_certs ORDER BY serial`,
			func(rows *sql.Rows) error {
				var c backupCert
				if err := rows.Scan(&c.Serial, &c.Subject, &c.Issuer, &c.SubjectID, &c.CommonName, &c.NotBefore, &c.NotAfter, &c.CertPEM, &c.ImportedBy, &c.ImportedAt); err != nil {
					return err
				}
				b.Certs = append(b.Certs, c)
				return nil
			})
	}
	if err != nil {
		return nil, ihos.Internal(fmt.Errorf("svs: backup: %w", err))
	}
	return json.MarshalIndent(b, "", "  ")
}

func (s *Server) readAll(ctx context.Context, query string, scan func(*sql.Rows) error) error {
	rows, err := s.DB.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func strPtr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

func ptrArg(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

// Restore replaces the configuration with a backup made by Backup, in one
// transaction, and audits it. Every sealed key must open with this
// appliance's KEK, or nothing is restored. The signature log is kept.
func (s *Server) Restore(ctx context.Context, data []byte) error {
	var b backup
	if err := json.Unmarshal(data, &b); err != nil {
		return ihos.Errorf(ihos.EInvalid, "备份文件不是有效的 JSON")
	}
	if b.Format != backupFormat {
		return ihos.Errorf(ihos.EInvalid, "不是签名验签服务的备份文件")
	}
	if b.Version != 1 {
		return ihos.Errorf(ihos.EInvalid, "不支持的备份版本 %d", b.Version)
	}
	for _, k := range b.Keys {
		if !keyNameRE.MatchString(k.Name) {
			return ihos.Errorf(ihos.EInvalid, "备份中的密钥名称 %q 无效", k.Name)
		}
		if _, err := s.Keys.unseal(k.Name, k.SealedKey); err != nil {
			return ihos.Errorf(ihos.EInvalid, "备份中的签名密钥 %s 无法用本机的密钥加密密钥解密，不能恢复（备份须在使用同一密钥加密密钥的设备上恢复）", k.Name)
		}
		if _, err := certs.ParseCertificate([]byte(k.CertPEM)); err != nil {
			return ihos.Errorf(ihos.EInvalid, "备份中签名密钥 %s 的证书无法解析", k.Name)
		}
	}
	for _, a := range b.Apps {
		if a.ID == "" || a.Name == "" || len(a.TokenHash) != 64 {
			return ihos.Errorf(ihos.EInvalid, "备份中的应用 %q 不完整", a.Name)
		}
	}
	before, err := s.Backup(ctx)
	if err != nil {
		return err
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		for _, t := range []string{"svs_apps", "svs_keys", "svs_trust", "svs_certs"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t); err != nil {
				return err
			}
		}
		if err := putSetting(ctx, tx, settingEnabled, boolText(b.Enabled)); err != nil {
			return err
		}
		for _, a := range b.Apps {
			if _, err := tx.ExecContext(ctx, `INSERT INTO svs_apps (id, name, token_hash, key_name, trust_chain, revocation, use_timestamp, note, enabled, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, a.Name, strings.ToLower(a.TokenHash), a.KeyName, a.TrustChain, a.Revocation,
				boolInt(a.Timestamp), a.Note, boolInt(a.Enabled), a.CreatedAt, a.UpdatedAt); err != nil {
				return fmt.Errorf("app %s: %w", a.Name, err)
			}
		}
		for _, k := range b.Keys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO svs_keys (name, algorithm, cert_pem, sealed_key, created_at) VALUES (?, ?, ?, ?, ?)`,
				k.Name, k.Algorithm, k.CertPEM, k.SealedKey, k.CreatedAt); err != nil {
				return fmt.Errorf("key %s: %w", k.Name, err)
			}
		}
		for _, t := range b.Trust {
			if _, err := tx.ExecContext(ctx, `INSERT INTO svs_trust (id, chain, kind, subject, fingerprint, cert_pem, crl_url, crl, crl_this_update, crl_next_update, crl_fetched_at, crl_error, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, t.ID, t.Chain, t.Kind, t.Subject, t.Fingerprint, t.CertPEM, t.CRLURL,
				ptrArg(t.CRL), ptrArg(t.CRLThisUpdate), ptrArg(t.CRLNextUpdate), ptrArg(t.CRLFetchedAt), t.CRLError, t.CreatedAt); err != nil {
				return fmt.Errorf("trust %s: %w", t.Chain, err)
			}
		}
		for _, c := range b.Certs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO svs_certs (serial, subject, issuer, subject_id, common_name, not_before, not_after, cert_pem, imported_by, imported_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.Serial, c.Subject, c.Issuer, c.SubjectID, c.CommonName, c.NotBefore, c.NotAfter,
				c.CertPEM, c.ImportedBy, c.ImportedAt); err != nil {
				return fmt.Errorf("cert %s: %w", c.Serial, err)
			}
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "restore", Resource: "svs_settings", RecordID: "backup",
			Summary: fmt.Sprintf("恢复签名验签服务配置：%d 个应用、%d 个密钥、%d 个信任证书、%d 个存储证书", len(b.Apps), len(b.Keys), len(b.Trust), len(b.Certs)),
			Before:  summaryJSON(before), After: summaryJSON(data)})
	})
	if err != nil {
		return &ihos.Error{Code: ihos.EInvalid, Message: "恢复失败，配置未改变：备份内容有误", Err: err}
	}
	s.Keys.forget()
	s.enabled.Store(b.Enabled)
	if err := s.reloadApps(ctx); err != nil {
		return err
	}
	return s.reloadTrust(ctx)
}

// summaryJSON is what the audit log keeps of a backup: the applications and
// key names, not the sealed keys, CRLs or certificates.
func summaryJSON(data []byte) json.RawMessage {
	var b backup
	if json.Unmarshal(data, &b) != nil {
		return nil
	}
	apps := make([]string, 0, len(b.Apps))
	for _, a := range b.Apps {
		apps = append(apps, a.Name)
	}
	keys := make([]string, 0, len(b.Keys))
	for _, k := range b.Keys {
		keys = append(keys, k.Name)
	}
	chains := map[string]bool{}
	for _, t := range b.Trust {
		chains[t.Chain] = true
	}
	return jsonOf(map[string]any{"enabled": b.Enabled, "apps": apps, "keys": keys, "trust_chains": len(chains), "certs": len(b.Certs)})
}
