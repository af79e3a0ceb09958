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
// With -alg SM2 the demo merchant uses the channel's 国密 option: its API
// key is an SM2 key (-merchant-sm2-key, default merchant_sm2_key.pem next to
// -merchant-key), requests are signed WECHATPAY2-SM2-WITH-SM3, answers and
// notifies SM2 with SM3 and notifies encrypted AEAD_SM4_GCM. The RSA key
// is still made: wx.requestPayment takes only RSA pay signatures. The
// entry then also holds algorithm "SM2" and merchant_sm2_key, and
// serial_no, platform_cert_url and platform_serial are the SM2 ones.
//
// Once the listener accepts connections it prints one JSON line to stdout,
// {"url":"http://host:port","platform_cert_url":"…"}; logs go to stderr as
// JSON. SIGINT or SIGTERM stops it cleanly.
package main

import (
	"context"
	"crypto"
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

	"github.com/emmansun/gmsm/sm2"

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
	alg := fs.String("alg", "RSA", "the demo merchant's API algorithm: RSA (WECHATPAY2-SHA256-RSA2048) or SM2 (WECHATPAY2-SM2-WITH-SM3, 国密)")
	sm2KeyFile := fs.String("merchant-sm2-key", "", "with -alg SM2: the merchant's SM2 private key PEM file, loaded or generated; default merchant_sm2_key.pem next to -merchant-key")
	autoPay := fs.Duration("auto-pay", -1, "pay every new order this long after it is created (0: at once); negative: only when told (POST /control/pay)")
	log, code := simulate.Parse(fs, args, stderr)
	if log == nil {
		return code
	}

	*alg = strings.ToUpper(*alg)
	if *alg != "RSA" && *alg != "SM2" {
		fmt.Fprintf(stderr, "ihos-pay-sim: -alg must be RSA or SM2, not %q\n", *alg)
		return 2
	}
	if *alg == "SM2" && *sm2KeyFile == "" && *keyFile != "" {
		*sm2KeyFile = filepath.Join(filepath.Dir(*keyFile), "merchant_sm2_key.pem")
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
		sm2Key := ""
		if *alg == "SM2" {
			sm2Key = *sm2KeyFile
		}
		if entry, err = demoMerchant(sim, *keyFile, sm2Key, *mchid, *appid, *creds); err != nil {
			log.Error("demo merchant", "err", err)
			sim.Close()
			return 1
		}
		entry["url"], entry["platform_cert_url"], entry["platform_serial"] = sim.URL(), certURL, sim.PlatformSerial()
		if *alg == "SM2" {
			entry["platform_cert_url"], entry["platform_serial"] = sim.URL()+"/control/platform-sm2.pem", sim.PlatformSM2Serial()
		}
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

// demoMerchant loads or makes the merchant key pair(s) and the APIv3 key and
// registers the merchant; it returns the credentials entry without the
// simulator's addresses. With sm2KeyFile the merchant's API key is that SM2
// key; the RSA key is made anyway (it signs the JSAPI pay parameters). The
// APIv3 key is kept from an earlier credentials file so that a restarted
// simulator on the same -db and the platform service agree.
func demoMerchant(sim *paysim.Sim, keyFile, sm2KeyFile, mchid, appid, creds string) (map[string]string, error) {
	key, err := loadOrMakeKey(keyFile, func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) })
	if err != nil {
		return nil, err
	}
	if _, ok := key.(*rsa.PrivateKey); !ok {
		return nil, fmt.Errorf("%s: not an RSA key", keyFile)
	}
	apiKey := key
	if sm2KeyFile != "" {
		if apiKey, err = loadOrMakeKey(sm2KeyFile, func() (crypto.Signer, error) { return sm2.GenerateKey(rand.Reader) }); err != nil {
			return nil, err
		}
		if paychannel.SchemeOf(apiKey) != paychannel.AuthSchemeSM2 {
			return nil, fmt.Errorf("%s: not an SM2 key", sm2KeyFile)
		}
	}
	// The serial stands for the merchant certificate, which the demo does
	// not have: derive it from the public key so it is stable.
	h := sha256.Sum256(paychannel.MarshalPublicKeyPEM(apiKey.Public()))
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
	if err := sim.AddMerchant(paysim.Merchant{MchID: mchid, AppID: appid, SerialNo: serial, PublicKey: apiKey.Public(), APIv3Key: []byte(apiV3)}); err != nil {
		return nil, err
	}
	entry := map[string]string{"mchid": mchid, "appid": appid, "serial_no": serial, "merchant_key": abs, "apiv3_key": apiV3, "algorithm": "RSA"}
	if sm2KeyFile != "" {
		if entry["merchant_sm2_key"], err = filepath.Abs(sm2KeyFile); err != nil {
			return nil, err
		}
		entry["algorithm"] = "SM2"
	}
	return entry, nil
}

// loadOrMakeKey reads the private key in file, or makes one and writes it
// there (PEM, mode 0600).
func loadOrMakeKey(file string, generate func() (crypto.Signer, error)) (crypto.Signer, error) {
	b, err := os.ReadFile(file)
	switch {
	case err == nil:
		key, err := paychannel.ParsePrivateKeyPEM(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	key, err := generate()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, paychannel.MarshalPrivateKeyPEM(key), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}
