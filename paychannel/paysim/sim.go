package paysim

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"ihos/internal/simulate"
	"ihos/paychannel"
)

// Config configures a simulator.
type Config struct {
	HTTPAddr string // default "127.0.0.1:0"
	// PlatformKey is the channel's RSA signing key; nil means the one kept
	// in DBPath, or a new one generated at start. It is never read from the
	// repo. PlatformSM2Key is its SM2 key, for merchants whose API key is
	// SM2 (国密), likewise.
	PlatformKey    *rsa.PrivateKey
	PlatformSM2Key *sm2.PrivateKey
	// Merchants are the merchants the channel knows from the start; more
	// can be registered with AddMerchant or POST /control/merchant.
	Merchants []Merchant
	// DBPath, when set, is an SQLite file that keeps the platform key, the
	// merchants, orders and refunds across restarts (so daily bills stay
	// complete); "" keeps everything in memory.
	DBPath string
	// NotifyRetry is the schedule of notify attempts, each delay counted
	// from the previous attempt; default DefaultNotifyRetry. The real
	// channel spreads 15 attempts over a day; this is the same idea,
	// compressed.
	NotifyRetry   []time.Duration
	NotifyTimeout time.Duration // how long one attempt waits for the merchant; default 5 s
	Logger        *slog.Logger  // default: discard
	Now           func() time.Time
}

// DefaultNotifyRetry is the default notify schedule: at once, then after
// 1, 2, 4, 8, 15, 30 and 60 seconds.
var DefaultNotifyRetry = []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
	15 * time.Second, 30 * time.Second, time.Minute}

// Merchant is a merchant the channel knows: requests with MchID must be
// signed by the private key of PublicKey and name SerialNo; notifies to it
// are encrypted with APIv3Key. PublicKey is RSA (*rsa.PublicKey) or SM2 (an
// *ecdsa.PublicKey on the SM2 curve, the 国密 option): requests must then
// be WECHATPAY2-SM2-WITH-SM3, and answers and notifies are signed with the
// platform's SM2 key and notifies encrypted with AEAD_SM4_GCM.
type Merchant struct {
	MchID     string
	AppID     string
	SerialNo  string
	PublicKey crypto.PublicKey
	APIv3Key  []byte
}

// scheme is the merchant's authentication type.
func (m Merchant) scheme() string { return paychannel.SchemeOf(m.PublicKey) }

// platformKey is one of the channel's signing keys with its certificate.
type platformKey struct {
	key     crypto.Signer
	certDER []byte
	serial  string
}

// Sim is a running payment channel simulator.
type Sim struct {
	cfg      Config
	log      *slog.Logger
	url      string
	srv      *simulate.Server
	quit     chan struct{} // closed by Close: notify retries and timers stop
	bg       sync.WaitGroup
	rsa      platformKey // signs answers to RSA requests and notifies to RSA merchants
	sm2      platformKey // the same for SM2 (国密) merchants
	store    *store
	notifyHC *http.Client

	mu        sync.Mutex // guards what follows
	closed    bool
	merchants map[string]Merchant
	orders    map[string]*order  // by mchid "/" out_trade_no
	refunds   map[string]*refund // by mchid "/" out_refund_no
	mode      Mode
	bills     map[string][]byte // download token → bill file
	billOrder []string
	attempts  []NotifyAttempt
	counts    map[string]int64
	seq       uint64
}

// Start listens on cfg.HTTPAddr and serves the merchant API (/v3/…) and
// the control API (/control…); it returns once the listener accepts
// connections.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if len(cfg.NotifyRetry) == 0 {
		cfg.NotifyRetry = DefaultNotifyRetry
	}
	if cfg.NotifyTimeout <= 0 {
		cfg.NotifyTimeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sim{
		cfg: cfg, log: log.With("component", "pay-sim"), quit: make(chan struct{}),
		merchants: map[string]Merchant{}, orders: map[string]*order{}, refunds: map[string]*refund{},
		bills: map[string][]byte{}, counts: map[string]int64{},
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	s.notifyHC = &http.Client{Timeout: cfg.NotifyTimeout, Transport: tr}
	if cfg.DBPath != "" {
		st, err := openStore(ctx, cfg.DBPath)
		if err != nil {
			return nil, err
		}
		s.store = st
		if err := s.load(ctx); err != nil {
			st.close()
			return nil, err
		}
	}
	if err := s.initPlatform(ctx); err != nil {
		s.closeStore()
		return nil, err
	}
	for _, m := range cfg.Merchants {
		if err := s.AddMerchant(m); err != nil {
			s.closeStore()
			return nil, err
		}
	}
	l, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		s.closeStore()
		return nil, fmt.Errorf("paysim: listen: %w", err)
	}
	s.url = "http://" + l.Addr().String()
	s.srv = simulate.Serve(l, s.routes(), s.log)
	s.log.Info("payment channel simulator started", "url", s.url, "platform_serial", s.rsa.serial, "platform_sm2_serial", s.sm2.serial, "db", cfg.DBPath,
		"orders", len(s.orders), "refunds", len(s.refunds))
	return s, nil
}

// initPlatform sets the platform keys and their self-signed certificates:
// from the config, from the database, or new.
func (s *Sim) initPlatform(ctx context.Context) error {
	var err error
	if s.rsa, err = s.platformKey(ctx, "platform", s.cfg.PlatformKey, func() (crypto.Signer, error) {
		return rsa.GenerateKey(rand.Reader, 2048)
	}); err != nil {
		return err
	}
	s.sm2, err = s.platformKey(ctx, "platform-sm2", s.cfg.PlatformSM2Key, func() (crypto.Signer, error) {
		return sm2.GenerateKey(rand.Reader)
	})
	return err
}

// platformKey returns the platform key stored under name: the configured
// one (given must be a nil pointer otherwise), the stored one, or a new one.
func (s *Sim) platformKey(ctx context.Context, name string, given crypto.Signer, generate func() (crypto.Signer, error)) (platformKey, error) {
	key := given
	if k, ok := key.(*rsa.PrivateKey); ok && k == nil {
		key = nil
	}
	if k, ok := key.(*sm2.PrivateKey); ok && k == nil {
		key = nil
	}
	if key == nil && s.store != nil {
		k, der, err := s.store.platform(ctx, name)
		if err != nil {
			return platformKey{}, err
		}
		if k != nil {
			return newPlatformKey(k, der)
		}
	}
	if key == nil {
		var err error
		if key, err = generate(); err != nil {
			return platformKey{}, err
		}
	}
	sn, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	now := s.cfg.Now()
	tmpl := &smx509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: "Tenpay.com Root CA (simulator)", Organization: []string{"ihos pay-sim"}},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0),
		KeyUsage: smx509.KeyUsageDigitalSignature,
	}
	if _, ok := key.(*sm2.PrivateKey); ok {
		tmpl.SignatureAlgorithm = smx509.SM2WithSM3
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return platformKey{}, err
	}
	if s.store != nil {
		if err := s.store.savePlatform(ctx, name, key, der); err != nil {
			return platformKey{}, err
		}
	}
	return newPlatformKey(key, der)
}

func newPlatformKey(key crypto.Signer, der []byte) (platformKey, error) {
	cert, err := smx509.ParseCertificate(der)
	if err != nil {
		return platformKey{}, err
	}
	return platformKey{key: key, certDER: der, serial: strings.ToUpper(cert.SerialNumber.Text(16))}, nil
}

// platform is the signing key for scheme.
func (s *Sim) platform(scheme string) platformKey {
	if scheme == paychannel.AuthSchemeSM2 {
		return s.sm2
	}
	return s.rsa
}

// URL is the simulator's base URL: the value for paychannel.Client.BaseURL.
func (s *Sim) URL() string { return s.url }

// PlatformSerial is the serial number of the RSA platform certificate, the
// Wechatpay-Serial of every answer and notify to an RSA merchant.
func (s *Sim) PlatformSerial() string { return s.rsa.serial }

// PlatformKey is the public key answers and notifies to RSA merchants are
// signed with.
func (s *Sim) PlatformKey() *rsa.PublicKey { return s.rsa.key.Public().(*rsa.PublicKey) }

// PlatformCertPEM is the RSA platform certificate as PEM; GET
// /control/platform.pem serves it.
func (s *Sim) PlatformCertPEM() []byte {
	return pemCert(s.rsa.certDER)
}

// PlatformSM2Serial, PlatformSM2Key and PlatformSM2CertPEM are the same for
// the SM2 platform certificate, which signs for SM2 merchants; GET
// /control/platform-sm2.pem serves it.
func (s *Sim) PlatformSM2Serial() string        { return s.sm2.serial }
func (s *Sim) PlatformSM2Key() *ecdsa.PublicKey { return s.sm2.key.Public().(*ecdsa.PublicKey) }
func (s *Sim) PlatformSM2CertPEM() []byte       { return pemCert(s.sm2.certDER) }

// AddMerchant registers (or replaces) a merchant.
func (s *Sim) AddMerchant(m Merchant) error {
	if m.MchID == "" || m.AppID == "" || m.SerialNo == "" || m.PublicKey == nil || len(m.APIv3Key) != 32 {
		return errors.New("商户信息不完整：需要 mchid、appid、serial_no、公钥和 32 字节的 APIv3 密钥")
	}
	if m.scheme() == "" {
		return errors.New("商户公钥须为 RSA 或 SM2 公钥")
	}
	s.mu.Lock()
	s.merchants[m.MchID] = m
	s.mu.Unlock()
	if s.store != nil {
		return s.store.saveMerchant(context.Background(), m)
	}
	return nil
}

// Close stops the server, the notify retries and the timers.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	s.mu.Unlock()
	err := s.srv.Close()
	s.bg.Wait()
	s.closeStore()
	return err
}

func (s *Sim) closeStore() {
	if s.store != nil {
		s.store.close()
	}
}

// later runs f after d in the background unless the simulator closes
// first. It returns false when the simulator is closed.
func (s *Sim) later(d time.Duration, f func()) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.bg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.bg.Done()
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-s.quit:
				t.Stop()
				return
			}
		}
		f()
	}()
	return true
}

func (s *Sim) count(name string) {
	s.mu.Lock()
	s.counts[name]++
	s.mu.Unlock()
}

// readBody reads a request body of at most 1 MiB.
func readBody(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, 1<<20))
}
