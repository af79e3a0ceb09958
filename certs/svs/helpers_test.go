package svs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"ihos/certs"
	"ihos/certs/ca"
	"ihos/certs/tsa"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

var testKEK = []byte("0123456789abcdef")

// env is a running signing server over a real SQLite database, served by an
// httptest server, with the hospital CA served by another (its CRL
// distribution point and OCSP URL work).
type env struct {
	t     testing.TB
	db    *sqldb.DB
	ca    *ca.CA
	caSrv *httptest.Server
	caDir string
	srv   *Server
	http  *httptest.Server
	token string
	clock atomic.Int64 // offset from time.Now, ns
	ready atomic.Pointer[error]
}

type envOptions struct {
	db     *sqldb.DB
	caDir  string
	noTSA  bool
	policy App // the default application's policy
	opts   Options
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, db: o.db}
	if e.db == nil {
		e.db = sqldbtest.SQLite(t)
	}
	var h atomic.Pointer[http.Handler]
	e.caSrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := h.Load(); p != nil {
			(*p).ServeHTTP(w, r)
			return
		}
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	t.Cleanup(e.caSrv.Close)
	dir := o.caDir
	if dir == "" {
		dir = t.TempDir()
	}
	var err error
	e.caDir = dir
	e.ca, err = ca.Open(ctx, e.db, ca.Options{Dir: dir, KEK: testKEK, BaseURL: e.caSrv.URL})
	if err != nil {
		t.Fatalf("ca.Open: %v", err)
	}
	ch := e.ca.Handler()
	h.Store(&ch)

	keys, err := NewKeyStore(e.db, e.ca, testKEK)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = &Server{DB: e.db, CA: e.ca, Keys: keys, Options: o.opts,
		Now: func() time.Time { return time.Now().Add(time.Duration(e.clock.Load())) },
		Ready: func() error {
			if p := e.ready.Load(); p != nil {
				return *p
			}
			return nil
		}}
	if !o.noTSA {
		tk, err := certs.GenerateSM2Key()
		if err != nil {
			t.Fatal(err)
		}
		tc, err := e.ca.Issue(ctx, ca.IssueRequest{Kind: ca.KindTSA, CommonName: "测试时间戳服务", PublicKey: &tk.PublicKey})
		if err != nil {
			t.Fatalf("issue TSA cert: %v", err)
		}
		e.srv.TSA = &tsa.Authority{Cert: tc, Key: tk}
	}
	if _, err := keys.EnsureKey(ctx, DefaultKey, "签名验签服务器测试"); err != nil {
		t.Fatalf("EnsureKey: %v", err)
	}
	if err := e.srv.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { e.srv.Close() })
	if o.db == nil || o.policy.Name != "" {
		a := o.policy
		if a.Name == "" {
			a.Name = "测试应用"
		}
		if e.token, err = e.srv.CreateApp(ctx, a); err != nil {
			t.Fatalf("CreateApp: %v", err)
		}
	}
	mux := http.NewServeMux()
	e.srv.Routes(mux)
	e.http = httptest.NewServer(mux)
	t.Cleanup(e.http.Close)
	return e
}

// post sends a JSON body to path with token and decodes the answer into out
// (when not nil); it returns the status.
func (e *env) post(token, path string, in any, out any) int {
	e.t.Helper()
	var body io.Reader
	switch v := in.(type) {
	case []byte:
		body = bytes.NewReader(v)
	case string:
		body = bytes.NewReader([]byte(v))
	default:
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+path, body)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.do(req, out)
}

func (e *env) get(token, path string, out any) int {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.http.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.do(req, out)
}

func (e *env) do(req *http.Request, out any) int {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: HTTP %d, body %q: %v", req.Method, req.URL.Path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

type errBody struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields"`
}

type verifyOut struct {
	Valid  bool    `json:"valid"`
	Reason string  `json:"reason"`
	Signer *Signer `json:"signer"`
}

type messageOut struct {
	verifyOut
	Timestamp *TimestampInfo `json:"timestamp"`
	Content   string         `json:"content"`
	Detached  bool           `json:"detached"`
}

func b64s(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// staff issues a staff certificate from the hospital CA for a new SM2 key.
func (e *env) staff(cn string, validFor time.Duration) (*sm2.PrivateKey, *smx509.Certificate, string) {
	e.t.Helper()
	k, err := certs.GenerateSM2Key()
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := e.ca.Issue(context.Background(), ca.IssueRequest{Kind: ca.KindStaff, CommonName: cn, PublicKey: &k.PublicKey, ValidFor: validFor, SubjectID: "staff-" + cn})
	if err != nil {
		e.t.Fatalf("Issue: %v", err)
	}
	return k, c, certPEM(c)
}

// foreignCA makes a self-signed SM2 CA outside the hospital, and a function
// that issues leaf certificates from it with a given validity.
func foreignCA(t testing.TB, cn string) (*smx509.Certificate, func(leafCN string, nb, na time.Time) (*sm2.PrivateKey, *smx509.Certificate)) {
	t.Helper()
	rk, err := certs.GenerateSM2Key()
	if err != nil {
		t.Fatal(err)
	}
	root, err := certs.SelfSignedSM2(cn, rk, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return root, func(leafCN string, nb, na time.Time) (*sm2.PrivateKey, *smx509.Certificate) {
		k, err := certs.GenerateSM2Key()
		if err != nil {
			t.Fatal(err)
		}
		serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
		tmpl := &smx509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: leafCN}, NotBefore: nb, NotAfter: na,
			KeyUsage: smx509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
		der, err := smx509.CreateCertificate(rand.Reader, tmpl, root, &k.PublicKey, rk)
		if err != nil {
			t.Fatal(err)
		}
		c, err := smx509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return k, c
	}
}

func logCount(t testing.TB, db *sqldb.DB, op string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM svs_log WHERE op = ?`, op).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
