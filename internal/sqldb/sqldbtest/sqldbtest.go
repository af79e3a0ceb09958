// Package sqldbtest opens real databases for tests: a SQLite file in the test's
// temp dir always, and a fresh MariaDB/MySQL database when IHOS_MYSQL_DSN names a
// server. Store tests call Each so one suite runs against both engines.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"ihos/internal/sqldb"
)

// EnvMySQL names the MySQL server for tests, as a go-sql-driver DSN, for example
// root@tcp(127.0.0.1:3306)/test. Each test gets its own database on that server,
// created before and dropped after it.
const EnvMySQL = "IHOS_MYSQL_DSN"

// Each runs fn once per available engine as a subtest named after the engine.
// Without IHOS_MYSQL_DSN the MySQL run is skipped with a message, except under
// CI=true, where a missing database is a failure: CI must really run it.
func Each(t *testing.T, fn func(t *testing.T, db *sqldb.DB)) {
	t.Helper()
	t.Run(sqldb.SQLite, func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run(sqldb.MySQL, func(t *testing.T) { fn(t, MySQL(t)) })
}

// SQLite opens a migrated SQLite database in t.TempDir().
func SQLite(t testing.TB) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// MySQL opens a migrated, freshly created MySQL database, or skips (fails in CI)
// when IHOS_MYSQL_DSN is unset.
func MySQL(t testing.TB) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), MySQLDSN(t))
	if err != nil {
		t.Fatalf("open mysql: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// MySQLDSN creates a fresh database on the IHOS_MYSQL_DSN server, dropped when
// the test ends, and returns its DSN in the form services take
// ("mysql://user@tcp(host)/db"). It skips (fails in CI) when the variable is unset.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvMySQL)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set but CI=true: the MySQL store tests must run in CI", EnvMySQL)
		}
		t.Skipf("%s not set: skipping the MySQL/MariaDB run (set it to e.g. root@tcp(127.0.0.1:3306)/test)", EnvMySQL)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("%s: %v", EnvMySQL, err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("mysql: %v", err)
	}
	defer admin.Close()
	var b [6]byte
	rand.Read(b[:])
	name := "ihos_t_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		t.Fatalf("mysql: create test database (is the server at %s running?): %v", cfg.Addr, err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("mysql", cfg.FormatDSN())
		if err == nil {
			admin.Exec("DROP DATABASE " + name)
			admin.Close()
		}
	})
	cfg.DBName = name
	return "mysql://" + cfg.FormatDSN()
}

// RawCommitRate is the rate of trivial write transactions (one single-row
// INSERT, then COMMIT) on a fresh SQLite file at path, one after another
// through sqldb's write path: WAL, synchronous=FULL, so each commit is one
// fsync of the WAL. It is the machine's ceiling for one-commit-per-request
// designs, which the booking benchmarks report themselves against.
func RawCommitRate(tb testing.TB, path string) float64 {
	tb.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE raw_commits (id INTEGER PRIMARY KEY, v VARCHAR(36) NOT NULL)`)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	const n = 3000
	start := time.Now()
	for i := range n {
		if err := db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := db.TxExec(ctx, tx, `INSERT INTO raw_commits (id, v) VALUES (?, ?)`, i, "raw")
			return err
		}); err != nil {
			tb.Fatal(err)
		}
	}
	return n / time.Since(start).Seconds()
}
