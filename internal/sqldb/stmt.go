package sqldb

import (
	"context"
	"database/sql"
)

// maxStmts bounds the statement cache. The statements that go through it are
// the constant texts of hot write paths (sync capture and apply, bulk inserts);
// a caller that builds query text from data would otherwise grow it forever.
const maxStmts = 512

// Parsing a statement is a fifth of the CPU of a small SQLite write
// transaction (docs/benchmarks.md, "Sync"): SQLite compiles SQL into a program
// for its virtual machine every time a query runs unprepared. TxExec, TxQuery and
// TxQueryRow prepare a query once on the write pool and let every later
// transaction reuse it: database/sql keeps the prepared statement per
// connection, and Tx.StmtContext finds the one made on the transaction's
// connection (SQLite's single writer connection; on MySQL each pooled
// connection prepares it once). Use them for query text that does not vary with
// the data; anything else belongs to tx.ExecContext and friends.
func (db *DB) stmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	if s, ok := db.stmts.Load(query); ok {
		return tx.StmtContext(ctx, s.(*sql.Stmt))
	}
	// Preparing on the write pool needs a free connection, and on SQLite the
	// only one is held by tx: the query runs unprepared this time and is
	// prepared after the commit (prepareWanted).
	if db.nstmts.Load() < maxStmts {
		db.wanted.Store(query, struct{}{})
	}
	return nil
}

// prepareWanted prepares the queries first seen inside a transaction, now that
// the transaction has ended and its connection is back in the pool.
func (db *DB) prepareWanted(ctx context.Context) {
	db.wanted.Range(func(k, _ any) bool {
		db.wanted.Delete(k)
		query := k.(string)
		if _, ok := db.stmts.Load(query); ok || db.nstmts.Load() >= maxStmts {
			return true
		}
		s, err := db.w.PrepareContext(context.WithoutCancel(ctx), query)
		if err != nil {
			return true // it keeps running unprepared; the error surfaces there
		}
		if _, loaded := db.stmts.LoadOrStore(query, s); loaded {
			s.Close()
		} else {
			db.nstmts.Add(1)
		}
		return true
	})
}

// TxExec runs query in tx as a cached prepared statement.
func (db *DB) TxExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if s := db.stmt(ctx, tx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// TxQuery runs query in tx as a cached prepared statement.
func (db *DB) TxQuery(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if s := db.stmt(ctx, tx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}

// TxQueryRow runs query in tx as a cached prepared statement.
func (db *DB) TxQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if s := db.stmt(ctx, tx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

// closeStmts closes the cached statements before the pools close.
func (db *DB) closeStmts() {
	db.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		db.stmts.Delete(k)
		return true
	})
	db.nstmts.Store(0)
}
