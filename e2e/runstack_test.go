package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	stdsync "sync"
	"syscall"
	"testing"
	"time"
)

// runStack is `make run`'s stack, started the way `make run` starts it:
// scripts/run with every binary `make build` builds, a fresh RUN_DIR and free
// ports, so a test sees exactly what a newcomer sees (demo data, demo logins
// in demo-credentials.json, every simulator).
type runStack struct {
	dir   string            // RUN_DIR
	addrs map[string]string // CLOUD_HTTP, APPLIANCE_HTTP, ...: host:port
	creds map[string]map[string]any
	cmd   *exec.Cmd
	out   *lockedBuffer
}

// makeRunBinaries are the commands `make build` builds (Makefile "build").
var makeRunBinaries = []string{
	"ihos/appliance/cmd/ihos-appliance", "ihos/cloud/cmd/ihos-cloud", "ihos/his/cmd/ihos-his-sim",
	"ihos/drivers/printersim/cmd/ihos-printer-sim", "ihos/insurance/cmd/ihos-insurance-sim",
	"ihos/paychannel/cmd/ihos-pay-sim", "ihos/insurance/cmd/ihos-mobilepay-sim", "ihos/einvoice/cmd/ihos-einvoice-sim",
	"ihos/sms/cmd/ihos-sms-sim", "ihos/idverify/cmd/ihos-idverify-sim",
}

var (
	runBinOnce stdsync.Once
	runBinDir  string
	runBinErr  error
)

// startRunStack builds the binaries once per test binary and starts
// scripts/run; the stack stops (SIGTERM, as Ctrl-C) when the test ends.
func startRunStack(t *testing.T) *runStack {
	t.Helper()
	runBinOnce.Do(func() {
		runBinDir, runBinErr = os.MkdirTemp("", "ihos-run-bin")
		if runBinErr != nil {
			return
		}
		cmd := exec.Command("go", append([]string{"build", "-o", runBinDir + "/"}, makeRunBinaries...)...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			runBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if runBinErr != nil {
		t.Fatal(runBinErr)
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "scripts", "run")

	s := &runStack{dir: t.TempDir(), addrs: map[string]string{}, out: &lockedBuffer{}}
	env := append(os.Environ(), "RUN_DIR="+s.dir, "BIN_DIR="+runBinDir)
	for _, name := range []string{"CLOUD_HTTP", "APPLIANCE_HTTP", "HIS_MLLP", "HIS_HTTP", "HIS_LISTEN", "PRINTER_TCP", "PRINTER_HTTP",
		"INSURANCE_HTTP", "PAY_HTTP", "EINVOICE_HTTP", "MOBILEPAY_HTTP", "SMS_HTTP", "IDVERIFY_HTTP"} {
		s.addrs[name] = freeAddr(t)
		env = append(env, name+"="+s.addrs[name])
	}
	s.cmd = exec.Command("bash", script)
	s.cmd.Env = env
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := stdsync.Once{}
		for sc.Scan() {
			s.out.WriteLine(sc.Text())
			if strings.Contains(sc.Text(), "按 Ctrl-C 停止全部服务") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM) // the script's trap stops every service
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		pw.Close()
		if t.Failed() {
			for _, log := range []string{"cloud.log", "appliance.log", "his-sim.log", "pay-sim.log", "einvoice-sim.log"} {
				b, _ := os.ReadFile(filepath.Join(s.dir, log))
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("--- %s (tail) ---\n%s", log, b)
			}
		}
	})
	select {
	case <-ready:
	case <-time.After(3 * time.Minute):
		t.Fatalf("make run's stack did not come up in 3 minutes; its output:\n%s", s.out.String())
	}
	b, err := os.ReadFile(filepath.Join(s.dir, "demo-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s.creds); err != nil {
		t.Fatalf("demo-credentials.json: %v", err)
	}
	return s
}

// url is http://<addr of name><path>.
func (s *runStack) url(name, path string) string { return "http://" + s.addrs[name] + path }

// cred is a string field of a demo-credentials.json entry.
func (s *runStack) cred(entry, field string) string {
	v, _ := s.creds[entry][field].(string)
	return v
}

// smsCode is the newest code the SMS simulator sent to phone (its control
// page; the same codes are in sms-sim.log).
func (s *runStack) smsCode(t *testing.T, phone string) string {
	t.Helper()
	var out struct {
		Messages []struct {
			Phone string `json:"phone"`
			Code  string `json:"code"`
		} `json:"messages"`
	}
	resp, err := http.Get(s.url("SMS_HTTP", "/control/messages"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	for i := len(out.Messages) - 1; i >= 0; i-- {
		if out.Messages[i].Phone == phone && out.Messages[i].Code != "" {
			return out.Messages[i].Code
		}
	}
	t.Fatalf("no SMS code sent to %s", phone)
	return ""
}

// lockedBuffer collects the script's output lines.
type lockedBuffer struct {
	mu    stdsync.Mutex
	lines []string
}

func (b *lockedBuffer) WriteLine(s string) {
	b.mu.Lock()
	b.lines = append(b.lines, s)
	b.mu.Unlock()
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// TestMakeRunStack: scripts/run brings the whole stack up from nothing with
// the demo logins of the doctor, the pharmacist and the patient, and the
// patient pages and the doctor app answer on the cloud.
func TestMakeRunStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	s := startRunStack(t)
	for _, entry := range []string{"doctor", "pharmacist", "patient", "console"} {
		if s.cred(entry, "username") == "" {
			t.Fatalf("demo-credentials.json has no %q login: %v", entry, s.creds[entry])
		}
	}
	if !strings.Contains(s.out.String(), "/h5/") || !strings.Contains(s.out.String(), "/doctor/") {
		t.Fatalf("the banner does not show the patient and doctor pages:\n%s", s.out.String())
	}
	for _, path := range []string{"/h5/", "/doctor/"} {
		resp, err := http.Get(s.url("CLOUD_HTTP", path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
}
