package cms

import (
	"bytes"
	"crypto/subtle"
	"encoding/asn1"
	"fmt"
	"time"

	"github.com/emmansun/gmsm/smx509"
)

// Signed is what Verify found in a SignedData whose signature holds.
type Signed struct {
	// Signer is the certificate of the (first) signer.
	Signer *smx509.Certificate
	// Certificates are all the certificates the SignedData carries.
	Certificates []*smx509.Certificate
	// Content is the attached content, or the detached content given to Verify.
	Content []byte
	// ContentType is the eContentType (data of the profile for ordinary signatures).
	ContentType asn1.ObjectIdentifier
	// SigningTime is the signingTime attribute, zero if absent.
	SigningTime time.Time
	// Signature is the signer's signature value, the input of its time-stamp.
	Signature []byte
	// Timestamp is the embedded RFC 3161 TimeStampToken (DER), nil if none;
	// check it with tsa.Verify(Timestamp, Signature, roots).
	Timestamp []byte
	// SignedAttributes and UnsignedAttributes of the (first) signer.
	SignedAttributes   []Attribute
	UnsignedAttributes []Attribute
	// Detached tells that the content was not inside the SignedData.
	Detached bool
	// Profile tells which object identifiers the SignedData uses.
	Profile Profile
}

// VerifyOptions tunes VerifyWith.
type VerifyOptions struct {
	// Certificates are looked up for the signer when the SignedData does
	// not carry its certificate.
	Certificates []*smx509.Certificate
}

// Verify checks every signature of the SignedData p7 (DER, or BER as some
// producers stream it) and its messageDigest against the content: the attached
// one, or detached when the SignedData carries none. Chain, validity period and
// revocation of the signer's certificate are left to the caller.
func Verify(p7 []byte, detached []byte) (*Signed, error) {
	return VerifyWith(p7, detached, VerifyOptions{})
}

// VerifyWith is Verify with options.
func VerifyWith(p7 []byte, detached []byte, o VerifyOptions) (s *Signed, err error) {
	defer func() {
		// The parsers below are written not to panic; this is the last line
		// of defence for input crafted against a library underneath.
		if r := recover(); r != nil {
			s, err = nil, wrap(ErrMalformed, "内部解析异常：%v", r)
		}
	}()
	if len(p7) > MaxSize {
		return nil, wrap(ErrTooLarge, "%d 字节", len(p7))
	}
	if len(p7) == 0 {
		return nil, wrap(ErrMalformed, "输入为空")
	}
	var ci contentInfo
	rest, err := asn1.Unmarshal(p7, &ci)
	if err != nil {
		// Perhaps BER (indefinite lengths): normalise and try again.
		der, berErr := berToDER(p7)
		if berErr != nil {
			return nil, wrap(ErrMalformed, "ContentInfo：%v", err)
		}
		if rest, err = asn1.Unmarshal(der, &ci); err != nil {
			return nil, wrap(ErrMalformed, "ContentInfo：%v", err)
		}
	}
	if len(rest) > 0 {
		return nil, wrap(ErrMalformed, "数据末尾有多余的 %d 字节", len(rest))
	}
	s = &Signed{}
	switch {
	case ci.ContentType.Equal(OIDSignedData):
		s.Profile = CMS
	case ci.ContentType.Equal(OIDGMSignedData):
		s.Profile = GM
	default:
		return nil, wrap(ErrNotSignedData, "内容类型 %v", ci.ContentType)
	}
	if len(ci.Content.Bytes) == 0 {
		return nil, wrap(ErrMalformed, "缺少 SignedData")
	}
	var sd signedData
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, wrap(ErrMalformed, "SignedData：%v", err)
	} else if len(rest) > 0 {
		return nil, wrap(ErrMalformed, "SignedData 后有多余数据")
	}
	s.ContentType = sd.EncapContentInfo.EContentType

	// The certificates.
	if len(sd.Certificates.Bytes) > 0 {
		elems, err := splitElements(sd.Certificates.Bytes)
		if err != nil {
			return nil, wrap(ErrMalformed, "证书集合：%v", err)
		}
		for _, e := range elems {
			if e[0] != 0x30 { // other CertificateChoices (attribute certificates…) are ignored
				continue
			}
			c, err := smx509.ParseCertificate(e)
			if err != nil {
				return nil, wrap(ErrMalformed, "无法解析所含证书：%v", err)
			}
			s.Certificates = append(s.Certificates, c)
		}
	}

	// The content.
	if sd.EncapContentInfo.EContent.FullBytes != nil {
		var oct asn1.RawValue
		if rest, err := asn1.Unmarshal(sd.EncapContentInfo.EContent.Bytes, &oct); err != nil || len(rest) > 0 {
			return nil, wrap(ErrMalformed, "原文不是 OCTET STRING")
		}
		content, ok := octets(oct, 0)
		if !ok {
			return nil, wrap(ErrMalformed, "原文不是 OCTET STRING")
		}
		if detached != nil && !bytes.Equal(detached, content) {
			return nil, wrap(ErrContentChanged, "签名数据所含原文与提供的原文不一致")
		}
		s.Content = content
	} else {
		if detached == nil {
			return nil, ErrNoContent
		}
		s.Content = detached
		s.Detached = true
	}

	if len(sd.SignerInfos) == 0 {
		return nil, ErrNoSigner
	}
	candidates := append(append([]*smx509.Certificate(nil), s.Certificates...), o.Certificates...)
	for i, raw := range sd.SignerInfos {
		if err := verifySigner(raw.FullBytes, s, candidates, i == 0); err != nil {
			if len(sd.SignerInfos) > 1 {
				return nil, fmt.Errorf("第 %d 个签名者：%w", i+1, err)
			}
			return nil, err
		}
	}
	return s, nil
}

// verifySigner checks one SignerInfo; the first one fills in s.
func verifySigner(der []byte, s *Signed, candidates []*smx509.Certificate, first bool) error {
	var si signerInfo
	if rest, err := asn1.Unmarshal(der, &si); err != nil {
		return wrap(ErrMalformed, "SignerInfo：%v", err)
	} else if len(rest) > 0 {
		return wrap(ErrMalformed, "SignerInfo 后有多余数据")
	}
	cert, err := findSigner(si.SID, candidates)
	if err != nil {
		return err
	}
	kind := kindOf(cert.PublicKey)
	dig, ok := digestByOID(si.DigestAlgorithm.Algorithm)
	if !ok {
		return wrap(ErrUnsupported, "摘要算法 %v", si.DigestAlgorithm.Algorithm)
	}
	alg, ok := signatureCheck(si.SignatureAlgorithm.Algorithm, dig, kind)
	if !ok {
		return wrap(ErrUnsupported, "签名算法 %v、摘要算法 %v 与证书公钥 %T 不匹配",
			si.SignatureAlgorithm.Algorithm, si.DigestAlgorithm.Algorithm, cert.PublicKey)
	}

	var signedAttrs, unsignedAttrs []Attribute
	signed := s.Content
	if si.SignedAttrs.FullBytes != nil {
		if si.SignedAttrs.Class != asn1.ClassContextSpecific || !si.SignedAttrs.IsCompound {
			return wrap(ErrMalformed, "签名属性编码错误")
		}
		if signedAttrs, err = parseAttributes(si.SignedAttrs.Bytes); err != nil {
			return wrap(ErrMalformed, "签名属性：%v", err)
		}
		if err := checkSignedAttributes(signedAttrs, s.ContentType, dig.sum(s.Content)); err != nil {
			return err
		}
		// The signature covers the attributes with the SET OF tag (RFC 5652 §5.4).
		signed = append([]byte{0x31}, si.SignedAttrs.FullBytes[1:]...)
	}
	if si.UnsignedAttrs.FullBytes != nil {
		if !si.UnsignedAttrs.IsCompound {
			return wrap(ErrMalformed, "未签名属性编码错误")
		}
		if unsignedAttrs, err = parseAttributes(si.UnsignedAttrs.Bytes); err != nil {
			return wrap(ErrMalformed, "未签名属性：%v", err)
		}
	}
	if err := cert.CheckSignature(alg, signed, si.Signature); err != nil {
		if si.SignedAttrs.FullBytes == nil {
			// Without attributes a changed content shows up only here.
			return wrap(ErrBadSignature, "签名值与原文不符，原文可能已被修改：%v", err)
		}
		return wrap(ErrBadSignature, "%v", err)
	}
	if !first {
		return nil
	}
	s.Signer = cert
	s.Signature = si.Signature
	s.SignedAttributes = signedAttrs
	s.UnsignedAttributes = unsignedAttrs
	if v := First(signedAttrs, OIDAttrSigningTime); v != nil {
		var t time.Time
		if rest, err := asn1.Unmarshal(v, &t); err != nil || len(rest) > 0 {
			return wrap(ErrBadAttributes, "签名时间无法解析")
		}
		s.SigningTime = t.UTC()
	}
	if v := First(unsignedAttrs, OIDAttrTimeStampToken); v != nil {
		s.Timestamp = v
	}
	return nil
}

// checkSignedAttributes checks messageDigest (exactly one, equal to the digest
// of the content) and, when present, contentType (equal to eContentType) and
// signingTime (one value).
func checkSignedAttributes(attrs []Attribute, eType asn1.ObjectIdentifier, digest []byte) error {
	seen := map[string]bool{}
	for _, a := range attrs {
		k := a.Type.String()
		for _, single := range []asn1.ObjectIdentifier{OIDAttrMessageDigest, OIDAttrContentType, OIDAttrSigningTime} {
			if a.Type.Equal(single) && (seen[k] || len(a.Values) != 1) {
				return wrap(ErrBadAttributes, "属性 %v 重复或有多个值", a.Type)
			}
		}
		seen[k] = true
	}
	v := First(attrs, OIDAttrMessageDigest)
	if v == nil {
		return wrap(ErrBadAttributes, "缺少消息摘要（messageDigest）属性")
	}
	var md []byte
	if rest, err := asn1.Unmarshal(v, &md); err != nil || len(rest) > 0 {
		return wrap(ErrBadAttributes, "消息摘要属性无法解析")
	}
	if subtle.ConstantTimeCompare(md, digest) != 1 {
		return ErrContentChanged
	}
	if v := First(attrs, OIDAttrContentType); v != nil {
		var ct asn1.ObjectIdentifier
		if rest, err := asn1.Unmarshal(v, &ct); err != nil || len(rest) > 0 {
			return wrap(ErrBadAttributes, "内容类型属性无法解析")
		}
		if !ct.Equal(eType) {
			return wrap(ErrBadAttributes, "内容类型属性 %v 与 eContentType %v 不一致", ct, eType)
		}
	}
	return nil
}

// findSigner returns the certificate that a SignerIdentifier names.
func findSigner(sid asn1.RawValue, certs []*smx509.Certificate) (*smx509.Certificate, error) {
	switch {
	case sid.Class == asn1.ClassUniversal && sid.Tag == asn1.TagSequence:
		var ias issuerAndSerial
		if rest, err := asn1.Unmarshal(sid.FullBytes, &ias); err != nil || len(rest) > 0 || ias.Serial == nil {
			return nil, wrap(ErrMalformed, "签名者标识（issuerAndSerialNumber）无法解析")
		}
		for _, c := range certs {
			if c.SerialNumber != nil && c.SerialNumber.Cmp(ias.Serial) == 0 && bytes.Equal(c.RawIssuer, ias.Issuer.FullBytes) {
				return c, nil
			}
		}
		return nil, wrap(ErrSignerNotFound, "序列号 %X", ias.Serial)
	case sid.Class == asn1.ClassContextSpecific && sid.Tag == 0 && !sid.IsCompound:
		for _, c := range certs {
			if len(c.SubjectKeyId) > 0 && bytes.Equal(c.SubjectKeyId, sid.Bytes) {
				return c, nil
			}
		}
		return nil, wrap(ErrSignerNotFound, "密钥标识 %X", sid.Bytes)
	}
	return nil, wrap(ErrMalformed, "签名者标识类型未知")
}
