package cloud

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strings"

	"ihos"
	"ihos/accounts"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/prescriptions"
	"ihos/staffauth"
	"ihos/sync"
)

// ActingStaffHeader names the staff member (staff id) a prescription request
// acts for when it comes with the command-line token or a console staff
// session holding prescriptions.read / .write (tools, tests, system
// administrators).
//
// Doctors and pharmacists use their app sessions (package staffauth): a
// doctor writes, signs and submits, a pharmacist reviews, each as
// themselves. A patient session only reads their family's prescriptions
// (patientVisible). The rules themselves (attending doctor, pharmacist,
// statuses) are enforced by package prescriptions on the staff id, whatever
// the transport.
const ActingStaffHeader = "X-IHOS-Acting-Staff"

// patientVisible are the statuses a patient sees: a prescription the
// pharmacist approved and what follows (paid, sent to the pharmacy). Drafts,
// signed and under-review ones are the doctor's work in progress, and a
// rejection is between the pharmacist and the doctor, who corrects it with
// a new version: the patient sees that version once approved, never the
// rejected one.
var patientVisible = map[string]bool{prescriptions.StatusApproved: true, prescriptions.StatusPaid: true, prescriptions.StatusSentToHIS: true}

// startPrescriptions serves the prescription API (package prescriptions) on
// the visits of a.Visits: start it after startVisits and startPayments. The
// signer (the doctor's key on the appliance, cloud/signer.go) and the HIS
// (the pharmacy order) are reached over the sync RPC. Its worker (running
// until ctx ends) marks a prescription paid once its payment is paid and
// sends it to the HIS until the hospital acknowledges.
func startPrescriptions(ctx context.Context, n *node.Node, a *App, mux *http.ServeMux) {
	a.Prescriptions = &prescriptions.Service{
		DB:     n.DB,
		Visits: a.Visits,
		Signer: remoteSigner{db: n.DB, link: a.Link},
		HIS:    remoteHIS{link: a.Link},
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			return a.Replica.Capture(ctx, tx, "", refs...) // "": each prescription goes to its own hospital
		},
		AfterCommit: a.Link.Kick,
	}
	if _, none := a.Payments.Channel.(noChannel); !none {
		svc := a.Prescriptions
		svc.Payments = a.Payments
		// As for bookings: the worker polls, and is woken after every
		// payment commit so a paid prescription goes to the HIS at once.
		after := a.Payments.AfterCommit
		a.Payments.AfterCommit = func() {
			if after != nil {
				after()
			}
			svc.Kick()
		}
	}
	go a.Prescriptions.Run(ctx)
	PrescriptionRoutes(a.Prescriptions, mux, n.AuthorizeCLIOr, a)
}

// actingStaff is the staff id the request acts for.
func actingStaff(r *http.Request) (string, error) {
	id := strings.TrimSpace(r.Header.Get(ActingStaffHeader))
	if id == "" || len(id) > 36 {
		return "", ihos.Errorf(ihos.EUnauthorized, "请求须在 %s 中注明操作的医务人员", ActingStaffHeader)
	}
	return id, nil
}

// clinicalAuth authorises the routes of the clinical documents
// (prescriptions here, records and exam orders in cloud/emr.go): the app
// sessions of app (may be nil) first, else the staff/CLI check with the
// acting-staff header. Which staff member may do what to which document is
// the document package's rule, on the staff id; this only says who asks.
type clinicalAuth struct {
	app   *App
	staff web.Authorizer
}

// kindRefusals answer a staff session of the wrong kind.
var kindRefusals = map[string]error{
	ihos.StaffDoctor:     ihos.Errorf(ihos.EForbidden, "只有接诊医生可以开具、签名和提交处方"),
	ihos.StaffPharmacist: ihos.Errorf(ihos.EForbidden, "只有本院在岗药师可以审核处方"),
}

// actingFunc is a staff member's action: by is the staff id it acts as,
// hospital their hospital ("" when a tool names a staff member the cloud
// does not know).
type actingFunc func(ctx context.Context, by, hospital string, w http.ResponseWriter, r *http.Request) error

// acting wraps the action of a staff member of kind (refused, also to a
// patient, with refusal); perm is what a console session or the CLI needs.
// A doctor acts only after today's real-name check, as they accept visits.
func (x clinicalAuth) acting(kind, perm string, refusal error, fn actingFunc) http.Handler {
	return web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, st, p, err := appSession(x.app, r)
		switch {
		case err != nil:
			return err
		case st != nil:
			if st.Kind != kind {
				return refusal
			}
			if kind == ihos.StaffDoctor {
				if err := x.app.Staff.RequireRealNameToday(ctx, *st); err != nil {
					return err
				}
			}
			return fn(ctx, st.ID, st.HospitalID, w, r)
		case p != nil:
			return refusal
		}
		if ctx, err = x.staff(r, perm); err != nil {
			return err
		}
		by, err := actingStaff(r)
		if err != nil {
			return err
		}
		var hospital string
		if x.app != nil {
			err := x.app.Node.DB.QueryRowContext(ctx, `SELECT hospital_id FROM staff WHERE id = ? AND deleted_at IS NULL`, by).Scan(&hospital)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return ihos.Internal(err)
			}
		}
		return fn(ctx, by, hospital, w, r)
	})
}

// clinicalViewer is who reads: a staff app session, a patient, or neither
// (the console or the CLI, who read everything).
type clinicalViewer struct {
	staff   *staffauth.Staff
	patient *accounts.Patient
}

// reading wraps a read; perm is what a console session or the CLI needs.
// A patient session is refused with patients when it is not nil (routes a
// patient may not use).
func (x clinicalAuth) reading(perm string, patients error, fn func(ctx context.Context, v clinicalViewer, w http.ResponseWriter, r *http.Request) error) http.Handler {
	return web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, st, p, err := appSession(x.app, r)
		switch {
		case err != nil:
			return err
		case st != nil:
			return fn(ctx, clinicalViewer{staff: st}, w, r)
		case p != nil:
			if patients != nil {
				return patients
			}
			return fn(ctx, clinicalViewer{patient: p}, w, r)
		}
		if ctx, err = x.staff(r, perm); err != nil {
			return err
		}
		return fn(ctx, clinicalViewer{}, w, r)
	})
}

// replyJSON answers a write with what it returned, or its error.
func replyJSON(w http.ResponseWriter, status int, v any, err error) error {
	if err != nil {
		return err
	}
	web.WriteJSON(w, status, v)
	return nil
}

// pinRequest is the body of a signing request: the PIN that unlocks the
// doctor's key.
type pinRequest struct {
	PIN string `json:"pin"`
}

// reasonRequest is the body of a rejection or a revision.
type reasonRequest struct {
	Reason string `json:"reason"`
}

// sees reports whether v may read p: a doctor their own prescriptions, a
// pharmacist their hospital's, a patient their family's in the
// patientVisible statuses. Others' are answered as not found.
func (x clinicalAuth) sees(ctx context.Context, v clinicalViewer, p *prescriptions.Prescription) (bool, error) {
	switch {
	case v.staff != nil && v.staff.Kind == ihos.StaffDoctor:
		return p.DoctorID == v.staff.ID, nil
	case v.staff != nil:
		return p.HospitalID == v.staff.HospitalID, nil
	case v.patient != nil:
		if !patientVisible[p.Status] {
			return false, nil
		}
		return patientAuth{app: x.app}.owns(ctx, v.patient, p.PatientID)
	}
	return true, nil
}

// PrescriptionRoutes registers the prescription API. There is no delete:
// prescriptions are clinical records (DESIGN.md §7), corrected by new
// versions (POST …/revise). app holds the doctor, pharmacist and patient
// sessions (nil: the staff/CLI check alone).
func PrescriptionRoutes(svc *prescriptions.Service, mux *http.ServeMux, authorize web.Authorizer, app *App) {
	x := clinicalAuth{app: app, staff: authorize}
	handle := web.Guard(mux, authorize)
	doctor := func(pattern string, fn actingFunc) {
		mux.Handle(pattern, x.acting(ihos.StaffDoctor, "prescriptions.write", kindRefusals[ihos.StaffDoctor], fn))
	}
	pharmacist := func(pattern, perm string, fn actingFunc) {
		mux.Handle(pattern, x.acting(ihos.StaffPharmacist, perm, kindRefusals[ihos.StaffPharmacist], fn))
	}
	noPatients := ihos.Errorf(ihos.EForbidden, "患者无权查看处方审核记录")
	// one answers a read of one prescription.
	one := func(ctx context.Context, v clinicalViewer, w http.ResponseWriter, p *prescriptions.Prescription, err error) error {
		if err != nil {
			return err
		}
		ok, err := x.sees(ctx, v, p)
		if err != nil {
			return err
		}
		if !ok {
			return ihos.Errorf(ihos.ENotFound, "处方不存在")
		}
		web.WriteJSON(w, http.StatusOK, p)
		return nil
	}
	doctor("POST /api/prescriptions", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		var d prescriptions.Draft
		if err := web.DecodeJSON(r, &d); err != nil {
			return err
		}
		p, err := svc.Create(ctx, by, d)
		return replyJSON(w, http.StatusCreated, p, err)
	})
	doctor("PUT /api/prescriptions/{id}", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		var d prescriptions.Draft
		if err := web.DecodeJSON(r, &d); err != nil {
			return err
		}
		p, err := svc.Update(ctx, by, r.PathValue("id"), d)
		return replyJSON(w, http.StatusOK, p, err)
	})
	doctor("POST /api/prescriptions/{id}/revise", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		var d prescriptions.Draft
		if err := web.DecodeJSON(r, &d); err != nil {
			return err
		}
		p, err := svc.Revise(ctx, by, r.PathValue("id"), d)
		return replyJSON(w, http.StatusCreated, p, err)
	})
	doctor("POST /api/prescriptions/{id}/sign", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		var req pinRequest
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		p, err := svc.Sign(ctx, by, r.PathValue("id"), req.PIN)
		return replyJSON(w, http.StatusOK, p, err)
	})
	doctor("POST /api/prescriptions/{id}/submit", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		p, err := svc.Submit(ctx, by, r.PathValue("id"))
		return replyJSON(w, http.StatusOK, p, err)
	})
	pharmacist("GET /api/prescriptions/review-queue", "prescriptions.read", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		h, err := hospitalParam(r)
		if err != nil {
			return err
		}
		list, err := svc.Queue(ctx, by, h)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"items": list})
		return nil
	})
	pharmacist("POST /api/prescriptions/{id}/approve", "prescriptions.write", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		p, err := svc.Approve(ctx, by, r.PathValue("id"))
		return replyJSON(w, http.StatusOK, p, err)
	})
	pharmacist("POST /api/prescriptions/{id}/reject", "prescriptions.write", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		var req reasonRequest
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		p, err := svc.Reject(ctx, by, r.PathValue("id"), req.Reason)
		return replyJSON(w, http.StatusOK, p, err)
	})
	// payable is what the payment API asks before it charges: 409 until a
	// pharmacist has approved the prescription.
	handle("GET /api/prescriptions/{id}/payable", "prescriptions.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		amount, err := svc.Payable(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"amount_fen": amount, "amount": ihos.FormatYuan(amount), "business_type": ihos.PayPrescription})
		return nil
	})
	// Paying: the patient (their family's prescriptions) or staff for them;
	// the amount is the approved price (Payable), never the client's, and a
	// prescription the pharmacist has not approved is refused. openid makes
	// a JSAPI order, without it a Native one (QR code).
	mux.Handle("POST /api/prescriptions/{id}/pay", x.reading("prescriptions.write", nil, func(ctx context.Context, v clinicalViewer, w http.ResponseWriter, r *http.Request) error {
		var req struct {
			OpenID string `json:"openid"`
		}
		if err := web.DecodeOptionalJSON(r, &req); err != nil {
			return err
		}
		if v.staff != nil {
			return ihos.Errorf(ihos.EForbidden, "处方由患者本人或家属支付")
		}
		if v.patient != nil {
			p, err := svc.Get(ctx, r.PathValue("id"))
			if err != nil {
				return err
			}
			ok, err := patientAuth{app: x.app}.owns(ctx, v.patient, p.PatientID)
			if err != nil {
				return err
			}
			if !ok {
				return ihos.Errorf(ihos.ENotFound, "处方不存在")
			}
		}
		res, err := svc.Pay(ctx, r.PathValue("id"), req.OpenID)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, res)
		return nil
	}))
	mux.Handle("GET /api/prescriptions/{id}", x.reading("prescriptions.read", nil, func(ctx context.Context, v clinicalViewer, w http.ResponseWriter, r *http.Request) error {
		p, err := svc.Get(ctx, r.PathValue("id"))
		return one(ctx, v, w, p, err)
	}))
	mux.Handle("GET /api/prescriptions/{id}/history", x.reading("prescriptions.read", noPatients, func(ctx context.Context, v clinicalViewer, w http.ResponseWriter, r *http.Request) error {
		p, err := svc.Get(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		if ok, err := x.sees(ctx, v, p); err != nil || !ok {
			if err == nil {
				err = ihos.Errorf(ihos.ENotFound, "处方不存在")
			}
			return err
		}
		h, err := svc.History(ctx, p.ID)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"items": h})
		return nil
	}))
	mux.Handle("GET /api/prescriptions", x.reading("prescriptions.read", nil, func(ctx context.Context, v clinicalViewer, w http.ResponseWriter, r *http.Request) error {
		visit := r.URL.Query().Get("visit")
		if visit == "" {
			return ihos.Invalid(map[string]string{"visit": "请指定问诊"})
		}
		all, err := svc.ByVisit(ctx, visit)
		if err != nil {
			return err
		}
		list := []*prescriptions.Prescription{}
		for _, p := range all {
			ok, err := x.sees(ctx, v, p)
			if err != nil {
				return err
			}
			if ok {
				list = append(list, p)
			}
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"items": list})
		return nil
	}))
}
