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
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/sync"
	"ihos/visits"
)

// ActingPartyHeader names the patient or doctor a request acts for
// ("patient:<id>" or "doctor:<id>").
//
// TEMPORARY: patients and doctors have no sessions in the cloud yet (issue 8
// builds them). Until they do, the visit API is authorised like the payer API
// (cloud/payments.go): the console's staff session or the command-line token,
// with the permission "visits.act" that only system administrators and the
// CLI hold, and the caller names the party it acts for in this header. The
// visit's own rules — only its patient and its doctor, the state machine —
// are checked by package visits whoever the caller is; the patient and doctor
// sessions will replace only this header.
const ActingPartyHeader = "X-IHOS-Acting-Party"

// visitsPerm is the permission the temporary staff/CLI authorisation needs.
const visitsPerm = "visits.act"

// visitAPI is the HTTP face of the visit service.
type visitAPI struct {
	svc       *visits.Service
	hospitals *Hospitals
}

// actingParty reads the acting party of r.
func actingParty(r *http.Request) (visits.Party, error) {
	role, id, ok := strings.Cut(strings.TrimSpace(r.Header.Get(ActingPartyHeader)), ":")
	if !ok || id == "" || (role != visits.RolePatient && role != visits.RoleDoctor) {
		return visits.Party{}, ihos.Errorf(ihos.EInvalid, "请在请求头 %s 中指明患者或医生（patient:编号 或 doctor:编号）", ActingPartyHeader)
	}
	return visits.Party{Role: role, ID: id}, nil
}

func (a visitAPI) routes(mux *http.ServeMux, authorize web.Authorizer) {
	guard := web.Guard(mux, authorize)
	// as registers a route that acts for the request's party.
	as := func(pattern string, fn func(ctx context.Context, by visits.Party, w http.ResponseWriter, r *http.Request) error) {
		guard(pattern, visitsPerm, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
			by, err := actingParty(r)
			if err != nil {
				return err
			}
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
			if r.ContentLength != 0 {
				if err := web.DecodeJSON(r, &req); err != nil {
					return err
				}
			}
			v, err := fn(ctx, by, r.PathValue("id"), req.Reason)
			if err != nil {
				return err
			}
			web.WriteJSON(w, http.StatusOK, v)
			return nil
		}
	}
	as("POST /api/visits/{id}/accept", transition(func(ctx context.Context, by visits.Party, id, _ string) (*visits.Visit, error) {
		return a.svc.Accept(ctx, by, id)
	}))
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
	as("GET /api/events", func(ctx context.Context, by visits.Party, w http.ResponseWriter, r *http.Request) error {
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
	as("GET /api/attachments/{id}", func(ctx context.Context, by visits.Party, w http.ResponseWriter, r *http.Request) error {
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
	visitAPI{svc: svc, hospitals: a.Hospitals}.routes(mux, n.AuthorizeCLIOr)
	return nil
}
