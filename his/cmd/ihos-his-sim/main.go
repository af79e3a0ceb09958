// Command ihos-his-sim runs the HIS simulator (package ihos/his/hissim): the
// hospital's HIS as docs/his-interface.md profiles it, over MLLP and HTTP, with
// demo patients, catalogues and results.
//
//	ihos-his-sim -data ./his-sim -mllp 127.0.0.1:2575 -http 127.0.0.1:8095 -results-to 127.0.0.1:2576
//
// Once both listeners accept connections it prints one JSON line to stdout,
// {"mllp":"host:port","http":"http://host:port"}; logs go to stderr as JSON.
// SIGINT or SIGTERM stops it cleanly.
package main

import (
	"context"
	"flag"
	"io"
	"time"

	"ihos/his/hissim"
	"ihos/internal/simulate"
)

func main() { simulate.Main(run) }

// run runs the simulator until ctx ends (a signal) and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ihos-his-sim", flag.ContinueOnError)
	data := fs.String("data", "his-sim-data", "data directory (his-sim.db is created and seeded there on first start)")
	mllpAddr := fs.String("mllp", "127.0.0.1:2575", "MLLP listen address")
	httpAddr := fs.String("http", "127.0.0.1:8095", "HTTP listen address (/his/api and /control)")
	resultsTo := fs.String("results-to", "", "MLLP address ORU^R01 results are pushed to (the appliance's HIS listener); empty: keep them for GET /his/api/results")
	delay := fs.Duration("result-delay", 5*time.Second, "time from a lab or exam order to its result")
	creds := fs.String("credentials", "", `JSON file to record the addresses in, under "his" (make run's demo-credentials.json); other keys are kept`)
	log, code := simulate.Parse(fs, args, stderr)
	if log == nil {
		return code
	}
	if *delay == 0 {
		*delay = -1 // the flag's 0 means at once; the Config's 0 means the default
	}

	sim, err := hissim.Start(ctx, hissim.Config{
		DataDir: *data, MLLPAddr: *mllpAddr, HTTPAddr: *httpAddr,
		ResultsTo: *resultsTo, ResultDelay: *delay, Logger: log,
	})
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	addrs := map[string]string{"mllp": sim.MLLPAddr(), "http": sim.HTTPURL()}
	if err := simulate.Ready(stdout, *creds, "his", addrs, addrs); err != nil {
		log.Error("write credentials file", "err", err)
		sim.Close()
		return 1
	}
	return simulate.Stop(ctx, log, sim.Close)
}
