package appliance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	stdsync "sync"
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
	"ihos/internal/web"
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
	// Servers are the signing servers the platform's own signing (App.Signer)
	// calls: both hospital servers (calls are spread over them and fail over
	// when one is down), or a hardware signing server with the same API.
	// Empty: the platform signs in this process with the "default" key.
	Servers []string `json:"servers" env:"IHOS_SIGNING_SERVERS"`
	// Token is the application token the servers issued for this platform.
	Token string `json:"token" env:"IHOS_SIGNING_TOKEN"`
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
	// The time source: what the console saved, else the configuration file.
	ntpCfg, _, err := loadNTPConfig(ctx, db, ntp.Config{Servers: cfg.NTPServers, Enabled: len(cfg.NTPServers) > 0, MaxOffset: cfg.MaxOffset})
	if err != nil {
		return nil, err
	}
	clock := ntp.NewClock(ntpCfg)
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

// DataSigner is how the platform itself signs and verifies data (the contract
// of POST /api/svs/sign and /api/svs/verify): an SM2 signature over SM3 with
// the default user id, the signer's certificate in PEM; verification at level
// 0 (signature), 1 (+ chain) or 2 (+ CRL/OCSP), invalid with a Chinese reason.
// App.Signer is chosen by SigningConfig.Servers.
type DataSigner interface {
	Sign(ctx context.Context, data []byte) (sig []byte, certPEM string, err error)
	Verify(ctx context.Context, data, sig []byte, certPEM string, level int) (valid bool, reason string, err error)
}

// The signers App.Signer can be.
var (
	_ DataSigner = (*localSigner)(nil)
	_ DataSigner = (*svs.Client)(nil)
)

// newSigner returns the platform's signer: with cfg.Servers, an svs.Client
// over them (round robin, failover; a hardware signing server is one of them);
// without, this appliance's own signing service called in process.
func (s *signing) newSigner(cfg SigningConfig, dataDir string) (DataSigner, error) {
	if len(cfg.Servers) == 0 {
		api := http.NewServeMux()
		s.svs.Routes(api)
		return &localSigner{svs: s.svs, api: api, tokenFile: filepath.Join(dataDir, "keys", "svs-platform.token")}, nil
	}
	var urls []string
	for _, raw := range cfg.Servers {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, ihos.Errorf(ihos.EInvalid, "签名验签服务器地址 %q 无效（signing.servers 应为 http:// 或 https:// 网址）", raw)
		}
		urls = append(urls, strings.TrimRight(raw, "/"))
	}
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, ihos.Errorf(ihos.EInvalid, "配置了签名验签服务器（signing.servers）但没有访问令牌（signing.token / IHOS_SIGNING_TOKEN）")
	}
	return &svs.Client{URLs: urls, Token: strings.TrimSpace(cfg.Token)}, nil
}

// platformApp is the signing application the platform's in-process calls go
// through, so they follow its policy, the service switch and the time source,
// and land in the signature log like every other caller's.
const platformApp = "platform"

// localSigner calls this appliance's signing API in process: the same
// handlers as /api/svs over HTTP, without a socket. Its application token is
// made on first use and kept in the data directory (mode 0600); when it stops
// working (rotated on the console, or a restore without the application) a new
// one is made.
type localSigner struct {
	svs       *svs.Server
	api       http.Handler
	tokenFile string

	mu    stdsync.Mutex
	token string
}

func (l *localSigner) Sign(ctx context.Context, data []byte) ([]byte, string, error) {
	var out struct {
		Signature []byte `json:"signature"`
		Cert      string `json:"cert"`
	}
	if err := l.call(ctx, "/api/svs/sign", map[string]any{"data": data}, &out); err != nil {
		return nil, "", err
	}
	return out.Signature, out.Cert, nil
}

func (l *localSigner) Verify(ctx context.Context, data, sig []byte, certPEM string, level int) (bool, string, error) {
	var out struct {
		Valid  bool   `json:"valid"`
		Reason string `json:"reason"`
	}
	in := map[string]any{"data": data, "signature": sig, "cert": certPEM, "level": level}
	if err := l.call(ctx, "/api/svs/verify", in, &out); err != nil {
		return false, "", err
	}
	return out.Valid, out.Reason, nil
}

func (l *localSigner) call(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return ihos.Internal(err)
	}
	stale := ""
	for attempt := 0; ; attempt++ {
		token, err := l.tokenFor(ctx, stale)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://in-process"+path, bytes.NewReader(body))
		if err != nil {
			return ihos.Internal(err)
		}
		req.RemoteAddr = "in-process:0" // the signature log's remote column
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder() // the standard recorder: an in-process response
		l.api.ServeHTTP(w, req)
		if w.Code == http.StatusUnauthorized && attempt == 0 {
			stale = token
			continue
		}
		if w.Code >= 400 {
			var eb web.ErrorBody
			if json.Unmarshal(w.Body.Bytes(), &eb) == nil && eb.Code != "" {
				return &ihos.Error{Code: eb.Code, Message: eb.Message, Fields: eb.Fields}
			}
			return ihos.Internal(fmt.Errorf("appliance: in-process %s: HTTP %d", path, w.Code))
		}
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			return ihos.Internal(fmt.Errorf("appliance: in-process %s: %w", path, err))
		}
		return nil
	}
}

// tokenFor returns the platform application's token: the one in memory, else
// the one in the token file, else (or when stale is the one in memory, which
// the service refused) a new one.
func (l *localSigner) tokenFor(ctx context.Context, stale string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token != "" && l.token != stale {
		return l.token, nil
	}
	if stale == "" {
		b, err := certs.ReadFileLimit(l.tokenFile, 1024)
		if err == nil && len(bytes.TrimSpace(b)) > 0 {
			l.token = string(bytes.TrimSpace(b))
			return l.token, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", ihos.Internal(err)
		}
	}
	sys := ihos.WithActor(context.WithoutCancel(ctx), ihos.System)
	apps, err := l.svs.ListApps(sys)
	if err != nil {
		return "", err
	}
	var token string
	i := slices.IndexFunc(apps, func(a svs.App) bool { return a.Name == platformApp })
	switch {
	case i < 0:
		token, err = l.svs.CreateApp(sys, svs.App{Name: platformApp, Timestamp: true, Note: "本院互联网医院平台（进程内调用，令牌保存在本机数据目录）"})
	case !apps[i].Enabled:
		return "", ihos.Errorf(ihos.EUnavailable, "签名验签应用 %s（本院平台）已停用，平台无法签名和验签；请在控制台“签名验签服务”中启用", platformApp)
	default:
		token, err = l.svs.RotateToken(sys, apps[i].ID)
	}
	if err != nil {
		return "", err
	}
	if err := certs.WriteFile(l.tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return "", ihos.Internal(err)
	}
	l.token = token
	return token, nil
}
