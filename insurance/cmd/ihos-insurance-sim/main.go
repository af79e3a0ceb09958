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
	"flag"
	"io"

	"ihos/insurance"
	"ihos/insurance/inssim"
	"ihos/internal/simulate"
)

func main() { simulate.Main(run) }

// run runs the simulator until ctx ends (a signal) and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ihos-insurance-sim", flag.ContinueOnError)
	httpAddr := fs.String("http", "127.0.0.1:8096", "HTTP listen address (the platform and /control)")
	ttl := fs.Duration("token-ttl", inssim.DefaultTokenTTL, "how long an issued e-voucher token is valid")
	creds := fs.String("credentials", "", `JSON file to record the address in, under "insurance" (make run's demo-credentials.json); other keys are kept`)
	log, code := simulate.Parse(fs, args, stderr)
	if log == nil {
		return code
	}

	sim, err := inssim.Start(ctx, inssim.Config{HTTPAddr: *httpAddr, TokenTTL: *ttl, Logger: log})
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	line := map[string]string{"url": sim.URL(), "service": sim.URL() + insurance.ServicePath}
	if err := simulate.Ready(stdout, *creds, "insurance", map[string]string{"url": sim.URL()}, line); err != nil {
		log.Error("write credentials file", "err", err)
		sim.Close()
		return 1
	}
	return simulate.Stop(ctx, log, sim.Close)
}
