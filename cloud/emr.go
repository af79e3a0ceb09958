package cloud

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"ihos"
	"ihos/emr"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/sync"
	"ihos/visits"
)

// startEMR serves the online outpatient record and the exam/lab orders
// (package emr) on the visits of a.Visits: start it after
// startPrescriptions, whose signer (the doctor's key on the appliance) and
// HIS link it shares. Signed orders the HIS could not take at once are sent
// again every EMRRetry until ctx ends.
func startEMR(ctx context.Context, n *node.Node, a *App, mux *http.ServeMux) {
	svc := &emr.Service{
		DB:     n.DB,
		Visits: a.Visits,
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			return a.Replica.Capture(ctx, tx, "", refs...) // "": each row goes to its own hospital
		},
		AfterCommit: a.Link.Kick,
	}
	if a.Prescriptions != nil {
		// The same adapters: the method sets are the same.
		if a.Prescriptions.Signer != nil {
			svc.Signer = a.Prescriptions.Signer
		}
		if a.Prescriptions.HIS != nil {
			svc.HIS = a.Prescriptions.HIS
		}
	}
	a.EMR = svc
	EMRRoutes(svc, mux, n.AuthorizeCLIOr, a)
	go retryExamOrders(ctx, svc)
}

// EMRRetry is how often signed exam/lab orders waiting for the HIS (待发送)
// are sent again.
var EMRRetry = 30 * time.Second

// retryExamOrders sends the waiting orders until ctx ends. It waits a
// whole EMRRetry before its first pass (unlike worker.Loop, which starts at
// once): the wiring (and the tests) may still be setting svc.HIS.
func retryExamOrders(ctx context.Context, svc *emr.Service) {
	t := time.NewTicker(EMRRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if svc.HIS == nil {
			continue
		}
		pending, err := svc.Pending(ctx, 50)
		if err != nil {
			if ctx.Err() == nil {
				slog.Warn("emr: listing waiting exam orders", "err", err)
			}
			continue
		}
		for _, o := range pending {
			if ctx.Err() != nil {
				return
			}
			if _, err := svc.Send(ctx, o.ID); err != nil {
				slog.Info("emr: exam order still waiting for the HIS", "order", o.ID, "reason", ihos.ErrorMessage(err))
			}
		}
	}
}

var (
	errEMRDoctorsOnly = ihos.Errorf(ihos.EForbidden, "只有接诊医生可以书写和签署病历、开具检查检验申请")
	errNoEMR          = ihos.Errorf(ihos.ENotFound, "该问诊尚无病历")
)

// access is what v may read of a visit's clinical documents: nothing (the
// visit is answered as not found), signed ones only, or everything. The
// visit's doctor reads everything; a pharmacist of the hospital reads the
// signed record (the context of a prescription under review); the patient
// and their family read signed documents; another doctor or patient nothing.
func (x clinicalAuth) access(ctx context.Context, v clinicalViewer, visitID string) (see, all bool, err error) {
	if v.staff == nil && v.patient == nil {
		return true, true, nil
	}
	vis, err := x.app.Visits.Get(ctx, visits.System, visitID)
	if ihos.ErrorCode(err) == ihos.ENotFound {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	switch {
	case v.staff != nil && v.staff.Kind == ihos.StaffDoctor:
		return vis.DoctorID == v.staff.ID, vis.DoctorID == v.staff.ID, nil
	case v.staff != nil:
		return vis.HospitalID == v.staff.HospitalID, false, nil
	}
	ok, err := patientAuth{app: x.app}.owns(ctx, v.patient, vis.PatientID)
	return ok, false, err
}

// EMRRoutes registers the EMR, template, ICD-10 and exam-order API. There is
// no delete: records and orders are clinical records (DESIGN.md §7),
// corrected by new versions (POST /api/emr/{id}/revise). app holds the
// doctor and patient sessions (nil: the staff/CLI check alone).
func EMRRoutes(svc *emr.Service, mux *http.ServeMux, authorize web.Authorizer, app *App) {
	x := clinicalAuth{app: app, staff: authorize}
	doctor := func(pattern string, fn actingFunc) {
		mux.Handle(pattern, x.acting(ihos.StaffDoctor, "emr.write", errEMRDoctorsOnly, fn))
	}
	reading := func(fn func(ctx context.Context, v clinicalViewer, w http.ResponseWriter, r *http.Request) error) http.Handler {
		return x.reading("emr.read", nil, fn)
	}
	// record reads a version and checks v may see it; signedOnly viewers
	// see signed versions only.
	record := func(ctx context.Context, v clinicalViewer, id string) (*emr.Record, bool, error) {
		rec, err := svc.Get(ctx, id)
		if err != nil {
			return nil, false, err
		}
		see, all, err := x.access(ctx, v, rec.VisitID)
		if err != nil {
			return nil, false, err
		}
		if !see || (!all && rec.Status != emr.StatusSigned) {
			return nil, false, ihos.Errorf(ihos.ENotFound, "病历不存在")
		}
		return rec, all, nil
	}

	mux.Handle("GET /api/visits/{id}/emr", reading(func(ctx context.Context, v clinicalViewer, w http.ResponseWriter, r *http.Request) error {
		see, all, err := x.access(ctx, v, r.PathValue("id"))
		if err != nil {
			return err
		}
		if !see {
			return errNoEMR
		}
		rec, err := svc.Current(ctx, r.PathValue("id"), !all)
		return replyJSON(w, http.StatusOK, rec, err)
	}))
	doctor("PUT /api/visits/{id}/emr", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		var c emr.Content
		if err := web.DecodeJSON(r, &c); err != nil {
			return err
		}
		rec, err := svc.Save(ctx, by, r.PathValue("id"), c)
		return replyJSON(w, http.StatusOK, rec, err)
	})
	doctor("POST /api/emr/{id}/sign", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		var req pinRequest
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		rec, err := svc.Sign(ctx, by, r.PathValue("id"), req.PIN)
		return replyJSON(w, http.StatusOK, rec, err)
	})
	doctor("POST /api/emr/{id}/revise", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		var req reasonRequest
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		rec, err := svc.Revise(ctx, by, r.PathValue("id"), req.Reason)
		return replyJSON(w, http.StatusCreated, rec, err)
	})
	mux.Handle("GET /api/emr/{id}/history", reading(func(ctx context.Context, v clinicalViewer, w http.ResponseWriter, r *http.Request) error {
		rec, all, err := record(ctx, v, r.PathValue("id"))
		if err != nil {
			return err
		}
		versions, err := svc.Versions(ctx, rec.VisitID)
		if err != nil {
			return err
		}
		out := map[string]any{}
		if all {
			events, err := svc.Events(ctx, rec.VisitID)
			if err != nil {
				return err
			}
			out["events"] = events
		} else {
			signed := versions[:0]
			for _, s := range versions {
				if s.Status == emr.StatusSigned {
					signed = append(signed, s)
				}
			}
			versions = signed
		}
		out["items"] = versions
		web.WriteJSON(w, http.StatusOK, out)
		return nil
	}))
	mux.Handle("GET /api/emr/{id}/signature", reading(func(ctx context.Context, v clinicalViewer, w http.ResponseWriter, r *http.Request) error {
		if _, _, err := record(ctx, v, r.PathValue("id")); err != nil {
			return err
		}
		info, err := svc.Signature(ctx, r.PathValue("id"))
		return replyJSON(w, http.StatusOK, info, err)
	}))

	// The ICD-10 table is public reference data, served from memory.
	mux.Handle("GET /api/icd10", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		limit := 20
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 100 {
				return ihos.Invalid(map[string]string{"limit": "limit 应为 1 到 100"})
			}
			limit = n
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"items": emr.SearchICD10(r.URL.Query().Get("q"), limit)})
		return nil
	}))

	doctor("GET /api/doctor/emr-templates", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		list, err := svc.Templates(ctx, by)
		return replyJSON(w, http.StatusOK, map[string]any{"items": list}, err)
	})
	doctor("POST /api/doctor/emr-templates", func(ctx context.Context, by, hospital string, w http.ResponseWriter, r *http.Request) error {
		var in emr.TemplateInput
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		t, err := svc.CreateTemplate(ctx, by, hospital, in)
		return replyJSON(w, http.StatusCreated, t, err)
	})
	doctor("PUT /api/doctor/emr-templates/{id}", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		var in emr.TemplateInput
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		t, err := svc.UpdateTemplate(ctx, by, r.PathValue("id"), in)
		return replyJSON(w, http.StatusOK, t, err)
	})
	doctor("POST /api/doctor/emr-templates/{id}/disable", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		t, err := svc.DisableTemplate(ctx, by, r.PathValue("id"))
		return replyJSON(w, http.StatusOK, t, err)
	})

	doctor("POST /api/visits/{id}/exam-orders", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		var in emr.OrderInput
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		o, err := svc.CreateOrder(ctx, by, r.PathValue("id"), in)
		return replyJSON(w, http.StatusCreated, o, err)
	})
	doctor("POST /api/exam-orders/{id}/sign", func(ctx context.Context, by, _ string, w http.ResponseWriter, r *http.Request) error {
		var req pinRequest
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		o, err := svc.SignOrder(ctx, by, r.PathValue("id"), req.PIN)
		return replyJSON(w, http.StatusOK, o, err)
	})
	mux.Handle("GET /api/visits/{id}/exam-orders", reading(func(ctx context.Context, v clinicalViewer, w http.ResponseWriter, r *http.Request) error {
		see, all, err := x.access(ctx, v, r.PathValue("id"))
		if err != nil {
			return err
		}
		if !see {
			return errNoVisit
		}
		orders, err := svc.OrdersByVisit(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		list := []*emr.Order{}
		for _, o := range orders {
			if all || o.Status != emr.OrderDraft { // drafts are the doctor's work in progress
				list = append(list, o)
			}
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"items": list})
		return nil
	}))
}
