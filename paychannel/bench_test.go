package paychannel_test

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ihos/paychannel"
	"ihos/paychannel/paysim"
)

// BenchmarkCreatePayQuery measures one order end to end through the
// simulator over real sockets: CreateNative, the patient paying (POST
// /control/pay, which also sends the signed, encrypted notify to a
// merchant endpoint that parses it), and Query. It reports orders/s and the
// p99 latency of the three calls together. Client, simulator and notify
// endpoint share the machine's cores, as in the demo.
func BenchmarkCreatePayQuery(b *testing.B) {
	e := newEnv(b, paysim.Config{})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	hc := &http.Client{Transport: tr}
	e.c.HTTP = hc
	ctx := context.Background()
	var seq atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			no := fmt.Sprintf("BENCH%012d", seq.Add(1))
			t0 := time.Now()
			if _, err := e.c.CreateNative(ctx, e.order(no, 100)); err != nil {
				b.Fatal(err)
			}
			resp, err := hc.Post(e.sim.URL()+"/control/pay", "application/json", strings.NewReader(`{"out_trade_no":"`+no+`"}`))
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("pay: %v", err)
			}
			resp.Body.Close()
			t, err := e.c.Query(ctx, no)
			if err != nil || !t.Paid() {
				b.Fatalf("query = %+v, %v", t, err)
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "orders/s")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	}
}

// BenchmarkClientSign is the client's own cost per call: one signature for
// the request and one verification of the answer, with RSA-2048 and with
// SM2 (the channel's 国密 option).
func BenchmarkClientSign(b *testing.B) {
	keys(b)
	sm2Keys(b)
	msg := paychannel.RequestMessage("POST", paychannel.PathNative, time.Now().Unix(), paychannel.NewNonce(), []byte(`{"out_trade_no":"x"}`))
	for _, k := range []struct {
		name string
		key  crypto.Signer
	}{{"rsa", merchantKey}, {"sm2", sm2Merchant}} {
		b.Run(k.name+"/sign", func(b *testing.B) {
			for b.Loop() {
				if _, err := paychannel.Sign(k.key, msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		sig, _ := paychannel.Sign(k.key, msg)
		b.Run(k.name+"/verify", func(b *testing.B) {
			for b.Loop() {
				if err := paychannel.Verify(k.key.Public(), msg, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
