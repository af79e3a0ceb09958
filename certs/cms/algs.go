package cms

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/asn1"
	"hash"

	_ "crypto/sha256" // register SHA-256 for crypto.Hash
	_ "crypto/sha512" // register SHA-384 and SHA-512

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
)

type keyKind int

const (
	kindSM2 keyKind = iota + 1
	kindRSA
	kindECDSA
)

func kindOf(pub crypto.PublicKey) keyKind {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return kindRSA
	case *ecdsa.PublicKey:
		if sm2.IsSM2PublicKey(k) {
			return kindSM2
		}
		return kindECDSA
	}
	return 0
}

// digestAlg is a message digest the package computes.
type digestAlg struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash // 0 for SM3
}

func (d digestAlg) new() hash.Hash {
	if d.hash == 0 {
		return sm3.New()
	}
	return d.hash.New()
}

func (d digestAlg) sum(b []byte) []byte {
	h := d.new()
	h.Write(b)
	return h.Sum(nil)
}

var (
	digestSM3    = digestAlg{OIDSM3, 0}
	digestSHA256 = digestAlg{OIDSHA256, crypto.SHA256}
	digestSHA384 = digestAlg{OIDSHA384, crypto.SHA384}
	digestSHA512 = digestAlg{OIDSHA512, crypto.SHA512}
)

// digestByOID maps a digestAlgorithm to a digest; SHA-1 and MD5 are refused.
func digestByOID(oid asn1.ObjectIdentifier) (digestAlg, bool) {
	switch {
	case oid.Equal(OIDSM3), oid.Equal(oidSM2SM3Digest):
		return digestSM3, true
	case oid.Equal(OIDSHA256):
		return digestSHA256, true
	case oid.Equal(OIDSHA384):
		return digestSHA384, true
	case oid.Equal(OIDSHA512):
		return digestSHA512, true
	}
	return digestAlg{}, false
}

// algorithms returns the digestAlgorithm and signatureAlgorithm identifiers a
// signer of the given kind writes in the given profile.
func algorithms(kind keyKind, p Profile) (digestAlg, pkix.AlgorithmIdentifier, pkix.AlgorithmIdentifier) {
	switch kind {
	case kindSM2:
		dig := pkix.AlgorithmIdentifier{Algorithm: OIDSM3, Parameters: nullParams}
		if p == GM {
			return digestSM3, dig, pkix.AlgorithmIdentifier{Algorithm: OIDSM2Sign}
		}
		return digestSM3, dig, pkix.AlgorithmIdentifier{Algorithm: OIDSM2WithSM3}
	case kindRSA:
		return digestSHA256, pkix.AlgorithmIdentifier{Algorithm: OIDSHA256},
			pkix.AlgorithmIdentifier{Algorithm: OIDRSA, Parameters: nullParams}
	default:
		return digestSHA256, pkix.AlgorithmIdentifier{Algorithm: OIDSHA256},
			pkix.AlgorithmIdentifier{Algorithm: OIDECDSASHA256}
	}
}

type sigPair struct {
	alg   smx509.SignatureAlgorithm
	named asn1.ObjectIdentifier
}

var (
	rsaPairs = map[crypto.Hash]sigPair{
		crypto.SHA256: {smx509.SHA256WithRSA, OIDSHA256RSA},
		crypto.SHA384: {smx509.SHA384WithRSA, OIDSHA384RSA},
		crypto.SHA512: {smx509.SHA512WithRSA, OIDSHA512RSA},
	}
	ecdsaPairs = map[crypto.Hash]sigPair{
		crypto.SHA256: {smx509.ECDSAWithSHA256, OIDECDSASHA256},
		crypto.SHA384: {smx509.ECDSAWithSHA384, OIDECDSASHA384},
		crypto.SHA512: {smx509.ECDSAWithSHA512, OIDECDSASHA512},
	}
)

// signatureCheck maps the algorithms found in a SignerInfo and the signer's key
// to the smx509 algorithm that checks the signature. The signatureAlgorithm
// may name the key type alone (rsaEncryption, id-ecPublicKey) or the pair, which
// must then agree with the digestAlgorithm; SM2 keys need SM3.
func signatureCheck(sigOID asn1.ObjectIdentifier, d digestAlg, kind keyKind) (smx509.SignatureAlgorithm, bool) {
	switch kind {
	case kindSM2:
		if d.hash == 0 && (sigOID.Equal(OIDSM2Sign) || sigOID.Equal(OIDSM2WithSM3) || sigOID.Equal(OIDECPublicKey)) {
			return smx509.SM2WithSM3, true
		}
	case kindRSA:
		if p, ok := rsaPairs[d.hash]; ok && (sigOID.Equal(OIDRSA) || sigOID.Equal(p.named)) {
			return p.alg, true
		}
	case kindECDSA:
		if p, ok := ecdsaPairs[d.hash]; ok && (sigOID.Equal(OIDECPublicKey) || sigOID.Equal(p.named)) {
			return p.alg, true
		}
	}
	return 0, false
}

// signBytes signs msg (the DER signed attributes, or the content itself).
// SM2 signers get the message and sm2.DefaultSM2SignerOpts (SM3 over Z‖M with
// the default user id), as gmsm's own keys and HSM adapters expect; a plain
// *ecdsa.PrivateKey on the SM2 curve is converted first. RSA and ECDSA signers
// get the digest.
func signBytes(key crypto.Signer, kind keyKind, d digestAlg, msg []byte) ([]byte, error) {
	if kind == kindSM2 {
		if ek, ok := key.(*ecdsa.PrivateKey); ok {
			sk, err := new(sm2.PrivateKey).FromECPrivateKey(ek)
			if err != nil {
				return nil, err
			}
			key = sk
		}
		return key.Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts)
	}
	return key.Sign(rand.Reader, d.sum(msg), d.hash)
}
