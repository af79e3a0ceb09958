package cloud

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"

	"ihos"
	"ihos/accounts"
	"ihos/booking"
	"ihos/his"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/sync"
)

// startBooking serves the public doctor directory and slot allocation
// (package booking): the hospitals' replicated schedules and rules decide
// what is offered, this cloud alone allocates. A booking with a fee is paid
// through the payment service; its worker (running until ctx ends) books it
// once paid and opens its visit, expires it unpaid, and settles a cancelled
// one. It needs a.Payments and a.Visits: start it after both.
func startBooking(ctx context.Context, n *node.Node, a *App, mux *http.ServeMux) {
	svc := &booking.Service{
		DB: n.DB,
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			return a.Replica.Capture(ctx, tx, "", refs...) // "": each booking goes to its own hospital
		},
		AfterCommit: a.Link.Kick,
		Visits:      a.Visits,
		FollowUp:    followUpRPC{link: a.Link},
	}
	if _, none := a.Payments.Channel.(noChannel); !none {
		svc.Payments = a.Payments
		// The payment service has no hook into bookings: the worker polls,
		// and is woken after every payment commit (a notify applied, a query
		// that found the order paid) so a paid booking is booked at once.
		after := a.Payments.AfterCommit
		a.Payments.AfterCommit = func() {
			if after != nil {
				after()
			}
			svc.Kick()
		}
	}
	go svc.Run(ctx)
	bookingAPI{svc: svc}.routes(mux, patientAuth{app: a, staff: n.AuthorizeCLIOr})
}

type bookingAPI struct{ svc *booking.Service }

// routes registers the public directory (no login: anyone may look for a
// doctor) and the booking endpoints. A patient session books, lists, pays
// and cancels for the account's own members only; staff (a session holding
// booking.write / booking.read) and the command-line token for anyone.
func (a bookingAPI) routes(mux *http.ServeMux, pa patientAuth) {
	mux.Handle("GET /api/public/doctors", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		page, _ := strconv.Atoi(q.Get("page"))
		size, _ := strconv.Atoi(q.Get("page_size"))
		dept := q.Get("department")
		if dept == "" {
			dept = q.Get("department_id") // the catalogue's earlier name
		}
		res, err := a.svc.Doctors(r.Context(), booking.DoctorQuery{HospitalID: q.Get("hospital"), Department: dept,
			Title: q.Get("title"), Q: q.Get("q"), Sort: q.Get("sort"), Page: page, PageSize: size})
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, res)
		return nil
	}))
	mux.Handle("GET /api/public/doctors/{id}", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		d, err := a.svc.Doctor(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, d)
		return nil
	}))
	mux.Handle("GET /api/public/doctors/{id}/slots", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		slots, err := a.svc.Slots(r.Context(), r.PathValue("id"), r.URL.Query().Get("date"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"items": slots})
		return nil
	}))
	handle := pa.guard(mux)
	handle("POST /api/booking/bookings", "booking.write", func(ctx context.Context, p *accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		var req booking.Request
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		if p != nil {
			m, err := pa.member(ctx, p, req.PatientID)
			if err != nil {
				return err
			}
			req.PatientID, req.AccountID = m.PatientID, p.AccountID
		}
		b, err := a.svc.Book(ctx, req)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusCreated, b)
		return nil
	})
	handle("GET /api/booking/bookings", "booking.read", func(ctx context.Context, p *accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		patient := r.URL.Query().Get("patient_id")
		if p != nil {
			m, err := pa.member(ctx, p, patient)
			if err != nil {
				return err
			}
			patient = m.PatientID
		}
		if patient == "" {
			return ihos.Invalid(map[string]string{"patient_id": "请选择就诊人"})
		}
		list, err := a.svc.PatientBookings(ctx, patient)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"items": list})
		return nil
	})
	handle("GET /api/booking/bookings/{id}", "booking.read", func(ctx context.Context, p *accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		b, err := a.get(ctx, pa, p, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, b)
		return nil
	})
	// Paying: the amount is the booking's fee, never the client's; openid
	// (the patient's id at the channel) makes a JSAPI order, without it a
	// Native one (QR code).
	handle("POST /api/booking/bookings/{id}/pay", "booking.write", func(ctx context.Context, p *accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		var req struct {
			OpenID string `json:"openid"`
		}
		if err := web.DecodeOptionalJSON(r, &req); err != nil {
			return err
		}
		if p != nil {
			if _, err := a.get(ctx, pa, p, r.PathValue("id")); err != nil {
				return err
			}
		}
		res, err := a.svc.Pay(ctx, r.PathValue("id"), req.OpenID)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, res)
		return nil
	})
	handle("POST /api/booking/bookings/{id}/cancel", "booking.write", func(ctx context.Context, p *accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Reason string `json:"reason"`
		}
		if err := web.DecodeOptionalJSON(r, &req); err != nil {
			return err
		}
		if p != nil {
			if _, err := a.get(ctx, pa, p, r.PathValue("id")); err != nil {
				return err
			}
		}
		b, err := a.svc.Cancel(ctx, r.PathValue("id"), req.Reason)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, b)
		return nil
	})
}

// errNoBooking answers a patient asking for a booking not on their account,
// as booking.Get answers one that does not exist.
var errNoBooking = ihos.Errorf(ihos.ENotFound, "预约不存在")

// get returns booking id; for a patient (p non-nil) only one of their
// members', someone else's being answered as not found.
func (a bookingAPI) get(ctx context.Context, pa patientAuth, p *accounts.Patient, id string) (*booking.Booking, error) {
	b, err := a.svc.Get(ctx, id)
	if err != nil || p == nil {
		return b, err
	}
	ok, err := pa.owns(ctx, p, b.PatientID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNoBooking
	}
	return b, nil
}

// followUpRPC asks a hospital's HIS, through its appliance, for the
// patient's offline diagnoses (his.RPCFollowUp): the booking's
// follow-up-only rule. With the link down it fails with EUnavailable, and
// the booking is refused rather than assumed.
type followUpRPC struct{ link *sync.Link }

func (f followUpRPC) FollowUp(ctx context.Context, hospital string, req his.FollowUpRequest) (his.Eligibility, error) {
	var out his.Eligibility
	err := f.link.Call(ctx, hospital, his.RPCFollowUp, req, &out)
	return out, err
}
