package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"ihos/cloud"
	"ihos/his/hissim"
	"ihos/idverify"
	"ihos/idverify/idsim"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/sms"
	"ihos/sms/smssim"
)

// patientGet reads a patient API with a bearer token.
func patientGet(t *testing.T, url, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(out)
	return resp.StatusCode
}

// A patient signs up on the cloud with an SMS code (SMS platform simulator),
// verifies their real name (identity-verification simulator), adds a parent,
// and links both to their HIS records through the appliance (sync RPC to the
// HIS simulator). The people replicate to the hospital without their
// personal data; the links come back as patient_links.
func TestPatientAccountSignUpRealNameAndHISLink(t *testing.T) {
	t.Run("cloud=sqlite", func(t *testing.T) { testPatientAccount(t, setup{hisSim: true}) })
	t.Run("cloud=mysql", func(t *testing.T) { testPatientAccount(t, setup{hisSim: true, cloudDatabase: sqldbtest.MySQLDSN(t)}) })
}

func testPatientAccount(t *testing.T, o setup) {
	s := startWith(t, o)
	smsSim := patientSims(t, s.cloud)

	phone := "13812345678"
	if code := postJSON(t, s.cloudURL+"/api/patient/sms-code", "", map[string]string{"phone": phone}, nil); code != http.StatusNoContent {
		t.Fatalf("sms-code: %d", code)
	}
	var sess struct {
		Token string `json:"token"`
	}
	if code := postJSON(t, s.cloudURL+"/api/patient/login", "", map[string]string{"hospital_id": "h1", "phone": phone, "code": smsSim.LastCode(phone)}, &sess); code != http.StatusOK || sess.Token == "" {
		t.Fatalf("login: %d", code)
	}
	holder, parent := hissim.DemoPatients[0], hissim.DemoPatients[1]
	var self, par struct {
		ID           string `json:"id"`
		PatientID    string `json:"patient_id"`
		HISPatientID string `json:"his_patient_id"`
		LinkStatus   string `json:"link_status"`
	}
	var errBody map[string]any
	if code := postJSON(t, s.cloudURL+"/api/patient/realname", sess.Token, map[string]string{"name": holder.Name, "id_number": holder.IDNumber}, &self); code != http.StatusOK {
		t.Fatalf("real name: %d", code)
	}
	if code := postJSON(t, s.cloudURL+"/api/patient/members", sess.Token, map[string]string{"name": parent.Name, "id_number": parent.IDNumber, "relation": "parent"}, &par); code != http.StatusCreated {
		t.Fatalf("add parent: %d", code)
	}
	// The people reach the hospital's appliance, without phone or ID number.
	eventually(t, 10*time.Second, "the patients on the appliance", func() bool {
		var n int
		s.appliance.Node.DB.QueryRow(`SELECT COUNT(*) FROM patients WHERE id IN (?, ?) AND hospital_id = 'h1'`, self.PatientID, par.PatientID).Scan(&n)
		return n == 2
	})
	var phoneCol, idCol string
	s.appliance.Node.DB.QueryRow(`SELECT phone, id_number FROM patients WHERE id = ?`, self.PatientID).Scan(&phoneCol, &idCol)
	if phoneCol != "" || idCol != "" {
		t.Fatalf("personal data on the appliance: %q %q", phoneCol, idCol)
	}
	for _, m := range []*struct {
		ID           string `json:"id"`
		PatientID    string `json:"patient_id"`
		HISPatientID string `json:"his_patient_id"`
		LinkStatus   string `json:"link_status"`
	}{&self, &par} {
		eventually(t, 10*time.Second, "the HIS link (the appliance answers once connected)", func() bool {
			return postJSON(t, s.cloudURL+"/api/patient/members/"+m.ID+"/link-his", sess.Token, nil, m) == http.StatusOK
		})
	}
	if self.HISPatientID != holder.HISID || self.LinkStatus != "linked" || par.HISPatientID != parent.HISID || par.LinkStatus != "linked" {
		t.Fatalf("links %+v %+v", self, par)
	}
	eventually(t, 10*time.Second, "the links replicated to the cloud", func() bool {
		var n int
		s.cloud.Node.DB.QueryRow(`SELECT COUNT(*) FROM patient_links WHERE hospital_id = 'h1' AND status = 'linked' AND
			((patient_id = ? AND his_patient_id = ?) OR (patient_id = ? AND his_patient_id = ?))`, self.PatientID, holder.HISID, par.PatientID, parent.HISID).Scan(&n)
		return n == 2
	})
	var list struct {
		Members []struct {
			Relation     string `json:"relation"`
			HISPatientID string `json:"his_patient_id"`
		} `json:"members"`
	}
	if code := patientGet(t, s.cloudURL+"/api/patient/members", sess.Token, &list); code != http.StatusOK || len(list.Members) != 2 ||
		list.Members[0].Relation != "self" || list.Members[1].HISPatientID != parent.HISID {
		t.Fatalf("members: %d %+v", code, list)
	}
	// With the HIS down the patient gets a clear "unavailable".
	s.his.SetMode(hissim.Mode{Name: "down"})
	if code := postJSON(t, s.cloudURL+"/api/patient/members/"+par.ID+"/link-his", sess.Token, nil, &errBody); code != http.StatusServiceUnavailable {
		t.Fatalf("link with the HIS down: %d %v", code, errBody)
	}
}

// patientSims starts the SMS and identity-verification simulators for a
// test and gives the cloud's patient accounts (and through them the staff
// real-name check) their clients, and returns the SMS simulator, whose
// codes the test reads: the harness starts the cloud without
// these settings, so this must come before any patient request.
func patientSims(t *testing.T, c *cloud.App) *smssim.Sim {
	t.Helper()
	ctx := context.Background()
	smsSim, err := smssim.Start(ctx, smssim.Config{AccessKeyID: "k", AccessKeySecret: "s", SignName: "示例医院", TemplateCode: "SMS_1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smsSim.Close() })
	idSim, err := idsim.Start(ctx, idsim.Config{AppCode: "app"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idSim.Close() })
	c.Patients.SMS = &sms.Client{URL: smsSim.URL(), AccessKeyID: "k", AccessKeySecret: "s", SignName: "示例医院", TemplateCode: "SMS_1"}
	c.Patients.IDs = &idverify.Client{URL: idSim.URL(), AppCode: "app"}
	return smsSim
}
