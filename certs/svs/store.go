package svs

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
)

// StoredCert is a certificate in the certificate store.
type StoredCert struct {
	Serial     string    `json:"serial"` // lower-case hex
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	SubjectID  string    `json:"subject_id"` // the staff id when the hospital CA issued it
	CommonName string    `json:"common_name"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	CertPEM    string    `json:"cert,omitempty"`
	ImportedBy string    `json:"imported_by"`
	ImportedAt time.Time `json:"imported_at"`
}

// ImportCert adds a certificate (PEM or DER) to the store. The certificate
// must parse and must not be a CA certificate (those belong to trust chains);
// importing the same certificate again returns the stored row. A different
// certificate with the serial of a stored one is refused. When the hospital CA
// issued it, the staff (subject) id it recorded is kept for searching.
func (s *Server) ImportCert(ctx context.Context, pemBytes []byte) (StoredCert, error) {
	if len(bytes.TrimSpace(pemBytes)) == 0 {
		return StoredCert{}, ihos.Invalid(map[string]string{"cert": "请提供证书"})
	}
	c, err := certs.ParseCertificate(pemBytes)
	if err != nil {
		return StoredCert{}, ihos.Invalid(map[string]string{"cert": ihos.ErrorMessage(err)})
	}
	if c.BasicConstraintsValid && c.IsCA {
		return StoredCert{}, ihos.Invalid(map[string]string{"cert": "这是 CA 证书，请在信任链中导入"})
	}
	if c.SerialNumber == nil || c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 160 {
		return StoredCert{}, ihos.Invalid(map[string]string{"cert": "证书序列号无效"})
	}
	sc := StoredCert{Serial: serialText(c), Subject: ihos.Truncate(c.Subject.String(), 500), Issuer: ihos.Truncate(c.Issuer.String(), 500),
		CommonName: ihos.Truncate(c.Subject.CommonName, 200), NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), CertPEM: certPEM(c),
		ImportedAt: s.now().UTC()}
	if a, ok := ihos.ActorFrom(ctx); ok {
		sc.ImportedBy = ihos.Truncate(firstNonEmpty(a.Username, a.UserID), 64)
	}
	if bytes.Equal(c.RawIssuer, s.CA.Certificate().RawSubject) && c.CheckSignatureFrom(s.CA.Certificate()) == nil {
		if rec, err := s.CA.Lookup(ctx, c.SerialNumber); err == nil {
			sc.SubjectID = ihos.Truncate(rec.SubjectID, 64)
		}
	}
	var existing StoredCert
	found := false
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, certSelect+` WHERE serial = ?`, sc.Serial)
		if err != nil {
			return err
		}
		list, err := scanCerts(rows, true)
		if err != nil {
			return err
		}
		if len(list) > 0 {
			existing, found = list[0], true
			if old, err := certs.ParseCertificate([]byte(existing.CertPEM)); err == nil && bytes.Equal(old.Raw, c.Raw) {
				return nil
			}
			return ihos.Errorf(ihos.EConflict, "证书库中已有序列号为 %s 的另一张证书（%s）", sc.Serial, existing.Subject)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO svs_certs (serial, subject, issuer, subject_id, common_name, not_before, not_after, cert_pem, imported_by, imported_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, sc.Serial, sc.Subject, sc.Issuer, sc.SubjectID, sc.CommonName,
			ihos.FormatTime(sc.NotBefore), ihos.FormatTime(sc.NotAfter), sc.CertPEM, sc.ImportedBy, ihos.FormatTime(sc.ImportedAt)); err != nil {
			return err
		}
		after := sc
		after.CertPEM = ""
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "create", Resource: "svs_certs", RecordID: sc.Serial,
			Summary: fmt.Sprintf("导入证书：%s（序列号 %s）", sc.CommonName, sc.Serial), After: jsonOf(after)})
	})
	if err != nil {
		return StoredCert{}, wrapInternal(err)
	}
	if found {
		return existing, nil
	}
	return sc, nil
}

const certSelect = `SELECT serial, subject, issuer, subject_id, common_name, not_before, not_after, cert_pem, imported_by, imported_at FROM svs_certs`

func scanCerts(rows *sql.Rows, withPEM bool) ([]StoredCert, error) {
	defer rows.Close()
	var out []StoredCert
	for rows.Next() {
		var c StoredCert
		var nb, na, at string
		if err := rows.Scan(&c.Serial, &c.Subject, &c.Issuer, &c.SubjectID, &c.CommonName, &nb, &na, &c.CertPEM, &c.ImportedBy, &at); err != nil {
			return nil, err
		}
		c.NotBefore, _ = ihos.ParseTime(nb)
		c.NotAfter, _ = ihos.ParseTime(na)
		c.ImportedAt, _ = ihos.ParseTime(at)
		if !withPEM {
			c.CertPEM = ""
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SearchCerts finds stored certificates whose serial or subject (staff) id is
// q, or whose subject contains q; newest first, pageSize (default 20, at most
// 100) per page. An empty q lists all.
func (s *Server) SearchCerts(ctx context.Context, q string, page, pageSize int) ([]StoredCert, int, error) {
	q = strings.TrimSpace(q)
	if len(q) > 200 {
		return nil, 0, ihos.Invalid(map[string]string{"q": "搜索内容过长"})
	}
	if pageSize <= 0 {
		pageSize = 20
	}
	pageSize = min(pageSize, 100)
	page = max(page, 1)
	cond, args := "", []any{}
	if q != "" {
		serial := strings.TrimLeft(strings.ToLower(strings.ReplaceAll(strings.ReplaceAll(q, ":", ""), " ", "")), "0")
		like := sqldb.Contains(q)
		cond = ` WHERE serial = ? OR subject_id = ? OR subject LIKE ?` + sqldb.Escape + ` OR common_name LIKE ?` + sqldb.Escape
		args = append(args, serial, q, like, like)
	}
	var total int
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM svs_certs`+cond, args...).Scan(&total); err != nil {
		return nil, 0, ihos.Internal(err)
	}
	rows, err := s.DB.QueryContext(ctx, certSelect+cond+` ORDER BY imported_at DESC, serial LIMIT ? OFFSET ?`, append(args, pageSize, (page-1)*pageSize)...)
	if err != nil {
		return nil, 0, ihos.Internal(err)
	}
	list, err := scanCerts(rows, false)
	if err != nil {
		return nil, 0, ihos.Internal(err)
	}
	return list, total, nil
}

// StoredCertificate returns the stored certificate with the given serial (hex,
// colons and case ignored).
func (s *Server) StoredCertificate(ctx context.Context, serial string) (StoredCert, error) {
	serial = strings.TrimLeft(strings.ToLower(strings.ReplaceAll(strings.TrimSpace(serial), ":", "")), "0")
	if serial == "" || len(serial) > 64 {
		return StoredCert{}, ihos.Errorf(ihos.ENotFound, "证书不存在")
	}
	rows, err := s.DB.QueryContext(ctx, certSelect+` WHERE serial = ?`, serial)
	if err != nil {
		return StoredCert{}, ihos.Internal(err)
	}
	list, err := scanCerts(rows, true)
	if err != nil {
		return StoredCert{}, ihos.Internal(err)
	}
	if len(list) == 0 {
		return StoredCert{}, ihos.Errorf(ihos.ENotFound, "证书库中没有序列号为 %s 的证书", serial)
	}
	return list[0], nil
}

// storedBySerial is StoredCertificate parsed, for verify requests that name
// the signer's certificate by serial (GM/T 0029 verify type 2).
func (s *Server) storedBySerial(ctx context.Context, serial string) (*smx509.Certificate, error) {
	sc, err := s.StoredCertificate(ctx, serial)
	if err != nil {
		return nil, err
	}
	c, err := certs.ParseCertificate([]byte(sc.CertPEM))
	if err != nil {
		return nil, errors.New("svs: a stored certificate does not parse")
	}
	return c, nil
}
