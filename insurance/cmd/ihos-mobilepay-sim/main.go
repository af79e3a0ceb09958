// Command ihos-mobilepay-sim runs the insurance mobile payment centre
// simulator (package ihos/insurance/mobile/mobilesim): 6201/6202/6301/6203/
// 6401 in the SM4/SM2 envelope, 6302 notifies, channel authorisation
// (payAuthNo) for the HIS simulator's demo patients, and a control API.
//
//	ihos-mobilepay-sim -http 127.0.0.1:8098 -credentials demo-credentials.json \
//	    -org-key-file var/mobilepay-org-key.pem -notify-url http://127.0.0.1:8080/...
//
// Every start makes new demo secrets: appId, appSecret, the centre's SM2 key
// and the hospital's SM2 key (none is ever in the repository). The hospital's
// private key is written as PKCS#8 PEM, mode 0600, to -org-key-file (default:
// mobilepay-org-key.pem next to the credentials file); the rest goes into the
// credentials file under "mobilepay": {"url", "app_id", "app_secret",
// "org_codg", "centre_pub_pem", "org_key_file"}, other keys kept.
//
// Once the listener accepts connections it prints one JSON line to stdout,
// {"url": "http://host:port"}; logs go to stderr as JSON. SIGINT or SIGTERM
// stops it cleanly.
package main

import (
	"context"
	"crypto/rand"
	"encoding/pem"
	"flag"
	"io"
	"os"
	"path/filepath"

	"github.com/emmansun/gmsm/smx509"

	"ihos/certs"
	"ihos/insurance/mobile/mobilesim"
	"ihos/internal/simulate"
)

func main() { simulate.Main(run) }

// alnum returns n random upper-case letters and digits.
func alnum(n int) string {
	const set = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = set[int(b[i])%len(set)]
	}
	return string(b)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ihos-mobilepay-sim", flag.ContinueOnError)
	httpAddr := fs.String("http", "127.0.0.1:8098", "HTTP listen address (the centre and /control)")
	creds := fs.String("credentials", "", `JSON file to record the connection in, under "mobilepay"; other keys are kept`)
	keyFile := fs.String("org-key-file", "", "where to write the hospital's SM2 private key (PEM, mode 0600); default next to -credentials")
	orgCodg := fs.String("org-codg", "H11010500123", "the hospital's institution code (orgCodg)")
	notifyURL := fs.String("notify-url", "", "the hospital's 6302 notify URL (also settable by POST /control/settings)")
	ratio := fs.Int("fund-ratio", mobilesim.DefaultFundRatioPct, "the fund's share of a bill, percent")
	log, code := simulate.Parse(fs, args, stderr)
	if log == nil {
		return code
	}
	if *keyFile == "" && *creds != "" {
		*keyFile = filepath.Join(filepath.Dir(*creds), "mobilepay-org-key.pem")
	}

	orgKey, err := certs.GenerateSM2Key()
	if err != nil {
		log.Error("generate key", "err", err)
		return 1
	}
	centreKey, err := certs.GenerateSM2Key()
	if err != nil {
		log.Error("generate key", "err", err)
		return 1
	}
	appID, appSecret := "1G"+alnum(30), alnum(32)
	sim, err := mobilesim.Start(ctx, mobilesim.Config{HTTPAddr: *httpAddr, AppID: appID, AppSecret: appSecret,
		OrgCodg: *orgCodg, OrgPub: &orgKey.PublicKey, Key: centreKey, NotifyURL: *notifyURL, FundRatioPct: *ratio, Logger: log})
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	if *keyFile != "" {
		pemKey, err := certs.MarshalPrivateKeyPEM(orgKey)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(*keyFile), 0o700)
		}
		if err == nil {
			err = os.WriteFile(*keyFile+".tmp", pemKey, 0o600)
		}
		if err == nil {
			err = os.Rename(*keyFile+".tmp", *keyFile)
		}
		if err != nil {
			log.Error("write org key", "err", err)
			sim.Close()
			return 1
		}
	} else {
		log.Warn("no -org-key-file or -credentials: the hospital's key is not saved, nobody can call this centre")
	}
	der, err := smx509.MarshalPKIXPublicKey(sim.PublicKey())
	if err == nil {
		entry := map[string]string{
			"url": sim.URL(), "app_id": appID, "app_secret": appSecret, "org_codg": *orgCodg,
			"centre_pub_pem": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
			"org_key_file":   *keyFile,
		}
		err = simulate.Ready(stdout, *creds, "mobilepay", entry, map[string]string{"url": sim.URL()})
	}
	if err != nil {
		log.Error("write credentials file", "err", err)
		sim.Close()
		return 1
	}
	return simulate.Stop(ctx, log, sim.Close)
}
