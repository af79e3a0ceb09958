package appliance_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/appliance"
	"ihos/his/hissim"
	"ihos/internal/node"
	"ihos/sync"
)

// TestSignedEMRToHIS: a signed online EMR the cloud replicates to the
// appliance reaches the HIS simulator as one MDM^T02 with the record's id as
// the document number and the patient's HIS id; the same envelope again, the
// same version in another envelope, a draft, a snapshot of a signed record and a signed record of a patient with
// no HIS link send nothing.
func TestSignedEMRToHIS(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sim, err := hissim.Start(ctx, hissim.Config{DataDir: filepath.Join(dir, "his"), ResultDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	a, err := appliance.New(ctx, appliance.Config{
		Config: node.Config{DataDir: filepath.Join(dir, "data"), HTTP: "127.0.0.1:0", LogLevel: "warn"}, Demo: true,
		Credentials: filepath.Join(dir, "creds.json"), HIS: appliance.HISConfig{MLLP: sim.MLLPAddr()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	db := a.Node.DB
	hospital := appliance.DefaultHospitalID

	// A cloud patient linked to the HIS's 张三, and one with no link.
	hisPatient := hissim.DemoPatients[0]
	linked, unlinked := ihos.NewID(), ihos.NewID()
	now := ihos.FormatTime(time.Now())
	if _, err := db.ExecContext(ctx, `INSERT INTO patient_links (id, hospital_id, patient_id, his_patient_id, method, confidence, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, 'id_number', 100, 'linked', ?, ?)`, ihos.NewID(), hospital, linked, hisPatient.HISID, now, now); err != nil {
		t.Fatal(err)
	}

	// record is an emr_records row as the cloud captures it.
	record := func(patient, status string) sync.RowChange {
		id := ihos.NewID()
		vals := map[string]string{"hospital_id": hospital, "visit_id": ihos.NewID(), "revision": "1", "patient_id": patient,
			"doctor_id": ihos.NewID(), "doctor_name": "演示医生", "department_id": ihos.NewID(), "status": status,
			"chief_complaint": "头晕三天", "present_illness": "三天前出现头晕", "past_history": "高血压病史", "allergy_history": "无",
			"physical_exam": "血压 150/95 mmHg", "diagnoses": `[{"code":"I10","name":"原发性高血压"}]`, "advice": "继续降压治疗",
			"revise_reason": "", "doc_sm3": "", "version": "2", "created_at": now, "updated_at": now}
		if status == "signed" {
			vals["signed_doc"] = `{"record_id":"` + id + `","chief_complaint":"头晕三天"}`
			vals["doc_sm3"] = strings.Repeat("ab", 32)
			vals["signature"] = base64.StdEncoding.EncodeToString([]byte("pkcs7-" + id))
			vals["signed_at"] = now
		}
		rc := sync.RowChange{Entity: "emr_records", ID: id, Version: 2, Values: map[string]*string{}}
		for k, v := range vals {
			rc.Values[k] = &v
		}
		return rc
	}
	envelope := func(snapshot bool, rows ...sync.RowChange) *sync.Envelope {
		return &sync.Envelope{ChangeID: ihos.NewID(), Hospital: hospital, Origin: "cloud-test", Side: sync.Cloud, Seq: 1,
			HLC: sync.HLC(time.Now().UnixMilli() << 16), At: time.Now().UTC(), Rows: rows, Snapshot: snapshot}
	}
	apply := func(env *sync.Envelope) bool {
		t.Helper()
		if err := a.Replica.Check(hospital, env); err != nil {
			t.Fatal(err)
		}
		applied, err := a.Replica.ApplyBatch(ctx, hospital, []*sync.Envelope{env})
		if err != nil {
			t.Fatal(err)
		}
		return applied[0]
	}
	queued := func() int {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM his_outbox WHERE event = ?`, ihos.HISEMR).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	signed := record(linked, "signed")
	env := envelope(false, signed)
	if !apply(env) {
		t.Fatal("the signed record was not applied")
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(sim.Received("MDM^T02")) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	got := sim.Received("MDM^T02")
	if len(got) != 1 || got[0].PatientHISID != hisPatient.HISID || got[0].AckCode != "AA" {
		t.Fatalf("the HIS received %+v", got)
	}
	var req string
	if err := db.QueryRowContext(ctx, `SELECT request FROM his_messages WHERE type = 'MDM^T02'`).Scan(&req); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(req, "TXA|1|EMR|") || !strings.Contains(req, "|"+signed.ID+"|") {
		t.Errorf("the MDM^T02 does not carry the record id %s as its document number:\n%s", signed.ID, req)
	}
	var payload string
	if err := db.QueryRowContext(ctx, `SELECT payload FROM his_outbox WHERE event = ?`, ihos.HISEMR).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	var m ihos.HISMessage
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Document  string `json:"document"`
		DocSM3    string `json:"doc_sm3"`
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal(m.Data.Document, &doc); err != nil {
		t.Fatalf("document %q: %v", m.Data.Document, err)
	}
	if m.Data.DocumentNo != signed.ID || doc.Document != *signed.Values["signed_doc"] || doc.Signature != *signed.Values["signature"] ||
		doc.DocSM3 != *signed.Values["doc_sm3"] {
		t.Errorf("queued document %s: %+v", m.Data.DocumentNo, doc)
	}

	// The link redelivers the same envelope: the inbox drops it.
	if apply(env) {
		t.Error("a redelivered envelope was applied again")
	}
	// The cloud capturing the same signed version again (a new change id)
	// does not send it twice.
	if !apply(envelope(false, signed)) {
		t.Fatal("the second capture was not applied")
	}
	// A draft, a snapshot of another signed record (a resync) and a signed
	// record of a patient without an HIS record send nothing.
	if !apply(envelope(false, record(linked, "draft"))) || !apply(envelope(true, record(linked, "signed"))) ||
		!apply(envelope(false, record(unlinked, "signed"))) {
		t.Fatal("a change was not applied")
	}
	if n := queued(); n != 1 {
		t.Errorf("%d EMR messages queued, want 1", n)
	}
	time.Sleep(2500 * time.Millisecond) // past the queue's poll
	if got := sim.Received("MDM^T02"); len(got) != 1 {
		t.Errorf("the HIS received %d MDM^T02, want 1: %+v", len(got), got)
	}
	var records int
	db.QueryRowContext(ctx, `SELECT COUNT(*) FROM emr_records`).Scan(&records)
	if records != 4 {
		t.Errorf("%d emr_records replicated, want 4", records)
	}
}
