package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/paychannel"
)

// BenchmarkReconcile1M reconciles a day of 1,000,000 records per side
// (900,000 payments and 100,000 refunds) with 400 mismatches, 100 of each
// kind, against the channel: our side read from SQLite, the bill generated in
// memory. Goal (issue 7): under 60 s per run. The setup (inserting our side)
// is not timed; s/run is the figure.
func BenchmarkReconcile1M(b *testing.B) {
	const (
		payments = 900_000
		refunds  = 100_000
		each     = 100 // mismatches of each kind
	)
	ctx := context.Background()
	db := sqldbtest.SQLite(b)
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, ihos.Shanghai)
	bill := make([]paychannel.BillRow, 0, payments+refunds)
	var paymentIDs []string
	const batch = 50_000
	for lo := 0; lo < payments; lo += batch {
		if err := db.Tx(ctx, func(tx *sql.Tx) error {
			for i := lo; i < min(lo+batch, payments); i++ {
				key := fmt.Sprintf("P%031d", i)
				id := ihos.NewID()
				fen := 1 + rng.Int64N(100_000)
				when := start.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
				cashStatus, status := ihos.LegDone, ihos.PaymentPaid
				var paidAt any = ihos.FormatTime(when)
				switch {
				case i < each: // missing at the channel
				case i < 2*each: // we lack it: not inserted
					bill = append(bill, paid(key, fen, when))
					continue
				case i < 3*each: // amount differs
					bill = append(bill, paid(key, fen+1, when))
				case i < 4*each: // we still query it
					cashStatus, status, paidAt = ihos.LegPending, ihos.PaymentPaying, nil
					bill = append(bill, paid(key, fen, when))
				default:
					bill = append(bill, paid(key, fen, when))
				}
				if i >= payments-refunds {
					paymentIDs = append(paymentIDs, id)
				}
				created := ihos.FormatTime(when.Add(-time.Minute))
				if _, err := db.TxExec(ctx, tx, `INSERT INTO payments (id, business_type, business_id, channel, total, cash_pay, status,
					out_trade_no, cash_status, deadline, created_at, paid_at, updated_at) VALUES (?, 'visit_fee', ?, 'selfpay', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
					id, id, fen, fen, status, key, cashStatus, created, created, paidAt, created); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	for lo := 0; lo < refunds; lo += batch {
		if err := db.Tx(ctx, func(tx *sql.Tx) error {
			for i := lo; i < min(lo+batch, refunds); i++ {
				key := fmt.Sprintf("R%031d", i)
				when := start.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
				fen := 1 + rng.Int64N(1000)
				bill = append(bill, refunded("P", key, fen, when))
				at := ihos.FormatTime(when)
				if _, err := db.TxExec(ctx, tx, `INSERT INTO refunds (id, payment_id, out_refund_no, amount, cash_part, status, cash_status,
					created_at, done_at, updated_at) VALUES (?, ?, ?, ?, ?, 'succeeded', 'done', ?, ?, ?)`,
					ihos.NewID(), paymentIDs[i], key, fen, fen, at, at, at); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	// The channel's file lists rows by time, not by key.
	rng.Shuffle(len(bill), func(i, j int) { bill[i], bill[j] = bill[j], bill[i] })
	benchRun(b, db, bill, 4*each)
}

func benchRun(b *testing.B, db *sqldb.DB, bill []paychannel.BillRow, wantMismatches int64) {
	r := &Reconciler{DB: db}
	ctx := context.Background()
	began := time.Now()
	n := 0
	for b.Loop() {
		n++
		runs, err := r.RunChannel(ctx, day, func(context.Context, string) ([]paychannel.BillRow, error) { return bill, nil })
		if err != nil || len(runs) != 1 {
			b.Fatal(err, len(runs))
		}
		if run := runs[0]; run.Mismatches != wantMismatches {
			b.Fatalf("%d mismatches, want %d (tally %+v)", run.Mismatches, wantMismatches, run.Tally)
		}
	}
	b.ReportMetric(time.Since(began).Seconds()/float64(n), "s/run")
}
