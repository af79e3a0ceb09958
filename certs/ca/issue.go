package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
)

// Certificate kinds.
const (
	KindStaff  = "staff"  // a person who signs: digitalSignature|contentCommitment
	KindDevice = "device" // a kiosk, printer host or appliance: TLS client and server
	KindServer = "server" // a TLS server
	KindTSA    = "tsa"    // the time-stamping authority: EKU timeStamping (critical)
	KindOCSP   = "ocsp"   // a delegated OCSP responder: EKU OCSPSigning
	kindRoot   = "root"
)

// Certificate statuses, as OCSP names them.
const (
	StatusGood    = "good"
	StatusRevoked = "revoked"
	StatusUnknown = "unknown"
)

// RFC 5280 CRLReason codes.
const (
	ReasonUnspecified          = 0
	ReasonKeyCompromise        = 1
	ReasonCACompromise         = 2
	ReasonAffiliationChanged   = 3
	ReasonSuperseded           = 4
	ReasonCessationOfOperation = 5
	ReasonCertificateHold      = 6
	ReasonRemoveFromCRL        = 8
	ReasonPrivilegeWithdrawn   = 9
	ReasonAACompromise         = 10
)

var reasonNames = map[int]string{
	ReasonUnspecified:          "未说明",
	ReasonKeyCompromise:        "密钥泄露",
	ReasonCACompromise:         "CA 密钥泄露",
	ReasonAffiliationChanged:   "隶属关系变更",
	ReasonSuperseded:           "证书已被替换",
	ReasonCessationOfOperation: "停止使用",
	ReasonCertificateHold:      "暂停使用",
	ReasonRemoveFromCRL:        "从 CRL 中移除",
	ReasonPrivilegeWithdrawn:   "权限已撤销",
	ReasonAACompromise:         "属性机构密钥泄露",
}

// ReasonText returns the Chinese name of an RFC 5280 revocation reason.
func ReasonText(reason int) string {
	if s, ok := reasonNames[reason]; ok {
		return s
	}
	return fmt.Sprintf("代码 %d", reason)
}

var (
	oidEKUTimeStamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
	oidExtEKU          = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidOCSPNoCheck     = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}
)

// IssueRequest asks for a certificate.
type IssueRequest struct {
	Kind               string // KindStaff, KindDevice, KindServer, KindTSA or KindOCSP
	CommonName         string
	Organization       string // default: the CA's name
	OrganizationalUnit string
	Email              string   // put in the subject alternative name (rfc822Name)
	DNSNames           []string // for device and server certificates
	IPs                []net.IP
	// PublicKey is the subject's key: SM2 (an *ecdsa.PublicKey on the SM2
	// curve), ECDSA P-256/384/521, or RSA of 2048 to 8192 bits.
	PublicKey crypto.PublicKey
	// ValidFor defaults to 2 years (staff, server, ocsp) or 5 years (device,
	// tsa). The certificate never outlives the CA.
	ValidFor time.Duration
	// SubjectID identifies the subject in the application (the staff id, the
	// device id); it is stored for lookups and not put in the certificate.
	SubjectID string

	// notBefore overrides the start of validity; only tests use it (to make
	// expired certificates): a CA must not backdate what it signs.
	notBefore time.Time
}

const year = 365 * 24 * time.Hour

// Issue signs a certificate for r with a random 128-bit serial, records it in
// ca_certs and audits it, in one transaction.
func (c *CA) Issue(ctx context.Context, r IssueRequest) (*smx509.Certificate, error) {
	tmpl, err := c.template(r)
	if err != nil {
		return nil, err
	}
	now := c.now()
	for attempt := 0; ; attempt++ {
		if tmpl.SerialNumber, err = randomSerial(); err != nil {
			return nil, err
		}
		der, err := smx509.CreateCertificate(rand.Reader, tmpl, c.cert, r.PublicKey, c.key)
		if err != nil {
			return nil, ihos.Internal(fmt.Errorf("ca: sign certificate: %w", err))
		}
		cert, err := smx509.ParseCertificate(der)
		if err != nil {
			return nil, ihos.Internal(fmt.Errorf("ca: parse the issued certificate: %w", err))
		}
		err = c.db.Tx(ctx, func(tx *sql.Tx) error {
			if err := c.insertCert(ctx, tx, r.Kind, r.SubjectID, cert, now); err != nil {
				return err
			}
			return audit.Append(ctx, c.db, tx, audit.Entry{Action: "issue", Resource: "ca_certs", RecordID: serialHex(cert.SerialNumber),
				Summary: fmt.Sprintf("签发%s证书：%s", kindText(r.Kind), cert.Subject.CommonName), After: certJSON(r.Kind, r.SubjectID, cert)})
		})
		if err == nil {
			return cert, nil
		}
		if !sqldb.IsUniqueViolation(err) || attempt >= 2 { // a serial collision is retried with a new serial
			return nil, ihos.Internal(fmt.Errorf("ca: record certificate: %w", err))
		}
	}
}

func kindText(kind string) string {
	switch kind {
	case KindStaff:
		return "人员签名"
	case KindDevice:
		return "设备"
	case KindServer:
		return "服务器"
	case KindTSA:
		return "时间戳"
	case KindOCSP:
		return "OCSP 响应"
	case kindRoot:
		return "根"
	}
	return kind
}

// template validates r and builds the certificate template for it.
func (c *CA) template(r IssueRequest) (*smx509.Certificate, error) {
	fields := map[string]string{}
	r.CommonName = strings.TrimSpace(r.CommonName)
	switch n := utf8.RuneCountInString(r.CommonName); {
	case n == 0:
		fields["common_name"] = "请填写证书主体名称"
	case n > 64:
		fields["common_name"] = "证书主体名称最长 64 个字符"
	}
	if utf8.RuneCountInString(r.Organization) > 64 || utf8.RuneCountInString(r.OrganizationalUnit) > 64 {
		fields["organization"] = "单位和部门名称最长 64 个字符"
	}
	if len(r.SubjectID) > 64 {
		fields["subject_id"] = "主体编号最长 64 个字符"
	}
	if r.Email != "" && (!strings.Contains(r.Email, "@") || len(r.Email) > 128 || strings.ContainsAny(r.Email, " \t\r\n") || !isASCII(r.Email)) {
		fields["email"] = "电子邮箱格式不正确"
	}
	for _, d := range r.DNSNames {
		if !validDNSName(d) {
			fields["dns_names"] = fmt.Sprintf("域名 %q 格式不正确", d)
			break
		}
	}
	for _, ip := range r.IPs {
		if ip == nil || (ip.To4() == nil && len(ip) != net.IPv6len) {
			fields["ips"] = "IP 地址格式不正确"
			break
		}
	}
	if r.ValidFor < 0 {
		fields["valid_for"] = "有效期不能为负"
	}
	if msg := checkPublicKey(r.PublicKey); msg != "" {
		fields["public_key"] = msg
	}
	_, isRSA := r.PublicKey.(*rsa.PublicKey)

	t := &smx509.Certificate{BasicConstraintsValid: true}
	validFor := 2 * year
	switch r.Kind {
	case KindStaff:
		t.KeyUsage = smx509.KeyUsageDigitalSignature | smx509.KeyUsageContentCommitment
	case KindDevice:
		validFor = 5 * year
		t.KeyUsage = smx509.KeyUsageDigitalSignature
		t.ExtKeyUsage = []smx509.ExtKeyUsage{smx509.ExtKeyUsageClientAuth, smx509.ExtKeyUsageServerAuth}
	case KindServer:
		t.KeyUsage = smx509.KeyUsageDigitalSignature
		t.ExtKeyUsage = []smx509.ExtKeyUsage{smx509.ExtKeyUsageServerAuth}
		if len(r.DNSNames) == 0 && len(r.IPs) == 0 {
			fields["dns_names"] = "服务器证书至少需要一个域名或 IP 地址"
		}
	case KindTSA:
		validFor = 5 * year
		t.KeyUsage = smx509.KeyUsageDigitalSignature | smx509.KeyUsageContentCommitment
		// RFC 3161 §2.3: the extended key usage must be critical and name only timeStamping.
		v, _ := asn1.Marshal([]asn1.ObjectIdentifier{oidEKUTimeStamping})
		t.ExtraExtensions = append(t.ExtraExtensions, pkix.Extension{Id: oidExtEKU, Critical: true, Value: v})
	case KindOCSP:
		t.KeyUsage = smx509.KeyUsageDigitalSignature
		t.ExtKeyUsage = []smx509.ExtKeyUsage{smx509.ExtKeyUsageOCSPSigning}
		// RFC 6960 §4.2.2.2.1: relying parties need not check the responder's own status.
		t.ExtraExtensions = append(t.ExtraExtensions, pkix.Extension{Id: oidOCSPNoCheck, Value: asn1.NullBytes})
	default:
		fields["kind"] = "证书类型无效（应为 staff、device、server、tsa 或 ocsp）"
	}
	if isRSA && (r.Kind == KindDevice || r.Kind == KindServer) {
		t.KeyUsage |= smx509.KeyUsageKeyEncipherment // RSA key transport in TLS 1.2
	}
	if len(fields) > 0 {
		return nil, ihos.Invalid(fields)
	}
	if r.ValidFor > 0 {
		validFor = r.ValidFor
	}

	org := strings.TrimSpace(r.Organization)
	if org == "" {
		org = c.name
	}
	t.Subject = pkix.Name{CommonName: r.CommonName, Organization: []string{org}, Country: []string{"CN"}}
	if ou := strings.TrimSpace(r.OrganizationalUnit); ou != "" {
		t.Subject.OrganizationalUnit = []string{ou}
	}
	if r.Email != "" {
		t.EmailAddresses = []string{r.Email}
	}
	t.DNSNames = r.DNSNames
	t.IPAddresses = r.IPs

	now := c.now()
	t.NotBefore = now.Add(-backdate)
	if !r.notBefore.IsZero() {
		t.NotBefore = r.notBefore
	}
	t.NotBefore = t.NotBefore.UTC().Truncate(time.Second)
	t.NotAfter = t.NotBefore.Add(validFor)
	if t.NotAfter.After(c.cert.NotAfter) {
		t.NotAfter = c.cert.NotAfter
	}
	if !t.NotAfter.After(t.NotBefore) {
		return nil, ihos.Errorf(ihos.EInvalid, "证书有效期无效：CA 证书即将或已经过期")
	}

	spki, err := smx509.MarshalPKIXPublicKey(r.PublicKey)
	if err != nil {
		return nil, ihos.Invalid(map[string]string{"public_key": "无法编码公钥"})
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, ihos.Internal(err)
	}
	ski := sha1.Sum(info.PublicKey.Bytes) // RFC 5280 §4.2.1.2 method 1
	t.SubjectKeyId = ski[:]

	if c.baseURL != "" {
		t.CRLDistributionPoints = []string{c.baseURL + "/ca/crl"}
		t.OCSPServer = []string{c.baseURL + "/ca/ocsp"}
		t.IssuingCertificateURL = []string{c.baseURL + "/ca/cert"}
	}
	return t, nil
}

func checkPublicKey(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.X == nil || k.Y == nil {
			return "公钥无效"
		}
		switch k.Curve {
		case sm2.P256(), elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return "不支持的椭圆曲线（支持 SM2、P-256、P-384、P-521）"
		}
		if !k.Curve.IsOnCurve(k.X, k.Y) {
			return "公钥不在曲线上"
		}
		return ""
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return "公钥无效"
		}
		if b := k.N.BitLen(); b < 2048 || b > 8192 {
			return fmt.Sprintf("RSA 密钥长度 %d 位不被接受（需要 2048–8192 位）", b)
		}
		return ""
	case nil:
		return "缺少公钥"
	}
	return fmt.Sprintf("不支持的公钥类型 %T（支持 SM2、ECDSA、RSA）", pub)
}

func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		if label == "*" && i == 0 {
			continue
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Revoke marks the certificate with serial revoked with an RFC 5280 reason code
// and audits it. Revoking a revoked certificate is a conflict; the CA's own
// certificate cannot be revoked here.
func (c *CA) Revoke(ctx context.Context, serial *big.Int, reason int) error {
	if serial == nil || serial.Sign() <= 0 {
		return ihos.Errorf(ihos.EInvalid, "证书序列号无效")
	}
	if _, ok := reasonNames[reason]; !ok || reason == ReasonRemoveFromCRL {
		return ihos.Errorf(ihos.EInvalid, "吊销原因代码 %d 无效（RFC 5280：0–6、9、10）", reason)
	}
	key := serialHex(serial)
	now := c.now().UTC().Truncate(time.Second)
	err := c.db.Tx(ctx, func(tx *sql.Tx) error {
		var kind, status, cn string
		err := c.db.TxQueryRow(ctx, tx, `SELECT kind, status, subject_cn FROM ca_certs WHERE serial = ? AND ca_id = ?`+c.db.ForUpdate(), key, c.id).
			Scan(&kind, &status, &cn)
		if errors.Is(err, sql.ErrNoRows) {
			return ihos.Errorf(ihos.ENotFound, "证书不存在：序列号 %s", key)
		}
		if err != nil {
			return fmt.Errorf("ca: read certificate: %w", err)
		}
		if kind == kindRoot {
			return ihos.Errorf(ihos.EInvalid, "不能吊销 CA 根证书")
		}
		if status == StatusRevoked {
			return ihos.Errorf(ihos.EConflict, "证书已被吊销：序列号 %s", key)
		}
		res, err := c.db.TxExec(ctx, tx, `UPDATE ca_certs SET status = 'revoked', revoked_at = ?, reason = ? WHERE serial = ? AND status = 'good'`,
			ihos.FormatTime(now), reason, key)
		if err != nil {
			return fmt.Errorf("ca: revoke: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ihos.Errorf(ihos.EConflict, "证书已被吊销：序列号 %s", key)
		}
		if err := c.bumpState(ctx, tx, "revocations"); err != nil {
			return err
		}
		before, _ := json.Marshal(map[string]any{"status": StatusGood})
		after, _ := json.Marshal(map[string]any{"status": StatusRevoked, "revoked_at": ihos.FormatTime(now), "reason": reason})
		return audit.Append(ctx, c.db, tx, audit.Entry{Action: "revoke", Resource: "ca_certs", RecordID: key,
			Summary: fmt.Sprintf("吊销证书：%s（原因：%s）", cn, ReasonText(reason)), Before: before, After: after})
	})
	if err != nil {
		var e *ihos.Error
		if errors.As(err, &e) {
			return err
		}
		return ihos.Internal(err)
	}
	c.crlMu.Lock()
	c.crl = nil
	c.crlMu.Unlock()
	return nil
}

// bumpState increments the counter name (per CA) in ca_state and returns its new value.
func (c *CA) bumpState(ctx context.Context, tx *sql.Tx, name string) error {
	_, err := c.nextState(ctx, tx, name)
	return err
}

func (c *CA) nextState(ctx context.Context, tx *sql.Tx, name string) (*big.Int, error) {
	key := name + ":" + c.id
	var v string
	err := c.db.TxQueryRow(ctx, tx, `SELECT value FROM ca_state WHERE name = ?`+c.db.ForUpdate(), key).Scan(&v)
	n := new(big.Int)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		n.SetInt64(1)
		if _, err := c.db.TxExec(ctx, tx, `INSERT INTO ca_state (name, value) VALUES (?, ?)`, key, n.String()); err != nil {
			return nil, fmt.Errorf("ca: state %s: %w", name, err)
		}
		return n, nil
	case err != nil:
		return nil, fmt.Errorf("ca: state %s: %w", name, err)
	}
	if _, ok := n.SetString(v, 10); !ok {
		return nil, fmt.Errorf("ca: state %s holds %q, not a number", name, v)
	}
	n.Add(n, big.NewInt(1))
	if _, err := c.db.TxExec(ctx, tx, `UPDATE ca_state SET value = ? WHERE name = ?`, n.String(), key); err != nil {
		return nil, fmt.Errorf("ca: state %s: %w", name, err)
	}
	return n, nil
}

func (c *CA) readState(ctx context.Context, name string) (string, error) {
	var v string
	err := c.db.QueryRowContext(ctx, `SELECT value FROM ca_state WHERE name = ?`, name+":"+c.id).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "0", nil
	}
	return v, err
}

// Record is what the CA knows about one serial number.
type Record struct {
	Serial    *big.Int
	Status    string // StatusGood, StatusRevoked or StatusUnknown (never issued by this CA)
	Kind      string
	SubjectCN string
	SubjectID string
	NotBefore time.Time
	NotAfter  time.Time
	RevokedAt time.Time // zero unless revoked
	Reason    int       // RFC 5280 reason code when revoked
	CreatedAt time.Time
	Cert      *smx509.Certificate // nil when unknown
}

// Lookup returns the record of serial; a serial this CA never issued has status
// StatusUnknown and no error.
func (c *CA) Lookup(ctx context.Context, serial *big.Int) (Record, error) {
	rec := Record{Serial: serial, Status: StatusUnknown}
	if serial == nil || serial.Sign() <= 0 {
		return rec, nil
	}
	var notBefore, notAfter, created, certPEM string
	var revokedAt sql.NullString
	err := c.db.QueryRowContext(ctx, `SELECT kind, subject_cn, subject_id, not_before, not_after, status, revoked_at, reason, cert_pem, created_at
		FROM ca_certs WHERE serial = ? AND ca_id = ?`, serialHex(serial), c.id).
		Scan(&rec.Kind, &rec.SubjectCN, &rec.SubjectID, &notBefore, &notAfter, &rec.Status, &revokedAt, &rec.Reason, &certPEM, &created)
	if errors.Is(err, sql.ErrNoRows) {
		rec.Status = StatusUnknown
		return rec, nil
	}
	if err != nil {
		return rec, ihos.Internal(fmt.Errorf("ca: lookup: %w", err))
	}
	rec.NotBefore, _ = ihos.ParseTime(notBefore)
	rec.NotAfter, _ = ihos.ParseTime(notAfter)
	rec.CreatedAt, _ = ihos.ParseTime(created)
	if revokedAt.Valid {
		rec.RevokedAt, _ = ihos.ParseTime(revokedAt.String)
	}
	if blk, _ := pem.Decode([]byte(certPEM)); blk != nil {
		rec.Cert, _ = smx509.ParseCertificate(blk.Bytes)
	}
	return rec, nil
}

// status is Lookup without the certificate, for the OCSP responder's hot path.
func (c *CA) status(ctx context.Context, serial *big.Int) (status string, revokedAt time.Time, reason int, err error) {
	var st string
	var at sql.NullString
	err = c.db.QueryRowContext(ctx, `SELECT status, revoked_at, reason FROM ca_certs WHERE serial = ? AND ca_id = ?`, serialHex(serial), c.id).
		Scan(&st, &at, &reason)
	if errors.Is(err, sql.ErrNoRows) {
		return StatusUnknown, time.Time{}, 0, nil
	}
	if err != nil {
		return "", time.Time{}, 0, err
	}
	if at.Valid {
		revokedAt, _ = ihos.ParseTime(at.String)
	}
	return st, revokedAt, reason, nil
}
