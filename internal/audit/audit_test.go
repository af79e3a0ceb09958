package audit_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"sync"
	"testing"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

func TestChainDetectsTampering(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := ihos.WithActor(context.Background(), ihos.Actor{UserID: "u1", Username: "zhang", IP: "10.0.0.8", RequestID: "req-1"})
		for i := 0; i < 5; i++ {
			err := audit.Record(ctx, db, audit.Entry{Action: "update", Resource: "departments", RecordID: "d1",
				Summary: "修改科室：心内科", Before: json.RawMessage(`{"name":"心血管内科"}`), After: json.RawMessage(`{"name":"心内科"}`)})
			if err != nil {
				t.Fatal(err)
			}
		}
		entries, total, err := audit.List(context.Background(), db, audit.Filter{Resource: "departments"})
		if err != nil || total != 5 || entries[0].Seq != 5 || entries[0].ActorName != "zhang" || entries[0].IP != "10.0.0.8" || entries[0].RequestID != "req-1" {
			t.Fatalf("list: %v %d %+v", err, total, entries)
		}
		if bad, err := audit.Verify(context.Background(), db); err != nil || bad != 0 {
			t.Fatalf("intact chain reported bad at %d (%v)", bad, err)
		}
		// Someone edits an entry directly in the database.
		if _, err := db.Exec(`UPDATE audit_log SET summary = '修改科室：无' WHERE seq = 3`); err != nil {
			t.Fatal(err)
		}
		if bad, _ := audit.Verify(context.Background(), db); bad != 3 {
			t.Fatalf("edit at seq 3 detected at %d", bad)
		}
	})
}

func TestChainDetectsTruncation(t *testing.T) {
	db := sqldbtest.SQLite(t)
	for i := 0; i < 3; i++ {
		if err := audit.Record(context.Background(), db, audit.Entry{Action: "create", Summary: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`DELETE FROM audit_log WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	if bad, _ := audit.Verify(context.Background(), db); bad != 3 {
		t.Fatalf("removed tail entry detected at %d, want 3", bad)
	}
}

// Concurrent appends never fork the chain: every seq is used once and the chain
// verifies.
func TestConcurrentAppends(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- db.Tx(context.Background(), func(tx *sql.Tx) error {
					return audit.Append(context.Background(), db, tx, audit.Entry{Action: "create", Summary: "并发"})
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
		if bad, err := audit.Verify(context.Background(), db); err != nil || bad != 0 {
			t.Fatalf("chain after concurrent appends bad at %d (%v)", bad, err)
		}
		_, total, _ := audit.List(context.Background(), db, audit.Filter{})
		if total != 40 {
			t.Fatalf("total = %d", total)
		}
	})
}
