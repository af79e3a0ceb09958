package sync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"ihos"
	"ihos/internal/broker"
	"ihos/internal/nettest"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/sync"
)

type pair struct {
	app, cloud         *side
	appLink, cloudLink *sync.Link
	proxy              *nettest.Proxy
	leaf, hub          *broker.Broker
	hubJS              jetstream.JetStream
}

func startPair(t testing.TB, cloudDB *sqldb.DB) *pair {
	t.Helper()
	return startPairWith(t, cloudDB, entities)
}

// startPairWith is startPair with both sides replicating reg().
func startPairWith(t testing.TB, cloudDB *sqldb.DB, reg func() *sync.Registry) *pair {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hub, err := broker.Start(broker.Options{Name: "hub", StoreDir: t.TempDir(), Domain: sync.HubDomain, LeafListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	px := nettest.NewProxy(t, hub.LeafAddr())
	leaf, err := broker.Start(broker.Options{Name: "h1", StoreDir: t.TempDir(), Domain: "h1", SyncAlways: true,
		LeafRemotes: []string{"nats-leaf://" + px.Addr()}, LeafReconnect: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{proxy: px, leaf: leaf, hub: hub}
	p.cloud = newSideWith(t, cloudDB, sync.Cloud, "cloud", "", reg())
	p.app = newSideWith(t, sqldbtest.SQLite(t), sync.Appliance, "appliance-h1", "h1", reg())

	var err2 error
	if p.cloudLink, err2 = sync.StartHub(ctx, sync.BrokerDial(hub), p.cloud.replica, "h1"); err2 != nil {
		t.Fatal(err2)
	}
	if p.appLink, err2 = sync.StartLeaf(ctx, leaf, p.app.replica, "h1"); err2 != nil {
		t.Fatal(err2)
	}
	hnc, _ := hub.Connect()
	p.hubJS, _ = jetstream.New(hnc)
	t.Cleanup(func() {
		cancel()
		p.appLink.Close()
		p.cloudLink.Close()
		hnc.Close()
		leaf.Shutdown()
		hub.Shutdown()
	})
	waitFor(t, 10*time.Second, "leafnode connected", func() bool { return leaf.Server().NumLeafNodes() == 1 })
	return p
}

func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if ok() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
	return 0
}

func count(db *sqldb.DB, q string, args ...any) int {
	var n int
	db.QueryRow(q, args...).Scan(&n)
	return n
}

func TestLinkRoundTripAndPartition(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, cloudDB *sqldb.DB) {
		p := startPair(t, cloudDB)
		inst, _ := p.app.store.Resource("institutions")
		dept, _ := p.app.store.Resource("departments")
		i, err := p.app.store.Create(sys, inst, map[string]any{"code": "H1", "name": "第一医院"})
		if err != nil {
			t.Fatal(err)
		}
		d, err := p.app.store.Create(sys, dept, map[string]any{"institution_id": i["id"], "code": "XNK", "name": "心血管内科", "category": "临床"})
		if err != nil {
			t.Fatal(err)
		}
		p.appLink.Kick()
		took := waitFor(t, 5*time.Second, "department on the cloud", func() bool {
			return count(cloudDB, `SELECT COUNT(*) FROM departments WHERE id = ? AND hospital_id = 'h1'`, d["id"]) == 1
		})
		t.Logf("round trip appliance→cloud: %v", took)
		if took > time.Second {
			t.Errorf("round trip took %v, want under 1s", took)
		}

		// Cut the link; the appliance keeps working and queues.
		p.proxy.Cut()
		waitFor(t, 10*time.Second, "leafnode down", func() bool { return p.leaf.Server().NumLeafNodes() == 0 })
		const n = 300
		for k := 0; k < n; k++ {
			if _, err := p.app.store.Create(sys, dept, map[string]any{"institution_id": i["id"], "code": fmt.Sprintf("P%04d", k),
				"name": fmt.Sprintf("分区科室%d", k), "category": "临床"}); err != nil {
				t.Fatal(err)
			}
		}
		st, _ := p.appLink.Status(context.Background())
		if st.State != "disconnected" || st.Backlog == 0 {
			t.Fatalf("status during partition: %+v", st)
		}
		// Restore: the backlog drains, each change applied exactly once.
		p.proxy.Restore(t)
		waitFor(t, 60*time.Second, "backlog drained", func() bool {
			return count(cloudDB, `SELECT COUNT(*) FROM departments WHERE hospital_id = 'h1'`) == n+1
		})
		waitFor(t, 10*time.Second, "outbox empty", func() bool { n, _, _ := p.app.replica.Backlog(context.Background()); return n == 0 })
		if got := count(cloudDB, `SELECT COUNT(*) FROM sync_inbox`); got != n+2 {
			t.Fatalf("inbox has %d changes, want %d", got, n+2)
		}
		st, _ = p.appLink.Status(context.Background())
		if st.State != "connected" || st.Backlog != 0 || st.LastContact.IsZero() {
			t.Fatalf("status after partition: %+v", st)
		}
	})
}

// A change delivered twice (a second copy with another Nats-Msg-Id, so JetStream's
// dedupe cannot catch it) is applied once; malformed messages, messages claiming
// another hospital and unknown entities are rejected, counted, and do not stop
// the stream.
func TestLinkRedeliveryAndBadInput(t *testing.T) {
	p := startPair(t, sqldbtest.SQLite(t))
	ctx := context.Background()
	inst, _ := p.app.store.Resource("institutions")
	if _, err := p.app.store.Create(sys, inst, map[string]any{"code": "H1", "name": "第一医院"}); err != nil {
		t.Fatal(err)
	}
	pending, _ := p.app.replica.Pending(ctx, 1)
	if len(pending) != 1 {
		t.Fatal("nothing captured")
	}
	payload := pending[0].Payload
	waitFor(t, 5*time.Second, "first copy applied", func() bool { return count(p.cloud.db, `SELECT COUNT(*) FROM institutions`) == 1 })

	publish := func(data []byte) {
		t.Helper()
		if _, err := p.hubJS.Publish(ctx, sync.UpSubject("h1"), data, jetstream.WithMsgID(fmt.Sprint(time.Now().UnixNano()))); err != nil {
			t.Fatal(err)
		}
	}
	publish(payload) // the same change again
	publish([]byte("这不是 JSON"))
	other := strings.Replace(string(payload), `"hospital":"h1"`, `"hospital":"h2"`, 1)
	publish([]byte(other))
	unknown := strings.Replace(string(payload), `"entity":"institutions"`, `"entity":"spaceships"`, 1)
	unknown = strings.Replace(unknown, pending[0].ChangeID, "00000000-0000-7000-8000-000000000001", 1)
	publish([]byte(unknown))
	// A good change after the bad ones still flows.
	if _, err := p.app.store.Create(sys, inst, map[string]any{"code": "H2", "name": "第二医院"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "change after bad input applied", func() bool { return count(p.cloud.db, `SELECT COUNT(*) FROM institutions`) == 2 })
	waitFor(t, 5*time.Second, "rejects recorded", func() bool { return count(p.cloud.db, `SELECT COUNT(*) FROM sync_rejects`) == 3 })
	st, _ := p.cloudLink.Status(ctx)
	if st.Rejected != 3 || st.Duplicates != 1 || st.Applied != 2 {
		t.Fatalf("status: %+v", st)
	}
	if n := count(p.cloud.db, `SELECT COUNT(*) FROM sync_inbox WHERE change_id = ?`, pending[0].ChangeID); n != 1 {
		t.Fatalf("inbox rows for the change: %d", n)
	}
}

// Verify finds rows a replica lost or holds at another version, resync repairs
// them, and RPC fails fast with a clear error when the link is down.
func TestVerifyResyncAndRPC(t *testing.T) {
	p := startPair(t, sqldbtest.SQLite(t))
	ctx := context.Background()
	if err := p.appLink.ServeSync(); err != nil {
		t.Fatal(err)
	}
	if err := p.cloudLink.ServeSync(); err != nil {
		t.Fatal(err)
	}
	inst, _ := p.app.store.Resource("institutions")
	dept, _ := p.app.store.Resource("departments")
	i, _ := p.app.store.Create(sys, inst, map[string]any{"code": "H1", "name": "第一医院"})
	for k := 0; k < 20; k++ {
		if _, err := p.app.store.Create(sys, dept, map[string]any{"institution_id": i["id"], "code": fmt.Sprintf("D%02d", k), "name": fmt.Sprintf("科室%d", k), "category": "临床"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "replicated", func() bool { return count(p.cloud.db, `SELECT COUNT(*) FROM departments`) == 20 })
	rep, err := p.appLink.Verify(ctx, "h1")
	if err != nil || !rep.InSync {
		t.Fatalf("verify after replication: %v %+v", err, rep)
	}
	// Damage the cloud's replica: lose one row, roll another back.
	var lost, stale string
	p.cloud.db.QueryRow(`SELECT id FROM departments WHERE code = 'D03'`).Scan(&lost)
	p.cloud.db.QueryRow(`SELECT id FROM departments WHERE code = 'D07'`).Scan(&stale)
	p.cloud.db.Exec(`DELETE FROM departments WHERE id = ?`, lost)
	p.cloud.db.Exec(`UPDATE departments SET version = 7, name = '被改坏' WHERE id = ?`, stale)
	rep, err = p.appLink.Verify(ctx, "h1")
	if err != nil || rep.InSync || len(rep.Differences) != 2 {
		t.Fatalf("verify after damage: %v %+v", err, rep)
	}
	got := map[string]sync.Difference{}
	for _, d := range rep.Differences {
		got[d.ID] = d
	}
	if got[lost].Remote != 0 || got[lost].Local != 1 || got[stale].Remote != 7 {
		t.Fatalf("differences: %+v", rep.Differences)
	}
	n, err := p.appLink.Resync(ctx, "h1", "departments")
	if err != nil || n != 20 {
		t.Fatalf("resync: %d %v", n, err)
	}
	waitFor(t, 10*time.Second, "in sync after resync", func() bool {
		rep, err := p.appLink.Verify(ctx, "h1")
		return err == nil && rep.InSync
	})
	var name string
	p.cloud.db.QueryRow(`SELECT name FROM departments WHERE id = ?`, stale).Scan(&name)
	if name != "科室7" {
		t.Fatalf("stale row not repaired: %q", name)
	}
	// The cloud can verify too, and a cut link fails fast in Chinese.
	if rep, err := p.cloudLink.Verify(ctx, "h1"); err != nil || !rep.InSync {
		t.Fatalf("cloud-side verify: %v %+v", err, rep)
	}
	p.proxy.Cut()
	waitFor(t, 10*time.Second, "leafnode down", func() bool { return p.leaf.Server().NumLeafNodes() == 0 })
	start := time.Now()
	_, err = p.cloudLink.Verify(ctx, "h1")
	if ihos.ErrorCode(err) != ihos.EUnavailable || ihos.ErrorMessage(err) != "医院系统暂时无法连接，请稍后再试" || time.Since(start) > 6*time.Second {
		t.Fatalf("verify across a cut link: %v after %v", err, time.Since(start))
	}
}
