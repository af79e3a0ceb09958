package cloud_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/go-sql-driver/mysql"

	"ihos/cloud"
	"ihos/internal/node"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
)

// freshMySQL creates an empty database on the IHOS_MYSQL_DSN server for this
// test, dropped afterwards, and returns its "mysql://" DSN, the way sqldbtest
// does for store tests. Without the variable it skips (fails under CI=true).
func freshMySQL(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(sqldbtest.EnvMySQL)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set but CI=true: the MySQL run must happen in CI", sqldbtest.EnvMySQL)
		}
		t.Skipf("%s not set: skipping the MySQL/MariaDB run", sqldbtest.EnvMySQL)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("%s: %v", sqldbtest.EnvMySQL, err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var b [6]byte
	rand.Read(b[:])
	name := "ihos_t_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		t.Fatalf("create test database on %s: %v", cfg.Addr, err)
	}
	t.Cleanup(func() {
		if admin, err := sql.Open("mysql", cfg.FormatDSN()); err == nil {
			admin.Exec("DROP DATABASE " + name)
			admin.Close()
		}
	})
	cfg.DBName = name
	return "mysql://" + cfg.FormatDSN()
}

// TestCloudStarts starts the cloud on SQLite and, when a server is configured, on
// MariaDB/MySQL, and checks /healthz over real HTTP.
func TestCloudStarts(t *testing.T) {
	for _, c := range []struct {
		engine string
		dsn    func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"mysql", freshMySQL},
	} {
		t.Run(c.engine, func(t *testing.T) {
			dsn := c.dsn(t)
			a, err := cloud.New(context.Background(), cloud.Config{Config: node.Config{
				DataDir: t.TempDir(), HTTP: "127.0.0.1:0", LogLevel: "warn", Database: dsn,
			}})
			if err != nil {
				t.Fatalf("cloud.New: %v", err)
			}
			defer a.Close()
			srv := httptest.NewServer(web.Middleware(a.Handler))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/healthz")
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
			if resp.StatusCode != 200 || h.Status != "ok" || h.Service != "cloud" || h.Database != c.engine ||
				h.Checks["database"] != "ok" || h.Checks["nats"] != "ok" {
				t.Fatalf("healthz: %d %+v", resp.StatusCode, h)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Fatalf("healthz content type %q", ct)
			}
		})
	}
}
