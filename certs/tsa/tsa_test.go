package tsa_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs/cms"
	"ihos/certs/cms/cmstest"
	"ihos/certs/tsa"
)

var ctx = context.Background()

type fixture struct {
	ca   *cmstest.CA
	tsa  cmstest.Issued
	auth *tsa.Authority
}

var (
	fxMu sync.Mutex
	fxs  = map[cmstest.Kind]*fixture{}
)

func fx(tb testing.TB, k cmstest.Kind) *fixture {
	tb.Helper()
	fxMu.Lock()
	defer fxMu.Unlock()
	if f := fxs[k]; f != nil {
		return f
	}
	ca := cmstest.NewCA(tb, k, "测试根 CA "+string(k))
	is := ca.TSA(tb, k, "测试时间戳服务 "+string(k))
	f := &fixture{ca: ca, tsa: is, auth: &tsa.Authority{Cert: is.Cert, Key: is.Key}}
	fxs[k] = f
	return f
}

func (f *fixture) roots() []*smx509.Certificate { return []*smx509.Certificate{f.ca.Cert} }

func sha256Of(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
func sm3Of(b []byte) []byte    { s := sm3.Sum(b); return s[:] }

func mustRequest(t testing.TB, digest []byte, alg asn1.ObjectIdentifier, nonce *big.Int, certReq bool) []byte {
	t.Helper()
	req, err := tsa.NewRequest(digest, alg, nonce, certReq)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func respond(t testing.TB, a *tsa.Authority, req []byte) *tsa.Status {
	t.Helper()
	resp, err := a.Respond(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tsa.ParseResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestGrantedAndVerified(t *testing.T) {
	data := []byte(`{"病历号":"MZ20260301-0042","诊断":"急性上呼吸道感染"}`)
	for _, k := range cmstest.Kinds {
		f := fx(t, k)
		for _, alg := range []asn1.ObjectIdentifier{tsa.OIDSHA256, tsa.OIDSM3, tsa.OIDSHA384, tsa.OIDSHA512} {
			for _, certReq := range []bool{true, false} {
				digest, err := tsa.Digest(alg, data)
				if err != nil {
					t.Fatal(err)
				}
				nonce := big.NewInt(0x1234567890)
				before := time.Now().Add(-time.Second)
				st := respond(t, f.auth, mustRequest(t, digest, alg, nonce, certReq))
				if st.Status != 0 || st.Token == nil {
					t.Fatalf("%s %v: status %d %q %v", k, alg, st.Status, st.Text, st.Failures)
				}
				roots := f.roots()
				if !certReq {
					// The token carries no certificate: the verifier supplies it.
					if _, err := tsa.Verify(st.Token, data, roots); err == nil {
						t.Fatal("verified without the TSA certificate")
					}
					roots = append(roots, f.tsa.Cert)
				}
				info, err := tsa.Verify(st.Token, data, roots)
				if err != nil {
					t.Fatalf("%s %v certReq=%v: %v", k, alg, certReq, err)
				}
				if !info.HashAlg.Equal(alg) || !bytes.Equal(info.HashedMessage, digest) || info.Nonce.Cmp(nonce) != 0 ||
					!info.Policy.Equal(tsa.DefaultPolicy) || info.Accuracy != time.Second || !info.Signer.Equal(f.tsa.Cert) {
					t.Fatalf("info %+v", info)
				}
				if info.GenTime.Before(before) || info.GenTime.After(time.Now()) || info.GenTime.Location() != time.UTC {
					t.Fatalf("genTime %v", info.GenTime)
				}
				if _, err := tsa.Verify(st.Token, append(bytes.Clone(data), ' '), roots); !errors.Is(err, tsa.ErrDataChanged) {
					t.Fatalf("changed data: %v", err)
				}
				// The token is a CMS SignedData with TSTInfo and the ESS attribute.
				s, err := cms.VerifyWith(st.Token, nil, cms.VerifyOptions{Certificates: roots})
				if err != nil {
					t.Fatal(err)
				}
				if !s.ContentType.Equal(tsa.OIDTSTInfo) || s.Profile != cms.CMS || cms.First(s.SignedAttributes, tsa.OIDSigningCertV2) == nil {
					t.Fatalf("token content type %v profile %v", s.ContentType, s.Profile)
				}
				if certReq != (len(s.Certificates) > 0) {
					t.Fatalf("certReq %v but %d certificates", certReq, len(s.Certificates))
				}
			}
		}
	}
}

func TestSerialsUniqueAndIncreasing(t *testing.T) {
	f := fx(t, cmstest.SM2)
	fixed := time.Now().UTC().Truncate(time.Second)
	a := &tsa.Authority{Cert: f.tsa.Cert, Key: f.tsa.Key, Clock: func() time.Time { return fixed }}
	req := mustRequest(t, sm3Of([]byte("x")), tsa.OIDSM3, nil, true)
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev *big.Int
			for i := 0; i < 25; i++ {
				st := respond(t, a, req)
				info, err := tsa.Verify(st.Token, []byte("x"), f.roots())
				if err != nil {
					t.Error(err)
					return
				}
				if !info.GenTime.Equal(fixed) {
					t.Errorf("genTime %v", info.GenTime)
				}
				if prev != nil && info.Serial.Cmp(prev) <= 0 {
					t.Errorf("serial %v after %v", info.Serial, prev)
				}
				prev = info.Serial
				mu.Lock()
				if seen[info.Serial.String()] {
					t.Errorf("serial %v twice", info.Serial)
				}
				seen[info.Serial.String()] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Two authorities with the same certificate do not collide.
	b := &tsa.Authority{Cert: f.tsa.Cert, Key: f.tsa.Key, Clock: func() time.Time { return fixed }}
	info, err := tsa.Verify(respond(t, b, req).Token, []byte("x"), f.roots())
	if err != nil {
		t.Fatal(err)
	}
	if seen[info.Serial.String()] {
		t.Fatal("a second authority repeated a serial")
	}
}

func TestSubSecondAccuracy(t *testing.T) {
	f := fx(t, cmstest.SM2)
	at := time.Now().Truncate(time.Second).Add(123_456_789).In(time.FixedZone("CST", 8*3600))
	a := &tsa.Authority{Cert: f.tsa.Cert, Key: f.tsa.Key, Clock: func() time.Time { return at }, Accuracy: 10 * time.Millisecond,
		Policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 9}}
	st := respond(t, a, mustRequest(t, sm3Of(nil), tsa.OIDSM3, nil, true))
	info, err := tsa.Verify(st.Token, nil, f.roots())
	if err != nil {
		t.Fatal(err)
	}
	if want := at.UTC().Truncate(time.Millisecond); !info.GenTime.Equal(want) || info.Accuracy != 10*time.Millisecond || !info.Policy.Equal(a.Policy) {
		t.Fatalf("genTime %v accuracy %v policy %v", info.GenTime, info.Accuracy, info.Policy)
	}
	if !bytes.Contains(st.Token, []byte(at.UTC().Format("20060102150405")+".123Z")) {
		t.Fatal("genTime not written with milliseconds")
	}
}

func failed(t *testing.T, st *tsa.Status, want tsa.FailureInfo, text string) {
	t.Helper()
	if st.Status != 2 || len(st.Failures) != 1 || st.Failures[0] != want || st.Token != nil {
		t.Fatalf("status %d failures %v, want rejection %v", st.Status, st.Failures, want)
	}
	if !strings.Contains(st.Text, text) {
		t.Fatalf("status text %q, want %q", st.Text, text)
	}
}

func TestRejections(t *testing.T) {
	f := fx(t, cmstest.SM2)
	a := f.auth
	good := mustRequest(t, sha256Of([]byte("x")), tsa.OIDSHA256, big.NewInt(7), true)

	for _, bad := range [][]byte{nil, {}, []byte("hello"), good[:len(good)-1], append(bytes.Clone(good), 0), {0x30, 0x00}} {
		failed(t, respond(t, a, bad), tsa.BadRequest, "格式错误")
	}
	failed(t, respond(t, a, make([]byte, tsa.MaxRequestSize+1)), tsa.BadRequest, "请求过大")

	type mi struct {
		Alg    pkix.AlgorithmIdentifier
		Digest []byte
	}
	type req struct {
		Version int
		MI      mi
		Policy  asn1.ObjectIdentifier `asn1:"optional"`
		Nonce   *big.Int              `asn1:"optional"`
		CertReq bool                  `asn1:"optional"`
		Ext     []pkix.Extension      `asn1:"optional,tag:0"`
	}
	enc := func(r req) []byte {
		b, err := asn1.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sha1Sum := sha1.Sum([]byte("x"))
	sha256Alg := pkix.AlgorithmIdentifier{Algorithm: tsa.OIDSHA256}
	failed(t, respond(t, a, enc(req{Version: 1, MI: mi{pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}}, sha1Sum[:]}})), tsa.BadAlg, "不支持的摘要算法")
	failed(t, respond(t, a, enc(req{Version: 1, MI: mi{pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}}, make([]byte, 16)}})), tsa.BadAlg, "不支持的摘要算法")
	failed(t, respond(t, a, enc(req{Version: 1, MI: mi{sha256Alg, make([]byte, 20)}})), tsa.BadDataFormat, "摘要长度")
	failed(t, respond(t, a, enc(req{Version: 2, MI: mi{sha256Alg, make([]byte, 32)}})), tsa.BadRequest, "版本")
	failed(t, respond(t, a, enc(req{Version: 1, MI: mi{sha256Alg, make([]byte, 32)}, Policy: asn1.ObjectIdentifier{1, 2, 3}})), tsa.UnacceptedPolicy, "策略")
	failed(t, respond(t, a, enc(req{Version: 1, MI: mi{sha256Alg, make([]byte, 32)}, Ext: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: []byte{5, 0}}}})), tsa.UnacceptedExtension, "扩展")
	failed(t, respond(t, a, enc(req{Version: 1, MI: mi{sha256Alg, make([]byte, 32)}, Nonce: big.NewInt(-5)})), tsa.BadRequest, "随机数")
	// The requested policy when it is ours is fine.
	if st := respond(t, a, enc(req{Version: 1, MI: mi{sha256Alg, make([]byte, 32)}, Policy: tsa.DefaultPolicy})); st.Status != 0 {
		t.Fatalf("our own policy refused: %v", st.Failures)
	}

	notReady := &tsa.Authority{Cert: f.tsa.Cert, Key: f.tsa.Key, Ready: func() error { return errors.New("本机时间与时间源相差 2.500 秒，暂停时间戳服务") }}
	failed(t, respond(t, notReady, good), tsa.TimeNotAvailable, "本机时间与时间源相差 2.500 秒，暂停时间戳服务")
	notSynced := &tsa.Authority{Cert: f.tsa.Cert, Key: f.tsa.Key, Ready: func() error {
		return ihos.Errorf(ihos.EUnavailable, "尚未与时间源同步，暂停签名和时间戳服务")
	}}
	if st := respond(t, notSynced, good); st.Text != "尚未与时间源同步，暂停签名和时间戳服务" || st.Failures[0] != tsa.TimeNotAvailable {
		t.Fatalf("ihos.Error from Ready: %q %v", st.Text, st.Failures)
	}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	failed(t, respond(t, &tsa.Authority{Logger: quiet}, good), tsa.SystemFailure, "未配置")
	broken := &tsa.Authority{Cert: f.tsa.Cert, Key: failingSigner{f.tsa.Key}, Logger: quiet}
	failed(t, respond(t, broken, good), tsa.SystemFailure, "签名失败")

	// A cancelled context is an error, not an answer.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Respond(cctx, good); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("HSM unavailable")
}

func TestHandler(t *testing.T) {
	f := fx(t, cmstest.ECDSA)
	srv := httptest.NewServer(f.auth.Handler())
	defer srv.Close()
	req := mustRequest(t, sha256Of([]byte("y")), tsa.OIDSHA256, nil, true)

	resp, err := http.Post(srv.URL, "application/timestamp-query", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/timestamp-reply" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	st, err := tsa.ParseResponse(body)
	if err != nil || st.Status != 0 {
		t.Fatalf("%v %+v", err, st)
	}
	if _, err := tsa.Verify(st.Token, []byte("y"), f.roots()); err != nil {
		t.Fatal(err)
	}

	get, _ := http.Get(srv.URL)
	get.Body.Close()
	if get.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", get.StatusCode)
	}
	wrong, _ := http.Post(srv.URL, "application/octet-stream", bytes.NewReader(req))
	wrong.Body.Close()
	if wrong.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("wrong content type: %d", wrong.StatusCode)
	}
	huge, _ := http.Post(srv.URL, "application/timestamp-query", bytes.NewReader(make([]byte, tsa.MaxRequestSize+1)))
	huge.Body.Close()
	if huge.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized: %d", huge.StatusCode)
	}
	garbage, _ := http.Post(srv.URL, "application/timestamp-query", strings.NewReader("garbage"))
	body, _ = io.ReadAll(garbage.Body)
	garbage.Body.Close()
	if st, err := tsa.ParseResponse(body); err != nil || st.Status != 2 || st.Failures[0] != tsa.BadRequest {
		t.Fatalf("garbage: %v %+v", err, st)
	}
}

func TestClient(t *testing.T) {
	f := fx(t, cmstest.SM2)
	srv := httptest.NewServer(f.auth.Handler())
	defer srv.Close()
	data := []byte("签名值")
	for _, alg := range []asn1.ObjectIdentifier{nil, tsa.OIDSM3, tsa.OIDSHA512} {
		token, err := tsa.Request(ctx, srv.Client(), srv.URL, data, alg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tsa.Verify(token, data, f.roots()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tsa.Request(ctx, nil, srv.URL, data, asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}); !errors.Is(err, tsa.ErrUnsupportedAlg) {
		t.Fatalf("SHA-1: %v", err)
	}

	// A server that replays an old answer: the nonce (and imprint) give it away.
	old, _ := f.auth.Respond(ctx, mustRequest(t, sha256Of(data), tsa.OIDSHA256, big.NewInt(1), true))
	replay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/timestamp-reply")
		w.Write(old)
	}))
	defer replay.Close()
	if _, err := tsa.Request(ctx, nil, replay.URL, data, tsa.OIDSHA256); !errors.Is(err, tsa.ErrBadResponse) {
		t.Fatalf("replayed answer: %v", err)
	}
	// A refusing TSA: the reason reaches the caller.
	refusing := &tsa.Authority{Cert: f.tsa.Cert, Key: f.tsa.Key, Ready: func() error { return errors.New("尚未与时间源同步") }}
	rs := httptest.NewServer(refusing.Handler())
	defer rs.Close()
	if _, err := tsa.Request(ctx, nil, rs.URL, data, nil); !errors.Is(err, tsa.ErrRejected) || !strings.Contains(err.Error(), "尚未与时间源同步") || !strings.Contains(err.Error(), "timeNotAvailable") {
		t.Fatalf("refused: %v", err)
	}
	// Not a TSA at all.
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }))
	defer html.Close()
	if _, err := tsa.Request(ctx, nil, html.URL, data, nil); !errors.Is(err, tsa.ErrBadResponse) {
		t.Fatalf("html: %v", err)
	}
	if _, err := tsa.Request(ctx, nil, "http://127.0.0.1:1/", data, nil); !errors.Is(err, tsa.ErrUnreachable) {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestVerifyRefusals(t *testing.T) {
	f := fx(t, cmstest.SM2)
	other := fx(t, cmstest.RSA)
	data := []byte("数据")
	token, err := f.auth.Stamp(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tsa.Verify(token, data, nil); !errors.Is(err, tsa.ErrNoRoots) {
		t.Fatalf("no roots: %v", err)
	}
	if _, err := tsa.Verify(token, data, other.roots()); !errors.Is(err, tsa.ErrUntrusted) {
		t.Fatalf("other root: %v", err)
	}
	bad := bytes.Clone(token)
	bad[len(bad)-3] ^= 0x10
	if _, err := tsa.Verify(bad, data, f.roots()); !errors.Is(err, tsa.ErrBadToken) {
		t.Fatalf("tampered: %v", err)
	}
	for n := 0; n < len(token); n += 7 {
		if _, err := tsa.Verify(token[:n], data, f.roots()); err == nil {
			t.Fatalf("cut to %d bytes verified", n)
		}
	}

	// Signer certificates that are not TSA certificates.
	eku := func(critical bool, oids ...asn1.ObjectIdentifier) []pkix.Extension {
		v, _ := asn1.Marshal(oids)
		return []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: critical, Value: v}}
	}
	ts := asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
	for name, ext := range map[string][]pkix.Extension{
		"no EKU":               nil,
		"non-critical EKU":     eku(false, ts),
		"EKU with codeSigning": eku(true, ts, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 3}),
	} {
		is := f.ca.IssueWith(t, cmstest.SM2, "非时间戳证书", ext)
		a := &tsa.Authority{Cert: is.Cert, Key: is.Key}
		tok, err := a.Stamp(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tsa.Verify(tok, data, f.roots()); !errors.Is(err, tsa.ErrNotTSACert) {
			t.Fatalf("%s: %v", name, err)
		}
	}

	// The authority does not stamp outside its certificate's validity …
	past := &tsa.Authority{Cert: f.tsa.Cert, Key: f.tsa.Key, Clock: func() time.Time { return time.Now().AddDate(-1, 0, 0) },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := past.Stamp(ctx, data); !errors.Is(err, tsa.ErrRejected) {
		t.Fatalf("stamp before NotBefore: %v", err)
	}
	// … and Verify refuses a token whose genTime lies outside it (made here by
	// re-signing a TSTInfo with an older genTime).
	tst, err := cms.Verify(token, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := tsa.Verify(token, data, f.roots())
	gen := []byte(info.GenTime.Format("20060102150405"))
	old := []byte(info.GenTime.AddDate(-1, 0, 0).Format("20060102150405"))
	backdated := bytes.Replace(tst.Content, gen, old, 1)
	ess := cms.First(tst.SignedAttributes, tsa.OIDSigningCertV2)
	tok, err := cms.Sign(ctx, backdated, f.tsa.Cert, f.tsa.Key, cms.SignOptions{Profile: cms.CMS, ContentType: tsa.OIDTSTInfo,
		SignedAttributes: []cms.Attribute{{Type: tsa.OIDSigningCertV2, Values: [][]byte{ess}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tsa.Verify(tok, data, f.roots()); !errors.Is(err, tsa.ErrUntrusted) {
		t.Fatalf("genTime before NotBefore: %v", err)
	}

	// An ordinary signature is not a time-stamp token.
	leaf := f.ca.Leaf(t, cmstest.SM2, "医生")
	p7, _ := cms.Sign(ctx, data, leaf.Cert, leaf.Key, cms.SignOptions{Profile: cms.CMS})
	if _, err := tsa.Verify(p7, data, f.roots()); !errors.Is(err, tsa.ErrBadToken) {
		t.Fatalf("plain signature: %v", err)
	}
	// A TSTInfo signed without the ESS attribute.
	noESS, _ := cms.Sign(ctx, tst.Content, f.tsa.Cert, f.tsa.Key, cms.SignOptions{Profile: cms.CMS, ContentType: tsa.OIDTSTInfo})
	if _, err := tsa.Verify(noESS, data, f.roots()); !errors.Is(err, tsa.ErrBadToken) || !strings.Contains(err.Error(), "ESS") {
		t.Fatalf("without ESS: %v", err)
	}
}
