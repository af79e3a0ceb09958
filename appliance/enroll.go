package appliance

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ihos"
	"ihos/certs"
	"ihos/internal/node"
	"ihos/internal/web"
)

// Enrollment is what the appliance keeps of its enrollment with the cloud, in
// <data dir>/sync/enrollment.json beside its certificate and key.
type Enrollment struct {
	Hospital   string    `json:"hospital_id"`
	Name       string    `json:"name"`
	LeafURL    string    `json:"leaf_url"`
	Cloud      string    `json:"cloud"`
	EnrolledAt time.Time `json:"enrolled_at"`
}

const enrollDir = "sync"

// Enroll trades a one-time code from the cloud's administrator for this
// hospital's client certificate: it makes a key (which never leaves the data
// dir), sends a CSR with the code to cloudURL, and stores the certificate, the
// cloud's CA and the hospital id. The running service picks it up on restart.
func Enroll(ctx context.Context, dataDir, cloudURL, code string) (*Enrollment, error) {
	if _, err := url.ParseRequestURI(cloudURL); err != nil || !(strings.HasPrefix(cloudURL, "http://") || strings.HasPrefix(cloudURL, "https://")) {
		return nil, ihos.Invalid(map[string]string{"cloud": "云端地址应为 https://主机[:端口]"})
	}
	keyPEM, csrPEM, err := certs.NewCSR("enrolling")
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"code": code, "csr": string(csrPEM)})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(cloudURL, "/")+"/api/enroll", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "无法连接云端：" + cloudURL, Err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e web.ErrorBody
		if json.Unmarshal(b, &e) == nil && e.Message != "" {
			return nil, &ihos.Error{Code: e.Code, Message: e.Message, Fields: e.Fields}
		}
		return nil, ihos.Errorf(ihos.EUnavailable, "云端返回 %d", resp.StatusCode)
	}
	var got struct {
		Hospital string `json:"hospital_id"`
		Name     string `json:"name"`
		CertPEM  string `json:"cert_pem"`
		CAPEM    string `json:"ca_pem"`
		LeafURL  string `json:"leaf_url"`
	}
	if err := json.Unmarshal(b, &got); err != nil || !ihos.ValidHospitalID(got.Hospital) {
		return nil, ihos.Errorf(ihos.EUnavailable, "云端的登记应答无法识别")
	}
	// Check the pieces fit before keeping them.
	if _, err := certs.LeafTLS([]byte(got.CertPEM), keyPEM, []byte(got.CAPEM), "localhost"); err != nil {
		return nil, err
	}
	dir := filepath.Join(dataDir, enrollDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	e := &Enrollment{Hospital: got.Hospital, Name: got.Name, LeafURL: got.LeafURL, Cloud: cloudURL, EnrolledAt: time.Now().UTC()}
	eb, _ := json.MarshalIndent(e, "", "  ")
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{"client.key", keyPEM, 0o600}, {"client.crt", []byte(got.CertPEM), 0o644}, {"ca.crt", []byte(got.CAPEM), 0o644}, {"enrollment.json", eb, 0o644}} {
		if err := certs.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// loadEnrollment returns the stored enrollment, or nil when there is none.
func loadEnrollment(dataDir string) (*Enrollment, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, enrollDir, "enrollment.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var e Enrollment
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("enrollment.json: %w", err)
	}
	return &e, nil
}

// leafTLS builds the client TLS config for the hub at leafURL from the stored
// certificate.
func leafTLS(dataDir, leafURL string) (*tls.Config, error) {
	dir := filepath.Join(dataDir, enrollDir)
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) }
	cert, err := read("client.crt")
	if err != nil {
		return nil, err
	}
	key, err := read("client.key")
	if err != nil {
		return nil, err
	}
	ca, err := read("ca.crt")
	if err != nil {
		return nil, err
	}
	return certs.LeafTLS(cert, key, ca, leafURL)
}

// EnrollCLI runs `ihos-appliance enroll --cloud URL --code CODE [--data-dir 目录]`.
func EnrollCLI(ctx context.Context, args []string, out io.Writer) error {
	cfg := Config{Config: node.Config{HTTP: DefaultHTTP}}
	fs := flag.NewFlagSet("ihos-appliance enroll", flag.ContinueOnError)
	path := cfg.Flags(fs)
	cloudURL := fs.String("cloud", "", "云端地址，如 https://cloud.example.com")
	code := fs.String("code", "", "云端管理员签发的登记码")
	if err := node.Load(fs, args, &cfg, path); err != nil {
		return err
	}
	if *cloudURL == "" || *code == "" {
		return ihos.Errorf(ihos.EInvalid, "用法：ihos-appliance enroll --cloud https://云端地址 --code 登记码 [--data-dir 目录]")
	}
	if cfg.DataDir == "" {
		cfg.DataDir = node.DefaultDataDir("appliance")
	}
	e, err := Enroll(ctx, cfg.DataDir, *cloudURL, *code)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "登记成功：%s（医院编号 %s）\n同步地址：%s\n证书已保存在 %s；请重启院内服务使其生效。\n",
		e.Name, e.Hospital, e.LeafURL, filepath.Join(cfg.DataDir, enrollDir))
	return nil
}
