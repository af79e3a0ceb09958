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
	token, err := os.ReadFile(filepath.Join(s.appliance.Node.Config.DataDir, node.CLITokenFile))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, s.appURL+path, bytes.NewReader(b))
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
