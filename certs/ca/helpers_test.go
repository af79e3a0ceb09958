package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

// testCA is a CA served by an httptest server whose URL is the CA's BaseURL,
// so the CRL distribution point and OCSP URL in its certificates work.
type testCA struct {
	*CA
	srv *httptest.Server
	db  *sqldb.DB
	dir string
}

func newTestCA(t testing.TB, opt Options) *testCA {
	t.Helper()
	return newTestCAOn(t, sqldbtest.SQLite(t), opt)
}

func newTestCAOn(t testing.TB, db *sqldb.DB, opt Options) *testCA {
	t.Helper()
	var h atomic.Pointer[http.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := h.Load(); p != nil {
			(*p).ServeHTTP(w, r)
			return
		}
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	if opt.Dir == "" {
		opt.Dir = t.TempDir()
	}
	opt.BaseURL = srv.URL
	c, err := Open(context.Background(), db, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	handler := c.Handler()
	h.Store(&handler)
	return &testCA{CA: c, srv: srv, db: db, dir: opt.Dir}
}

func sm2Key(t testing.TB) *sm2.PrivateKey {
	t.Helper()
	k, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var rsaKeyCache atomic.Pointer[rsa.PrivateKey]

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	if k := rsaKeyCache.Load(); k != nil {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaKeyCache.Store(k)
	return k
}

func (c *testCA) issue(t testing.TB, kind, cn string, pub crypto.PublicKey) *smx509.Certificate {
	t.Helper()
	r := IssueRequest{Kind: kind, CommonName: cn, PublicKey: pub, SubjectID: "id-" + cn}
	if kind == KindServer || kind == KindDevice {
		r.DNSNames = []string{"kiosk-01.hospital.lan"}
	}
	cert, err := c.Issue(context.Background(), r)
	if err != nil {
		t.Fatalf("Issue %s %s: %v", kind, cn, err)
	}
	return cert
}

func (c *testCA) verify(cert *smx509.Certificate, level int, mod func(*VerifyOptions)) Result {
	o := VerifyOptions{Roots: []*smx509.Certificate{c.Certificate()}, Level: level}
	if mod != nil {
		mod(&o)
	}
	return Verify(context.Background(), cert, o)
}

func mustValid(t *testing.T, r Result) {
	t.Helper()
	if !r.Valid {
		t.Fatalf("expected valid, got reason %q", r.Reason)
	}
}

func mustInvalid(t *testing.T, r Result, contains string) {
	t.Helper()
	if r.Valid {
		t.Fatalf("expected invalid (%s), got valid", contains)
	}
	if !strings.Contains(r.Reason, contains) {
		t.Fatalf("reason %q does not contain %q", r.Reason, contains)
	}
}

var testCtx = context.Background()
