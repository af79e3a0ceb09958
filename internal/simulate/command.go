package simulate

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"ihos/internal/config"
)

// Main runs a simulator command's run function until SIGINT or SIGTERM
// ends its context, and exits with the code run returns. run takes the
// arguments and writers as parameters so that tests can call it.
func Main(run func(ctx context.Context, args []string, stdout, stderr io.Writer) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Parse parses args into fs, with the -log-level flag every simulator
// command has added, and returns the JSON logger to stderr at that level.
// A nil logger means the command is to end at once with code: 0 after
// -help, 2 after a bad flag (explained on stderr).
func Parse(fs *flag.FlagSet, args []string, stderr io.Writer) (log *slog.Logger, code int) {
	fs.SetOutput(stderr)
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil, 0
		}
		return nil, 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "%s: -log-level: %v\n", fs.Name(), err)
		return nil, 2
	}
	return slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv})), 0
}

// Ready announces a started simulator: when path is not "", it records
// entry under key in that credentials file (make run's
// demo-credentials.json; other keys are kept), then prints line to stdout
// as the one JSON line that scripts and tests wait for. The error is the
// credentials file's; nothing is printed then.
func Ready(stdout io.Writer, path, key string, entry, line any) error {
	if path != "" {
		if err := config.MergeJSON(path, map[string]any{key: entry}); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(line)
	fmt.Fprintln(stdout, string(b))
	return nil
}

// Stop waits until ctx ends (a signal), then closes the simulator, giving
// it 10 s; it returns the command's exit code.
func Stop(ctx context.Context, log *slog.Logger, close func() error) int {
	<-ctx.Done()
	log.Info("stopping")
	done := make(chan error, 1)
	go func() { done <- close() }()
	select {
	case err := <-done:
		if err != nil {
			log.Error("close failed", "err", err)
			return 1
		}
	case <-time.After(10 * time.Second):
		log.Error("close timed out")
		return 1
	}
	return 0
}
