package loadtest

import (
	"errors"
	"testing"
	"time"
)

// Every operation runs once; failures are counted and left out of the
// latencies, which come back sorted.
func TestRun(t *testing.T) {
	seen := make([]int, 100)
	r := Run(8, 100, func(i int) error {
		seen[i]++ // each i is handed to exactly one client
		if i%10 == 0 {
			return errors.New("refused")
		}
		time.Sleep(time.Duration(i%3) * time.Millisecond)
		return nil
	})
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("operation %d ran %d times", i, n)
		}
	}
	if r.Failed != 10 || len(r.Latencies) != 90 || r.FirstErr == nil {
		t.Fatalf("failed %d, latencies %d, first %v", r.Failed, len(r.Latencies), r.FirstErr)
	}
	for i := 1; i < len(r.Latencies); i++ {
		if r.Latencies[i] < r.Latencies[i-1] {
			t.Fatal("latencies not sorted")
		}
	}
	if r.Percentile(99) < r.Percentile(50) || r.Rate() <= 0 {
		t.Fatalf("p50 %v p99 %v rate %v", r.Percentile(50), r.Percentile(99), r.Rate())
	}
}
