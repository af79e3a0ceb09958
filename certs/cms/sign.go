package cms

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

// SignOptions tunes Sign. The zero value makes an attached signature in the
// key's default profile with the standard signed attributes.
type SignOptions struct {
	// Detached leaves the content out of the SignedData.
	Detached bool
	// Profile picks the object identifiers. The zero value, GM, applies to
	// SM2 keys only: with an RSA or ECDSA key it means CMS. So the default is
	// GM for SM2 and CMS for RSA/ECDSA; set CMS to get the OpenSSL-compatible
	// form with an SM2 key.
	Profile Profile
	// Chain holds extra certificates to include (intermediates, the root).
	Chain []*smx509.Certificate
	// NoCertificates leaves out every certificate, the signer's too; the
	// verifier must then be given the signer's certificate.
	NoCertificates bool
	// NoAttributes signs the content itself, without the signed attributes
	// contentType, messageDigest and signingTime (PKCS#7 "noattr").
	NoAttributes bool
	// SigningTime is the signingTime attribute; zero means now. Written in UTC.
	SigningTime time.Time
	// ContentType is the eContentType; nil means data of the profile. Any
	// other type needs signed attributes, and makes the SignedData version 3.
	ContentType asn1.ObjectIdentifier
	// SignedAttributes are added after contentType, messageDigest and
	// signingTime (e.g. ESS signing-certificate-v2 of a time-stamp token).
	SignedAttributes []Attribute
	// Timestamp, when set, is called with the signature value; its result,
	// an RFC 3161 TimeStampToken (DER ContentInfo), becomes the unsigned
	// attribute id-aa-signatureTimeStampToken (1.2.840.113549.1.9.16.2.14).
	Timestamp func(ctx context.Context, signature []byte) ([]byte, error)
}

// Sign signs content with key, whose public half is in cert, and returns the
// DER ContentInfo holding the SignedData.
func Sign(ctx context.Context, content []byte, cert *smx509.Certificate, key crypto.Signer, o SignOptions) ([]byte, error) {
	if cert == nil || key == nil {
		return nil, errors.New("cms: Sign needs a certificate and a key")
	}
	kind := kindOf(cert.PublicKey)
	if kind == 0 {
		return nil, wrap(ErrUnsupported, "证书公钥类型 %T", cert.PublicKey)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, ErrKeyMismatch
	}
	profile := o.Profile
	if profile != GM && profile != CMS {
		return nil, fmt.Errorf("cms: unknown profile %d", int(profile))
	}
	if kind != kindSM2 {
		profile = CMS
	}
	outerType, dataType := OIDSignedData, OIDData
	if profile == GM {
		outerType, dataType = OIDGMSignedData, OIDGMData
	}
	eType := dataType
	version := 1
	if o.ContentType != nil && !o.ContentType.Equal(dataType) {
		eType = o.ContentType
		version = 3
		if o.NoAttributes {
			return nil, errors.New("cms: a content type other than data needs signed attributes")
		}
	}

	dig, digAlg, sigAlg := algorithms(kind, profile)

	sid, err := asn1.Marshal(issuerAndSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, Serial: cert.SerialNumber})
	if err != nil {
		return nil, fmt.Errorf("cms: encode signer id: %w", err)
	}
	si := signerInfo{
		Version:            1,
		SID:                asn1.RawValue{FullBytes: sid},
		DigestAlgorithm:    digAlg,
		SignatureAlgorithm: sigAlg,
	}

	toSign := content
	if !o.NoAttributes {
		attrs, err := standardAttributes(eType, dig.sum(content), o.SigningTime)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, o.SignedAttributes...)
		der, err := marshalAttributes(attrs)
		if err != nil {
			return nil, fmt.Errorf("cms: encode signed attributes: %w", err)
		}
		toSign = der
		// In the SignerInfo the SET is [0] IMPLICIT.
		implicit := slices.Clone(der)
		implicit[0] = 0xa0
		si.SignedAttrs = asn1.RawValue{FullBytes: implicit}
	}
	if si.Signature, err = signBytes(key, kind, dig, toSign); err != nil {
		return nil, fmt.Errorf("cms: sign: %w", err)
	}

	if o.Timestamp != nil {
		token, err := o.Timestamp(ctx, si.Signature)
		if err != nil {
			return nil, fmt.Errorf("cms: time-stamp the signature: %w", err)
		}
		var probe asn1.RawValue
		if rest, err := asn1.Unmarshal(token, &probe); err != nil || len(rest) > 0 || probe.Tag != asn1.TagSequence {
			return nil, errors.New("cms: the time-stamp token is not one DER SEQUENCE")
		}
		der, err := marshalAttributes([]Attribute{{Type: OIDAttrTimeStampToken, Values: [][]byte{token}}})
		if err != nil {
			return nil, fmt.Errorf("cms: encode unsigned attributes: %w", err)
		}
		der[0] = 0xa1
		si.UnsignedAttrs = asn1.RawValue{FullBytes: der}
	}
	siDER, err := asn1.Marshal(si)
	if err != nil {
		return nil, fmt.Errorf("cms: encode SignerInfo: %w", err)
	}

	sd := signedData{
		Version:          version,
		DigestAlgorithms: []pkix.AlgorithmIdentifier{digAlg},
		EncapContentInfo: encapContentInfo{EContentType: eType},
		SignerInfos:      []asn1.RawValue{{FullBytes: siDER}},
	}
	if !o.Detached {
		oct, err := asn1.Marshal(content)
		if err != nil {
			return nil, err
		}
		sd.EncapContentInfo.EContent = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: oct}
	}
	if !o.NoCertificates {
		sd.Certificates = certificateSet(append([]*smx509.Certificate{cert}, o.Chain...))
	}
	sdDER, err := asn1.Marshal(sd)
	if err != nil {
		return nil, fmt.Errorf("cms: encode SignedData: %w", err)
	}
	return asn1.Marshal(contentInfo{
		ContentType: outerType,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sdDER},
	})
}

// standardAttributes returns contentType, messageDigest and signingTime.
func standardAttributes(eType asn1.ObjectIdentifier, digest []byte, at time.Time) ([]Attribute, error) {
	if at.IsZero() {
		at = time.Now()
	}
	ct, err := asn1.Marshal(eType)
	if err != nil {
		return nil, err
	}
	md, err := asn1.Marshal(digest)
	if err != nil {
		return nil, err
	}
	st, err := asn1.Marshal(at.UTC().Truncate(time.Second))
	if err != nil {
		return nil, err
	}
	return []Attribute{
		{Type: OIDAttrContentType, Values: [][]byte{ct}},
		{Type: OIDAttrMessageDigest, Values: [][]byte{md}},
		{Type: OIDAttrSigningTime, Values: [][]byte{st}},
	}, nil
}

// certificateSet encodes certs, without duplicates, as the [0] IMPLICIT SET OF
// Certificate of a SignedData (sorted, as DER wants).
func certificateSet(certs []*smx509.Certificate) asn1.RawValue {
	var raws [][]byte
	for _, c := range certs {
		if c == nil {
			continue
		}
		if !slices.ContainsFunc(raws, func(r []byte) bool { return bytes.Equal(r, c.Raw) }) {
			raws = append(raws, c.Raw)
		}
	}
	slices.SortFunc(raws, bytes.Compare)
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: bytes.Join(raws, nil)}
}
