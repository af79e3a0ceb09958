package sms_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"ihos"
	"ihos/internal/simulate"
	"ihos/sms"
	"ihos/sms/smssim"
)

func start(t *testing.T, cfg smssim.Config) *smssim.Sim {
	t.Helper()
	sim, err := smssim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func TestSendCode(t *testing.T) {
	sim := start(t, smssim.Config{AccessKeyID: "LTAIdemo", AccessKeySecret: "secret", SignName: "示例医院", TemplateCode: "SMS_100001", MinuteLimit: 1})
	c := &sms.Client{URL: sim.URL(), AccessKeyID: "LTAIdemo", AccessKeySecret: "secret", SignName: "示例医院", TemplateCode: "SMS_100001"}
	ctx := context.Background()
	if err := c.SendCode(ctx, "13800138000", "123456"); err != nil {
		t.Fatal(err)
	}
	if got := sim.LastCode("13800138000"); got != "123456" {
		t.Fatalf("code %q", got)
	}
	// The control endpoint shows it to tests over the socket.
	resp, err := http.Get(sim.URL() + "control/messages?phone=13800138000")
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Messages []smssim.Message }
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if len(out.Messages) != 1 || out.Messages[0].Text != "【示例医院】您的验证码为：123456，5分钟内有效，请勿泄露给他人。" {
		t.Fatalf("messages %+v", out.Messages)
	}
	// The platform's own per-minute limit.
	if err := c.SendCode(ctx, "13800138000", "654321"); ihos.ErrorCode(err) != ihos.EForbidden {
		t.Fatalf("second send within a minute: %v", err)
	}
	if err := c.SendCode(ctx, "2800138000", "123456"); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Fatalf("illegal number: %v", err)
	}
	bad := *c
	bad.AccessKeySecret = "wrong"
	if err := bad.SendCode(ctx, "13900139000", "123456"); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Fatalf("wrong secret: %v", err)
	}
	bad = *c
	bad.TemplateCode = "SMS_999"
	if err := bad.SendCode(ctx, "13900139000", "123456"); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Fatalf("unknown template: %v", err)
	}
	sim.SetMode(simulate.Mode{Name: simulate.Down})
	if err := c.SendCode(ctx, "13900139000", "123456"); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Fatalf("down: %v", err)
	}
	if n := len(sim.Messages("")); n != 1 {
		t.Fatalf("%d messages delivered, want 1", n)
	}
}

// The signature follows the documented algorithm: a fixed example computed
// independently stays stable.
func TestPercentEncode(t *testing.T) {
	for in, want := range map[string]string{"a b": "a%20b", "a*b": "a%2Ab", "a~b": "a~b", "{\"code\":\"1\"}": "%7B%22code%22%3A%221%22%7D", "/": "%2F"} {
		if got := sms.PercentEncode(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// A replayed request (same SignatureNonce) and a stale one are refused, as
// the platform does.
func TestReplayAndStaleTimestamp(t *testing.T) {
	sim := start(t, smssim.Config{AccessKeyID: "k", AccessKeySecret: "s"})
	post := func(ts time.Time, nonce string) sms.Answer {
		v := url.Values{"Action": {sms.Action}, "Version": {sms.Version}, "Format": {"JSON"}, "AccessKeyId": {"k"},
			"SignatureMethod": {sms.SigMethod}, "SignatureVersion": {sms.SigVer}, "SignatureNonce": {nonce},
			"Timestamp": {ts.UTC().Format("2006-01-02T15:04:05Z")}, "PhoneNumbers": {"13800138000"}, "SignName": {"示例医院"},
			"TemplateCode": {"SMS_1"}, "TemplateParam": {`{"code":"123456"}`}}
		v.Set("Signature", sms.Sign("s", "POST", v))
		resp, err := http.PostForm(sim.URL(), v)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a sms.Answer
		json.NewDecoder(resp.Body).Decode(&a)
		return a
	}
	if a := post(time.Now(), "n1"); a.Code != "OK" {
		t.Fatalf("first: %+v", a)
	}
	if a := post(time.Now(), "n1"); a.Code != "SignatureNonceUsed" {
		t.Fatalf("replay: %+v", a)
	}
	if a := post(time.Now().Add(-20*time.Minute), "n2"); a.Code != "InvalidTimeStamp.Expired" {
		t.Fatalf("stale: %+v", a)
	}
}
