package cloud

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"ihos"
	"ihos/accounts"
	"ihos/booking"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/staffauth"
	"ihos/sync"
	"ihos/visits"
)

// ActingPartyHeader names the patient or doctor a request acts for
// ("patient:<id>" or "doctor:<id>") when the request comes with the
// command-line token or a console staff session.
//
// Patients and doctors use their own sessions: a patient session (package
// accounts) acts as the patient of a visit whose patient is one of the
// account's members (anyone else's visit is "not found"), a doctor's app
// session (package staffauth, kind doctor) acts as that doctor. The header
// is kept for tools, tests and system administrators only: it needs the
// permission "visits.act" that only system administrators and the CLI hold.
// The visit's own rules — only its patient and its doctor, the state
// machine — are checked by package visits whoever the caller is.
const ActingPartyHeader = "X-IHOS-Acting-Party"

// visitsPerm is the permission the staff/CLI authorisation needs.
const visitsPerm = "visits.act"

// visitAPI is the HTTP face of the visit service.
type visitAPI struct {
	svc       *visits.Service
	hospitals *Hospitals
	app       *App // Staff and Patients: the app sessions
	// duty is the schedule rule a doctor's accept is checked against
	// (booking.Service.CheckOnDuty).
	duty interface {
		CheckOnDuty(ctx context.Context, bookingID string) error
	}
	staff web.Authorizer // node.AuthorizeCLIOr: the header path
}

// actingParty reads the acting party of r.
func actingParty(r *http.Request) (visits.Party, error) {
	role, id, ok := strings.Cut(strings.TrimSpace(r.Header.Get(ActingPartyHeader)), ":")
	if !ok || id == "" || (role != visits.RolePatient && role != visits.RoleDoctor) {
		return visits.Party{}, ihos.Errorf(ihos.EInvalid, "请在请求头 %s 中指明患者或医生（patient:编号 或 doctor:编号）", ActingPartyHeader)
	}
	return visits.Party{Role: role, ID: id}, nil
}

// visitCaller is who a visit request comes from: a fixed party (the
// header path, a doctor's session) or a patient whose party follows from
// the visit.
type visitCaller struct {
	party   visits.Party
	doctor  *staffauth.Staff
	patient *accounts.Patient
}

// errNoVisit answers a patient asking for a visit that is not their
// family's: as if it did not exist.
var errNoVisit = ihos.Errorf(ihos.ENotFound, "问诊不存在")

// caller authorises r.
func (a visitAPI) caller(r *http.Request) (context.Context, visitCaller, error) {
	ctx, st, p, err := appSession(a.app, r)
	switch {
	case err != nil:
		return nil, visitCaller{}, err
	case st != nil:
		if st.Kind != ihos.StaffDoctor {
			return nil, visitCaller{}, ihos.Errorf(ihos.EForbidden, "只有医生可以接诊和参与问诊")
		}
		return ctx, visitCaller{party: visits.Party{Role: visits.RoleDoctor, ID: st.ID}, doctor: st}, nil
	case p != nil:
		return ctx, visitCaller{patient: p}, nil
	}
	ctx, err = a.staff(r, visitsPerm)
	if err != nil {
		return nil, visitCaller{}, err
	}
	by, err := actingParty(r)
	return ctx, visitCaller{party: by}, err
}

// patientParty is the party a patient acts as on visit id: its patient,
// when that is one of the account's members.
func (a visitAPI) patientParty(ctx context.Context, p *accounts.Patient, id string) (visits.Party, error) {
	v, err := a.svc.Get(ctx, visits.System, id)
	if err != nil {
		return visits.Party{}, err
	}
	ok, err := patientAuth{app: a.app}.owns(ctx, p, v.PatientID)
	if err != nil {
		return visits.Party{}, err
	}
	if !ok {
		return visits.Party{}, errNoVisit
	}
	return visits.Party{Role: visits.RolePatient, ID: v.PatientID}, nil
}

// feedParty is the party of a patient's own message stream (GET
// /api/events): the member named by ?patient=, by default the holder.
func (a visitAPI) feedParty(ctx context.Context, p *accounts.Patient, r *http.Request) (visits.Party, error) {
	m, err := patientAuth{app: a.app}.member(ctx, p, r.URL.Query().Get("patient"))
	if err != nil {
		return visits.Party{}, err
	}
	return visits.Party{Role: visits.RolePatient, ID: m.PatientID}, nil
}

// visitFunc is a visit route's handler acting as by.
type visitFunc func(ctx context.Context, by visits.Party, w http.ResponseWriter, r *http.Request) error

func (a visitAPI) routes(mux *http.ServeMux, authorize web.Authorizer) {
	guard := web.Guard(mux, authorize)
	// route registers a route acting for the request's party; for a patient
	// the party follows from the route (the visit, the attachment's visit,
	// the member's feed) through target.
	route := func(pattern string, target func(ctx context.Context, p *accounts.Patient, r *http.Request) (visits.Party, error), fn func(ctx context.Context, c visitCaller, by visits.Party, w http.ResponseWriter, r *http.Request) error) {
		mux.Handle(pattern, web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			ctx, c, err := a.caller(r)
			if err != nil {
				return err
			}
			by := c.party
			if c.patient != nil {
				if by, err = target(ctx, c.patient, r); err != nil {
					return err
				}
			}
			return fn(ctx, c, by, w, r)
		}))
	}
	byVisit := func(ctx context.Context, p *accounts.Patient, r *http.Request) (visits.Party, error) {
		return a.patientParty(ctx, p, r.PathValue("id"))
	}
	// as registers a route on one visit (the path's id).
	as := func(pattern string, fn visitFunc) {
		route(pattern, byVisit, func(ctx context.Context, _ visitCaller, by visits.Party, w http.ResponseWriter, r *http.Request) error {
			return fn(ctx, by, w, r)
		})
	}
	// Opening a visit belongs to the booking service once it exists (a paid
	// booking opens its visit); until then staff and tools open one here.
	guard("POST /api/visits", visitsPerm, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		var req struct {
			HospitalID   string    `json:"hospital_id"`
			BookingID    string    `json:"booking_id"`
			PatientID    string    `json:"patient_id"`
			DoctorID     string    `json:"doctor_id"`
			DepartmentID string    `json:"department_id"`
			Type         string    `json:"type"`
			BookedAt     time.Time `json:"booked_at"`
		}
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		if !a.hospitals.Known(req.HospitalID) {
			// Every visit row replicates to its hospital: it must name one.
			return ihos.Invalid(map[string]string{"hospital_id": "医院不存在或未启用"})
		}
		v, err := a.svc.Open(ctx, visits.VisitSpec{HospitalID: req.HospitalID, BookingID: req.BookingID, PatientID: req.PatientID,
			DoctorID: req.DoctorID, DepartmentID: req.DepartmentID, Type: req.Type, BookedAt: req.BookedAt})
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, v)
		return nil
	})
	as("GET /api/visits/{id}", func(ctx context.Context, by visits.Party, w http.ResponseWriter, r *http.Request) error {
		v, err := a.svc.Get(ctx, by, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, v)
		return nil
	})
	transition := func(fn func(ctx context.Context, by visits.Party, id, reason string) (*visits.Visit, error)) func(context.Context, visits.Party, http.ResponseWriter, *http.Request) error {
		return func(ctx context.Context, by visits.Party, w http.ResponseWriter, r *http.Request) error {
			var req struct {
				Reason string `json:"reason"`
			}
			if err := web.DecodeOptionalJSON(r, &req); err != nil {
				return err
			}
			v, err := fn(ctx, by, r.PathValue("id"), req.Reason)
			if err != nil {
				return err
			}
			web.WriteJSON(w, http.StatusOK, v)
			return nil
		}
	}
	accept := transition(func(ctx context.Context, by visits.Party, id, _ string) (*visits.Visit, error) {
		return a.svc.Accept(ctx, by, id)
	})
	// A doctor's session accepts only after today's real-name check and
	// within the sitting of the visit's booking (booking.CheckOnDuty); the
	// header path (tools, tests) is not a doctor at work and skips both.
	route("POST /api/visits/{id}/accept", byVisit, func(ctx context.Context, c visitCaller, by visits.Party, w http.ResponseWriter, r *http.Request) error {
		if c.doctor != nil {
			if err := a.app.Staff.RequireRealNameToday(ctx, *c.doctor); err != nil {
				return err
			}
			v, err := a.svc.Get(ctx, by, r.PathValue("id"))
			if err != nil {
				return err
			}
			if v.Status == visits.StatusWaiting {
				if err := a.duty.CheckOnDuty(ctx, v.BookingID); err != nil {
					return err
				}
			}
		}
		return accept(ctx, by, w, r)
	})
	as("POST /api/visits/{id}/end", transition(a.svc.End))
	as("POST /api/visits/{id}/cancel", transition(a.svc.Cancel))
	as("POST /api/visits/{id}/messages", func(ctx context.Context, by visits.Party, w http.ResponseWriter, r *http.Request) error {
		var in visits.MessageInput
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		m, err := a.svc.Post(ctx, by, r.PathValue("id"), in)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, m)
		return nil
	})
	as("GET /api/visits/{id}/messages", func(ctx context.Context, by visits.Party, w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		after, err := queryInt(q.Get("after"), "after")
		if err != nil {
			return err
		}
		limit, err := queryInt(q.Get("limit"), "limit")
		if err != nil {
			return err
		}
		msgs, err := a.svc.Messages(ctx, by, r.PathValue("id"), after, int(limit))
		if err != nil {
			return err
		}
		if msgs == nil {
			msgs = []*visits.Message{}
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"messages": msgs})
		return nil
	})
	as("GET /api/visits/{id}/events", func(ctx context.Context, by visits.Party, w http.ResponseWriter, r *http.Request) error {
		return a.svc.ServeVisitEvents(w, r.WithContext(ctx), by, r.PathValue("id"))
	})
	route("GET /api/events", a.feedParty, func(ctx context.Context, _ visitCaller, by visits.Party, w http.ResponseWriter, r *http.Request) error {
		return a.svc.ServeEvents(w, r.WithContext(ctx), by)
	})
	// An image or voice clip: the raw body, or the "file" part of a
	// multipart form (a browser's upload).
	as("POST /api/visits/{id}/attachments", func(ctx context.Context, by visits.Party, w http.ResponseWriter, r *http.Request) error {
		var body io.Reader = r.Body
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
			mr, err := r.MultipartReader()
			if err != nil {
				return ihos.Errorf(ihos.EInvalid, "上传内容无法解析")
			}
			for {
				p, err := mr.NextPart()
				if err != nil {
					return ihos.Invalid(map[string]string{"file": "请选择要上传的文件"})
				}
				if p.FormName() == "file" {
					body = p
					break
				}
			}
		}
		att, err := a.svc.Upload(ctx, by, r.PathValue("id"), body)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, att)
		return nil
	})
	byAttachment := func(ctx context.Context, p *accounts.Patient, r *http.Request) (visits.Party, error) {
		att, f, err := a.svc.OpenAttachment(ctx, visits.System, r.PathValue("id"))
		if err != nil {
			return visits.Party{}, err
		}
		f.Close()
		return a.patientParty(ctx, p, att.VisitID)
	}
	route("GET /api/attachments/{id}", byAttachment, func(ctx context.Context, _ visitCaller, by visits.Party, w http.ResponseWriter, r *http.Request) error {
		return a.svc.ServeAttachment(w, r.WithContext(ctx), by, r.PathValue("id"))
	})
}

func queryInt(s, field string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, ihos.Invalid(map[string]string{field: "应为非负整数"})
	}
	return n, nil
}

// startVisits builds the visit service and registers its routes. Its
// notices travel on the cloud's NATS: the embedded broker (one cloud
// process) or the external cluster of nats_url, which every cloud process
// behind a load balancer shares, so a message posted to one reaches the
// streams open on all. The connection closes when ctx ends.
func startVisits(ctx context.Context, cfg Config, n *node.Node, a *App, mux *http.ServeMux) error {
	hub := visits.NewHub()
	svc := &visits.Service{
		DB:  n.DB,
		Hub: hub,
		Dir: filepath.Join(n.Config.DataDir, "visits"),
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			return a.Replica.Capture(ctx, tx, "", refs...) // "": each row goes to its own hospital
		},
		AfterCommit: a.Link.Kick,
	}
	var nc *nats.Conn
	var err error
	if cfg.NATSURL != "" {
		nc, err = nats.Connect(cfg.NATSURL, nats.Name("cloud-visits"), nats.MaxReconnects(-1))
	} else {
		nc, err = n.Broker.HospitalConn("", nats.Name("cloud-visits"))
	}
	if err != nil {
		return &ihos.Error{Code: ihos.EUnavailable, Message: "消息推送无法连接消息服务", Err: err}
	}
	bus, err := visits.NewNATSBus(nc, hub, slog.Default())
	if err != nil {
		nc.Close()
		return &ihos.Error{Code: ihos.EUnavailable, Message: "消息推送无法订阅消息服务", Err: err}
	}
	svc.Bus = bus
	a.Visits = svc
	go func() {
		<-ctx.Done()
		bus.Close()
		nc.Close()
	}()
	// The schedule rule reads the replicated schedules through the booking
	// service's check alone: this instance books nothing.
	duty := &booking.Service{DB: n.DB}
	visitAPI{svc: svc, hospitals: a.Hospitals, app: a, duty: duty, staff: n.AuthorizeCLIOr}.routes(mux, n.AuthorizeCLIOr)
	return nil
}
