package sync_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"ihos"
	"ihos/internal/masterdata"
	"ihos/internal/pii"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/staffauth"
	"ihos/sync"
)

// A sealed column (the doctor's app login phone) crosses sealed under the
// hospital's transit key: never in clear text on the wire, never under the
// sender's own key; it rests sealed under the receiver's key with a blind
// index the receiver computed. A clear value from a peer not yet upgraded is
// sealed on arrival; a value sealed under another key is refused.
func TestSealedColumnsCrossUnderTheTransitKey(t *testing.T) {
	reg := func() *sync.Registry {
		return sync.NewRegistry(append(masterdata.Entities(), staffauth.Entities()...)...)
	}
	p := startPairWith(t, sqldbtest.SQLite(t), reg)
	ctx := context.Background()
	if err := p.cloudLink.ServeSync(); err != nil {
		t.Fatal(err)
	}

	// Everything the appliance sends, as the hub sees it.
	hnc, err := p.hub.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer hnc.Close()
	var mu gosync.Mutex
	var wire []string
	if _, err := hnc.Subscribe(sync.UpSubject("h1"), func(m *nats.Msg) {
		mu.Lock()
		wire = append(wire, string(m.Data))
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	hnc.Flush()

	const phone = "13912345678"
	sealed, _ := p.app.sealer.Seal(phone)
	id := ihos.NewID()
	now := ihos.FormatTime(time.Now())
	err = p.app.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO staff_app_logins (id, hospital_id, staff_id, phone, phone_bidx, enabled, password_hash, must_change, issued_at, version, created_at, updated_at)
			VALUES (?, 'h1', 'S1', ?, ?, 1, 'x', 1, ?, 1, ?, ?)`, id, sealed, p.app.sealer.Index(phone), now, now, now); err != nil {
			return err
		}
		return p.app.replica.Capture(ctx, tx, "h1", sync.Ref{Entity: "staff_app_logins", ID: id})
	})
	if err != nil {
		t.Fatal(err)
	}
	p.appLink.Kick()
	row := func() (version int, phone, bidx string) {
		p.cloud.db.QueryRow(`SELECT version, phone, phone_bidx FROM staff_app_logins WHERE id = ?`, id).Scan(&version, &phone, &bidx)
		return
	}
	waitFor(t, 10*time.Second, "login row replicated", func() bool { v, _, _ := row(); return v == 1 })

	_, got, bidx := row()
	if plain, err := p.cloud.sealer.Open(got); err != nil || plain != phone {
		t.Fatalf("cloud phone %q opens to %q, %v", got, plain, err)
	}
	if bidx != p.cloud.sealer.Index(phone) {
		t.Fatalf("cloud blind index %q, want the cloud's own", bidx)
	}
	transitKey, err := p.cloud.replica.StoredTransitKey(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	transit, _ := pii.New(transitKey)
	mu.Lock()
	if len(wire) == 0 {
		t.Fatal("nothing seen on the wire")
	}
	var env sync.Envelope
	for _, w := range wire {
		if strings.Contains(w, phone) || strings.Contains(w, sealed) || strings.Contains(w, p.app.sealer.Index(phone)) {
			t.Fatalf("the wire carries the phone, its local seal or its local index: %s", w)
		}
		json.Unmarshal([]byte(w), &env)
	}
	mu.Unlock()
	if plain, err := transit.Open(*env.Rows[0].Values["phone"]); err != nil || plain != phone {
		t.Fatalf("wire value opens with the transit key to %q, %v", plain, err)
	}
	if fi, err := os.Stat(filepath.Join(p.app.keyDir, "transit-h1.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("appliance transit key file: %v %v", fi, err)
	}

	// A peer that still sends the phone in clear text (version 2): sealed on arrival.
	publish := func(version int, value string) {
		t.Helper()
		e := env
		e.ChangeID = ihos.NewID()
		e.Rows = []sync.RowChange{env.Rows[0]}
		vals := map[string]*string{}
		for k, v := range env.Rows[0].Values {
			vals[k] = v
		}
		v := value
		vals["phone"] = &v
		ver := strconv.Itoa(version)
		vals["version"] = &ver
		e.Rows[0].Values, e.Rows[0].Version = vals, int64(version)
		b, _ := json.Marshal(e)
		if _, err := p.hubJS.Publish(ctx, sync.UpSubject("h1"), b, jetstream.WithMsgID(e.ChangeID)); err != nil {
			t.Fatal(err)
		}
	}
	publish(2, "13700000000")
	waitFor(t, 10*time.Second, "clear value applied", func() bool { v, _, _ := row(); return v == 2 })
	_, got, bidx = row()
	if plain, err := p.cloud.sealer.Open(got); err != nil || plain != "13700000000" || bidx != p.cloud.sealer.Index("13700000000") {
		t.Fatalf("clear value rests as %q (opens to %q, %v), index %q", got, plain, err, bidx)
	}

	// Sealed under a key that is not the hospital's: refused, recorded.
	stranger, _ := pii.LoadOrCreate(filepath.Join(t.TempDir(), "stranger"))
	bad, _ := stranger.Seal("13600000000")
	publish(3, bad)
	waitFor(t, 10*time.Second, "reject recorded", func() bool { return count(p.cloud.db, `SELECT COUNT(*) FROM sync_rejects`) == 1 })
	if v, _, _ := row(); v != 2 {
		t.Fatalf("row moved to version %d on a value it cannot open", v)
	}
}
