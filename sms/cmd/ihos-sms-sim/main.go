// Command ihos-sms-sim runs the SMS platform simulator (package
// ihos/sms/smssim): the SendSms service at / and its control API.
//
//	ihos-sms-sim -http 127.0.0.1:8093 -demo -credentials demo-credentials.json
//
// With -demo every verification code is logged (stderr, JSON), so a person
// can sign in with the demo; tests read codes from GET /control/messages.
// With -credentials the url, access key, sign name and template code are
// written there under "sms"; other keys are kept.
//
// Once the listener accepts connections it prints one JSON line to stdout,
// {"url":"http://host:port/","access_key_id":…,"access_key_secret":…,
// "sign_name":…,"template_code":…}. SIGINT or SIGTERM stops it cleanly.
package main

import (
	"context"
	"flag"
	"io"

	"ihos/internal/simulate"
	"ihos/sms/smssim"
)

func main() { simulate.Main(run) }

// credentials is the "sms" entry of the credentials file and the ready line.
type credentials struct {
	URL             string `json:"url"`
	AccessKeyID     string `json:"access_key_id"`
	AccessKeySecret string `json:"access_key_secret"`
	SignName        string `json:"sign_name"`
	TemplateCode    string `json:"template_code"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ihos-sms-sim", flag.ContinueOnError)
	httpAddr := fs.String("http", "127.0.0.1:8093", "HTTP listen address (service and /control)")
	keyID := fs.String("access-key-id", "LTAIdemo", "the AccessKeyId the simulator accepts")
	secret := fs.String("access-key-secret", "ihos-demo-sms-secret", "the AccessKeySecret requests are signed with")
	sign := fs.String("sign-name", "示例医院", "the approved sign name (短信签名)")
	tmpl := fs.String("template-code", "SMS_100001", "the approved verification-code template")
	limit := fs.Int("minute-limit", 1, "messages one number may receive a minute (0: no limit)")
	demo := fs.Bool("demo", false, "log every verification code")
	creds := fs.String("credentials", "", `JSON file to record the settings in, under "sms" (make run's demo-credentials.json); other keys are kept`)
	log, code := simulate.Parse(fs, args, stderr)
	if log == nil {
		return code
	}
	sim, err := smssim.Start(ctx, smssim.Config{HTTPAddr: *httpAddr, AccessKeyID: *keyID, AccessKeySecret: *secret,
		SignName: *sign, TemplateCode: *tmpl, MinuteLimit: *limit, Demo: *demo, Logger: log})
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	c := credentials{URL: sim.URL(), AccessKeyID: *keyID, AccessKeySecret: *secret, SignName: *sign, TemplateCode: *tmpl}
	if err := simulate.Ready(stdout, *creds, "sms", c, c); err != nil {
		log.Error("write credentials file", "err", err)
		sim.Close()
		return 1
	}
	return simulate.Stop(ctx, log, sim.Close)
}
