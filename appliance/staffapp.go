package appliance

import (
	"context"
	"crypto/rand"
	"database/sql"
	"ihos"
	"log/slog"
	"math/big"
	"net/http"
	"path/filepath"

	"ihos/internal/config"
	"ihos/staffauth"
	"ihos/sync"
)

// startStaffApp wires the console's 互联网诊疗账号 page and its API
// (开通互联网诊疗账号):
// the hospital grants a doctor or pharmacist access to the app on the cloud
// with an initial password shown once, or disables it. The grant is
// replicated to the cloud with the password's hash only.
func (a *App) startStaffApp(ctx context.Context, cfg Config, mux *http.ServeMux) {
	hospital := cfg.HospitalID
	s := staffauth.New(a.Node.DB, a.Node.Sealer)
	if err := s.SealPhones(ctx); err != nil {
		slog.ErrorContext(ctx, "staffauth: sealing login phones stored in clear text", "err", err)
	}
	s.Hospital = hospital
	s.Capture = func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
		return a.Replica.Capture(ctx, tx, hospital, refs...)
	}
	s.Committed = a.Link.Kick
	s.AdminRoutes(mux, a.Node.AuthorizeCLIOr)
	a.Console.AddPage(s.Page(a.Node.Auth))
	if a.seededDemo {
		a.demoAppLogins(ctx, cfg, s)
	}
}

// Demo app logins: the first cardiology doctor and the first pharmacist of
// the demo hospital (seedDemo), and a phone number for the demo patient.
const (
	demoDoctorJobNo     = "D1001"
	demoPharmacistJobNo = "P1031"
	demoPatientPhone    = "13800138000"
)

// demoAppLogins grants the demo doctor and pharmacist access to the app on
// the first start, as the hospital would on the console, and writes their
// logins into the credentials file with the demo patient's phone number:
// `make run` prints them. The issued passwords must be changed at the first
// login; the patient logs in with an SMS code, which the SMS simulator logs.
func (a *App) demoAppLogins(ctx context.Context, cfg Config, s *staffauth.Service) {
	ctx = ihos.WithActor(ctx, ihos.System)
	out := map[string]any{"patient": map[string]string{"username": demoPatientPhone, "note": "用手机号和短信验证码登录，验证码见短信模拟器日志 sms-sim.log"}}
	for key, jobNo := range map[string]string{"doctor": demoDoctorJobNo, "pharmacist": demoPharmacistJobNo} {
		var id, sealed, name string
		if err := a.Node.DB.QueryRowContext(ctx, `SELECT id, phone, name FROM staff WHERE job_no = ? AND deleted_at IS NULL`, jobNo).Scan(&id, &sealed, &name); err != nil {
			slog.Warn("demo app login", "job_no", jobNo, "err", err)
			continue
		}
		phone, err := a.Node.Sealer.Open(sealed)
		if err != nil {
			slog.Warn("demo app login", "job_no", jobNo, "err", err)
			continue
		}
		password, err := s.Grant(ctx, id)
		if err != nil {
			slog.Warn("demo app login", "job_no", jobNo, "err", err)
			continue
		}
		login := map[string]string{"username": phone, "password": password, "note": "首次登录需修改密码"}
		if key == "doctor" {
			// The doctor signs EMRs and prescriptions: an e-signature
			// certificate with a generated signing PIN, as the hospital
			// issues one on the console's signing page.
			pin := newPIN()
			if _, err := a.ESign.Enroll(ctx, id, name, pin); err != nil {
				slog.Warn("demo e-signature", "job_no", jobNo, "err", err)
			} else {
				login["pin"] = pin
				login["note"] = "首次登录需修改密码；pin 为电子签名密码（签署病历和处方时输入）"
			}
		}
		out[key] = login
	}
	path := cfg.Credentials
	if path == "" {
		path = filepath.Join(a.Node.Config.DataDir, "initial-credentials.json")
	}
	if err := config.MergeJSON(path, out); err != nil {
		slog.Warn("demo app logins", "err", err)
	}
}

// newPIN returns a random 8-digit signing PIN (esign wants 6 to 64
// characters; digits, as a PIN pad on a phone types them).
func newPIN() string {
	b := make([]byte, 8)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(10))
		b[i] = byte('0' + n.Int64())
	}
	return string(b)
}
