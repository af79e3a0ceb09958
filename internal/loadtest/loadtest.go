// Package loadtest drives the closed-loop load of the benchmarks: a number of
// clients, each taking the next operation as soon as its last one answered,
// and the latencies they saw. It is imported only by tests and benchmarks.
package loadtest

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Result is what a run measured.
type Result struct {
	// Latencies of the operations that succeeded, sorted.
	Latencies []time.Duration
	Elapsed   time.Duration
	Failed    int64
	// FirstErr is the first failure, to report once rather than n times.
	FirstErr error
}

// Run performs operations 0..n-1 from clients goroutines at once; op(i)
// returns an error for a failed operation, whose latency does not count.
func Run(clients, n int, op func(i int) error) Result {
	var (
		next   atomic.Int64
		mu     sync.Mutex
		res    Result
		wg     sync.WaitGroup
		failed atomic.Int64
	)
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					break
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					if failed.Add(1) == 1 {
						mu.Lock()
						res.FirstErr = err
						mu.Unlock()
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Failed = failed.Load()
	slices.Sort(res.Latencies)
	return res
}

// Rate is the successful operations per second.
func (r Result) Rate() float64 { return float64(len(r.Latencies)) / r.Elapsed.Seconds() }

// Percentile is the latency below which p (0–100) percent of the
// successful operations answered; 0 when none did.
func (r Result) Percentile(p int) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[len(r.Latencies)*p/100]
}

// Report reports the rate as "<unit>/s" and the p50 and p99 latencies in
// milliseconds; nothing when no operation succeeded.
func (r Result) Report(b *testing.B, unit string) {
	if len(r.Latencies) == 0 {
		return
	}
	b.ReportMetric(r.Rate(), unit+"/s")
	b.ReportMetric(float64(r.Percentile(50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(r.Percentile(99).Microseconds())/1000, "p99-ms")
}
