package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

func TestMigrateAndChineseRoundTrip(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		now := ihos.FormatTime(time.Now())
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO institutions (id, code, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
				ihos.NewID(), "H001", "示例市第一人民医院（互联网医院）", now, now)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var name string
		if err := db.QueryRowContext(ctx, `SELECT name FROM institutions WHERE code = ?`, "H001").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if name != "示例市第一人民医院（互联网医院）" {
			t.Fatalf("name = %q", name)
		}
	})
}

func TestTxRollsBackOnError(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		now := ihos.FormatTime(time.Now())
		boom := errors.New("boom")
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO institutions (id, code, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
				ihos.NewID(), "H002", "回滚测试", now, now); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
		var n int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM institutions WHERE code = 'H002'`).Scan(&n)
		if n != 0 {
			t.Fatalf("rolled-back row is visible")
		}
	})
}

// TxRefusing commits what fn wrote before refusing and returns the refusal;
// a failure rolls back and comes back as an internal error.
func TestTxRefusing(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		now := ihos.FormatTime(time.Now())
		insert := func(tx *sql.Tx, code string) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO institutions (id, code, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
				ihos.NewID(), code, "拒绝测试", now, now)
			return err
		}
		refused := ihos.Errorf(ihos.EForbidden, "验证码错误")
		err := db.TxRefusing(ctx, func(tx *sql.Tx) (error, error) { return refused, insert(tx, "R001") })
		if err != refused {
			t.Fatalf("refusal: %v", err)
		}
		err = db.TxRefusing(ctx, func(tx *sql.Tx) (error, error) {
			if err := insert(tx, "R002"); err != nil {
				return nil, err
			}
			return nil, errors.New("disk full")
		})
		if ihos.ErrorCode(err) != ihos.EInternal {
			t.Fatalf("failure: %v", err)
		}
		var kept, rolled int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM institutions WHERE code = 'R001'`).Scan(&kept)
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM institutions WHERE code = 'R002'`).Scan(&rolled)
		if kept != 1 || rolled != 0 {
			t.Fatalf("refused write kept %d, failed write kept %d", kept, rolled)
		}
	})
}

// Concurrent writers must all succeed: on SQLite they queue on the single write
// connection instead of failing with SQLITE_BUSY.
func TestConcurrentWriters(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- db.Tx(ctx, func(tx *sql.Tx) error {
					var seq int64
					if err := tx.QueryRowContext(ctx, `SELECT seq FROM audit_head WHERE id = 1`+db.ForUpdate()).Scan(&seq); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = ? WHERE id = 1`, seq+1)
					return err
				})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var seq int64
		db.QueryRowContext(ctx, `SELECT seq FROM audit_head WHERE id = 1`).Scan(&seq)
		if seq != 50 {
			t.Fatalf("seq = %d, want 50 (lost updates)", seq)
		}
	})
}

func TestReopenKeepsData(t *testing.T) {
	path := t.TempDir() + "/re.db"
	ctx := context.Background()
	db, err := sqldb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := ihos.FormatTime(time.Now())
	db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO institutions (id, code, name, created_at, updated_at) VALUES (?, 'H3', '重启测试', ?, ?)`, ihos.NewID(), now, now)
		return err
	})
	db.Close()
	db, err = sqldb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM institutions WHERE code = 'H3'`).Scan(&n)
	if n != 1 {
		t.Fatalf("row lost across reopen")
	}
	var mode, sync string
	db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode)
	db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync)
	if mode != "wal" || sync != "2" {
		t.Fatalf("journal_mode=%s synchronous=%s, want wal and 2 (FULL)", mode, sync)
	}
}

// The statement cache: the first use inside a transaction runs unprepared (the
// writer connection is busy), later ones reuse the prepared statement, and the
// results are the same either way; a statement that fails to prepare still
// reports its error where it runs.
func TestTxStatementCache(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		const ins = `INSERT INTO institutions (id, code, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`
		const get = `SELECT name FROM institutions WHERE code = ?`
		now := ihos.FormatTime(time.Now())
		done := make(chan error, 1)
		go func() {
			for i := range 50 {
				err := db.Tx(ctx, func(tx *sql.Tx) error {
					code := "C" + string(rune('A'+i%26)) + time.Now().Format("150405.000000000")
					if _, err := db.TxExec(ctx, tx, ins, ihos.NewID(), code, "第一医院", now, now); err != nil {
						return err
					}
					var name string
					if err := db.TxQueryRow(ctx, tx, get, code).Scan(&name); err != nil || name != "第一医院" {
						return errors.Join(err, errors.New("read back "+name))
					}
					rows, err := db.TxQuery(ctx, tx, `SELECT code FROM institutions WHERE code = ?`, code)
					if err != nil {
						return err
					}
					defer rows.Close()
					if !rows.Next() {
						return errors.New("TxQuery found nothing")
					}
					return rows.Err()
				})
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("transactions using the statement cache did not finish: a prepare waits for the busy writer connection")
		}
		var n int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM institutions`).Scan(&n)
		if n != 50 {
			t.Fatalf("%d institutions, want 50", n)
		}
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := db.TxExec(ctx, tx, `INSERT INTO no_such_table (id) VALUES (?)`, "x")
			return err
		})
		if err == nil {
			t.Fatal("insert into a missing table succeeded")
		}
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := db.TxExec(ctx, tx, `INSERT INTO no_such_table (id) VALUES (?)`, "x")
			return err
		})
		if err == nil {
			t.Fatal("second insert into a missing table succeeded")
		}
	})
}
