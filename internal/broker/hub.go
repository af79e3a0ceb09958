package broker

import (
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"ihos"
)

// Hub isolation: on the cloud, every hospital is its own NATS account with its
// own JetStream. A hospital's leafnode is bound, by the client certificate it
// presents, to its account and sees nothing of another hospital's subjects or
// streams. The cloud service itself reaches each account through an in-process
// connection with a per-process secret.

// HospitalAccount is the account a hospital's data lives in on the hub.
func HospitalAccount(hospital string) string { return "H_" + hospital }

// hubAuth is the hub's server.Authentication.
type hubAuth struct {
	b          *Broker
	hospitalOf func(*x509.Certificate) (string, bool)
	secret     string

	mu       sync.Mutex
	accounts map[string]*server.Account
}

func newHubAuth(hospitalOf func(*x509.Certificate) (string, bool)) *hubAuth {
	buf := make([]byte, 32)
	rand.Read(buf)
	return &hubAuth{hospitalOf: hospitalOf, secret: hex.EncodeToString(buf), accounts: map[string]*server.Account{}}
}

// serviceUser names the in-process user of the cloud service for a hospital
// ("" for the global account).
func serviceUser(hospital string) string {
	if hospital == "" {
		return "svc"
	}
	return "svc:" + hospital
}

// Check admits a leafnode whose verified certificate names an enrolled
// hospital (binding it to that hospital's account), and the service's own
// in-process connections. Everything else is refused.
func (a *hubAuth) Check(c server.ClientAuthentication) bool {
	switch c.Kind() {
	case server.LEAF:
		st := c.GetTLSConnectionState()
		if st == nil || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
			return false
		}
		hospital, ok := a.hospitalOf(st.VerifiedChains[0][0])
		if !ok {
			return false
		}
		acc, err := a.account(hospital)
		if err != nil {
			return false
		}
		c.RegisterUser(&server.User{Username: "hospital:" + hospital, Account: acc})
		return true
	case server.CLIENT:
		o := c.GetOpts()
		if subtle.ConstantTimeCompare([]byte(o.Password), []byte(a.secret)) != 1 {
			return false
		}
		if o.Username == serviceUser("") {
			c.RegisterUser(&server.User{Username: o.Username})
			return true
		}
		hospital, ok := strings.CutPrefix(o.Username, "svc:")
		if !ok {
			return false
		}
		acc, err := a.account(hospital)
		if err != nil {
			return false
		}
		c.RegisterUser(&server.User{Username: o.Username, Account: acc})
		return true
	}
	return false
}

// account returns the hospital's account, creating it with JetStream enabled
// the first time.
func (a *hubAuth) account(hospital string) (*server.Account, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if acc, ok := a.accounts[hospital]; ok {
		return acc, nil
	}
	acc, _ := a.b.srv.LookupOrRegisterAccount(HospitalAccount(hospital))
	if !acc.JetStreamEnabled() {
		if err := acc.EnableJetStream(nil, nil); err != nil {
			return nil, fmt.Errorf("broker: enable JetStream for %s: %w", hospital, err)
		}
	}
	a.accounts[hospital] = acc
	return acc, nil
}

// HospitalConn returns an in-process connection to hospital's account on a hub
// started with HospitalOf; on any other server it returns a plain connection
// (all hospitals share the global account, as in tests without TLS).
func (b *Broker) HospitalConn(hospital string, opts ...nats.Option) (*nats.Conn, error) {
	if b.hub == nil {
		return b.Connect(opts...)
	}
	if hospital != "" {
		if _, err := b.hub.account(hospital); err != nil {
			return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "无法为医院创建消息账户", Err: err}
		}
	}
	return b.Connect(append(opts, nats.UserInfo(serviceUser(hospital), b.hub.secret))...)
}
