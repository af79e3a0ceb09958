package payments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	stdsync "sync"
	"testing"
	"time"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

var errTimeout = errors.New("fake: timeout")

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu stdsync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fakeOrder struct {
	amount int64
	state  string
	txid   string
}

// fakeChannel is an in-memory channel whose answers tests control.
type fakeChannel struct {
	mu        stdsync.Mutex
	orders    map[string]*fakeOrder
	refunds   map[string]*ChannelRefund
	refundSt  map[string]string
	createErr int // the next N Creates time out (the order is still made when createLands)
	// createLands: a timed-out Create still reaches the channel.
	createLands bool
	queryErr    int // the next N Queries fail
	queryLeft   int // Queries answering pending before final applies
	final       string
	closeErr    int
	refundFail  int // the next N refunds end failed
	refundErr   int // the next N refund calls time out
	onCreate    func(o ChannelOrder)
	calls       map[string]int
	refundKeys  []string
}

func newFakeChannel() *fakeChannel {
	return &fakeChannel{orders: map[string]*fakeOrder{}, refunds: map[string]*ChannelRefund{}, refundSt: map[string]string{}, calls: map[string]int{}}
}

func (f *fakeChannel) count(name string) int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls[name] }

func (f *fakeChannel) Create(_ context.Context, o ChannelOrder) (ChannelCreated, error) {
	f.mu.Lock()
	f.calls["create"]++
	if f.createErr > 0 {
		f.createErr--
		if f.createLands && f.orders[o.OutTradeNo] == nil {
			f.orders[o.OutTradeNo] = &fakeOrder{amount: o.Amount, state: ChannelPending}
		}
		f.mu.Unlock()
		return ChannelCreated{}, errTimeout
	}
	if f.orders[o.OutTradeNo] == nil {
		f.orders[o.OutTradeNo] = &fakeOrder{amount: o.Amount, state: ChannelPending}
	}
	hook := f.onCreate
	f.mu.Unlock()
	if hook != nil {
		hook(o)
	}
	return ChannelCreated{PrepayID: "wx" + o.OutTradeNo}, nil
}

// pay marks an order paid, as the patient paying on the phone.
func (f *fakeChannel) pay(outTradeNo string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.orders[outTradeNo]
	o.state, o.txid = ChannelPaid, "T"+outTradeNo
	return o.txid
}

func (f *fakeChannel) Query(_ context.Context, no string) (ChannelState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["query"]++
	if f.queryErr > 0 {
		f.queryErr--
		return ChannelState{}, errTimeout
	}
	o := f.orders[no]
	if o == nil {
		return ChannelState{State: ChannelNotFound}, nil
	}
	if f.queryLeft > 0 && o.state == ChannelPending {
		f.queryLeft--
		return ChannelState{State: ChannelPending}, nil
	}
	if f.final != "" && o.state == ChannelPending {
		o.state = f.final
		if o.state == ChannelPaid {
			o.txid = "T" + no
		}
	}
	return ChannelState{State: o.state, Amount: o.amount, TransactionID: o.txid}, nil
}

func (f *fakeChannel) Close(_ context.Context, no string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["close"]++
	if f.closeErr > 0 {
		f.closeErr--
		return errTimeout
	}
	if o := f.orders[no]; o != nil && o.state == ChannelPending {
		o.state = ChannelClosed
	}
	return nil
}

func (f *fakeChannel) Refund(_ context.Context, r ChannelRefund) (RefundState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["refund"]++
	f.refundKeys = append(f.refundKeys, r.OutRefundNo)
	if f.refundErr > 0 {
		f.refundErr--
		return RefundState{}, errTimeout
	}
	o := f.orders[r.OutTradeNo]
	if o == nil || o.state != ChannelPaid {
		return RefundState{State: LegResultFailed, Message: "order not paid"}, nil
	}
	if prev, ok := f.refunds[r.OutRefundNo]; ok && f.refundSt[r.OutRefundNo] != LegResultFailed {
		return RefundState{State: f.refundSt[r.OutRefundNo], Amount: prev.Amount}, nil
	}
	f.refunds[r.OutRefundNo] = &r
	if f.refundFail > 0 {
		f.refundFail--
		f.refundSt[r.OutRefundNo] = LegResultFailed
		return RefundState{State: LegResultFailed, Message: "ABNORMAL"}, nil
	}
	f.refundSt[r.OutRefundNo] = LegResultSucceeded
	return RefundState{State: LegResultSucceeded, Amount: r.Amount}, nil
}

func (f *fakeChannel) QueryRefund(_ context.Context, no string) (RefundState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["query_refund"]++
	st, ok := f.refundSt[no]
	if !ok {
		return RefundState{State: RefundNotFound}, nil
	}
	return RefundState{State: st}, nil
}

// fakeInsurance is an in-memory insurance leg.
type fakeInsurance struct {
	mu        stdsync.Mutex
	split     ihos.Split // what Settle settles
	settleErr int        // the next N Settles time out
	pending   int        // Settle/Query answer pending N times
	fail      bool
	settled   map[string]ihos.Split
	reversed  map[string]bool
	refunds   map[string]InsuranceRefund
	calls     map[string]int
}

func newFakeInsurance(split ihos.Split) *fakeInsurance {
	return &fakeInsurance{split: split, settled: map[string]ihos.Split{}, reversed: map[string]bool{}, refunds: map[string]InsuranceRefund{}, calls: map[string]int{}}
}

func (f *fakeInsurance) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

func (f *fakeInsurance) answer(key string) InsuranceResult {
	if f.pending > 0 {
		f.pending--
		return InsuranceResult{State: InsPending}
	}
	if f.fail {
		return InsuranceResult{State: InsFailed, Message: "余额不足"}
	}
	f.settled[key] = f.split
	return InsuranceResult{State: InsSettled, Split: f.split, SettlementID: "S" + key}
}

func (f *fakeInsurance) Settle(_ context.Context, o InsuranceOrder) (InsuranceResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["settle"]++
	if f.settleErr > 0 {
		f.settleErr--
		return InsuranceResult{}, errTimeout
	}
	if s, ok := f.settled[o.Key]; ok {
		return InsuranceResult{State: InsSettled, Split: s}, nil
	}
	return f.answer(o.Key), nil
}

func (f *fakeInsurance) Query(_ context.Context, key string) (InsuranceResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["query"]++
	if r, ok := f.refunds[key]; ok {
		_ = r
		return InsuranceResult{State: InsRefunded}, nil
	}
	if s, ok := f.settled[key]; ok {
		return InsuranceResult{State: InsSettled, Split: s}, nil
	}
	return f.answer(key), nil
}

func (f *fakeInsurance) Refund(_ context.Context, r InsuranceRefund) (InsuranceResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["refund"]++
	f.refunds[r.Key] = r
	return InsuranceResult{State: InsRefunded}, nil
}

func (f *fakeInsurance) Reverse(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["reverse"]++
	f.reversed[key] = true
	return nil
}

// env is a service on a real database with fakes for its legs.
type env struct {
	db    *sqldb.DB
	svc   *Service
	ch    *fakeChannel
	ins   *fakeInsurance
	clock *fakeClock
	n     int
}

func newEnv(t testing.TB, db *sqldb.DB) *env {
	clock := &fakeClock{t: time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)}
	e := &env{db: db, ch: newFakeChannel(), ins: newFakeInsurance(ihos.Split{}), clock: clock}
	e.svc = &Service{DB: db, Channel: e.ch, Insurance: e.ins, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return e
}

// each runs fn on SQLite and (with IHOS_MYSQL_DSN) MariaDB.
func each(t *testing.T, fn func(t *testing.T, e *env)) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) { fn(t, newEnv(t, db)) })
}

func (e *env) create(t testing.TB, channel string, total int64, pre *ihos.Split) *ihos.Payment {
	t.Helper()
	e.n++
	p, err := e.svc.Create(context.Background(), NewPayment{HospitalID: "H1", BusinessType: ihos.PayConsultation,
		BusinessID: fmt.Sprintf("V%04d", e.n), PatientID: "PAT1", DoctorID: "DOC1", DepartmentID: "DEP1",
		Channel: channel, Subject: "图文问诊", Total: total, PreSettlement: pre})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return p
}

func (e *env) get(t testing.TB, id string) *ihos.Payment {
	t.Helper()
	p, err := e.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// resolveFor advances the clock and runs the resolver until cond or n rounds.
func (e *env) resolveFor(t testing.TB, rounds int, cond func() bool) {
	t.Helper()
	for range rounds {
		if cond() {
			return
		}
		e.clock.Add(time.Minute)
		if _, err := e.svc.ResolveDue(context.Background()); err != nil {
			t.Fatalf("resolve: %v", err)
		}
	}
	if !cond() {
		t.Fatalf("condition not reached after %d rounds", rounds)
	}
}

func (e *env) reasons(t testing.TB, id string) []string {
	t.Helper()
	evs, err := e.svc.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Reason)
	}
	return out
}

func countOf(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func wantStatus(t testing.TB, p *ihos.Payment, status string) {
	t.Helper()
	if p.Status != status {
		t.Fatalf("status = %s (ending %q, cash %s, ins %s, err %q), want %s", p.Status, p.Ending, p.CashStatus, p.InsStatus, p.LastError, status)
	}
}
