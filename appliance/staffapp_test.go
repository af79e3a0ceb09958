package appliance_test

import (
	"context"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// The first demo start grants the demo doctor and pharmacist app access and
// writes their logins, with the demo patient's phone, to the credentials
// file that `make run` prints.
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
	if in.creds["patient"].Username != "13800138000" {
		t.Fatalf("patient login %+v", in.creds["patient"])
	}
}
