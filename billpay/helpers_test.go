package billpay_test

import (
	"context"
	"fmt"
	stdsync "sync"
	"testing"
	"time"

	"ihos"
	"ihos/his"
	"ihos/his/hissim"
	"ihos/internal/sqldb"
	"ihos/payments"
)

// hisRig is the HIS simulator over MLLP, with the appliance's HL7 adapter.
type hisRig struct {
	sim     *hissim.Sim
	adapter *his.HL7
}

func startHIS(t *testing.T) *hisRig {
	t.Helper()
	sim, err := hissim.Start(context.Background(), hissim.Config{DataDir: t.TempDir(), ResultDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	h := his.NewHL7(sim.MLLPAddr())
	h.ReplyTimeout = 5 * time.Second
	h.Start()
	t.Cleanup(func() { h.Close(); sim.Close() })
	return &hisRig{sim: sim, adapter: h}
}

// UnpaidFees makes the simulator the FeeSource of every hospital.
func (r *hisRig) UnpaidFees(ctx context.Context, _, hisPatientID string) ([]ihos.HISFee, error) {
	return r.adapter.UnpaidFees(ctx, hisPatientID)
}

// patientWithFees finds a demo patient owing at least n fees.
func (r *hisRig) patientWithFees(t *testing.T, n int) (string, []ihos.HISFee) {
	t.Helper()
	for _, p := range hissim.DemoPatients {
		fees, err := r.adapter.UnpaidFees(context.Background(), p.HISID)
		if err != nil {
			t.Fatal(err)
		}
		if len(fees) >= n {
			return p.HISID, fees
		}
	}
	t.Fatalf("no demo patient owes %d fees", n)
	return "", nil
}

// appliance is the appliance's HIS link (queue and service) on db, sending
// to the simulator.
type appliance struct {
	db    *sqldb.DB
	svc   *his.Service
	queue *his.Queue
}

func startQueue(t *testing.T, db *sqldb.DB, r *hisRig) *appliance {
	t.Helper()
	q := &his.Queue{DB: db, HIS: r.adapter}
	svc := &his.Service{DB: db, HIS: r.adapter, Queue: q, Hospital: "h1"}
	q.OnAnswer = svc.OnAnswer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); q.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &appliance{db: db, svc: svc, queue: q}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func count(t *testing.T, db *sqldb.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// channel is a payment channel in memory for the cloud's unit tests: orders
// are paid when the test says so (the end-to-end test uses the channel
// simulator).
type channel struct {
	mu      stdsync.Mutex
	orders  map[string]payments.ChannelOrder
	paid    map[string]bool
	closed  map[string]bool
	refunds map[string]int64
}

func newChannel() *channel {
	return &channel{orders: map[string]payments.ChannelOrder{}, paid: map[string]bool{}, closed: map[string]bool{}, refunds: map[string]int64{}}
}

func (c *channel) Create(_ context.Context, o payments.ChannelOrder) (payments.ChannelCreated, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.orders[o.OutTradeNo] = o
	if o.PayerID == "" {
		return payments.ChannelCreated{CodeURL: "weixin://wxpay/bizpayurl?pr=" + o.OutTradeNo}, nil
	}
	return payments.ChannelCreated{PrepayID: "wx" + o.OutTradeNo, PayParams: map[string]string{"package": "prepay_id=wx" + o.OutTradeNo}}, nil
}

func (c *channel) pay(outTradeNo string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paid[outTradeNo] = true
}

func (c *channel) Query(_ context.Context, outTradeNo string) (payments.ChannelState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.orders[outTradeNo]
	switch {
	case !ok:
		return payments.ChannelState{State: payments.ChannelNotFound}, nil
	case c.paid[outTradeNo]:
		return payments.ChannelState{State: payments.ChannelPaid, Amount: o.Amount, TransactionID: "T" + outTradeNo, PaidAt: time.Now()}, nil
	case c.closed[outTradeNo]:
		return payments.ChannelState{State: payments.ChannelClosed}, nil
	}
	return payments.ChannelState{State: payments.ChannelPending}, nil
}

func (c *channel) Close(_ context.Context, outTradeNo string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.paid[outTradeNo] {
		c.closed[outTradeNo] = true
	}
	return nil
}

func (c *channel) Refund(_ context.Context, r payments.ChannelRefund) (payments.RefundState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refunds[r.OutRefundNo] = r.Amount
	return payments.RefundState{State: payments.LegResultSucceeded, Amount: r.Amount, RefundID: "RF" + r.OutRefundNo}, nil
}

func (c *channel) QueryRefund(_ context.Context, no string) (payments.RefundState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.refunds[no]
	if !ok {
		return payments.RefundState{State: payments.RefundNotFound}, nil
	}
	return payments.RefundState{State: payments.LegResultSucceeded, Amount: a}, nil
}

// paymentRow inserts a replicated outpatient-bill payment on the appliance.
func paymentRow(t *testing.T, db *sqldb.DB, status string, total int64) string {
	t.Helper()
	id := ihos.NewID()
	now := ihos.FormatTime(time.Now())
	if _, err := db.Exec(`INSERT INTO payments (id, hospital_id, business_type, business_id, patient_id, channel, subject, total, fund_pay, account_pay, cash_pay,
		status, out_trade_no, deadline, created_at, paid_at, updated_at) VALUES (?, 'h1', ?, ?, '', ?, '诊间支付', ?, 0, 0, ?, ?, ?, ?, ?, ?, ?)`,
		id, ihos.PayOutpatientBill, ihos.NewID(), ihos.ChannelSelfPay, total, total, status, "P"+id[len(id)-31:], now, now, now, now); err != nil {
		t.Fatal(err)
	}
	return id
}

// itemRow inserts a replicated bill item.
func itemRow(t *testing.T, db *sqldb.DB, paymentID, hisPatient, feeID string, amount int64) string {
	t.Helper()
	id := ihos.NewID()
	now := ihos.FormatTime(time.Now())
	if _, err := db.Exec(`INSERT INTO bill_items (id, hospital_id, payment_id, his_patient_id, fee_id, visit_no, item_code, item_name, quantity, amount_fen,
		department_code, doctor_code, created_at, updated_at) VALUES (?, 'h1', ?, ?, ?, 'MZ00000001', ?, ?, '2', ?, '0301', 'D0301', ?, ?)`,
		id, paymentID, hisPatient, feeID, "X"+feeID, "药品"+feeID, amount, now, now); err != nil {
		t.Fatal(err)
	}
	return id
}

// refundRow inserts a replicated succeeded refund and moves the payment on.
func refundRow(t *testing.T, db *sqldb.DB, paymentID string, amount int64, status string) string {
	t.Helper()
	id := ihos.NewID()
	now := time.Now()
	if _, err := db.Exec(`INSERT INTO refunds (id, hospital_id, payment_id, out_refund_no, amount, cash_part, status, ins_status, cash_status, reason,
		attempts, last_error, created_by, version, created_at, done_at, updated_at) VALUES (?, 'h1', ?, ?, ?, ?, 'succeeded', 'none', 'done', '患者退费', 1, '', '', 1, ?, ?, ?)`,
		id, paymentID, fmt.Sprint("R", id[len(id)-31:]), amount, amount, ihos.FormatTime(now), ihos.FormatTime(now), ihos.FormatTime(now)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE payments SET status = ?, refunded = refunded + ? WHERE id = ?`, status, amount, paymentID); err != nil {
		t.Fatal(err)
	}
	return id
}
