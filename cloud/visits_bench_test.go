package cloud_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"ihos/internal/sqldb/sqldbtest"
	"ihos/visits"
)

// BenchmarkMessageDelivery measures a message from patient to doctor through
// the cloud, over real sockets: 1,000 visits are open and accepted, and each
// visit's doctor holds its SSE stream (GET /api/visits/{id}/events), so 1,000
// streams are connected; patients POST /api/visits/{id}/messages at a steady
// rate (open loop: a message is sent on schedule whether or not the earlier
// ones have arrived), round-robin over the visits. A message's latency runs
// from the start of its POST to the moment its event is read from the doctor's
// stream. b.N messages; IHOS_BENCH_RATE sets the rate (messages/s, default
// 200).
func BenchmarkMessageDelivery(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchMessageDelivery(b, "") })
	b.Run("mysql", func(b *testing.B) { benchMessageDelivery(b, sqldbtest.MySQLDSN(b)) })
}

// benchVisits is the number of open visits (and connected doctor streams).
const benchVisits = 1000

func benchMessageDelivery(b *testing.B, dsn string) {
	rate := 200.0
	if s := os.Getenv("IHOS_BENCH_RATE"); s != "" {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 {
			rate = f
		}
	}
	r := newVisitRig(b, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// 1,000 visits of 1,000 patients with 100 doctors, all accepted.
	vs := make([]*visits.Visit, benchVisits)
	var wg stdsync.WaitGroup
	var next atomic.Int64
	now := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= benchVisits {
					return
				}
				v := r.open(fmt.Sprintf("BP%d", i), fmt.Sprintf("BD%d", i%100), now.Add(time.Duration(i)*time.Millisecond))
				if code, eb := r.call("POST", "/api/visits/"+v.ID+"/accept", "doctor:"+v.DoctorID, nil, nil); code != 200 {
					b.Errorf("accept: %d %+v", code, eb)
					return
				}
				vs[i] = v
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}

	// Every doctor's stream, connected before the first message.
	n := b.N
	sent := make([]atomic.Int64, n) // unix ns at the start of the POST
	lat := make([]time.Duration, n)
	var received atomic.Int64
	all := make(chan struct{})
	for _, v := range vs {
		events, err := r.subscribe(ctx, "/api/visits/"+v.ID+"/events", "doctor:"+v.DoctorID, "")
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for ev := range events {
				if ev.Name != "message" {
					continue
				}
				t := time.Now()
				var m visits.Message
				if json.Unmarshal([]byte(ev.Data), &m) != nil {
					continue
				}
				i, err := strconv.Atoi(m.Body[1:])
				if err != nil || i >= n {
					continue
				}
				lat[i] = t.Sub(time.Unix(0, sent[i].Load()))
				if received.Add(1) == int64(n) {
					close(all)
				}
			}
		}()
	}

	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	var posts stdsync.WaitGroup
	for i := range n {
		at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		time.Sleep(time.Until(at))
		posts.Add(1)
		go func() {
			defer posts.Done()
			v := vs[i%benchVisits]
			sent[i].Store(time.Now().UnixNano())
			code, eb := r.call("POST", "/api/visits/"+v.ID+"/messages", "patient:"+v.PatientID,
				visits.MessageInput{Kind: visits.KindText, Body: "m" + strconv.Itoa(i)}, nil)
			if code != http.StatusOK {
				b.Errorf("post: %d %+v", code, eb)
			}
		}()
	}
	posts.Wait()
	select {
	case <-all:
	case <-time.After(60 * time.Second):
		b.Fatalf("%d of %d messages delivered within 60 s of the last post", received.Load(), n)
	}
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(lat[n/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[n*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[n-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(n), "cpu-ms/msg")
}
