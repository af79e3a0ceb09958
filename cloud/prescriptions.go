package cloud

import (
	"context"
	"database/sql"
	"net/http"
	"strings"

	"ihos"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/prescriptions"
	"ihos/sync"
)

// ActingStaffHeader names the staff member (staff id) a prescription request
// acts for: the doctor who writes and signs, the pharmacist who reviews.
//
// TEMPORARY: the doctor and pharmacist app login is being built; until it
// lands the request is authorised like the payment API (the command-line
// token or a staff console session holding prescriptions.read / .write) and
// says in this header whom it acts for. The rules themselves (attending
// doctor, pharmacist, statuses) are enforced by package prescriptions on that
// staff id, whatever the transport; when staff sessions exist the staff id
// comes from the session and this header goes.
const ActingStaffHeader = "X-IHOS-Acting-Staff"

// startPrescriptions serves the prescription API (package prescriptions) on
// the visits of a.Visits: start it after startVisits. The signer (the
// doctor's key on the appliance) and the HIS (the pharmacy order) are reached
// over the sync RPC and are not wired yet: until they are, signing and
// sending answer "unavailable" and everything else works.
func startPrescriptions(n *node.Node, a *App, mux *http.ServeMux) {
	a.Prescriptions = &prescriptions.Service{
		DB:     n.DB,
		Visits: a.Visits,
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			return a.Replica.Capture(ctx, tx, "", refs...) // "": each prescription goes to its own hospital
		},
		AfterCommit: a.Link.Kick,
	}
	PrescriptionRoutes(a.Prescriptions, mux, n.AuthorizeCLIOr)
}

// actingStaff is the staff id the request acts for.
func actingStaff(r *http.Request) (string, error) {
	id := strings.TrimSpace(r.Header.Get(ActingStaffHeader))
	if id == "" || len(id) > 36 {
		return "", ihos.Errorf(ihos.EUnauthorized, "请求须在 %s 中注明操作的医务人员", ActingStaffHeader)
	}
	return id, nil
}

// PrescriptionRoutes registers the prescription API. There is no delete:
// prescriptions are clinical records (DESIGN.md §7), corrected by new
// versions (POST …/revise).
func PrescriptionRoutes(svc *prescriptions.Service, mux *http.ServeMux, authorize web.Authorizer) {
	handle := web.Guard(mux, authorize)
	// acting wraps a handler that needs the acting staff id.
	acting := func(fn func(ctx context.Context, by string, w http.ResponseWriter, r *http.Request) error) web.AuthorizedFunc {
		return func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
			by, err := actingStaff(r)
			if err != nil {
				return err
			}
			return fn(ctx, by, w, r)
		}
	}
	reply := func(w http.ResponseWriter, status int, p *prescriptions.Prescription, err error) error {
		if err != nil {
			return err
		}
		web.WriteJSON(w, status, p)
		return nil
	}
	handle("POST /api/prescriptions", "prescriptions.write", acting(func(ctx context.Context, by string, w http.ResponseWriter, r *http.Request) error {
		var d prescriptions.Draft
		if err := web.DecodeJSON(r, &d); err != nil {
			return err
		}
		p, err := svc.Create(ctx, by, d)
		return reply(w, http.StatusCreated, p, err)
	}))
	handle("PUT /api/prescriptions/{id}", "prescriptions.write", acting(func(ctx context.Context, by string, w http.ResponseWriter, r *http.Request) error {
		var d prescriptions.Draft
		if err := web.DecodeJSON(r, &d); err != nil {
			return err
		}
		p, err := svc.Update(ctx, by, r.PathValue("id"), d)
		return reply(w, http.StatusOK, p, err)
	}))
	handle("POST /api/prescriptions/{id}/revise", "prescriptions.write", acting(func(ctx context.Context, by string, w http.ResponseWriter, r *http.Request) error {
		var d prescriptions.Draft
		if err := web.DecodeJSON(r, &d); err != nil {
			return err
		}
		p, err := svc.Revise(ctx, by, r.PathValue("id"), d)
		return reply(w, http.StatusCreated, p, err)
	}))
	handle("POST /api/prescriptions/{id}/sign", "prescriptions.write", acting(func(ctx context.Context, by string, w http.ResponseWriter, r *http.Request) error {
		var req struct {
			PIN string `json:"pin"`
		}
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		p, err := svc.Sign(ctx, by, r.PathValue("id"), req.PIN)
		return reply(w, http.StatusOK, p, err)
	}))
	handle("POST /api/prescriptions/{id}/submit", "prescriptions.write", acting(func(ctx context.Context, by string, w http.ResponseWriter, r *http.Request) error {
		p, err := svc.Submit(ctx, by, r.PathValue("id"))
		return reply(w, http.StatusOK, p, err)
	}))
	handle("GET /api/prescriptions/review-queue", "prescriptions.read", acting(func(ctx context.Context, by string, w http.ResponseWriter, r *http.Request) error {
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
	}))
	handle("POST /api/prescriptions/{id}/approve", "prescriptions.write", acting(func(ctx context.Context, by string, w http.ResponseWriter, r *http.Request) error {
		p, err := svc.Approve(ctx, by, r.PathValue("id"))
		return reply(w, http.StatusOK, p, err)
	}))
	handle("POST /api/prescriptions/{id}/reject", "prescriptions.write", acting(func(ctx context.Context, by string, w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Reason string `json:"reason"`
		}
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		p, err := svc.Reject(ctx, by, r.PathValue("id"), req.Reason)
		return reply(w, http.StatusOK, p, err)
	}))
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
	handle("GET /api/prescriptions/{id}", "prescriptions.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		p, err := svc.Get(ctx, r.PathValue("id"))
		return reply(w, http.StatusOK, p, err)
	})
	handle("GET /api/prescriptions/{id}/history", "prescriptions.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		h, err := svc.History(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"items": h})
		return nil
	})
	handle("GET /api/prescriptions", "prescriptions.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		visit := r.URL.Query().Get("visit")
		if visit == "" {
			return ihos.Invalid(map[string]string{"visit": "请指定问诊"})
		}
		list, err := svc.ByVisit(ctx, visit)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"items": list})
		return nil
	})
}
