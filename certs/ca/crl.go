package ca

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"ihos"
)

const (
	crlValidity = 24 * time.Hour // nextUpdate - thisUpdate
	crlRenew    = time.Hour      // a cached CRL is replaced this long before its nextUpdate
	clockSkew   = 5 * time.Minute
)

type cachedCRL struct {
	der         []byte
	revocations string // the revocation counter it was made at
	nextUpdate  time.Time
}

// CRL returns the CA's current CRL (DER): every certificate it revoked, signed
// with the CA key, thisUpdate now, nextUpdate 24 hours later, and a CRL number
// that increases with every CRL made. The CRL is cached until a revocation
// (by any process sharing the database) or an hour before its nextUpdate.
//
// Revoked certificates stay on the CRL after they expire: signatures are
// verified long after they were made, and the list stays small.
func (c *CA) CRL(ctx context.Context) ([]byte, error) {
	c.crlMu.Lock()
	defer c.crlMu.Unlock()
	seq, err := c.readState(ctx, "revocations")
	if err != nil {
		return nil, ihos.Internal(fmt.Errorf("ca: read revocation counter: %w", err))
	}
	now := c.now()
	if c.crl != nil && c.crl.revocations == seq && now.Before(c.crl.nextUpdate.Add(-crlRenew)) {
		return bytes.Clone(c.crl.der), nil
	}
	var number *big.Int
	var entries []smx509.RevocationListEntry
	err = c.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if number, err = c.nextState(ctx, tx, "crl_number"); err != nil {
			return err
		}
		rows, err := c.db.TxQuery(ctx, tx, `SELECT serial, revoked_at, reason FROM ca_certs WHERE ca_id = ? AND status = 'revoked' ORDER BY serial`, c.id)
		if err != nil {
			return fmt.Errorf("ca: list revoked certificates: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var serial string
			var at sql.NullString
			var reason int
			if err := rows.Scan(&serial, &at, &reason); err != nil {
				return fmt.Errorf("ca: list revoked certificates: %w", err)
			}
			n, ok := new(big.Int).SetString(serial, 16)
			if !ok {
				return fmt.Errorf("ca: ca_certs holds a malformed serial %q", serial)
			}
			e := smx509.RevocationListEntry{SerialNumber: n, ReasonCode: reason}
			if at.Valid {
				e.RevocationTime, _ = ihos.ParseTime(at.String)
			}
			if e.RevocationTime.IsZero() {
				e.RevocationTime = now
			}
			entries = append(entries, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, ihos.Internal(err)
	}
	this := now.UTC().Truncate(time.Second)
	tmpl := &smx509.RevocationList{
		Number:                    number,
		ThisUpdate:                this,
		NextUpdate:                this.Add(crlValidity),
		RevokedCertificateEntries: entries,
	}
	der, err := smx509.CreateRevocationList(rand.Reader, tmpl, c.cert, c.key)
	if err != nil {
		return nil, ihos.Internal(fmt.Errorf("ca: sign CRL: %w", err))
	}
	c.crl = &cachedCRL{der: der, revocations: seq, nextUpdate: tmpl.NextUpdate}
	return bytes.Clone(der), nil
}

// Errors of CheckCRL, wrapped with details.
var (
	ErrCRLMalformed   = errors.New("ca: malformed CRL")
	ErrCRLIssuer      = errors.New("ca: the CRL is not issued by the certificate's issuer")
	ErrCRLSignature   = errors.New("ca: the CRL signature does not verify")
	ErrCRLStale       = errors.New("ca: the CRL is out of date (past its nextUpdate)")
	ErrCRLNotYet      = errors.New("ca: the CRL is not yet valid (thisUpdate in the future)")
	ErrCRLUnsupported = errors.New("ca: the CRL has an unsupported critical extension")
)

var (
	oidExtAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidExtCRLNumber      = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidExtReasonCode     = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidExtInvalidityDate = asn1.ObjectIdentifier{2, 5, 29, 24}
)

// CheckCRL reports whether cert is listed on the CRL crlDER, after checking
// that the CRL was issued and signed by issuer, is a complete CRL this code
// understands (no unknown critical extension: delta and partitioned CRLs are
// refused), and is fresh at time at (zero: now): thisUpdate not after at (5
// minutes of clock skew allowed) and at not after nextUpdate.
//
// A listed certificate is reported revoked whatever at is; revokedAt lets a
// caller that verifies an old signature compare it with the signing time.
func CheckCRL(crlDER []byte, cert, issuer *smx509.Certificate, at time.Time) (revoked bool, revokedAt time.Time, reason int, err error) {
	if cert == nil || issuer == nil {
		return false, time.Time{}, 0, errors.New("ca: CheckCRL needs the certificate and its issuer")
	}
	if at.IsZero() {
		at = time.Now()
	}
	rl, err := smx509.ParseRevocationList(crlDER)
	if err != nil {
		return false, time.Time{}, 0, fmt.Errorf("%w: %v", ErrCRLMalformed, err)
	}
	if !bytes.Equal(rl.RawIssuer, issuer.RawSubject) || !bytes.Equal(cert.RawIssuer, issuer.RawSubject) {
		return false, time.Time{}, 0, ErrCRLIssuer
	}
	if err := rl.CheckSignatureFrom(issuer); err != nil {
		return false, time.Time{}, 0, fmt.Errorf("%w: %v", ErrCRLSignature, err)
	}
	for _, e := range rl.Extensions {
		if e.Critical && !e.Id.Equal(oidExtAuthorityKeyID) && !e.Id.Equal(oidExtCRLNumber) {
			return false, time.Time{}, 0, fmt.Errorf("%w: %v", ErrCRLUnsupported, e.Id)
		}
	}
	if at.Before(rl.ThisUpdate.Add(-clockSkew)) {
		return false, time.Time{}, 0, fmt.Errorf("%w: thisUpdate %s", ErrCRLNotYet, rl.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if rl.NextUpdate.IsZero() {
		return false, time.Time{}, 0, fmt.Errorf("%w: no nextUpdate", ErrCRLStale)
	}
	if at.After(rl.NextUpdate.Add(clockSkew)) {
		return false, time.Time{}, 0, fmt.Errorf("%w: nextUpdate %s", ErrCRLStale, rl.NextUpdate.UTC().Format(time.RFC3339))
	}
	for _, e := range rl.RevokedCertificateEntries {
		for _, x := range e.Extensions {
			if x.Critical && !x.Id.Equal(oidExtReasonCode) && !x.Id.Equal(oidExtInvalidityDate) {
				// e.g. certificateIssuer: an indirect CRL, whose entries may name other issuers
				return false, time.Time{}, 0, fmt.Errorf("%w: entry extension %v", ErrCRLUnsupported, x.Id)
			}
		}
		if e.SerialNumber != nil && e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			if e.ReasonCode == ReasonRemoveFromCRL {
				continue // only meaningful in delta CRLs; not revoked
			}
			return true, e.RevocationTime, e.ReasonCode, nil
		}
	}
	return false, time.Time{}, 0, nil
}
