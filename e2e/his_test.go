package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/his/hissim"
	"ihos/internal/node"
)

// callAppliance calls the appliance's API as its command-line tool does.
func (s *system) callAppliance(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	return callAsCLI(t, s.appURL, s.appliance.Node.Config.DataDir, method, path, body, out)
}

// callCloud calls the cloud's API as its command-line tool does.
func (s *system) callCloud(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	return callAsCLI(t, s.cloudURL, s.cloud.Node.Config.DataDir, method, path, body, out)
}

func callAsCLI(t *testing.T, base, dataDir, method, path string, body, out any) int {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(dataDir, node.CLITokenFile))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, base+path, bytes.NewReader(b))
	req.Header.Set(node.CLITokenHeader, strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// An order made through the appliance's API reaches the HIS simulator over
// HL7/MLLP; the simulator's result comes back to the appliance and appears in
// the cloud, as does the catalogue doctors order from.
func TestHISOrderResultReachesCloud(t *testing.T) {
	s := startWith(t, setup{hisSim: true})
	var refreshed map[string]any
	if code := s.callAppliance(t, "POST", "/api/his/catalog/refresh", nil, &refreshed); code != 200 {
		t.Fatalf("catalogue refresh: %d %v", code, refreshed)
	}
	count := func(q string, args ...any) int {
		var n int
		s.cloud.Node.DB.QueryRow(q, args...).Scan(&n)
		return n
	}
	eventually(t, 20*time.Second, "the catalogue in the cloud", func() bool {
		return count(`SELECT COUNT(*) FROM his_catalog WHERE hospital_id = 'h1' AND kind = 'LAB'`) >= 90 &&
			count(`SELECT COUNT(*) FROM his_catalog WHERE hospital_id = 'h1' AND kind = 'DRUG'`) >= 450
	})
	var lab string
	s.appliance.Node.DB.QueryRow(`SELECT code FROM his_catalog WHERE kind = 'LAB' ORDER BY code LIMIT 1`).Scan(&lab)
	p := hissim.DemoPatients[0]
	var placed struct {
		Orders []struct {
			ID string `json:"id"`
		} `json:"orders"`
	}
	code := s.callAppliance(t, "POST", "/api/his/orders", map[string]any{
		"kind": ihos.CatalogLab, "patient": map[string]string{"his_id": p.HISID, "name": p.Name},
		"department_code": "XNK", "department_name": "心血管内科", "doctor_code": "D1001", "doctor_name": "演示医生",
		"items": []map[string]string{{"code": lab}},
	}, &placed)
	if code != http.StatusCreated || len(placed.Orders) != 1 {
		t.Fatalf("place order: %d %+v", code, placed)
	}
	id := placed.Orders[0].ID
	took := eventually(t, 20*time.Second, "the result in the cloud", func() bool {
		return count(`SELECT COUNT(*) FROM his_results WHERE order_id = ? AND hospital_id = 'h1'`, id) == 1 &&
			count(`SELECT COUNT(*) FROM his_orders WHERE id = ? AND status = 'completed'`, id) == 1
	})
	t.Logf("order → HIS → result → cloud in %v (the simulator waits 300 ms before reporting)", took)
	if got := s.his.Received("OML^O21"); len(got) != 1 || got[0].PatientHISID != p.HISID {
		t.Fatalf("the simulator received %+v", got)
	}
	var st map[string]any
	if code := s.callAppliance(t, "GET", "/api/his/status", nil, &st); code != 200 || st["pending"].(float64) != 0 {
		t.Fatalf("status %d %v", code, st)
	}
}

// A patient who signs up in the cloud is linked to their HIS record through
// the appliance (the cloud asks over the sync RPC; the link replicates back),
// and the follow-up check runs against the HIS the same way.
func TestPatientLinkAndFollowUpFromCloud(t *testing.T) {
	s := startWith(t, setup{hisSim: true})
	p := hissim.DemoPatients[0]
	var created map[string]any
	if code := postJSON(t, s.cloudURL+"/api/public/patients", "", map[string]any{"hospital_id": "h1", "name": p.Name, "phone": "13800138000",
		"id_number": p.IDNumber}, &created); code != http.StatusCreated {
		t.Fatalf("sign-up: %d %v", code, created)
	}
	id := created["id"].(string)
	var link struct {
		HISPatientID string `json:"his_patient_id"`
		Status       string `json:"status"`
		Confidence   int    `json:"confidence"`
	}
	eventually(t, 10*time.Second, "the link (the appliance answers once connected)", func() bool {
		return s.callCloud(t, "POST", "/api/admin/patients/"+id+"/his-link", nil, &link) == http.StatusOK
	})
	if link.HISPatientID != p.HISID || link.Status != "linked" || link.Confidence != 100 {
		t.Fatalf("link %+v", link)
	}
	eventually(t, 5*time.Second, "the link replicated to the cloud", func() bool {
		var n int
		s.cloud.Node.DB.QueryRow(`SELECT COUNT(*) FROM patient_links WHERE patient_id = ? AND his_patient_id = ? AND hospital_id = 'h1'`, id, p.HISID).Scan(&n)
		return n == 1
	})
	var e struct {
		Eligible bool   `json:"eligible"`
		Reason   string `json:"reason"`
	}
	if code := s.callCloud(t, "GET", "/api/admin/patients/"+id+"/follow-up?codes=I10&days=180", nil, &e); code != http.StatusOK || !e.Eligible {
		t.Fatalf("follow-up: %d %+v", code, e)
	}
	t.Logf("follow-up: %s", e.Reason)
	if code := s.callCloud(t, "GET", "/api/admin/patients/"+id+"/follow-up?codes=J45&days=180", nil, &e); code != http.StatusOK || e.Eligible {
		t.Fatalf("follow-up for a condition never diagnosed: %d %+v", code, e)
	}
	// With the HIS down the cloud gets a clear "unavailable".
	s.his.SetMode(hissim.Mode{Name: "down"})
	var errBody map[string]any
	if code := s.callCloud(t, "GET", "/api/admin/patients/"+id+"/follow-up?codes=I10", nil, &errBody); code != http.StatusServiceUnavailable {
		t.Fatalf("follow-up with the HIS down: %d %v", code, errBody)
	}
}
