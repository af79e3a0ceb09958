package payments

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

// benchChannel is an instant channel: the service's own cost is what is measured.
type benchChannel struct{}

func (benchChannel) Create(_ context.Context, o ChannelOrder) (ChannelCreated, error) {
	return ChannelCreated{PrepayID: "wx" + o.OutTradeNo}, nil
}
func (benchChannel) Query(context.Context, string) (ChannelState, error) {
	return ChannelState{State: ChannelPending}, nil
}
func (benchChannel) Close(context.Context, string) error { return nil }
func (benchChannel) Refund(_ context.Context, r ChannelRefund) (RefundState, error) {
	return RefundState{State: LegResultSucceeded, Amount: r.Amount}, nil
}
func (benchChannel) QueryRefund(context.Context, string) (RefundState, error) {
	return RefundState{State: LegResultSucceeded}, nil
}

// BenchmarkCreateAndPay measures one order end to end through the service:
// Create, Pay (cash leg at an instant in-process channel) and the channel's
// paid notify, from 32 concurrent clients. It reports orders/s and the p99 of
// one order. The target (≥ 1,000 orders/s, p99 < 100 ms through the
// real channel simulator on the 2-core machine) adds the simulator's HTTP and
// signing cost on top of this.
func BenchmarkCreateAndPay(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchCreateAndPay(b, sqldbtest.SQLite(b)) })
	b.Run("mysql", func(b *testing.B) { benchCreateAndPay(b, sqldbtest.MySQL(b)) })
}

func benchCreateAndPay(b *testing.B, db *sqldb.DB) {
	svc := &Service{DB: db, Channel: benchChannel{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx := context.Background()
	var seq atomic.Int64
	var mu stdsync.Mutex
	var lat []time.Duration
	b.SetParallelism(16) // × GOMAXPROCS clients
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			n := seq.Add(1)
			p, err := svc.Create(ctx, NewPayment{HospitalID: "H1", BusinessType: ihos.PayConsultation, BusinessID: fmt.Sprint("B", n),
				PatientID: "P1", DoctorID: "D1", DepartmentID: "DEP1", Channel: ihos.ChannelSelfPay, Subject: "图文问诊", Total: 2500})
			if err != nil {
				b.Error(err)
				return
			}
			r, err := svc.Pay(ctx, p.ID, PayRequest{PayerID: "openid"})
			if err != nil {
				b.Error(err)
				return
			}
			out, err := svc.ApplyNotify(ctx, Notify{Source: NotifyChannel, ID: "N" + p.OutTradeNo, OrderNo: p.OutTradeNo,
				State: ChannelPaid, Amount: r.Payment.CashPay, TransactionID: "T" + p.OutTradeNo})
			if err != nil || out != OutcomeApplied {
				b.Errorf("notify: %s %v", out, err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "orders/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
}
