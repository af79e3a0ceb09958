// Package tsa is an RFC 3161 time-stamp authority that signs with SM2 (or RSA,
// ECDSA), its HTTP endpoint (RFC 3161 §3.4), a client, and the verification of
// time-stamp tokens.
//
// A token is a CMS SignedData (RFC 5652 object identifiers; with SM2 the
// OpenSSL 3 algorithm identifiers, see package ihos/certs/cms) whose content
// is a TSTInfo (id-ct-TSTInfo 1.2.840.113549.1.9.16.1.4). Its signed
// attributes are contentType, messageDigest, signingTime (= genTime) and the
// ESS signing-certificate-v2 (RFC 5035/5816: SHA-256 hash of the TSA
// certificate, with its issuer and serial number).
//
// Message imprints may use SHA-256, SHA-384, SHA-512 or SM3; anything else
// (SHA-1 and MD5 included) is refused with badAlg.
//
// The default policy, 1.3.6.1.4.1.32473.1.1, sits under IANA's enterprise
// number for documentation (RFC 5612): it cannot collide with a real policy.
// A hospital with its own OID arc sets Authority.Policy.
package tsa

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs/cms"
)

// MaxRequestSize is the largest TimeStampReq Respond accepts.
const MaxRequestSize = 64 << 10

// Object identifiers.
var (
	OIDTSTInfo          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	OIDTimeStamping     = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
	OIDSigningCert      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	OIDSigningCertV2    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	OIDSHA256           = cms.OIDSHA256
	OIDSHA384           = cms.OIDSHA384
	OIDSHA512           = cms.OIDSHA512
	OIDSM3              = cms.OIDSM3
	DefaultPolicy       = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1, 1}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	errNoCertificateKey = errors.New("tsa: the authority has no certificate or key")
)

// Authority answers time-stamp requests. Set the exported fields before the
// first request and do not change them afterwards; an Authority is safe for
// concurrent use.
type Authority struct {
	// Cert is the TSA certificate: its only extended key usage is
	// timeStamping, in a critical extension.
	Cert *smx509.Certificate
	// Key is its private key: SM2 (the default choice), RSA or ECDSA.
	Key crypto.Signer
	// Chain holds intermediate certificates, sent with Cert when the
	// request asks for certificates (certReq).
	Chain []*smx509.Certificate
	// Policy is the TSA policy; nil means DefaultPolicy.
	Policy asn1.ObjectIdentifier
	// Clock tells the time; nil means time.Now.
	Clock func() time.Time
	// Accuracy is written in every TSTInfo; zero means one second. Below a
	// second, genTime carries fractions of a second.
	Accuracy time.Duration
	// Ready is consulted before every stamp; when it returns an error (the
	// clock is not synchronised, …) the request is rejected
	// (timeNotAvailable) with the error's text as statusString.
	Ready func() error
	// Logger receives the causes of systemFailure answers; nil means slog.Default().
	Logger *slog.Logger

	mu       sync.Mutex
	last     int64  // the last serial's time part
	instance uint64 // random, tells apart authorities that share a certificate
}

func (a *Authority) policy() asn1.ObjectIdentifier {
	if len(a.Policy) > 0 {
		return a.Policy
	}
	return DefaultPolicy
}

func (a *Authority) now() time.Time {
	if a.Clock != nil {
		return a.Clock()
	}
	return time.Now()
}

func (a *Authority) accuracy() time.Duration {
	if a.Accuracy > 0 {
		return a.Accuracy
	}
	return time.Second
}

func (a *Authority) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

// serial returns a new serial number: the time in nanoseconds (never less than
// the previous one plus one, so serials rise even when the clock steps back)
// times 2^20 plus a random number fixed for this Authority.
func (a *Authority) serial(now time.Time) *big.Int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.instance == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		a.instance = binary.BigEndian.Uint64(b[:])&(1<<20-1) | 1
	}
	t := now.UnixNano()
	if t <= a.last {
		t = a.last + 1
	}
	a.last = t
	s := new(big.Int).SetInt64(t)
	s.Lsh(s, 20)
	return s.Or(s, new(big.Int).SetUint64(a.instance))
}

// rejection is a refused request: its status text and failure bit.
type rejection struct {
	info FailureInfo
	text string
}

// Respond answers the DER TimeStampReq reqDER with a DER TimeStampResp:
// granted with a token, or rejected with a PKIFailureInfo (badAlg for an
// unsupported hash, badRequest or badDataFormat for a malformed request,
// unacceptedPolicy, unacceptedExtension, timeNotAvailable when Ready fails,
// systemFailure when signing fails). The error is non-nil only when ctx is done.
func (a *Authority) Respond(ctx context.Context, reqDER []byte) (resp []byte, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			a.logger().Error("tsa: panic while answering a request", "panic", r)
			resp, err = reject(rejection{SystemFailure, "时间戳服务内部错误"})
		}
	}()
	req, rej := a.parseRequest(reqDER)
	if rej != nil {
		return reject(*rej)
	}
	if a.Ready != nil {
		if err := a.Ready(); err != nil {
			return reject(rejection{TimeNotAvailable, readyText(err)})
		}
	}
	if a.Cert == nil || a.Key == nil {
		a.logger().Error("tsa: cannot stamp", "err", errNoCertificateKey)
		return reject(rejection{SystemFailure, "时间戳服务未配置签名证书"})
	}
	now := a.now().UTC()
	if now.Before(a.Cert.NotBefore) || now.After(a.Cert.NotAfter) {
		a.logger().Error("tsa: the clock is outside the TSA certificate's validity", "now", now, "notBefore", a.Cert.NotBefore, "notAfter", a.Cert.NotAfter)
		return reject(rejection{TimeNotAvailable, "当前时间不在时间戳服务证书的有效期内"})
	}
	token, err := a.makeToken(ctx, req, now)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		a.logger().Error("tsa: cannot stamp", "err", err)
		return reject(rejection{SystemFailure, "时间戳服务签名失败"})
	}
	return asn1.Marshal(timeStampResp{
		Status:         pkiStatusInfo{Status: statusGranted},
		TimeStampToken: asn1.RawValue{FullBytes: token},
	})
}

// parseRequest checks a TimeStampReq.
func (a *Authority) parseRequest(der []byte) (timeStampReq, *rejection) {
	var req timeStampReq
	var mi messageImprint
	if len(der) > MaxRequestSize {
		return req, &rejection{BadRequest, fmt.Sprintf("请求过大（超过 %d 字节）", MaxRequestSize)}
	}
	rest, err := asn1.Unmarshal(der, &req)
	if err != nil || len(rest) > 0 {
		return req, &rejection{BadRequest, "时间戳请求格式错误，无法解析"}
	}
	if req.Version != 1 {
		return req, &rejection{BadRequest, "时间戳请求版本不受支持"}
	}
	if rest, err := asn1.Unmarshal(req.MessageImprint.FullBytes, &mi); err != nil || len(rest) > 0 {
		return req, &rejection{BadRequest, "消息摘要（messageImprint）格式错误"}
	}
	size, ok := hashSize(mi.HashAlgorithm.Algorithm)
	if !ok {
		return req, &rejection{BadAlg, fmt.Sprintf("不支持的摘要算法 %v（支持 SHA-256、SHA-384、SHA-512、SM3）", mi.HashAlgorithm.Algorithm)}
	}
	if len(mi.HashedMessage) != size {
		return req, &rejection{BadDataFormat, fmt.Sprintf("摘要长度 %d 字节与算法不符（应为 %d）", len(mi.HashedMessage), size)}
	}
	if len(req.ReqPolicy) > 0 && !req.ReqPolicy.Equal(a.policy()) {
		return req, &rejection{UnacceptedPolicy, fmt.Sprintf("不支持所请求的策略 %v", req.ReqPolicy)}
	}
	if len(req.Extensions) > 0 {
		return req, &rejection{UnacceptedExtension, "不支持请求中的扩展项"}
	}
	if req.Nonce != nil && (req.Nonce.Sign() < 0 || req.Nonce.BitLen() > 512) {
		return req, &rejection{BadRequest, "随机数（nonce）无效"}
	}
	return req, nil
}

// makeToken makes the token.
func (a *Authority) makeToken(ctx context.Context, req timeStampReq, now time.Time) ([]byte, error) {
	acc := a.accuracy()
	info := tstInfo{
		Version:        1,
		Policy:         a.policy(),
		MessageImprint: asn1.RawValue{FullBytes: req.MessageImprint.FullBytes},
		SerialNumber:   a.serial(now),
		GenTime:        generalizedTime(now, acc),
		Accuracy:       accuracyOf(acc),
		Nonce:          req.Nonce,
	}
	content, err := asn1.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("tsa: encode TSTInfo: %w", err)
	}
	ess, err := signingCertV2(a.Cert)
	if err != nil {
		return nil, err
	}
	opts := cms.SignOptions{
		Profile:          cms.CMS,
		ContentType:      OIDTSTInfo,
		SigningTime:      now,
		SignedAttributes: []cms.Attribute{{Type: OIDSigningCertV2, Values: [][]byte{ess}}},
		NoCertificates:   !req.CertReq,
	}
	if req.CertReq {
		opts.Chain = a.Chain
	}
	return cms.Sign(ctx, content, a.Cert, a.Key, opts)
}

// signingCertV2 encodes the ESS signing-certificate-v2 value for cert: the
// SHA-256 hash (the default, so the algorithm is left out) and IssuerSerial.
func signingCertV2(cert *smx509.Certificate) ([]byte, error) {
	h := sha256.Sum256(cert.Raw)
	gn, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: cert.RawIssuer})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(signingCertificateV2{Certs: []essCertIDv2{{
		CertHash: h[:],
		IssuerSerial: issuerSerial{
			Issuer: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: gn},
			Serial: cert.SerialNumber,
		},
	}}})
}

// reject encodes a rejection.
func reject(r rejection) ([]byte, error) {
	return asn1.Marshal(timeStampResp{Status: pkiStatusInfo{
		Status:       statusRejection,
		StatusString: []asn1.RawValue{{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte(r.text)}},
		FailInfo:     r.info.bit(),
	}})
}

// readyText is the statusString for a Ready error: the user message of an
// *ihos.Error (without its code), the error text otherwise.
func readyText(err error) string {
	var e *ihos.Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return err.Error()
}

// hashSize returns the digest size of a supported imprint algorithm.
func hashSize(oid asn1.ObjectIdentifier) (int, bool) {
	switch {
	case oid.Equal(OIDSHA256), oid.Equal(OIDSM3):
		return 32, true
	case oid.Equal(OIDSHA384):
		return 48, true
	case oid.Equal(OIDSHA512):
		return 64, true
	}
	return 0, false
}

// Handler serves RFC 3161 over HTTP: POST application/timestamp-query,
// answered with application/timestamp-reply.
func (a *Authority) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "只接受 POST 请求", http.StatusMethodNotAllowed)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/timestamp-query" {
			http.Error(w, "Content-Type 应为 application/timestamp-query", http.StatusUnsupportedMediaType)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestSize))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "请求过大", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "无法读取请求", http.StatusBadRequest)
			return
		}
		resp, err := a.Respond(r.Context(), body)
		if err != nil {
			http.Error(w, "请求已取消", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/timestamp-reply")
		_, _ = w.Write(resp)
	})
}
