package his_test

import (
	"context"
	"database/sql"
	"os"
	"strconv"
	"testing"
	"time"

	"ihos"
	"ihos/his"
)

// BenchmarkOrderDelivery measures order delivery to the HIS simulator with
// ACK (docs/benchmarks.md, "HIS"), in two runs of IHOS_BENCH_HIS_ORDERS
// (default 20,000) one-line pharmacy orders for 50 patients:
//
//   - drain: the orders are queued while the simulator is down (placed in
//     transactions of 100); orders/s counts from the simulator's restart to
//     the last answer recorded. This is the sustained delivery rate: MLLP round
//     trips on eight connections, the simulator storing each message, the queue
//     recording the answers in batches.
//   - live: a writer places orders one transaction each, as fast as it can,
//     while the queue sends them; live_orders/s counts from the first order
//     placed to the last answer recorded.
//
// Both ends, and the simulator's own SQLite store, share this process.
func BenchmarkOrderDelivery(b *testing.B) {
	n := 20_000
	if s := os.Getenv("IHOS_BENCH_HIS_ORDERS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	r := newRig(b)
	ctx := context.Background()
	if _, err := r.svc.RefreshCatalog(ctx); err != nil {
		b.Fatal(err)
	}
	code := r.firstCode(ihos.CatalogDrug, "")
	req := func(i int) his.OrderRequest {
		return his.OrderRequest{Kind: ihos.CatalogDrug, Patient: demoPatient(i % 50),
			Items: []ihos.HISOrderLine{{Code: code, Quantity: "1", Frequency: "每日三次", Route: "口服"}}}
	}
	drained := func(want int) {
		waitFor(b, 10*time.Minute, "every order answered", func() bool {
			st, _ := r.queue.Status(ctx)
			return st.Pending == 0
		})
		if got := r.count(`SELECT COUNT(*) FROM his_orders WHERE status = 'accepted'`); got != want {
			b.Fatalf("%d of %d orders accepted", got, want)
		}
	}
	b.ResetTimer()

	// Drain.
	addr := r.simAddr
	r.sim.Close()
	start := time.Now()
	for i := 0; i < n; i += 100 {
		err := r.db.Tx(ctx, func(tx *sql.Tx) error {
			for k := i; k < min(i+100, n); k++ {
				o := req(k)
				m := ihos.HISMessage{Event: ihos.HISPharmacyOrder, Data: ihos.HISMessageData{Patient: o.Patient,
					Orders: []ihos.HISOrderLine{{PlacerOrderNo: ihos.NewID(), Code: code, Name: "药品", Quantity: "1"}}}}
				if err := r.queue.Enqueue(ctx, tx, o.Patient.HISID, &m); err != nil {
					return err
				}
				now := ihos.FormatTime(time.Now())
				if _, err := r.db.TxExec(ctx, tx, `INSERT INTO his_orders (id, hospital_id, kind, patient_his_id, code, name, message_id, status, created_at, updated_at)
					VALUES (?, 'h1', 'DRUG', ?, ?, '药品', ?, 'queued', ?, ?)`, m.Data.Orders[0].PlacerOrderNo, o.Patient.HISID, code, m.ID, now, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	queued := time.Since(start)
	r.startSim(addr)
	start = time.Now()
	r.queue.Kick()
	drained(n)
	drain := time.Since(start)
	b.ReportMetric(float64(n)/drain.Seconds(), "orders/s")
	b.Logf("drain: %d orders queued in %v while the HIS was down; all answered AA %v after it came back: %.0f orders/s delivered with ACK",
		n, queued.Round(time.Millisecond), drain.Round(time.Millisecond), float64(n)/drain.Seconds())

	// Live.
	start = time.Now()
	for i := range n {
		if _, err := r.svc.PlaceOrder(ctx, req(i)); err != nil {
			b.Fatal(err)
		}
	}
	placed := time.Since(start)
	drained(2 * n)
	total := time.Since(start)
	b.ReportMetric(float64(n)/total.Seconds(), "live_orders/s")
	b.Logf("live: %d orders placed one transaction each in %v (%.0f/s); all answered AA after %v: %.0f orders/s",
		n, placed.Round(time.Millisecond), float64(n)/placed.Seconds(), total.Round(time.Millisecond), float64(n)/total.Seconds())
}
