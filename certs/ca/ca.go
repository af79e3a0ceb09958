// Package ca is the hospital's own certificate authority: it issues the
// certificates staff sign medical records and prescriptions with (SM2), the
// certificates of devices, servers, the time-stamping service and the OCSP
// responder, revokes them, publishes a CRL and answers OCSP (RFC 6960), and
// verifies certificates at the levels the signing server offers (1: chain and
// validity, 2: also revocation, by CRL or OCSP).
//
// The CA is a single SM2 root (or ECDSA P-256 for interoperability tests and TLS
// islands), its key and certificate kept in files (ca.key, ca.crt) under
// Options.Dir, the key optionally sealed with SM4-GCM under a key-encryption
// key. Every certificate it issues is recorded in the ca_certs table with its
// revocation state; the CRL and the OCSP responder answer from that table, and
// each issue and revocation is written to the audit log in the same transaction.
//
// The cryptography is github.com/emmansun/gmsm (sm2, sm3, sm4, smx509). gmsm has
// no OCSP, so the OCSP request and response structures are encoded here with
// encoding/asn1.
package ca

import (
	"context"
	"crypto"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm4"
	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
)

// Key algorithms of the CA itself.
const (
	KeySM2   = "SM2"   // SM2 key, certificates and CRLs signed SM2-with-SM3 (the default)
	KeyECDSA = "ECDSA" // ECDSA P-256 key, signatures ECDSA-with-SHA256
)

// DefaultName is the CA's common name when Options.Name is empty.
const DefaultName = "互联网医院 CA"

// File names under Options.Dir.
const (
	keyFile  = "ca.key"
	certFile = "ca.crt"
)

const (
	rootValidity = 20 * 365 * 24 * time.Hour
	backdate     = 10 * time.Minute // tolerate relying parties whose clocks run a little slow
	maxFileSize  = 1 << 20
	kekSize      = 16

	pemPKCS8  = "PRIVATE KEY"
	pemSealed = "IHOS SEALED PRIVATE KEY" // SM4-GCM(KEK) over the PKCS#8 DER
	pemCert   = "CERTIFICATE"
)

// sealAAD binds a sealed key to its purpose, so a blob sealed under the same
// KEK for something else cannot be substituted for the CA key.
var sealAAD = []byte("ihos certs/ca ca.key v1")

// Options configures Open.
type Options struct {
	// Dir holds ca.key (PKCS#8 PEM, mode 0600; sealed with SM4-GCM under KEK
	// when KEK is set) and ca.crt. It is created on first start.
	Dir string
	// KEK is an optional 16-byte SM4 key-encryption key for ca.key. An
	// unsealed key found while a KEK is set is sealed in place.
	KEK []byte
	// Name is the CA's common name and organization (DefaultName when empty).
	// It is used only when the CA is created.
	Name string
	// BaseURL is where Handler is reachable, e.g. "http://10.0.0.5:8090".
	// Issued certificates point at BaseURL+"/ca/crl" (CRL distribution point),
	// BaseURL+"/ca/ocsp" (OCSP) and BaseURL+"/ca/cert" (CA issuers). Empty:
	// certificates carry none of these.
	BaseURL string
	// KeyAlgorithm of a new CA: KeySM2 (default) or KeyECDSA. When set, an
	// existing CA with a different key is refused.
	KeyAlgorithm string
}

// CA is an open certificate authority. It is safe for concurrent use.
type CA struct {
	db      *sqldb.DB
	cert    *smx509.Certificate
	key     crypto.Signer
	id      string // ca_id in the tables: hex of a hash of the CA's public key
	name    string // the CA's organization, the default of issued certificates
	baseURL string
	now     func() time.Time

	// issuerHashes are the CertID hashes of this CA (issuer name and key) for
	// each hash algorithm OCSP requests may use.
	issuerHashes map[string]certIDHashes
	responder    *responder

	crlMu sync.Mutex
	crl   *cachedCRL
}

type certIDHashes struct{ name, key []byte }

// Open loads the CA in o.Dir, or creates it (a self-signed root valid 20 years,
// CA:TRUE, keyCertSign|cRLSign) on first start, and records its certificate in
// db. db must be migrated (sqldb.Open does it).
func Open(ctx context.Context, db *sqldb.DB, o Options) (*CA, error) {
	if db == nil {
		return nil, errors.New("ca: no database")
	}
	if o.Dir == "" {
		return nil, errors.New("ca: Options.Dir is empty")
	}
	if len(o.KEK) != 0 && len(o.KEK) != kekSize {
		return nil, fmt.Errorf("ca: the KEK must be %d bytes (an SM4 key), got %d", kekSize, len(o.KEK))
	}
	alg := strings.ToUpper(strings.TrimSpace(o.KeyAlgorithm))
	if alg != "" && alg != KeySM2 && alg != KeyECDSA {
		return nil, fmt.Errorf("ca: unknown key algorithm %q (want %s or %s)", o.KeyAlgorithm, KeySM2, KeyECDSA)
	}
	base := strings.TrimRight(strings.TrimSpace(o.BaseURL), "/")
	if base != "" {
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("ca: BaseURL %q is not an http(s) URL", o.BaseURL)
		}
	}
	name := strings.TrimSpace(o.Name)
	if name == "" {
		name = DefaultName
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("ca: create %s: %w", o.Dir, err)
	}

	cert, key, created, err := loadOrCreate(o.Dir, o.KEK, name, alg)
	if err != nil {
		return nil, err
	}
	if alg != "" && keyAlgorithm(key) != alg {
		return nil, fmt.Errorf("ca: the CA in %s has an %s key, but KeyAlgorithm %s was asked for", o.Dir, keyAlgorithm(key), alg)
	}
	c := &CA{db: db, cert: cert, key: key, name: cert.Subject.CommonName, baseURL: base, now: time.Now}
	if len(cert.Subject.Organization) > 0 {
		c.name = cert.Subject.Organization[0]
	}
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	c.id = hex.EncodeToString(spki[:16])
	keyBits, err := publicKeyBits(cert)
	if err != nil {
		return nil, err
	}
	c.issuerHashes = make(map[string]certIDHashes, len(certIDHashAlgs))
	for _, h := range certIDHashAlgs {
		c.issuerHashes[h.oid.String()] = certIDHashes{name: h.sum(cert.RawSubject), key: h.sum(keyBits)}
	}
	c.responder = newResponder(key, cert, false)
	if err := c.recordRoot(ctx, created); err != nil {
		return nil, err
	}
	// The counters exist before the first revocation or CRL, so concurrent
	// first uses lock an existing row instead of racing to insert it.
	for _, name := range []string{"revocations", "crl_number"} {
		if err := c.ensureState(ctx, name); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Certificate returns the CA certificate.
func (c *CA) Certificate() *smx509.Certificate { return c.cert }

// ID is the CA's identifier in the ca_certs table (hex of a hash of its public key).
func (c *CA) ID() string { return c.id }

func keyAlgorithm(k crypto.Signer) string {
	if _, ok := k.(*sm2.PrivateKey); ok {
		return KeySM2
	}
	return KeyECDSA
}

// recordRoot makes sure the root certificate has its row in ca_certs (so it can
// be looked up like any other) and audits the creation of a new CA.
func (c *CA) recordRoot(ctx context.Context, created bool) error {
	serial := serialHex(c.cert.SerialNumber)
	var n int
	if err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ca_certs WHERE serial = ?`, serial).Scan(&n); err != nil {
		return fmt.Errorf("ca: read ca_certs: %w", err)
	}
	if n > 0 {
		return nil
	}
	now := c.now()
	err := c.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := c.insertCert(ctx, tx, "root", "", c.cert, now); err != nil {
			return err
		}
		summary := "根证书入库：" + c.cert.Subject.CommonName
		if created {
			summary = "创建 CA 根证书：" + c.cert.Subject.CommonName
		}
		return audit.Append(ctx, c.db, tx, audit.Entry{Action: "create", Resource: "ca_certs", RecordID: serial,
			Summary: summary, After: certJSON("root", "", c.cert)})
	})
	if err != nil && !sqldb.IsUniqueViolation(err) { // another process recorded it first
		return fmt.Errorf("ca: record the root certificate: %w", err)
	}
	return nil
}

func (c *CA) ensureState(ctx context.Context, name string) error {
	key := name + ":" + c.id
	var n int
	if err := c.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ca_state WHERE name = ?`, key).Scan(&n); err != nil {
		return fmt.Errorf("ca: read ca_state: %w", err)
	}
	if n > 0 {
		return nil
	}
	err := c.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO ca_state (name, value) VALUES (?, '0')`, key)
		return err
	})
	if err != nil && !sqldb.IsUniqueViolation(err) {
		return fmt.Errorf("ca: create ca_state %s: %w", name, err)
	}
	return nil
}

func (c *CA) insertCert(ctx context.Context, tx *sql.Tx, kind, subjectID string, cert *smx509.Certificate, now time.Time) error {
	_, err := c.db.TxExec(ctx, tx, `INSERT INTO ca_certs (serial, ca_id, kind, subject_cn, subject_id, not_before, not_after, status, revoked_at, reason, cert_pem, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 'good', NULL, 0, ?, ?)`,
		serialHex(cert.SerialNumber), c.id, kind, ihos.Truncate(cert.Subject.CommonName, 200), subjectID,
		ihos.FormatTime(cert.NotBefore), ihos.FormatTime(cert.NotAfter),
		string(pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: cert.Raw})), ihos.FormatTime(now))
	return err
}

func certJSON(kind, subjectID string, cert *smx509.Certificate) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"serial":     serialHex(cert.SerialNumber),
		"kind":       kind,
		"subject":    cert.Subject.String(),
		"subject_id": subjectID,
		"not_before": ihos.FormatTime(cert.NotBefore),
		"not_after":  ihos.FormatTime(cert.NotAfter),
		"status":     StatusGood,
	})
	return b
}

// serialHex is how serials are keyed in ca_certs: lower-case hex without
// leading zeros. Serials are positive; a negative one (never issued here) keeps
// its sign so it cannot collide with a positive one.
func serialHex(s *big.Int) string { return s.Text(16) }

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("ca: random serial: %w", err)
		}
		if s := new(big.Int).SetBytes(b[:]); s.Sign() > 0 {
			return s, nil
		}
	}
}

// publicKeyBits returns the contents of the subjectPublicKey BIT STRING of cert,
// which OCSP's issuerKeyHash and responder KeyHash are computed over.
func publicKeyBits(cert *smx509.Certificate) ([]byte, error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("ca: certificate public key: malformed SubjectPublicKeyInfo")
	}
	return spki.PublicKey.Bytes, nil
}

func keyID(cert *smx509.Certificate) []byte {
	bits, err := publicKeyBits(cert)
	if err != nil {
		return nil
	}
	h := sha1.Sum(bits)
	return h[:]
}

// ---- key and certificate files ----

func loadOrCreate(dir string, kek []byte, name, alg string) (*smx509.Certificate, crypto.Signer, bool, error) {
	keyPath, certPath := filepath.Join(dir, keyFile), filepath.Join(dir, certFile)
	_, kerr := os.Stat(keyPath)
	_, cerr := os.Stat(certPath)
	// One file without the other may be a CA being created by another process
	// this instant: give it a moment before calling the directory broken.
	for i := 0; i < 40 && errors.Is(kerr, os.ErrNotExist) != errors.Is(cerr, os.ErrNotExist); i++ {
		time.Sleep(50 * time.Millisecond)
		_, kerr = os.Stat(keyPath)
		_, cerr = os.Stat(certPath)
	}
	switch {
	case errors.Is(kerr, os.ErrNotExist) && errors.Is(cerr, os.ErrNotExist):
		cert, key, err := create(dir, kek, name, alg)
		if errors.Is(err, os.ErrExist) { // another process is creating it at the same time
			for i := 0; i < 40; i++ {
				if _, err := os.Stat(certPath); err == nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			break
		}
		return cert, key, err == nil, err
	case errors.Is(kerr, os.ErrNotExist):
		return nil, nil, false, fmt.Errorf("ca: %s exists but %s is missing; restore the key from backup (a new CA would invalidate every certificate issued)", certPath, keyPath)
	case errors.Is(cerr, os.ErrNotExist):
		return nil, nil, false, fmt.Errorf("ca: %s exists but %s is missing; restore the certificate from backup", keyPath, certPath)
	}
	cert, key, err := load(dir, kek)
	return cert, key, false, err
}

func create(dir string, kek []byte, name, alg string) (*smx509.Certificate, crypto.Signer, error) {
	var key crypto.Signer
	var err error
	if alg == KeyECDSA {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		key, err = sm2.GenerateKey(rand.Reader)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("ca: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &smx509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{name}, Country: []string{"CN"}},
		NotBefore:             now.Add(-backdate).UTC().Truncate(time.Second),
		NotAfter:              now.Add(rootValidity).UTC().Truncate(time.Second),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              smx509.KeyUsageCertSign | smx509.KeyUsageCRLSign,
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: create the root certificate: %w", err)
	}
	cert, err := smx509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: parse the new root certificate: %w", err)
	}
	keyPEM, err := encodeKey(key, kek)
	if err != nil {
		return nil, nil, err
	}
	// The key is placed with a hard link, which fails if the file exists: of two
	// processes starting a new CA at once, one wins and the other loads its CA.
	if err := writeFile(filepath.Join(dir, keyFile), keyPEM, 0o600, true); err != nil {
		return nil, nil, err
	}
	if err := writeFile(filepath.Join(dir, certFile), pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: der}), 0o644, false); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func load(dir string, kek []byte) (*smx509.Certificate, crypto.Signer, error) {
	keyPath, certPath := filepath.Join(dir, keyFile), filepath.Join(dir, certFile)
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(keyPath)
		if err != nil {
			return nil, nil, fmt.Errorf("ca: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, nil, fmt.Errorf("ca: key file %s has mode %04o; it must be 0600 (chmod 600 %s)", keyPath, fi.Mode().Perm(), keyPath)
		}
	}
	keyPEM, err := readSmall(keyPath)
	if err != nil {
		return nil, nil, err
	}
	certPEM, err := readSmall(certPath)
	if err != nil {
		return nil, nil, err
	}
	blk, _ := pem.Decode(certPEM)
	if blk == nil || blk.Type != pemCert {
		return nil, nil, fmt.Errorf("ca: %s: no PEM CERTIFICATE block", certPath)
	}
	cert, err := smx509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: %s: %w", certPath, err)
	}
	if !cert.IsCA || cert.KeyUsage&smx509.KeyUsageCertSign == 0 {
		return nil, nil, fmt.Errorf("ca: %s is not a CA certificate", certPath)
	}
	key, sealed, err := decodeKey(keyPEM, kek, keyPath)
	if err != nil {
		return nil, nil, err
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, nil, fmt.Errorf("ca: %s does not belong to %s", keyPath, certPath)
	}
	if len(kek) > 0 && !sealed {
		// A KEK was configured after the CA was made: seal the key in place.
		b, err := encodeKey(key, kek)
		if err != nil {
			return nil, nil, err
		}
		if err := writeFile(keyPath, b, 0o600, false); err != nil {
			return nil, nil, err
		}
	}
	return cert, key, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// encodeKey returns the PKCS#8 PEM of key, sealed with SM4-GCM under kek when
// kek is set: the block "IHOS SEALED PRIVATE KEY" holds nonce || ciphertext+tag.
func encodeKey(key crypto.Signer, kek []byte) ([]byte, error) {
	der, err := smx509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: marshal key: %w", err)
	}
	if len(kek) == 0 {
		return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der}), nil
	}
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("ca: random nonce: %w", err)
	}
	sealed := aead.Seal(nonce, nonce, der, sealAAD)
	return pem.EncodeToMemory(&pem.Block{Type: pemSealed, Headers: map[string]string{"Cipher": "SM4-GCM"}, Bytes: sealed}), nil
}

func decodeKey(b, kek []byte, path string) (crypto.Signer, bool, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, false, fmt.Errorf("ca: %s: no PEM private key block", path)
	}
	der, sealed := blk.Bytes, false
	switch blk.Type {
	case pemPKCS8:
	case pemSealed:
		if len(kek) == 0 {
			return nil, false, fmt.Errorf("ca: %s is sealed with a key-encryption key (KEK); configure the KEK to open the CA", path)
		}
		aead, err := newAEAD(kek)
		if err != nil {
			return nil, false, err
		}
		if c := blk.Headers["Cipher"]; c != "SM4-GCM" {
			return nil, false, fmt.Errorf("ca: %s: unsupported cipher %q", path, c)
		}
		if len(der) < aead.NonceSize()+aead.Overhead() {
			return nil, false, fmt.Errorf("ca: %s: sealed key is truncated", path)
		}
		der, err = aead.Open(nil, der[:aead.NonceSize()], der[aead.NonceSize():], sealAAD)
		if err != nil {
			return nil, false, fmt.Errorf("ca: %s cannot be unsealed: wrong key-encryption key (KEK), or the file is damaged", path)
		}
		sealed = true
	default:
		return nil, false, fmt.Errorf("ca: %s: PEM block %q is not a private key", path, blk.Type)
	}
	k, err := smx509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, false, fmt.Errorf("ca: %s: %w", path, err)
	}
	switch k := k.(type) {
	case *sm2.PrivateKey:
		return k, sealed, nil
	case *ecdsa.PrivateKey:
		return k, sealed, nil
	}
	return nil, false, fmt.Errorf("ca: %s: unsupported CA key type %T (want SM2 or ECDSA)", path, k)
}

func newAEAD(kek []byte) (cipher.AEAD, error) {
	block, err := sm4.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("ca: KEK: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("ca: SM4-GCM: %w", err)
	}
	return aead, nil
}

func readSmall(path string) ([]byte, error) { return certs.ReadFileLimit(path, maxFileSize) }

func writeFile(path string, data []byte, perm os.FileMode, exclusive bool) error {
	if exclusive {
		return certs.CreateFile(path, data, perm)
	}
	return certs.WriteFile(path, data, perm)
}
