// Package sqldb opens the relational database a service keeps its state in,
// applies the embedded, versioned schema migrations, and runs transactions.
//
// Two engines are supported with one schema: SQLite (modernc.org/sqlite, pure Go,
// the default on both services and the only engine on the appliance) and MySQL /
// MariaDB (the cloud in production). The SQL in this repository is written in the
// subset both engines accept: `?` placeholders, VARCHAR keys, times as fixed-width
// UTC text (see ihos.TimeFormat), booleans as INTEGER 0/1. Where the engines
// differ, DB.Engine tells callers which one they talk to.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ihos"
)

// Engines.
const (
	SQLite = "sqlite"
	MySQL  = "mysql"
)

// DB is an open database. Reads go through the embedded *sql.DB; writes go through
// Tx. On SQLite writes use a separate single-connection pool, so writers queue in
// Go instead of spinning on SQLITE_BUSY while readers run in parallel under WAL.
//
// Invariant: every write to this database goes through DB.Tx in this process;
// CLI tools talk to the service over HTTP, and nothing else opens the database
// for writing while the service runs. Generation relies on it: read caches (the
// admin list cache) are correct only as long as it holds.
type DB struct {
	*sql.DB
	Engine string
	w      *sql.DB
	gen    atomic.Uint64
	stmts  sync.Map // query text → *sql.Stmt on w; see stmt.go
	nstmts atomic.Int32
	wanted sync.Map // query text → struct{}: to prepare after the transaction
}

// Generation is the database's write generation: a counter that Tx increments
// after every commit (and after a commit that failed, since a failed commit may
// still have been applied). A value read before a query and still current after
// it means no write transaction committed in this process in between, so a result
// computed from the database can be cached tagged with the generation read before
// the query and served while Generation still returns that value. It says nothing
// about writes made outside Tx; see the invariant on DB.
func (db *DB) Generation() uint64 { return db.gen.Load() }

// Open opens the database named by dsn and migrates it to the newest schema.
// A dsn starting with "mysql://" is a go-sql-driver/mysql DSN after the prefix
// (user:pass@tcp(host:port)/db); anything else is a SQLite file path.
func Open(ctx context.Context, dsn string) (*DB, error) {
	var (
		db  *DB
		err error
	)
	if rest, ok := strings.CutPrefix(dsn, "mysql://"); ok {
		db, err = openMySQL(ctx, rest)
	} else {
		db, err = openSQLite(ctx, dsn)
	}
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Close closes both pools.
func (db *DB) Close() error {
	db.closeStmts()
	err := db.DB.Close()
	if db.w != db.DB {
		if werr := db.w.Close(); err == nil {
			err = werr
		}
	}
	return err
}

// Tx runs fn in a write transaction and commits when fn returns nil. On SQLite the
// transaction takes the write lock when it begins (BEGIN IMMEDIATE), so two writers
// never deadlock upgrading a read lock. A deadlock reported by MySQL is retried a
// few times, since InnoDB resolves deadlocks by aborting one side.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := db.tx(ctx, fn)
		if err == nil || attempt >= 3 || !db.retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		}
	}
}

// TxRefusing runs fn in a transaction and keeps fn's refusal apart from the
// transaction's error: a refusal (a wrong SMS code, a locked account) commits
// what fn wrote, such as an attempt count, and is returned as the result; a
// failure rolls back and comes back as an internal error unless it already
// is an *ihos.Error.
func (db *DB) TxRefusing(ctx context.Context, fn func(tx *sql.Tx) (refusal error, err error)) error {
	var refusal error
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		refusal, err = fn(tx)
		return err
	})
	if err != nil {
		var e *ihos.Error
		if errors.As(err, &e) {
			return err
		}
		return ihos.Internal(err)
	}
	return refusal
}

func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	err = tx.Commit()
	// After the commit, so that a reader that sees the new generation also sees
	// the committed rows; on a failed commit too, since it may have been applied.
	db.gen.Add(1)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	db.prepareWanted(ctx)
	return nil
}

func (db *DB) retryable(err error) bool {
	var e *ihos.Error
	if errors.As(err, &e) {
		return false // a decision of the application, not the engine
	}
	s := err.Error()
	return db.Engine == MySQL && (strings.Contains(s, "Error 1213") || strings.Contains(s, "Error 1205"))
}

// ForUpdate is the suffix that locks the selected rows for the rest of the
// transaction. SQLite needs none: a write transaction already holds the database
// write lock.
func (db *DB) ForUpdate() string {
	if db.Engine == MySQL {
		return " FOR UPDATE"
	}
	return ""
}

// IsUniqueViolation reports whether err is a unique-constraint failure.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "Error 1062")
}

// Contains returns a LIKE pattern matching values that contain s, with the
// wildcards in s escaped; use it with the Escape clause: `name LIKE ?` + Escape.
// '!' is the escape character because a backslash means different things in
// SQLite and MySQL string literals.
func Contains(s string) string {
	return "%" + strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(s) + "%"
}

// Escape is the clause that goes after every LIKE whose pattern came from Contains.
const Escape = " ESCAPE '!'"
