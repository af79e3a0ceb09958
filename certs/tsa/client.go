package tsa

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"strings"
	"time"

	"ihos"
	"ihos/certs/cms"
)

// Errors of the client and of Verify: *ihos.Error values with messages fit to
// show; the errors returned wrap one of them and add details for the log.
var (
	ErrRejected       = &ihos.Error{Code: ihos.EUnavailable, Message: "时间戳服务拒绝了请求"}
	ErrUnreachable    = &ihos.Error{Code: ihos.EUnavailable, Message: "无法连接时间戳服务"}
	ErrBadResponse    = &ihos.Error{Code: ihos.EUnavailable, Message: "时间戳服务的应答无效"}
	ErrBadToken       = &ihos.Error{Code: ihos.EInvalid, Message: "时间戳无效"}
	ErrDataChanged    = &ihos.Error{Code: ihos.EInvalid, Message: "时间戳与数据不符：数据已被修改"}
	ErrUnsupportedAlg = &ihos.Error{Code: ihos.EInvalid, Message: "不支持的时间戳摘要算法"}
	ErrNotTSACert     = &ihos.Error{Code: ihos.EInvalid, Message: "时间戳签名证书不是时间戳服务证书（须有唯一且关键的 timeStamping 扩展密钥用途）"}
	ErrUntrusted      = &ihos.Error{Code: ihos.EInvalid, Message: "时间戳签名证书不受信任"}
	ErrNoRoots        = &ihos.Error{Code: ihos.EInvalid, Message: "未提供受信任的时间戳根证书"}
)

func wrap(base *ihos.Error, format string, args ...any) error {
	return fmt.Errorf("%w（%s）", base, fmt.Sprintf(format, args...))
}

// Digest hashes data with a supported imprint algorithm (OIDSHA256, OIDSHA384,
// OIDSHA512, OIDSM3).
func Digest(hashAlg asn1.ObjectIdentifier, data []byte) ([]byte, error) {
	d, ok := digestFor(hashAlg)
	if !ok {
		return nil, wrap(ErrUnsupportedAlg, "%v", hashAlg)
	}
	return d(data), nil
}

// NewRequest builds a DER TimeStampReq for digest, made with hashAlg
// (OIDSHA256, OIDSM3, OIDSHA384 or OIDSHA512). nonce may be nil; certReq asks
// the TSA to put its certificate into the token.
func NewRequest(digest []byte, hashAlg asn1.ObjectIdentifier, nonce *big.Int, certReq bool) ([]byte, error) {
	size, ok := hashSize(hashAlg)
	if !ok {
		return nil, wrap(ErrUnsupportedAlg, "%v", hashAlg)
	}
	if len(digest) != size {
		return nil, fmt.Errorf("tsa: a %v digest has %d bytes, not %d", hashAlg, size, len(digest))
	}
	if nonce != nil && nonce.Sign() < 0 {
		return nil, errors.New("tsa: the nonce must not be negative")
	}
	mi, err := asn1.Marshal(messageImprint{
		// NULL parameters, as OpenSSL writes them in requests.
		HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: hashAlg, Parameters: asn1.RawValue{Tag: asn1.TagNull}},
		HashedMessage: digest,
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(timeStampReq{Version: 1, MessageImprint: asn1.RawValue{FullBytes: mi}, Nonce: nonce, CertReq: certReq})
}

// Request asks the TSA at url to time-stamp data, hashed with hashAlg (nil
// means SHA-256), with a random nonce and certReq set. It checks the answer:
// status granted, the token's CMS signature, the imprint and the nonce; the
// TSA's chain is checked by Verify, when the token is used. It returns the
// token (DER ContentInfo). client nil means one with a 30 s timeout.
func Request(ctx context.Context, client *http.Client, url string, data []byte, hashAlg asn1.ObjectIdentifier) ([]byte, error) {
	if hashAlg == nil {
		hashAlg = OIDSHA256
	}
	reqDER, digest, nonce, err := request(data, hashAlg)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(reqDER))
	if err != nil {
		return nil, fmt.Errorf("tsa: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/timestamp-query")
	hreq.Header.Set("Accept", "application/timestamp-reply")
	hresp, err := client.Do(hreq)
	if err != nil {
		return nil, wrap(ErrUnreachable, "%v", err)
	}
	defer hresp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(hresp.Body, 1<<20+1))
	if err != nil {
		return nil, wrap(ErrUnreachable, "读取应答：%v", err)
	}
	if hresp.StatusCode != http.StatusOK {
		return nil, wrap(ErrBadResponse, "HTTP %d：%s", hresp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	if len(body) > 1<<20 {
		return nil, wrap(ErrBadResponse, "应答过大")
	}
	if mt, _, err := mime.ParseMediaType(hresp.Header.Get("Content-Type")); err != nil || mt != "application/timestamp-reply" {
		return nil, wrap(ErrBadResponse, "Content-Type %q", hresp.Header.Get("Content-Type"))
	}
	return checkResponse(body, hashAlg, digest, nonce)
}

// Client returns a function for cms.SignOptions.Timestamp that stamps the
// signature value through Request.
func Client(client *http.Client, url string, hashAlg asn1.ObjectIdentifier) func(ctx context.Context, signature []byte) ([]byte, error) {
	return func(ctx context.Context, signature []byte) ([]byte, error) {
		return Request(ctx, client, url, signature, hashAlg)
	}
}

// Stamp time-stamps data in process, as Request does over HTTP, and returns
// the token: SM3 imprints when the TSA key is SM2, SHA-256 otherwise. Its
// method value fits cms.SignOptions.Timestamp.
func (a *Authority) Stamp(ctx context.Context, data []byte) ([]byte, error) {
	hashAlg := OIDSHA256
	if a.Cert != nil && isSM2(a.Cert.PublicKey) {
		hashAlg = OIDSM3
	}
	reqDER, digest, nonce, err := request(data, hashAlg)
	if err != nil {
		return nil, err
	}
	resp, err := a.Respond(ctx, reqDER)
	if err != nil {
		return nil, err
	}
	return checkResponse(resp, hashAlg, digest, nonce)
}

// request makes the time-stamp request for data: the imprint under hashAlg, a
// fresh nonce, and certReq set.
func request(data []byte, hashAlg asn1.ObjectIdentifier) (reqDER, digest []byte, nonce *big.Int, err error) {
	if digest, err = Digest(hashAlg, data); err != nil {
		return nil, nil, nil, err
	}
	if nonce, err = newNonce(); err != nil {
		return nil, nil, nil, err
	}
	reqDER, err = NewRequest(digest, hashAlg, nonce, true)
	return reqDER, digest, nonce, err
}

func newNonce() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, fmt.Errorf("tsa: nonce: %w", err)
	}
	return n, nil
}

// Status is a decoded TimeStampResp.
type Status struct {
	Status   int           // 0 granted, 1 grantedWithMods, 2 rejection, 3 waiting, 4 revocationWarning, 5 revocationNotification
	Text     string        // statusString, joined
	Failures []FailureInfo // failInfo bits
	Token    []byte        // the TimeStampToken, when granted
}

// ParseResponse decodes a DER TimeStampResp without checking the token.
func ParseResponse(der []byte) (*Status, error) {
	var resp timeStampResp
	rest, err := asn1.Unmarshal(der, &resp)
	if err != nil || len(rest) > 0 {
		return nil, wrap(ErrBadResponse, "TimeStampResp 无法解析")
	}
	st := &Status{Status: resp.Status.Status, Failures: failures(resp.Status.FailInfo)}
	var texts []string
	for _, v := range resp.Status.StatusString {
		if v.Class == asn1.ClassUniversal && v.Tag == asn1.TagUTF8String {
			texts = append(texts, string(v.Bytes))
		}
	}
	st.Text = strings.Join(texts, "；")
	if resp.TimeStampToken.FullBytes != nil {
		st.Token = resp.TimeStampToken.FullBytes
	}
	return st, nil
}

// checkResponse checks a TSA's answer to our request and returns its token.
func checkResponse(der []byte, hashAlg asn1.ObjectIdentifier, digest []byte, nonce *big.Int) ([]byte, error) {
	st, err := ParseResponse(der)
	if err != nil {
		return nil, err
	}
	if st.Status != statusGranted && st.Status != statusGrantedWithMods {
		var names []string
		for _, f := range st.Failures {
			names = append(names, f.String())
		}
		return nil, wrap(ErrRejected, "状态 %d，%s，%s", st.Status, st.Text, strings.Join(names, ","))
	}
	if st.Token == nil {
		return nil, wrap(ErrBadResponse, "应答中没有时间戳")
	}
	signed, err := cms.Verify(st.Token, nil)
	if err != nil {
		return nil, wrap(ErrBadResponse, "%v", err)
	}
	info, err := parseTSTInfo(signed)
	if err != nil {
		return nil, wrap(ErrBadResponse, "%v", err)
	}
	if !info.HashAlg.Equal(hashAlg) || !bytes.Equal(info.HashedMessage, digest) {
		return nil, wrap(ErrBadResponse, "时间戳的消息摘要与请求不一致")
	}
	if (nonce == nil) != (info.Nonce == nil) || (nonce != nil && nonce.Cmp(info.Nonce) != 0) {
		return nil, wrap(ErrBadResponse, "时间戳的随机数（nonce）与请求不一致")
	}
	return st.Token, nil
}
