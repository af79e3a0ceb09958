package svs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs"
	"ihos/certs/cms"
	"ihos/certs/tsa"
	"ihos/internal/web"
)

// Routes registers the /api/svs routes on mux.
func (s *Server) Routes(mux *http.ServeMux) {
	mux.Handle("POST /api/svs/sign", s.api(s.handleSign))
	mux.Handle("POST /api/svs/verify", s.api(s.handleVerify))
	mux.Handle("POST /api/svs/sign-message", s.api(s.handleSignMessage))
	mux.Handle("POST /api/svs/verify-message", s.api(s.handleVerifyMessage))
	mux.Handle("POST /api/svs/cert/parse", s.api(s.handleCertParse))
	mux.Handle("POST /api/svs/cert/validate", s.api(s.handleCertValidate))
	mux.Handle("GET /api/svs/cert", s.api(s.handleExportCert))
	mux.Handle("GET /api/svs/certs", s.api(s.handleSearchCerts))
	mux.Handle("GET /api/svs/certs/{serial}", s.api(s.handleStoredCert))
	mux.Handle("POST /api/svs/timestamp", s.api(s.handleTimestamp))
	mux.Handle("POST /api/svs/sign-xml", s.api(s.handleSignXML))
	mux.Handle("POST /api/svs/verify-xml", s.api(s.handleVerifyXML))
}

type apiHandler func(w http.ResponseWriter, r *http.Request, app *App) error

// api checks that the service is on and the caller's token, then runs h.
func (s *Server) api(h apiHandler) http.Handler {
	return web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if !s.started.Load() {
			return ihos.Errorf(ihos.EUnavailable, "签名验签服务尚未启动")
		}
		if !s.enabled.Load() {
			return ihos.Errorf(ihos.EUnavailable, "签名验签服务已停用")
		}
		token, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="svs"`)
			return ihos.Errorf(ihos.EUnauthorized, "缺少访问令牌（请求头 Authorization: Bearer <令牌>）")
		}
		app, ok := s.authenticate(token)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="svs", error="invalid_token"`)
			return ihos.Errorf(ihos.EUnauthorized, "访问令牌无效，或该应用已停用")
		}
		return h(w, r, app)
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	t := strings.TrimSpace(h[7:])
	return t, t != ""
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodeBody decodes a JSON object of at most MaxBody bytes into v.
func decodeBody(r *http.Request, v any) error {
	tooLarge := ihos.Errorf(ihos.EInvalid, "请求内容过大（不能超过 %d MB）", MaxBody>>20)
	if r.Body == nil {
		return ihos.Errorf(ihos.EInvalid, "请求内容为空")
	}
	if r.ContentLength > MaxBody {
		return tooLarge
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			buf.Reset()
			bodyPool.Put(buf)
		}
	}()
	buf.Reset()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, MaxBody+1)); err != nil {
		return ihos.Errorf(ihos.EInvalid, "读取请求内容失败")
	}
	if buf.Len() > MaxBody {
		return tooLarge
	}
	b := bytes.TrimSpace(buf.Bytes())
	if len(b) == 0 {
		return ihos.Errorf(ihos.EInvalid, "请求内容为空")
	}
	if b[0] != '{' {
		return ihos.Errorf(ihos.EInvalid, "请求内容必须是 JSON 对象")
	}
	if err := json.Unmarshal(b, v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return &ihos.Error{Code: ihos.EInvalid, Message: "输入有误，请检查标出的字段", Fields: map[string]string{ute.Field: "类型不正确"}}
		}
		return ihos.Errorf(ihos.EInvalid, "请求内容不是合法的 JSON")
	}
	return nil
}

// decodeB64 decodes standard Base64 (padding optional; URL-safe accepted).
func decodeB64(field, s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, ihos.Errorf(ihos.EInvalid, "%s 不是有效的 Base64", field)
}

func required(field, what string) error {
	return ihos.Invalid(map[string]string{field: "请提供" + what})
}

func checkLevel(level int) error {
	if level < 0 || level > 2 {
		return ihos.Invalid(map[string]string{"level": "验证级别应为 0（仅签名）、1（+证书链和有效期）或 2（+吊销状态）"})
	}
	return nil
}

// Signer describes a signer's certificate in answers.
type Signer struct {
	Subject    string    `json:"subject"`
	CommonName string    `json:"common_name"`
	Serial     string    `json:"serial"`
	Issuer     string    `json:"issuer"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
}

func signerOf(c *smx509.Certificate) *Signer {
	if c == nil {
		return nil
	}
	return &Signer{Subject: c.Subject.String(), CommonName: c.Subject.CommonName, Serial: serialText(c), Issuer: c.Issuer.String(),
		NotBefore: c.NotBefore.In(ihos.Shanghai), NotAfter: c.NotAfter.In(ihos.Shanghai)}
}

// signingKey returns the application's key, refusing one whose certificate is
// outside its validity: signatures made with it would not verify.
func (s *Server) signingKey(ctx context.Context, app *App) (*Key, error) {
	key, err := s.Keys.Key(ctx, app.KeyName)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if now.After(key.Cert.NotAfter) || now.Before(key.Cert.NotBefore) {
		return nil, ihos.Errorf(ihos.EUnavailable, "签名密钥 %s 的证书不在有效期内（%s 至 %s），请联系信息科更换",
			key.Name, key.Cert.NotBefore.In(ihos.Shanghai).Format("2006-01-02"), key.Cert.NotAfter.In(ihos.Shanghai).Format("2006-01-02"))
	}
	return key, nil
}

// signRequest is the common start of the sign handlers: the service must be
// ready (the clock), the body decodes into in, and the Base64 data that
// dataOf finds in it is decoded; the application's signing key is looked up.
func (s *Server) signRequest(r *http.Request, app *App, in any, dataOf func() *string) ([]byte, *Key, error) {
	if err := s.ready(); err != nil {
		return nil, nil, err
	}
	if err := decodeBody(r, in); err != nil {
		return nil, nil, err
	}
	b64 := dataOf()
	if b64 == nil {
		return nil, nil, required("data", "待签名的数据（Base64）")
	}
	data, err := decodeB64("data", *b64)
	if err != nil {
		return nil, nil, err
	}
	key, err := s.signingKey(r.Context(), app)
	if err != nil {
		return nil, nil, err
	}
	return data, key, nil
}

type signResponse struct {
	Signature string `json:"signature"`
	Cert      string `json:"cert"`
}

func (s *Server) handleSign(w http.ResponseWriter, r *http.Request, app *App) error {
	var in struct {
		Data *string `json:"data"`
	}
	data, key, err := s.signRequest(r, app, &in, func() *string { return in.Data })
	if err != nil {
		return err
	}
	ctx := r.Context()
	sig, err := certs.SignData(key.Signer, data)
	if err != nil {
		if lerr := s.record(ctx, app, OpSign, key.Name, data, false, ihos.ErrorMessage(err), serialText(key.Cert), web.ClientIP(r)); lerr != nil {
			return lerr
		}
		return err
	}
	if err := s.record(ctx, app, OpSign, key.Name, data, true, "", serialText(key.Cert), web.ClientIP(r)); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, signResponse{Signature: base64.StdEncoding.EncodeToString(sig), Cert: key.CertPEM})
	return nil
}

// VerifyResult is the answer of verify, verify-message and cert/validate.
type VerifyResult struct {
	Valid  bool    `json:"valid"`
	Reason string  `json:"reason"`
	Signer *Signer `json:"signer,omitempty"`
}

func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request, app *App) error {
	var in struct {
		Data      *string `json:"data"`
		Signature *string `json:"signature"`
		Cert      string  `json:"cert"`
		Serial    string  `json:"serial"` // a certificate of the store, instead of cert
		Level     int     `json:"level"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if in.Data == nil {
		return required("data", "原文数据（Base64）")
	}
	if in.Signature == nil || *in.Signature == "" {
		return required("signature", "签名值（Base64）")
	}
	if in.Cert == "" && in.Serial == "" {
		return required("cert", "签名者证书（PEM）或证书序列号（serial）")
	}
	if err := checkLevel(in.Level); err != nil {
		return err
	}
	data, err := decodeB64("data", *in.Data)
	if err != nil {
		return err
	}
	sig, err := decodeB64("signature", *in.Signature)
	if err != nil {
		return err
	}
	ctx := r.Context()
	res := s.verifyData(ctx, app, data, sig, in.Cert, in.Serial, in.Level)
	serial := ""
	if res.Signer != nil {
		serial = res.Signer.Serial
	}
	if err := s.record(ctx, app, OpVerify, "", data, res.Valid, res.Reason, serial, web.ClientIP(r)); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) verifyData(ctx context.Context, app *App, data, sig []byte, certText, serial string, level int) VerifyResult {
	var cert *smx509.Certificate
	var err error
	if certText != "" {
		cert, err = s.certs.parse(certText)
		if err != nil {
			return VerifyResult{Reason: "证书无法解析：" + ihos.ErrorMessage(err)}
		}
	} else {
		cert, err = s.storedBySerial(ctx, serial)
		if err != nil {
			return VerifyResult{Reason: ihos.ErrorMessage(err)}
		}
	}
	res := VerifyResult{Signer: signerOf(cert)}
	if err := certs.VerifyData(cert.PublicKey, data, sig); err != nil {
		res.Reason = ihos.ErrorMessage(err)
		return res
	}
	if level >= 1 {
		if reason := signingUsage(cert); reason != "" {
			res.Reason = reason
			return res
		}
		if ok, reason := s.verifyChain(ctx, app, cert, nil, level, s.now()); !ok {
			res.Reason = reason
			return res
		}
	}
	res.Valid = true
	return res
}

type signMessageResponse struct {
	P7        string `json:"p7"`
	Timestamp bool   `json:"timestamp"`
}

func (s *Server) handleSignMessage(w http.ResponseWriter, r *http.Request, app *App) error {
	var in struct {
		Data     *string `json:"data"`
		Detached bool    `json:"detached"`
		Chain    bool    `json:"chain"` // also carry the CA certificate
	}
	data, key, err := s.signRequest(r, app, &in, func() *string { return in.Data })
	if err != nil {
		return err
	}
	ctx := r.Context()
	opts := cms.SignOptions{Detached: in.Detached, Profile: cms.GM}
	if root := s.CA.Certificate(); in.Chain && bytes.Equal(key.Cert.RawIssuer, root.RawSubject) {
		opts.Chain = []*smx509.Certificate{root}
	}
	if app.Timestamp {
		if s.TSA == nil {
			return ihos.Errorf(ihos.EUnavailable, "应用策略要求加盖时间戳，但本机时间戳服务未启用")
		}
		opts.Timestamp = func(ctx context.Context, signature []byte) ([]byte, error) {
			token, err := s.TSA.Stamp(ctx, signature)
			if err != nil {
				return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "时间戳服务暂时无法签发时间戳：" + ihos.ErrorMessage(err), Err: err}
			}
			return token, nil
		}
	}
	p7, err := cms.Sign(ctx, data, key.Cert, key.Signer, opts)
	if err != nil {
		err = wrapInternal(err)
		if lerr := s.record(ctx, app, OpSignMessage, key.Name, data, false, ihos.ErrorMessage(err), serialText(key.Cert), web.ClientIP(r)); lerr != nil {
			return lerr
		}
		return err
	}
	if err := s.record(ctx, app, OpSignMessage, key.Name, data, true, "", serialText(key.Cert), web.ClientIP(r)); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, signMessageResponse{P7: base64.StdEncoding.EncodeToString(p7), Timestamp: opts.Timestamp != nil})
	return nil
}

// TimestampInfo describes a verified timestamp token in answers.
type TimestampInfo struct {
	Time    time.Time `json:"time"`
	Serial  string    `json:"serial"`
	TSA     string    `json:"tsa"`
	HashAlg string    `json:"hash_alg"`
}

// MessageResult is the answer of verify-message.
type MessageResult struct {
	VerifyResult
	SigningTime *time.Time     `json:"signing_time,omitempty"`
	Timestamp   *TimestampInfo `json:"timestamp,omitempty"`
	Detached    bool           `json:"detached"`
	Content     string         `json:"content,omitempty"` // Base64 of the attached content
}

func (s *Server) handleVerifyMessage(w http.ResponseWriter, r *http.Request, app *App) error {
	var in struct {
		P7    *string `json:"p7"`
		Data  *string `json:"data"`
		Level int     `json:"level"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if in.P7 == nil || *in.P7 == "" {
		return required("p7", "PKCS#7 签名数据（Base64）")
	}
	if err := checkLevel(in.Level); err != nil {
		return err
	}
	p7, err := decodeB64("p7", *in.P7)
	if err != nil {
		return err
	}
	var detached []byte
	if in.Data != nil {
		if detached, err = decodeB64("data", *in.Data); err != nil {
			return err
		}
	}
	ctx := r.Context()
	res, content := s.verifyMessage(ctx, app, p7, detached, in.Level)
	logged := content
	if logged == nil {
		logged = p7
	}
	serial := ""
	if res.Signer != nil {
		serial = res.Signer.Serial
	}
	if err := s.record(ctx, app, OpVerifyMessage, "", logged, res.Valid, res.Reason, serial, web.ClientIP(r)); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) verifyMessage(ctx context.Context, app *App, p7, detached []byte, level int) (MessageResult, []byte) {
	signed, err := cms.Verify(p7, detached)
	if err != nil {
		return MessageResult{VerifyResult: VerifyResult{Reason: ihos.ErrorMessage(err)}}, nil
	}
	res := MessageResult{VerifyResult: VerifyResult{Signer: signerOf(signed.Signer)}, Detached: signed.Detached}
	if !signed.Detached {
		res.Content = base64.StdEncoding.EncodeToString(signed.Content)
	}
	if !signed.SigningTime.IsZero() {
		t := signed.SigningTime.In(ihos.Shanghai)
		res.SigningTime = &t
	}
	at := s.now()
	if len(signed.Timestamp) > 0 {
		info, err := tsa.Verify(signed.Timestamp, signed.Signature, s.timestampRoots(app))
		if err != nil {
			res.Reason = "时间戳无效：" + ihos.ErrorMessage(err)
			return res, signed.Content
		}
		res.Timestamp = &TimestampInfo{Time: info.GenTime.In(ihos.Shanghai), HashAlg: hashName(info.HashAlg.String())}
		if info.Serial != nil {
			res.Timestamp.Serial = info.Serial.Text(16)
		}
		if info.Signer != nil {
			res.Timestamp.TSA = info.Signer.Subject.CommonName
		}
		// A timestamp proves when the signature existed: the certificate
		// must have been valid then, not necessarily now.
		at = info.GenTime
	}
	if level >= 1 {
		if reason := signingUsage(signed.Signer); reason != "" {
			res.Reason = reason
			return res, signed.Content
		}
		if ok, reason := s.verifyChain(ctx, app, signed.Signer, signed.Certificates, level, at); !ok {
			res.Reason = reason
			return res, signed.Content
		}
	}
	res.Valid = true
	return res, signed.Content
}

func hashName(oid string) string {
	switch oid {
	case cms.OIDSM3.String():
		return "SM3"
	case cms.OIDSHA256.String():
		return "SHA-256"
	case cms.OIDSHA384.String():
		return "SHA-384"
	case cms.OIDSHA512.String():
		return "SHA-512"
	}
	return oid
}

// timestampRoots are the roots a timestamp token may chain to: the hospital
// CA (which issues the TSA certificate) and the roots of the application's
// imported chains.
func (s *Server) timestampRoots(app *App) []*smx509.Certificate {
	roots := []*smx509.Certificate{s.CA.Certificate()}
	if set := s.trust.Load(); set != nil {
		for _, name := range app.TrustChains {
			if ch := set.chains[name]; ch != nil {
				roots = append(roots, ch.roots...)
			}
		}
	}
	return roots
}

// CertInfo is the answer of cert/parse.
type CertInfo struct {
	Subject               string    `json:"subject"`
	CommonName            string    `json:"common_name"`
	Issuer                string    `json:"issuer"`
	Serial                string    `json:"serial"`
	Version               int       `json:"version"`
	NotBefore             time.Time `json:"not_before"`
	NotAfter              time.Time `json:"not_after"`
	Expired               bool      `json:"expired"`
	SignatureAlgorithm    string    `json:"signature_algorithm"`
	KeyAlgorithm          string    `json:"key_algorithm"`
	KeyBits               int       `json:"key_bits"`
	KeyUsage              []string  `json:"key_usage"`
	KeyUsageText          []string  `json:"key_usage_text"`
	ExtKeyUsage           []string  `json:"ext_key_usage"`
	IsCA                  bool      `json:"is_ca"`
	CRLDistributionPoints []string  `json:"crl_distribution_points"`
	OCSPServers           []string  `json:"ocsp_servers"`
	IssuingCertificateURL []string  `json:"issuing_certificate_urls"`
	DNSNames              []string  `json:"dns_names,omitempty"`
	Emails                []string  `json:"emails,omitempty"`
	IPAddresses           []string  `json:"ip_addresses,omitempty"`
	SubjectKeyID          string    `json:"subject_key_id,omitempty"`
	AuthorityKeyID        string    `json:"authority_key_id,omitempty"`
	FingerprintSM3        string    `json:"fingerprint_sm3"`
	FingerprintSHA256     string    `json:"fingerprint_sha256"`
}

var keyUsageNames = []struct {
	bit        smx509.KeyUsage
	name, text string
}{
	{smx509.KeyUsageDigitalSignature, "digitalSignature", "数字签名"},
	{smx509.KeyUsageContentCommitment, "nonRepudiation", "不可否认"},
	{smx509.KeyUsageKeyEncipherment, "keyEncipherment", "密钥加密"},
	{smx509.KeyUsageDataEncipherment, "dataEncipherment", "数据加密"},
	{smx509.KeyUsageKeyAgreement, "keyAgreement", "密钥协商"},
	{smx509.KeyUsageCertSign, "keyCertSign", "签发证书"},
	{smx509.KeyUsageCRLSign, "cRLSign", "签发 CRL"},
	{smx509.KeyUsageEncipherOnly, "encipherOnly", "仅加密"},
	{smx509.KeyUsageDecipherOnly, "decipherOnly", "仅解密"},
}

var extKeyUsageNames = map[smx509.ExtKeyUsage]string{
	smx509.ExtKeyUsageAny:             "any",
	smx509.ExtKeyUsageServerAuth:      "serverAuth",
	smx509.ExtKeyUsageClientAuth:      "clientAuth",
	smx509.ExtKeyUsageCodeSigning:     "codeSigning",
	smx509.ExtKeyUsageEmailProtection: "emailProtection",
	smx509.ExtKeyUsageTimeStamping:    "timeStamping",
	smx509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
}

func keyAlgorithm(pub any) (string, int) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == sm2.P256() {
			return "SM2", 256
		}
		return "ECDSA " + k.Curve.Params().Name, k.Curve.Params().BitSize
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case ed25519.PublicKey:
		return "Ed25519", 256
	}
	return fmt.Sprintf("%T", pub), 0
}

func certInfo(c *smx509.Certificate, now time.Time) CertInfo {
	alg, bits := keyAlgorithm(c.PublicKey)
	sha := sha256.Sum256(c.Raw)
	ci := CertInfo{Subject: c.Subject.String(), CommonName: c.Subject.CommonName, Issuer: c.Issuer.String(), Serial: serialText(c),
		Version: c.Version, NotBefore: c.NotBefore.In(ihos.Shanghai), NotAfter: c.NotAfter.In(ihos.Shanghai), Expired: now.After(c.NotAfter),
		SignatureAlgorithm: c.SignatureAlgorithm.String(), KeyAlgorithm: alg, KeyBits: bits, IsCA: c.BasicConstraintsValid && c.IsCA,
		KeyUsage: []string{}, KeyUsageText: []string{}, ExtKeyUsage: []string{},
		CRLDistributionPoints: nonNil(c.CRLDistributionPoints), OCSPServers: nonNil(c.OCSPServer), IssuingCertificateURL: nonNil(c.IssuingCertificateURL),
		DNSNames: c.DNSNames, Emails: c.EmailAddresses, FingerprintSM3: fingerprint(c), FingerprintSHA256: hex.EncodeToString(sha[:])}
	for _, ku := range keyUsageNames {
		if c.KeyUsage&ku.bit != 0 {
			ci.KeyUsage = append(ci.KeyUsage, ku.name)
			ci.KeyUsageText = append(ci.KeyUsageText, ku.text)
		}
	}
	for _, e := range c.ExtKeyUsage {
		if n, ok := extKeyUsageNames[e]; ok {
			ci.ExtKeyUsage = append(ci.ExtKeyUsage, n)
		} else {
			ci.ExtKeyUsage = append(ci.ExtKeyUsage, strconv.Itoa(int(e)))
		}
	}
	for _, o := range c.UnknownExtKeyUsage {
		ci.ExtKeyUsage = append(ci.ExtKeyUsage, o.String())
	}
	for _, ip := range c.IPAddresses {
		ci.IPAddresses = append(ci.IPAddresses, ip.String())
	}
	if len(c.SubjectKeyId) > 0 {
		ci.SubjectKeyID = hex.EncodeToString(c.SubjectKeyId)
	}
	if len(c.AuthorityKeyId) > 0 {
		ci.AuthorityKeyID = hex.EncodeToString(c.AuthorityKeyId)
	}
	return ci
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) handleCertParse(w http.ResponseWriter, r *http.Request, app *App) error {
	var in struct {
		Cert string `json:"cert"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Cert) == "" {
		return required("cert", "证书（PEM）")
	}
	c, err := s.certs.parse(in.Cert)
	if err != nil {
		return ihos.Invalid(map[string]string{"cert": "证书无法解析：" + ihos.ErrorMessage(err)})
	}
	web.WriteJSON(w, http.StatusOK, certInfo(c, s.now()))
	return nil
}

func (s *Server) handleCertValidate(w http.ResponseWriter, r *http.Request, app *App) error {
	var in struct {
		Cert  string `json:"cert"`
		Level *int   `json:"level"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Cert) == "" {
		return required("cert", "证书（PEM）")
	}
	level := 1
	if in.Level != nil {
		level = *in.Level
	}
	if err := checkLevel(level); err != nil {
		return err
	}
	c, err := s.certs.parse(in.Cert)
	if err != nil {
		web.WriteJSON(w, http.StatusOK, VerifyResult{Reason: "证书无法解析：" + ihos.ErrorMessage(err)})
		return nil
	}
	res := VerifyResult{Signer: signerOf(c)}
	res.Valid, res.Reason = s.verifyChain(r.Context(), app, c, nil, level, s.now())
	web.WriteJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) handleExportCert(w http.ResponseWriter, r *http.Request, app *App) error {
	key, err := s.Keys.Key(r.Context(), app.KeyName)
	if err != nil {
		return err
	}
	root := s.CA.Certificate()
	if r.URL.Query().Get("format") == "pem" {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", `attachment; filename="svs-`+key.Name+`.pem"`)
		io.WriteString(w, key.CertPEM)
		return nil
	}
	out := struct {
		Cert     string    `json:"cert"`
		CA       string    `json:"ca,omitempty"`
		Key      string    `json:"key_name"`
		Serial   string    `json:"serial"`
		Subject  string    `json:"subject"`
		NotAfter time.Time `json:"not_after"`
	}{Cert: key.CertPEM, Key: key.Name, Serial: serialText(key.Cert), Subject: key.Cert.Subject.String(), NotAfter: key.Cert.NotAfter.In(ihos.Shanghai)}
	if bytes.Equal(key.Cert.RawIssuer, root.RawSubject) {
		out.CA = certPEM(root)
	}
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleSearchCerts(w http.ResponseWriter, r *http.Request, app *App) error {
	q := r.URL.Query()
	page, size := 1, 20
	var err error
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 || page > 1_000_000 {
			return ihos.Invalid(map[string]string{"page": "页码应为正整数"})
		}
	}
	if v := q.Get("page_size"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > 100 {
			return ihos.Invalid(map[string]string{"page_size": "每页条数应为 1 到 100"})
		}
	}
	list, total, err := s.SearchCerts(r.Context(), q.Get("q"), page, size)
	if err != nil {
		return err
	}
	if list == nil {
		list = []StoredCert{}
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"items": list, "total": total, "page": page, "page_size": size})
	return nil
}

func (s *Server) handleStoredCert(w http.ResponseWriter, r *http.Request, app *App) error {
	c, err := s.StoredCertificate(r.Context(), r.PathValue("serial"))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) handleTimestamp(w http.ResponseWriter, r *http.Request, app *App) error {
	if err := s.ready(); err != nil {
		return err
	}
	if s.TSA == nil {
		return ihos.Errorf(ihos.EUnavailable, "时间戳服务未启用")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/timestamp-query" {
		return ihos.Errorf(ihos.EInvalid, "请求类型应为 application/timestamp-query")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, tsa.MaxRequestSize+1))
	if err != nil {
		return ihos.Errorf(ihos.EInvalid, "读取请求内容失败")
	}
	if len(body) > tsa.MaxRequestSize {
		return ihos.Errorf(ihos.EInvalid, "时间戳请求过大（不能超过 %d KB）", tsa.MaxRequestSize>>10)
	}
	ctx := r.Context()
	resp, err := s.TSA.Respond(ctx, body)
	if err != nil {
		return ihos.Errorf(ihos.EUnavailable, "请求已取消")
	}
	ok, reason := true, ""
	if st, err := tsa.ParseResponse(resp); err != nil || st.Status > 1 {
		ok, reason = false, "时间戳请求被拒绝"
		if err == nil && st.Text != "" {
			reason += "：" + st.Text
		}
	}
	if err := s.record(ctx, app, OpTimestamp, "", body, ok, reason, "", web.ClientIP(r)); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	w.Write(resp)
	return nil
}

// certCache keeps parsed certificates by their text, so a caller verifying
// with the same certificate again and again does not pay for parsing it.
type certCache struct {
	m sync.Map // string → *smx509.Certificate
	n atomic.Int64
}

const (
	certCacheMax   = 4096
	certCacheInput = 16 << 10
)

func (c *certCache) parse(text string) (*smx509.Certificate, error) {
	if v, ok := c.m.Load(text); ok {
		return v.(*smx509.Certificate), nil
	}
	cert, err := certs.ParseCertificate([]byte(text))
	if err != nil {
		return nil, err
	}
	if len(text) <= certCacheInput {
		if c.n.Add(1) > certCacheMax {
			c.m.Clear()
			c.n.Store(0)
		}
		c.m.Store(text, cert)
	}
	return cert, nil
}
