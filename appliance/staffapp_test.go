package appliance_test

import (
	"context"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"ihos"
)

// The first demo start grants the demo doctor and pharmacist app access and
// writes their logins, with the demo patient's phone and the doctor's
// e-signature PIN, to the credentials file that `make run` prints.
func TestDemoAppLogins(t *testing.T) {
	dir := t.TempDir()
	in := startAppliance(t, filepath.Join(dir, "data"), filepath.Join(dir, "creds.json"))
	for key, jobNo := range map[string]string{"doctor": "D1001", "pharmacist": "P1031"} {
		c := in.creds[key]
		if len(c.Username) != 11 || len(c.Password) < 10 {
			t.Fatalf("%s login %+v", key, c)
		}
		var hash string
		var enabled int
		err := in.app.Node.DB.QueryRowContext(context.Background(), `SELECT l.password_hash, l.enabled FROM staff_app_logins l
			JOIN staff s ON s.id = l.staff_id WHERE s.job_no = ?`, jobNo).Scan(&hash, &enabled)
		if err != nil || enabled != 1 || bcrypt.CompareHashAndPassword([]byte(hash), []byte(c.Password)) != nil {
			t.Fatalf("%s: app access %v enabled=%d, password matches the hash: %v", key, err, enabled, bcrypt.CompareHashAndPassword([]byte(hash), []byte(c.Password)))
		}
	}
	// The demo doctor signs: a certificate on the first start, its PIN in
	// the credentials file, and signing with it works (a wrong PIN does not).
	pin := in.creds["doctor"].PIN
	if len(pin) != 8 || in.creds["pharmacist"].PIN != "" {
		t.Fatalf("PINs: doctor %q, pharmacist %q", pin, in.creds["pharmacist"].PIN)
	}
	var doctorID string
	in.app.Node.DB.QueryRow(`SELECT id FROM staff WHERE job_no = 'D1001'`).Scan(&doctorID)
	doc := []byte(`{"type":"prescription","id":"x"}`)
	if _, err := in.app.ESign.Sign(context.Background(), doctorID, pin, doc); err != nil {
		t.Fatalf("signing with the demo PIN: %v", err)
	}
	if _, err := in.app.ESign.Sign(context.Background(), doctorID, "12345678"+pin, doc); ihos.ErrorCode(err) != ihos.EForbidden {
		t.Fatalf("signing with a wrong PIN: %v", err)
	}
	if in.creds["patient"].Username != "13800138000" {
		t.Fatalf("patient login %+v", in.creds["patient"])
	}
}
