// Package packaging is the main of both service binaries (ihos-appliance and
// ihos-cloud): it runs a service in the foreground, under systemd or as a Windows
// service, and installs, removes, starts, stops and queries the OS service, so both
// binaries behave the same on every machine a hospital runs them on.
//
// A command's main is one line:
//
//	func main() { os.Exit(packaging.Main(prog, os.Args[1:])) }
//
// The commands are:
//
//	ihos-appliance [flags...]                   run (foreground, or under the service manager)
//	ihos-appliance service install [flags...]   install the OS service; the flags become its arguments
//	ihos-appliance service uninstall|start|stop|restart|status
//	ihos-appliance version                      (or --version) print the build
//
// `service install` writes a unit that runs as root (or LocalSystem on Windows),
// which is the quick way on a test machine. For production Linux installs by hand
// (a dedicated user, StateDirectory, hardening), use the example unit files in
// packaging/systemd: ihos-appliance.service and ihos-cloud.service.
package packaging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kardianos/service"

	"ihos"
)

// Program describes one service binary.
type Program struct {
	Name        string // "ihos-appliance"; the systemd unit / Windows service name
	DisplayName string // Chinese display name, e.g. "互联网医院院内服务"
	Description string
	// Run runs the service until ctx is cancelled and returns nil on a clean stop.
	// args are the command-line arguments after the program name (flags such as --data-dir, --http, --config).
	Run func(ctx context.Context, args []string) error
}

// stopTimeout bounds how long a stop waits for Run to return. It is shorter than
// systemd's default TimeoutStopSec (90s) and close to what the Windows service
// manager tolerates, so we report a hung shutdown ourselves instead of being killed
// without a word. Tests shorten it.
var stopTimeout = 20 * time.Second

// Exit codes besides 0 (success) and 1 (failure).
const (
	exitUsage        = 2 // bad command line
	exitStopped      = 3 // service status: installed but not running (LSB "program is not running")
	exitNotInstalled = 4 // service status: not installed (LSB "status unknown")
)

// serviceVerbs are the verbs of `prog service`, in the order usage lists them.
var serviceVerbs = []string{"install", "uninstall", "start", "stop", "restart", "status"}

// Main is the whole main(): `prog service install|uninstall|start|stop|restart|status [flags...]`
// manages the OS service (install records the remaining flags as the service's
// arguments, with the values of path flags made absolute); `prog --version` or
// `prog version` prints the build; otherwise Main runs p.Run in the foreground, or
// under the service manager when started by it, with SIGINT/SIGTERM (or the
// service manager's stop) cancelling its context. args are the arguments after the
// program name (os.Args[1:]). Main returns the process exit code.
func Main(p Program, args []string) int {
	return run(p, args, os.Stdout, os.Stderr)
}

// run is Main with its output streams, so tests can read them.
func run(p Program, args []string, stdout, stderr io.Writer) int {
	if p.Name == "" || p.Run == nil {
		fmt.Fprintln(stderr, "packaging: Program needs a Name and a Run function")
		return exitUsage
	}
	if len(args) > 0 {
		switch args[0] {
		case "version", "-version", "--version":
			printVersion(stdout, p)
			return 0
		case "service":
			return serviceCommand(p, args[1:], stdout, stderr)
		}
	}
	if service.Interactive() {
		return foreground(p, args, stderr)
	}
	return managed(p, args, stderr)
}

func printVersion(w io.Writer, p Program) {
	fmt.Fprintf(w, "%s %s (commit %s, %s %s/%s)\n",
		p.Name, ihos.Version, ihos.Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func usage(w io.Writer, name string) {
	fmt.Fprintf(w, `用法：
  %[1]s [参数...]                      在前台运行（Ctrl+C 停止）
  %[1]s service install [参数...]      安装为系统服务，参数记录为服务的启动参数
  %[1]s service uninstall              卸载系统服务
  %[1]s service start|stop|restart     启动、停止、重启系统服务
  %[1]s service status                 查看系统服务状态
  %[1]s version                        显示版本
`, name)
}

// foreground runs p until it returns or the process gets SIGINT or SIGTERM.
func foreground(p Program, args []string, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default handling: an operator whose
	// service hangs on shutdown can press Ctrl+C again to kill it.
	context.AfterFunc(ctx, stop)
	return runUntil(ctx, p, args, stderr)
}

// runUntil runs p.Run until it returns by itself or ctx is done; then it stops Run
// and waits for it, at most stopTimeout. It returns the exit code.
func runUntil(ctx context.Context, p Program, args []string, stderr io.Writer) int {
	r := startRunner(p, args)
	select {
	case <-r.done:
	case <-ctx.Done():
		fmt.Fprintf(stderr, "%s：收到停止信号，正在停止…\n", p.Name)
		if err := r.stop(); err != nil {
			fmt.Fprintf(stderr, "%s：%v\n", p.Name, err)
			return 1
		}
	}
	return exitCode(r, func(msg string) { fmt.Fprintln(stderr, msg) }, p.Name)
}

// runner runs p.Run in a goroutine, so a stop request (a signal, the service
// manager) can cancel it and wait for it to return.
type runner struct {
	cancel   context.CancelFunc
	stopping atomic.Bool   // stop was called: Run is expected to return
	done     chan struct{} // closed when Run has returned
	err      error         // what Run returned; read only after done is closed
}

func startRunner(p Program, args []string) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer cancel()
		r.err = p.Run(ctx, args)
	}()
	return r
}

// stop cancels Run's context and waits for Run to return, at most stopTimeout.
func (r *runner) stop() error {
	r.stopping.Store(true)
	r.cancel()
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-r.done:
		return nil
	case <-t.C:
		return fmt.Errorf("服务在 %v 内未能停止，强制退出", stopTimeout)
	}
}

// exitCode reports the error Run returned, if any, and returns the exit code. A
// context.Canceled returned after a stop request is a clean stop: many Run
// functions simply pass ctx.Err() on.
func exitCode(r *runner, report func(string), name string) int {
	<-r.done
	err := r.err
	if err == nil || (r.stopping.Load() && errors.Is(err, context.Canceled)) {
		return 0
	}
	report(fmt.Sprintf("%s：运行出错：%v", name, err))
	return 1
}

// program adapts a runner to service.Interface for runs under the service manager.
type program struct {
	p      Program
	args   []string
	r      *runner
	report func(string) // to the system log
	exit   func(int)    // os.Exit; tests replace it
}

func (m *program) Start(service.Service) error {
	m.r = startRunner(m.p, m.args)
	go func() {
		<-m.r.done
		if m.r.stopping.Load() {
			return // Stop is waiting for us and s.Run will return.
		}
		// Run ended although nobody asked it to. The service manager only notices
		// when the process exits, and only restarts it (Restart=on-failure, Windows
		// recovery actions) on a non-zero code, so exit here. Run has returned, so
		// its resources are already released.
		code := exitCode(m.r, m.report, m.p.Name)
		if code == 0 {
			m.report(fmt.Sprintf("%s：服务自行退出", m.p.Name))
		}
		m.exit(code)
	}()
	return nil
}

func (m *program) Stop(service.Service) error {
	return m.r.stop()
}

// managed runs p under the service manager (systemd, the Windows SCM).
func managed(p Program, args []string, stderr io.Writer) int {
	m := &program{p: p, args: args, exit: os.Exit}
	m.report = func(msg string) { fmt.Fprintln(stderr, msg) }
	s, err := service.New(m, serviceConfig(p, args))
	if err != nil {
		fmt.Fprintf(stderr, "%s：无法连接系统服务管理器：%v\n", p.Name, err)
		return 1
	}
	// On Windows stderr goes nowhere; the system log (event log, syslog) is where
	// an operator looks.
	if l, err := s.Logger(nil); err == nil {
		m.report = func(msg string) { l.Error(msg) }
	}
	if err := s.Run(); err != nil {
		m.report(fmt.Sprintf("%s：%v", p.Name, err))
		return 1
	}
	return exitCode(m.r, m.report, p.Name)
}

// serviceConfig is the OS service definition of p started with args.
func serviceConfig(p Program, args []string) *service.Config {
	c := &service.Config{
		Name:        p.Name,
		DisplayName: p.DisplayName,
		Description: p.Description,
		Arguments:   args,
		Option: service.KeyValue{
			"Restart":   "on-failure", // systemd; kardianos' default is "always"
			"OnFailure": "restart",    // Windows recovery action
		},
	}
	if runtime.GOOS == "linux" {
		// On Windows Dependencies are service names, on Linux unit lines.
		c.Dependencies = []string{"After=network-online.target", "Wants=network-online.target"}
	}
	return c
}

// noop is the service.Interface of a control command, which never runs the service.
type noop struct{}

func (noop) Start(service.Service) error { return nil }
func (noop) Stop(service.Service) error  { return nil }

// serviceCommand runs `prog service <verb> [flags...]`.
func serviceCommand(p Program, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "%s：service 缺少子命令，可用：%s\n", p.Name, strings.Join(serviceVerbs, "、"))
		usage(stderr, p.Name)
		return exitUsage
	}
	verb, rest := args[0], args[1:]
	if !isServiceVerb(verb) {
		fmt.Fprintf(stderr, "%s：未知的 service 子命令 %q，可用：%s\n", p.Name, verb, strings.Join(serviceVerbs, "、"))
		usage(stderr, p.Name)
		return exitUsage
	}
	if verb != "install" && len(rest) > 0 {
		fmt.Fprintf(stderr, "%s：service %s 不接受参数（启动参数在 service install 时指定）：%s\n",
			p.Name, verb, strings.Join(rest, " "))
		return exitUsage
	}
	rest, err := absPathArgs(rest)
	if err != nil {
		fmt.Fprintf(stderr, "%s：%v\n", p.Name, err)
		return exitUsage
	}
	s, err := service.New(noop{}, serviceConfig(p, rest))
	if err != nil {
		fmt.Fprintf(stderr, "%s：无法连接系统服务管理器：%v\n", p.Name, err)
		return 1
	}
	if verb == "status" {
		return printStatus(s, p.Name, stdout, stderr)
	}
	if err := control(s, verb); err != nil {
		fmt.Fprintf(stderr, "%s：%s失败：%v\n", p.Name, verbText[verb], err)
		return 1
	}
	switch verb {
	case "install":
		fmt.Fprintf(stdout, "%s：已安装系统服务，启动参数：%s\n", p.Name, strings.Join(rest, " "))
		fmt.Fprintf(stdout, "用 \"%s service start\" 启动服务。\n", p.Name)
	default:
		fmt.Fprintf(stdout, "%s：已%s\n", p.Name, verbText[verb])
	}
	return 0
}

var verbText = map[string]string{
	"install":   "安装服务",
	"uninstall": "卸载服务",
	"start":     "启动服务",
	"stop":      "停止服务",
	"restart":   "重启服务",
}

func isServiceVerb(verb string) bool {
	for _, v := range serviceVerbs {
		if v == verb {
			return true
		}
	}
	return false
}

func control(s service.Service, verb string) error {
	switch verb {
	case "install":
		return s.Install()
	case "uninstall":
		return s.Uninstall()
	case "start":
		return s.Start()
	case "stop":
		return s.Stop()
	case "restart":
		return s.Restart()
	}
	return fmt.Errorf("unknown verb %q", verb) // unreachable: checked by isServiceVerb
}

// printStatus prints the service's state in words hospital IT staff read, and
// returns an LSB-style exit code so scripts can test it.
func printStatus(s service.Service, name string, stdout, stderr io.Writer) int {
	st, err := s.Status()
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		fmt.Fprintf(stdout, "%s：未安装\n", name)
		return exitNotInstalled
	case err != nil:
		fmt.Fprintf(stderr, "%s：无法查询服务状态：%v\n", name, err)
		return 1
	case st == service.StatusRunning:
		fmt.Fprintf(stdout, "%s：运行中\n", name)
		return 0
	case st == service.StatusStopped:
		fmt.Fprintf(stdout, "%s：已停止\n", name)
		return exitStopped
	default:
		fmt.Fprintf(stdout, "%s：状态未知\n", name)
		return 1
	}
}

// absPathArgs returns args with the values of path flags made absolute: the
// service manager starts the binary in another working directory (/ or
// C:\Windows\System32), where a relative --data-dir would point somewhere else.
// A flag takes a path when its name is "config" or ends in "dir", "file" or
// "path" (--data-dir, --config, --log-file); its value is either after "=" or the
// next argument, as the flag package reads it.
func absPathArgs(args []string) ([]string, error) {
	out := make([]string, len(args))
	copy(out, args)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break // the rest are not flags
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		name, value, hasValue := strings.Cut(name, "=")
		if !isPathFlag(name) {
			continue
		}
		if !hasValue {
			if i+1 >= len(out) {
				return nil, fmt.Errorf("参数 %s 缺少路径", a)
			}
			i++
			value = out[i]
		}
		if value == "" {
			continue
		}
		abs, err := filepath.Abs(value)
		if err != nil {
			return nil, fmt.Errorf("参数 -%s 的路径 %q 无效：%v", name, value, err)
		}
		if hasValue {
			out[i] = a[:len(a)-len(value)] + abs
		} else {
			out[i] = abs
		}
	}
	return out, nil
}

func isPathFlag(name string) bool {
	name = strings.ToLower(name)
	return name == "config" ||
		strings.HasSuffix(name, "dir") ||
		strings.HasSuffix(name, "file") ||
		strings.HasSuffix(name, "path")
}
