package packaging

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"ihos"
)

// blockingProgram returns a Program whose Run reports its args on started and
// returns err once ctx is cancelled.
func blockingProgram(started chan<- []string, err error) Program {
	return Program{
		Name:        "ihos-test",
		DisplayName: "测试服务",
		Run: func(ctx context.Context, args []string) error {
			started <- args
			<-ctx.Done()
			return err
		},
	}
}

func TestVersion(t *testing.T) {
	p := Program{Name: "ihos-test", Run: func(context.Context, []string) error {
		t.Error("Run called for version")
		return nil
	}}
	for _, arg := range []string{"version", "--version", "-version"} {
		var stdout, stderr bytes.Buffer
		if code := run(p, []string{arg}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit code %d, stderr %q", arg, code, stderr.String())
		}
		out := stdout.String()
		for _, want := range []string{"ihos-test", ihos.Version, ihos.Commit, runtime.Version()} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output %q lacks %q", arg, out, want)
			}
		}
	}
}

func TestInvalidProgram(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(Program{Name: "x"}, nil, &stdout, &stderr); code != 2 {
		t.Errorf("Program without Run: exit code %d, want 2", code)
	}
}

func TestServiceCommandErrors(t *testing.T) {
	p := Program{Name: "ihos-test", Run: func(context.Context, []string) error { return nil }}
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"service"}, "缺少子命令"},
		{[]string{"service", "bogus"}, `未知的 service 子命令 "bogus"`},
		{[]string{"service", "Install"}, `未知的 service 子命令 "Install"`},
		{[]string{"service", "start", "--data-dir", "/x"}, "不接受参数"},
		{[]string{"service", "install", "--data-dir"}, "缺少路径"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(p, tt.args, &stdout, &stderr)
		if code != 2 {
			t.Errorf("%q: exit code %d, want 2", tt.args, code)
		}
		if !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%q: stderr %q lacks %q", tt.args, stderr.String(), tt.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: unexpected stdout %q", tt.args, stdout.String())
		}
	}
}

func TestAbsPathArgs(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string { return filepath.Join(wd, p) }
	root, _ := filepath.Abs("/var/lib/ihos") // on Windows, gains the current drive
	tests := []struct {
		in, want []string
	}{
		{nil, []string{}},
		{[]string{"--http", ":8080"}, []string{"--http", ":8080"}},
		{[]string{"--data-dir", "data"}, []string{"--data-dir", abs("data")}},
		{[]string{"--data-dir=data"}, []string{"--data-dir=" + abs("data")}},
		{[]string{"-data-dir", "data"}, []string{"-data-dir", abs("data")}},
		{[]string{"-config=conf/a.json"}, []string{"-config=" + abs("conf/a.json")}},
		{[]string{"--log-file", "x.log", "--store-path", "s"}, []string{"--log-file", abs("x.log"), "--store-path", abs("s")}},
		{[]string{"--data-dir", "/var/lib/ihos"}, []string{"--data-dir", root}},
		{[]string{"--config="}, []string{"--config="}},
		{[]string{"--verbose", "data"}, []string{"--verbose", "data"}},
		{[]string{"--", "--data-dir", "data"}, []string{"--", "--data-dir", "data"}},
	}
	for _, tt := range tests {
		got, err := absPathArgs(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
	in := []string{"--data-dir", "data"}
	if _, err := absPathArgs(in); err != nil || in[1] != "data" {
		t.Errorf("absPathArgs modified its input: %q", in)
	}
}

func TestServiceConfig(t *testing.T) {
	p := Program{Name: "ihos-appliance", DisplayName: "互联网医院院内服务", Description: "d"}
	c := serviceConfig(p, []string{"--data-dir", "/var/lib/ihos"})
	if c.Name != p.Name || c.DisplayName != p.DisplayName || c.Description != p.Description {
		t.Errorf("config %+v does not describe %+v", c, p)
	}
	if !slices.Equal(c.Arguments, []string{"--data-dir", "/var/lib/ihos"}) {
		t.Errorf("Arguments = %q", c.Arguments)
	}
	if c.Option["Restart"] != "on-failure" {
		t.Errorf("Restart option = %v, want on-failure", c.Option["Restart"])
	}
}

func TestRunUntilCancel(t *testing.T) {
	for _, runErr := range []error{nil, context.Canceled, errors.New("数据库关闭失败")} {
		started := make(chan []string, 1)
		p := blockingProgram(started, runErr)
		ctx, cancel := context.WithCancel(context.Background())
		var stderr bytes.Buffer
		done := make(chan int)
		go func() { done <- runUntil(ctx, p, []string{"--http", ":0"}, &stderr) }()
		if args := <-started; !slices.Equal(args, []string{"--http", ":0"}) {
			t.Errorf("Run got args %q", args)
		}
		cancel()
		code := <-done
		want := 0
		if runErr != nil && runErr != context.Canceled {
			want = 1
		}
		if code != want {
			t.Errorf("Run returning %v: exit code %d, want %d (stderr %q)", runErr, code, want, stderr.String())
		}
		if want == 1 && !strings.Contains(stderr.String(), "数据库关闭失败") {
			t.Errorf("stderr %q does not report the error", stderr.String())
		}
	}
}

func TestRunUntilRunFails(t *testing.T) {
	p := Program{Name: "ihos-test", Run: func(context.Context, []string) error {
		return errors.New("端口被占用")
	}}
	var stderr bytes.Buffer
	if code := runUntil(context.Background(), p, nil, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "端口被占用") {
		t.Errorf("stderr %q does not report the error", stderr.String())
	}
	// An unrequested context.Canceled is an error, not a clean stop.
	p.Run = func(context.Context, []string) error { return context.Canceled }
	if code := runUntil(context.Background(), p, nil, &stderr); code != 1 {
		t.Errorf("unrequested context.Canceled: exit code %d, want 1", code)
	}
}

func TestStopTimeout(t *testing.T) {
	defer func(d time.Duration) { stopTimeout = d }(stopTimeout)
	stopTimeout = 50 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	p := Program{Name: "ihos-test", Run: func(ctx context.Context, _ []string) error {
		close(started)
		<-release // ignores ctx: a hung shutdown
		return nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	var stderr bytes.Buffer
	if code := runUntil(ctx, p, nil, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "未能停止") {
		t.Errorf("stderr %q does not report the timeout", stderr.String())
	}
}

// TestProgramStartStop drives the service.Interface the service manager calls.
func TestProgramStartStop(t *testing.T) {
	started := make(chan []string, 1)
	m := &program{
		p:      blockingProgram(started, nil),
		args:   []string{"--data-dir", "/d"},
		report: func(msg string) { t.Errorf("unexpected report %q", msg) },
		exit:   func(code int) { t.Errorf("unexpected exit(%d)", code) },
	}
	if err := m.Start(nil); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := m.Stop(nil); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(m.r, m.report, "ihos-test"); code != 0 {
		t.Errorf("exit code %d", code)
	}
	time.Sleep(10 * time.Millisecond) // the watcher goroutine must not call exit
}

// TestProgramRunFails: when Run fails on its own under the service manager, the
// process must exit non-zero so the manager restarts it.
func TestProgramRunFails(t *testing.T) {
	exited := make(chan int, 1)
	var reports []string
	m := &program{
		p: Program{Name: "ihos-test", Run: func(context.Context, []string) error {
			return errors.New("存储目录不可写")
		}},
		report: func(msg string) { reports = append(reports, msg) },
		exit:   func(code int) { exited <- code },
	}
	if err := m.Start(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != 1 {
			t.Errorf("exit(%d), want exit(1)", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("exit not called")
	}
	if len(reports) != 1 || !strings.Contains(reports[0], "存储目录不可写") {
		t.Errorf("reports = %q", reports)
	}
}
