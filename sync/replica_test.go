package sync_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/auth"
	"ihos/internal/masterdata"
	"ihos/internal/pii"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/sync"
)

func entities() *sync.Registry {
	return sync.NewRegistry(masterdata.Entities()...)
}

type side struct {
	db      *sqldb.DB
	replica *sync.Replica
	store   *admin.Store
	sealer  *pii.Sealer // the node's own PII key
	keyDir  string
}

func newSide(t testing.TB, db *sqldb.DB, s sync.Side, origin, hospital string) *side {
	return newSideWith(t, db, s, origin, hospital, entities())
}

// newSideWith is newSide replicating reg, with its own PII key (and, on the
// cloud, transit keys in its database; on an appliance, fetched into keyDir).
func newSideWith(t testing.TB, db *sqldb.DB, s sync.Side, origin, hospital string, reg *sync.Registry) *side {
	t.Helper()
	ctx := context.Background()
	r, err := sync.NewReplica(ctx, db, s, origin, reg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sealer, _ := pii.LoadOrCreate(filepath.Join(dir, "k"))
	r.Keys = &sync.Keys{Local: sealer}
	if s == sync.Cloud {
		r.Keys.TransitKey = r.StoredTransitKey
	} else {
		r.Keys.Dir = dir
	}
	a := auth.New(db)
	st := admin.NewStore(db, sealer, a, masterdata.Resources()...)
	st.OnWrite = r.OnWrite(hospital)
	return &side{db: db, replica: r, store: st, sealer: sealer, keyDir: dir}
}

var sys = ihos.WithActor(context.Background(), ihos.Actor{UserID: "t", Username: "t", Role: auth.RoleSysAdmin})

// ship moves every pending outbox message from one side to the other, as the
// relay and the consumer would, and returns how many were applied.
func ship(t *testing.T, from, to *side, hospital string) int {
	t.Helper()
	ctx := context.Background()
	pending, err := from.replica.Pending(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pending {
		env, err := sync.Decode(p.Payload)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := to.replica.Apply(ctx, hospital, env)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			n++
		}
	}
	if len(pending) > 0 {
		if err := from.replica.SentThrough(ctx, pending[len(pending)-1].Seq); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func TestCaptureApplyIdempotent(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, cloudDB *sqldb.DB) {
		ctx := context.Background()
		app := newSide(t, sqldbtest.SQLite(t), sync.Appliance, "appliance-h1", "h1")
		cloud := newSide(t, cloudDB, sync.Cloud, "cloud", "")
		inst, _ := app.store.Resource("institutions")
		dept, _ := app.store.Resource("departments")
		staff, _ := app.store.Resource("staff")
		i, err := app.store.Create(sys, inst, map[string]any{"code": "H1", "name": "第一医院"})
		if err != nil {
			t.Fatal(err)
		}
		d, err := app.store.Create(sys, dept, map[string]any{"institution_id": i["id"], "code": "XNK", "name": "心血管内科", "category": "临床"})
		if err != nil {
			t.Fatal(err)
		}
		s, err := app.store.Create(sys, staff, map[string]any{"institution_id": i["id"], "department_id": d["id"], "job_no": "D1", "name": "王医生",
			"kind": "doctor", "phone": "13900000000"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.store.Update(sys, dept, d["id"].(string), map[string]any{"version": 1, "name": "心内科"}); err != nil {
			t.Fatal(err)
		}
		n, _, _ := app.replica.Backlog(ctx)
		if n != 4 {
			t.Fatalf("backlog = %d, want 4 (one message per transaction)", n)
		}
		pending, _ := app.replica.Pending(ctx, 10)
		if got := ship(t, app, cloud, "h1"); got != 4 {
			t.Fatalf("applied %d", got)
		}
		var name, hosp string
		var version int64
		cloudDB.QueryRow(`SELECT name, version, hospital_id FROM departments WHERE id = ?`, d["id"]).Scan(&name, &version, &hosp)
		if name != "心内科" || version != 2 || hosp != "h1" {
			t.Fatalf("cloud replica: %q v%d %q", name, version, hosp)
		}
		// Personal data sealed under the appliance's key does not leave it.
		var phone string
		cloudDB.QueryRow(`SELECT phone FROM staff WHERE id = ?`, s["id"]).Scan(&phone)
		if phone != "" {
			t.Fatalf("sealed phone replicated: %q", phone)
		}
		// Redelivery of every message applies nothing.
		for _, p := range pending {
			env, _ := sync.Decode(p.Payload)
			ok, err := cloud.replica.Apply(ctx, "h1", env)
			if err != nil || ok {
				t.Fatalf("redelivery applied: %v %v", ok, err)
			}
		}
		// An older version arriving late does not move the row back.
		old, _ := sync.Decode(pending[1].Payload)
		old.ChangeID = ihos.NewID()
		if ok, err := cloud.replica.Apply(ctx, "h1", old); err != nil || !ok {
			t.Fatal(err)
		}
		cloudDB.QueryRow(`SELECT name FROM departments WHERE id = ?`, d["id"]).Scan(&name)
		if name != "心内科" {
			t.Fatalf("stale version applied: %q", name)
		}
		// Applied changes are not captured again (no echo).
		if n, _, _ := cloud.replica.Backlog(ctx); n != 0 {
			t.Fatalf("cloud outbox has %d echoed changes", n)
		}
	})
}

func TestRejects(t *testing.T) {
	ctx := context.Background()
	app := newSide(t, sqldbtest.SQLite(t), sync.Appliance, "appliance-h1", "h1")
	cloud := newSide(t, sqldbtest.SQLite(t), sync.Cloud, "cloud", "")
	inst, _ := app.store.Resource("institutions")
	if _, err := app.store.Create(sys, inst, map[string]any{"code": "H1", "name": "第一医院"}); err != nil {
		t.Fatal(err)
	}
	pending, _ := app.replica.Pending(ctx, 1)
	env, _ := sync.Decode(pending[0].Payload)

	var rej *sync.RejectError
	// Claims another hospital than the channel it came on.
	if _, err := cloud.replica.Apply(ctx, "h2", env); !errors.As(err, &rej) {
		t.Fatalf("other hospital: %v", err)
	}
	// Unknown entity.
	bad := *env
	bad.Rows = []sync.RowChange{{Entity: "spaceships", ID: "x", Version: 1, Values: map[string]*string{}}}
	if _, err := cloud.replica.Apply(ctx, "h1", &bad); !errors.As(err, &rej) {
		t.Fatalf("unknown entity: %v", err)
	}
	// The cloud side writing appliance-owned data.
	bad = *env
	bad.Side = sync.Cloud
	if _, err := app.replica.Apply(ctx, "h1", &bad); !errors.As(err, &rej) {
		t.Fatalf("echo side: %v", err)
	}
	// Hospital h2 trying to overwrite h1's row.
	if _, err := cloud.replica.Apply(ctx, "h1", env); err != nil {
		t.Fatal(err)
	}
	steal := *env
	steal.ChangeID, steal.Hospital = ihos.NewID(), "h2"
	steal.Rows = append([]sync.RowChange(nil), env.Rows...)
	steal.Rows[0].Version = 99
	if _, err := cloud.replica.Apply(ctx, "h2", &steal); !errors.As(err, &rej) {
		t.Fatalf("cross-hospital overwrite: %v", err)
	}
	for _, b := range [][]byte{nil, []byte("{"), []byte(`{"change_id":"x"}`), []byte(`{"change_id":"x","hospital":"h1","origin":"o","side":"appliance","rows":[{"entity":"staff","id":"","version":1,"values":{}}]}`)} {
		if _, err := sync.Decode(b); err == nil {
			t.Errorf("malformed %q decoded", b)
		}
	}
}

// A doctor profile edited on both sides during a partition ends the same on
// both: fields edited on one side only are merged, the field edited on both goes
// to the later write, and the losing value is in both conflict logs.
func TestSharedEntityMergesPerField(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, cloudDB *sqldb.DB) {
		app := newSide(t, sqldbtest.SQLite(t), sync.Appliance, "appliance-h1", "h1")
		cloud := newSide(t, cloudDB, sync.Cloud, "cloud", "")
		res := func(s *side, n string) *admin.Resource { r, _ := s.store.Resource(n); return r }
		i, _ := app.store.Create(sys, res(app, "institutions"), map[string]any{"code": "H1", "name": "第一医院"})
		d, _ := app.store.Create(sys, res(app, "departments"), map[string]any{"institution_id": i["id"], "code": "XNK", "name": "心内科", "category": "临床"})
		s, _ := app.store.Create(sys, res(app, "staff"), map[string]any{"institution_id": i["id"], "department_id": d["id"], "job_no": "D1", "name": "王医生", "kind": "doctor"})
		p, err := app.store.Create(sys, res(app, "doctor_profiles"), map[string]any{"staff_id": s["id"], "specialty": "高血压", "notice": "请带齐检查报告", "intro": "从医二十年"})
		if err != nil {
			t.Fatal(err)
		}
		ship(t, app, cloud, "h1")
		id := p["id"].(string)

		// Partition: each side edits.
		if _, err := app.store.Update(sys, res(app, "doctor_profiles"), id, map[string]any{"version": 1, "notice": "本周三停诊", "intro": "心内科主任，从医二十年"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // the cloud's edit is the later one
		if _, err := cloud.store.Update(sys, res(cloud, "doctor_profiles"), id, map[string]any{"version": 1, "notice": "线上复诊请提前预约", "specialty": "高血压、冠心病"}); err != nil {
			t.Fatal(err)
		}
		// Heal: both directions.
		ship(t, app, cloud, "h1")
		ship(t, cloud, app, "h1")

		want := map[string]string{"notice": "线上复诊请提前预约", "specialty": "高血压、冠心病", "intro": "心内科主任，从医二十年"}
		for name, db := range map[string]*sqldb.DB{"appliance": app.db, "cloud": cloudDB} {
			var notice, specialty, intro string
			db.QueryRow(`SELECT notice, specialty, intro FROM doctor_profiles WHERE id = ?`, id).Scan(&notice, &specialty, &intro)
			got := map[string]string{"notice": notice, "specialty": specialty, "intro": intro}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: %s = %q, want %q", name, k, got[k], v)
				}
			}
			var field, winner, loser, loserOrigin string
			if err := db.QueryRow(`SELECT field, winner_value, loser_value, loser_origin FROM sync_conflicts WHERE record_id = ?`, id).Scan(&field, &winner, &loser, &loserOrigin); err != nil {
				t.Fatalf("%s: no conflict logged: %v", name, err)
			}
			if field != "notice" || winner != "线上复诊请提前预约" || loser != "本周三停诊" || loserOrigin != "appliance-h1" {
				t.Errorf("%s conflict: %s %q beat %q from %s", name, field, winner, loser, loserOrigin)
			}
			if n := count(db, `SELECT COUNT(*) FROM sync_conflicts`); n != 1 {
				t.Errorf("%s: %d conflicts, want 1", name, n)
			}
		}
		// A later edit that saw the merged value is not a conflict.
		cur, _ := app.store.Get(sys, res(app, "doctor_profiles"), id)
		if _, err := app.store.Update(sys, res(app, "doctor_profiles"), id, map[string]any{"version": cur["version"], "notice": "恢复门诊"}); err != nil {
			t.Fatal(err)
		}
		ship(t, app, cloud, "h1")
		var notice string
		cloudDB.QueryRow(`SELECT notice FROM doctor_profiles WHERE id = ?`, id).Scan(&notice)
		if notice != "恢复门诊" || count(cloudDB, `SELECT COUNT(*) FROM sync_conflicts`) != 1 {
			t.Fatalf("sequential edit: notice %q, conflicts %d", notice, count(cloudDB, `SELECT COUNT(*) FROM sync_conflicts`))
		}
	})
}
