// Command ihos-idverify-sim runs the identity-verification (实名认证)
// simulator (package ihos/idverify/idsim): POST /idcard/verify and its
// control API. Its list holds the HIS simulator's demo patients.
//
//	ihos-idverify-sim -http 127.0.0.1:8094 -credentials demo-credentials.json
//
// With -credentials the url and appcode are written there under
// "idverify"; other keys are kept. Once the listener accepts connections it
// prints one JSON line to stdout, {"url":"http://host:port","appcode":…}.
// SIGINT or SIGTERM stops it cleanly.
package main

import (
	"context"
	"flag"
	"io"

	"ihos/idverify/idsim"
	"ihos/internal/simulate"
)

func main() { simulate.Main(run) }

// credentials is the "idverify" entry of the credentials file and the ready line.
type credentials struct {
	URL     string `json:"url"`
	AppCode string `json:"appcode"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ihos-idverify-sim", flag.ContinueOnError)
	httpAddr := fs.String("http", "127.0.0.1:8094", "HTTP listen address (service and /control)")
	appcode := fs.String("appcode", "ihos-demo-appcode", "the APPCODE the simulator accepts")
	creds := fs.String("credentials", "", `JSON file to record url and appcode in, under "idverify"; other keys are kept`)
	log, code := simulate.Parse(fs, args, stderr)
	if log == nil {
		return code
	}
	sim, err := idsim.Start(ctx, idsim.Config{HTTPAddr: *httpAddr, AppCode: *appcode, Logger: log})
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	c := credentials{URL: sim.URL(), AppCode: *appcode}
	if err := simulate.Ready(stdout, *creds, "idverify", c, c); err != nil {
		log.Error("write credentials file", "err", err)
		sim.Close()
		return 1
	}
	return simulate.Stop(ctx, log, sim.Close)
}
