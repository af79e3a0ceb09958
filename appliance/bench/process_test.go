//go:build linux

package bench_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkApplianceIdleRSS starts the built appliance binary on a data dir,
// waits for /healthz, leaves it idle for 5 s and reads VmRSS from /proc. It
// reports the first start (which seeds the demo hospital) as first_start_MB and
// a restart on the now existing data dir, the steady state, as idle_rss_MB.
func BenchmarkApplianceIdleRSS(b *testing.B) {
	bin := buildAppliance(b)
	dir := b.TempDir()
	var rss []float64
	for _, phase := range []string{"first start", "restart"} {
		p := startAppliance(b, bin, dir)
		if _, err := p.waitHealthy(30 * time.Second); err != nil {
			b.Fatalf("%s: %v\n%s", phase, err, p.log())
		}
		time.Sleep(5 * time.Second)
		mb, err := vmRSS(p.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		p.stop(b)
		b.Logf("%s: idle VmRSS %.1f MB", phase, mb)
		rss = append(rss, mb)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(rss[0], "first_start_MB")
	b.ReportMetric(rss[1], "idle_rss_MB")
	if rss[1] >= 80 {
		b.Errorf("idle RSS %.1f MB, target < 80 MB", rss[1])
	}
}

// BenchmarkApplianceStartToHealthy starts the appliance once on a fresh data
// dir (demo on), stops it with SIGTERM, then times seven restarts from exec
// to the first 200 from /healthz and reports the median (and the slowest).
func BenchmarkApplianceStartToHealthy(b *testing.B) {
	bin := buildAppliance(b)
	dir := b.TempDir()
	p := startAppliance(b, bin, dir)
	if _, err := p.waitHealthy(30 * time.Second); err != nil {
		b.Fatalf("first start: %v\n%s", err, p.log())
	}
	p.stop(b)
	var runs []time.Duration
	for range 7 {
		p := startAppliance(b, bin, dir)
		d, err := p.waitHealthy(10 * time.Second)
		if err != nil {
			b.Fatalf("restart: %v\n%s", err, p.log())
		}
		p.stop(b)
		runs = append(runs, d)
	}
	slices.Sort(runs)
	median := runs[len(runs)/2]
	b.Logf("start to healthy, existing data dir, %d runs: median %v, min %v, max %v", len(runs),
		median.Round(time.Millisecond), runs[0].Round(time.Millisecond), runs[len(runs)-1].Round(time.Millisecond))
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(median), "median_ms")
	b.ReportMetric(ms(runs[len(runs)-1]), "max_ms")
	if median >= time.Second {
		b.Errorf("start to healthy %v, target < 1 s", median)
	}
}

// buildAppliance builds the appliance as make build does (trimmed, stripped,
// pure Go) into a temp dir.
func buildAppliance(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "ihos-appliance")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "ihos/appliance/cmd/ihos-appliance")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd     *exec.Cmd
	url     string
	logPath string
	started time.Time
}

func startAppliance(b *testing.B, bin, dir string) *proc {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logf, err := os.CreateTemp(b.TempDir(), "appliance-*.log")
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--data-dir", dir, "--http", addr, "--demo")
	cmd.Stdout, cmd.Stderr = logf, logf
	p := &proc{cmd: cmd, url: "http://" + addr + "/healthz", logPath: logf.Name(), started: time.Now()}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

// waitHealthy polls /healthz every 2 ms and returns the time from exec to the
// first 200.
func (p *proc) waitHealthy(timeout time.Duration) (time.Duration, error) {
	c := &http.Client{Timeout: time.Second}
	for time.Since(p.started) < timeout {
		resp, err := c.Get(p.url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(p.started), nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s not healthy after %v", p.url, timeout)
}

func (p *proc) stop(b *testing.B) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			b.Fatalf("appliance exited with %v\n%s", err, p.log())
		}
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		b.Fatalf("appliance did not stop within 15 s of SIGTERM\n%s", p.log())
	}
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// vmRSS returns a process's resident set size in MB (2^20 bytes).
func vmRSS(pid int) (float64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
