package appliance

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"

	"ihos"
	"ihos/his"
	"ihos/sync"
)

// emrHIS hands each signed online EMR (package emr, written and signed on
// the cloud, replicated here) to the hospital's HIS as an MDM^T02 document.
// It follows the replica (sync.Replica.Follow): the HIS message is queued in
// the transaction that applies the signed row, so the document reaches the
// HIS outbox exactly when the record arrives, and a crash between the two can
// neither lose it nor send it twice. The inbox keeps a redelivered envelope
// from reaching the follower at all.
type emrHIS struct {
	// ready is closed once svc is set: the link starts (and may apply
	// changes) before the HIS service does. A signed record arriving in
	// between fails its apply, which the link retries a second later: it is
	// neither passed over nor waited for inside the transaction (the HIS
	// service's own start may need the database).
	ready chan struct{}
	svc   *his.Service
}

func newEMRHIS() *emrHIS { return &emrHIS{ready: make(chan struct{})} }

// start gives the follower the HIS service once it runs.
func (e *emrHIS) start(svc *his.Service) {
	e.svc = svc
	close(e.ready)
}

// emrDocument is what the HIS receives as the document (OBX-5): the signed
// canonical JSON exactly as signed (a string, so its bytes are kept for
// verification), its SM3 digest and the detached PKCS#7 signature in base64.
type emrDocument struct {
	Document  string `json:"document"`
	DocSM3    string `json:"doc_sm3"`
	Signature string `json:"signature"`
	SignedAt  string `json:"signed_at,omitempty"`
}

// follow is the replica's follower. Only changes from the cloud can carry
// emr_records (the cloud owns it); a resync snapshot repeats rows already
// sent, so it sends nothing.
func (e *emrHIS) follow(ctx context.Context, tx *sql.Tx, envs []*sync.Envelope) error {
	for _, env := range envs {
		if env.Side != sync.Cloud || env.Snapshot {
			continue
		}
		for _, row := range env.Rows {
			if row.Entity != "emr_records" || emrValue(row, "status") != "signed" {
				continue
			}
			select {
			case <-e.ready:
			default:
				return errors.New("emr: the HIS link is not started yet; the signed record is applied again shortly")
			}
			if err := e.send(ctx, tx, row); err != nil {
				return err
			}
		}
	}
	return nil
}

// send queues the MDM^T02 of one signed version.
func (e *emrHIS) send(ctx context.Context, tx *sql.Tx, row sync.RowChange) error {
	db := e.svc.DB
	patientID := emrValue(row, "patient_id")
	var hisID string
	// The same rule as an order (clinical.OrderRequest): the patient's own
	// confirmed link, else a family member's confirmed HIS record.
	err := db.TxQueryRow(ctx, tx, `SELECT his_patient_id FROM patient_links WHERE patient_id = ? AND status = 'linked' AND deleted_at IS NULL`, patientID).Scan(&hisID)
	if errors.Is(err, sql.ErrNoRows) {
		err = db.TxQueryRow(ctx, tx, `SELECT his_patient_id FROM patient_members WHERE patient_id = ? AND his_patient_id <> '' AND link_status = 'linked' AND deleted_at IS NULL ORDER BY created_at LIMIT 1`,
			patientID).Scan(&hisID)
	}
	if errors.Is(err, sql.ErrNoRows) {
		// The HIS cannot file a document without its patient; the record
		// stays readable on the platform.
		slog.Warn("emr: signed record not sent to the HIS: the patient has no HIS record linked", "record", row.ID, "patient", patientID)
		return nil
	}
	if err != nil {
		return err
	}
	// A signed version is never changed, so it is sent once; this guards
	// against the cloud capturing the same signed row again.
	var n int
	if err := db.TxQueryRow(ctx, tx, `SELECT COUNT(*) FROM his_outbox WHERE lane = ? AND event = ? AND payload LIKE ?`,
		ihos.Truncate(hisID, 64), ihos.HISEMR, `%"document_no":"`+row.ID+`"%`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	doc, err := json.Marshal(emrDocument{Document: emrValue(row, "signed_doc"), DocSM3: emrValue(row, "doc_sm3"),
		Signature: emrValue(row, "signature"), SignedAt: emrValue(row, "signed_at")})
	if err != nil {
		return err
	}
	d := ihos.HISMessageData{Patient: ihos.HISPatient{HISID: hisID}, DocumentNo: row.ID, Document: doc,
		DoctorName: emrValue(row, "doctor_name")}
	// Names and codes are for the HIS's display; a missing row leaves them empty.
	if err := db.TxQueryRow(ctx, tx, `SELECT name FROM patients WHERE id = ?`, patientID).Scan(&d.Patient.Name); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if err := db.TxQueryRow(ctx, tx, `SELECT job_no FROM staff WHERE id = ?`, emrValue(row, "doctor_id")).Scan(&d.DoctorCode); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if err := db.TxQueryRow(ctx, tx, `SELECT code, name FROM departments WHERE id = ?`, emrValue(row, "department_id")).Scan(&d.DepartmentCode, &d.DepartmentName); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	// The queue's poll (every 2 s) sends it after the commit.
	_, err = e.svc.Send(ctx, tx, ihos.HISEMR, d)
	return err
}

// emrValue is a replicated column's text ("" for null or absent).
func emrValue(row sync.RowChange, col string) string {
	if v := row.Values[col]; v != nil {
		return *v
	}
	return ""
}
