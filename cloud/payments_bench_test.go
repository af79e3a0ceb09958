package cloud_test

import (
	"fmt"
	"slices"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"ihos"
	"ihos/cloud"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/paychannel/paysim"
	"ihos/payments"
)

// benchClients are the numbers of payers creating and paying at the same
// time: a moderate load, and one that keeps the machine saturated.
var benchClients = []int{8, 32}

// BenchmarkPayThroughChannel measures self-pay orders end to end over real
// sockets: a client POSTs /api/pay/orders (the cloud records the payment and
// creates a JSAPI order at the channel simulator, signing the request and the
// pay parameters), the simulator pays at once (auto-pay) and POSTs its signed,
// encrypted notify to the cloud, and the client polls GET /api/pay/orders/{id}
// every 5 ms until the payment is paid. It reports orders/s and the p50/p99
// of one order from the create request to "paid" seen by the client.
//
// Everything — clients, cloud, simulator, database — shares this machine's
// cores, so the channel's own RSA signing (its answer and its notify) is
// counted against the cloud; see the report for the CPU split
// (-cpuprofile).
func BenchmarkPayThroughChannel(b *testing.B) {
	for _, n := range benchClients {
		b.Run(fmt.Sprintf("sqlite/clients=%d", n), func(b *testing.B) { benchPayThroughChannel(b, "", n) })
		b.Run(fmt.Sprintf("mysql/clients=%d", n), func(b *testing.B) { benchPayThroughChannel(b, sqldbtest.MySQLDSN(b), n) })
	}
}

func benchPayThroughChannel(b *testing.B, dsn string, clients int) {
	r := newPayRig(b, dsn, nil)
	r.mode(paysim.Mode{AutoPay: true})
	var (
		next  atomic.Int64
		polls atomic.Int64
		mu    stdsync.Mutex
		lat   []time.Duration
		wg    stdsync.WaitGroup
	)
	run := fmt.Sprint(time.Now().UnixNano())
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					break
				}
				t0 := time.Now()
				var res payments.PayResult
				req := cloud.OrderRequest{HospitalID: testHosp, BusinessType: ihos.PayConsultation, BusinessID: fmt.Sprintf("B%s-%d", run, i),
					PatientID: "P1", Amount: 2500, Subject: "图文问诊", OpenID: "oBench"}
				if code := r.call("POST", "/api/pay/orders", req, &res); code != 200 || res.Payment == nil {
					b.Errorf("create: %d", code)
					return
				}
				p := res.Payment
				for p.Status != ihos.PaymentPaid {
					if time.Since(t0) > 30*time.Second {
						b.Errorf("payment %s still %s", p.ID, p.Status)
						return
					}
					time.Sleep(5 * time.Millisecond)
					p = r.get(p.ID)
					polls.Add(1)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "orders/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(polls.Load())/float64(len(lat)), "polls/order")
}
