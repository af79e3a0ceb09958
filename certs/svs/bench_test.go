package svs

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ihos/certs"
)

// BenchmarkSVSHTTP measures the signing service over HTTP the way the tender
// asks: many concurrent clients, each on its own keep-alive connection to a
// real TCP listener, signing (then verifying at level 0) for a fixed time.
// The library's own in-process SM2 sign and verify rates are measured in the
// same run, on all cores, and the HTTP rates are reported as a ratio of them.
// Clients and server share the machine (and the process), so the client side's
// CPU is part of what the figures pay for.
//
// Knobs (environment): SVS_BENCH_SECONDS (per phase, default 10),
// SVS_BENCH_CONNS (concurrent connections, default 500), SVS_BENCH_DATA (bytes
// signed per request, default 256), SVS_BENCH_PHASES (which of sign, verify,
// lib, floor to run, default all; for profiling one). The floor phase runs the
// same clients against a handler that does nothing, to show what HTTP itself
// costs on the machine. Run it once:
//
//	go test -run XXX -bench BenchmarkSVSHTTP -benchtime 1x ./certs/svs/
func BenchmarkSVSHTTP(b *testing.B) {
	seconds := envInt("SVS_BENCH_SECONDS", 10)
	conns := envInt("SVS_BENCH_CONNS", 500)
	size := envInt("SVS_BENCH_DATA", 256)
	dur := time.Duration(seconds) * time.Second

	e := newEnv(b, envOptions{noTSA: true})
	mux := http.NewServeMux()
	e.srv.Routes(mux)
	// The floor: the same harness against a handler that only reads the body
	// and answers a small JSON object, to show what HTTP itself costs here.
	mux.HandleFunc("POST /bench/noop", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		io.WriteString(w, `{"ok":true}`+"\n")
	})
	hs := httptest.NewUnstartedServer(mux)
	hs.Config.MaxHeaderBytes = 8 << 10
	hs.Start()
	defer hs.Close()

	data := bytes.Repeat([]byte("电子病历"), size/12+1)[:size]
	signBody, _ := json.Marshal(map[string]string{"data": b64s(data)})
	var sr signResponse
	if st := e.post(e.token, "/api/svs/sign", map[string]string{"data": b64s(data)}, &sr); st != 200 {
		b.Fatalf("sign: %d", st)
	}
	verifyBody, _ := json.Marshal(map[string]any{"data": b64s(data), "signature": sr.Signature, "cert": sr.Cert, "level": 0})
	key, err := e.srv.Keys.Key(context.Background(), DefaultKey)
	if err != nil {
		b.Fatal(err)
	}

	clients := make([]*http.Client, conns)
	for i := range clients {
		clients[i] = &http.Client{Transport: &http.Transport{
			MaxConnsPerHost:     1,
			MaxIdleConnsPerHost: 1,
			MaxIdleConns:        1,
			DisableCompression:  true,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		}}
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()

	phases := os.Getenv("SVS_BENCH_PHASES")
	if phases == "" {
		phases = "sign,verify,lib,floor"
	}
	var signs, verifies, floor phaseResult
	var libSign, libVerify float64
	b.ResetTimer()
	if strings.Contains(phases, "sign") {
		signs = runHTTPPhase(b, clients, hs.URL+"/api/svs/sign", e.token, signBody, dur)
	}
	if strings.Contains(phases, "verify") {
		verifies = runHTTPPhase(b, clients, hs.URL+"/api/svs/verify", e.token, verifyBody, dur)
	}
	b.StopTimer()
	if strings.Contains(phases, "floor") {
		floor = runHTTPPhase(b, clients, hs.URL+"/bench/noop", e.token, signBody, max(dur/2, 2*time.Second))
	}
	if strings.Contains(phases, "lib") {
		libDur := max(dur/3, 2*time.Second)
		sig, _ := certs.SignData(key.Signer, data)
		libSign = inProcessRate(libDur, func() error { _, err := certs.SignData(key.Signer, data); return err })
		libVerify = inProcessRate(libDur, func() error { return certs.VerifyData(key.Cert.PublicKey, data, sig) })
	}

	load, _ := os.ReadFile("/proc/loadavg")
	b.ReportMetric(signs.rate, "signs/s")
	b.ReportMetric(verifies.rate, "verifies/s")
	b.ReportMetric(signs.p50, "sign-p50-ms")
	b.ReportMetric(signs.p99, "sign-p99-ms")
	b.ReportMetric(verifies.p50, "verify-p50-ms")
	b.ReportMetric(verifies.p99, "verify-p99-ms")
	b.ReportMetric(floor.rate, "noop-req/s")
	b.ReportMetric(signs.rate/libSign, "sign-ratio")
	b.ReportMetric(verifies.rate/libVerify, "verify-ratio")
	b.Logf("GOMAXPROCS %d, %d connections, %d-byte data, %v per phase", runtime.GOMAXPROCS(0), conns, size, dur)
	b.Logf("HTTP sign:   %8.0f/s  p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  errors %d", signs.rate, signs.p50, signs.p99, signs.max, signs.errors)
	b.Logf("HTTP verify: %8.0f/s  p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  errors %d", verifies.rate, verifies.p50, verifies.p99, verifies.max, verifies.errors)
	b.Logf("HTTP floor (no-op handler, same harness): %.0f/s  p50 %.1f ms  p99 %.1f ms", floor.rate, floor.p50, floor.p99)
	b.Logf("library in process (all cores): sign %.0f/s, verify %.0f/s", libSign, libVerify)
	b.Logf("ratio HTTP/library: sign %.2f, verify %.2f", signs.rate/libSign, verifies.rate/libVerify)
	st := e.srv.LogStats()
	if st.Batches > 0 {
		b.Logf("group commit: %d transactions, %.1f entries each, %.2f ms each", st.Batches, float64(st.Entries)/float64(st.Batches),
			float64(st.CommitTime.Microseconds())/1000/float64(st.Batches))
	}
	b.Logf("signature log rows: %d sign, %d verify", logCount(b, e.db, OpSign), logCount(b, e.db, OpVerify))
	b.Logf("/proc/loadavg after: %s", bytes.TrimSpace(load))
}

type phaseResult struct {
	rate, p50, p99, max float64
	errors              int64
}

// runHTTPPhase has every client post body to url in a loop for dur.
func runHTTPPhase(b *testing.B, clients []*http.Client, url, token string, body []byte, dur time.Duration) phaseResult {
	var (
		stop   atomic.Bool
		errs   atomic.Int64
		wg     sync.WaitGroup
		lat    = make([][]time.Duration, len(clients))
		ready  sync.WaitGroup
		starts = make(chan struct{})
	)
	for i, c := range clients {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, 4096)
			// One warm-up call opens the connection before the clock starts.
			post(c, url, token, body)
			ready.Done()
			<-starts
			for !stop.Load() {
				t0 := time.Now()
				if !post(c, url, token, body) {
					errs.Add(1)
					continue
				}
				l = append(l, time.Since(t0))
			}
			lat[i] = l
		}()
	}
	ready.Wait()
	start := time.Now()
	close(starts)
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		b.Fatalf("%s: no successful request (%d errors)", url, errs.Load())
	}
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return phaseResult{
		rate:   float64(len(all)) / elapsed.Seconds(),
		p50:    ms(all[len(all)/2]),
		p99:    ms(all[len(all)*99/100]),
		max:    ms(all[len(all)-1]),
		errors: errs.Load(),
	}
}

func post(c *http.Client, url, token string, body []byte) bool {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// inProcessRate runs f on every core for d and returns calls per second.
func inProcessRate(d time.Duration, f func() error) float64 {
	var n atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if f() == nil {
					n.Add(1)
				}
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
