package cms

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"slices"
)

// The ASN.1 of RFC 5652 §5 (GM/T 0010 has the same shapes).

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue   `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue   `asn1:"optional,tag:1"`
	SignerInfos      []asn1.RawValue `asn1:"set"`
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type signerInfo struct {
	Version            int
	SID                asn1.RawValue // IssuerAndSerialNumber, or [0] SubjectKeyIdentifier
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue // SET OF AttributeValue
}

var nullParams = asn1.RawValue{Tag: asn1.TagNull}

// marshalAttributes encodes attrs as the DER SET OF Attribute (tag 0x31), the
// form that is signed; the values of each attribute and the attributes are
// sorted as DER requires.
func marshalAttributes(attrs []Attribute) ([]byte, error) {
	enc := make([][]byte, 0, len(attrs))
	for _, a := range attrs {
		vals := slices.Clone(a.Values)
		slices.SortFunc(vals, bytes.Compare)
		b, err := asn1.Marshal(attribute{
			Type:   a.Type,
			Values: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: bytes.Join(vals, nil)},
		})
		if err != nil {
			return nil, err
		}
		enc = append(enc, b)
	}
	slices.SortFunc(enc, bytes.Compare)
	return asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: bytes.Join(enc, nil)})
}

// parseAttributes decodes the contents of a SET OF Attribute.
func parseAttributes(b []byte) ([]Attribute, error) {
	var out []Attribute
	for len(b) > 0 {
		var a attribute
		rest, err := asn1.Unmarshal(b, &a)
		if err != nil {
			return nil, err
		}
		b = rest
		if a.Values.Class != asn1.ClassUniversal || a.Values.Tag != asn1.TagSet || !a.Values.IsCompound {
			return nil, asn1.StructuralError{Msg: "attribute values are not a SET"}
		}
		vals, err := splitElements(a.Values.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, Attribute{Type: a.Type, Values: vals})
	}
	return out, nil
}

// splitElements returns the DER elements concatenated in b.
func splitElements(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(b, &v)
		if err != nil {
			return nil, err
		}
		out = append(out, v.FullBytes)
		b = rest
	}
	return out, nil
}

// octets returns the contents of an OCTET STRING, also in the constructed
// (BER) form, whose segments are concatenated.
func octets(v asn1.RawValue, depth int) ([]byte, bool) {
	if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagOctetString || depth > 8 {
		return nil, false
	}
	if !v.IsCompound {
		return v.Bytes, true
	}
	var out []byte
	rest := v.Bytes
	for len(rest) > 0 {
		var seg asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &seg); err != nil {
			return nil, false
		}
		b, ok := octets(seg, depth+1)
		if !ok {
			return nil, false
		}
		out = append(out, b...)
	}
	if out == nil {
		out = []byte{}
	}
	return out, true
}
