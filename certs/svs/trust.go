package svs

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs"
	"ihos/certs/ca"
	"ihos/internal/audit"
)

// Trust certificate kinds.
const (
	TrustRoot         = "root"
	TrustIntermediate = "intermediate"
)

const maxCRLSize = 32 << 20

var chainNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// TrustCert is one certificate of an imported trust chain.
type TrustCert struct {
	ID            string              `json:"id"`
	Chain         string              `json:"chain"`
	Kind          string              `json:"kind"` // root, intermediate
	Subject       string              `json:"subject"`
	Fingerprint   string              `json:"fingerprint"` // SM3 hex of the DER
	CertPEM       string              `json:"cert_pem"`
	CRLURL        string              `json:"crl_url"`
	CRLThisUpdate time.Time           `json:"crl_this_update,omitzero"`
	CRLNextUpdate time.Time           `json:"crl_next_update,omitzero"`
	CRLFetchedAt  time.Time           `json:"crl_fetched_at,omitzero"`
	CRLError      string              `json:"crl_error,omitempty"`
	CreatedAt     time.Time           `json:"created_at"`
	Cert          *smx509.Certificate `json:"-"`
	crl           []byte
}

// trustChain is an imported chain, ready for verification.
type trustChain struct {
	roots, inter []*smx509.Certificate
	crls         [][]byte
}

// trustSet is the immutable snapshot of the imported chains.
type trustSet struct {
	chains map[string]*trustChain
}

// knows reports whether one of the chain's certificates could have issued c.
func (t *trustChain) knows(c *smx509.Certificate) bool {
	for _, l := range [][]*smx509.Certificate{t.roots, t.inter} {
		for _, x := range l {
			if bytes.Equal(x.RawSubject, c.RawIssuer) {
				return true
			}
		}
	}
	return false
}

const trustSelect = `SELECT id, chain, kind, subject, fingerprint, cert_pem, crl_url, crl, crl_this_update, crl_next_update, crl_fetched_at, crl_error, created_at FROM svs_trust`

func scanTrust(rows *sql.Rows) ([]TrustCert, error) {
	defer rows.Close()
	var out []TrustCert
	for rows.Next() {
		var t TrustCert
		var crl, this, next, fetched sql.NullString
		var created string
		if err := rows.Scan(&t.ID, &t.Chain, &t.Kind, &t.Subject, &t.Fingerprint, &t.CertPEM, &t.CRLURL, &crl, &this, &next, &fetched, &t.CRLError, &created); err != nil {
			return nil, err
		}
		t.Cert, _ = certs.ParseCertificate([]byte(t.CertPEM))
		if crl.Valid && crl.String != "" {
			t.crl, _ = base64.StdEncoding.DecodeString(crl.String)
		}
		t.CRLThisUpdate = parseNullTime(this)
		t.CRLNextUpdate = parseNullTime(next)
		t.CRLFetchedAt = parseNullTime(fetched)
		t.CreatedAt, _ = ihos.ParseTime(created)
		out = append(out, t)
	}
	return out, rows.Err()
}

func parseNullTime(s sql.NullString) time.Time {
	if !s.Valid {
		return time.Time{}
	}
	t, _ := ihos.ParseTime(s.String)
	return t
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ihos.FormatTime(t)
}

// ListTrust returns the certificates of the imported trust chains, by chain.
// The "hospital" chain (the hospital CA) is not in the list: it always exists.
func (s *Server) ListTrust(ctx context.Context) ([]TrustCert, error) {
	rows, err := s.DB.QueryContext(ctx, trustSelect+` ORDER BY chain, kind DESC, created_at`)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	list, err := scanTrust(rows)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	return list, nil
}

// reloadTrust rebuilds the in-memory trust chains from the table.
func (s *Server) reloadTrust(ctx context.Context) error {
	s.reload.Lock()
	defer s.reload.Unlock()
	list, err := s.ListTrust(ctx)
	if err != nil {
		return err
	}
	set := &trustSet{chains: map[string]*trustChain{}}
	for _, t := range list {
		if t.Cert == nil {
			continue
		}
		ch := set.chains[t.Chain]
		if ch == nil {
			ch = &trustChain{}
			set.chains[t.Chain] = ch
		}
		if t.Kind == TrustRoot {
			ch.roots = append(ch.roots, t.Cert)
		} else {
			ch.inter = append(ch.inter, t.Cert)
		}
		if len(t.crl) > 0 {
			ch.crls = append(ch.crls, t.crl)
		}
	}
	s.trust.Store(set)
	return nil
}

// parseBundle returns every certificate in b: PEM with one or more
// CERTIFICATE blocks, or one DER certificate.
func parseBundle(b []byte) ([]*smx509.Certificate, error) {
	var out []*smx509.Certificate
	rest := bytes.TrimSpace(b)
	if !bytes.HasPrefix(rest, []byte("-----BEGIN")) {
		c, err := certs.ParseCertificate(rest)
		if err != nil {
			return nil, err
		}
		return []*smx509.Certificate{c}, nil
	}
	for len(rest) > 0 {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := smx509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, ihos.Errorf(ihos.EInvalid, "第 %d 个证书无法解析", len(out)+1)
		}
		out = append(out, c)
		if len(out) > 20 {
			return nil, ihos.Errorf(ihos.EInvalid, "一次最多导入 20 个证书")
		}
	}
	if len(out) == 0 {
		return nil, ihos.Errorf(ihos.EInvalid, "没有找到 PEM 格式的证书（CERTIFICATE）")
	}
	return out, nil
}

func fingerprint(c *smx509.Certificate) string {
	h := certs.SM3Sum(c.Raw)
	return hex.EncodeToString(h[:])
}

func certPEM(c *smx509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func selfSigned(c *smx509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// ImportTrust adds CA certificates (PEM, one or more; or one DER) to the trust
// chain named chain, creating it: self-signed certificates become its roots,
// the others intermediates. crlURL, optional, is where the CRL of the CA that
// issues end-entity certificates (the last CA of the bundle: the one that
// issued none of the others) is published; it is fetched by RefreshCRLs.
// Certificates already in the chain are kept (their CRL URL is updated). To
// give each CA of a multi-level chain its own CRL, import them one call each,
// root first, each with its CRL URL: level 2 checks every certificate of the
// chain but the root.
func (s *Server) ImportTrust(ctx context.Context, chain string, pemBytes []byte, crlURL string) ([]TrustCert, error) {
	chain = strings.TrimSpace(chain)
	fields := map[string]string{}
	switch {
	case chain == ChainHospital:
		fields["chain"] = "hospital 是医院 CA 的信任链，不能导入"
	case !chainNameRE.MatchString(chain):
		fields["chain"] = "信任链名称只能包含字母、数字、点、下划线和连字符，最长 64 个字符"
	}
	crlURL = strings.TrimSpace(crlURL)
	if crlURL != "" {
		if u, err := url.Parse(crlURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(crlURL) > 500 {
			fields["crl_url"] = "CRL 地址应为 http 或 https 网址"
		}
	}
	list, err := parseBundle(pemBytes)
	if err != nil {
		fields["cert"] = ihos.ErrorMessage(err)
	}
	for i, c := range list {
		if !c.BasicConstraintsValid || !c.IsCA {
			fields["cert"] = fmt.Sprintf("第 %d 个证书（%s）不是 CA 证书，不能作为信任链", i+1, c.Subject.CommonName)
		}
	}
	if len(fields) > 0 {
		return nil, ihos.Invalid(fields)
	}
	// The CA that issues end-entity certificates: the one that issued no
	// other certificate of the bundle.
	leafCA := list[len(list)-1]
	for _, c := range list {
		issuesOther := false
		for _, o := range list {
			if o != c && bytes.Equal(o.RawIssuer, c.RawSubject) && !selfSigned(o) {
				issuesOther = true
			}
		}
		if !issuesOther {
			leafCA = c
			break
		}
	}
	now := ihos.FormatTime(s.now())
	var out []TrustCert
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		for _, c := range list {
			t := TrustCert{ID: ihos.NewID(), Chain: chain, Kind: TrustIntermediate, Subject: ihos.Truncate(c.Subject.String(), 500),
				Fingerprint: fingerprint(c), CertPEM: certPEM(c), Cert: c}
			if selfSigned(c) {
				t.Kind = TrustRoot
			}
			if c == leafCA {
				t.CRLURL = crlURL
			}
			var id string
			err := tx.QueryRowContext(ctx, `SELECT id FROM svs_trust WHERE chain = ? AND fingerprint = ?`, chain, t.Fingerprint).Scan(&id)
			switch {
			case err == nil:
				t.ID = id
				if t.CRLURL != "" {
					if _, err := tx.ExecContext(ctx, `UPDATE svs_trust SET crl_url = ? WHERE id = ?`, t.CRLURL, id); err != nil {
						return err
					}
				}
			case errors.Is(err, sql.ErrNoRows):
				if _, err := tx.ExecContext(ctx, `INSERT INTO svs_trust (id, chain, kind, subject, fingerprint, cert_pem, crl_url, crl_error, created_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, '', ?)`, t.ID, t.Chain, t.Kind, t.Subject, t.Fingerprint, t.CertPEM, t.CRLURL, now); err != nil {
					return err
				}
			default:
				return err
			}
			out = append(out, t)
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "create", Resource: "svs_trust", RecordID: chain,
			Summary: fmt.Sprintf("导入信任链 %s 的 %d 个 CA 证书", chain, len(list)), After: jsonOf(out)})
	})
	if err != nil {
		return nil, wrapInternal(err)
	}
	if err := s.reloadTrust(ctx); err != nil {
		return nil, err
	}
	if crlURL != "" {
		s.kickRefresh()
	}
	return out, nil
}

// RemoveTrust deletes an imported trust chain. A chain an application still
// uses cannot be removed.
func (s *Server) RemoveTrust(ctx context.Context, chain string) error {
	if chain == ChainHospital {
		return ihos.Errorf(ihos.EInvalid, "医院 CA 的信任链不能删除")
	}
	apps, err := s.ListApps(ctx)
	if err != nil {
		return err
	}
	for _, a := range apps {
		for _, c := range a.TrustChains {
			if c == chain {
				return ihos.Errorf(ihos.EConflict, "信任链 %s 正被应用 %s 使用，请先修改该应用的策略", chain, a.Name)
			}
		}
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM svs_trust WHERE chain = ?`, chain)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ihos.Errorf(ihos.ENotFound, "信任链 %s 不存在", chain)
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "delete", Resource: "svs_trust", RecordID: chain, Summary: "删除信任链 " + chain})
	})
	if err != nil {
		return wrapInternal(err)
	}
	return s.reloadTrust(ctx)
}

// kickRefresh asks the CRL schedule for a refresh now (after an import).
func (s *Server) kickRefresh() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// RefreshCRLs fetches the CRL of every imported trust certificate that has a
// CRL URL, checks that the certificate issued and signed it and that it is not
// older than the one held, and keeps it. A failed fetch keeps the last good CRL
// and records the failure on the certificate (ListTrust shows it). The
// verifications that follow use the new CRLs at once.
func (s *Server) RefreshCRLs(ctx context.Context) error {
	rows, err := s.DB.QueryContext(ctx, trustSelect+` WHERE crl_url <> ''`)
	if err != nil {
		return ihos.Internal(err)
	}
	list, err := scanTrust(rows)
	if err != nil {
		return ihos.Internal(err)
	}
	var errs []error
	for _, t := range list {
		der, rl, ferr := s.fetchCRL(ctx, t)
		now := s.now()
		err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
			if ferr != nil {
				_, err := tx.ExecContext(ctx, `UPDATE svs_trust SET crl_error = ? WHERE id = ?`,
					ihos.Truncate(fmt.Sprintf("%s：%s", now.In(ihos.Shanghai).Format("2006-01-02 15:04:05"), ihos.ErrorMessage(ferr)), 500), t.ID)
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE svs_trust SET crl = ?, crl_this_update = ?, crl_next_update = ?, crl_fetched_at = ?, crl_error = '' WHERE id = ?`,
				base64.StdEncoding.EncodeToString(der), nullTime(rl.ThisUpdate), nullTime(rl.NextUpdate), ihos.FormatTime(now), t.ID)
			return err
		})
		if ferr != nil {
			errs = append(errs, fmt.Errorf("svs: CRL of %s (%s): %w", t.Chain, t.CRLURL, ferr))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.reloadTrust(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (s *Server) fetchCRL(ctx context.Context, t TrustCert) ([]byte, *smx509.RevocationList, error) {
	if t.Cert == nil {
		return nil, nil, ihos.Errorf(ihos.EInvalid, "信任证书已损坏")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.CRLURL, nil)
	if err != nil {
		return nil, nil, ihos.Errorf(ihos.EInvalid, "CRL 地址无效")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, &ihos.Error{Code: ihos.EUnavailable, Message: "CRL 发布点无法访问", Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, ihos.Errorf(ihos.EUnavailable, "CRL 发布点返回 HTTP %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCRLSize+1))
	if err != nil {
		return nil, nil, &ihos.Error{Code: ihos.EUnavailable, Message: "CRL 下载中断", Err: err}
	}
	if len(b) > maxCRLSize {
		return nil, nil, ihos.Errorf(ihos.EInvalid, "CRL 过大（超过 32 MB）")
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	rl, err := smx509.ParseRevocationList(b)
	if err != nil {
		return nil, nil, &ihos.Error{Code: ihos.EInvalid, Message: "CRL 格式错误，无法解析", Err: err}
	}
	if !bytes.Equal(rl.RawIssuer, t.Cert.RawSubject) {
		return nil, nil, ihos.Errorf(ihos.EInvalid, "CRL 不是由该 CA 签发")
	}
	if err := rl.CheckSignatureFrom(t.Cert); err != nil {
		return nil, nil, &ihos.Error{Code: ihos.EInvalid, Message: "CRL 签名无效", Err: err}
	}
	if !t.CRLThisUpdate.IsZero() && rl.ThisUpdate.Before(t.CRLThisUpdate) {
		return nil, nil, ihos.Errorf(ihos.EInvalid, "下载的 CRL 比已有的更旧，已忽略")
	}
	return b, rl, nil
}

// revocationOptions tells what level 2 checks under a revocation policy.
func revocationOptions(policy string) (crl, ocsp bool) {
	switch policy {
	case RevocationCRL:
		return true, false
	case RevocationOCSP:
		return false, true
	case RevocationCRLOCSP:
		return true, true
	}
	return false, false
}

// verifyChain checks cert at level 1 or 2 against the application's trust
// chains; extra are certificates that came with it (from a SignedData). It
// returns the verdict and, when invalid, the reason in Chinese.
func (s *Server) verifyChain(ctx context.Context, app *App, cert *smx509.Certificate, extra []*smx509.Certificate, level int, at time.Time) (bool, string) {
	if level < 1 {
		return true, ""
	}
	wantCRL, wantOCSP := revocationOptions(app.Revocation)
	if level >= 2 && !wantCRL && !wantOCSP {
		level = 1 // the policy checks no revocation
	}
	set := s.trust.Load()
	reason, known := "", false
	for _, name := range app.TrustChains {
		o := ca.VerifyOptions{At: at, Level: ca.LevelChain, HTTPClient: s.client}
		if level >= 2 {
			o.Level = ca.LevelRevocation
			o.OCSP = wantOCSP
		}
		var knows bool
		if name == ChainHospital {
			root := s.CA.Certificate()
			o.Roots = []*smx509.Certificate{root}
			knows = bytes.Equal(root.RawSubject, cert.RawIssuer)
			if level >= 2 && wantCRL {
				der, err := s.CA.CRL(ctx)
				if err == nil {
					o.CRLs = [][]byte{der}
				}
			}
		} else {
			if set == nil || set.chains[name] == nil {
				continue
			}
			ch := set.chains[name]
			o.Roots, o.Intermediates = ch.roots, ch.inter
			knows = ch.knows(cert)
			if level >= 2 && wantCRL {
				o.CRLs = ch.crls
			}
		}
		o.Intermediates = append(append([]*smx509.Certificate(nil), o.Intermediates...), extra...)
		res := ca.Verify(ctx, cert, o)
		if res.Valid {
			return true, ""
		}
		// The reason of a chain that knows the issuer says more than "not
		// trusted" from the others.
		if reason == "" || (knows && !known) {
			reason, known = res.Reason, knows
		}
	}
	if reason == "" {
		reason = "证书签发者不受信任（应用未配置可用的信任链）"
	}
	return false, reason
}

// signingUsage checks that a certificate may be used to verify signatures.
func signingUsage(c *smx509.Certificate) string {
	if c.KeyUsage != 0 && c.KeyUsage&(smx509.KeyUsageDigitalSignature|smx509.KeyUsageContentCommitment) == 0 {
		return "证书的密钥用法不包含数字签名"
	}
	return ""
}
