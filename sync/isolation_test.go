package sync_test

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"ihos/certs"
	"ihos/internal/broker"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/sync"
)

// One cloud, two hospitals over mutual TLS: each hospital's leafnode is bound
// by its certificate to its own account, and can neither read nor write the
// other hospital's subjects and streams. A certificate from another CA, or of a
// hospital the cloud does not know, never connects.
func TestHospitalsIsolated(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	ca, err := certs.LoadOrCreateCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	srvCert, err := ca.ServerCert(filepath.Join(dir, "hub"), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	known := []string{"h1", "h2"}
	hub, err := broker.Start(broker.Options{Name: "hub", StoreDir: t.TempDir(), Domain: sync.HubDomain, LeafListen: "127.0.0.1:0",
		LeafTLS: ca.HubTLS(srvCert), HospitalOf: func(c *x509.Certificate) (string, bool) {
			h, err := certs.HospitalOf(c)
			return h, err == nil && slices.Contains(known, h)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Shutdown()

	leaf := func(h string, signer *certs.CA, trust []byte) *broker.Broker {
		t.Helper()
		key, csr, err := certs.NewCSR(h)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := signer.SignCSR(csr, h)
		if err != nil {
			t.Fatal(err)
		}
		tlsc, err := certs.LeafTLS(cert, key, trust, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		b, err := broker.Start(broker.Options{Name: h, StoreDir: t.TempDir(), Domain: h, SyncAlways: true,
			LeafRemotes: []string{"nats-leaf://" + hub.LeafAddr()}, LeafTLS: tlsc, LeafReconnect: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Shutdown)
		return b
	}
	l1, l2 := leaf("h1", ca, ca.CAPEM()), leaf("h2", ca, ca.CAPEM())
	waitFor(t, 10*time.Second, "both hospitals connected", func() bool { return hub.Server().NumLeafNodes() == 2 })

	cloud := newSide(t, sqldbtest.SQLite(t), sync.Cloud, "cloud", "")
	hubLink, err := sync.StartHub(ctx, sync.BrokerDial(hub), cloud.replica, known...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); hubLink.Close() }()
	for _, c := range []struct {
		b *broker.Broker
		h string
	}{{l1, "h1"}, {l2, "h2"}} {
		app := newSide(t, sqldbtest.SQLite(t), sync.Appliance, "appliance-"+c.h, c.h)
		link, err := sync.StartLeaf(ctx, c.b, app.replica, c.h)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); link.Close() }()
		if err := link.ServeSync(); err != nil {
			t.Fatal(err)
		}
		inst, _ := app.store.Resource("institutions")
		if _, err := app.store.Create(sys, inst, map[string]any{"code": "I-" + c.h, "name": "医院" + c.h}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "both hospitals' data on the cloud", func() bool {
		return count(cloud.db, `SELECT COUNT(*) FROM institutions WHERE hospital_id = 'h1' AND code = 'I-h1'`) == 1 &&
			count(cloud.db, `SELECT COUNT(*) FROM institutions WHERE hospital_id = 'h2' AND code = 'I-h2'`) == 1
	})

	// Hospital h1 tries to reach h2's data through its own leafnode.
	nc, err := l1.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.NewWithDomain(nc, sync.HubDomain)
	try := func(what string, f func(ctx context.Context) error) error {
		c, done := context.WithTimeout(ctx, 3*time.Second)
		defer done()
		err := f(c)
		t.Logf("%s: %v", what, err)
		return err
	}
	if try("h1 reads h2's stream", func(c context.Context) error { _, err := js.Stream(c, sync.DownStream("h2")); return err }) == nil {
		t.Error("h1 can see h2's down stream")
	}
	if try("h1 reads h2's consumer", func(c context.Context) error {
		_, err := js.Consumer(c, sync.UpStream("h2"), sync.CloudConsumer)
		return err
	}) == nil {
		t.Error("h1 can see h2's consumer")
	}
	if try("h1 writes h2's stream", func(c context.Context) error {
		_, err := js.Publish(c, sync.UpSubject("h2"), []byte(`{}`))
		return err
	}) == nil {
		t.Error("h1 could publish into h2's up stream")
	}
	if err := try("h1 reads its own stream", func(c context.Context) error { _, err := js.Stream(c, sync.UpStream("h1")); return err }); err != nil {
		t.Errorf("h1 cannot see its own stream: %v", err)
	}
	// Traffic of h2 (an RPC to it) never reaches a subscriber on h1's leafnode.
	spy := make(chan *nats.Msg, 100)
	if _, err := nc.ChanSubscribe("ihos.>", spy); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	if err := hubLink.Call(ctx, "h2", "sync.digest", struct{}{}, nil); err != nil {
		t.Errorf("rpc to h2: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	if len(spy) > 0 {
		m := <-spy
		t.Errorf("h1 saw h2's message on %s", m.Subject)
	}
	if n := count(cloud.db, `SELECT COUNT(*) FROM institutions WHERE hospital_id = 'h2' AND code = 'I-h1'`); n != 0 {
		t.Error("h1's row landed in h2")
	}

	// A certificate from another CA, and a valid one of an unknown hospital, are refused.
	rogue, _ := certs.LoadOrCreateCA(filepath.Join(dir, "rogue"))
	leaf("h1", rogue, append(ca.CAPEM(), rogue.CAPEM()...))
	leaf("h9", ca, ca.CAPEM())
	time.Sleep(time.Second)
	if n := hub.Server().NumLeafNodes(); n != 2 {
		t.Fatalf("hub has %d leafnodes, want the 2 enrolled hospitals only", n)
	}
}
