package sync

import (
	"context"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"ihos"
	"ihos/internal/broker"
	"ihos/internal/web"
)

// StartLeaf starts an appliance's link: it publishes to and consumes from the
// hub's streams for hospital, through the leafnode the broker dials out on.
// The link runs until ctx ends; then call Close.
func StartLeaf(ctx context.Context, b *broker.Broker, r *Replica, hospital string) (*Link, error) {
	if !ihos.ValidHospitalID(hospital) {
		return nil, fmt.Errorf("sync: bad hospital id %q", hospital)
	}
	l := NewLink(r, hospital, func(h string) (*nats.Conn, jetstream.JetStream, error) {
		if h != hospital {
			return nil, nil, fmt.Errorf("sync: appliance of %s cannot reach hospital %s", hospital, h)
		}
		nc, err := b.Connect(nats.Name("sync-" + hospital))
		if err != nil {
			return nil, nil, err
		}
		js, err := jetstream.NewWithDomain(nc, HubDomain)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return nc, js, nil
	})
	l.Connected = func() bool { return b.Server().NumLeafNodes() > 0 }
	if _, err := l.peer(hospital); err != nil {
		return nil, err
	}
	if k := r.Keys; k != nil && k.TransitKey == nil && k.Dir != "" {
		k.TransitKey = FetchedTransitKey(k.Dir, l)
	}
	l.Start(ctx)
	return l, nil
}

// StartHub starts the cloud's link: streams and consumers for every hospital
// and the relay of the cloud's outbox; more hospitals join with AddHospital.
// dial opens a connection to a hospital's streams: BrokerDial for the embedded
// hub (each hospital in its own account), URLDial for an external NATS.
func StartHub(ctx context.Context, dial func(hospital string) (*nats.Conn, jetstream.JetStream, error), r *Replica, hospitals ...string) (*Link, error) {
	l := NewLink(r, "", dial)
	for _, h := range hospitals {
		if err := l.AddHospital(ctx, h); err != nil {
			l.closePeers()
			return nil, err
		}
	}
	l.Start(ctx)
	return l, nil
}

// BrokerDial dials hospitals' accounts on the embedded hub.
func BrokerDial(b *broker.Broker) func(string) (*nats.Conn, jetstream.JetStream, error) {
	return func(h string) (*nats.Conn, jetstream.JetStream, error) {
		nc, err := b.HospitalConn(h, nats.Name("sync-hub-"+h))
		if err != nil {
			return nil, nil, err
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return nc, js, nil
	}
}

// URLDial dials an external NATS hub (a nats-server or cluster run by IT) at
// url, one connection per hospital. Isolation between hospitals is then the
// external server's accounts configuration.
func URLDial(url string, opts ...nats.Option) func(string) (*nats.Conn, jetstream.JetStream, error) {
	return func(h string) (*nats.Conn, jetstream.JetStream, error) {
		nc, err := nats.Connect(url, append([]nats.Option{nats.Name("sync-hub-" + h), nats.MaxReconnects(-1)}, opts...)...)
		if err != nil {
			return nil, nil, &ihos.Error{Code: ihos.EUnavailable, Message: "无法连接消息服务集群", Err: err}
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return nc, js, nil
	}
}

// AddHospital creates a hospital's streams on the hub and starts applying its
// changes.
func (l *Link) AddHospital(ctx context.Context, hospital string) error {
	if !ihos.ValidHospitalID(hospital) {
		return fmt.Errorf("sync: bad hospital id %q", hospital)
	}
	p, err := l.peer(hospital)
	if err != nil {
		return err
	}
	if err := EnsureHospital(ctx, p.js, hospital); err != nil {
		return err
	}
	l.Consume(hospital)
	return nil
}

// Close waits for the link's goroutines (its context must have ended) and
// closes its connections.
func (l *Link) Close() {
	l.Wait()
	l.closePeers()
}

func (l *Link) closePeers() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for h, p := range l.peers {
		p.nc.Close()
		delete(l.peers, h)
	}
}

// StatusHandler serves GET /api/sync/status.
func (l *Link) StatusHandler() http.Handler {
	return web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		s, err := l.Status(r.Context())
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, s)
		return nil
	})
}
