package tsa

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strconv"
	"time"
)

// The ASN.1 of RFC 3161, RFC 5035 (ESS) and RFC 5816.

type timeStampReq struct {
	Version        int
	MessageImprint asn1.RawValue         // kept raw: the TSTInfo repeats it byte for byte
	ReqPolicy      asn1.ObjectIdentifier `asn1:"optional"`
	Nonce          *big.Int              `asn1:"optional"`
	CertReq        bool                  `asn1:"optional"`
	Extensions     []pkix.Extension      `asn1:"optional,tag:0"`
}

type messageImprint struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	HashedMessage []byte
}

type pkiStatusInfo struct {
	Status       int
	StatusString []asn1.RawValue `asn1:"optional"` // PKIFreeText: SEQUENCE OF UTF8String
	FailInfo     asn1.BitString  `asn1:"optional"`
}

type timeStampResp struct {
	Status         pkiStatusInfo
	TimeStampToken asn1.RawValue `asn1:"optional"`
}

type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint asn1.RawValue
	SerialNumber   *big.Int
	GenTime        asn1.RawValue    // GeneralizedTime, written with fractions when accuracy is below a second
	Accuracy       accuracy         `asn1:"optional"`
	Ordering       bool             `asn1:"optional"`
	Nonce          *big.Int         `asn1:"optional"`
	TSA            asn1.RawValue    `asn1:"optional,tag:0"`
	Extensions     []pkix.Extension `asn1:"optional,tag:1"`
}

type accuracy struct {
	Seconds int `asn1:"optional"`
	Millis  int `asn1:"optional,tag:0"`
	Micros  int `asn1:"optional,tag:1"`
}

func (a accuracy) duration() time.Duration {
	return time.Duration(a.Seconds)*time.Second + time.Duration(a.Millis)*time.Millisecond + time.Duration(a.Micros)*time.Microsecond
}

func accuracyOf(d time.Duration) accuracy {
	return accuracy{
		Seconds: int(d / time.Second),
		Millis:  int(d % time.Second / time.Millisecond),
		Micros:  int(d % time.Millisecond / time.Microsecond),
	}
}

// ESS signing-certificate (v1, SHA-1) and signing-certificate-v2.

type signingCertificateV2 struct {
	Certs    []essCertIDv2
	Policies asn1.RawValue `asn1:"optional"`
}

type essCertIDv2 struct {
	HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"` // DEFAULT sha256
	CertHash      []byte
	IssuerSerial  issuerSerial `asn1:"optional"`
}

type signingCertificate struct {
	Certs    []essCertID
	Policies asn1.RawValue `asn1:"optional"`
}

type essCertID struct {
	CertHash     []byte
	IssuerSerial issuerSerial `asn1:"optional"`
}

type issuerSerial struct {
	Issuer asn1.RawValue // GeneralNames
	Serial *big.Int
}

// PKIStatus values.
const (
	statusGranted         = 0
	statusGrantedWithMods = 1
	statusRejection       = 2
	statusWaiting         = 3
	statusRevocationWarn  = 4
	statusRevocation      = 5
)

// FailureInfo is a PKIFailureInfo bit (RFC 3161 §2.4.2).
type FailureInfo int

const (
	BadAlg              FailureInfo = 0
	BadRequest          FailureInfo = 2
	BadDataFormat       FailureInfo = 5
	TimeNotAvailable    FailureInfo = 14
	UnacceptedPolicy    FailureInfo = 15
	UnacceptedExtension FailureInfo = 16
	AddInfoNotAvailable FailureInfo = 17
	SystemFailure       FailureInfo = 25
)

func (f FailureInfo) String() string {
	switch f {
	case BadAlg:
		return "badAlg"
	case BadRequest:
		return "badRequest"
	case BadDataFormat:
		return "badDataFormat"
	case TimeNotAvailable:
		return "timeNotAvailable"
	case UnacceptedPolicy:
		return "unacceptedPolicy"
	case UnacceptedExtension:
		return "unacceptedExtension"
	case AddInfoNotAvailable:
		return "addInfoNotAvailable"
	case SystemFailure:
		return "systemFailure"
	}
	return "failInfo(" + strconv.Itoa(int(f)) + ")"
}

// bit returns the DER named-bit BIT STRING with only bit f set.
func (f FailureInfo) bit() asn1.BitString {
	b := make([]byte, int(f)/8+1)
	b[int(f)/8] = 0x80 >> (uint(f) % 8)
	return asn1.BitString{Bytes: b, BitLength: int(f) + 1}
}

// failures lists the bits set in a PKIFailureInfo.
func failures(bs asn1.BitString) []FailureInfo {
	var out []FailureInfo
	for i := 0; i < bs.BitLength && i < 64; i++ {
		if bs.At(i) == 1 {
			out = append(out, FailureInfo(i))
		}
	}
	return out
}

// generalizedTime encodes t (UTC) with as many fractional digits as the
// precision needs (none for whole seconds; trailing zeros dropped, RFC 3161 §2.4.2).
func generalizedTime(t time.Time, precision time.Duration) asn1.RawValue {
	t = t.UTC()
	var s string
	switch {
	case precision >= time.Second:
		s = t.Truncate(time.Second).Format("20060102150405Z")
	case precision >= time.Millisecond:
		s = t.Truncate(time.Millisecond).Format("20060102150405.999Z")
	default:
		s = t.Truncate(time.Microsecond).Format("20060102150405.999999Z")
	}
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagGeneralizedTime, Bytes: []byte(s)}
}

// parseGeneralizedTime decodes a GeneralizedTime in the RFC 3161 form (UTC, Z).
func parseGeneralizedTime(v asn1.RawValue) (time.Time, bool) {
	if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagGeneralizedTime || v.IsCompound {
		return time.Time{}, false
	}
	s := string(v.Bytes)
	if len(s) < 15 || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102150405.999999999Z", s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}
