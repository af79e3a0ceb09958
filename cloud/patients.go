package cloud

import (
	"context"
	"database/sql"
	"net/http"
	"time"

	"ihos/accounts"
	"ihos/his"
	"ihos/idverify"
	"ihos/internal/node"
	"ihos/sms"
	"ihos/sync"
)

// PatientConfig is what the patient accounts need from outside: the SMS
// platform that sends login codes and the identity-verification service
// (实名认证). Without a url the matching step answers "暂时无法…" and the
// rest of the cloud runs. make run's simulators write these values under
// "sms" and "idverify" in the credentials file.
type PatientConfig struct {
	SMS      SMSConfig      `json:"sms"`
	IDVerify IDVerifyConfig `json:"idverify"`
	// SecureCookies marks the patient session cookie Secure (HTTPS).
	SecureCookies bool `json:"secure_cookies" env:"IHOS_PATIENT_SECURE_COOKIES"`
}

// SMSConfig is how the cloud reaches the SMS platform (package sms).
type SMSConfig struct {
	URL             string `json:"url" env:"IHOS_SMS_URL"`
	AccessKeyID     string `json:"access_key_id" env:"IHOS_SMS_ACCESS_KEY_ID"`
	AccessKeySecret string `json:"access_key_secret" env:"IHOS_SMS_ACCESS_KEY_SECRET"`
	SignName        string `json:"sign_name" env:"IHOS_SMS_SIGN_NAME"`
	TemplateCode    string `json:"template_code" env:"IHOS_SMS_TEMPLATE_CODE"`
}

// IDVerifyConfig is how the cloud reaches the identity-verification service
// (package idverify).
type IDVerifyConfig struct {
	URL     string `json:"url" env:"IHOS_IDVERIFY_URL"`
	AppCode string `json:"appcode" env:"IHOS_IDVERIFY_APPCODE"`
}

// startPatients wires the patient accounts and their API (/api/patient/*).
// The people they create are patients rows, replicated to their hospital;
// linking to the HIS goes to the hospital's appliance over the sync RPC.
func startPatients(cfg Config, n *node.Node, a *App, mux *http.ServeMux) {
	s := accounts.New(n.DB, n.Sealer)
	pc := cfg.Patients
	if pc.SMS.URL != "" {
		s.SMS = &sms.Client{URL: pc.SMS.URL, AccessKeyID: pc.SMS.AccessKeyID, AccessKeySecret: pc.SMS.AccessKeySecret,
			SignName: pc.SMS.SignName, TemplateCode: pc.SMS.TemplateCode, HTTP: &http.Client{Timeout: 10 * time.Second}}
	}
	if pc.IDVerify.URL != "" {
		s.IDs = &idverify.Client{URL: pc.IDVerify.URL, AppCode: pc.IDVerify.AppCode, HTTP: &http.Client{Timeout: 10 * time.Second}}
	}
	s.SecureCookie = pc.SecureCookies
	s.Hospital = a.Hospitals.Known
	s.Capture = func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
		return a.Replica.Capture(ctx, tx, "", refs...)
	}
	s.Committed = a.Link.Kick
	s.LinkPatient = func(ctx context.Context, hospital string, req his.LinkRequest) (his.PatientLink, error) {
		var out his.PatientLink
		err := a.Link.Call(ctx, hospital, his.RPCLinkPatient, req, &out)
		return out, err
	}
	s.Routes(mux)
	a.Patients = s
}
