package ca

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

func TestOpenTwiceIsTheSameCA(t *testing.T) {
	db := sqldbtest.SQLite(t)
	dir := t.TempDir()
	a, err := Open(testCtx, db, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(testCtx, db, Options{Dir: dir, Name: "ignored once created"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Certificate().Raw, b.Certificate().Raw) || a.ID() != b.ID() {
		t.Fatal("a second Open made a different CA")
	}
	leaf, err := b.Issue(testCtx, IssueRequest{Kind: KindStaff, CommonName: "x", PublicKey: sm2Key(t).Public()})
	if err != nil || leaf.Subject.Organization[0] != DefaultName {
		t.Fatalf("the loaded CA's organization is not the default of its certificates: %v %v", err, leaf.Subject)
	}
	ca := a.Certificate()
	if ca.SignatureAlgorithm != smx509.SM2WithSM3 || !sm2.IsSM2PublicKey(ca.PublicKey) {
		t.Fatalf("root is %v / %T, want SM2-with-SM3 and an SM2 key", ca.SignatureAlgorithm, ca.PublicKey)
	}
	if !ca.IsCA || ca.KeyUsage != smx509.KeyUsageCertSign|smx509.KeyUsageCRLSign {
		t.Fatalf("root: IsCA=%v KeyUsage=%v", ca.IsCA, ca.KeyUsage)
	}
	if ca.Subject.CommonName != DefaultName || len(ca.Subject.Organization) != 1 || ca.Subject.Organization[0] != DefaultName {
		t.Fatalf("root subject %v", ca.Subject)
	}
	if d := ca.NotAfter.Sub(ca.NotBefore); d < 20*365*24*time.Hour {
		t.Fatalf("root validity %v, want 20 years", d)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("root self-signature: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, keyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key mode: %v %v", fi.Mode(), err)
	}
	// The root is recorded (once) and its creation audited.
	rec, err := a.Lookup(testCtx, ca.SerialNumber)
	if err != nil || rec.Status != StatusGood || rec.Kind != kindRoot {
		t.Fatalf("root record: %+v %v", rec, err)
	}
	entries, _, err := audit.List(testCtx, db, audit.Filter{Resource: "ca_certs", Action: "create"})
	if err != nil || len(entries) != 1 || entries[0].Action != "create" {
		t.Fatalf("audit after two opens: %+v %v", entries, err)
	}
	// A different database on the same directory: same CA, root recorded there too.
	db2 := sqldbtest.SQLite(t)
	c, err := Open(testCtx, db2, Options{Dir: dir})
	if err != nil || !bytes.Equal(c.Certificate().Raw, ca.Raw) {
		t.Fatalf("open on a new database: %v", err)
	}
	if _, err := Open(testCtx, db, Options{Dir: dir, KeyAlgorithm: "ECDSA"}); err == nil || !strings.Contains(err.Error(), "SM2") {
		t.Fatalf("KeyAlgorithm mismatch not refused: %v", err)
	}
}

func TestOpenConcurrentFirstStart(t *testing.T) {
	db := sqldbtest.SQLite(t)
	dir := t.TempDir()
	var wg sync.WaitGroup
	cas := make([]*CA, 4)
	errs := make([]error, 4)
	for i := range cas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cas[i], errs[i] = Open(testCtx, db, Options{Dir: dir})
		}()
	}
	wg.Wait()
	for i := range cas {
		if errs[i] != nil {
			t.Fatalf("open %d: %v", i, errs[i])
		}
		if !bytes.Equal(cas[i].Certificate().Raw, cas[0].Certificate().Raw) {
			t.Fatalf("concurrent first starts made different CAs")
		}
	}
}

func TestKEK(t *testing.T) {
	db := sqldbtest.SQLite(t)
	dir := t.TempDir()
	kek := bytes.Repeat([]byte{7}, 16)
	a, err := Open(testCtx, db, Options{Dir: dir, KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, keyFile))
	if !bytes.Contains(raw, []byte(pemSealed)) || bytes.Contains(raw, []byte("BEGIN PRIVATE KEY")) {
		t.Fatalf("key not sealed:\n%s", raw)
	}
	b, err := Open(testCtx, db, Options{Dir: dir, KEK: kek})
	if err != nil || !bytes.Equal(a.Certificate().Raw, b.Certificate().Raw) {
		t.Fatalf("reopen with the KEK: %v", err)
	}
	wrong := bytes.Repeat([]byte{8}, 16)
	if _, err := Open(testCtx, db, Options{Dir: dir, KEK: wrong}); err == nil || !strings.Contains(err.Error(), "wrong key-encryption key") {
		t.Fatalf("wrong KEK: %v", err)
	}
	if _, err := Open(testCtx, db, Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("no KEK for a sealed key: %v", err)
	}
	if _, err := Open(testCtx, db, Options{Dir: dir, KEK: []byte("short")}); err == nil || !strings.Contains(err.Error(), "16 bytes") {
		t.Fatalf("short KEK: %v", err)
	}

	// An unsealed CA gets sealed when a KEK is configured later.
	dir2 := t.TempDir()
	if _, err := Open(testCtx, db, Options{Dir: dir2, KeyAlgorithm: KeyECDSA}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(testCtx, db, Options{Dir: dir2, KEK: kek}); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(filepath.Join(dir2, keyFile))
	if !bytes.Contains(raw, []byte(pemSealed)) {
		t.Fatal("key was not sealed in place")
	}
	if _, err := Open(testCtx, db, Options{Dir: dir2, KEK: wrong}); err == nil {
		t.Fatal("opened with a wrong KEK after sealing in place")
	}

	// A key file others can read is refused.
	os.Chmod(filepath.Join(dir, keyFile), 0o644)
	if _, err := Open(testCtx, db, Options{Dir: dir, KEK: kek}); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("world-readable key: %v", err)
	}
	// A directory with the certificate but without the key is an error, not a new CA.
	os.Remove(filepath.Join(dir, keyFile))
	if _, err := Open(testCtx, db, Options{Dir: dir, KEK: kek}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing key: %v", err)
	}
}

func TestIssueKindsAndVerifyLevel1(t *testing.T) {
	c := newTestCA(t, Options{})
	tests := []struct {
		kind string
		pub  any
	}{
		{KindStaff, sm2Key(t).Public()},
		{KindDevice, sm2Key(t).Public()},
		{KindTSA, sm2Key(t).Public()},
		{KindServer, ecKey(t).Public()},
		{KindStaff, rsaKey(t).Public()},
		{KindDevice, ecKey(t).Public()},
		{KindOCSP, sm2Key(t).Public()},
	}
	for _, tc := range tests {
		cert := c.issue(t, tc.kind, "主体-"+tc.kind, tc.pub)
		if cert.SignatureAlgorithm != smx509.SM2WithSM3 {
			t.Errorf("%s: signature %v", tc.kind, cert.SignatureAlgorithm)
		}
		if cert.SerialNumber.BitLen() < 100 || cert.SerialNumber.BitLen() > 128 {
			t.Errorf("%s: serial has %d bits", tc.kind, cert.SerialNumber.BitLen())
		}
		if len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != c.srv.URL+"/ca/crl" ||
			len(cert.OCSPServer) != 1 || cert.OCSPServer[0] != c.srv.URL+"/ca/ocsp" {
			t.Errorf("%s: CDP %v OCSP %v", tc.kind, cert.CRLDistributionPoints, cert.OCSPServer)
		}
		if !bytes.Equal(cert.AuthorityKeyId, c.Certificate().SubjectKeyId) || len(cert.SubjectKeyId) == 0 {
			t.Errorf("%s: key identifiers", tc.kind)
		}
		switch tc.kind {
		case KindStaff:
			if cert.KeyUsage != smx509.KeyUsageDigitalSignature|smx509.KeyUsageContentCommitment || len(cert.ExtKeyUsage) != 0 {
				t.Errorf("staff usage %v %v", cert.KeyUsage, cert.ExtKeyUsage)
			}
			if d := cert.NotAfter.Sub(cert.NotBefore); d != 2*year {
				t.Errorf("staff validity %v", d)
			}
		case KindDevice:
			if len(cert.ExtKeyUsage) != 2 || cert.DNSNames[0] != "kiosk-01.hospital.lan" {
				t.Errorf("device EKU %v DNS %v", cert.ExtKeyUsage, cert.DNSNames)
			}
			if d := cert.NotAfter.Sub(cert.NotBefore); d != 5*year {
				t.Errorf("device validity %v", d)
			}
		case KindTSA:
			critical := false
			for _, e := range cert.Extensions {
				if e.Id.Equal(oidExtEKU) {
					critical = e.Critical
				}
			}
			if !critical || len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != smx509.ExtKeyUsageTimeStamping {
				t.Errorf("tsa EKU %v critical=%v", cert.ExtKeyUsage, critical)
			}
		case KindOCSP:
			if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != smx509.ExtKeyUsageOCSPSigning {
				t.Errorf("ocsp EKU %v", cert.ExtKeyUsage)
			}
		}
		r := c.verify(cert, LevelChain, nil)
		mustValid(t, r)
		if len(r.Chain) != 2 || !r.Chain[1].Equal(c.Certificate()) {
			t.Errorf("%s: chain %d", tc.kind, len(r.Chain))
		}
		rec, err := c.Lookup(testCtx, cert.SerialNumber)
		if err != nil || rec.Status != StatusGood || rec.Kind != tc.kind || rec.SubjectID != "id-主体-"+tc.kind || !rec.Cert.Equal(cert) {
			t.Errorf("%s: lookup %+v %v", tc.kind, rec, err)
		}
	}
	entries, _, _ := audit.List(testCtx, c.db, audit.Filter{Resource: "ca_certs", Action: "issue"})
	if len(entries) != len(tests) {
		t.Errorf("%d issue audit entries, want %d", len(entries), len(tests))
	}
	if bad, err := audit.Verify(testCtx, c.db); err != nil || bad != 0 {
		t.Errorf("audit chain: %d %v", bad, err)
	}
}

func TestIssueRejects(t *testing.T) {
	c := newTestCA(t, Options{})
	pub := sm2Key(t).Public()
	for name, r := range map[string]IssueRequest{
		"no kind":       {CommonName: "x", PublicKey: pub},
		"bad kind":      {Kind: "admin", CommonName: "x", PublicKey: pub},
		"no name":       {Kind: KindStaff, PublicKey: pub},
		"no key":        {Kind: KindStaff, CommonName: "x"},
		"server no SAN": {Kind: KindServer, CommonName: "x", PublicKey: pub},
		"bad dns":       {Kind: KindDevice, CommonName: "x", PublicKey: pub, DNSNames: []string{"a b"}},
		"bad email":     {Kind: KindStaff, CommonName: "x", PublicKey: pub, Email: "nobody"},
		"negative":      {Kind: KindStaff, CommonName: "x", PublicKey: pub, ValidFor: -time.Hour},
		"long name":     {Kind: KindStaff, CommonName: strings.Repeat("医", 65), PublicKey: pub},
	} {
		if _, err := c.Issue(testCtx, r); ihos.ErrorCode(err) != ihos.EInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The certificate never outlives the CA.
	cert, err := c.Issue(testCtx, IssueRequest{Kind: KindStaff, CommonName: "长期", PublicKey: pub, ValidFor: 50 * year,
		Email: "doc@hospital.cn", IPs: []net.IP{net.ParseIP("10.0.0.5")}})
	if err != nil || !cert.NotAfter.Equal(c.Certificate().NotAfter) || cert.EmailAddresses[0] != "doc@hospital.cn" {
		t.Fatalf("capped validity: %v %v", err, cert)
	}
}

func TestVerifyLevel1Failures(t *testing.T) {
	c := newTestCA(t, Options{})
	// Issued five minutes ago for two minutes (the root dates from ten minutes ago).
	expired, err := c.Issue(testCtx, IssueRequest{Kind: KindStaff, CommonName: "过期", PublicKey: sm2Key(t).Public(),
		notBefore: time.Now().Add(-5 * time.Minute), ValidFor: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	mustInvalid(t, c.verify(expired, LevelChain, nil), "证书已过期")
	// Valid at a time inside its validity (a signature made back then).
	mustValid(t, c.verify(expired, LevelChain, func(o *VerifyOptions) { o.At = time.Now().Add(-4 * time.Minute) }))
	// Before the root existed, the chain is not valid.
	old, err := c.Issue(testCtx, IssueRequest{Kind: KindStaff, CommonName: "很久以前", PublicKey: sm2Key(t).Public(),
		notBefore: time.Now().Add(-3 * year), ValidFor: year})
	if err != nil {
		t.Fatal(err)
	}
	mustInvalid(t, c.verify(old, LevelChain, func(o *VerifyOptions) { o.At = time.Now().Add(-5 * year / 2) }), "签发者证书已过期或尚未生效")

	good := c.issue(t, KindStaff, "王医生", sm2Key(t).Public())
	mustInvalid(t, c.verify(good, LevelChain, func(o *VerifyOptions) { o.At = time.Now().Add(-time.Hour) }), "证书尚未生效")

	other := newTestCA(t, Options{Name: "别的 CA"})
	foreign := other.issue(t, KindStaff, "外院医生", sm2Key(t).Public())
	mustInvalid(t, c.verify(foreign, LevelChain, nil), "证书签发者不受信任")
	mustInvalid(t, Verify(testCtx, good, VerifyOptions{Level: 1}), "证书签发者不受信任")
	mustInvalid(t, c.verify(good, 0, nil), "验证级别")
	// Same subject name, different key: the signature does not check out.
	mustValid(t, other.verify(foreign, LevelChain, nil))

	// An ECDSA CA verifies the same way, and trusts its own certificates only.
	ec := newTestCA(t, Options{KeyAlgorithm: KeyECDSA})
	ecCert := ec.issue(t, KindDevice, "自助机", sm2Key(t).Public())
	if ecCert.SignatureAlgorithm != smx509.ECDSAWithSHA256 {
		t.Fatalf("ECDSA CA signs with %v", ecCert.SignatureAlgorithm)
	}
	mustValid(t, ec.verify(ecCert, LevelChain, nil))
	mustInvalid(t, c.verify(ecCert, LevelChain, nil), "证书签发者不受信任")
}

func TestRevokeAndLookup(t *testing.T) {
	c := newTestCA(t, Options{})
	cert := c.issue(t, KindStaff, "赵护士", sm2Key(t).Public())
	if err := c.Revoke(testCtx, cert.SerialNumber, 7); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Fatalf("reason 7: %v", err)
	}
	if err := c.Revoke(testCtx, big.NewInt(12345), ReasonSuperseded); ihos.ErrorCode(err) != ihos.ENotFound {
		t.Fatalf("unknown serial: %v", err)
	}
	if err := c.Revoke(testCtx, c.Certificate().SerialNumber, ReasonSuperseded); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Fatalf("root: %v", err)
	}
	before := time.Now().Add(-time.Second)
	if err := c.Revoke(testCtx, cert.SerialNumber, ReasonAffiliationChanged); err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(testCtx, cert.SerialNumber, ReasonKeyCompromise); ihos.ErrorCode(err) != ihos.EConflict {
		t.Fatalf("second revoke: %v", err)
	}
	rec, err := c.Lookup(testCtx, cert.SerialNumber)
	if err != nil || rec.Status != StatusRevoked || rec.Reason != ReasonAffiliationChanged || rec.RevokedAt.Before(before) {
		t.Fatalf("lookup: %+v %v", rec, err)
	}
	rec, err = c.Lookup(testCtx, big.NewInt(99))
	if err != nil || rec.Status != StatusUnknown || rec.Cert != nil {
		t.Fatalf("unknown lookup: %+v %v", rec, err)
	}
	entries, _, _ := audit.List(testCtx, c.db, audit.Filter{Resource: "ca_certs", Action: "revoke"})
	if len(entries) != 1 || !strings.Contains(entries[0].Summary, "隶属关系变更") || len(entries[0].Before) == 0 {
		t.Fatalf("revoke audit: %+v", entries)
	}
}

func TestCRL(t *testing.T) {
	c := newTestCA(t, Options{})
	a := c.issue(t, KindStaff, "甲", sm2Key(t).Public())
	b := c.issue(t, KindStaff, "乙", sm2Key(t).Public())

	crl1, err := c.CRL(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	rl1, err := smx509.ParseRevocationList(crl1)
	if err != nil {
		t.Fatal(err)
	}
	if rl1.SignatureAlgorithm != smx509.SM2WithSM3 || len(rl1.RevokedCertificateEntries) != 0 {
		t.Fatalf("empty CRL: %v %d", rl1.SignatureAlgorithm, len(rl1.RevokedCertificateEntries))
	}
	if d := rl1.NextUpdate.Sub(rl1.ThisUpdate); d != 24*time.Hour || time.Since(rl1.ThisUpdate) > time.Minute {
		t.Fatalf("CRL times %v %v", rl1.ThisUpdate, rl1.NextUpdate)
	}
	if err := rl1.CheckSignatureFrom(c.Certificate()); err != nil {
		t.Fatal(err)
	}
	again, _ := c.CRL(testCtx)
	if !bytes.Equal(again, crl1) {
		t.Fatal("CRL not cached")
	}

	if err := c.Revoke(testCtx, a.SerialNumber, ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	crl2, _ := c.CRL(testCtx)
	rl2, _ := smx509.ParseRevocationList(crl2)
	if rl2.Number.Cmp(rl1.Number) <= 0 || len(rl2.RevokedCertificateEntries) != 1 {
		t.Fatalf("after revoke: number %v→%v, %d entries", rl1.Number, rl2.Number, len(rl2.RevokedCertificateEntries))
	}
	revoked, at, reason, err := CheckCRL(crl2, a, c.Certificate(), time.Time{})
	if err != nil || !revoked || reason != ReasonKeyCompromise || time.Since(at) > time.Minute {
		t.Fatalf("CheckCRL revoked: %v %v %v %v", revoked, at, reason, err)
	}
	if revoked, _, _, err := CheckCRL(crl2, b, c.Certificate(), time.Time{}); err != nil || revoked {
		t.Fatalf("CheckCRL good: %v %v", revoked, err)
	}
	// Freshness, issuer and signature.
	if _, _, _, err := CheckCRL(crl2, a, c.Certificate(), time.Now().Add(25*time.Hour)); !errors.Is(err, ErrCRLStale) {
		t.Fatalf("stale: %v", err)
	}
	if _, _, _, err := CheckCRL(crl2, a, c.Certificate(), time.Now().Add(-time.Hour)); !errors.Is(err, ErrCRLNotYet) {
		t.Fatalf("not yet: %v", err)
	}
	other := newTestCA(t, Options{Name: "别的 CA"})
	if _, _, _, err := CheckCRL(crl2, a, other.Certificate(), time.Time{}); !errors.Is(err, ErrCRLIssuer) {
		t.Fatalf("other issuer: %v", err)
	}
	sameName := newTestCA(t, Options{}) // same DN, different key
	if _, _, _, err := CheckCRL(crl2, a, sameName.Certificate(), time.Time{}); !errors.Is(err, ErrCRLSignature) {
		t.Fatalf("same name, other key: %v", err)
	}
	tampered := bytes.Clone(crl2)
	tampered[len(tampered)-5] ^= 1
	if _, _, _, err := CheckCRL(tampered, a, c.Certificate(), time.Time{}); err == nil {
		t.Fatal("tampered CRL accepted")
	}
	if _, _, _, err := CheckCRL([]byte("garbage"), a, c.Certificate(), time.Time{}); !errors.Is(err, ErrCRLMalformed) {
		t.Fatalf("garbage: %v", err)
	}

	// The cache is renewed an hour before nextUpdate.
	c.now = func() time.Time { return time.Now().Add(23*time.Hour + time.Minute) }
	crl3, _ := c.CRL(testCtx)
	rl3, _ := smx509.ParseRevocationList(crl3)
	if rl3.Number.Cmp(rl2.Number) <= 0 {
		t.Fatal("CRL not renewed before nextUpdate")
	}

	// A revocation by another CA instance (another process) on the same
	// database invalidates this one's cache too.
	c.now = time.Now
	crl4, _ := c.CRL(testCtx)
	twin, err := Open(testCtx, c.db, Options{Dir: c.dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := twin.Revoke(testCtx, b.SerialNumber, ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	crl5, _ := c.CRL(testCtx)
	if bytes.Equal(crl4, crl5) {
		t.Fatal("CRL cache survived another instance's revocation")
	}
	if revoked, _, reason, err := CheckCRL(crl5, b, c.Certificate(), time.Time{}); !revoked || reason != ReasonSuperseded || err != nil {
		t.Fatalf("b on the new CRL: %v %v %v", revoked, reason, err)
	}
}

func TestVerifyLevel2(t *testing.T) {
	c := newTestCA(t, Options{})
	good := c.issue(t, KindStaff, "钱医生", sm2Key(t).Public())
	bad := c.issue(t, KindStaff, "孙医生", sm2Key(t).Public())
	if err := c.Revoke(testCtx, bad.SerialNumber, ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	crl, err := c.CRL(testCtx)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("CRL given", func(t *testing.T) {
		mustValid(t, c.verify(good, LevelRevocation, func(o *VerifyOptions) { o.CRLs = [][]byte{crl} }))
		r := c.verify(bad, LevelRevocation, func(o *VerifyOptions) { o.CRLs = [][]byte{crl} })
		mustInvalid(t, r, "证书已被吊销（CRL，原因：密钥泄露，时间：")
		crlPEM := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl})
		mustInvalid(t, c.verify(bad, LevelRevocation, func(o *VerifyOptions) { o.CRLs = [][]byte{crlPEM} }), "证书已被吊销（CRL")
		// Level 1 does not look at revocation.
		mustValid(t, c.verify(bad, LevelChain, func(o *VerifyOptions) { o.CRLs = [][]byte{crl} }))
	})
	t.Run("CRL from the distribution point", func(t *testing.T) {
		mustValid(t, c.verify(good, LevelRevocation, nil))
		mustInvalid(t, c.verify(bad, LevelRevocation, nil), "证书已被吊销（CRL")
	})
	t.Run("OCSP", func(t *testing.T) {
		ocsp := func(o *VerifyOptions) { o.OCSP = true }
		mustValid(t, c.verify(good, LevelRevocation, ocsp))
		mustInvalid(t, c.verify(bad, LevelRevocation, ocsp), "证书已被吊销（OCSP，原因：密钥泄露，时间：")
		// OCSPURL overrides the certificate's AIA.
		mustInvalid(t, c.verify(bad, LevelRevocation, func(o *VerifyOptions) {
			o.OCSP, o.OCSPURL = true, c.srv.URL+"/ca/ocsp"
		}), "证书已被吊销（OCSP")
	})
	t.Run("no revocation information", func(t *testing.T) {
		// A CA without BaseURL issues certificates without CDP or AIA.
		bare, err := Open(testCtx, sqldbtest.SQLite(t), Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		cert, err := bare.Issue(testCtx, IssueRequest{Kind: KindStaff, CommonName: "无CDP", PublicKey: sm2Key(t).Public()})
		if err != nil {
			t.Fatal(err)
		}
		roots := []*smx509.Certificate{bare.Certificate()}
		mustInvalid(t, Verify(testCtx, cert, VerifyOptions{Roots: roots, Level: 2}), "无法获取吊销信息")
		mustInvalid(t, Verify(testCtx, cert, VerifyOptions{Roots: roots, Level: 2, OCSP: true}), "无法获取吊销信息")
		// A CRL of another CA does not count.
		mustInvalid(t, Verify(testCtx, cert, VerifyOptions{Roots: roots, Level: 2, CRLs: [][]byte{crl}}), "无法获取吊销信息")
		bareCRL, _ := bare.CRL(testCtx)
		mustValid(t, Verify(testCtx, cert, VerifyOptions{Roots: roots, Level: 2, CRLs: [][]byte{crl, bareCRL}}))
		// An unreachable OCSP responder falls back to the CRL given.
		mustValid(t, Verify(testCtx, cert, VerifyOptions{Roots: roots, Level: 2, CRLs: [][]byte{bareCRL},
			OCSP: true, OCSPURL: "http://127.0.0.1:1/ca/ocsp"}))
		mustInvalid(t, Verify(testCtx, cert, VerifyOptions{Roots: roots, Level: 2,
			OCSP: true, OCSPURL: "http://127.0.0.1:1/ca/ocsp"}), "OCSP 服务无法访问")
	})
	t.Run("stale CRL", func(t *testing.T) {
		c.now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
		c.crlMu.Lock()
		c.crl = nil
		c.crlMu.Unlock()
		old, err := c.CRL(testCtx)
		c.now = time.Now
		if err != nil {
			t.Fatal(err)
		}
		mustInvalid(t, c.verify(good, LevelRevocation, func(o *VerifyOptions) { o.CRLs = [][]byte{old} }), "CRL 已过期")
	})
}

// ocspRequest builds a request for cert with CertID hash h and an optional nonce.
func ocspRequest(t testing.TB, h hashAlg, cert, issuer *smx509.Certificate, nonce []byte) []byte {
	t.Helper()
	id, err := makeCertID(h, cert, issuer)
	if err != nil {
		t.Fatal(err)
	}
	req := ocspRequestASN1{TBSRequest: tbsRequestASN1{RequestList: []singleRequestASN1{{CertID: asn1.RawValue{FullBytes: id}}}}}
	if nonce != nil {
		v, _ := asn1.Marshal(nonce)
		req.TBSRequest.Extensions = []pkix.Extension{{Id: oidOCSPNonce, Value: v}}
	}
	der, err := asn1.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func post(t testing.TB, url string, body []byte) []byte {
	t.Helper()
	resp, err := http.Post(url, "application/ocsp-request", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/ocsp-response" {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return buf.Bytes()
}

func responseStatus(t testing.TB, der []byte) int {
	t.Helper()
	var r struct {
		Status asn1.Enumerated
		Rest   asn1.RawValue `asn1:"optional,explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(der, &r); err != nil {
		t.Fatalf("response does not parse: %v", err)
	}
	return int(r.Status)
}

func TestOCSPResponder(t *testing.T) {
	for _, alg := range []string{KeySM2, KeyECDSA} {
		t.Run(alg, func(t *testing.T) {
			c := newTestCA(t, Options{KeyAlgorithm: alg})
			good := c.issue(t, KindStaff, "周医生", sm2Key(t).Public())
			bad := c.issue(t, KindStaff, "吴医生", ecKey(t).Public())
			if err := c.Revoke(testCtx, bad.SerialNumber, ReasonCessationOfOperation); err != nil {
				t.Fatal(err)
			}
			url := c.srv.URL + "/ca/ocsp"
			issuer := c.Certificate()
			for _, h := range []hashAlg{{oidSHA1, nil}, {oidSHA256, nil}, {oidSM3, nil}} {
				h, _ = hashAlgByOID(h.oid)
				for _, tc := range []struct {
					cert *smx509.Certificate
					want string
				}{{good, StatusGood}, {bad, StatusRevoked}} {
					nonce := []byte("nonce-" + h.oid.String())
					resp := post(t, url, ocspRequest(t, h, tc.cert, issuer, nonce))
					v, _ := asn1.Marshal(nonce)
					a, err := verifyOCSPResponse(resp, tc.cert, issuer, v, time.Now())
					if err != nil || a.Status != tc.want {
						t.Fatalf("%v %s: %+v %v", h.oid, tc.want, a, err)
					}
					if tc.want == StatusRevoked && (a.Reason != ReasonCessationOfOperation || time.Since(a.RevokedAt) > time.Minute) {
						t.Fatalf("revoked info %+v", a)
					}
					if a.NextUpdate.Sub(a.ThisUpdate) != time.Hour {
						t.Fatalf("validity %v", a.NextUpdate.Sub(a.ThisUpdate))
					}
					p, _ := parseOCSPResponse(resp)
					if want := map[string]asn1.ObjectIdentifier{KeySM2: oidSigSM2SM3, KeyECDSA: oidSigECDSA256}[alg]; !p.sigAlg.Equal(want) {
						t.Fatalf("signature algorithm %v", p.sigAlg)
					}
					if p.data.ResponderID.Tag != 2 {
						t.Fatalf("responder id tag %d, want byKey", p.data.ResponderID.Tag)
					}
				}
			}
			// A replayed response (other nonce) is refused by the client.
			resp := post(t, url, ocspRequest(t, certIDHashAlgs[0], good, issuer, []byte("one")))
			v, _ := asn1.Marshal([]byte("two"))
			if _, err := verifyOCSPResponse(resp, good, issuer, v, time.Now()); err == nil || !strings.Contains(err.Error(), "nonce") {
				t.Fatalf("nonce mismatch: %v", err)
			}
			// A response checked after its nextUpdate is stale.
			if _, err := verifyOCSPResponse(resp, good, issuer, nil, time.Now().Add(2*time.Hour)); err == nil {
				t.Fatal("stale response accepted")
			}
			// Unknown serial; a certificate of another CA (issuer hashes differ).
			fake := &smx509.Certificate{SerialNumber: big.NewInt(424242)}
			resp = post(t, url, ocspRequest(t, certIDHashAlgs[0], fake, issuer, nil))
			if a, err := verifyOCSPResponse(resp, fake, issuer, nil, time.Now()); err != nil || a.Status != StatusUnknown {
				t.Fatalf("unknown serial: %+v %v", a, err)
			}
			other := newTestCA(t, Options{})
			foreign := other.issue(t, KindStaff, "外院", sm2Key(t).Public())
			resp = post(t, url, ocspRequest(t, certIDHashAlgs[0], foreign, other.Certificate(), nil))
			p, err := parseOCSPResponse(resp)
			if err != nil || len(p.data.Responses) != 1 || p.data.Responses[0].CertStatus.Tag != 2 {
				t.Fatalf("foreign certificate: %v", err)
			}
			// The client refuses a response signed by a CA other than the issuer.
			if _, err := verifyOCSPResponse(resp, foreign, other.Certificate(), nil, time.Now()); err == nil {
				t.Fatal("response signed by the wrong CA accepted")
			}
			// GET with the request base64 in the path (standard and URL-safe, padded or not).
			req := ocspRequest(t, certIDHashAlgs[0], bad, issuer, nil)
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
				hr, err := http.Get(url + "/" + enc.EncodeToString(req))
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				buf.ReadFrom(hr.Body)
				hr.Body.Close()
				if a, err := verifyOCSPResponse(buf.Bytes(), bad, issuer, nil, time.Now()); err != nil || a.Status != StatusRevoked {
					t.Fatalf("GET: %+v %v", a, err)
				}
			}
			// The public CheckOCSP.
			st, at, err := CheckOCSP(testCtx, nil, url, bad, issuer)
			if err != nil || st != StatusRevoked || at.IsZero() {
				t.Fatalf("CheckOCSP revoked: %s %v %v", st, at, err)
			}
			if st, _, err := CheckOCSP(testCtx, nil, url, good, issuer); err != nil || st != StatusGood {
				t.Fatalf("CheckOCSP good: %s %v", st, err)
			}
		})
	}
}

func TestOCSPMalformed(t *testing.T) {
	c := newTestCA(t, Options{})
	url := c.srv.URL + "/ca/ocsp"
	cert := c.issue(t, KindStaff, "郑医生", sm2Key(t).Public())
	valid := ocspRequest(t, certIDHashAlgs[0], cert, c.Certificate(), nil)
	cases := map[string][]byte{
		"empty":     {},
		"garbage":   []byte("hello, ocsp"),
		"truncated": valid[:len(valid)-3],
		"trailing":  append(bytes.Clone(valid), 0),
		"too large": bytes.Repeat([]byte{0x30}, maxOCSPRequest+1),
		"no certs": func() []byte {
			b, _ := asn1.Marshal(ocspRequestASN1{TBSRequest: tbsRequestASN1{RequestList: []singleRequestASN1{}}})
			return b
		}(),
	}
	for name, body := range cases {
		if st := responseStatus(t, post(t, url, body)); st != ocspMalformedRequest {
			t.Errorf("%s: status %d", name, st)
		}
	}
	for _, path := range []string{"/ca/ocsp/!!!", "/ca/ocsp/" + strings.Repeat("A", 100000), "/ca/ocsp/MA=="} {
		resp, err := http.Get(c.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if st := responseStatus(t, buf.Bytes()); st != ocspMalformedRequest {
			t.Errorf("GET %.40s: status %d", path, st)
		}
	}
	// Other endpoints.
	for path, ctype := range map[string]string{"/ca/cert": "application/pkix-cert", "/ca/crl": "application/pkix-crl"} {
		resp, err := http.Get(c.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ctype {
			t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if path == "/ca/cert" && !bytes.Equal(buf.Bytes(), c.Certificate().Raw) {
			t.Error("/ca/cert is not the root DER")
		}
		if path == "/ca/crl" {
			if _, _, _, err := CheckCRL(buf.Bytes(), cert, c.Certificate(), time.Time{}); err != nil {
				t.Errorf("/ca/crl: %v", err)
			}
		}
	}
	if resp, _ := http.Post(c.srv.URL+"/ca/crl", "x", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /ca/crl: %d", resp.StatusCode)
	}
	if resp, _ := http.Get(c.srv.URL + "/ca/nothing"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ca/nothing: %d", resp.StatusCode)
	}
}

func TestOCSPDelegatedResponder(t *testing.T) {
	c := newTestCA(t, Options{})
	cert := c.issue(t, KindStaff, "冯医生", sm2Key(t).Public())
	key := sm2Key(t)
	respCert := c.issue(t, KindOCSP, "OCSP 响应器", key.Public())
	delegated := newResponder(key, respCert, true)
	id, _ := makeCertID(certIDHashAlgs[0], cert, c.Certificate())
	nonce, _ := asn1.Marshal([]byte("n"))
	resp, err := delegated.sign([]singleAnswer{{certID: id, status: StatusGood}}, &pkix.Extension{Id: oidOCSPNonce, Value: nonce}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a, err := verifyOCSPResponse(resp, cert, c.Certificate(), nonce, time.Now()); err != nil || a.Status != StatusGood {
		t.Fatalf("delegated responder: %+v %v", a, err)
	}
	// A certificate without the OCSPSigning EKU cannot sign responses.
	staffKey := sm2Key(t)
	staff := c.issue(t, KindStaff, "冒充者", staffKey.Public())
	resp, _ = newResponder(staffKey, staff, true).sign([]singleAnswer{{certID: id, status: StatusGood}}, nil, time.Now())
	if _, err := verifyOCSPResponse(resp, cert, c.Certificate(), nil, time.Now()); err == nil || !strings.Contains(err.Error(), "OCSP signing") {
		t.Fatalf("responder without EKU: %v", err)
	}
	// Nor can a responder certificate of another CA.
	other := newTestCA(t, Options{})
	okey := sm2Key(t)
	ocert := other.issue(t, KindOCSP, "别的响应器", okey.Public())
	resp, _ = newResponder(okey, ocert, true).sign([]singleAnswer{{certID: id, status: StatusGood}}, nil, time.Now())
	if _, err := verifyOCSPResponse(resp, cert, c.Certificate(), nil, time.Now()); err == nil {
		t.Fatal("responder of another CA accepted")
	}
}

func TestCertIDHashes(t *testing.T) {
	// The responder's precomputed issuer hashes agree with an independent computation.
	c := newTestCA(t, Options{})
	bits, _ := publicKeyBits(c.Certificate())
	s := sha256.Sum256(bits)
	if !bytes.Equal(c.issuerHashes[oidSHA256.String()].key, s[:]) {
		t.Fatal("SHA-256 key hash")
	}
	m := sm3.Sum(c.Certificate().RawSubject)
	if !bytes.Equal(c.issuerHashes[oidSM3.String()].name, m[:]) {
		t.Fatal("SM3 name hash")
	}
}

// TestOnBothEngines runs the CA's database paths (issue, revoke, CRL, OCSP
// lookups, audit) on SQLite and, with IHOS_MYSQL_DSN, on MariaDB/MySQL.
func TestOnBothEngines(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		c := newTestCAOn(t, db, Options{})
		a := c.issue(t, KindStaff, "陈医生（主任医师）", sm2Key(t).Public())
		b := c.issue(t, KindDevice, "自助机-01", ecKey(t).Public())
		if err := c.Revoke(testCtx, a.SerialNumber, ReasonKeyCompromise); err != nil {
			t.Fatal(err)
		}
		if err := c.Revoke(testCtx, a.SerialNumber, ReasonKeyCompromise); ihos.ErrorCode(err) != ihos.EConflict {
			t.Fatalf("second revoke: %v", err)
		}
		rec, err := c.Lookup(testCtx, a.SerialNumber)
		if err != nil || rec.Status != StatusRevoked || rec.SubjectCN != "陈医生（主任医师）" {
			t.Fatalf("lookup: %+v %v", rec, err)
		}
		crl1, err := c.CRL(testCtx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Revoke(testCtx, b.SerialNumber, ReasonSuperseded); err != nil {
			t.Fatal(err)
		}
		crl2, err := c.CRL(testCtx)
		if err != nil {
			t.Fatal(err)
		}
		r1, _ := smx509.ParseRevocationList(crl1)
		r2, _ := smx509.ParseRevocationList(crl2)
		if r2.Number.Cmp(r1.Number) <= 0 || len(r2.RevokedCertificateEntries) != 2 {
			t.Fatalf("CRL numbers %v %v, entries %d", r1.Number, r2.Number, len(r2.RevokedCertificateEntries))
		}
		mustInvalid(t, c.verify(a, LevelRevocation, func(o *VerifyOptions) { o.OCSP = true }), "已被吊销（OCSP")
		mustInvalid(t, c.verify(b, LevelRevocation, nil), "已被吊销（CRL，原因：证书已被替换")
		if bad, err := audit.Verify(testCtx, db); err != nil || bad != 0 {
			t.Fatalf("audit chain: %d %v", bad, err)
		}
		// Concurrent revocations and CRLs.
		var certs []*smx509.Certificate
		for i := 0; i < 8; i++ {
			certs = append(certs, c.issue(t, KindStaff, "并发", sm2Key(t).Public()))
		}
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for _, x := range certs {
			wg.Add(2)
			go func() { defer wg.Done(); errs <- c.Revoke(context.Background(), x.SerialNumber, ReasonSuperseded) }()
			go func() { defer wg.Done(); _, err := c.CRL(context.Background()); errs <- err }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		final, _ := c.CRL(testCtx)
		rl, _ := smx509.ParseRevocationList(final)
		if len(rl.RevokedCertificateEntries) != 10 {
			t.Fatalf("final CRL has %d entries, want 10", len(rl.RevokedCertificateEntries))
		}
	})
}
