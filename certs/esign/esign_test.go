package esign_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math/big"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs"
	"ihos/certs/ca"
	"ihos/certs/esign"
	"ihos/certs/tsa"
	"ihos/internal/auth"
	"ihos/internal/sqldb/sqldbtest"
)

var admin = ihos.WithActor(context.Background(), ihos.Actor{UserID: "t", Username: "t", Role: auth.RoleSysAdmin})

func newService(t *testing.T) *esign.Service {
	t.Helper()
	db := sqldbtest.SQLite(t)
	c, err := ca.Open(admin, db, ca.Options{Dir: t.TempDir(), Name: "测试医院 CA"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := certs.GenerateSM2Key()
	if err != nil {
		t.Fatal(err)
	}
	tsaCert, err := c.Issue(admin, ca.IssueRequest{Kind: ca.KindTSA, CommonName: "测试医院时间戳服务", PublicKey: key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	return &esign.Service{DB: db, CA: c, KEK: bytes.Repeat([]byte{7}, 16), TSA: &tsa.Authority{Cert: tsaCert, Key: key}}
}

const emr = `{"patient": "张三", "chief_complaint": "头晕三天", "diagnosis": [{"code": "I10", "name": "原发性高血压"}], "fee": 2500}`

// A doctor enrolls, signs an EMR with their PIN, and anyone with the CA
// certificate verifies it, however the JSON is formatted; one changed
// character fails.
func TestSignAndVerifyEMR(t *testing.T) {
	s := newService(t)
	ctx := admin
	if _, err := s.Enroll(ctx, "D1001", "李医生", "246810"); err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(ctx, "D1001", "246810", []byte(emr))
	if err != nil {
		t.Fatal(err)
	}
	roots := []*smx509.Certificate{s.CA.Certificate()}
	reformatted := `{"fee":2500,"diagnosis":[{"name":"原发性高血压","code":"I10"}],
		"chief_complaint":"头晕三天","patient":"张三"}`
	v, err := esign.Verify(ctx, []byte(reformatted), sig.P7, roots)
	if err != nil {
		t.Fatal(err)
	}
	if v.Signer != "李医生" || v.Serial != sig.Serial || v.TimestampAt.IsZero() {
		t.Fatalf("verified %+v", v)
	}
	changed := strings.Replace(emr, "头晕三天", "头晕四天", 1)
	if _, err := esign.Verify(ctx, []byte(changed), sig.P7, roots); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Fatalf("a changed EMR verified: %v", err)
	}
	other, err := ca.Open(admin, sqldbtest.SQLite(t), ca.Options{Dir: t.TempDir(), Name: "别的 CA"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := esign.Verify(ctx, []byte(emr), sig.P7, []*smx509.Certificate{other.Certificate()}); err == nil {
		t.Fatal("verified against another hospital's CA")
	}
	if _, err := esign.Verify(ctx, []byte(emr), sig.P7[:len(sig.P7)/2], roots); err == nil {
		t.Fatal("a truncated signature verified")
	}
}

// The key opens only with the staff member's PIN; repeated wrong PINs lock it.
func TestPINGuardsTheKey(t *testing.T) {
	s := newService(t)
	ctx := admin
	if _, err := s.Enroll(ctx, "P2001", "王药师", "135790"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enroll(ctx, "P2002", "赵药师", "123"); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Fatalf("a 3-digit PIN: %v", err)
	}
	for i := range esign.MaxAttempts {
		_, err := s.Sign(ctx, "P2001", "000000", []byte(emr))
		if ihos.ErrorCode(err) != ihos.EForbidden {
			t.Fatalf("wrong PIN %d: %v", i, err)
		}
	}
	_, err := s.Sign(ctx, "P2001", "135790", []byte(emr))
	var e *ihos.Error
	if !errors.As(err, &e) || !strings.Contains(e.Message, "错误次数过多") {
		t.Fatalf("the right PIN while locked: %v", err)
	}
	if _, err := s.Sign(ctx, "nobody", "135790", []byte(emr)); ihos.ErrorCode(err) != ihos.ENotFound {
		t.Fatalf("unknown staff: %v", err)
	}
	// Re-enrolling supersedes the old certificate.
	old, _ := s.CA.Lookup(ctx, mustSerial(t, s, "P2001"))
	if _, err := s.Enroll(ctx, "P2001", "王药师", "975310"); err != nil {
		t.Fatal(err)
	}
	rec, err := s.CA.Lookup(ctx, old.Serial)
	if err != nil || rec.Status != "revoked" {
		t.Fatalf("old certificate after re-enrolling: %+v %v", rec, err)
	}
	if _, err := s.Sign(ctx, "P2001", "975310", []byte(emr)); err != nil {
		t.Fatal(err)
	}
	// A revoked certificate signs nothing more.
	if err := s.CA.Revoke(ctx, mustSerial(t, s, "P2001"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(ctx, "P2001", "975310", []byte(emr)); ihos.ErrorCode(err) != ihos.EForbidden || !strings.Contains(err.Error(), "吊销") {
		t.Fatalf("signing with a revoked certificate: %v", err)
	}
}

// The time source's check stops signing.
func TestNotReadyRefuses(t *testing.T) {
	s := newService(t)
	s.Ready = func() error { return ihos.Errorf(ihos.EUnavailable, "本机时间与时间源相差 5 秒") }
	if _, err := s.Enroll(admin, "D1", "医生", "246810"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(admin, "D1", "246810", []byte(emr)); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Fatalf("signing with the clock off: %v", err)
	}
}

func TestSignatureImage(t *testing.T) {
	s := newService(t)
	img := image.NewGray(image.Rect(0, 0, 300, 100))
	for x := 20; x < 280; x++ {
		img.Set(x, 50+(x%20)-10, color.Gray{})
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	if err := s.SetImage(admin, "D1", buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	got, err := s.Image(admin, "D1")
	if err != nil || !bytes.Equal(got, buf.Bytes()) {
		t.Fatalf("image back: %d bytes, %v", len(got), err)
	}
	for _, bad := range [][]byte{[]byte("not a png"), buf.Bytes()[:40], make([]byte, 300<<10)} {
		if err := s.SetImage(admin, "D1", bad); ihos.ErrorCode(err) != ihos.EInvalid {
			t.Fatalf("bad image accepted: %v", err)
		}
	}
}

func TestCanonical(t *testing.T) {
	a, err := esign.Canonical([]byte(` {"b": 1.50, "a": ["<x>", {"d": null, "c": true}]} `))
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != `{"a":["<x>",{"c":true,"d":null}],"b":1.50}` {
		t.Fatalf("canonical %s", a)
	}
	for _, bad := range []string{``, `{`, `{"a":1} {"b":2}`, `nul`} {
		if _, err := esign.Canonical([]byte(bad)); ihos.ErrorCode(err) != ihos.EInvalid {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func mustSerial(t *testing.T, s *esign.Service, staff string) *big.Int {
	t.Helper()
	var hexSerial string
	if err := s.DB.QueryRow(`SELECT cert_serial FROM staff_keys WHERE staff_id = ?`, staff).Scan(&hexSerial); err != nil {
		t.Fatal(err)
	}
	n, _ := new(big.Int).SetString(hexSerial, 16)
	return n
}

// Garbled documents and signatures fail cleanly.
func FuzzVerify(f *testing.F) {
	db := sqldbtest.SQLite(f)
	c, err := ca.Open(admin, db, ca.Options{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	s := &esign.Service{DB: db, CA: c, KEK: bytes.Repeat([]byte{7}, 16)}
	if _, err := s.Enroll(admin, "D1", "医生", "246810"); err != nil {
		f.Fatal(err)
	}
	sig, err := s.Sign(admin, "D1", "246810", []byte(emr))
	if err != nil {
		f.Fatal(err)
	}
	roots := []*smx509.Certificate{c.Certificate()}
	f.Add([]byte(emr), sig.P7)
	f.Add([]byte(`{}`), sig.P7[:10])
	f.Fuzz(func(t *testing.T, doc, p7 []byte) {
		v, err := esign.Verify(admin, doc, p7, roots)
		if err == nil && v.Signer != "医生" {
			t.Fatalf("verified with signer %q", v.Signer)
		}
	})
}
