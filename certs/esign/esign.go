// Package esign is the doctors' and pharmacists' electronic signature
// (电子签名): an SM2 key and certificate for each, issued by the hospital CA;
// the private key sealed at rest under a key that needs both the appliance's
// key-encryption key and the staff member's own signing PIN, so it is used
// only after their own authentication; documents signed as PKCS#7 detached
// over a canonical form of the document, with a timestamp from the hospital's
// time-stamping authority; and verification by anyone holding the CA
// certificate (the API, or `ihos-appliance verify` offline).
package esign

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"math/big"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs"
	"ihos/certs/ca"
	"ihos/certs/cms"
	"ihos/certs/tsa"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
)

// Service keeps staff keys and signs with them.
type Service struct {
	DB  *sqldb.DB
	CA  *ca.CA
	KEK []byte         // 16 bytes, the appliance's key-encryption key
	TSA *tsa.Authority // timestamps signatures; nil: none
	// Ready gates signing (the time source's check); nil: always ready.
	Ready func() error
}

// pinIterations is the PBKDF2-SM3 work factor for the signing PIN: about
// 10 ms on these machines, small for one signature, large for guessing.
const pinIterations = 20_000

// MaxAttempts wrong PINs lock the key for LockFor.
const (
	MaxAttempts = 5
	LockFor     = 15 * time.Minute
)

func validPIN(pin string) error {
	if len(pin) < 6 || len(pin) > 64 {
		return ihos.Invalid(map[string]string{"pin": "签名密码应为 6 到 64 位"})
	}
	return nil
}

// wrapKey derives the key that seals a staff member's private key from the
// appliance's KEK and the PIN: neither alone opens it.
func (s *Service) wrapKey(pin string, salt []byte) ([]byte, error) {
	if len(s.KEK) != 16 {
		return nil, errors.New("esign: the key-encryption key must be 16 bytes")
	}
	dk, err := pbkdf2.Key(sm3.New, pin, salt, pinIterations, 32)
	if err != nil {
		return nil, err
	}
	sum := sm3.Sum(append(append([]byte{}, s.KEK...), dk...))
	return sum[:16], nil
}

// Enroll gives a staff member a new SM2 key and a certificate for it, sealed
// under their PIN. A staff member who already has a key gets a new one (the old
// certificate is revoked: superseded).
func (s *Service) Enroll(ctx context.Context, staffID, name, pin string) (*smx509.Certificate, error) {
	if staffID == "" || name == "" {
		return nil, ihos.Invalid(map[string]string{"staff_id": "缺少医务人员信息"})
	}
	if err := validPIN(pin); err != nil {
		return nil, err
	}
	key, err := certs.GenerateSM2Key()
	if err != nil {
		return nil, ihos.Internal(err)
	}
	cert, err := s.CA.Issue(ctx, ca.IssueRequest{Kind: "staff", CommonName: name, OrganizationalUnit: "医务人员", PublicKey: key.Public(), SubjectID: staffID})
	if err != nil {
		return nil, err
	}
	pemKey, err := certs.MarshalPrivateKeyPEM(key)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	wk, err := s.wrapKey(pin, salt)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	nonce := make([]byte, 12)
	rand.Read(nonce)
	sealed, err := certs.SM4GCMSeal(wk, nonce, pemKey, []byte(staffID))
	if err != nil {
		return nil, ihos.Internal(err)
	}
	certPEM := string(certs.EncodeCertPEM(cert.Raw))
	var old string
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		now := ihos.FormatTime(time.Now())
		err := tx.QueryRowContext(ctx, `SELECT cert_serial FROM staff_keys WHERE staff_id = ?`+s.DB.ForUpdate(), staffID).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM staff_keys WHERE staff_id = ?`, staffID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO staff_keys (staff_id, name, cert_serial, cert_pem, sealed_key, salt, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			staffID, ihos.Truncate(name, 50), cert.SerialNumber.Text(16), certPEM,
			base64.StdEncoding.EncodeToString(append(nonce, sealed...)), hex.EncodeToString(salt), now, now); err != nil {
			return err
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "enroll", Resource: "staff_keys", RecordID: staffID,
			Summary: "签发电子签名证书：" + name + "（序列号 " + cert.SerialNumber.Text(16) + "）"})
	})
	if err != nil {
		return nil, err
	}
	if old != "" {
		if serial, ok := new(big.Int).SetString(old, 16); ok {
			s.CA.Revoke(ctx, serial, 4) // superseded
		}
	}
	return cert, nil
}

// Canonical is the form of a JSON document that is signed: keys sorted,
// no insignificant whitespace, numbers as written, HTML characters unescaped.
// Two documents with the same content sign and verify the same however they
// were formatted.
func Canonical(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, ihos.Errorf(ihos.EInvalid, "文档不是有效的 JSON：%v", err)
	}
	if dec.More() {
		return nil, ihos.Errorf(ihos.EInvalid, "文档不是单个 JSON 值")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, ihos.Internal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// unseal opens a staff member's key with their PIN, counting failures.
func (s *Service) unseal(ctx context.Context, staffID, pin string) (*smx509.Certificate, []byte, error) {
	var certPEM, sealedB64, saltHex string
	var failed int
	var lockedUntil sql.NullString
	err := s.DB.QueryRowContext(ctx, `SELECT cert_pem, sealed_key, salt, failed_attempts, locked_until FROM staff_keys WHERE staff_id = ?`, staffID).
		Scan(&certPEM, &sealedB64, &saltHex, &failed, &lockedUntil)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ihos.Errorf(ihos.ENotFound, "尚未为该医务人员签发电子签名证书")
	}
	if err != nil {
		return nil, nil, ihos.Internal(err)
	}
	if lockedUntil.Valid {
		if t, err := ihos.ParseTime(lockedUntil.String); err == nil && time.Now().Before(t) {
			return nil, nil, ihos.Errorf(ihos.EForbidden, "签名密码错误次数过多，请于 %s 后再试", t.In(ihos.Shanghai).Format("15:04"))
		}
	}
	raw, err := base64.StdEncoding.DecodeString(sealedB64)
	salt, err2 := hex.DecodeString(saltHex)
	if err != nil || err2 != nil || len(raw) < 12 {
		return nil, nil, ihos.Internal(errors.New("esign: stored key is damaged"))
	}
	wk, err := s.wrapKey(pin, salt)
	if err != nil {
		return nil, nil, ihos.Internal(err)
	}
	keyPEM, err := certs.SM4GCMOpen(wk, raw[:12], raw[12:], []byte(staffID))
	now := time.Now()
	if err != nil {
		failed++
		locked := sql.NullString{}
		if failed >= MaxAttempts {
			locked = sql.NullString{String: ihos.FormatTime(now.Add(LockFor)), Valid: true}
			failed = 0
		}
		s.DB.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE staff_keys SET failed_attempts = ?, locked_until = ?, updated_at = ? WHERE staff_id = ?`, failed, locked, ihos.FormatTime(now), staffID)
			return err
		})
		return nil, nil, ihos.Errorf(ihos.EForbidden, "签名密码错误")
	}
	if failed > 0 || lockedUntil.Valid {
		s.DB.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE staff_keys SET failed_attempts = 0, locked_until = NULL, updated_at = ? WHERE staff_id = ?`, ihos.FormatTime(now), staffID)
			return err
		})
	}
	cert, err := certs.ParseCertificate([]byte(certPEM))
	if err != nil {
		return nil, nil, ihos.Internal(err)
	}
	return cert, keyPEM, nil
}

// Signature is a signed document's detached signature.
type Signature struct {
	P7       []byte    `json:"p7"` // PKCS#7 SignedData, detached, GM profile, with a timestamp token
	Serial   string    `json:"serial"`
	SignedAt time.Time `json:"signed_at"`
}

// Sign signs a JSON document (an EMR, a prescription, an order) for staffID,
// who proves it is them with their PIN.
func (s *Service) Sign(ctx context.Context, staffID, pin string, doc []byte) (Signature, error) {
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			return Signature{}, err
		}
	}
	canon, err := Canonical(doc)
	if err != nil {
		return Signature{}, err
	}
	cert, keyPEM, err := s.unseal(ctx, staffID, pin)
	if err != nil {
		return Signature{}, err
	}
	// A revoked or expired certificate must not sign anything new: the
	// signature would only fail later, when someone verifies it.
	if rec, err := s.CA.Lookup(ctx, cert.SerialNumber); err != nil {
		return Signature{}, ihos.Internal(err)
	} else if rec.Status == ca.StatusRevoked {
		return Signature{}, ihos.Errorf(ihos.EForbidden, "您的电子签名证书已被吊销（%s），请联系医务科重新申领", ca.ReasonText(rec.Reason))
	}
	if now := time.Now(); now.After(cert.NotAfter) || now.Before(cert.NotBefore) {
		return Signature{}, ihos.Errorf(ihos.EForbidden, "您的电子签名证书不在有效期内（%s 到期），请联系医务科重新申领", cert.NotAfter.In(ihos.Shanghai).Format("2006-01-02"))
	}
	key, err := certs.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return Signature{}, ihos.Internal(err)
	}
	opts := cms.SignOptions{Detached: true}
	if s.TSA != nil {
		opts.Timestamp = s.TSA.Stamp
	}
	p7, err := cms.Sign(ctx, canon, cert, key, opts)
	if err != nil {
		return Signature{}, err
	}
	err = audit.Record(ctx, s.DB, audit.Entry{Action: "sign", Resource: "staff_keys", RecordID: staffID,
		Summary: fmt.Sprintf("电子签名：文档 SM3 %x", certs.SM3Sum(canon))})
	if err != nil {
		return Signature{}, ihos.Internal(err)
	}
	return Signature{P7: p7, Serial: cert.SerialNumber.Text(16), SignedAt: time.Now().UTC()}, nil
}

// Verified is what verification found.
type Verified struct {
	Signer      string    `json:"signer"`
	Serial      string    `json:"serial"`
	SignedAt    time.Time `json:"signed_at"`    // the signer's claimed time
	TimestampAt time.Time `json:"timestamp_at"` // the TSA's time, zero without a timestamp
}

// Verify checks a detached signature over a JSON document against the
// hospital CA: a changed document, a signature by a key the CA did not
// certify, or a bad timestamp fails with the reason.
func Verify(ctx context.Context, doc, p7 []byte, roots []*smx509.Certificate) (Verified, error) {
	canon, err := Canonical(doc)
	if err != nil {
		return Verified{}, err
	}
	signed, err := cms.Verify(p7, canon)
	if err != nil {
		return Verified{}, ihos.Errorf(ihos.EInvalid, "签名无效：%s", ihos.ErrorMessage(err))
	}
	v := Verified{Signer: signed.Signer.Subject.CommonName, Serial: signed.Signer.SerialNumber.Text(16), SignedAt: signed.SigningTime}
	at := signed.SigningTime
	if len(signed.Timestamp) > 0 {
		info, err := tsa.Verify(signed.Timestamp, signed.Signature, roots)
		if err != nil {
			return v, ihos.Errorf(ihos.EInvalid, "签名的时间戳无效：%s", ihos.ErrorMessage(err))
		}
		v.TimestampAt, at = info.GenTime, info.GenTime
	}
	res := ca.Verify(ctx, signed.Signer, ca.VerifyOptions{Roots: roots, Intermediates: signed.Certificates, At: at, Level: 1})
	if !res.Valid {
		return v, ihos.Errorf(ihos.EInvalid, "签名证书无效：%s", res.Reason)
	}
	return v, nil
}

// SetImage stores a staff member's handwritten signature image (PNG, at most
// 200 KB, at most 1000×400 pixels).
func (s *Service) SetImage(ctx context.Context, staffID string, img []byte) error {
	if len(img) > 200<<10 {
		return ihos.Invalid(map[string]string{"image": "签名图片不能超过 200 KB"})
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		return ihos.Invalid(map[string]string{"image": "签名图片应为 PNG 格式"})
	}
	if cfg.Width > 1000 || cfg.Height > 400 || cfg.Width < 50 || cfg.Height < 20 {
		return ihos.Invalid(map[string]string{"image": "签名图片尺寸应在 50×20 到 1000×400 像素之间"})
	}
	if _, err := png.Decode(bytes.NewReader(img)); err != nil {
		return ihos.Invalid(map[string]string{"image": "签名图片已损坏"})
	}
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		now := ihos.FormatTime(time.Now())
		if _, err := tx.ExecContext(ctx, `DELETE FROM staff_signature_images WHERE staff_id = ?`, staffID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO staff_signature_images (staff_id, image, updated_at) VALUES (?, ?, ?)`,
			staffID, base64.StdEncoding.EncodeToString(img), now); err != nil {
			return err
		}
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "update", Resource: "staff_signature_images", RecordID: staffID, Summary: "更新手写签名图片"})
	})
}

// Image returns a staff member's signature image.
func (s *Service) Image(ctx context.Context, staffID string) ([]byte, error) {
	var b64 string
	err := s.DB.QueryRowContext(ctx, `SELECT image FROM staff_signature_images WHERE staff_id = ?`, staffID).Scan(&b64)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ihos.Errorf(ihos.ENotFound, "尚未上传手写签名图片")
	}
	if err != nil {
		return nil, ihos.Internal(err)
	}
	return base64.StdEncoding.DecodeString(b64)
}
