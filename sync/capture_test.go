package sync_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	stdsync "sync"
	"testing"
	"time"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/sync"
)

// captureDept inserts a department (or, with id set, renames it and bumps its
// version) with plain SQL in tx and captures it.
func captureDept(ctx context.Context, r *sync.Replica, tx *sql.Tx, id, name string) (string, error) {
	now := ihos.FormatTime(time.Now())
	if id == "" {
		id = ihos.NewID()
		if _, err := tx.ExecContext(ctx, `INSERT INTO departments (id, institution_id, code, name, category, location, phone, sort_order, intro, version, created_at, updated_at, hospital_id)
VALUES (?, 'inst', ?, ?, '临床', '', '', 0, '', 1, ?, ?, 'h1')`, id, id[len(id)-8:], name, now, now); err != nil {
			return "", err
		}
	} else if _, err := tx.ExecContext(ctx, `UPDATE departments SET name = ?, version = version + 1, updated_at = ? WHERE id = ?`, name, now, id); err != nil {
		return "", err
	}
	return id, r.Capture(ctx, tx, "h1", sync.Ref{Entity: "departments", ID: id})
}

// drain promotes and reads the whole outbox, decoded, checking that each
// payload carries its outbox seq.
func drain(t *testing.T, r *sync.Replica) []*sync.Envelope {
	t.Helper()
	pending, err := r.Pending(context.Background(), 100000)
	if err != nil {
		t.Fatal(err)
	}
	envs := make([]*sync.Envelope, len(pending))
	for i, p := range pending {
		env, err := sync.Decode(p.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if env.Seq != p.Seq || env.ChangeID != p.ChangeID {
			t.Fatalf("outbox row %d holds change %s seq %d", p.Seq, env.ChangeID, env.Seq)
		}
		envs[i] = env
	}
	return envs
}

func newApplianceReplica(t *testing.T, db *sqldb.DB, origin string) *sync.Replica {
	t.Helper()
	r, err := sync.NewReplica(context.Background(), db, sync.Appliance, origin, entities())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Two transactions capturing changes of different rows both get through their
// capture while the other is still open: capture touches no row they share
// (it used to lock sync_state's outbox seq until the commit). A promotion in
// the meantime neither waits for them nor takes their uncommitted changes.
// Only MariaDB runs writers concurrently; SQLite has one writer.
func TestCaptureWritersDoNotWaitForEachOther(t *testing.T) {
	db := sqldbtest.MySQL(t)
	r := newApplianceReplica(t, db, "appliance-h1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	begin := func() *sql.Tx {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback() })
		return tx
	}
	tx1, tx2 := begin(), begin()
	// A lock wait would last innodb_lock_wait_timeout (50 s by default); five
	// seconds is plenty for an insert.
	quick, cancelQuick := context.WithTimeout(ctx, 5*time.Second)
	defer cancelQuick()
	if _, err := captureDept(quick, r, tx1, "", "一号"); err != nil {
		t.Fatal(err)
	}
	if _, err := captureDept(quick, r, tx2, "", "二号"); err != nil {
		t.Fatalf("second writer's capture while the first is open: %v", err)
	}
	if envs := drain(t, r); len(envs) != 0 {
		t.Fatalf("promoted %d uncommitted captures", len(envs))
	}
	if err := tx2.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := tx1.Commit(); err != nil {
		t.Fatal(err)
	}
	envs := drain(t, r)
	if len(envs) != 2 || envs[0].Seq != 1 || envs[1].Seq != 2 || envs[0].HLC >= envs[1].HLC {
		t.Fatalf("outbox after both commits: %d messages", len(envs))
	}
	if n := count(db, `SELECT COUNT(*) FROM sync_capture`); n != 0 {
		t.Fatalf("%d captures still staged", n)
	}
}

// Writers updating the same rows concurrently, with promotions running in
// between, leave each row's changes in the outbox in the order they were
// made: versions strictly increase along the outbox sequence.
func TestCapturePerRowOrder(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		r := newApplianceReplica(t, db, "appliance-h1")
		rows := make([]string, 3)
		for i := range rows {
			if err := db.Tx(ctx, func(tx *sql.Tx) error {
				var err error
				rows[i], err = captureDept(ctx, r, tx, "", fmt.Sprintf("科室%d", i))
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		const writers, updates = 6, 15
		var wg stdsync.WaitGroup
		errs := make(chan error, writers+1)
		stop := make(chan struct{})
		var promoted []*sync.Envelope
		promoterDone := make(chan struct{})
		go func() { // a relay promoting (and consuming) as it goes
			defer close(promoterDone)
			var after int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				pending, err := r.PendingAfter(ctx, after, 1000)
				if err != nil {
					errs <- err
					return
				}
				for _, p := range pending {
					env, err := sync.Decode(p.Payload)
					if err != nil {
						errs <- err
						return
					}
					promoted = append(promoted, env)
					after = p.Seq
				}
			}
		}()
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for u := range updates {
					id := rows[(w+u)%len(rows)]
					if err := db.Tx(ctx, func(tx *sql.Tx) error {
						_, err := captureDept(ctx, r, tx, id, fmt.Sprintf("w%d-%d", w, u))
						return err
					}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		<-promoterDone
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		all := append(promoted, drain(t, r)[len(promoted):]...)
		if len(all) != len(rows)+writers*updates {
			t.Fatalf("%d changes in the outbox, want %d", len(all), len(rows)+writers*updates)
		}
		last := map[string]int64{}
		for i, env := range all {
			if env.Seq != int64(i+1) {
				t.Fatalf("change %d has seq %d", i+1, env.Seq)
			}
			row := env.Rows[0]
			if row.Version <= last[row.ID] {
				t.Fatalf("seq %d: %s version %d after version %d", env.Seq, row.ID, row.Version, last[row.ID])
			}
			last[row.ID] = row.Version
		}
		for _, id := range rows {
			var v int64
			db.QueryRow(`SELECT version FROM departments WHERE id = ?`, id).Scan(&v)
			if last[id] != v {
				t.Errorf("%s: last version sent %d, row at %d", id, last[id], v)
			}
		}
	})
}

// A node restarted with captures still staged restores its clock above them,
// so a new change is never stamped before one it made earlier, and then sends
// them all, in order, once.
func TestCaptureRestartWithStagedChanges(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		r := newApplianceReplica(t, db, "appliance-h1")
		// The clock ran ahead (an NTP step back happens after these).
		ahead := time.Now().Add(time.Hour)
		r.Clock.Now = func() time.Time { return ahead }
		var staged []string
		for i := range 3 {
			if err := db.Tx(ctx, func(tx *sql.Tx) error {
				_, err := captureDept(ctx, r, tx, "", fmt.Sprintf("科室%d", i))
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := db.Query(`SELECT change_id FROM sync_capture ORDER BY hlc`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			rows.Scan(&id)
			staged = append(staged, id)
		}
		rows.Close()
		if len(staged) != 3 || count(db, `SELECT COUNT(*) FROM sync_outbox`) != 0 {
			t.Fatalf("staged %d, outbox %d", len(staged), count(db, `SELECT COUNT(*) FROM sync_outbox`))
		}

		// Restart.
		r2 := newApplianceReplica(t, db, "appliance-h1")
		if h := r2.Clock.Tick(); h.Physical().Before(ahead.Truncate(time.Millisecond)) {
			t.Fatalf("clock restored at %v, below the staged captures at %v", h.Physical(), ahead)
		}
		var id string
		if err := db.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			id, err = captureDept(ctx, r2, tx, "", "重启后")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		envs := drain(t, r2)
		if len(envs) != 4 {
			t.Fatalf("%d messages after the restart, want 4", len(envs))
		}
		for i, env := range envs[:3] {
			if env.ChangeID != staged[i] {
				t.Fatalf("message %d is %s, want %s", i+1, env.ChangeID, staged[i])
			}
		}
		if envs[3].Rows[0].ID != id || envs[3].HLC <= envs[2].HLC {
			t.Fatalf("the change after the restart: %s at %v after %v", envs[3].Rows[0].ID, envs[3].HLC, envs[2].HLC)
		}
		// Promoted, the clock floor lives in sync_state: a second restart
		// still starts above every change.
		if err := r2.SentThrough(ctx, envs[3].Seq); err != nil {
			t.Fatal(err)
		}
		r3 := newApplianceReplica(t, db, "appliance-h1")
		if h := r3.Clock.Tick(); h <= envs[3].HLC {
			t.Fatalf("clock restored at %v, not above the last change %v", h, envs[3].HLC)
		}
		if envs := drain(t, r3); len(envs) != 0 {
			t.Fatalf("%d messages sent again", len(envs))
		}
	})
}

// Processes sharing one database (the cloud scaled out) each run a relay:
// while writers capture, both promote, and every capture lands in the outbox
// exactly once, numbered without gaps.
func TestCaptureTwoRelaysPromoteEachOnce(t *testing.T) {
	// Each process opens the database itself.
	t.Run(sqldb.SQLite, func(t *testing.T) {
		testTwoRelays(t, filepath.Join(t.TempDir(), "shared.db"))
	})
	t.Run(sqldb.MySQL, func(t *testing.T) { testTwoRelays(t, sqldbtest.MySQLDSN(t)) })
}

func testTwoRelays(t *testing.T, dsn string) {
	ctx := context.Background()
	open := func() *sqldb.DB {
		db, err := sqldb.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	{
		db, db2 := open(), open()
		relays := []*sync.Replica{newApplianceReplica(t, db, "appliance-h1"), newApplianceReplica(t, db2, "appliance-h1")}
		const writers, each = 4, 25
		var wg stdsync.WaitGroup
		errs := make(chan error, writers+2)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, d := relays[w%2], []*sqldb.DB{db, db2}[w%2]
				for i := range each {
					if err := d.Tx(ctx, func(tx *sql.Tx) error {
						_, err := captureDept(ctx, r, tx, "", fmt.Sprintf("w%d-%d", w, i))
						return err
					}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		stop := make(chan struct{})
		var relayWG stdsync.WaitGroup
		for _, r := range relays {
			relayWG.Add(1)
			go func() {
				defer relayWG.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, _, err := r.Backlog(ctx); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		relayWG.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		envs := drain(t, relays[1])
		if len(envs) != writers*each {
			t.Fatalf("%d messages in the outbox, want %d", len(envs), writers*each)
		}
		seen := map[string]bool{}
		for i, env := range envs {
			if env.Seq != int64(i+1) || seen[env.ChangeID] {
				t.Fatalf("message %d: seq %d, change %s seen before: %v", i+1, env.Seq, env.ChangeID, seen[env.ChangeID])
			}
			seen[env.ChangeID] = true
		}
		if n := count(db, `SELECT COUNT(*) FROM sync_capture`); n != 0 {
			t.Fatalf("%d captures still staged", n)
		}
	}
}
