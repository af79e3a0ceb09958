package cloud

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"ihos/internal/config"
	"ihos/internal/node"
	"ihos/sms/smssim"
)

// The SMS and identity-verification settings come from the environment
// (make run exports them), and the cloud sends codes with them.
func TestPatientConfigFromEnv(t *testing.T) {
	sim, err := smssim.Start(context.Background(), smssim.Config{AccessKeyID: "id", AccessKeySecret: "secret", SignName: "示例医院", TemplateCode: "SMS_9"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	for k, v := range map[string]string{"IHOS_SMS_URL": sim.URL(), "IHOS_SMS_ACCESS_KEY_ID": "id", "IHOS_SMS_ACCESS_KEY_SECRET": "secret",
		"IHOS_SMS_SIGN_NAME": "示例医院", "IHOS_SMS_TEMPLATE_CODE": "SMS_9", "IHOS_IDVERIFY_URL": "http://127.0.0.1:1", "IHOS_IDVERIFY_APPCODE": "app"} {
		t.Setenv(k, v)
	}
	cfg := Config{Config: node.Config{DataDir: filepath.Join(t.TempDir(), "cloud")}}
	if err := config.Load("", false, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Patients.IDVerify.AppCode != "app" || cfg.Patients.SMS.TemplateCode != "SMS_9" {
		t.Fatalf("config %+v", cfg.Patients)
	}
	a, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	srv := httptest.NewServer(a.Handler)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/patient/sms-code", "application/json", strings.NewReader(`{"phone":"13800138000"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || len(sim.LastCode("13800138000")) != 6 {
		t.Fatalf("sms-code: %d, code %q", resp.StatusCode, sim.LastCode("13800138000"))
	}
	// A request without a session is refused on every patient route.
	resp, err = http.Get(srv.URL + "/api/patient/members")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("members without a session: %d", resp.StatusCode)
	}
}
