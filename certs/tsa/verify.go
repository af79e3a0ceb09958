package tsa

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"math/big"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"ihos/certs/cms"
)

// Info is what a verified time-stamp token says.
type Info struct {
	GenTime       time.Time // UTC
	Accuracy      time.Duration
	Serial        *big.Int
	Policy        asn1.ObjectIdentifier
	HashAlg       asn1.ObjectIdentifier
	HashedMessage []byte
	Nonce         *big.Int // nil if absent
	Signer        *smx509.Certificate
	// Chain is the verified chain from Signer to one of the roots.
	Chain []*smx509.Certificate
}

// Verify checks a time-stamp token (DER ContentInfo) for data: its CMS
// signature, that its content is a TSTInfo whose imprint is the hash of data,
// that the ESS signing-certificate(-v2) attribute names the signer, and that
// the signer has the critical timeStamping extended key usage (and no other)
// and chains to one of roots at genTime. Certificates the token does not
// carry are looked for among roots.
func Verify(token []byte, data []byte, roots []*smx509.Certificate) (info *Info, err error) {
	defer func() {
		if r := recover(); r != nil {
			info, err = nil, wrap(ErrBadToken, "内部解析异常：%v", r)
		}
	}()
	if len(roots) == 0 {
		return nil, ErrNoRoots
	}
	signed, err := cms.VerifyWith(token, nil, cms.VerifyOptions{Certificates: roots})
	if err != nil {
		return nil, wrap(ErrBadToken, "%v", err)
	}
	info, err = parseTSTInfo(signed)
	if err != nil {
		return nil, err
	}
	sum, err := Digest(info.HashAlg, data)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(sum, info.HashedMessage) {
		return nil, ErrDataChanged
	}
	if err := checkESS(signed); err != nil {
		return nil, err
	}
	if err := checkTSACert(signed.Signer); err != nil {
		return nil, err
	}
	rootPool, inter := smx509.NewCertPool(), smx509.NewCertPool()
	for _, r := range roots {
		rootPool.AddCert(r)
	}
	for _, c := range signed.Certificates {
		inter.AddCert(c)
	}
	chains, err := signed.Signer.Verify(smx509.VerifyOptions{
		Roots:         rootPool,
		Intermediates: inter,
		CurrentTime:   info.GenTime,
		KeyUsages:     []smx509.ExtKeyUsage{smx509.ExtKeyUsageTimeStamping},
	})
	if err != nil {
		return nil, wrap(ErrUntrusted, "%v", err)
	}
	info.Chain = chains[0]
	return info, nil
}

// parseTSTInfo decodes the TSTInfo of a verified SignedData.
func parseTSTInfo(signed *cms.Signed) (*Info, error) {
	if !signed.ContentType.Equal(OIDTSTInfo) {
		return nil, wrap(ErrBadToken, "内容类型 %v 不是 TSTInfo", signed.ContentType)
	}
	if cms.First(signed.SignedAttributes, cms.OIDAttrContentType) == nil {
		return nil, wrap(ErrBadToken, "缺少内容类型签名属性")
	}
	var t tstInfo
	if rest, err := asn1.Unmarshal(signed.Content, &t); err != nil || len(rest) > 0 {
		return nil, wrap(ErrBadToken, "TSTInfo 无法解析")
	}
	if t.Version != 1 {
		return nil, wrap(ErrBadToken, "TSTInfo 版本 %d", t.Version)
	}
	var mi messageImprint
	if rest, err := asn1.Unmarshal(t.MessageImprint.FullBytes, &mi); err != nil || len(rest) > 0 {
		return nil, wrap(ErrBadToken, "messageImprint 无法解析")
	}
	gen, ok := parseGeneralizedTime(t.GenTime)
	if !ok {
		return nil, wrap(ErrBadToken, "genTime 无法解析")
	}
	if t.SerialNumber == nil {
		return nil, wrap(ErrBadToken, "缺少序列号")
	}
	return &Info{
		GenTime:       gen,
		Accuracy:      t.Accuracy.duration(),
		Serial:        t.SerialNumber,
		Policy:        t.Policy,
		HashAlg:       mi.HashAlgorithm.Algorithm,
		HashedMessage: mi.HashedMessage,
		Nonce:         t.Nonce,
		Signer:        signed.Signer,
	}, nil
}

// checkESS checks that the first certificate named by the ESS
// signing-certificate-v2 (or v1) attribute is the signer's.
func checkESS(signed *cms.Signed) error {
	cert := signed.Signer
	if v := cms.First(signed.SignedAttributes, OIDSigningCertV2); v != nil {
		var sc signingCertificateV2
		if rest, err := asn1.Unmarshal(v, &sc); err != nil || len(rest) > 0 || len(sc.Certs) == 0 {
			return wrap(ErrBadToken, "ESS signing-certificate-v2 无法解析")
		}
		id := sc.Certs[0]
		alg := id.HashAlgorithm.Algorithm
		if len(alg) == 0 {
			alg = OIDSHA256
		}
		sum, err := Digest(alg, cert.Raw)
		if err != nil {
			return err
		}
		if !bytes.Equal(sum, id.CertHash) || !issuerSerialMatches(id.IssuerSerial, cert) {
			return wrap(ErrBadToken, "ESS 属性所指证书不是签名证书")
		}
		return nil
	}
	if v := cms.First(signed.SignedAttributes, OIDSigningCert); v != nil {
		var sc signingCertificate
		if rest, err := asn1.Unmarshal(v, &sc); err != nil || len(rest) > 0 || len(sc.Certs) == 0 {
			return wrap(ErrBadToken, "ESS signing-certificate 无法解析")
		}
		sum := sha1.Sum(cert.Raw)
		if !bytes.Equal(sum[:], sc.Certs[0].CertHash) || !issuerSerialMatches(sc.Certs[0].IssuerSerial, cert) {
			return wrap(ErrBadToken, "ESS 属性所指证书不是签名证书")
		}
		return nil
	}
	return wrap(ErrBadToken, "缺少 ESS signing-certificate 签名属性")
}

// issuerSerialMatches reports whether an optional IssuerSerial names cert.
func issuerSerialMatches(is issuerSerial, cert *smx509.Certificate) bool {
	if is.Serial == nil && is.Issuer.FullBytes == nil {
		return true // absent
	}
	if is.Serial == nil || cert.SerialNumber == nil || is.Serial.Cmp(cert.SerialNumber) != 0 {
		return false
	}
	rest := is.Issuer.Bytes
	for len(rest) > 0 {
		var gn asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &gn); err != nil {
			return false
		}
		if gn.Class == asn1.ClassContextSpecific && gn.Tag == 4 && bytes.Equal(gn.Bytes, cert.RawIssuer) {
			return true
		}
	}
	return false
}

// checkTSACert checks the extended key usage of a TSA certificate: present,
// critical, and timeStamping only (RFC 3161 §2.3).
func checkTSACert(cert *smx509.Certificate) error {
	for _, e := range cert.Extensions {
		if !e.Id.Equal(oidExtKeyUsage) {
			continue
		}
		var purposes []asn1.ObjectIdentifier
		if rest, err := asn1.Unmarshal(e.Value, &purposes); err != nil || len(rest) > 0 {
			return ErrNotTSACert
		}
		if !e.Critical || len(purposes) != 1 || !purposes[0].Equal(OIDTimeStamping) {
			return ErrNotTSACert
		}
		return nil
	}
	return ErrNotTSACert
}

func digestFor(oid asn1.ObjectIdentifier) (func([]byte) []byte, bool) {
	switch {
	case oid.Equal(OIDSHA256):
		return func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }, true
	case oid.Equal(OIDSHA384):
		return func(b []byte) []byte { s := sha512.Sum384(b); return s[:] }, true
	case oid.Equal(OIDSHA512):
		return func(b []byte) []byte { s := sha512.Sum512(b); return s[:] }, true
	case oid.Equal(OIDSM3):
		return func(b []byte) []byte { s := sm3.Sum(b); return s[:] }, true
	}
	return nil, false
}

func isSM2(pub any) bool {
	k, ok := pub.(*ecdsa.PublicKey)
	return ok && sm2.IsSM2PublicKey(k)
}
