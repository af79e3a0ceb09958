package appliance

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs"
	"ihos/certs/ca"
	"ihos/certs/esign"
	"ihos/certs/ntp"
	"ihos/certs/svs"
	"ihos/certs/tsa"
	"ihos/internal/node"
)

// SigningConfig is the signing service's configuration: the hospital CA's
// address as certificates name it, the time source, and syslog forwarding of
// the signature log.
type SigningConfig struct {
	// BaseURL is where hospital systems reach this appliance's CA (CRL, OCSP);
	// default http://<http listen address>.
	BaseURL string `json:"base_url" env:"IHOS_SIGNING_BASE_URL"`
	// NTPServers are the time sources; none: the local clock is trusted.
	NTPServers []string `json:"ntp_servers" env:"IHOS_SIGNING_NTP_SERVERS"`
	// MaxOffset is how far the clock may be off before signing stops (default 1 s).
	MaxOffset time.Duration `json:"max_offset" env:"IHOS_SIGNING_MAX_OFFSET"`
	// Syslog forwards the signature log: udp://host:514 or tcp://host:514.
	Syslog string `json:"syslog" env:"IHOS_SIGNING_SYSLOG"`
	// Disabled switches the signing API off at start.
	Disabled bool `json:"disabled" env:"IHOS_SIGNING_DISABLED"`
}

// signing is the running signing service.
type signing struct {
	ca    *ca.CA
	clock *ntp.Clock
	svs   *svs.Server
	esign *esign.Service
	stop  context.CancelFunc
}

// loadOrCreateKEK reads the appliance's 16-byte key-encryption key for
// signing keys, creating it on first start. It never leaves the appliance:
// without it the sealed keys in the database are useless.
func loadOrCreateKEK(path string) ([]byte, error) {
	b, err := certs.ReadFileLimit(path, 64)
	if err == nil {
		if len(b) != 16 {
			return nil, ihos.Errorf(ihos.EInternal, "密钥加密密钥文件 %s 已损坏", path)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 16)
	rand.Read(k)
	if err := certs.CreateFile(path, k, 0o600); err != nil {
		if errors.Is(err, os.ErrExist) {
			return loadOrCreateKEK(path)
		}
		return nil, err
	}
	return k, nil
}

// tsaKeyName is the signing key the time-stamping authority uses.
const tsaKeyName = "tsa"

// startSigning opens the hospital CA, the time source, the time-stamping
// authority, the signing server and the staff e-signatures.
func (a *App) startSigning(ctx context.Context, cfg SigningConfig, dataDir, httpAddr string) (*signing, error) {
	db := a.Node.DB
	kek, err := loadOrCreateKEK(filepath.Join(dataDir, "keys", "signing.kek"))
	if err != nil {
		return nil, err
	}
	base := cfg.BaseURL
	if base == "" && httpAddr != "" {
		base = "http://" + strings.Replace(httpAddr, "0.0.0.0:", "127.0.0.1:", 1)
	}
	authority, err := ca.Open(ctx, db, ca.Options{Dir: filepath.Join(dataDir, "ca"), KEK: kek, Name: "互联网医院 CA", BaseURL: base})
	if err != nil {
		return nil, err
	}
	clock := ntp.NewClock(ntp.Config{Servers: cfg.NTPServers, Enabled: len(cfg.NTPServers) > 0, MaxOffset: cfg.MaxOffset})
	keys, err := svs.NewKeyStore(db, authority, kek)
	if err != nil {
		return nil, err
	}
	if _, err := keys.EnsureKey(ctx, "default", "签名验签服务器"); err != nil {
		return nil, err
	}
	// The time-stamping authority's own SM2 key: its certificate carries the
	// critical timeStamping usage a TSA needs.
	tsaKey, err := keys.EnsureKeyOfKind(ctx, tsaKeyName, ca.KindTSA, "互联网医院时间戳服务")
	if err != nil {
		return nil, err
	}
	stamp := &tsa.Authority{Cert: tsaKey.Cert, Key: tsaKey.Signer, Ready: clock.Ready}
	server := &svs.Server{DB: db, CA: authority, Keys: keys, TSA: stamp, Ready: clock.Ready, Options: svs.Options{Syslog: cfg.Syslog}}
	if err := server.Start(ctx); err != nil {
		return nil, err
	}
	if cfg.Disabled {
		server.SetEnabled(ihos.WithActor(ctx, ihos.System), false)
	}
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	go clock.Run(sctx)
	return &signing{ca: authority, clock: clock, svs: server, stop: stop,
		esign: &esign.Service{DB: db, CA: authority, KEK: kek, TSA: stamp, Ready: clock.Ready}}, nil
}

func (s *signing) close() {
	s.stop()
	s.svs.Close()
}

// handler serves the CA and the signing API outside the console's session
// middleware: their callers authenticate with application tokens (or not at
// all: a CRL is public), so a session lookup per call would be wasted work.
func (s *signing) handler(next http.Handler) http.Handler {
	caHandler := s.ca.Handler()
	svsMux := http.NewServeMux()
	s.svs.Routes(svsMux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/ca/"):
			caHandler.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/api/svs/"):
			svsMux.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// VerifyCLI is `ihos-appliance verify`: it checks a signed document offline,
// against the hospital CA's certificate (from the data directory, or --ca),
// and prints who signed it and when; a changed document or a bad signature
// exits non-zero with the reason.
func VerifyCLI(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("ihos-appliance verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	doc := fs.String("doc", "", "签名的文档（JSON 文件）")
	sig := fs.String("sig", "", "签名文件（PKCS#7，DER 或 Base64）")
	caFile := fs.String("ca", "", "医院 CA 证书；默认取数据目录中的 ca/ca.crt")
	dataDir := fs.String("data-dir", "", "数据目录")
	if err := fs.Parse(args); err != nil {
		return ihos.Errorf(ihos.EInvalid, "用法：ihos-appliance verify --doc 文档.json --sig 签名.p7 [--ca ca.crt]（%v）", err)
	}
	if *doc == "" || *sig == "" {
		return ihos.Errorf(ihos.EInvalid, "用法：ihos-appliance verify --doc 文档.json --sig 签名.p7 [--ca ca.crt]")
	}
	if *caFile == "" {
		dir := *dataDir
		if dir == "" {
			dir = node.DefaultDataDir("appliance")
		}
		*caFile = filepath.Join(dir, "ca", "ca.crt")
	}
	caPEM, err := certs.ReadFileLimit(*caFile, 1<<20)
	if err != nil {
		return ihos.Errorf(ihos.EInvalid, "无法读取 CA 证书 %s：%v", *caFile, err)
	}
	root, err := certs.ParseCertificate(caPEM)
	if err != nil {
		return err
	}
	document, err := certs.ReadFileLimit(*doc, 32<<20)
	if err != nil {
		return ihos.Errorf(ihos.EInvalid, "无法读取文档 %s：%v", *doc, err)
	}
	p7, err := certs.ReadFileLimit(*sig, 32<<20)
	if err != nil {
		return ihos.Errorf(ihos.EInvalid, "无法读取签名 %s：%v", *sig, err)
	}
	if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(p7))); err == nil {
		p7 = b
	}
	v, err := esign.Verify(ctx, document, p7, []*smx509.Certificate{root})
	if err != nil {
		fmt.Fprintln(out, "验证失败：", ihos.ErrorMessage(err))
		return err
	}
	fmt.Fprintf(out, "验证通过\n签名人：%s（证书序列号 %s）\n", v.Signer, v.Serial)
	if !v.SignedAt.IsZero() {
		fmt.Fprintf(out, "签名时间：%s\n", v.SignedAt.In(ihos.Shanghai).Format("2006-01-02 15:04:05"))
	}
	if !v.TimestampAt.IsZero() {
		fmt.Fprintf(out, "时间戳：%s（医院时间戳服务）\n", v.TimestampAt.In(ihos.Shanghai).Format("2006-01-02 15:04:05"))
	}
	return nil
}
