// Package cms makes and checks PKCS#7 / CMS SignedData (RFC 5652) with SM2, RSA
// and ECDSA keys, in two profiles:
//
//   - GM: the GM/T 0010 (GB/T 35275) object identifiers that Chinese signing
//     servers (GM/T 0029 SVS_SignMessage) and CA clients exchange: ContentInfo
//     type signedData 1.2.156.10197.6.1.4.2.2, eContentType data
//     1.2.156.10197.6.1.4.2.1, digest SM3 1.2.156.10197.1.401, signature
//     SM2-1 1.2.156.10197.1.301.1. Only SM2 keys.
//   - CMS: the RFC 5652 identifiers (signedData 1.2.840.113549.1.7.2, data
//     1.2.840.113549.1.7.1). With SM2 keys it uses the algorithm identifiers
//     OpenSSL 3 writes for SM2: digest SM3 (NULL parameters) and signature
//     SM2-with-SM3 1.2.156.10197.1.501 (no parameters). With RSA it uses
//     PKCS#1 v1.5 over SHA-256 (rsaEncryption), with ECDSA ecdsa-with-SHA256.
//
// SM2 signatures hash with SM3 over Z‖M with the default user id
// 1234567812345678 (GM/T 0009).
//
// Verify checks the signature and the messageDigest attribute only; whether the
// signer's certificate chains to a trusted root, and whether it was revoked, is
// the caller's decision, made at the verification level it needs. A signature
// time-stamp (RFC 3161 token in the unsigned attribute
// id-aa-signatureTimeStampToken) is returned as is; package ihos/certs/tsa checks
// it against Signed.Signature.
//
// Errors are *ihos.Error values (code invalid, message in Simplified Chinese),
// wrapped with details for the log; test them with errors.Is against the Err…
// variables.
package cms

import (
	"encoding/asn1"
	"fmt"

	"ihos"
)

// Profile selects the object identifiers of a SignedData.
type Profile int

const (
	// GM uses the GM/T 0010 content type and algorithm identifiers (SM2 only).
	GM Profile = iota
	// CMS uses the RFC 5652 content types; algorithms as OpenSSL 3 writes them.
	CMS
)

func (p Profile) String() string {
	switch p {
	case GM:
		return "GM/T 0010"
	case CMS:
		return "CMS"
	}
	return fmt.Sprintf("Profile(%d)", int(p))
}

// MaxSize is the largest encoded SignedData that Verify accepts.
const MaxSize = 32 << 20

// Object identifiers.
var (
	// Content types, RFC 5652.
	OIDData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	OIDSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	// Content types, GM/T 0010.
	OIDGMData       = asn1.ObjectIdentifier{1, 2, 156, 10197, 6, 1, 4, 2, 1}
	OIDGMSignedData = asn1.ObjectIdentifier{1, 2, 156, 10197, 6, 1, 4, 2, 2}

	// Digest algorithms.
	OIDSM3    = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 401}
	OIDSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	OIDSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	OIDSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}

	// Signature algorithms.
	OIDSM2Sign      = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 301, 1} // SM2-1, GM/T 0006
	OIDSM2WithSM3   = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 501}
	OIDRSA          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	OIDSHA256RSA    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	OIDSHA384RSA    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	OIDSHA512RSA    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	OIDECPublicKey  = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	OIDECDSASHA256  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	OIDECDSASHA384  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	OIDECDSASHA512  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidSHA1         = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidMD5          = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
	oidSM2SM3Digest = OIDSM2WithSM3 // some producers write SM2-with-SM3 as the digest algorithm

	// Attributes.
	OIDAttrContentType    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	OIDAttrMessageDigest  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	OIDAttrSigningTime    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	OIDAttrTimeStampToken = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14} // id-aa-signatureTimeStampToken
)

// Errors. Each is an *ihos.Error with code invalid and a message fit to show;
// the errors returned wrap one of them (errors.Is) and add details for the log.
var (
	ErrTooLarge       = &ihos.Error{Code: ihos.EInvalid, Message: "签名数据过大（超过 32 MB）"}
	ErrMalformed      = &ihos.Error{Code: ihos.EInvalid, Message: "签名数据格式错误，无法解析"}
	ErrNotSignedData  = &ihos.Error{Code: ihos.EInvalid, Message: "不是 PKCS#7 签名数据（SignedData）"}
	ErrNoContent      = &ihos.Error{Code: ihos.EInvalid, Message: "签名数据不含原文（分离式签名），验证时须提供原文"}
	ErrNoSigner       = &ihos.Error{Code: ihos.EInvalid, Message: "签名数据中没有签名者信息"}
	ErrSignerNotFound = &ihos.Error{Code: ihos.EInvalid, Message: "签名数据中找不到签名者证书"}
	ErrUnsupported    = &ihos.Error{Code: ihos.EInvalid, Message: "不支持的签名或摘要算法"}
	ErrContentChanged = &ihos.Error{Code: ihos.EInvalid, Message: "签名验证失败：内容已被修改"}
	ErrBadSignature   = &ihos.Error{Code: ihos.EInvalid, Message: "签名验证失败：签名值无效"}
	ErrBadAttributes  = &ihos.Error{Code: ihos.EInvalid, Message: "签名验证失败：签名属性不符合规范"}
	ErrKeyMismatch    = &ihos.Error{Code: ihos.EInvalid, Message: "签名证书与私钥不匹配"}
)

// wrap adds a detail to one of the errors above.
func wrap(base *ihos.Error, format string, args ...any) error {
	return fmt.Errorf("%w（%s）", base, fmt.Sprintf(format, args...))
}

// Attribute is one CMS attribute: its type and the DER encoding of each value.
type Attribute struct {
	Type   asn1.ObjectIdentifier
	Values [][]byte
}

// First returns the first value of the attribute of type t in attrs, or nil.
func First(attrs []Attribute, t asn1.ObjectIdentifier) []byte {
	for _, a := range attrs {
		if a.Type.Equal(t) && len(a.Values) > 0 {
			return a.Values[0]
		}
	}
	return nil
}
