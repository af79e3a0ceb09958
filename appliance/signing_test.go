package appliance_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ihos/appliance"
	"ihos/internal/node"
	"ihos/internal/web"
)

// The demo appliance's signing service end to end: the demo application's
// token from the credentials file signs through /api/svs and the signature
// verifies at level 2 (the hospital CA's CRL served at /ca/crl); a doctor is
// enrolled, signs an EMR with their PIN, and the signature verifies through
// the API and offline with `ihos-appliance verify`, and fails once the EMR
// changes.
func TestSigningService(t *testing.T) {
	dir := t.TempDir()
	credFile := filepath.Join(dir, "creds.json")
	srv := httptest.NewUnstartedServer(nil)
	addr := srv.Listener.Addr().String()
	a, err := appliance.New(context.Background(), appliance.Config{
		Config: node.Config{DataDir: filepath.Join(dir, "data"), HTTP: addr}, Demo: true, Credentials: credFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	srv.Config.Handler = web.Middleware(a.Handler)
	srv.Start()
	t.Cleanup(srv.Close)

	var creds struct {
		SVS struct {
			Token string `json:"token"`
		} `json:"svs"`
	}
	raw, _ := os.ReadFile(credFile)
	if err := json.Unmarshal(raw, &creds); err != nil || creds.SVS.Token == "" {
		t.Fatalf("no svs token in the credentials file: %s", raw)
	}
	call := func(path, token string, in, out any) int {
		t.Helper()
		b, _ := json.Marshal(in)
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(out)
		return resp.StatusCode
	}
	data := base64.StdEncoding.EncodeToString([]byte("处方：硝苯地平控释片 30mg 每日一次"))
	var signed struct{ Signature, Cert string }
	if code := call("/api/svs/sign", creds.SVS.Token, map[string]string{"data": data}, &signed); code != 200 || signed.Signature == "" {
		t.Fatalf("sign: %d %+v", code, signed)
	}
	var verified struct {
		Valid  bool
		Reason string
	}
	if code := call("/api/svs/verify", creds.SVS.Token, map[string]any{"data": data, "signature": signed.Signature, "cert": signed.Cert, "level": 2}, &verified); code != 200 || !verified.Valid {
		t.Fatalf("verify level 2: %d %+v", code, verified)
	}
	if code := call("/api/svs/sign", "wrong", map[string]string{"data": data}, &signed); code != http.StatusUnauthorized {
		t.Fatalf("a wrong token: %d", code)
	}
	resp, err := http.Get(srv.URL + "/ca/crl")
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("CRL: %v %v", resp, err)
	}
	resp.Body.Close()

	// A doctor's e-signature, through the API as the platform calls it.
	token, _ := os.ReadFile(filepath.Join(dir, "data", node.CLITokenFile))
	cli := strings.TrimSpace(string(token))
	callCLI := func(path string, in, out any) int {
		t.Helper()
		b, _ := json.Marshal(in)
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(node.CLITokenHeader, cli)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(out)
		return resp.StatusCode
	}
	var enrolled map[string]string
	if code := callCLI("/api/esign/enroll", map[string]string{"staff_id": "D1001", "name": "李医生", "pin": "246810"}, &enrolled); code != 201 {
		t.Fatalf("enroll: %d %v", code, enrolled)
	}
	emr := json.RawMessage(`{"patient":"张三","chief_complaint":"头晕三天","diagnosis":[{"code":"I10","name":"原发性高血压"}]}`)
	var sig struct {
		P7 string `json:"p7"`
	}
	if code := callCLI("/api/esign/sign", map[string]any{"staff_id": "D1001", "pin": "246810", "document": emr}, &sig); code != 200 || sig.P7 == "" {
		t.Fatalf("sign EMR: %d %+v", code, sig)
	}
	var v struct {
		Valid  bool   `json:"valid"`
		Signer string `json:"signer"`
		Reason string `json:"reason"`
	}
	if code := call("/api/esign/verify", "", map[string]any{"document": emr, "p7": sig.P7}, &v); code != 200 || !v.Valid || v.Signer != "李医生" {
		t.Fatalf("verify EMR: %d %+v", code, v)
	}
	changed := json.RawMessage(strings.Replace(string(emr), "三天", "四天", 1))
	if code := call("/api/esign/verify", "", map[string]any{"document": changed, "p7": sig.P7}, &v); code != 200 || v.Valid || v.Reason == "" {
		t.Fatalf("verify a changed EMR: %d %+v", code, v)
	}

	// Offline, as anyone with the hospital CA's certificate would.
	docFile, sigFile := filepath.Join(dir, "emr.json"), filepath.Join(dir, "emr.p7")
	os.WriteFile(docFile, emr, 0o600)
	os.WriteFile(sigFile, []byte(sig.P7), 0o600)
	var out bytes.Buffer
	if err := appliance.VerifyCLI(context.Background(), []string{"--doc", docFile, "--sig", sigFile, "--data-dir", filepath.Join(dir, "data")}, &out); err != nil {
		t.Fatalf("verify CLI: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "验证通过") || !strings.Contains(out.String(), "李医生") || !strings.Contains(out.String(), "时间戳") {
		t.Fatalf("verify CLI output:\n%s", out.String())
	}
	os.WriteFile(docFile, changed, 0o600)
	out.Reset()
	if err := appliance.VerifyCLI(context.Background(), []string{"--doc", docFile, "--sig", sigFile, "--data-dir", filepath.Join(dir, "data")}, &out); err == nil {
		t.Fatalf("the CLI verified a changed EMR:\n%s", out.String())
	}
	t.Logf("verify CLI on a changed EMR: %s", strings.TrimSpace(out.String()))
}
