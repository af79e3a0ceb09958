package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/sqldb/sqldbtest"
)

// The hospital opens app access for a doctor on the console (开通互联网诊疗账号,
// an initial password shown once); the grant replicates to the cloud with
// the password's hash only; the doctor logs in on the cloud with phone and
// password, chooses a password, completes today's real-name check by SMS,
// and loses the session when the console disables them.
func TestStaffAppLogin(t *testing.T) {
	t.Run("cloud=sqlite", func(t *testing.T) { testStaffAppLogin(t, setup{}) })
	t.Run("cloud=mysql", func(t *testing.T) { testStaffAppLogin(t, setup{cloudDatabase: sqldbtest.MySQLDSN(t)}) })
}

func testStaffAppLogin(t *testing.T, o setup) {
	s := startWith(t, o)
	ctx := context.Background()
	smsSim := patientSims(t, s.cloud)

	depts, _ := s.appliance.Store.Resource("departments")
	dp, err := s.appliance.Store.List(adminCtx, depts, admin.Query{Filters: map[string]string{"code": "XNK"}})
	if err != nil || dp.Total != 1 {
		t.Fatalf("find XNK: %v", err)
	}
	staffRes, _ := s.appliance.Store.Resource("staff")
	phone := "13700001234"
	doc, err := s.appliance.Store.Create(adminCtx, staffRes, map[string]any{"institution_id": dp.Items[0]["institution_id"],
		"department_id": dp.Items[0]["id"], "job_no": "E2E001", "name": "测试医生", "kind": ihos.StaffDoctor, "title": "主治医师",
		"license_no": "110000000001", "practice_since": int64(2012), "phone": phone, "online": true,
		"id_number": "11010119800101001" + string(ihos.IDCheckDigit("11010119800101001"))})
	if err != nil {
		t.Fatal(err)
	}
	id := doc["id"].(string)

	var grant struct {
		Password string `json:"password"`
	}
	if code := s.callAppliance(t, "POST", "/api/admin/staff/"+id+"/app-access", nil, &grant); code != http.StatusOK || grant.Password == "" {
		t.Fatalf("grant: %d", code)
	}
	// Only the hash travels.
	var payloads int
	s.appliance.Node.DB.QueryRow(`SELECT (SELECT COUNT(*) FROM sync_outbox WHERE payload LIKE ?) + (SELECT COUNT(*) FROM sync_capture WHERE payload LIKE ?)`,
		"%"+grant.Password+"%", "%"+grant.Password+"%").Scan(&payloads)
	if payloads != 0 {
		t.Fatal("the initial password is in a sync payload")
	}

	var sess struct {
		Token string `json:"token"`
		Staff struct {
			Name       string `json:"name"`
			Department string `json:"department"`
			MustChange bool   `json:"must_change"`
		} `json:"staff"`
	}
	eventually(t, 10*time.Second, "the doctor logs in on the cloud", func() bool {
		return postJSON(t, s.cloudURL+"/api/staff/login", "", map[string]string{"phone": phone, "password": grant.Password}, &sess) == http.StatusOK
	})
	if sess.Staff.Name != "测试医生" || sess.Staff.Department == "" || !sess.Staff.MustChange {
		t.Fatalf("session: %+v", sess.Staff)
	}
	if code := postJSON(t, s.cloudURL+"/api/staff/password", sess.Token, map[string]string{"old_password": grant.Password, "new_password": "Doctor-pass-2026"}, nil); code != http.StatusNoContent {
		t.Fatalf("change password: %d", code)
	}
	st, err := s.cloud.Staff.Authorize(bearer(s.cloudURL, sess.Token))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cloud.Staff.RequireRealNameToday(ctx, st); err == nil {
		t.Fatal("visit allowed before the real-name check")
	}
	if code := postJSON(t, s.cloudURL+"/api/staff/realname/code", sess.Token, nil, nil); code != http.StatusNoContent {
		t.Fatalf("real-name code: %d", code)
	}
	if code := postJSON(t, s.cloudURL+"/api/staff/realname", sess.Token, map[string]string{"code": smsSim.LastCode(phone)}, nil); code != http.StatusOK {
		t.Fatalf("real-name: %d", code)
	}
	if err := s.cloud.Staff.RequireRealNameToday(ctx, st); err != nil {
		t.Fatal(err)
	}
	var me struct {
		Staff struct {
			RealNameToday bool `json:"realname_today"`
		} `json:"staff"`
	}
	if code := patientGet(t, s.cloudURL+"/api/staff/me", sess.Token, &me); code != http.StatusOK || !me.Staff.RealNameToday {
		t.Fatalf("me: %d %+v", code, me)
	}

	// Disabled on the console: the session ends once the change replicates.
	if _, err := s.appliance.Store.SetEnabled(adminCtx, staffRes, id, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the session ended on the cloud", func() bool {
		return patientGet(t, s.cloudURL+"/api/staff/me", sess.Token, &me) == http.StatusUnauthorized
	})
	if code := postJSON(t, s.cloudURL+"/api/staff/login", "", map[string]string{"phone": phone, "password": "Doctor-pass-2026"}, nil); code != http.StatusForbidden {
		t.Fatalf("login of a disabled doctor: %d", code)
	}
}

func bearer(base, token string) *http.Request {
	req, _ := http.NewRequest("GET", base+"/api/staff/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}
