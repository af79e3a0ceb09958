package cloud

import (
	"context"
	"database/sql"
	"net/http"

	"ihos/accounts"
	"ihos/billpay"
	"ihos/internal/web"
	"ihos/sync"
)

// startBillpay wires 诊间支付 (package billpay) on the payment service:
// the payer's API GET/POST /api/pay/bills, with the same access as
// /api/pay/orders, and the RPC the hospitals' kiosks create and follow their
// payments through. The fees are read from the hospital's HIS through its
// appliance; the items of each payment replicate to it, and its poster tells
// the HIS once the payment is paid.
func startBillpay(a *App, mux *http.ServeMux) error {
	bp := &billpay.Cloud{DB: a.Node.DB, Payments: a.Payments, HIS: billpay.LinkFees{Link: a.Link},
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			return a.Replica.Capture(ctx, tx, "", refs...) // "": each row goes to its own hospital
		},
		AfterCommit: a.Link.Kick, Known: a.Hospitals.Known}
	billRoutes(bp, mux, patientAuth{app: a, staff: a.Node.AuthorizeCLIOr})
	return bp.ServeRPC(a.Link)
}

// billRoutes registers the payer's bill API (package billpay, with
// patient sessions): a patient reads and pays only the fees of a HIS record
// linked to one of their account's members — their own by default — at
// their account's hospital, and always as a phone payment; staff and the
// command-line token with "payments.write" for any record.
//
//	GET  /api/pay/bills?hospital_id=&his_patient_id=  → billpay.Bill
//	POST /api/pay/bills  billpay.CreateRequest         → payments.PayResult
func billRoutes(bp *billpay.Cloud, mux *http.ServeMux, pa patientAuth) {
	handle := pa.guard(mux)
	handle("GET /api/pay/bills", "payments.write", func(ctx context.Context, p *accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		hosp, hisID := q.Get("hospital_id"), q.Get("his_patient_id")
		if p != nil {
			var err error
			if hosp, err = hospital(p, hosp); err != nil {
				return err
			}
			m, err := pa.hisMember(ctx, p, hisID)
			if err != nil {
				return err
			}
			hisID = m.HISPatientID
		}
		b, err := bp.Fees(ctx, hosp, hisID)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, b)
		return nil
	})
	handle("POST /api/pay/bills", "payments.write", func(ctx context.Context, p *accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		var req billpay.CreateRequest
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		if p != nil {
			var err error
			if req.HospitalID, err = hospital(p, req.HospitalID); err != nil {
				return err
			}
			m, err := pa.hisMember(ctx, p, req.HISPatientID)
			if err != nil {
				return err
			}
			if req.PatientID != "" && req.PatientID != m.PatientID {
				return errNotFamily
			}
			req.HISPatientID, req.PatientID, req.Source = m.HISPatientID, m.PatientID, billpay.SourcePhone
		}
		res, err := bp.Create(ctx, req)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, res)
		return nil
	})
}
