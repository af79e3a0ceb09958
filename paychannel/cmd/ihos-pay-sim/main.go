// Command ihos-pay-sim runs the online payment channel simulator (package
// ihos/paychannel/paysim): the WeChat-Pay-v3-like merchant API, notifies,
// refunds, daily bills and a control API.
//
//	ihos-pay-sim -http 127.0.0.1:8097 -db ./pay-sim/pay-sim.db \
//	    -credentials demo-credentials.json -merchant-key ./pay-sim/merchant_key.pem
//
// For the demo it also plays the merchant's side of the onboarding: with
// -merchant-key it loads the merchant private key from that file, or
// generates one and writes it there (PEM, mode 0600), registers the public
// key, and records under "paychannel" in the credentials file what the
// platform's payment service needs: url, mchid, appid, serial_no,
// merchant_key (the file's path), apiv3_key, platform_cert_url and
// platform_serial. Keys are generated on the machine, never committed.
//
// Once the listener accepts connections it prints one JSON line to stdout,
// {"url":"http://host:port","platform_cert_url":"…"}; logs go to stderr as
// JSON. SIGINT or SIGTERM stops it cleanly.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"ihos/internal/simulate"
	"ihos/paychannel"
	"ihos/paychannel/paysim"
)

func main() { simulate.Main(run) }

// run runs the simulator until ctx ends (a signal) and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ihos-pay-sim", flag.ContinueOnError)
	httpAddr := fs.String("http", "127.0.0.1:8097", "HTTP listen address (the merchant API /v3 and /control)")
	db := fs.String("db", "", "SQLite file that keeps the platform key, merchants, orders and refunds across restarts; empty: memory only")
	creds := fs.String("credentials", "", `JSON file to record the merchant's settings in, under "paychannel" (make run's demo-credentials.json); other keys are kept`)
	keyFile := fs.String("merchant-key", "", "merchant private key PEM file: loaded, or generated and written (0600) when missing; empty: no demo merchant")
	mchid := fs.String("mchid", "1900000109", "demo merchant number")
	appid := fs.String("appid", "wxd678efh567hg6787", "demo merchant's app id")
	autoPay := fs.Duration("auto-pay", -1, "pay every new order this long after it is created (0: at once); negative: only when told (POST /control/pay)")
	log, code := simulate.Parse(fs, args, stderr)
	if log == nil {
		return code
	}

	sim, err := paysim.Start(ctx, paysim.Config{HTTPAddr: *httpAddr, DBPath: *db, Logger: log})
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	if *autoPay >= 0 {
		if err := sim.SetMode(paysim.Mode{AutoPay: true, AutoPayDelayMS: autoPay.Milliseconds()}); err != nil {
			log.Error("set mode", "err", err)
			sim.Close()
			return 1
		}
	}
	certURL := sim.URL() + "/control/platform.pem"
	credsPath, entry := "", map[string]string(nil) // recorded only with a demo merchant
	if *keyFile != "" {
		if entry, err = demoMerchant(sim, *keyFile, *mchid, *appid, *creds); err != nil {
			log.Error("demo merchant", "err", err)
			sim.Close()
			return 1
		}
		entry["url"], entry["platform_cert_url"], entry["platform_serial"] = sim.URL(), certURL, sim.PlatformSerial()
		credsPath = *creds
		log.Info("demo merchant registered", "mchid", *mchid, "appid", *appid, "serial_no", entry["serial_no"], "merchant_key", *keyFile)
	}
	line := map[string]string{"url": sim.URL(), "platform_cert_url": certURL}
	if err := simulate.Ready(stdout, credsPath, "paychannel", entry, line); err != nil {
		log.Error("write credentials file", "err", err)
		sim.Close()
		return 1
	}
	return simulate.Stop(ctx, log, sim.Close)
}

// demoMerchant loads or makes the merchant key pair and the APIv3 key and
// registers the merchant; it returns the credentials entry without the
// simulator's addresses. The APIv3 key is kept from an earlier credentials
// file so that a restarted simulator on the same -db and the platform
// service agree.
func demoMerchant(sim *paysim.Sim, keyFile, mchid, appid, creds string) (map[string]string, error) {
	var key *rsa.PrivateKey
	b, err := os.ReadFile(keyFile)
	switch {
	case err == nil:
		if key, err = paychannel.ParsePrivateKeyPEM(b); err != nil {
			return nil, fmt.Errorf("%s: %w", keyFile, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(keyFile, paychannel.MarshalPrivateKeyPEM(key), 0o600); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	// The serial stands for the merchant certificate, which the demo does
	// not have: derive it from the public key so it is stable.
	h := sha256.Sum256(paychannel.MarshalPublicKeyPEM(&key.PublicKey))
	serial := strings.ToUpper(hex.EncodeToString(h[:20]))

	apiV3 := ""
	if creds != "" {
		if b, err := os.ReadFile(creds); err == nil {
			var all map[string]json.RawMessage
			if json.Unmarshal(b, &all) == nil {
				var old map[string]string
				if json.Unmarshal(all["paychannel"], &old) == nil && len(old["apiv3_key"]) == 32 && old["mchid"] == mchid {
					apiV3 = old["apiv3_key"]
				}
			}
		}
	}
	if apiV3 == "" {
		var r [16]byte
		rand.Read(r[:])
		apiV3 = hex.EncodeToString(r[:]) // 32 ASCII characters, as the merchant platform asks for
	}
	abs, err := filepath.Abs(keyFile)
	if err != nil {
		return nil, err
	}
	if err := sim.AddMerchant(paysim.Merchant{MchID: mchid, AppID: appid, SerialNo: serial, PublicKey: &key.PublicKey, APIv3Key: []byte(apiV3)}); err != nil {
		return nil, err
	}
	return map[string]string{"mchid": mchid, "appid": appid, "serial_no": serial, "merchant_key": abs, "apiv3_key": apiV3}, nil
}
