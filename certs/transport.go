package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"ihos"
)

// File names in a CA / hub directory.
const (
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key"
)

// Names and lifetimes of the transport PKI.
const (
	caCommonName = "ihos 互联网医院 同步根证书"
	organization = "ihos"
	// HospitalOU is the OrganizationalUnit of every hospital client certificate.
	HospitalOU = "hospital"
	hubOU      = "hub"

	caValidity     = 10 * 365 * 24 * time.Hour
	leafValidity   = 2 * 365 * 24 * time.Hour
	renewBefore    = 30 * 24 * time.Hour
	backdate       = time.Hour // tolerate appliance clocks that run a little slow
	minRSABits     = 2048
	maxRSABits     = 8192
	maxHostsPerSAN = 100
)

// now is the clock; tests move it.
var now = time.Now

func errBadHospitalID(id string) error {
	return ihos.Errorf(ihos.EInvalid, "医院编号 %q 无效：只能包含字母、数字、- 和 _，最长 36 位", id)
}

// invalid returns an EInvalid *ihos.Error with a user-safe Chinese message and the
// technical cause kept for the log.
func invalid(cause error, format string, args ...any) error {
	e := ihos.Errorf(ihos.EInvalid, format, args...)
	e.Err = cause
	return e
}

// CA is the cloud's certificate authority for hospital links.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer

	certPEM []byte
	pool    *x509.CertPool
}

// LoadOrCreateCA loads dir/ca.crt + dir/ca.key (PEM, key 0600), or creates a new CA
// (ECDSA P-256, 10 years, CN "ihos 互联网医院 同步根证书", KeyUsage CertSign|CRLSign,
// BasicConstraints CA, MaxPathLen 0, random 128-bit serial) on first start.
//
// If only one of the two files exists it fails rather than making a new CA: a new
// CA would silently cut off every enrolled hospital. The key is written before the
// certificate, so a crash during creation leaves ca.key without ca.crt, which
// also fails here and needs an operator to look (remove ca.key if nothing was ever
// issued).
func LoadOrCreateCA(dir string) (*CA, error) {
	crtPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	crtOK, err := exists(crtPath)
	if err != nil {
		return nil, err
	}
	keyOK, err := exists(keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case crtOK && keyOK:
		return loadCA(crtPath, keyPath)
	case crtOK || keyOK:
		have, miss := crtPath, keyPath
		if keyOK {
			have, miss = keyPath, crtPath
		}
		return nil, fmt.Errorf("certs: CA incomplete: %s exists but %s does not; refusing to create a new CA over it (a new CA would invalidate every enrolled hospital)", have, miss)
	}
	return createCA(crtPath, keyPath)
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("certs: %w", err)
}

func loadCA(crtPath, keyPath string) (*CA, error) {
	cert, certPEM, err := ReadCertFile(crtPath)
	if err != nil {
		return nil, err
	}
	key, _, err := ReadKeyFile(keyPath)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("certs: %s is not a CA certificate", crtPath)
	}
	if !samePublicKey(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("certs: %s does not belong to %s", keyPath, crtPath)
	}
	if t := now(); t.After(cert.NotAfter) {
		return nil, fmt.Errorf("certs: CA certificate %s expired on %s", crtPath, cert.NotAfter.Format(time.DateOnly))
	}
	return newCA(cert, key, certPEM), nil
}

func createCA(crtPath, keyPath string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	t := now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caCommonName, Organization: []string{organization}},
		NotBefore:             t.Add(-backdate),
		NotAfter:              t.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("certs: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parse new CA certificate: %w", err)
	}
	keyPEM, err := EncodeKeyPEM(key)
	if err != nil {
		return nil, err
	}
	certPEM := EncodeCertPEM(der)
	if err := WriteKeyFile(keyPath, keyPEM); err != nil {
		return nil, err
	}
	if err := WriteCertFile(crtPath, certPEM); err != nil {
		return nil, err
	}
	return newCA(cert, key, certPEM), nil
}

func newCA(cert *x509.Certificate, key crypto.Signer, certPEM []byte) *CA {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, Key: key, certPEM: bytes.Clone(certPEM), pool: pool}
}

// CAPEM returns the CA certificate PEM (shipped to appliances at enrollment).
func (ca *CA) CAPEM() []byte {
	if ca.certPEM == nil {
		return EncodeCertPEM(ca.Cert.Raw)
	}
	return bytes.Clone(ca.certPEM)
}

func (ca *CA) certPool() *x509.CertPool {
	if ca.pool != nil {
		return ca.pool
	}
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// ServerCert issues (or loads if present and valid for the same hosts and >30 days
// left) dir/server.crt/key for the hub's leafnode listener, SANs = hosts (IPs and
// DNS names), 2 years, ExtKeyUsage ServerAuth.
//
// Hosts are compared as a set (order, case and duplicates do not matter). An
// existing pair that does not verify against this CA, whose key does not match, or
// that cannot be read is replaced.
func (ca *CA) ServerCert(dir string, hosts []string) (tls.Certificate, error) {
	dns, ips, err := parseHosts(hosts)
	if err != nil {
		return tls.Certificate{}, err
	}
	crtPath, keyPath := filepath.Join(dir, serverCertFile), filepath.Join(dir, serverKeyFile)
	if c, ok := ca.reuseServerCert(crtPath, keyPath, dns, ips); ok {
		return c, nil
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: generate server key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	cn := strings.TrimSpace(hosts[0])
	if len(cn) > 64 { // ub-common-name
		cn = cn[:64]
	}
	t := now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{organization}, OrganizationalUnit: []string{hubOU}},
		NotBefore:             t.Add(-backdate),
		NotAfter:              ca.clampNotAfter(t.Add(leafValidity)),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: create server certificate: %w", err)
	}
	keyPEM, err := EncodeKeyPEM(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM := EncodeCertPEM(der)
	// Key first: a crash between the two writes leaves a mismatched pair, which the
	// next start detects and reissues.
	if err := WriteKeyFile(keyPath, keyPEM); err != nil {
		return tls.Certificate{}, err
	}
	if err := WriteCertFile(crtPath, certPEM); err != nil {
		return tls.Certificate{}, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: load new server certificate: %w", err)
	}
	return c, nil
}

// reuseServerCert returns the existing server certificate if it is signed by ca,
// is for ServerAuth, names exactly dns+ips, matches its key, and has more than
// renewBefore left.
func (ca *CA) reuseServerCert(crtPath, keyPath string, dns []string, ips []net.IP) (tls.Certificate, bool) {
	cert, certPEM, err := ReadCertFile(crtPath)
	if err != nil {
		return tls.Certificate{}, false
	}
	key, keyPEM, err := ReadKeyFile(keyPath)
	if err != nil || !samePublicKey(cert.PublicKey, key.Public()) {
		return tls.Certificate{}, false
	}
	t := now()
	if cert.NotAfter.Sub(t) <= renewBefore {
		return tls.Certificate{}, false
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:       ca.certPool(),
		CurrentTime: t,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return tls.Certificate{}, false
	}
	have := make([]string, 0, len(cert.DNSNames)+len(cert.IPAddresses))
	for _, d := range cert.DNSNames {
		have = append(have, strings.ToLower(d))
	}
	for _, ip := range cert.IPAddresses {
		have = append(have, ip.String())
	}
	want := make([]string, 0, len(dns)+len(ips))
	want = append(want, dns...)
	for _, ip := range ips {
		want = append(want, ip.String())
	}
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(slices.Compact(have), want) {
		return tls.Certificate{}, false
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, false
	}
	return c, true
}

// parseHosts splits hosts into lower-case DNS names and IPs, dropping duplicates
// (the DNS list and the IP list come back sorted and unique).
func parseHosts(hosts []string) ([]string, []net.IP, error) {
	if len(hosts) == 0 {
		return nil, nil, ihos.Errorf(ihos.EInvalid, "同步服务端证书至少需要一个主机名或 IP 地址")
	}
	if len(hosts) > maxHostsPerSAN {
		return nil, nil, ihos.Errorf(ihos.EInvalid, "同步服务端证书的主机名过多（%d 个，最多 %d 个）", len(hosts), maxHostsPerSAN)
	}
	var dns []string
	var ips []net.IP
	seenIP := map[string]bool{}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if ip := net.ParseIP(h); ip != nil {
			if !seenIP[ip.String()] {
				seenIP[ip.String()] = true
				ips = append(ips, ip)
			}
			continue
		}
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if !validDNSName(h) {
			return nil, nil, ihos.Errorf(ihos.EInvalid, "主机名 %q 无效：应为域名或 IP 地址，不含端口和协议（中文域名请写成 xn-- 形式）", h)
		}
		dns = append(dns, h)
	}
	slices.Sort(dns)
	dns = slices.Compact(dns)
	slices.SortFunc(ips, func(a, b net.IP) int { return strings.Compare(a.String(), b.String()) })
	return dns, ips, nil
}

// dnsNameRE accepts host names and a leading wildcard label (*.example.com).
var dnsNameRE = regexp.MustCompile(`^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$`)

func validDNSName(h string) bool { return len(h) <= 253 && dnsNameRE.MatchString(h) }

// clampNotAfter keeps a certificate from outliving the CA that signs it.
func (ca *CA) clampNotAfter(t time.Time) time.Time {
	if t.After(ca.Cert.NotAfter) {
		return ca.Cert.NotAfter
	}
	return t
}

// SignCSR signs a hospital's CSR: the certificate's CommonName is forced to the
// hospital id (whatever the CSR says), OU "hospital", ExtKeyUsage ClientAuth only,
// validity 2 years, checks the CSR signature, rejects non-ECDSA-P256/RSA<2048 keys.
//
// Nothing else is taken from the CSR: its subject, SANs and requested extensions
// are ignored.
func (ca *CA) SignCSR(csrPEM []byte, hospitalID string) (certPEM []byte, err error) {
	if !ihos.ValidHospitalID(hospitalID) {
		return nil, errBadHospitalID(hospitalID)
	}
	var blk *pem.Block
	rest := csrPEM
	for {
		blk, rest = pem.Decode(rest)
		if blk == nil || blk.Type == pemCSR || blk.Type == pemCSRLegacy {
			break
		}
	}
	if blk == nil {
		return nil, ihos.Errorf(ihos.EInvalid, "证书请求格式无效：不是 PEM 格式的证书请求（CERTIFICATE REQUEST）")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, invalid(err, "证书请求无法解析")
	}
	if err := checkClientKey(csr.PublicKey); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, invalid(err, "证书请求签名校验失败：请求在传输中被改动，或与私钥不匹配")
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	t := now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         hospitalID,
			Organization:       []string{organization},
			OrganizationalUnit: []string{HospitalOU},
		},
		NotBefore:             t.Add(-backdate),
		NotAfter:              ca.clampNotAfter(t.Add(leafValidity)),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("certs: sign certificate for hospital %s: %w", hospitalID, err)
	}
	return EncodeCertPEM(der), nil
}

// checkClientKey accepts ECDSA P-256 and RSA 2048..8192 bits.
func checkClientKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return nil
		}
		return ihos.Errorf(ihos.EInvalid, "证书请求的密钥不受支持：ECDSA 只接受 P-256 曲线（收到 %s）", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits || n > maxRSABits {
			return ihos.Errorf(ihos.EInvalid, "证书请求的密钥不受支持：RSA 密钥须为 %d 至 %d 位（收到 %d 位）", minRSABits, maxRSABits, n)
		}
		return nil
	}
	return ihos.Errorf(ihos.EInvalid, "证书请求的密钥不受支持：只接受 ECDSA P-256 或不少于 %d 位的 RSA（收到 %T）", minRSABits, pub)
}

// NewCSR makes a key and CSR for a hospital (appliance side): returns keyPEM
// (PKCS#8) and csrPEM. The key is ECDSA P-256; keep keyPEM on the appliance
// (WriteKeyFile) and send only csrPEM to the cloud.
func NewCSR(hospitalID string) (keyPEM, csrPEM []byte, err error) {
	if !ihos.ValidHospitalID(hospitalID) {
		return nil, nil, errBadHospitalID(hospitalID)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generate hospital key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{
			CommonName:         hospitalID,
			Organization:       []string{organization},
			OrganizationalUnit: []string{HospitalOU},
		},
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create CSR: %w", err)
	}
	if keyPEM, err = EncodeKeyPEM(key); err != nil {
		return nil, nil, err
	}
	return keyPEM, pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der}), nil
}

// HubTLS: server tls.Config for the hub leafnode listener: server cert, ClientCAs =
// CA pool, ClientAuth RequireAndVerifyClientCert, MinVersion TLS1.2.
//
// It also refuses, during the handshake, a verified client certificate that is not
// a hospital certificate (see HospitalOf), so every accepted connection maps to a
// hospital.
func (ca *CA) HubTLS(server tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{server},
		ClientCAs:    ca.certPool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
				return errors.New("certs: no verified client certificate")
			}
			_, err := HospitalOf(cs.VerifiedChains[0][0])
			return err
		},
	}
}

// LeafTLS: client tls.Config for an appliance: its cert/key and the CA pool as
// RootCAs, ServerName set from the hub URL's host.
//
// serverName may be a bare host ("sync.example.com", "203.0.113.5"), host:port,
// or the hub URL itself ("tls://sync.example.com:7422"); the host part is used.
// The certificate must match the key, be a hospital certificate and be signed by a
// CA in caPEM. Its expiry is deliberately not checked here, so an appliance with
// an expired certificate still starts and works alone; the handshake fails and
// the link status shows why.
func LeafTLS(certPEM, keyPEM, caPEM []byte, serverName string) (*tls.Config, error) {
	host, err := hubHost(serverName)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, invalid(err, "本院证书或私钥无效，或两者不匹配，请重新登记（ihos-appliance enroll）")
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, invalid(err, "本院证书无法解析，请重新登记")
		}
	}
	if _, err := HospitalOf(leaf); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	signed := false
	for rest := caPEM; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if blk.Type != pemCert {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, invalid(err, "云端根证书无法解析，请重新登记")
		}
		pool.AddCert(c)
		if c.IsCA && leaf.CheckSignatureFrom(c) == nil {
			signed = true
		}
	}
	if !signed {
		return nil, ihos.Errorf(ihos.EInvalid, "本院证书不是由所给的云端根证书签发的，请重新登记（ihos-appliance enroll）")
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ServerName:   host,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// hubHost returns the host part of a hub address given as a host, host:port or URL.
func hubHost(s string) (string, error) {
	s = strings.TrimSpace(s)
	host := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", invalid(err, "云端地址 %q 无效", s)
		}
		host = u.Hostname()
	} else if h, _, err := net.SplitHostPort(s); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return "", ihos.Errorf(ihos.EInvalid, "云端地址 %q 缺少主机名", s)
	}
	return host, nil
}

// HospitalOf returns the hospital id (CN) of a verified client certificate chain,
// for mapping a connection to its hospital.
//
// Pass the leaf of a chain crypto/tls has verified against the CA
// (ConnectionState.VerifiedChains[0][0]); HospitalOf checks only that the
// certificate is a hospital client certificate (OU "hospital", ExtKeyUsage
// ClientAuth, a valid hospital id as CN), not its signature.
func HospitalOf(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", ihos.Errorf(ihos.EInvalid, "连接未提供证书")
	}
	if cert.IsCA || !slices.Contains(cert.Subject.OrganizationalUnit, HospitalOU) ||
		!slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return "", ihos.Errorf(ihos.EInvalid, "连接证书不是医院证书（%s）", cert.Subject.CommonName)
	}
	id := cert.Subject.CommonName
	if !ihos.ValidHospitalID(id) {
		return "", errBadHospitalID(id)
	}
	return id, nil
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("certs: serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func samePublicKey(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}
