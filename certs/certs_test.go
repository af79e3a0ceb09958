package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"ihos"
)

func testCA(t *testing.T) (*CA, string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateCA: %v", err)
	}
	return ca, dir
}

func setNow(t *testing.T, f func() time.Time) {
	t.Helper()
	old := now
	now = f
	t.Cleanup(func() { now = old })
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s error, got nil", code)
	}
	if got := ihos.ErrorCode(err); got != code {
		t.Fatalf("want code %s, got %s (%v)", code, got, err)
	}
}

func TestCACreateAndReload(t *testing.T) {
	ca, dir := testCA(t)
	c := ca.Cert
	if c.Subject.CommonName != "ihos 互联网医院 同步根证书" {
		t.Errorf("CN = %q", c.Subject.CommonName)
	}
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("basic constraints: IsCA=%v valid=%v MaxPathLen=%d zero=%v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("KeyUsage = %v", c.KeyUsage)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if n := c.SerialNumber.BitLen(); n < 64 || n > 128 {
		t.Errorf("serial has %d bits", n)
	}
	if d := c.NotAfter.Sub(c.NotBefore); d < 10*365*24*time.Hour || d > 10*366*24*time.Hour {
		t.Errorf("validity %v, want 10 years", d)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA not self-signed: %v", err)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(filepath.Join(dir, "ca.key"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("ca.key mode %04o, want 0600", fi.Mode().Perm())
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	again, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !bytes.Equal(again.Cert.Raw, ca.Cert.Raw) {
		t.Error("reloaded CA certificate differs")
	}
	if !samePublicKey(again.Key.Public(), ca.Key.Public()) {
		t.Error("reloaded CA key differs")
	}
	if !bytes.Equal(again.CAPEM(), ca.CAPEM()) {
		t.Error("reloaded CAPEM differs")
	}
	if got, err := ParseCertPEM(ca.CAPEM()); err != nil || !got.Equal(ca.Cert) {
		t.Errorf("CAPEM does not hold the CA certificate: %v", err)
	}
}

func TestCAIncompleteOrLooseKey(t *testing.T) {
	_, dir := testCA(t)
	if err := os.Remove(filepath.Join(dir, "ca.crt")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCA(dir); err == nil {
		t.Fatal("a CA directory with ca.key but no ca.crt must not be overwritten by a new CA")
	}

	if runtime.GOOS == "windows" {
		return
	}
	_, dir = testCA(t)
	if err := os.Chmod(filepath.Join(dir, "ca.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCA(dir); err == nil {
		t.Fatal("a world-readable CA key must be refused")
	}
}

func TestServerCert(t *testing.T) {
	ca, dir := testCA(t)
	hosts := []string{"sync.example.com", "127.0.0.1", "::1"}
	c1, err := ca.ServerCert(dir, hosts)
	if err != nil {
		t.Fatalf("ServerCert: %v", err)
	}
	leaf := c1.Leaf
	if !slices.Equal(leaf.DNSNames, []string{"sync.example.com"}) || len(leaf.IPAddresses) != 2 {
		t.Errorf("SANs: DNS %v IP %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v", leaf.ExtKeyUsage)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 2*365*24*time.Hour || d > 2*366*24*time.Hour {
		t.Errorf("validity %v, want 2 years", d)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.certPool(), DNSName: "sync.example.com"}); err != nil {
		t.Errorf("server cert does not verify: %v", err)
	}

	// Same hosts, other order, case and a duplicate: reused.
	c2, err := ca.ServerCert(dir, []string{"::1", "SYNC.example.com", "127.0.0.1", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c2.Certificate[0], c1.Certificate[0]) {
		t.Error("server certificate reissued although hosts did not change")
	}

	// Hosts change: reissued, and the new pair is on disk.
	c3, err := ca.ServerCert(dir, []string{"sync.example.com", "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(c3.Certificate[0], c1.Certificate[0]) {
		t.Fatal("server certificate reused although hosts changed")
	}
	onDisk, _, err := ReadCertFile(filepath.Join(dir, "server.crt"))
	if err != nil || !bytes.Equal(onDisk.Raw, c3.Certificate[0]) {
		t.Fatalf("server.crt not updated: %v", err)
	}
	if _, err := ca.ServerCert(dir, []string{"sync.example.com", "203.0.113.7"}); err != nil {
		t.Fatal(err)
	}

	// 30 days or less left: reissued.
	expires := c3.Leaf.NotAfter
	setNow(t, func() time.Time { return expires.Add(-29 * 24 * time.Hour) })
	c4, err := ca.ServerCert(dir, []string{"sync.example.com", "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(c4.Certificate[0], c3.Certificate[0]) {
		t.Error("server certificate with 29 days left was not renewed")
	}
	now = time.Now

	// Signed by another CA (the CA was replaced): reissued.
	other, _ := testCA(t)
	c5, err := other.ServerCert(dir, []string{"sync.example.com", "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c5.Leaf.CheckSignatureFrom(other.Cert); err != nil {
		t.Errorf("server cert of the old CA was reused by a new CA: %v", err)
	}

	for _, bad := range [][]string{nil, {"sync.example.com:7422"}, {"tls://sync.example.com"}, {""}, {"医院.example.com"}} {
		_, err := ca.ServerCert(dir, bad)
		wantCode(t, err, ihos.EInvalid)
	}
}

// csrWith makes a CSR for subject cn with the given key.
func csrWith(t *testing.T, cn string, key any) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: cn},
		DNSNames: []string{"evil.example.com"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestSignCSR(t *testing.T) {
	ca, _ := testCA(t)

	// The CN is forced to the hospital id, whatever the CSR asks for.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certPEM, err := ca.SignCSR(csrWith(t, "h-other", key), "h1")
	if err != nil {
		t.Fatalf("SignCSR: %v", err)
	}
	c, err := ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "h1" || !slices.Equal(c.Subject.OrganizationalUnit, []string{"hospital"}) {
		t.Errorf("subject = %v", c.Subject)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage = %v", c.ExtKeyUsage)
	}
	if len(c.DNSNames) != 0 || c.IsCA {
		t.Errorf("CSR SANs copied (%v) or IsCA=%v", c.DNSNames, c.IsCA)
	}
	if d := c.NotAfter.Sub(c.NotBefore); d < 2*365*24*time.Hour || d > 2*366*24*time.Hour {
		t.Errorf("validity %v, want 2 years", d)
	}
	if !samePublicKey(c.PublicKey, key.Public()) {
		t.Error("certificate is not for the CSR's key")
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.certPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client cert does not verify: %v", err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.certPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("client cert must not be usable as a server certificate")
	}

	// NewCSR's CSR signs, and RSA 2048 is accepted.
	_, csrPEM, err := NewCSR("h2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.SignCSR(csrPEM, "h2"); err != nil {
		t.Errorf("SignCSR(NewCSR): %v", err)
	}
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	if _, err := ca.SignCSR(csrWith(t, "h3", rsa2048), "h3"); err != nil {
		t.Errorf("RSA-2048 CSR rejected: %v", err)
	}

	// A CSR whose signature does not verify.
	blk, _ := pem.Decode(csrWith(t, "h1", key))
	blk.Bytes[len(blk.Bytes)-3] ^= 0xff
	_, err = ca.SignCSR(pem.EncodeToMemory(blk), "h1")
	wantCode(t, err, ihos.EInvalid)
	if !strings.Contains(ihos.ErrorMessage(err), "签名") {
		t.Errorf("bad signature rejected for another reason: %v", err)
	}

	// Weak and unsupported keys.
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ca.SignCSR(csrWith(t, "h1", rsa1024), "h1")
	wantCode(t, err, ihos.EInvalid)
	if !strings.Contains(ihos.ErrorMessage(err), "RSA") {
		t.Errorf("RSA-1024 rejected for another reason: %v", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, err = ca.SignCSR(csrWith(t, "h1", p384), "h1")
	wantCode(t, err, ihos.EInvalid)

	// Bad input.
	_, err = ca.SignCSR([]byte("not pem"), "h1")
	wantCode(t, err, ihos.EInvalid)
	_, err = ca.SignCSR(csrPEM, "h1/../x")
	wantCode(t, err, ihos.EInvalid)
	_, _, err = NewCSR("")
	wantCode(t, err, ihos.EInvalid)
}

func TestHospitalOf(t *testing.T) {
	ca, dir := testCA(t)
	_, csrPEM, err := NewCSR("h-42")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignCSR(csrPEM, "h-42")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ParseCertPEM(certPEM)
	if id, err := HospitalOf(c); err != nil || id != "h-42" {
		t.Errorf("HospitalOf = %q, %v", id, err)
	}
	srv, err := ca.ServerCert(dir, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := HospitalOf(srv.Leaf); err == nil {
		t.Error("HospitalOf accepted a server certificate")
	}
	if _, err := HospitalOf(ca.Cert); err == nil {
		t.Error("HospitalOf accepted the CA certificate")
	}
	if _, err := HospitalOf(nil); err == nil {
		t.Error("HospitalOf accepted nil")
	}
}

// enroll runs the appliance/cloud enrollment in memory and returns the appliance's
// certificate and key PEM.
func enroll(t *testing.T, ca *CA, hospitalID string) (certPEM, keyPEM []byte) {
	t.Helper()
	keyPEM, csrPEM, err := NewCSR(hospitalID)
	if err != nil {
		t.Fatal(err)
	}
	if certPEM, err = ca.SignCSR(csrPEM, hospitalID); err != nil {
		t.Fatal(err)
	}
	// The appliance stores what it got and reads it back.
	dir := t.TempDir()
	if err := WriteKeyFile(filepath.Join(dir, "hospital.key"), keyPEM); err != nil {
		t.Fatal(err)
	}
	if _, keyPEM, err = ReadKeyFile(filepath.Join(dir, "hospital.key")); err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

type handshakeResult struct {
	hospital  string // HospitalOf the server's verified peer
	serverErr error
	clientErr error // handshake error, or the error reading the server's first byte
}

// handshake runs a real TLS handshake over loopback TCP.
func handshake(t *testing.T, server, client *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type sres struct {
		hospital string
		err      error
	}
	done := make(chan sres, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- sres{err: err}
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(conn, server)
		if err := tc.Handshake(); err != nil {
			done <- sres{err: err}
			return
		}
		st := tc.ConnectionState()
		id, err := HospitalOf(st.VerifiedChains[0][0])
		if err == nil {
			_, err = tc.Write([]byte("k"))
		}
		done <- sres{hospital: id, err: err}
	}()

	var res handshakeResult
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(conn, client)
	if res.clientErr = tc.Handshake(); res.clientErr == nil {
		// With TLS 1.3 the client finishes before the server has judged its
		// certificate; a rejection shows up as an alert on the first read.
		var b [1]byte
		_, res.clientErr = io.ReadFull(tc, b[:])
	}
	tc.Close()
	s := <-done
	res.hospital, res.serverErr = s.hospital, s.err
	return res
}

func TestMutualTLS(t *testing.T) {
	ca, dir := testCA(t)
	srv, err := ca.ServerCert(dir, []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	hub := ca.HubTLS(srv)
	if hub.ClientAuth != tls.RequireAndVerifyClientCert || hub.MinVersion != tls.VersionTLS12 {
		t.Fatalf("HubTLS: ClientAuth=%v MinVersion=%x", hub.ClientAuth, hub.MinVersion)
	}
	certPEM, keyPEM := enroll(t, ca, "h1")

	for _, v := range []struct {
		name string
		max  uint16
	}{{"TLS1.3", tls.VersionTLS13}, {"TLS1.2", tls.VersionTLS12}} {
		t.Run("ok/"+v.name, func(t *testing.T) {
			leaf, err := LeafTLS(certPEM, keyPEM, ca.CAPEM(), "tls://127.0.0.1:7422")
			if err != nil {
				t.Fatalf("LeafTLS: %v", err)
			}
			if leaf.ServerName != "127.0.0.1" {
				t.Errorf("ServerName = %q", leaf.ServerName)
			}
			leaf.MaxVersion = v.max
			r := handshake(t, hub, leaf)
			if r.serverErr != nil || r.clientErr != nil {
				t.Fatalf("handshake: server %v, client %v", r.serverErr, r.clientErr)
			}
			if r.hospital != "h1" {
				t.Errorf("hub sees hospital %q, want h1", r.hospital)
			}
		})
	}

	t.Run("client cert from another CA", func(t *testing.T) {
		other, _ := testCA(t)
		oCert, oKey := enroll(t, other, "h1")
		pair, err := tls.X509KeyPair(oCert, oKey)
		if err != nil {
			t.Fatal(err)
		}
		client := &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: ca.certPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
		r := handshake(t, hub, client)
		if r.serverErr == nil || r.clientErr == nil {
			t.Fatalf("handshake with a foreign client cert: server %v, client %v", r.serverErr, r.clientErr)
		}
		if !strings.Contains(r.serverErr.Error(), "unknown authority") {
			t.Errorf("server error = %v, want unknown authority", r.serverErr)
		}
		// LeafTLS itself refuses a certificate the given CA did not sign.
		if _, err := LeafTLS(oCert, oKey, ca.CAPEM(), "localhost"); err == nil {
			t.Error("LeafTLS accepted a certificate from another CA")
		}
	})

	t.Run("client without cert", func(t *testing.T) {
		client := &tls.Config{RootCAs: ca.certPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
		r := handshake(t, hub, client)
		if r.serverErr == nil || r.clientErr == nil {
			t.Fatalf("handshake without client cert: server %v, client %v", r.serverErr, r.clientErr)
		}
		if !strings.Contains(r.serverErr.Error(), "didn't provide a certificate") {
			t.Errorf("server error = %v, want missing client certificate", r.serverErr)
		}
	})

	t.Run("server cert used as client cert", func(t *testing.T) {
		client := &tls.Config{Certificates: []tls.Certificate{srv}, RootCAs: ca.certPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
		r := handshake(t, hub, client)
		if r.serverErr == nil {
			t.Fatal("hub accepted its own server certificate as a client certificate")
		}
	})

	t.Run("wrong hub name", func(t *testing.T) {
		leaf, err := LeafTLS(certPEM, keyPEM, ca.CAPEM(), "sync.example.com:7422")
		if err != nil {
			t.Fatal(err)
		}
		r := handshake(t, hub, leaf)
		var hostErr x509.HostnameError
		if !errors.As(r.clientErr, &hostErr) {
			t.Fatalf("client error = %v, want a hostname mismatch", r.clientErr)
		}
	})
}

func TestLeafTLSInput(t *testing.T) {
	ca, _ := testCA(t)
	certPEM, keyPEM := enroll(t, ca, "h1")
	for in, want := range map[string]string{
		"sync.example.com":              "sync.example.com",
		"sync.example.com:7422":         "sync.example.com",
		"tls://sync.example.com:7422":   "sync.example.com",
		"nats-leaf://[2001:db8::1]:443": "2001:db8::1",
		"[2001:db8::1]:7422":            "2001:db8::1",
		"203.0.113.5":                   "203.0.113.5",
	} {
		cfg, err := LeafTLS(certPEM, keyPEM, ca.CAPEM(), in)
		if err != nil {
			t.Fatalf("LeafTLS(%q): %v", in, err)
		}
		if cfg.ServerName != want {
			t.Errorf("LeafTLS(%q).ServerName = %q, want %q", in, cfg.ServerName, want)
		}
	}
	_, err := LeafTLS(certPEM, keyPEM, ca.CAPEM(), "")
	wantCode(t, err, ihos.EInvalid)
	_, otherKey := enroll(t, ca, "h2")
	_, err = LeafTLS(certPEM, otherKey, ca.CAPEM(), "localhost")
	wantCode(t, err, ihos.EInvalid)
	_, err = LeafTLS(certPEM, keyPEM, []byte("junk"), "localhost")
	wantCode(t, err, ihos.EInvalid)
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "x.key")
	for _, data := range []string{"one", "two"} {
		if err := WriteKeyFile(p, []byte(data)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != data {
			t.Fatalf("read back %q, %v", got, err)
		}
	}
	if runtime.GOOS != "windows" {
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key mode %04o", fi.Mode().Perm())
		}
		c := filepath.Join(dir, "x.crt")
		if err := WriteCertFile(c, []byte("c")); err != nil {
			t.Fatal(err)
		}
		fi, _ = os.Stat(c)
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("cert mode %04o", fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "sub"))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only x.key", len(entries))
	}
}
