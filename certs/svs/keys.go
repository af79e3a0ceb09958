package svs

import (
	"context"
	"crypto"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs"
	"ihos/certs/ca"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
)

// KeyStore holds the named signing keys of the service. Each private key is
// kept in svs_keys sealed with SM4-GCM under the appliance's 16-byte
// key-encryption key (bound to the key's name), and cached decrypted in
// memory after its first use. It is safe for concurrent use.
type KeyStore struct {
	db  *sqldb.DB
	ca  *ca.CA
	kek []byte

	create sync.Mutex // one EnsureKey at a time
	cache  sync.Map   // name → *Key
}

// Key is a signing key with its certificate.
type Key struct {
	Name      string
	Algorithm string
	Cert      *smx509.Certificate
	CertPEM   string
	Signer    crypto.Signer
	CreatedAt time.Time
}

// KeyInfo describes a key without its private half.
type KeyInfo struct {
	Name      string    `json:"name"`
	Algorithm string    `json:"algorithm"`
	Subject   string    `json:"subject"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	CreatedAt time.Time `json:"created_at"`
}

const gcmNonceLen = 12

var keyNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// NewKeyStore returns the key store on db; the CA issues the certificates of
// new keys, kek (16 bytes) seals the private keys.
func NewKeyStore(db *sqldb.DB, authority *ca.CA, kek []byte) (*KeyStore, error) {
	if db == nil || authority == nil {
		return nil, errors.New("svs: NewKeyStore needs a database and a CA")
	}
	if len(kek) != 16 {
		return nil, fmt.Errorf("svs: the key-encryption key must be 16 bytes (SM4), got %d", len(kek))
	}
	return &KeyStore{db: db, ca: authority, kek: append([]byte(nil), kek...)}, nil
}

func sealAAD(name string) []byte { return []byte("ihos certs/svs key v1\x00" + name) }

func (k *KeyStore) seal(name string, key crypto.Signer) (string, error) {
	p, err := certs.MarshalPrivateKeyPEM(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcmNonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return "", ihos.Internal(err)
	}
	ct, err := certs.SM4GCMSeal(k.kek, nonce, p, sealAAD(name))
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(append(nonce, ct...)), nil
}

func (k *KeyStore) unseal(name, sealed string) (crypto.Signer, error) {
	b, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(b) <= gcmNonceLen {
		return nil, ihos.Errorf(ihos.EInternal, "签名密钥 %s 的密文已损坏", name)
	}
	p, err := certs.SM4GCMOpen(k.kek, b[:gcmNonceLen], b[gcmNonceLen:], sealAAD(name))
	if err != nil {
		return nil, &ihos.Error{Code: ihos.EInternal, Message: fmt.Sprintf("签名密钥 %s 无法解密（密钥加密密钥不符或数据已损坏）", name), Err: err}
	}
	return certs.ParsePrivateKeyPEM(p)
}

// Has reports whether the key exists.
func (k *KeyStore) Has(ctx context.Context, name string) (bool, error) {
	if _, ok := k.cache.Load(name); ok {
		return true, nil
	}
	var n int
	if err := k.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM svs_keys WHERE name = ?`, name).Scan(&n); err != nil {
		return false, ihos.Internal(err)
	}
	return n > 0, nil
}

// Key returns the named key, decrypting it on first use.
func (k *KeyStore) Key(ctx context.Context, name string) (*Key, error) {
	if v, ok := k.cache.Load(name); ok {
		return v.(*Key), nil
	}
	var alg, certPEM, sealed, created string
	err := k.db.QueryRowContext(ctx, `SELECT algorithm, cert_pem, sealed_key, created_at FROM svs_keys WHERE name = ?`, name).
		Scan(&alg, &certPEM, &sealed, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ihos.Errorf(ihos.EUnavailable, "签名密钥 %s 不存在，请联系信息科", name)
	}
	if err != nil {
		return nil, ihos.Internal(err)
	}
	signer, err := k.unseal(name, sealed)
	if err != nil {
		return nil, err
	}
	cert, err := certs.ParseCertificate([]byte(certPEM))
	if err != nil {
		return nil, &ihos.Error{Code: ihos.EInternal, Message: fmt.Sprintf("签名密钥 %s 的证书已损坏", name), Err: err}
	}
	key := &Key{Name: name, Algorithm: alg, Cert: cert, CertPEM: certPEM, Signer: signer}
	key.CreatedAt, _ = ihos.ParseTime(created)
	v, _ := k.cache.LoadOrStore(name, key)
	return v.(*Key), nil
}

// EnsureKey returns the named key, creating it first when it is missing: a new
// SM2 key whose certificate (kind staff: digital signature and
// non-repudiation, common name cn) the hospital CA issues.
func (k *KeyStore) EnsureKey(ctx context.Context, name, cn string) (*Key, error) {
	return k.EnsureKeyOfKind(ctx, name, ca.KindStaff, cn)
}

// EnsureKeyOfKind is EnsureKey for a certificate of another kind, such as
// ca.KindTSA for the time-stamping authority's key.
func (k *KeyStore) EnsureKeyOfKind(ctx context.Context, name, kind, cn string) (*Key, error) {
	if !keyNameRE.MatchString(name) {
		return nil, ihos.Invalid(map[string]string{"name": "密钥名称只能包含字母、数字、点、下划线和连字符，最长 64 个字符"})
	}
	k.create.Lock()
	defer k.create.Unlock()
	if ok, err := k.Has(ctx, name); err != nil {
		return nil, err
	} else if ok {
		return k.Key(ctx, name)
	}
	if strings.TrimSpace(cn) == "" {
		cn = "签名验签服务器 " + name
	}
	priv, err := certs.GenerateSM2Key()
	if err != nil {
		return nil, err
	}
	cert, err := k.ca.Issue(ctx, ca.IssueRequest{Kind: kind, CommonName: cn, OrganizationalUnit: "签名验签服务",
		PublicKey: &priv.PublicKey, SubjectID: "svs:" + name})
	if err != nil {
		return nil, err
	}
	sealed, err := k.seal(name, priv)
	if err != nil {
		return nil, err
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	now := time.Now().UTC()
	err = k.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO svs_keys (name, algorithm, cert_pem, sealed_key, created_at) VALUES (?, ?, ?, ?, ?)`,
			name, "SM2", certPEM, sealed, ihos.FormatTime(now)); err != nil {
			return err
		}
		return audit.Append(ctx, k.db, tx, audit.Entry{Action: "create", Resource: "svs_keys", RecordID: name,
			Summary: fmt.Sprintf("生成签名验签服务密钥 %s（证书序列号 %s）", name, serialText(cert)),
			After:   jsonOf(map[string]string{"name": name, "algorithm": "SM2", "serial": serialText(cert), "subject": cert.Subject.String()})})
	})
	if err != nil {
		return nil, wrapInternal(err)
	}
	key := &Key{Name: name, Algorithm: "SM2", Cert: cert, CertPEM: certPEM, Signer: priv, CreatedAt: now}
	k.cache.Store(name, key)
	return key, nil
}

// List returns the keys, by name.
func (k *KeyStore) List(ctx context.Context) ([]KeyInfo, error) {
	rows, err := k.db.QueryContext(ctx, `SELECT name, algorithm, cert_pem, created_at FROM svs_keys ORDER BY name`)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	var out []KeyInfo
	for rows.Next() {
		var ki KeyInfo
		var certPEM, created string
		if err := rows.Scan(&ki.Name, &ki.Algorithm, &certPEM, &created); err != nil {
			return nil, ihos.Internal(err)
		}
		if c, err := certs.ParseCertificate([]byte(certPEM)); err == nil {
			ki.Subject, ki.Serial, ki.NotBefore, ki.NotAfter = c.Subject.String(), serialText(c), c.NotBefore, c.NotAfter
		}
		ki.CreatedAt, _ = ihos.ParseTime(created)
		out = append(out, ki)
	}
	return out, rows.Err()
}

// forget drops the decrypted keys (after a restore).
func (k *KeyStore) forget() {
	k.cache.Range(func(key, _ any) bool {
		k.cache.Delete(key)
		return true
	})
}

func serialText(c *smx509.Certificate) string {
	if c == nil || c.SerialNumber == nil {
		return ""
	}
	return c.SerialNumber.Text(16)
}
