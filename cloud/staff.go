package cloud

import (
	"context"
	"log/slog"
	"net/http"

	"ihos"
	"ihos/internal/node"
	"ihos/staffauth"
)

// startStaff wires the doctor and pharmacist app logins (/api/staff/*). App
// access is granted on the hospital's console and arrives as replicated
// staff_app_logins rows; the daily real-name codes go out through the
// patients' SMS platform.
func startStaff(cfg Config, n *node.Node, a *App, mux *http.ServeMux) {
	s := staffauth.New(n.DB, n.Sealer)
	if err := s.SealPhones(context.Background()); err != nil {
		slog.Error("staffauth: sealing login phones stored in clear text", "err", err)
	}
	s.SMS = patientSMS{a}
	s.SecureCookie = cfg.Patients.SecureCookies
	s.Routes(mux)
	a.Staff = s
}

// patientSMS sends through the SMS sender the patient accounts use, read at
// each send so the two never differ.
type patientSMS struct{ a *App }

func (p patientSMS) SendCode(ctx context.Context, phone, code string) error {
	if p.a.Patients == nil || p.a.Patients.SMS == nil {
		return ihos.Errorf(ihos.EUnavailable, "短信服务未配置，暂时无法发送验证码")
	}
	return p.a.Patients.SMS.SendCode(ctx, phone, code)
}
