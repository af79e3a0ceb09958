package node

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// Flags beat the environment, which beats the file, which beats the defaults.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.json")
	os.WriteFile(file, []byte(`{"http": "127.0.0.1:1111", "log_level": "warn", "data_dir": "/from/file"}`), 0o600)
	t.Setenv("IHOS_LOG_LEVEL", "debug")
	t.Setenv("IHOS_DATA_DIR", "/from/env")
	cfg := Config{HTTP: "default:1", NodeID: "default-node"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	path := cfg.Flags(fs)
	if err := Load(fs, []string{"--config", file, "--data-dir", "/from/flag"}, &cfg, path); err != nil {
		t.Fatal(err)
	}
	want := Config{HTTP: "127.0.0.1:1111", LogLevel: "debug", DataDir: "/from/flag", NodeID: "default-node"}
	if cfg != want {
		t.Fatalf("cfg = %+v, want %+v", cfg, want)
	}
	// A named config file that does not exist is an error; a bad flag too.
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	path = cfg.Flags(fs)
	if err := Load(fs, []string{"--config", filepath.Join(dir, "missing.json")}, &cfg, path); err == nil {
		t.Fatal("missing config file accepted")
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	path = cfg.Flags(fs)
	if err := Load(fs, []string{"--no-such-flag"}, &cfg, path); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

func TestOpenAndHealth(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data")
	n, err := Open(context.Background(), Config{DataDir: dir}, Options{Kind: "appliance", SyncAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, p := range []string{"appliance.db", "keys/pii.key", "jetstream"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s not created: %v", p, err)
		}
	}
	rec := httptest.NewRecorder()
	n.Health().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	var body map[string]any
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != http.StatusOK || body["status"] != "ok" || body["service"] != "appliance" || body["database"] != "sqlite" {
		t.Fatalf("health = %d %v", rec.Code, body)
	}
	// The appliance refuses MySQL.
	if _, err := Open(context.Background(), Config{DataDir: t.TempDir(), Database: "mysql://root@tcp(127.0.0.1:1)/x"}, Options{Kind: "appliance"}); err == nil {
		t.Fatal("appliance accepted MySQL")
	}
	if _, err := Open(context.Background(), Config{DataDir: t.TempDir(), LogLevel: "loud"}, Options{Kind: "cloud"}); err == nil {
		t.Fatal("bad log level accepted")
	}
}
