package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"net/http"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
)

// OCSP (RFC 6960) on encoding/asn1. The module is EXPLICIT TAGS except where
// the RFC says IMPLICIT (the CertStatus alternatives).

// OCSPResponseStatus values.
const (
	ocspSuccessful       = 0
	ocspMalformedRequest = 1
	ocspInternalError    = 2
	ocspTryLater         = 3
	ocspSigRequired      = 5
	ocspUnauthorized     = 6
)

var ocspStatusNames = map[int]string{
	ocspSuccessful: "successful", ocspMalformedRequest: "malformedRequest", ocspInternalError: "internalError",
	ocspTryLater: "tryLater", ocspSigRequired: "sigRequired", ocspUnauthorized: "unauthorized",
}

const (
	maxOCSPRequest   = 64 << 10 // bytes; larger requests are malformed
	maxOCSPResponse  = 1 << 20  // bytes the client reads
	maxOCSPSingles   = 32       // CertIDs in one request
	maxNonce         = 128      // bytes of the nonce extension's value
	ocspValidity     = time.Hour
	ocspFreshnessMax = 24 * time.Hour // a response without nextUpdate is accepted this long
)

var (
	oidOCSPBasic   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	oidOCSPNonce   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
	oidSHA1        = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSM3         = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 401}
	oidSM3Alt      = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 401, 1} // seen in some GM/T implementations
	oidSigSM2SM3   = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 501}
	oidSigECDSA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidSigECDSA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidSigECDSA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidSigRSA256   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSigRSA384   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSigRSA512   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
)

type hashAlg struct {
	oid asn1.ObjectIdentifier
	new func() hash.Hash
}

func (h hashAlg) sum(b []byte) []byte {
	x := h.new()
	x.Write(b)
	return x.Sum(nil)
}

// certIDHashAlgs are the CertID hash algorithms the responder answers.
var certIDHashAlgs = []hashAlg{
	{oidSHA1, sha1.New}, // what openssl sends by default
	{oidSHA256, sha256.New},
	{oidSM3, sm3.New},
	{oidSM3Alt, sm3.New},
}

func hashAlgByOID(oid asn1.ObjectIdentifier) (hashAlg, bool) {
	for _, h := range certIDHashAlgs {
		if h.oid.Equal(oid) {
			return h, true
		}
	}
	return hashAlg{}, false
}

// ---- ASN.1 structures ----

type ocspRequestASN1 struct {
	TBSRequest        tbsRequestASN1
	OptionalSignature asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type tbsRequestASN1 struct {
	Version       int           `asn1:"explicit,tag:0,default:0,optional"`
	RequestorName asn1.RawValue `asn1:"explicit,tag:1,optional"`
	RequestList   []singleRequestASN1
	Extensions    []pkix.Extension `asn1:"explicit,tag:2,optional"`
}

type singleRequestASN1 struct {
	CertID     asn1.RawValue    // echoed byte for byte in the response
	Extensions []pkix.Extension `asn1:"explicit,tag:0,optional"`
}

type certIDASN1 struct {
	HashAlgorithm  pkix.AlgorithmIdentifier
	IssuerNameHash []byte
	IssuerKeyHash  []byte
	SerialNumber   *big.Int
}

type ocspResponseASN1 struct {
	Status        asn1.Enumerated
	ResponseBytes responseBytesASN1 `asn1:"explicit,tag:0,optional"`
}

type responseBytesASN1 struct {
	ResponseType asn1.ObjectIdentifier
	Response     []byte
}

type basicResponseASN1 struct {
	TBSResponseData    asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          asn1.BitString
	Certs              []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type responseDataASN1 struct {
	Version     int `asn1:"explicit,tag:0,default:0,optional"`
	ResponderID asn1.RawValue
	ProducedAt  time.Time `asn1:"generalized"`
	Responses   []singleResponseASN1
	Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type singleResponseASN1 struct {
	CertID     asn1.RawValue
	CertStatus asn1.RawValue    // CHOICE of [0] IMPLICIT NULL, [1] IMPLICIT RevokedInfo, [2] IMPLICIT NULL
	ThisUpdate time.Time        `asn1:"generalized"`
	NextUpdate time.Time        `asn1:"generalized,explicit,tag:0,optional"`
	Extensions []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type revokedInfoASN1 struct {
	RevocationTime   time.Time       `asn1:"generalized"`
	RevocationReason asn1.Enumerated `asn1:"explicit,tag:0,optional"`
}

func contextTag(tag int, compound bool, content []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, IsCompound: compound, Bytes: content}
}

// malformedResponse and friends are OCSPResponses without responseBytes.
func statusOnlyResponse(status int) []byte {
	b, _ := asn1.Marshal(struct{ Status asn1.Enumerated }{asn1.Enumerated(status)})
	return b
}

// ---- the responder ----

// responder signs OCSP responses: the CA itself, or a delegated responder
// certificate (KindOCSP) issued by it, which is then included in the response.
type responder struct {
	key         crypto.Signer
	cert        *smx509.Certificate
	keyID       []byte // SHA-1 of the responder's public key bits (ResponderID byKey)
	includeCert bool
}

func newResponder(key crypto.Signer, cert *smx509.Certificate, includeCert bool) *responder {
	return &responder{key: key, cert: cert, keyID: keyID(cert), includeCert: includeCert}
}

// singleAnswer is the status of one CertID of a request.
type singleAnswer struct {
	certID    []byte // the request's CertID DER, echoed
	status    string
	revokedAt time.Time
	reason    int
}

// parsedRequest is a decoded OCSP request.
type parsedRequest struct {
	certIDs [][]byte        // raw CertIDs
	ids     []certIDASN1    // decoded, same order
	nonce   *pkix.Extension // echoed when present
}

func parseOCSPRequest(der []byte) (*parsedRequest, error) {
	if len(der) == 0 || len(der) > maxOCSPRequest {
		return nil, errors.New("ocsp: empty or oversized request")
	}
	var req ocspRequestASN1
	rest, err := asn1.Unmarshal(der, &req)
	if err != nil {
		return nil, fmt.Errorf("ocsp: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("ocsp: trailing data after the request")
	}
	tbs := req.TBSRequest
	if tbs.Version != 0 {
		return nil, fmt.Errorf("ocsp: unsupported request version %d", tbs.Version)
	}
	if n := len(tbs.RequestList); n == 0 || n > maxOCSPSingles {
		return nil, fmt.Errorf("ocsp: %d certificates in one request", n)
	}
	p := &parsedRequest{}
	for _, r := range tbs.RequestList {
		var id certIDASN1
		rest, err := asn1.Unmarshal(r.CertID.FullBytes, &id)
		if err != nil || len(rest) != 0 || id.SerialNumber == nil {
			return nil, errors.New("ocsp: malformed CertID")
		}
		p.certIDs = append(p.certIDs, r.CertID.FullBytes)
		p.ids = append(p.ids, id)
	}
	for i := range tbs.Extensions {
		e := tbs.Extensions[i]
		if e.Id.Equal(oidOCSPNonce) {
			if len(e.Value) == 0 || len(e.Value) > maxNonce {
				return nil, errors.New("ocsp: bad nonce length")
			}
			p.nonce = &pkix.Extension{Id: e.Id, Value: e.Value}
		}
	}
	return p, nil
}

// respondOCSP answers an OCSP request (DER) with a complete OCSPResponse (DER).
// It never fails: a request it cannot parse gets malformedRequest, a database
// or signing failure internalError.
func (c *CA) respondOCSP(ctx context.Context, der []byte) []byte {
	req, err := parseOCSPRequest(der)
	if err != nil {
		return statusOnlyResponse(ocspMalformedRequest)
	}
	answers := make([]singleAnswer, len(req.ids))
	for i, id := range req.ids {
		answers[i] = singleAnswer{certID: req.certIDs[i], status: StatusUnknown}
		h, ok := hashAlgByOID(id.HashAlgorithm.Algorithm)
		if !ok {
			continue
		}
		mine := c.issuerHashes[h.oid.String()]
		if !bytes.Equal(mine.name, id.IssuerNameHash) || !bytes.Equal(mine.key, id.IssuerKeyHash) || id.SerialNumber.Sign() <= 0 {
			continue // not one of ours: unknown (RFC 6960 §2.2)
		}
		st, at, reason, err := c.status(ctx, id.SerialNumber)
		if err != nil {
			return statusOnlyResponse(ocspInternalError)
		}
		answers[i].status, answers[i].revokedAt, answers[i].reason = st, at, reason
	}
	resp, err := c.responder.sign(answers, req.nonce, c.now())
	if err != nil {
		return statusOnlyResponse(ocspInternalError)
	}
	return resp
}

// sign builds and signs a successful OCSPResponse.
func (r *responder) sign(answers []singleAnswer, nonce *pkix.Extension, now time.Time) ([]byte, error) {
	now = now.UTC().Truncate(time.Second)
	keyHash, err := asn1.Marshal(r.keyID)
	if err != nil {
		return nil, err
	}
	data := responseDataASN1{
		ResponderID: contextTag(2, true, keyHash), // byKey [2] EXPLICIT KeyHash
		ProducedAt:  now,
	}
	for _, a := range answers {
		s := singleResponseASN1{
			CertID:     asn1.RawValue{FullBytes: a.certID},
			ThisUpdate: now,
			NextUpdate: now.Add(ocspValidity),
		}
		switch a.status {
		case StatusGood:
			s.CertStatus = contextTag(0, false, nil)
		case StatusRevoked:
			info := revokedInfoASN1{RevocationTime: a.revokedAt.UTC().Truncate(time.Second)}
			if a.reason != ReasonUnspecified {
				info.RevocationReason = asn1.Enumerated(a.reason)
			}
			b, err := asn1.Marshal(info)
			if err != nil {
				return nil, err
			}
			var seq asn1.RawValue
			if _, err := asn1.Unmarshal(b, &seq); err != nil {
				return nil, err
			}
			s.CertStatus = contextTag(1, true, seq.Bytes) // IMPLICIT: the SEQUENCE's contents under [1]
		default:
			s.CertStatus = contextTag(2, false, nil)
		}
		data.Responses = append(data.Responses, s)
	}
	if nonce != nil {
		data.Extensions = []pkix.Extension{*nonce}
	}
	tbs, err := asn1.Marshal(data)
	if err != nil {
		return nil, err
	}
	sig, alg, err := signData(r.key, tbs)
	if err != nil {
		return nil, err
	}
	basic := basicResponseASN1{
		TBSResponseData:    asn1.RawValue{FullBytes: tbs},
		SignatureAlgorithm: pkix.AlgorithmIdentifier{Algorithm: alg},
		Signature:          asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	}
	if r.includeCert {
		basic.Certs = []asn1.RawValue{{FullBytes: r.cert.Raw}}
	}
	basicDER, err := asn1.Marshal(basic)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(ocspResponseASN1{
		Status:        ocspSuccessful,
		ResponseBytes: responseBytesASN1{ResponseType: oidOCSPBasic, Response: basicDER},
	})
}

// signData signs data with an SM2 key (SM2-with-SM3, default user id) or an
// ECDSA key (ECDSA with the curve's SHA-2).
func signData(key crypto.Signer, data []byte) ([]byte, asn1.ObjectIdentifier, error) {
	switch k := key.(type) {
	case *sm2.PrivateKey:
		sig, err := k.Sign(rand.Reader, data, sm2.DefaultSM2SignerOpts)
		return sig, oidSigSM2SM3, err
	case *ecdsa.PrivateKey:
		var digest []byte
		var oid asn1.ObjectIdentifier
		switch k.Curve {
		case elliptic.P256():
			d := sha256.Sum256(data)
			digest, oid = d[:], oidSigECDSA256
		case elliptic.P384():
			d := sha512.Sum384(data)
			digest, oid = d[:], oidSigECDSA384
		case elliptic.P521():
			d := sha512.Sum512(data)
			digest, oid = d[:], oidSigECDSA512
		default:
			return nil, nil, errors.New("ca: unsupported ECDSA curve for OCSP signing")
		}
		sig, err := ecdsa.SignASN1(rand.Reader, k, digest)
		return sig, oid, err
	}
	return nil, nil, fmt.Errorf("ca: unsupported responder key %T", key)
}

func sigAlgByOID(oid asn1.ObjectIdentifier) smx509.SignatureAlgorithm {
	switch {
	case oid.Equal(oidSigSM2SM3):
		return smx509.SM2WithSM3
	case oid.Equal(oidSigECDSA256):
		return smx509.ECDSAWithSHA256
	case oid.Equal(oidSigECDSA384):
		return smx509.ECDSAWithSHA384
	case oid.Equal(oidSigECDSA512):
		return smx509.ECDSAWithSHA512
	case oid.Equal(oidSigRSA256):
		return smx509.SHA256WithRSA
	case oid.Equal(oidSigRSA384):
		return smx509.SHA384WithRSA
	case oid.Equal(oidSigRSA512):
		return smx509.SHA512WithRSA
	}
	return smx509.UnknownSignatureAlgorithm
}

// ---- the client ----

// OCSPAnswer is a verified OCSP answer for one certificate.
type OCSPAnswer struct {
	Status     string // StatusGood, StatusRevoked or StatusUnknown
	RevokedAt  time.Time
	Reason     int // when revoked; 0 when the responder gave none
	ThisUpdate time.Time
	NextUpdate time.Time
}

// CheckOCSP asks the OCSP responder at url about cert, issued by issuer, and
// returns its status ("good", "revoked", "unknown") and, when revoked, since
// when. The response must be signed by issuer, or by a delegated responder
// certificate that issuer signed with the OCSPSigning extended key usage; it
// must answer for cert, be fresh, and echo the request's nonce if it carries
// one. A nil client uses one with a 5 second timeout.
func CheckOCSP(ctx context.Context, client *http.Client, url string, cert, issuer *smx509.Certificate) (status string, revokedAt time.Time, err error) {
	a, err := QueryOCSP(ctx, client, url, cert, issuer)
	if err != nil {
		return "", time.Time{}, err
	}
	return a.Status, a.RevokedAt, nil
}

// QueryOCSP is CheckOCSP returning the whole answer (with the revocation reason).
func QueryOCSP(ctx context.Context, client *http.Client, url string, cert, issuer *smx509.Certificate) (OCSPAnswer, error) {
	if cert == nil || issuer == nil {
		return OCSPAnswer{}, errors.New("ocsp: CheckOCSP needs the certificate and its issuer")
	}
	if url == "" {
		return OCSPAnswer{}, errors.New("ocsp: no responder URL")
	}
	reqDER, nonce, err := newOCSPRequest(cert, issuer)
	if err != nil {
		return OCSPAnswer{}, err
	}
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(reqDER))
	if err != nil {
		return OCSPAnswer{}, fmt.Errorf("ocsp: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/ocsp-request")
	hreq.Header.Set("Accept", "application/ocsp-response")
	resp, err := client.Do(hreq)
	if err != nil {
		return OCSPAnswer{}, fmt.Errorf("ocsp: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPResponse+1))
	if err != nil {
		return OCSPAnswer{}, fmt.Errorf("ocsp: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return OCSPAnswer{}, fmt.Errorf("ocsp: responder answered HTTP %d", resp.StatusCode)
	}
	if len(body) > maxOCSPResponse {
		return OCSPAnswer{}, errors.New("ocsp: response too large")
	}
	return verifyOCSPResponse(body, cert, issuer, nonce, time.Now())
}

// newOCSPRequest returns a request for cert (CertID hashed with SHA-1, which
// every responder understands) with a random 16-byte nonce.
func newOCSPRequest(cert, issuer *smx509.Certificate) (der, nonce []byte, err error) {
	id, err := makeCertID(hashAlg{oidSHA1, sha1.New}, cert, issuer)
	if err != nil {
		return nil, nil, err
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return nil, nil, err
	}
	nonce, err = asn1.Marshal(raw) // the extension value is an OCTET STRING (RFC 8954)
	if err != nil {
		return nil, nil, err
	}
	req := ocspRequestASN1{TBSRequest: tbsRequestASN1{
		RequestList: []singleRequestASN1{{CertID: asn1.RawValue{FullBytes: id}}},
		Extensions:  []pkix.Extension{{Id: oidOCSPNonce, Value: nonce}},
	}}
	der, err = asn1.Marshal(req)
	return der, nonce, err
}

func makeCertID(h hashAlg, cert, issuer *smx509.Certificate) ([]byte, error) {
	bits, err := publicKeyBits(issuer)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(certIDASN1{
		HashAlgorithm:  pkix.AlgorithmIdentifier{Algorithm: h.oid, Parameters: asn1.NullRawValue},
		IssuerNameHash: h.sum(issuer.RawSubject),
		IssuerKeyHash:  h.sum(bits),
		SerialNumber:   cert.SerialNumber,
	})
}

// parsedResponse is a decoded (not yet verified) BasicOCSPResponse.
type parsedResponse struct {
	tbs       []byte
	sigAlg    asn1.ObjectIdentifier
	signature []byte
	certs     [][]byte
	data      responseDataASN1
}

func parseOCSPResponse(der []byte) (*parsedResponse, error) {
	var resp ocspResponseASN1
	rest, err := asn1.Unmarshal(der, &resp)
	if err != nil {
		return nil, fmt.Errorf("ocsp: malformed response: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("ocsp: trailing data after the response")
	}
	if resp.Status != ocspSuccessful {
		name := ocspStatusNames[int(resp.Status)]
		if name == "" {
			name = fmt.Sprint(int(resp.Status))
		}
		return nil, fmt.Errorf("ocsp: responder status %s", name)
	}
	if !resp.ResponseBytes.ResponseType.Equal(oidOCSPBasic) {
		return nil, fmt.Errorf("ocsp: unsupported response type %v", resp.ResponseBytes.ResponseType)
	}
	var basic basicResponseASN1
	rest, err = asn1.Unmarshal(resp.ResponseBytes.Response, &basic)
	if err != nil || len(rest) != 0 {
		return nil, errors.New("ocsp: malformed BasicOCSPResponse")
	}
	p := &parsedResponse{tbs: basic.TBSResponseData.FullBytes, sigAlg: basic.SignatureAlgorithm.Algorithm,
		signature: basic.Signature.RightAlign()}
	for _, c := range basic.Certs {
		p.certs = append(p.certs, c.FullBytes)
	}
	rest, err = asn1.Unmarshal(p.tbs, &p.data)
	if err != nil || len(rest) != 0 {
		return nil, errors.New("ocsp: malformed ResponseData")
	}
	if p.data.Version != 0 {
		return nil, fmt.Errorf("ocsp: unsupported response version %d", p.data.Version)
	}
	return p, nil
}

// verifyOCSPResponse checks a response to a request for cert made with nonce.
func verifyOCSPResponse(der []byte, cert, issuer *smx509.Certificate, nonce []byte, now time.Time) (OCSPAnswer, error) {
	p, err := parseOCSPResponse(der)
	if err != nil {
		return OCSPAnswer{}, err
	}
	signer, err := p.findSigner(issuer, now)
	if err != nil {
		return OCSPAnswer{}, err
	}
	alg := sigAlgByOID(p.sigAlg)
	if alg == smx509.UnknownSignatureAlgorithm {
		return OCSPAnswer{}, fmt.Errorf("ocsp: unsupported signature algorithm %v", p.sigAlg)
	}
	if err := signer.CheckSignature(alg, p.tbs, p.signature); err != nil {
		return OCSPAnswer{}, fmt.Errorf("ocsp: response signature does not verify: %w", err)
	}
	for _, e := range p.data.Extensions {
		if e.Id.Equal(oidOCSPNonce) {
			if !bytes.Equal(e.Value, nonce) {
				return OCSPAnswer{}, errors.New("ocsp: the response's nonce does not match the request (replayed response?)")
			}
		} else if e.Critical {
			return OCSPAnswer{}, fmt.Errorf("ocsp: unsupported critical response extension %v", e.Id)
		}
	}
	bits, err := publicKeyBits(issuer)
	if err != nil {
		return OCSPAnswer{}, err
	}
	for _, s := range p.data.Responses {
		var id certIDASN1
		if rest, err := asn1.Unmarshal(s.CertID.FullBytes, &id); err != nil || len(rest) != 0 || id.SerialNumber == nil {
			continue
		}
		h, ok := hashAlgByOID(id.HashAlgorithm.Algorithm)
		if !ok || id.SerialNumber.Cmp(cert.SerialNumber) != 0 ||
			!bytes.Equal(id.IssuerNameHash, h.sum(issuer.RawSubject)) || !bytes.Equal(id.IssuerKeyHash, h.sum(bits)) {
			continue
		}
		return singleAnswerOf(s, now)
	}
	return OCSPAnswer{}, errors.New("ocsp: the response does not answer for this certificate")
}

func singleAnswerOf(s singleResponseASN1, now time.Time) (OCSPAnswer, error) {
	a := OCSPAnswer{ThisUpdate: s.ThisUpdate, NextUpdate: s.NextUpdate}
	if s.ThisUpdate.After(now.Add(clockSkew)) {
		return OCSPAnswer{}, errors.New("ocsp: response thisUpdate is in the future")
	}
	if !s.NextUpdate.IsZero() {
		if now.After(s.NextUpdate.Add(clockSkew)) {
			return OCSPAnswer{}, errors.New("ocsp: response is out of date (past its nextUpdate)")
		}
	} else if now.Sub(s.ThisUpdate) > ocspFreshnessMax {
		return OCSPAnswer{}, errors.New("ocsp: response is out of date")
	}
	st := s.CertStatus
	if st.Class != asn1.ClassContextSpecific {
		return OCSPAnswer{}, errors.New("ocsp: malformed certStatus")
	}
	switch st.Tag {
	case 0:
		a.Status = StatusGood
	case 1:
		// RevokedInfo under IMPLICIT [1]: re-tag as a SEQUENCE to decode it.
		seq, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: st.Bytes})
		if err != nil {
			return OCSPAnswer{}, errors.New("ocsp: malformed RevokedInfo")
		}
		var info revokedInfoASN1
		info.RevocationReason = -1
		if rest, err := asn1.Unmarshal(seq, &info); err != nil || len(rest) != 0 {
			return OCSPAnswer{}, errors.New("ocsp: malformed RevokedInfo")
		}
		a.Status, a.RevokedAt, a.Reason = StatusRevoked, info.RevocationTime, int(info.RevocationReason)
		if a.Reason < 0 {
			a.Reason = ReasonUnspecified
		}
	case 2:
		a.Status = StatusUnknown
	default:
		return OCSPAnswer{}, errors.New("ocsp: malformed certStatus")
	}
	return a, nil
}

// findSigner returns the certificate whose key must have signed the response:
// the issuer when the ResponderID names it, else a certificate included in the
// response that the ResponderID names, issued by issuer, valid now and
// authorised for OCSP signing.
func (p *parsedResponse) findSigner(issuer *smx509.Certificate, now time.Time) (*smx509.Certificate, error) {
	matches := func(c *smx509.Certificate) bool {
		rid := p.data.ResponderID
		if rid.Class != asn1.ClassContextSpecific {
			return false
		}
		switch rid.Tag {
		case 1: // byName: [1] EXPLICIT Name
			return bytes.Equal(rid.Bytes, c.RawSubject)
		case 2: // byKey: [2] EXPLICIT OCTET STRING
			var h []byte
			if rest, err := asn1.Unmarshal(rid.Bytes, &h); err != nil || len(rest) != 0 {
				return false
			}
			return bytes.Equal(h, keyID(c))
		}
		return false
	}
	if matches(issuer) {
		return issuer, nil
	}
	for _, raw := range p.certs {
		c, err := smx509.ParseCertificate(raw)
		if err != nil || !matches(c) {
			continue
		}
		if err := c.CheckSignatureFrom(issuer); err != nil {
			return nil, fmt.Errorf("ocsp: the responder certificate is not issued by the certificate's issuer: %w", err)
		}
		ok := false
		for _, u := range c.ExtKeyUsage {
			ok = ok || u == smx509.ExtKeyUsageOCSPSigning
		}
		if !ok {
			return nil, errors.New("ocsp: the responder certificate is not authorised for OCSP signing")
		}
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return nil, errors.New("ocsp: the responder certificate is expired or not yet valid")
		}
		return c, nil
	}
	return nil, errors.New("ocsp: the response is signed neither by the issuer nor by a responder it authorised")
}
