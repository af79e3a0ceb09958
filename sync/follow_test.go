package sync_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/sync"
)

// TestFollow: a follower sees each local change once, when it is promoted
// into the outbox (numbered), and each incoming change once, when it is
// applied; a redelivery is not seen again, and a follower's failure rolls
// the promotion back so the change is seen when it is retried.
func TestFollow(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		app := newSide(t, db, sync.Appliance, "appliance-h1", "h1")
		cloud := newSide(t, sqldbtest.SQLite(t), sync.Cloud, "cloud", "")
		var local, remote []*sync.Envelope
		fail := errors.New("follower down")
		var failing bool
		app.replica.Follow = func(ctx context.Context, tx *sql.Tx, envs []*sync.Envelope) error {
			if failing {
				return fail
			}
			local = append(local, envs...)
			return nil
		}
		cloud.replica.Follow = func(ctx context.Context, tx *sql.Tx, envs []*sync.Envelope) error {
			remote = append(remote, envs...)
			return nil
		}
		inst, _ := app.store.Resource("institutions")
		dept, _ := app.store.Resource("departments")
		i, err := app.store.Create(sys, inst, map[string]any{"code": "H1", "name": "第一医院"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.store.Create(sys, dept, map[string]any{"institution_id": i["id"], "code": "NK", "name": "内科", "category": "临床"}); err != nil {
			t.Fatal(err)
		}
		// Staged captures are followed when a relay promotes them; a failing
		// follower leaves them staged.
		failing = true
		if _, err := app.replica.Pending(ctx, 10); !errors.Is(err, fail) {
			t.Fatalf("promotion with a failing follower: %v", err)
		}
		if n, _, _ := app.replica.Backlog(ctx); n != 2 || len(local) != 0 {
			t.Fatalf("backlog %d, followed %d", n, len(local))
		}
		failing = false
		pending, err := app.replica.Pending(ctx, 10)
		if err != nil || len(pending) != 2 || len(local) != 2 {
			t.Fatalf("pending %d, followed %d: %v", len(pending), len(local), err)
		}
		for k, env := range local {
			if env.Seq != pending[k].Seq || env.ChangeID != pending[k].ChangeID || env.Rows[0].Entity != []string{"institutions", "departments"}[k] {
				t.Fatalf("followed %d: %+v", k, env)
			}
		}
		if _, err := app.replica.Pending(ctx, 10); err != nil || len(local) != 2 {
			t.Fatalf("followed again: %d %v", len(local), err)
		}
		// Applied on the other side once.
		if n := ship(t, app, cloud, "h1"); n != 2 || len(remote) != 2 || remote[1].ChangeID != pending[1].ChangeID {
			t.Fatalf("applied %d, followed %d", n, len(remote))
		}
		for _, p := range pending {
			env, _ := sync.Decode(p.Payload)
			if ok, err := cloud.replica.Apply(ctx, "h1", env); err != nil || ok {
				t.Fatalf("redelivery applied: %v %v", ok, err)
			}
		}
		if len(remote) != 2 {
			t.Fatalf("redelivery followed: %d", len(remote))
		}
	})
}
