package mobile

// The envelope against OpenSSL 3 run as a subprocess: the SM4 key derivation
// and encData are reproduced byte for byte with `openssl enc -sm4-ecb`, and
// SM3withSM2 signatures with the user id appSecret are checked both ways with
// `openssl dgst -sm3 -sigopt distid:<appSecret>`. The test skips when openssl
// lacks SM2 or SM4-ECB, except with CI=true, where it fails.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"ihos/certs"
)

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
	} else if c, _ := exec.Command(p, "list", "-cipher-algorithms").CombinedOutput(); !bytes.Contains(bytes.ToUpper(c), []byte("SM4-ECB")) {
		reason = "openssl has no SM4-ECB"
	}
	if reason != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but the OpenSSL cross-check cannot run: %s", reason)
		}
		t.Skip(reason)
	}
	return p
}

func runOpenSSL(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, requireOpenSSL(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func write(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEnvelopeAgainstOpenSSL(t *testing.T) {
	requireOpenSSL(t)
	dir := t.TempDir()
	const appID = "1GTESTAPPID0000112233445566778899"
	const appSecret = "Q7ZK3M9XW2RTB5YH8NC4VJ6PLD1FGS0E"

	// 1. The SM4 key: SM4-ECB/PKCS#7(key = appId[:16], data = appSecret),
	// upper hex, first 16 characters.
	write(t, dir, "secret", []byte(appSecret))
	runOpenSSL(t, dir, "enc", "-sm4-ecb", "-K", hex.EncodeToString([]byte(appID[:16])), "-in", "secret", "-out", "secret.ct")
	wantKey := strings.ToUpper(hex.EncodeToString(read(t, dir, "secret.ct")))[:16]
	key, err := DeriveSM4Key(appID, appSecret)
	if err != nil || string(key) != wantKey {
		t.Fatalf("DeriveSM4Key = %q, %v; OpenSSL gives %q", key, err, wantKey)
	}

	// 2. encData: OpenSSL encrypts the same plaintext to the same bytes, and
	// decrypts ours.
	data := FeeUpload{OrgCodg: "H11010500123", MedOrgOrd: "MO-1", UserName: "张三", MedfeeSumamt: 12345,
		FeeDetailList: []FeeDetail{{FeedetlSn: "1", MedListCodg: "XJ01", DetItemFeeSumamt: 12345, Pric: 12345, Cnt: "1"}}}
	plain, _ := json.Marshal(data)
	plain = asciiJSON(plain)
	if bytes.ContainsFunc(plain, func(r rune) bool { return r > 127 }) {
		t.Fatal("asciiJSON left non-ASCII")
	}
	write(t, dir, "plain", plain)
	runOpenSSL(t, dir, "enc", "-sm4-ecb", "-K", hex.EncodeToString(key), "-in", "plain", "-out", "plain.ct")
	opensslEnc := strings.ToUpper(hex.EncodeToString(read(t, dir, "plain.ct")))
	mine, err := EncryptData(key, plain)
	if err != nil || mine != opensslEnc {
		t.Fatalf("encData differs:\nours    %s\nopenssl %s", mine, opensslEnc)
	}
	back, err := DecryptData(key, strings.ToLower(opensslEnc))
	if err != nil || !bytes.Equal(back, plain) {
		t.Fatalf("decrypting OpenSSL's ciphertext: %v", err)
	}
	ourCT, _ := hex.DecodeString(mine)
	write(t, dir, "mine.ct", ourCT)
	runOpenSSL(t, dir, "enc", "-d", "-sm4-ecb", "-K", hex.EncodeToString(key), "-in", "mine.ct", "-out", "mine.pt")
	if !bytes.Equal(read(t, dir, "mine.pt"), plain) {
		t.Fatal("OpenSSL decrypted our encData to something else")
	}

	// 3. Our signature verifies in OpenSSL with distid = appSecret (and not
	// with the GM/T 0009 default id).
	ourKey, _ := sm2.GenerateKey(rand.Reader)
	s := Sealer{AppID: appID, AppSecret: appSecret, Key: ourKey, Peer: &ourKey.PublicKey}
	env, err := s.Seal(data)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := s.Open(env)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := SigningString(env, opened, appSecret)
	if !bytes.HasPrefix(msg, []byte("appId="+appID+"&data={")) || !bytes.HasSuffix(msg, []byte("&encType=SM4&signType=SM2&timestamp="+
		itoa(env.Timestamp)+"&version=2.0.1&key="+appSecret)) || !bytes.Contains(msg, []byte(`"userName":"张三"`)) {
		t.Fatalf("signing string %s", msg)
	}
	sig, _ := base64.StdEncoding.DecodeString(env.SignData)
	write(t, dir, "msg", msg)
	write(t, dir, "our.sig", sig)
	write(t, dir, "our.pub", pubPEM(t, &ourKey.PublicKey))
	if out := runOpenSSL(t, dir, "dgst", "-sm3", "-verify", "our.pub", "-signature", "our.sig", "-sigopt", "distid:"+appSecret, "msg"); strings.TrimSpace(out) != "Verified OK" {
		t.Fatalf("openssl dgst -verify: %s", out)
	}
	cmd := exec.Command(requireOpenSSL(t), "dgst", "-sm3", "-verify", "our.pub", "-signature", "our.sig", "-sigopt", "distid:"+certs.DefaultUID, "msg")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("OpenSSL verified under the default distid: %s", out)
	}

	// 4. An envelope made entirely by OpenSSL (its key, its ciphertext, its
	// signature) opens here.
	runOpenSSL(t, dir, "genpkey", "-algorithm", "SM2", "-out", "peer.pem")
	k, err := certs.ParsePrivateKeyPEM(read(t, dir, "peer.pem"))
	if err != nil {
		t.Fatal(err)
	}
	peer := k.(*sm2.PrivateKey)
	penv := Envelope{AppID: appID, EncData: opensslEnc, EncType: "SM4", SignType: "SM2", Timestamp: 1767225600000, Version: "2.0.1"}
	pmsg, _ := SigningString(penv, plain, appSecret)
	write(t, dir, "pmsg", pmsg)
	runOpenSSL(t, dir, "dgst", "-sm3", "-sign", "peer.pem", "-sigopt", "distid:"+appSecret, "-out", "peer.sig", "pmsg")
	penv.SignData = base64.StdEncoding.EncodeToString(read(t, dir, "peer.sig"))
	ps := Sealer{AppID: appID, AppSecret: appSecret, Peer: &peer.PublicKey}
	got, err := ps.Open(penv)
	if err != nil {
		t.Fatalf("opening OpenSSL's envelope: %v", err)
	}
	var back2 FeeUpload
	if err := json.Unmarshal(got, &back2); err != nil || back2.UserName != "张三" || back2.MedfeeSumamt != 12345 {
		t.Fatalf("content %s: %v", got, err)
	}
	// Tampering with any signed field breaks it.
	for _, bad := range []Envelope{
		func() Envelope { e := penv; e.Timestamp++; return e }(),
		func() Envelope { e := penv; e.Version = "2.0.2"; return e }(),
		func() Envelope { e := penv; e.EncData = "00" + e.EncData[2:]; return e }(),
	} {
		if _, err := ps.Open(bad); err == nil {
			t.Errorf("tampered envelope %+v opened", bad)
		}
	}
	wrongID := ps
	wrongID.Peer = &ourKey.PublicKey
	if _, err := wrongID.Open(penv); err == nil {
		t.Error("another key verified OpenSSL's signature")
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func pubPEM(t *testing.T, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	der, err := smx509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return []byte("-----BEGIN PUBLIC KEY-----\n" + wrap64(base64.StdEncoding.EncodeToString(der)) + "-----END PUBLIC KEY-----\n")
}

func wrap64(s string) string {
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	return b.String() + s + "\n"
}

func TestStateOf(t *testing.T) {
	for code, want := range map[string]State{"0": Pending, "1": Pending, "2": Pending, "3": Settled, "6": Settled,
		"7": Refunded, "11": Refunded, "12": Cancelled, "14": Failed, "16": Failed, "17": Pending, "25": Pending,
		"": Pending, "x": Pending, "99": Pending} {
		if got := StateOf(code); got != want {
			t.Errorf("StateOf(%q) = %v, want %v", code, got, want)
		}
	}
}

func TestYuanStrict(t *testing.T) {
	var r OrderResult
	if err := json.Unmarshal([]byte(`{"feeSumamt": 12.345}`), &r); err == nil {
		t.Fatal("three decimals accepted")
	}
	if err := json.Unmarshal([]byte(`{"feeSumamt": "12.30", "fundPay": 8.6}`), &r); err != nil || r.FeeSumamt != 1230 || r.FundPay != 860 {
		t.Fatalf("%+v %v", r, err)
	}
}
