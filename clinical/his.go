package clinical

import (
	"context"
	"database/sql"
	"errors"

	"ihos"
	"ihos/his"
	"ihos/internal/sqldb"
)

// Parties are who an HIS order is about and from.
type Parties struct {
	PatientID, DoctorID, DepartmentID string
	What                              string // the document, in the refusal: "处方", "申请单"
}

// OrderRequest is the head of the HIS order of a document: the patient's HIS
// record (refused when the patient has none: the HIS cannot take the order),
// and the patient's name, the doctor's job number and the department's code
// for the HIS's display.
func OrderRequest(ctx context.Context, db *sqldb.DB, p Parties) (his.OrderRequest, error) {
	var req his.OrderRequest
	err := db.QueryRowContext(ctx, `SELECT his_patient_id FROM patient_links WHERE patient_id = ? AND status = 'linked' AND deleted_at IS NULL`, p.PatientID).Scan(&req.Patient.HISID)
	if errors.Is(err, sql.ErrNoRows) {
		// A family member's HIS record counts only once the hospital confirmed
		// the link (linked), not while it awaits review: an order on a
		// mismatched record would reach another person's chart.
		err = db.QueryRowContext(ctx, `SELECT his_patient_id FROM patient_members WHERE patient_id = ? AND his_patient_id <> '' AND link_status = 'linked' AND deleted_at IS NULL ORDER BY created_at LIMIT 1`,
			p.PatientID).Scan(&req.Patient.HISID)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return req, ihos.Errorf(ihos.EConflict, "患者尚未关联医院 HIS 档案，%s无法发送至医院", p.What)
	}
	if err != nil {
		return req, ihos.Internal(err)
	}
	// Names and codes are for the HIS's display; a missing row leaves them empty.
	_ = db.QueryRowContext(ctx, `SELECT name FROM patients WHERE id = ?`, p.PatientID).Scan(&req.Patient.Name)
	_ = db.QueryRowContext(ctx, `SELECT job_no, name FROM staff WHERE id = ?`, p.DoctorID).Scan(&req.DoctorCode, &req.DoctorName)
	_ = db.QueryRowContext(ctx, `SELECT code, name FROM departments WHERE id = ?`, p.DepartmentID).Scan(&req.DepartmentCode, &req.DepartmentName)
	return req, nil
}
