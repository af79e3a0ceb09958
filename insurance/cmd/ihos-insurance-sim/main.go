// Command ihos-insurance-sim runs the national medical insurance platform
// simulator (package ihos/insurance/inssim): the JSON envelope at
// /fsi/api/rsfComIfsService/callService, transaction 1101, outpatient
// settlement (2201–2208, 2601 冲正, 3201 对总账), e-voucher tokens for the
// HIS simulator's demo patients, and a control API (modes, settlements).
//
//	ihos-insurance-sim -http 127.0.0.1:8096 -credentials demo-credentials.json
//
// Once the listener accepts connections it prints one JSON line to stdout,
// {"url":"http://host:port","service":"http://host:port/fsi/..."}; logs go
// to stderr as JSON. SIGINT or SIGTERM stops it cleanly.
package main

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

	"ihos/insurance"
	"ihos/insurance/inssim"
	"ihos/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the simulator until ctx ends (a signal) and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ihos-insurance-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	httpAddr := fs.String("http", "127.0.0.1:8096", "HTTP listen address (the platform and /control)")
	ttl := fs.Duration("token-ttl", inssim.DefaultTokenTTL, "how long an issued e-voucher token is valid")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	creds := fs.String("credentials", "", `JSON file to record the address in, under "insurance" (make run's demo-credentials.json); other keys are kept`)
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(stderr, "ihos-insurance-sim: -log-level:", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv}))

	sim, err := inssim.Start(ctx, inssim.Config{HTTPAddr: *httpAddr, TokenTTL: *ttl, Logger: log})
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	if *creds != "" {
		if err := config.MergeJSON(*creds, map[string]any{"insurance": map[string]string{"url": sim.URL()}}); err != nil {
			log.Error("write credentials file", "err", err)
			sim.Close()
			return 1
		}
	}
	line, _ := json.Marshal(map[string]string{"url": sim.URL(), "service": sim.URL() + insurance.ServicePath})
	fmt.Fprintln(stdout, string(line))

	<-ctx.Done()
	log.Info("stopping")
	shutdown := make(chan error, 1)
	go func() { shutdown <- sim.Close() }()
	select {
	case err := <-shutdown:
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
