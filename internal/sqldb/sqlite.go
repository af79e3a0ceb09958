package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// sqlitePragmas are set on every connection. WAL lets readers run beside the
// writer; synchronous=FULL fsyncs the WAL on every commit, so a committed change
// survives power loss (the appliance promises that nothing acknowledged is lost);
// the busy timeout covers the brief moments a checkpoint holds a lock. Reads
// map the first 128 MB of the database file instead of copying each page into
// every connection's own 2 MB cache with a read system call: with 100,000 staff
// the list indexes outgrow that cache, and the copies were a third of a list
// request's CPU (docs/benchmarks.md). Writes still go through write and fsync.
// Mapped pages count in the process's RSS once touched; 128 MB (not 256) keeps
// the appliance under its 200 MB budget while a million-change backlog drains.
var sqlitePragmas = []string{
	"busy_timeout(10000)",
	"journal_mode(WAL)",
	"synchronous(FULL)",
	"foreign_keys(1)",
	"mmap_size(134217728)",
}

func sqliteDSN(path string, txlock string) string {
	q := url.Values{}
	for _, p := range sqlitePragmas {
		q.Add("_pragma", p)
	}
	if txlock != "" {
		q.Set("_txlock", txlock)
	}
	return "file:" + filepath.ToSlash(path) + "?" + q.Encode()
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: create data dir: %w", err)
		}
	}
	w, err := sql.Open("sqlite", sqliteDSN(path, "immediate"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	// The first connection creates the file and switches it to WAL before any
	// reader opens it.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", sqliteDSN(path, ""))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Readers are cheap (a file handle; pages come from the shared mapping), and
	// database/sql hands a freed connection to a random waiter, so a pool much
	// smaller than the number of concurrent requests turns into long tail
	// latencies; 16 keeps a busy console's requests off that queue.
	n := max(16, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxLifetime(0)
	return &DB{DB: r, Engine: SQLite, w: w}, nil
}
