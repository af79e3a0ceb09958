// Package cloudtest is the one test rig of the cloud's HTTP API, shared by the
// tests of package cloud (as cloud_test), of the patient H5 (h5) and of the
// doctor and pharmacist app (doctorapp), so that each tests its behaviour and
// not its own copy of the set-up. It is imported by tests only: it starts a
// real cloud on SQLite or MariaDB behind a real socket, wires it to the
// payment channel, SMS and identity-verification simulators as make run
// does, writes a hospital's master data into the cloud's database the way
// sync would, makes patient and staff sessions through the real login APIs,
// and calls the API as a patient, a staff member or the command-line tool.
package cloudtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"ihos"
	"ihos/cloud"
	"ihos/his"
	"ihos/his/hissim"
	"ihos/idverify/idsim"
	"ihos/internal/node"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
	"ihos/paychannel"
	"ihos/paychannel/paysim"
	"ihos/sms/smssim"
)

// Hospital is the hospital every rig enrolls unless Options.Hospital says
// otherwise.
const Hospital = "h1"

// The merchant the payment channel simulator knows and the cloud pays as.
const (
	MchID  = "1900000109"
	AppID  = "wxd678efh567hg6787"
	Serial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
	APIv3  = "0123456789abcdef0123456789abcdef"
)

// Options choose what a cloud is wired to; the zero value is a cloud on
// SQLite with hospital h1 enrolled and nothing else.
type Options struct {
	// DSN is the database ("" = a SQLite file in the test's temp dir).
	DSN string
	// Hospital is the enrolled hospital's id ("" = Hospital).
	Hospital string
	// LeafListen accepts hospital links ("" = none); Code then enrolls.
	LeafListen string
	// Pay wires the cloud to a payment channel simulator (Cloud.Pay).
	Pay bool
	// AdjustPay may change the channel configuration (timeouts, keys).
	AdjustPay func(*cloud.PayChannelConfig)
	// Patients wires the patient accounts to an SMS simulator (Cloud.SMS;
	// staff real-name codes go through it too) and an identity-verification
	// simulator knowing People, and answers HIS links from the HIS
	// simulator's demo patients (as LinkFromDemo).
	Patients bool
	People   []idsim.Person
	// MaxIdleConnsPerHost sizes the client's connection pool for tests
	// that call concurrently (0 = Go's default).
	MaxIdleConnsPerHost int
	// Timeout bounds each call of the client (0 = none).
	Timeout time.Duration
}

// Cloud is a started cloud and what a test needs to reach it.
type Cloud struct {
	// T fails the test on set-up and call errors; a rig shared by subtests
	// points it at the running subtest.
	T        testing.TB
	App      *cloud.App
	URL      string // the cloud's base URL
	Token    string // the command-line token: staff-level access
	HC       *http.Client
	Hospital string
	Code     *cloud.Code // the hospital's enrollment code

	Pay       *paysim.Sim        // with Options.Pay
	PayClient *paychannel.Client // the merchant's own client of Pay
	SMS       *smssim.Sim        // with Options.Patients
	IDs       *idsim.Sim         // with Options.Patients
}

// Start starts a cloud as o says; everything stops when the test ends.
func Start(t testing.TB, o Options) *Cloud {
	t.Helper()
	ctx := context.Background()
	c := &Cloud{T: t, Hospital: o.Hospital}
	if c.Hospital == "" {
		c.Hospital = Hospital
	}
	dir := filepath.Join(t.TempDir(), "cloud")
	// The server must exist before the cloud does: its address is the
	// notify_url the cloud gives the payment channel.
	var handler atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := cloud.Config{Config: node.Config{DataDir: dir, HTTP: "127.0.0.1:0", LogLevel: "error", Database: o.DSN}, LeafListen: o.LeafListen}
	if o.Pay {
		cfg.PayChannel = c.startPay(srv.URL, filepath.Join(t.TempDir(), "merchant_key.pem"))
		if o.AdjustPay != nil {
			o.AdjustPay(&cfg.PayChannel)
		}
	}
	if o.Patients {
		cfg.Patients = c.startPatientSims(o.People)
	}
	app, err := cloud.New(ctx, cfg)
	if err != nil {
		t.Fatalf("cloud.New: %v", err)
	}
	t.Cleanup(app.Close)
	handler.Store(web.Middleware(app.Handler))
	c.App, c.URL = app, srv.URL
	if o.Patients {
		app.Patients.LinkPatient = LinkFromDemo
	}
	if c.Code, err = app.Hospitals.Add(ctx, c.Hospital, "示例市第一人民医院"); err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(filepath.Join(dir, node.CLITokenFile))
	if err != nil {
		t.Fatal(err)
	}
	c.Token = strings.TrimSpace(string(token))
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.MaxIdleConnsPerHost > 0 {
		tr.MaxIdleConnsPerHost = o.MaxIdleConnsPerHost
	}
	c.HC = &http.Client{Transport: tr, Timeout: o.Timeout}
	return c
}

// Engines runs fn once on SQLite and once on a fresh MariaDB/MySQL database
// (sqldbtest: skipped without IHOS_MYSQL_DSN, a failure under CI=true), as
// the subtests "sqlite" and "mysql"; dsn is what Options.DSN takes.
func Engines(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, "") })
	t.Run("mysql", func(t *testing.T) { fn(t, sqldbtest.MySQLDSN(t)) })
}

// Exec writes to the cloud's database in a transaction of its own, failing
// the test on error: how tests put what sync would have replicated.
func (c *Cloud) Exec(q string, args ...any) {
	c.T.Helper()
	err := c.App.Node.DB.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(q, args...)
		return err
	})
	if err != nil {
		c.T.Fatalf("%s: %v", q, err)
	}
}

// WaitFor polls cond every 100 ms for up to 15 s.
func (c *Cloud) WaitFor(what string, cond func() bool) {
	c.T.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			c.T.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// LinkFromDemo stands in for linking a patient to the HIS, an RPC to the
// hospital's appliance: it answers from the HIS simulator's demo patients.
func LinkFromDemo(ctx context.Context, hospital string, req his.LinkRequest) (his.PatientLink, error) {
	for _, p := range hissim.DemoPatients {
		if p.IDNumber == req.IDNumber {
			return his.PatientLink{PatientID: req.PatientID, HISPatientID: p.HISID, Status: his.LinkLinked, Confidence: 100}, nil
		}
	}
	return his.PatientLink{}, ihos.Errorf(ihos.ENotFound, "未在医院 HIS 中找到该患者的档案")
}

// Keys are the payment channel's keys, made once per test binary (RSA-2048
// generation is slow): the merchant's, the channel platform's, and one
// neither knows, for forged messages.
type Keys struct {
	Merchant, Platform, Wrong *rsa.PrivateKey
}

var keys struct {
	once stdsync.Once
	Keys
}

// PayKeys returns the test binary's payment keys.
func PayKeys() Keys {
	keys.once.Do(func() {
		for _, k := range []**rsa.PrivateKey{&keys.Merchant, &keys.Platform, &keys.Wrong} {
			var err error
			if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		}
	})
	return keys.Keys
}

// startPay starts the channel simulator for merchant MchID and returns the
// cloud's channel configuration, notifies going to base.
func (c *Cloud) startPay(base, keyFile string) cloud.PayChannelConfig {
	t := c.T
	k := PayKeys()
	sim, err := paysim.Start(context.Background(), paysim.Config{PlatformKey: k.Platform,
		NotifyRetry: []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, time.Second, 2 * time.Second},
		Merchants:   []paysim.Merchant{{MchID: MchID, AppID: AppID, SerialNo: Serial, PublicKey: &k.Merchant.PublicKey, APIv3Key: []byte(APIv3)}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	if err := os.WriteFile(keyFile, paychannel.MarshalPrivateKeyPEM(k.Merchant), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Pay = sim
	c.PayClient = &paychannel.Client{BaseURL: sim.URL(), MchID: MchID, AppID: AppID, SerialNo: Serial, Key: k.Merchant,
		PlatformKey: &k.Platform.PublicKey, APIv3Key: []byte(APIv3)}
	return cloud.PayChannelConfig{URL: sim.URL(), MchID: MchID, AppID: AppID, SerialNo: Serial,
		MerchantKey: keyFile, APIv3Key: APIv3, PlatformCertURL: sim.URL() + "/control/platform.pem",
		NotifyURL: base + "/api/pay/notify"}
}

// startPatientSims starts the SMS and identity-verification simulators and
// returns the cloud's patient configuration for them.
func (c *Cloud) startPatientSims(people []idsim.Person) cloud.PatientConfig {
	t := c.T
	ctx := context.Background()
	var err error
	if c.SMS, err = smssim.Start(ctx, smssim.Config{AccessKeyID: "k", AccessKeySecret: "s", SignName: "示例医院", TemplateCode: "SMS_1"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.SMS.Close() })
	if c.IDs, err = idsim.Start(ctx, idsim.Config{AppCode: "app", People: people}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.IDs.Close() })
	return cloud.PatientConfig{
		SMS:      cloud.SMSConfig{URL: c.SMS.URL(), AccessKeyID: "k", AccessKeySecret: "s", SignName: "示例医院", TemplateCode: "SMS_1"},
		IDVerify: cloud.IDVerifyConfig{URL: c.IDs.URL(), AppCode: "app"},
	}
}

// PayAt has the patient pay order outTradeNo at the channel simulator (the
// channel then notifies the cloud).
func (c *Cloud) PayAt(outTradeNo string) {
	c.T.Helper()
	if _, err := c.Pay.Pay("", outTradeNo, ""); err != nil {
		c.T.Fatal(err)
	}
}

// PayMode sets how the channel simulator behaves (auto-pay, failures).
func (c *Cloud) PayMode(m paysim.Mode) {
	c.T.Helper()
	if err := c.Pay.SetMode(m); err != nil {
		c.T.Fatal(err)
	}
}

// Dial is a Cloud for calling a node's API already serving at url (an
// appliance's, or a cloud a test started itself) as its command-line tool,
// whose token is in dataDir. Only the calls work: App is nil.
func Dial(t testing.TB, url, dataDir string) *Cloud {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(dataDir, node.CLITokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return &Cloud{T: t, URL: url, Token: strings.TrimSpace(string(token)), HC: http.DefaultClient, Hospital: Hospital}
}
