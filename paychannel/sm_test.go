package paychannel_test

// The channel's 国密 option: SM2-with-SM3 signatures on requests, answers
// and notifies, SM4-GCM notifies, end to end through the simulator; forged
// signatures and a downgraded signature type refused; and the SM2
// signature checked both ways against OpenSSL 3 (`openssl dgst -sm3 -sigopt
// distid:1234567812345678`), which skips when openssl lacks SM2 except with
// CI=true, where it fails.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"ihos"
	"ihos/certs"
	"ihos/paychannel"
	"ihos/paychannel/paysim"
)

var (
	sm2Once                    sync.Once
	sm2Merchant, sm2Other      *sm2.PrivateKey
	sm2Platform, sm2OtherPlatf *sm2.PrivateKey
)

func sm2Keys(t testing.TB) {
	sm2Once.Do(func() {
		for _, k := range []**sm2.PrivateKey{&sm2Merchant, &sm2Other, &sm2Platform, &sm2OtherPlatf} {
			var err error
			if *k, err = sm2.GenerateKey(rand.Reader); err != nil {
				panic(err)
			}
		}
	})
}

func newSM2Env(t testing.TB) *env {
	sm2Keys(t)
	return newEnvWith(t, paysim.Config{PlatformSM2Key: sm2Platform}, sm2Merchant)
}

func TestSM2Signatures(t *testing.T) {
	keys(t)
	sm2Keys(t)
	if paychannel.SchemeOf(sm2Merchant) != paychannel.AuthSchemeSM2 || paychannel.SchemeOf(sm2Merchant.Public()) != paychannel.AuthSchemeSM2 ||
		paychannel.SchemeOf(merchantKey) != paychannel.AuthScheme {
		t.Fatal("SchemeOf does not follow the key")
	}
	a := paychannel.Auth{Scheme: paychannel.AuthSchemeSM2, MchID: mchid, Nonce: paychannel.NewNonce(), Timestamp: 1636620536, SerialNo: serialNo}
	msg := paychannel.RequestMessage("GET", "/v3/certificates", a.Timestamp, a.Nonce, nil)
	var err error
	if a.Signature, err = paychannel.Sign(sm2Merchant, msg); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.String(), "WECHATPAY2-SM2-WITH-SM3 mchid=") {
		t.Fatalf("header %s", a)
	}
	got, err := paychannel.ParseAuth(a.String())
	if err != nil || got != a {
		t.Fatalf("ParseAuth(%s) = %+v, %v", a, got, err)
	}
	if err := paychannel.Verify(sm2Merchant.Public(), msg, a.Signature); err != nil {
		t.Fatal(err)
	}
	if paychannel.Verify(sm2Other.Public(), msg, a.Signature) == nil || paychannel.Verify(sm2Merchant.Public(), msg+"x", a.Signature) == nil {
		t.Fatal("wrong key or message verified")
	}
	if paychannel.Verify(&merchantKey.PublicKey, msg, a.Signature) == nil {
		t.Fatal("an SM2 signature verified with an RSA key")
	}
	if _, err := paychannel.ParseAuth(strings.Replace(a.String(), "WECHATPAY2-SM2-WITH-SM3", "WECHATPAY2-SM2-WITH-SHA256", 1)); err == nil {
		t.Fatal("an unknown scheme was accepted")
	}

	e := newSM2Env(t)
	ctx := context.Background()
	if _, err := e.c.CreateNative(ctx, e.order("SM2SIGN0001", 100)); err != nil {
		t.Fatal(err)
	}
	// The channel refuses a request signed with another SM2 key, and an
	// RSA-signed request for a merchant whose API key is SM2.
	for _, key := range []any{sm2Other, merchantKey} {
		bad := *e.c
		switch k := key.(type) {
		case *sm2.PrivateKey:
			bad.Key = k
		default:
			bad.Key = merchantKey
			bad.PlatformKey, bad.PlatformSerial = e.sim.PlatformKey(), e.sim.PlatformSerial()
		}
		_, err = bad.CreateNative(ctx, e.order("SM2SIGN0002", 100))
		wantCode(t, err, ihos.EInternal, paychannel.CodeSignError)
	}
	// The client refuses answers not signed by the SM2 platform key it
	// trusts, and SM2 answers when it expects RSA.
	forged := *e.c
	forged.PlatformKey, forged.PlatformSerial = sm2OtherPlatf.Public(), ""
	_, err = forged.Query(ctx, "SM2SIGN0001")
	wantCode(t, err, ihos.EUnavailable, "")
	rsaPlatform := *e.c
	rsaPlatform.PlatformKey, rsaPlatform.PlatformSerial = e.sim.PlatformKey(), ""
	_, err = rsaPlatform.Query(ctx, "SM2SIGN0001")
	wantCode(t, err, ihos.EUnavailable, "")
}

func TestSM2PayAndRefund(t *testing.T) {
	e := newSM2Env(t)
	ctx := context.Background()
	o := e.order("ORDSM2000001", 12550)
	prepay, err := e.c.CreateJSAPI(ctx, o)
	if err != nil || !strings.HasPrefix(prepay, "wx") {
		t.Fatalf("jsapi = %q, %v", prepay, err)
	}
	// wx.requestPayment takes only RSA: the pay parameters are signed with
	// the RSA key even for an SM2 merchant.
	pp, err := e.c.JSAPIPayParams(prepay)
	if err != nil || pp.SignType != "RSA" ||
		paychannel.Verify(&merchantKey.PublicKey, pp.AppID+"\n"+pp.TimeStamp+"\n"+pp.NonceStr+"\n"+pp.Package+"\n", pp.PaySign) != nil {
		t.Fatalf("pay params = %+v, %v", pp, err)
	}
	noRSA := *e.c
	noRSA.PaySignKey = nil
	if _, err := noRSA.JSAPIPayParams(prepay); err == nil {
		t.Fatal("pay params signed without an RSA key")
	}

	controlPay(t, e, o.OutTradeNo)
	r := e.next(t)
	if r.err != nil || r.n.Transaction == nil || r.n.Transaction.OutTradeNo != o.OutTradeNo || !r.n.Transaction.Paid() {
		t.Fatalf("notify = %+v, %v", r.n, r.err)
	}
	var nb paychannel.NotifyBody
	json.Unmarshal(r.body, &nb)
	if st := r.header.Get(paychannel.HeaderSignatureType); st != paychannel.AuthSchemeSM2 || nb.Resource.Algorithm != paychannel.AlgorithmSM4GCM ||
		r.header.Get(paychannel.HeaderSerial) != e.sim.PlatformSM2Serial() {
		t.Fatalf("notify signed %q serial %q, resource %q", st, r.header.Get(paychannel.HeaderSerial), nb.Resource.Algorithm)
	}
	tr, err := e.c.Query(ctx, o.OutTradeNo)
	if err != nil || !tr.Paid() || tr.TransactionID != r.n.Transaction.TransactionID {
		t.Fatalf("query = %+v, %v", tr, err)
	}
	ro := paychannel.RefundOrder{OutTradeNo: o.OutTradeNo, OutRefundNo: "RFSM2000001", NotifyURL: e.notifyURL, Refund: 550, Total: 12550}
	if _, err := e.c.Refund(ctx, ro); err != nil {
		t.Fatal(err)
	}
	if r := e.next(t); r.err != nil || r.n.Refund == nil || r.n.Refund.RefundStatus != paychannel.RefundSuccess {
		t.Fatalf("refund notify = %+v, %v", r.n, r.err)
	}
	if rq, err := e.c.QueryRefund(ctx, ro.OutRefundNo); err != nil || rq.Status != paychannel.RefundSuccess {
		t.Fatalf("query refund = %+v, %v", rq, err)
	}
}

func TestSM2NotifyRejected(t *testing.T) {
	e := newSM2Env(t)
	ctx := context.Background()
	o := e.order("ORDSM2000101", 300)
	if _, err := e.c.CreateNative(ctx, o); err != nil {
		t.Fatal(err)
	}
	controlPay(t, e, o.OutTradeNo)
	good := e.next(t)
	if good.err != nil {
		t.Fatal(good.err)
	}
	parse := func(h http.Header, body []byte) error {
		r := httptest.NewRequest(http.MethodPost, "/pay/notify", bytes.NewReader(body))
		r.Header = h
		_, err := e.c.ParseNotify(r)
		return err
	}
	if err := parse(good.header, good.body); err != nil {
		t.Fatalf("the genuine notify again: %v", err)
	}
	sign := func(key *sm2.PrivateKey, body []byte) http.Header {
		h := good.header.Clone()
		ts, nonce := h.Get(paychannel.HeaderTimestamp), paychannel.NewNonce()
		sig, _ := paychannel.Sign(key, paychannel.ResponseMessage(ts, nonce, body))
		h.Set(paychannel.HeaderNonce, nonce)
		h.Set(paychannel.HeaderSignature, sig)
		return h
	}
	// Forged: signed with another SM2 key.
	wantCode(t, parse(sign(sm2OtherPlatf, good.body), good.body), ihos.EForbidden, "")
	// The body changed after signing.
	changed := bytes.Replace(good.body, []byte(`"TRANSACTION.SUCCESS"`), []byte(`"TRANSACTION.SUCCESS" `), 1)
	wantCode(t, parse(good.header, changed), ihos.EForbidden, "")
	// The signature type claims RSA (a downgrade) or is missing.
	h := good.header.Clone()
	h.Set(paychannel.HeaderSignatureType, paychannel.AuthScheme)
	wantCode(t, parse(h, good.body), ihos.EForbidden, "")
	h.Del(paychannel.HeaderSignatureType)
	wantCode(t, parse(h, good.body), ihos.EForbidden, "")
	// Tampered ciphertext, even correctly signed: GCM authentication fails.
	var nb paychannel.NotifyBody
	json.Unmarshal(good.body, &nb)
	ct, _ := base64.StdEncoding.DecodeString(nb.Resource.Ciphertext)
	ct[3] ^= 1
	tb := nb
	tb.Resource.Ciphertext = base64.StdEncoding.EncodeToString(ct)
	tampered, _ := json.Marshal(tb)
	wantCode(t, parse(sign(sm2Platform, tampered), tampered), ihos.EForbidden, "")
	// SM4 under another APIv3 key does not decrypt.
	res, _ := paychannel.EncryptResourceWith(paychannel.AlgorithmSM4GCM, []byte("ffffffffffffffffffffffffffffffff"), "transaction", "transaction", []byte(`{}`))
	tb.Resource = res
	other, _ := json.Marshal(tb)
	wantCode(t, parse(sign(sm2Platform, other), other), ihos.EForbidden, "")
}

// TestSM4ResourceKey checks the notify key derivation against the
// project's own SM3 and SM4-GCM (package certs): the SM4 key is the first
// 128 bits of SM3(APIv3 key).
func TestSM4ResourceKey(t *testing.T) {
	plain := []byte(`{"out_trade_no":"ORD1"}`)
	res, err := paychannel.EncryptResourceWith(paychannel.AlgorithmSM4GCM, apiV3Key, "transaction", "transaction", plain)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := base64.StdEncoding.DecodeString(res.Ciphertext)
	k := certs.SM3Sum(apiV3Key)
	got, err := certs.SM4GCMOpen(k[:16], []byte(res.Nonce), ct, []byte(res.AssociatedData))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("certs.SM4GCMOpen = %q, %v", got, err)
	}
	back, err := paychannel.DecryptResource(apiV3Key, res)
	if err != nil || !bytes.Equal(back, plain) {
		t.Fatalf("DecryptResource = %q, %v", back, err)
	}
	aes, _ := paychannel.EncryptResource(apiV3Key, "transaction", "transaction", plain)
	if aes.Algorithm != paychannel.AlgorithmAESGCM || aes.Ciphertext == res.Ciphertext {
		t.Fatalf("AES resource %+v", aes)
	}
}

func TestSM2PlatformKeyPersists(t *testing.T) {
	sm2Keys(t)
	db := filepath.Join(t.TempDir(), "pay-sim.db")
	ctx := context.Background()
	sim, err := paysim.Start(ctx, paysim.Config{DBPath: db})
	if err != nil {
		t.Fatal(err)
	}
	serial, pem := sim.PlatformSM2Serial(), sim.PlatformSM2CertPEM()
	sim.Close()
	sim2, err := paysim.Start(ctx, paysim.Config{DBPath: db})
	if err != nil {
		t.Fatal(err)
	}
	defer sim2.Close()
	if sim2.PlatformSM2Serial() != serial || !bytes.Equal(sim2.PlatformSM2CertPEM(), pem) {
		t.Fatal("SM2 platform certificate changed across a restart")
	}
	pub, s, err := paychannel.ParsePublicKeyPEM(pem)
	if err != nil || s != serial || paychannel.SchemeOf(pub) != paychannel.AuthSchemeSM2 {
		t.Fatalf("SM2 platform certificate: %T %s, %v", pub, s, err)
	}
}

// TestSM2OpenSSL checks the request signature both ways against OpenSSL 3:
// ours verifies with `openssl dgst -sm3 -verify -sigopt
// distid:1234567812345678`, and OpenSSL's verifies with ours; the key
// files we write are read by OpenSSL and the other way round.
func TestSM2OpenSSL(t *testing.T) {
	openssl := requireOpenSSL(t)
	sm2Keys(t)
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, openssl, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	msg := paychannel.RequestMessage("POST", paychannel.PathJSAPI, 1636620536, "fixednonce", []byte(`{"appid":"wxd678efh567hg6787"}`))
	write("msg", []byte(msg))

	// Ours, verified by OpenSSL with the default distid.
	sig, err := paychannel.Sign(sm2Merchant, msg)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := base64.StdEncoding.DecodeString(sig)
	write("our.sig", der)
	write("our.pub", paychannel.MarshalPublicKeyPEM(sm2Merchant.Public()))
	if out := run("dgst", "-sm3", "-verify", "our.pub", "-signature", "our.sig", "-sigopt", "distid:1234567812345678", "msg"); strings.TrimSpace(out) != "Verified OK" {
		t.Fatalf("openssl: %s", out)
	}
	// OpenSSL's, with a key it generated, verified by us.
	run("genpkey", "-algorithm", "SM2", "-out", "peer.pem")
	run("pkey", "-in", "peer.pem", "-pubout", "-out", "peer.pub")
	run("dgst", "-sm3", "-sign", "peer.pem", "-sigopt", "distid:1234567812345678", "-out", "peer.sig", "msg")
	pb, _ := os.ReadFile(filepath.Join(dir, "peer.pub"))
	pub, _, err := paychannel.ParsePublicKeyPEM(pb)
	if err != nil {
		t.Fatal(err)
	}
	psig, _ := os.ReadFile(filepath.Join(dir, "peer.sig"))
	if err := paychannel.Verify(pub, msg, base64.StdEncoding.EncodeToString(psig)); err != nil {
		t.Fatalf("OpenSSL's signature: %v", err)
	}
	if paychannel.Verify(pub, msg+"x", base64.StdEncoding.EncodeToString(psig)) == nil {
		t.Fatal("OpenSSL's signature verified over another message")
	}
	// Its key file signs for us, and the signature verifies in OpenSSL.
	kb, _ := os.ReadFile(filepath.Join(dir, "peer.pem"))
	key, err := paychannel.ParsePrivateKeyPEM(kb)
	if err != nil {
		t.Fatal(err)
	}
	sig2, _ := paychannel.Sign(key, msg)
	der2, _ := base64.StdEncoding.DecodeString(sig2)
	write("our2.sig", der2)
	if out := run("dgst", "-sm3", "-verify", "peer.pub", "-signature", "our2.sig", "-sigopt", "distid:1234567812345678", "msg"); strings.TrimSpace(out) != "Verified OK" {
		t.Fatalf("openssl: %s", out)
	}
	// And the key file we write is one OpenSSL reads as SM2.
	write("our.pem", paychannel.MarshalPrivateKeyPEM(sm2Merchant))
	if out := run("pkey", "-in", "our.pem", "-noout", "-text"); !strings.Contains(out, "SM2") {
		t.Fatalf("openssl pkey: %s", out)
	}
}

func requireOpenSSL(t *testing.T) string {
	t.Helper()
	reason := ""
	p, err := exec.LookPath("openssl")
	if err != nil {
		reason = "openssl is not in PATH"
	} else if ver, _ := exec.Command(p, "version").CombinedOutput(); !bytes.HasPrefix(ver, []byte("OpenSSL 3.")) {
		reason = "openssl is not OpenSSL 3: " + strings.TrimSpace(string(ver))
	} else if algs, _ := exec.Command(p, "list", "-public-key-algorithms").CombinedOutput(); !bytes.Contains(bytes.ToUpper(algs), []byte("SM2")) {
		reason = "openssl has no SM2"
	}
	if reason != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the OpenSSL cross-check cannot run: %s", reason)
		}
		t.Skip(reason)
	}
	return p
}
