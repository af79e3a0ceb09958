package cloud_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"ihos/cloud/cloudtest"
)

// TestCloudStarts starts the cloud on SQLite and, when a server is configured, on
// MariaDB/MySQL, and checks /healthz over real HTTP.
func TestCloudStarts(t *testing.T) {
	cloudtest.Engines(t, func(t *testing.T, dsn string) {
		engine := "sqlite"
		if dsn != "" {
			engine = "mysql"
		}
		c := cloudtest.Start(t, cloudtest.Options{DSN: dsn})
		resp, err := http.Get(c.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h struct {
			Status   string            `json:"status"`
			Service  string            `json:"service"`
			Database string            `json:"database"`
			Checks   map[string]string `json:"checks"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatalf("healthz is not JSON: %v", err)
		}
		if resp.StatusCode != 200 || h.Status != "ok" || h.Service != "cloud" || h.Database != engine ||
			h.Checks["database"] != "ok" || h.Checks["nats"] != "ok" {
			t.Fatalf("healthz: %d %+v", resp.StatusCode, h)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("healthz content type %q", ct)
		}
	})
}
