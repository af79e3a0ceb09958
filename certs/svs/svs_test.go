package svs

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs"
	"ihos/certs/ca"
	"ihos/certs/tsa"
	"ihos/internal/sqldb/sqldbtest"
)

func TestSignVerifyLevels(t *testing.T) {
	e := newEnv(t, envOptions{})
	data := []byte("门诊病历：患者张三，诊断：高血压 2 级。")
	var sr signResponse
	if st := e.post(e.token, "/api/svs/sign", map[string]string{"data": b64s(data)}, &sr); st != http.StatusOK {
		t.Fatalf("sign: HTTP %d", st)
	}
	sig, err := base64.StdEncoding.DecodeString(sr.Signature)
	if err != nil || len(sig) < 64 || sig[0] != 0x30 {
		t.Fatalf("signature is not base64 DER: %q", sr.Signature)
	}
	c, err := certs.ParseCertificate([]byte(sr.Cert))
	if err != nil {
		t.Fatalf("cert: %v", err)
	}
	// The signature is SM3withSM2 with the default uid: the library verifies it.
	if err := certs.VerifyData(c.PublicKey, data, sig); err != nil {
		t.Fatalf("library verify: %v", err)
	}
	for level := 0; level <= 2; level++ {
		var v verifyOut
		st := e.post(e.token, "/api/svs/verify", map[string]any{"data": b64s(data), "signature": sr.Signature, "cert": sr.Cert, "level": level}, &v)
		if st != http.StatusOK || !v.Valid || v.Reason != "" {
			t.Fatalf("level %d: HTTP %d %+v", level, st, v)
		}
		if v.Signer == nil || v.Signer.Serial != c.SerialNumber.Text(16) {
			t.Fatalf("level %d: signer %+v", level, v.Signer)
		}
	}
	// One changed byte of the data.
	bad := bytes.Clone(data)
	bad[3] ^= 1
	var v verifyOut
	if st := e.post(e.token, "/api/svs/verify", map[string]any{"data": b64s(bad), "signature": sr.Signature, "cert": sr.Cert, "level": 0}, &v); st != 200 || v.Valid {
		t.Fatalf("changed data: HTTP %d %+v", st, v)
	}
	if !strings.Contains(v.Reason, "签名验证失败") {
		t.Fatalf("reason %q", v.Reason)
	}
	// Garbled signature and certificate: 200, invalid, with a reason.
	if e.post(e.token, "/api/svs/verify", map[string]any{"data": b64s(data), "signature": b64s([]byte("garbage")), "cert": sr.Cert}, &v); v.Valid || !strings.Contains(v.Reason, "签名格式错误") {
		t.Fatalf("garbled signature: %+v", v)
	}
	if e.post(e.token, "/api/svs/verify", map[string]any{"data": b64s(data), "signature": sr.Signature, "cert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, &v); v.Valid || !strings.Contains(v.Reason, "证书") {
		t.Fatalf("garbled cert: %+v", v)
	}
	// Malformed input: 400 with a Chinese message.
	var eb errBody
	if st := e.post(e.token, "/api/svs/verify", map[string]any{"data": "%%%", "signature": sr.Signature, "cert": sr.Cert}, &eb); st != 400 || eb.Message != "data 不是有效的 Base64" {
		t.Fatalf("bad base64: HTTP %d %+v", st, eb)
	}
	if st := e.post(e.token, "/api/svs/sign", map[string]string{"data": "not base64!"}, &eb); st != 400 || eb.Message != "data 不是有效的 Base64" {
		t.Fatalf("sign bad base64: HTTP %d %+v", st, eb)
	}
	if st := e.post(e.token, "/api/svs/verify", map[string]any{"data": b64s(data), "signature": sr.Signature, "cert": sr.Cert, "level": 3}, &eb); st != 400 || eb.Fields["level"] == "" {
		t.Fatalf("bad level: HTTP %d %+v", st, eb)
	}
	if st := e.post(e.token, "/api/svs/sign", `[1,2]`, &eb); st != 400 || eb.Message == "" {
		t.Fatalf("array body: HTTP %d %+v", st, eb)
	}
	// One log row per operation: 1 sign, 3 + 3 verifies (400s are not operations).
	if n := logCount(t, e.db, OpSign); n != 1 {
		t.Fatalf("sign log rows %d", n)
	}
	if n := logCount(t, e.db, OpVerify); n != 6 {
		t.Fatalf("verify log rows %d", n)
	}
	entries, total, err := e.srv.Logs(context.Background(), LogFilter{Op: OpVerify, Result: "fail"})
	if err != nil || total != 3 || len(entries) != 3 {
		t.Fatalf("Logs: %d %d %v", total, len(entries), err)
	}
	if entries[0].App != "测试应用" || entries[0].Reason == "" {
		t.Fatalf("log entry %+v", entries[0])
	}
	sum := certs.SM3Sum(data)
	if l, _, _ := e.srv.Logs(context.Background(), LogFilter{Op: OpSign}); l[0].DataSM3 != dataDigestHex(sum[:]) || l[0].DataLen != int64(len(data)) || l[0].SignerSerial != c.SerialNumber.Text(16) {
		t.Fatalf("sign log entry %+v", l[0])
	}
}

func dataDigestHex(b []byte) string {
	const hexd = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, hexd[c>>4], hexd[c&15])
	}
	return string(out)
}

func TestRevokedByCRLAndOCSP(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	ocspToken, err := e.srv.CreateApp(ctx, App{Name: "OCSP 应用", Revocation: RevocationOCSP})
	if err != nil {
		t.Fatal(err)
	}
	k, c, pemText := e.staff("李医生", 0)
	data := []byte("处方：阿莫西林胶囊 0.25g × 24")
	sig, err := certs.SignData(k, data)
	if err != nil {
		t.Fatal(err)
	}
	req := map[string]any{"data": b64s(data), "signature": b64s(sig), "cert": pemText, "level": 2}
	for _, tok := range []string{e.token, ocspToken} {
		var v verifyOut
		if e.post(tok, "/api/svs/verify", req, &v); !v.Valid {
			t.Fatalf("before revocation: %+v", v)
		}
	}
	if err := e.ca.Revoke(ctx, c.SerialNumber, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	var v verifyOut
	if e.post(e.token, "/api/svs/verify", req, &v); v.Valid || !strings.Contains(v.Reason, "吊销") || !strings.Contains(v.Reason, "CRL") {
		t.Fatalf("CRL policy after revocation: %+v", v)
	}
	if e.post(ocspToken, "/api/svs/verify", req, &v); v.Valid || !strings.Contains(v.Reason, "吊销") || !strings.Contains(v.Reason, "OCSP") {
		t.Fatalf("OCSP policy after revocation: %+v", v)
	}
	// Level 1 does not look at revocation.
	req["level"] = 1
	if e.post(e.token, "/api/svs/verify", req, &v); !v.Valid {
		t.Fatalf("level 1 after revocation: %+v", v)
	}
	// cert/validate says the same.
	if e.post(e.token, "/api/svs/cert/validate", map[string]any{"cert": pemText, "level": 2}, &v); v.Valid || !strings.Contains(v.Reason, "吊销") {
		t.Fatalf("validate: %+v", v)
	}
}

func TestExpiredAndUnknownCA(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	data := []byte("检验报告")

	// A hospital certificate past its validity (the server's clock moved on).
	k, _, pemText := e.staff("王护士", time.Hour)
	sig, _ := certs.SignData(k, data)
	req := map[string]any{"data": b64s(data), "signature": b64s(sig), "cert": pemText, "level": 1}
	var v verifyOut
	if e.post(e.token, "/api/svs/verify", req, &v); !v.Valid {
		t.Fatalf("fresh: %+v", v)
	}
	e.clock.Store(int64(2 * time.Hour))
	if e.post(e.token, "/api/svs/verify", req, &v); v.Valid || !strings.Contains(v.Reason, "证书已过期") {
		t.Fatalf("expired: %+v", v)
	}
	req["level"] = 0 // the signature itself is still good
	if e.post(e.token, "/api/svs/verify", req, &v); !v.Valid {
		t.Fatalf("expired at level 0: %+v", v)
	}
	e.clock.Store(0)

	// A certificate from a CA nobody imported.
	_, issue := foreignCA(t, "外院 CA")
	now := time.Now()
	fk, fc := issue("外院医生", now.Add(-time.Hour), now.Add(time.Hour))
	fsig, _ := certs.SignData(fk, data)
	freq := map[string]any{"data": b64s(data), "signature": b64s(fsig), "cert": certPEM(fc), "level": 1}
	if e.post(e.token, "/api/svs/verify", freq, &v); v.Valid || !strings.Contains(v.Reason, "不受信任") {
		t.Fatalf("unknown CA: %+v", v)
	}

	// Several trust chains: import the foreign root as chain "waiyuan" and
	// give an application both chains.
	root2, issue2 := foreignCA(t, "合作医院 CA")
	if _, err := e.srv.ImportTrust(ctx, "hezuo", []byte(certPEM(root2)), ""); err != nil {
		t.Fatal(err)
	}
	tok, err := e.srv.CreateApp(ctx, App{Name: "互认应用", TrustChains: []string{ChainHospital, "hezuo"}})
	if err != nil {
		t.Fatal(err)
	}
	gk, gc := issue2("合作医院医生", now.Add(-time.Hour), now.Add(time.Hour))
	gsig, _ := certs.SignData(gk, data)
	greq := map[string]any{"data": b64s(data), "signature": b64s(gsig), "cert": certPEM(gc), "level": 1}
	if e.post(tok, "/api/svs/verify", greq, &v); !v.Valid {
		t.Fatalf("imported chain: %+v", v)
	}
	if e.post(e.token, "/api/svs/verify", greq, &v); v.Valid {
		t.Fatalf("the default app does not trust the imported chain: %+v", v)
	}
	// The hospital chain still works for the same application.
	hk, _, hpem := e.staff("赵医生", 0)
	hsig, _ := certs.SignData(hk, data)
	if e.post(tok, "/api/svs/verify", map[string]any{"data": b64s(data), "signature": b64s(hsig), "cert": hpem, "level": 1}, &v); !v.Valid {
		t.Fatalf("hospital chain in a two-chain app: %+v", v)
	}
	// An expired certificate of the imported chain names the right reason.
	xk, xc := issue2("过期医生", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	xsig, _ := certs.SignData(xk, data)
	if e.post(tok, "/api/svs/verify", map[string]any{"data": b64s(data), "signature": b64s(xsig), "cert": certPEM(xc), "level": 1}, &v); v.Valid || !strings.Contains(v.Reason, "过期") {
		t.Fatalf("expired imported: %+v", v)
	}
	// A chain an application uses cannot be removed.
	if err := e.srv.RemoveTrust(ctx, "hezuo"); ihos.ErrorCode(err) != ihos.EConflict {
		t.Fatalf("RemoveTrust in use: %v", err)
	}
}

func TestImportedCRLRefresh(t *testing.T) {
	e := newEnv(t, envOptions{opts: Options{CRLRefresh: -1}})
	ctx := context.Background()
	// A second hospital-style CA (its own database rows, its own files), whose
	// CRL is served over HTTP; the signing server imports its root with the
	// CRL URL.
	other, err := ca.Open(ctx, e.db, ca.Options{Dir: t.TempDir(), Name: "合作医院 CA"})
	if err != nil {
		t.Fatal(err)
	}
	crlSrv := httptest.NewServer(other.Handler())
	defer crlSrv.Close()
	if _, err := e.srv.ImportTrust(ctx, "other", []byte(certPEM(other.Certificate())), crlSrv.URL+"/ca/crl"); err != nil {
		t.Fatal(err)
	}
	tok, err := e.srv.CreateApp(ctx, App{Name: "外部链", TrustChains: []string{"other"}, Revocation: RevocationCRL})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := certs.GenerateSM2Key()
	c, err := other.Issue(ctx, ca.IssueRequest{Kind: ca.KindStaff, CommonName: "合作医生", PublicKey: &k.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("会诊意见")
	sig, _ := certs.SignData(k, data)
	req := map[string]any{"data": b64s(data), "signature": b64s(sig), "cert": certPEM(c), "level": 2}
	var v verifyOut
	// No CRL yet and the certificate names no distribution point: level 2
	// cannot be answered.
	if e.post(tok, "/api/svs/verify", req, &v); v.Valid || !strings.Contains(v.Reason, "吊销信息") {
		t.Fatalf("no CRL: %+v", v)
	}
	if err := e.srv.RefreshCRLs(ctx); err != nil {
		t.Fatal(err)
	}
	if e.post(tok, "/api/svs/verify", req, &v); !v.Valid {
		t.Fatalf("with CRL: %+v", v)
	}
	if err := other.Revoke(ctx, c.SerialNumber, ca.ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	// Still the old CRL until the refresh: without restart, the next refresh
	// picks the revocation up.
	if e.post(tok, "/api/svs/verify", req, &v); !v.Valid {
		t.Fatalf("old CRL: %+v", v)
	}
	if err := e.srv.RefreshCRLs(ctx); err != nil {
		t.Fatal(err)
	}
	if e.post(tok, "/api/svs/verify", req, &v); v.Valid || !strings.Contains(v.Reason, "吊销") {
		t.Fatalf("after refresh: %+v", v)
	}
	// The distribution point goes down: the last good CRL is kept and the
	// failure is recorded.
	crlSrv.Close()
	if err := e.srv.RefreshCRLs(ctx); err == nil {
		t.Fatal("refresh from a closed server succeeded")
	}
	if e.post(tok, "/api/svs/verify", req, &v); v.Valid || !strings.Contains(v.Reason, "吊销") {
		t.Fatalf("after failed refresh: %+v", v)
	}
	list, err := e.srv.ListTrust(ctx)
	if err != nil || len(list) != 1 || list[0].CRLError == "" || list[0].CRLFetchedAt.IsZero() {
		t.Fatalf("ListTrust: %+v %v", list, err)
	}
}

func TestSignMessage(t *testing.T) {
	e := newEnv(t, envOptions{policy: App{Name: "电子病历", Timestamp: true}})
	ctx := context.Background()
	noTS, err := e.srv.CreateApp(ctx, App{Name: "无时间戳"})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("电子病历正文。"), 500)
	for _, detached := range []bool{false, true} {
		var sm signMessageResponse
		if st := e.post(e.token, "/api/svs/sign-message", map[string]any{"data": b64s(data), "detached": detached}, &sm); st != 200 || !sm.Timestamp {
			t.Fatalf("sign-message detached=%v: HTTP %d %+v", detached, st, sm)
		}
		p7, _ := base64.StdEncoding.DecodeString(sm.P7)
		if !bytes.Contains(p7, []byte{0x06, 0x0a, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x06, 0x01, 0x04, 0x02, 0x02}) {
			t.Fatal("the SignedData does not carry the GM/T 0010 signedData OID")
		}
		in := map[string]any{"p7": sm.P7, "level": 2}
		if detached {
			in["data"] = b64s(data)
		}
		var m messageOut
		if st := e.post(e.token, "/api/svs/verify-message", in, &m); st != 200 || !m.Valid {
			t.Fatalf("verify-message detached=%v: HTTP %d %+v", detached, st, m)
		}
		if m.Signer == nil || m.Signer.Subject == "" || m.Signer.Serial == "" || m.Signer.Issuer == "" || m.Signer.NotAfter.IsZero() {
			t.Fatalf("signer %+v", m.Signer)
		}
		if m.Timestamp == nil || m.Timestamp.Time.IsZero() || m.Timestamp.HashAlg != "SM3" {
			t.Fatalf("timestamp %+v", m.Timestamp)
		}
		if !detached {
			if c, _ := base64.StdEncoding.DecodeString(m.Content); !bytes.Equal(c, data) {
				t.Fatal("attached content not returned")
			}
		}
		if detached {
			bad := bytes.Clone(data)
			bad[100] ^= 0x20
			in["data"] = b64s(bad)
			if e.post(e.token, "/api/svs/verify-message", in, &m); m.Valid || !strings.Contains(m.Reason, "修改") {
				t.Fatalf("changed detached data: %+v", m)
			}
			delete(in, "data")
			if e.post(e.token, "/api/svs/verify-message", in, &m); m.Valid || m.Reason == "" {
				t.Fatalf("detached without data: %+v", m)
			}
		}
	}
	// Without the timestamp policy there is no token.
	var sm signMessageResponse
	e.post(noTS, "/api/svs/sign-message", map[string]any{"data": b64s(data)}, &sm)
	var m messageOut
	if e.post(noTS, "/api/svs/verify-message", map[string]any{"p7": sm.P7, "level": 1}, &m); !m.Valid || m.Timestamp != nil || sm.Timestamp {
		t.Fatalf("no-timestamp app: %+v %+v", sm, m)
	}
	// Garbled p7: 200 invalid; bad base64: 400.
	if st := e.post(e.token, "/api/svs/verify-message", map[string]any{"p7": b64s([]byte{0x30, 0x03, 1, 2, 3})}, &m); st != 200 || m.Valid || m.Reason == "" {
		t.Fatalf("garbled p7: %d %+v", st, m)
	}
	var eb errBody
	if st := e.post(e.token, "/api/svs/verify-message", map[string]any{"p7": "@@"}, &eb); st != 400 || eb.Message != "p7 不是有效的 Base64" {
		t.Fatalf("bad p7 base64: %d %+v", st, eb)
	}
	if n := logCount(t, e.db, OpSignMessage); n != 3 {
		t.Fatalf("sign_message log rows %d", n)
	}
	if n := logCount(t, e.db, OpVerifyMessage); n != 6 {
		t.Fatalf("verify_message log rows %d", n)
	}
}

func TestAuthSwitchAndReady(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	body := map[string]string{"data": b64s([]byte("x"))}
	var eb errBody
	if st := e.post("", "/api/svs/sign", body, &eb); st != 401 || !strings.Contains(eb.Message, "令牌") {
		t.Fatalf("no token: %d %+v", st, eb)
	}
	if st := e.post("wrong-token", "/api/svs/sign", body, &eb); st != 401 || !strings.Contains(eb.Message, "令牌") {
		t.Fatalf("unknown token: %d %+v", st, eb)
	}
	// Disabled application, rotated token.
	tok, _ := e.srv.CreateApp(ctx, App{Name: "临时"})
	if st := e.post(tok, "/api/svs/sign", body, nil); st != 200 {
		t.Fatalf("new app: %d", st)
	}
	if err := e.srv.DisableApp(ctx, "临时"); err != nil {
		t.Fatal(err)
	}
	if st := e.post(tok, "/api/svs/sign", body, nil); st != 401 {
		t.Fatalf("disabled app: %d", st)
	}
	if err := e.srv.SetAppEnabled(ctx, "临时", true); err != nil {
		t.Fatal(err)
	}
	tok2, err := e.srv.RotateToken(ctx, "临时")
	if err != nil {
		t.Fatal(err)
	}
	if e.post(tok, "/api/svs/sign", body, nil) != 401 || e.post(tok2, "/api/svs/sign", body, nil) != 200 {
		t.Fatal("rotation: the old token works or the new one does not")
	}
	// The switch.
	if err := e.srv.SetEnabled(ctx, false); err != nil {
		t.Fatal(err)
	}
	if st := e.post(e.token, "/api/svs/sign", body, &eb); st != 503 || eb.Message != "签名验签服务已停用" {
		t.Fatalf("switched off: %d %+v", st, eb)
	}
	if st := e.post(e.token, "/api/svs/verify", map[string]any{}, &eb); st != 503 {
		t.Fatalf("verify while off: %d", st)
	}
	// It is persisted: a new server on the same database starts off.
	if on, _ := e.srv.readEnabled(ctx); on {
		t.Fatal("switch not persisted")
	}
	if err := e.srv.SetEnabled(ctx, true); err != nil {
		t.Fatal(err)
	}
	// The clock gate.
	notSynced := error(ihos.Errorf(ihos.EUnavailable, "时钟未同步（偏差 3.2 秒，超过允许的 1 秒），暂停签名"))
	e.ready.Store(&notSynced)
	if st := e.post(e.token, "/api/svs/sign", body, &eb); st != 503 || !strings.Contains(eb.Message, "时钟未同步") {
		t.Fatalf("not ready: %d %+v", st, eb)
	}
	if st := e.post(e.token, "/api/svs/sign-message", body, &eb); st != 503 {
		t.Fatalf("sign-message not ready: %d", st)
	}
	// Verifying does not need the clock gate.
	var sr signResponse
	e.ready.Store(nil)
	e.post(e.token, "/api/svs/sign", body, &sr)
	e.ready.Store(&notSynced)
	var v verifyOut
	if st := e.post(e.token, "/api/svs/verify", map[string]any{"data": body["data"], "signature": sr.Signature, "cert": sr.Cert}, &v); st != 200 || !v.Valid {
		t.Fatalf("verify while not ready: %d %+v", st, v)
	}
	e.ready.Store(nil)
	apps, err := e.srv.ListApps(ctx)
	if err != nil || len(apps) != 2 {
		t.Fatalf("ListApps: %+v %v", apps, err)
	}
}

func TestCertEndpointsAndStore(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := ihos.WithActor(context.Background(), ihos.Actor{UserID: "u1", Username: "admin"})
	_, c, pemText := e.staff("陈药师", 0)
	var info CertInfo
	if st := e.post(e.token, "/api/svs/cert/parse", map[string]string{"cert": pemText}, &info); st != 200 {
		t.Fatalf("parse: %d", st)
	}
	if info.CommonName != "陈药师" || info.KeyAlgorithm != "SM2" || info.Serial != c.SerialNumber.Text(16) ||
		len(info.CRLDistributionPoints) != 1 || len(info.OCSPServers) != 1 || !strings.Contains(strings.Join(info.KeyUsage, ","), "digitalSignature") {
		t.Fatalf("parse: %+v", info)
	}
	var eb errBody
	if st := e.post(e.token, "/api/svs/cert/parse", map[string]string{"cert": "garbage"}, &eb); st != 400 || eb.Fields["cert"] == "" {
		t.Fatalf("parse garbage: %d %+v", st, eb)
	}
	var v verifyOut
	if st := e.post(e.token, "/api/svs/cert/validate", map[string]any{"cert": pemText}, &v); st != 200 || !v.Valid {
		t.Fatalf("validate: %d %+v", st, v)
	}
	if st := e.post(e.token, "/api/svs/cert/validate", map[string]any{"cert": "garbage", "level": 2}, &v); st != 200 || v.Valid || v.Reason == "" {
		t.Fatalf("validate garbage: %d %+v", st, v)
	}
	var exp struct {
		Cert string `json:"cert"`
		CA   string `json:"ca"`
	}
	if st := e.get(e.token, "/api/svs/cert", &exp); st != 200 || !strings.Contains(exp.Cert, "BEGIN CERTIFICATE") || exp.CA == "" {
		t.Fatalf("export: %d %+v", st, exp)
	}

	// The store.
	sc, err := e.srv.ImportCert(ctx, []byte(pemText))
	if err != nil {
		t.Fatal(err)
	}
	if sc.SubjectID != "staff-陈药师" || sc.ImportedBy != "admin" {
		t.Fatalf("imported %+v", sc)
	}
	if _, err := e.srv.ImportCert(ctx, []byte(pemText)); err != nil {
		t.Fatalf("import again: %v", err)
	}
	for i := range 3 {
		_, _, p := e.staff("医生"+string(rune('甲'+i)), 0)
		if _, err := e.srv.ImportCert(ctx, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.srv.ImportCert(ctx, []byte(certPEM(e.ca.Certificate()))); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Fatalf("CA cert imported: %v", err)
	}
	if _, err := e.srv.ImportCert(ctx, []byte("garbage")); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Fatalf("garbage imported: %v", err)
	}
	type page struct {
		Items []StoredCert `json:"items"`
		Total int          `json:"total"`
	}
	var p page
	if st := e.get(e.token, "/api/svs/certs", &p); st != 200 || p.Total != 4 || len(p.Items) != 4 {
		t.Fatalf("list: %d %+v", st, p)
	}
	for _, q := range []string{"陈药师", "staff-陈药师", c.SerialNumber.Text(16), strings.ToUpper(c.SerialNumber.Text(16))} {
		if st := e.get(e.token, "/api/svs/certs?q="+urlQuery(q), &p); st != 200 || p.Total != 1 || p.Items[0].Serial != sc.Serial {
			t.Fatalf("search %q: %d %+v", q, st, p)
		}
	}
	if e.get(e.token, "/api/svs/certs?q=医生&page=2&page_size=2", &p); p.Total != 3 || len(p.Items) != 1 {
		t.Fatalf("paging: %+v", p)
	}
	if st := e.get(e.token, "/api/svs/certs?page=x", &eb); st != 400 {
		t.Fatalf("bad page: %d", st)
	}
	var one StoredCert
	if st := e.get(e.token, "/api/svs/certs/"+sc.Serial, &one); st != 200 || one.CertPEM != pemText {
		t.Fatalf("get: %d %+v", st, one)
	}
	if st := e.get(e.token, "/api/svs/certs/abc123", &eb); st != 404 {
		t.Fatalf("get unknown: %d", st)
	}
	// Verify by serial from the store (GM/T 0029 verify type 2).
	k, _, p2 := e.staff("刘医生", 0)
	stored, _ := e.srv.ImportCert(ctx, []byte(p2))
	sig, _ := certs.SignData(k, []byte("abc"))
	if e.post(e.token, "/api/svs/verify", map[string]any{"data": b64s([]byte("abc")), "signature": b64s(sig), "serial": stored.Serial, "level": 2}, &v); !v.Valid {
		t.Fatalf("verify by serial: %+v", v)
	}
}

func urlQuery(s string) string {
	r := strings.NewReplacer(" ", "%20", "&", "%26", "?", "%3F", "#", "%23")
	return r.Replace(s)
}

func TestTimestampEndpoint(t *testing.T) {
	e := newEnv(t, envOptions{})
	digest := certs.SM3Sum([]byte("document"))
	q, err := tsa.NewRequest(digest[:], tsa.OIDSM3, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/api/svs/timestamp", bytes.NewReader(q))
	req.Header.Set("Content-Type", "application/timestamp-query")
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/timestamp-reply" {
		t.Fatalf("HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	st, err := tsa.ParseResponse(buf.Bytes())
	if err != nil || st.Status != 0 || len(st.Token) == 0 {
		t.Fatalf("reply: %+v %v", st, err)
	}
	if _, err := tsa.Verify(st.Token, []byte("document"), []*smx509.Certificate{e.ca.Certificate()}); err != nil {
		t.Fatalf("token: %v", err)
	}
	if n := logCount(t, e.db, OpTimestamp); n != 1 {
		t.Fatalf("timestamp log rows %d", n)
	}
	// The Ready gate applies to timestamps too.
	bad := errors.New("时钟未同步")
	e.ready.Store(&bad)
	req, _ = http.NewRequest(http.MethodPost, e.http.URL+"/api/svs/timestamp", bytes.NewReader(q))
	req.Header.Set("Content-Type", "application/timestamp-query")
	req.Header.Set("Authorization", "Bearer "+e.token)
	var eb errBody
	if st := e.do(req, &eb); st != 503 || eb.Message != "时钟未同步" {
		t.Fatalf("not ready: %d %+v", st, eb)
	}
}

func TestBackupRestore(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	root, _ := foreignCA(t, "外部 CA")
	if _, err := e.srv.ImportTrust(ctx, "ext", []byte(certPEM(root)), "http://127.0.0.1:1/crl"); err != nil {
		t.Fatal(err)
	}
	_, _, p := e.staff("备份医生", 0)
	if _, err := e.srv.ImportCert(ctx, []byte(p)); err != nil {
		t.Fatal(err)
	}
	var before signResponse
	e.post(e.token, "/api/svs/sign", map[string]string{"data": b64s([]byte("a"))}, &before)
	backup, err := e.srv.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(backup, []byte("PRIVATE KEY")) {
		t.Fatal("the backup holds an unsealed private key")
	}

	// A fresh appliance (its own database and CA) with the same KEK.
	f := newEnv(t, envOptions{db: sqldbtest.SQLite(t)})
	if err := f.srv.Restore(ctx, backup); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	var sr signResponse
	if st := f.post(e.token, "/api/svs/sign", map[string]string{"data": b64s([]byte("b"))}, &sr); st != 200 {
		t.Fatalf("sign after restore: %d", st)
	}
	if sr.Cert != before.Cert {
		t.Fatal("the restored server signs with another key")
	}
	list, _ := f.srv.ListTrust(ctx)
	if len(list) != 1 || list[0].Chain != "ext" {
		t.Fatalf("trust after restore: %+v", list)
	}
	if _, total, _ := f.srv.SearchCerts(ctx, "", 1, 10); total != 1 {
		t.Fatalf("store after restore: %d", total)
	}
	// A backup restored under another KEK is refused whole.
	g := newEnv(t, envOptions{db: sqldbtest.SQLite(t)})
	g.srv.Keys.kek = []byte("fedcba9876543210")
	if err := g.srv.Restore(ctx, backup); err == nil || !strings.Contains(ihos.ErrorMessage(err), "密钥加密密钥") {
		t.Fatalf("restore under another KEK: %v", err)
	}
	if err := g.srv.Restore(ctx, []byte("{")); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Fatalf("restore garbage: %v", err)
	}
}

func TestClientFailover(t *testing.T) {
	a := newEnv(t, envOptions{})
	ctx := context.Background()
	backup, err := a.srv.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The second hospital server: its own database, the same CA (both
	// servers hold the hospital CA's files) and the same KEK.
	b := newEnv(t, envOptions{db: sqldbtest.SQLite(t), caDir: a.caDir})
	if err := b.srv.Restore(ctx, backup); err != nil {
		t.Fatal(err)
	}
	cl := &Client{URLs: []string{a.http.URL, b.http.URL}, Token: a.token, DownFor: time.Minute}
	data := []byte("两台服务器")
	for range 4 {
		sig, cert, err := cl.Sign(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		ok, reason, err := cl.Verify(ctx, data, sig, cert, 2)
		if err != nil || !ok {
			t.Fatalf("verify: %v %s %v", ok, reason, err)
		}
	}
	// Both served calls.
	na, nb := logCount(t, a.db, OpSign)+logCount(t, a.db, OpVerify), logCount(t, b.db, OpSign)+logCount(t, b.db, OpVerify)
	if na != 4 || nb != 4 {
		t.Fatalf("round-robin: a %d calls, b %d", na, nb)
	}
	a.http.Close()
	for range 6 {
		sig, cert, err := cl.Sign(ctx, data)
		if err != nil {
			t.Fatalf("sign with one server down: %v", err)
		}
		p7, err := cl.SignMessage(ctx, data, true)
		if err != nil {
			t.Fatal(err)
		}
		res, err := cl.VerifyMessage(ctx, p7, data, 1)
		if err != nil || !res.Valid {
			t.Fatalf("verify-message: %+v %v", res, err)
		}
		if ok, _, err := cl.Verify(ctx, append(data, '!'), sig, cert, 0); err != nil || ok {
			t.Fatalf("changed data verified: %v %v", ok, err)
		}
	}
	// A 503 (switched off) also fails over; a 4xx does not and keeps its message.
	if err := b.srv.SetEnabled(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.Sign(ctx, data); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Fatalf("all down: %v", err)
	}
	b.srv.SetEnabled(ctx, true)
	bad := &Client{URLs: []string{b.http.URL}, Token: "nope"}
	if _, _, err := bad.Sign(ctx, data); ihos.ErrorCode(err) != ihos.EUnauthorized || !strings.Contains(ihos.ErrorMessage(err), "令牌") {
		t.Fatalf("bad token: %v", err)
	}
}

// TestGroupCommit runs many concurrent signs and checks every one is logged.
func TestGroupCommit(t *testing.T) {
	e := newEnv(t, envOptions{})
	const n = 400
	var wg sync.WaitGroup
	errs := make(chan error, n)
	cl := &Client{URLs: []string{e.http.URL}, Token: e.token}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := cl.Sign(context.Background(), []byte{byte(i), byte(i >> 8)}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := logCount(t, e.db, OpSign); got != n {
		t.Fatalf("log rows %d, want %d", got, n)
	}
}

func TestSyslog(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no UDP: %v", err)
	}
	defer pc.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lines := make(chan string, 10)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 8192)
		n, _ := c.Read(buf)
		lines <- "tcp:" + string(buf[:n])
	}()
	for _, target := range []string{"udp://" + pc.LocalAddr().String(), "tcp://" + ln.Addr().String()} {
		e := newEnv(t, envOptions{opts: Options{Syslog: target, Hostname: "svs-test"}})
		e.post(e.token, "/api/svs/sign", map[string]string{"data": b64s([]byte("syslog"))}, nil)
		if strings.HasPrefix(target, "udp") {
			buf := make([]byte, 8192)
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatalf("udp: %v", err)
			}
			lines <- "udp:" + string(buf[:n])
		}
		var line string
		select {
		case line = <-lines:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no syslog line", target)
		}
		if !strings.Contains(line, "<134>1 ") || !strings.Contains(line, " svs-test ihos-svs ") || !strings.Contains(line, `op="sign"`) ||
			!strings.Contains(line, `app="测试应用"`) || !strings.Contains(line, "数据签名成功") {
			t.Fatalf("%s: line %q", target, line)
		}
		if strings.HasPrefix(line, "tcp:") {
			// Octet counting: "<len> <msg>".
			rest := strings.TrimPrefix(line, "tcp:")
			sp := strings.IndexByte(rest, ' ')
			if sp < 0 || rest[sp+1] != '<' {
				t.Fatalf("tcp framing: %q", rest)
			}
		}
	}
	// An unreachable collector does not slow signing down.
	e := newEnv(t, envOptions{opts: Options{Syslog: "tcp://127.0.0.1:1"}})
	start := time.Now()
	for range 20 {
		if st := e.post(e.token, "/api/svs/sign", map[string]string{"data": b64s([]byte("x"))}, nil); st != 200 {
			t.Fatalf("sign with syslog down: %d", st)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("20 signs took %v with syslog down", d)
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, envOptions{})
	big := `{"data":"` + strings.Repeat("A", MaxBody) + `"}`
	var eb errBody
	if st := e.post(e.token, "/api/svs/sign", big, &eb); st != 400 || !strings.Contains(eb.Message, "过大") {
		t.Fatalf("oversized: %d %+v", st, eb)
	}
	// 10 MB of data (in 13.3 MB of Base64) is accepted.
	data := bytes.Repeat([]byte{7}, 10<<20)
	var sr signResponse
	if st := e.post(e.token, "/api/svs/sign", map[string]string{"data": b64s(data)}, &sr); st != 200 {
		t.Fatalf("10 MB: %d", st)
	}
}

func TestCreateAppValidation(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	cases := []App{
		{Name: ""},
		{Name: "x", KeyName: "missing"},
		{Name: "y", TrustChains: []string{"nowhere"}},
		{Name: "z", Revocation: "sometimes"},
		{Name: "测试应用"}, // duplicate
	}
	for _, a := range cases {
		if _, err := e.srv.CreateApp(ctx, a); ihos.ErrorCode(err) != ihos.EInvalid {
			t.Errorf("CreateApp(%+v): %v", a, err)
		}
	}
	if err := e.srv.UpdateApp(ctx, App{Name: "测试应用", Revocation: RevocationCRLOCSP, Timestamp: true}); err != nil {
		t.Fatal(err)
	}
	apps, _ := e.srv.ListApps(ctx)
	if len(apps) != 1 || apps[0].Revocation != RevocationCRLOCSP || !apps[0].Timestamp || !apps[0].Enabled {
		t.Fatalf("after update: %+v", apps)
	}
	if _, err := e.srv.RotateToken(ctx, "nobody"); ihos.ErrorCode(err) != ihos.ENotFound {
		t.Fatalf("rotate unknown: %v", err)
	}
	keys, err := e.srv.Keys.List(ctx)
	if err != nil || len(keys) != 1 || keys[0].Name != DefaultKey || keys[0].Serial == "" {
		t.Fatalf("keys: %+v %v", keys, err)
	}
}
