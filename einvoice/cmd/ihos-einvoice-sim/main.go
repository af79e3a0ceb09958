// Command ihos-einvoice-sim runs the finance e-invoice platform simulator
// (package ihos/einvoice/einvsim): the signed services at /api/medical/,
// the check page /check, bill pictures /bills/… and a control API.
//
//	ihos-einvoice-sim -http 127.0.0.1:8099 -credentials demo-credentials.json
//
// The signing key: -key when given; otherwise the key already recorded
// under "einvoice" in the credentials file (so restarts keep it); otherwise
// a new random key. With -credentials the address, appid and key are
// written there under "einvoice" ({"url", "appid", "key"}; url is the
// einvoice.Client.BaseURL); other keys are kept. The key is never logged.
//
// Once the listener accepts connections it prints one JSON line to stdout,
// {"url":"http://host:port","service":"http://host:port/api/medical/","appid":"..."}
// — with "key" added only when there is no credentials file to find it in.
// Logs go to stderr as JSON. SIGINT or SIGTERM stops it cleanly.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"ihos/einvoice/einvsim"
	"ihos/internal/simulate"
)

func main() { simulate.Main(run) }

// credentials is the "einvoice" entry of the credentials file.
type credentials struct {
	URL   string `json:"url"`
	AppID string `json:"appid"`
	Key   string `json:"key"`
}

// recordedKey returns the key recorded for appid in the credentials file,
// "" when there is none.
func recordedKey(path, appid string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return "", fmt.Errorf("%s is not a JSON object: %w", path, err)
	}
	var c credentials
	if raw, ok := all["einvoice"]; ok {
		if err := json.Unmarshal(raw, &c); err != nil {
			return "", fmt.Errorf("%s: einvoice: %w", path, err)
		}
	}
	if c.AppID != appid {
		return "", nil
	}
	return c.Key, nil
}

// run runs the simulator until ctx ends (a signal) and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ihos-einvoice-sim", flag.ContinueOnError)
	httpAddr := fs.String("http", "127.0.0.1:8099", "HTTP listen address (services, check page and /control)")
	appid := fs.String("appid", "IHOSDEMO", "the appid the simulator accepts")
	key := fs.String("key", "", "signing key; default: the one in -credentials, else a new random key")
	publicURL := fs.String("public-url", "", "address patients open the check page at (QR codes, pictureNetUrl); default the listener's")
	payee := fs.String("payee", "示范医院", "issuing unit (收款单位) shown on bills")
	creds := fs.String("credentials", "", `JSON file to record url, appid and key in, under "einvoice" (make run's demo-credentials.json); other keys are kept`)
	log, code := simulate.Parse(fs, args, stderr)
	if log == nil {
		return code
	}

	k := *key
	if k == "" && *creds != "" {
		var err error
		if k, err = recordedKey(*creds, *appid); err != nil {
			log.Error("read credentials file", "err", err)
			return 1
		}
		if k != "" {
			log.Info("using the key recorded in the credentials file", "path", *creds)
		}
	}
	if k == "" {
		var b [16]byte
		rand.Read(b[:])
		k = hex.EncodeToString(b[:])
		log.Info("generated a new signing key")
	}

	sim, err := einvsim.Start(ctx, einvsim.Config{HTTPAddr: *httpAddr, AppID: *appid, Key: k,
		PublicURL: *publicURL, Payee: *payee, Logger: log})
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	line := map[string]string{"url": sim.URL(), "service": sim.ServiceURL(), "appid": sim.AppID()}
	if *creds == "" {
		line["key"] = k // nowhere else to find it
	}
	c := credentials{URL: sim.ServiceURL(), AppID: sim.AppID(), Key: k}
	if err := simulate.Ready(stdout, *creds, "einvoice", c, line); err != nil {
		log.Error("write credentials file", "err", err)
		sim.Close()
		return 1
	}
	return simulate.Stop(ctx, log, sim.Close)
}
