package ca

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"ihos"
)

// Verification levels of the signing server (GM/T 0029 verifyLevel). Level 0,
// the signature alone, is the caller's business.
const (
	LevelChain      = 1 // chain to a trusted root, every certificate within its validity
	LevelRevocation = 2 // LevelChain, and no certificate of the chain revoked (CRL or OCSP)
)

const (
	fetchTimeout = 5 * time.Second
	maxCRLSize   = 16 << 20
)

// VerifyOptions configures Verify.
type VerifyOptions struct {
	Roots         []*smx509.Certificate // trust anchors; none means nothing is trusted
	Intermediates []*smx509.Certificate
	At            time.Time // the time the chain must be valid at; zero = now
	Level         int       // LevelChain or LevelRevocation
	// CRLs (DER or PEM) to check revocation with at level 2. For a certificate
	// whose issuer none of them is from, the CRL named in the certificate's CRL
	// distribution points is fetched (HTTP, 5 s timeout), unless OCSP answered.
	CRLs [][]byte
	// OCSP asks, at level 2, the responder named in the certificate's
	// authority information access (or OCSPURL) first; CRLs are the fallback
	// when it cannot answer.
	OCSP       bool
	OCSPURL    string
	HTTPClient *http.Client // nil: a client with a 5 s timeout
}

// Result is the outcome of Verify. Reason, in Chinese, says why a certificate
// is not valid (empty when it is).
type Result struct {
	Valid  bool
	Reason string
	Chain  []*smx509.Certificate // leaf first, root last, when a chain was built
}

// Verify checks cert at o.Level: 1, that it chains to one of o.Roots (through
// o.Intermediates) and that every certificate of the chain is valid at o.At; 2,
// also that no certificate of the chain but the root is revoked. Revocation is
// the status now (CRLs must be fresh now), whatever o.At.
func Verify(ctx context.Context, cert *smx509.Certificate, o VerifyOptions) Result {
	if cert == nil {
		return Result{Reason: "缺少证书"}
	}
	if o.Level != LevelChain && o.Level != LevelRevocation {
		return Result{Reason: fmt.Sprintf("验证级别 %d 无效（应为 1 或 2）", o.Level)}
	}
	if len(o.Roots) == 0 {
		return Result{Reason: "证书签发者不受信任（未配置信任的根证书）"}
	}
	at := o.At
	if at.IsZero() {
		at = time.Now()
	}
	if at.After(cert.NotAfter) {
		return Result{Reason: "证书已过期（有效期至 " + showTime(cert.NotAfter) + "）"}
	}
	if at.Before(cert.NotBefore) {
		return Result{Reason: "证书尚未生效（生效时间 " + showTime(cert.NotBefore) + "）"}
	}
	roots, inter := smx509.NewCertPool(), smx509.NewCertPool()
	for _, r := range o.Roots {
		if r != nil {
			roots.AddCert(r)
		}
	}
	for _, c := range o.Intermediates {
		if c != nil {
			inter.AddCert(c)
		}
	}
	chains, err := cert.Verify(smx509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []smx509.ExtKeyUsage{smx509.ExtKeyUsageAny},
	})
	if err != nil {
		return Result{Reason: chainReason(err)}
	}
	chain := chains[0]
	res := Result{Valid: true, Chain: chain}
	if o.Level < LevelRevocation {
		return res
	}
	for i := 0; i+1 < len(chain); i++ {
		if reason := checkRevocation(ctx, chain[i], chain[i+1], o, i == 0); reason != "" {
			return Result{Reason: reason, Chain: chain}
		}
	}
	return res
}

func chainReason(err error) string {
	var unknown smx509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return "证书签发者不受信任"
	}
	var inv smx509.CertificateInvalidError
	if errors.As(err, &inv) {
		switch inv.Reason {
		case smx509.Expired:
			return "签发者证书已过期或尚未生效"
		case smx509.NotAuthorizedToSign:
			return "证书签发者不受信任（签发者不是 CA 证书）"
		case smx509.IncompatibleUsage, smx509.CANotAuthorizedForExtKeyUsage:
			return "证书用途与签发者的授权不符"
		}
		return "证书链无效"
	}
	var sig smx509.InsecureAlgorithmError
	if errors.As(err, &sig) {
		return "证书使用了不安全的签名算法"
	}
	if errors.As(err, new(smx509.UnhandledCriticalExtension)) {
		return "证书含有无法识别的关键扩展"
	}
	return "证书链无效"
}

// checkRevocation returns why cert (issued by issuer) must be rejected, or "".
func checkRevocation(ctx context.Context, cert, issuer *smx509.Certificate, o VerifyOptions, leaf bool) string {
	who := "证书"
	if !leaf {
		who = "签发者证书"
	}
	now := time.Now()
	var notes []string
	answered := false
	if o.OCSP {
		u := ""
		if leaf {
			u = o.OCSPURL
		}
		if u == "" && len(cert.OCSPServer) > 0 {
			u = cert.OCSPServer[0]
		}
		if u == "" {
			notes = append(notes, "证书未指明 OCSP 服务地址")
		} else {
			a, err := QueryOCSP(ctx, o.HTTPClient, u, cert, issuer)
			switch {
			case err != nil:
				notes = append(notes, "OCSP 服务无法访问或响应无效")
			case a.Status == StatusRevoked:
				return who + "已被吊销（OCSP，原因：" + ReasonText(a.Reason) + "，时间：" + showTime(a.RevokedAt) + "）"
			case a.Status == StatusGood:
				answered = true
			default:
				notes = append(notes, "OCSP 服务不认识该证书")
			}
		}
	}
	// Given CRLs from this issuer are always consulted.
	var crls [][]byte
	for _, b := range o.CRLs {
		if der := crlDER(b); der != nil && crlFrom(der, issuer) {
			crls = append(crls, der)
		}
	}
	if len(crls) == 0 && !answered {
		fetched, note := fetchCRLs(ctx, o.HTTPClient, cert)
		crls = fetched
		if note != "" {
			notes = append(notes, note)
		}
	}
	for _, der := range crls {
		revoked, at, reason, err := CheckCRL(der, cert, issuer, now)
		switch {
		case err == nil && revoked:
			return who + "已被吊销（CRL，原因：" + ReasonText(reason) + "，时间：" + showTime(at) + "）"
		case err == nil:
			answered = true
		case errors.Is(err, ErrCRLStale):
			notes = append(notes, "CRL 已过期")
		case errors.Is(err, ErrCRLSignature):
			notes = append(notes, "CRL 签名无效")
		case errors.Is(err, ErrCRLNotYet):
			notes = append(notes, "CRL 尚未生效")
		default:
			notes = append(notes, "CRL 无效")
		}
	}
	if answered {
		return ""
	}
	if len(notes) == 0 {
		notes = append(notes, "没有可用的 CRL 或 OCSP")
	}
	what := "吊销信息"
	if !leaf {
		what = "签发者证书的吊销信息"
	}
	return "无法获取" + what + "（" + strings.Join(dedup(notes), "；") + "）"
}

func dedup(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// crlDER returns b as DER: PEM ("X509 CRL") is decoded, anything else is taken as DER.
func crlDER(b []byte) []byte {
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type == "X509 CRL" {
			return blk.Bytes
		}
		return nil
	}
	return b
}

// crlFrom tells, cheaply, whether a CRL names issuer as its issuer.
func crlFrom(der []byte, issuer *smx509.Certificate) bool {
	rl, err := smx509.ParseRevocationList(der)
	return err == nil && bytes.Equal(rl.RawIssuer, issuer.RawSubject)
}

// fetchCRLs downloads the CRLs named in cert's distribution points (http and
// https only). Nothing is cached: a caller verifying often passes CRLs itself.
func fetchCRLs(ctx context.Context, client *http.Client, cert *smx509.Certificate) ([][]byte, string) {
	if len(cert.CRLDistributionPoints) == 0 {
		return nil, "证书未指明 CRL 发布点"
	}
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	var out [][]byte
	note := ""
	for _, u := range cert.CRLDistributionPoints {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") {
			continue
		}
		b, err := fetch(ctx, client, u)
		if err != nil {
			note = "CRL 发布点无法访问"
			continue
		}
		if der := crlDER(b); der != nil {
			out = append(out, der)
		}
	}
	if len(out) == 0 && note == "" {
		note = "证书未指明可用的 CRL 发布点"
	}
	return out, note
}

func fetch(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCRLSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCRLSize {
		return nil, fmt.Errorf("GET %s: CRL too large", u)
	}
	return b, nil
}

func showTime(t time.Time) string {
	if t.IsZero() {
		return "未知"
	}
	return t.In(ihos.Shanghai).Format("2006-01-02 15:04:05")
}
