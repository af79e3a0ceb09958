package cloud

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"strings"

	"ihos"
	"ihos/accounts"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/notices"
	"ihos/ratings"
	"ihos/sync"
	"ihos/visits"
)

// startFeed makes the cloud's followers of its own change feed
// (sync.Replica.Follow): the doctors' statistics count ended visits
// (package ratings) and the message center queues what may make a notice
// (package notices), each inside the transaction that promotes a local
// change to the outbox or applies a hospital's change. It must run before
// the link starts, so no change passes unseen; the notice worker starts
// later with startPatientSide.
func startFeed(r *sync.Replica) *notices.Feed {
	feed := notices.NewFeed()
	r.Follow = func(ctx context.Context, tx *sql.Tx, envs []*sync.Envelope) error {
		if err := ratings.Follow(ctx, tx, envs); err != nil {
			return err
		}
		return feed.Follow(ctx, tx, envs)
	}
	return feed
}

// startPatientSide serves the patient's side of a visit after it: the
// message center (patients' and doctors' notices, pushed on their GET
// /api/events stream), ratings, and the patient's visit and order history.
// Its worker runs until ctx ends. Start it after startVisits.
func startPatientSide(ctx context.Context, n *node.Node, a *App, mux *http.ServeMux, feed *notices.Feed) {
	svc := &notices.Service{DB: n.DB, Visits: a.Visits, Kick: feed.Kick()}
	a.Visits.Extra = svc.Stream
	go svc.Run(ctx)
	noticeAPI{svc: svc, app: a, staff: n.AuthorizeCLIOr}.routes(mux)
	rs := &ratings.Service{
		DB: n.DB,
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			return a.Replica.Capture(ctx, tx, "", refs...) // "": each rating goes to its visit's hospital
		},
		AfterCommit: a.Link.Kick,
	}
	ratingAPI{svc: rs, patients: a.Patients}.routes(mux)
	patientLists{db: n.DB, visits: a.Visits, patients: a.Patients}.routes(mux)
}

// noticeAPI is the message center's HTTP face.
type noticeAPI struct {
	svc   *notices.Service
	app   *App
	staff web.Authorizer // node.AuthorizeCLIOr: tools acting as a doctor
}

// routes registers, for a patient session (the whole account's notices):
//
//	GET  /api/patient/notices?after=&before=&limit=&unread=1  → [Notice], newest first
//	POST /api/patient/notices/read  {"ids": [...]} or {"ids": "all"} → {"updated", "unread"}
//	GET  /api/patient/notices/unread → {"count"}
//
// and the same under /api/doctor/notices for a doctor's app session (or a
// tool with the CLI token and X-IHOS-Acting-Party: doctor:<id>).
func (x noticeAPI) routes(mux *http.ServeMux) {
	x.app.Patients.Handle(mux, "GET /api/patient/notices", func(ctx context.Context, p accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		return x.list(ctx, patientRecipient(p), w, r)
	})
	x.app.Patients.Handle(mux, "POST /api/patient/notices/read", func(ctx context.Context, p accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		return x.read(ctx, patientRecipient(p), w, r)
	})
	x.app.Patients.Handle(mux, "GET /api/patient/notices/unread", func(ctx context.Context, p accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		return x.unread(ctx, patientRecipient(p), w)
	})
	doctor := func(pattern string, fn func(ctx context.Context, rc notices.Recipient, w http.ResponseWriter, r *http.Request) error) {
		mux.Handle(pattern, web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			ctx, rc, err := x.doctor(r)
			if err != nil {
				return err
			}
			return fn(ctx, rc, w, r)
		}))
	}
	doctor("GET /api/doctor/notices", x.list)
	doctor("POST /api/doctor/notices/read", x.read)
	doctor("GET /api/doctor/notices/unread", func(ctx context.Context, rc notices.Recipient, w http.ResponseWriter, _ *http.Request) error {
		return x.unread(ctx, rc, w)
	})
}

func patientRecipient(p accounts.Patient) notices.Recipient {
	return notices.Recipient{Kind: notices.ToPatient, ID: p.AccountID}
}

// doctor authorises a doctor's notice route: the doctor's app session, or
// a tool acting as a doctor.
func (x noticeAPI) doctor(r *http.Request) (context.Context, notices.Recipient, error) {
	ctx, st, p, err := appSession(x.app, r)
	switch {
	case err != nil:
		return nil, notices.Recipient{}, err
	case st != nil:
		return ctx, notices.Recipient{Kind: notices.ToStaff, ID: st.ID}, nil
	case p != nil:
		return nil, notices.Recipient{}, ihos.Errorf(ihos.EForbidden, "这是医生的消息中心，请在“我的消息”中查看您的消息")
	}
	ctx, err = x.staff(r, visitsPerm)
	if err != nil {
		return nil, notices.Recipient{}, err
	}
	by, err := actingParty(r)
	if err != nil {
		return nil, notices.Recipient{}, err
	}
	if by.Role != visits.RoleDoctor {
		return nil, notices.Recipient{}, ihos.Errorf(ihos.EInvalid, "请在请求头 %s 中指明医生（doctor:编号）", ActingPartyHeader)
	}
	return ctx, notices.Recipient{Kind: notices.ToStaff, ID: by.ID}, nil
}

func (x noticeAPI) list(ctx context.Context, rc notices.Recipient, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	after, err := queryInt(q.Get("after"), "after")
	if err != nil {
		return err
	}
	before, err := queryInt(q.Get("before"), "before")
	if err != nil {
		return err
	}
	limit, err := queryInt(q.Get("limit"), "limit")
	if err != nil {
		return err
	}
	list, err := x.svc.List(ctx, rc, notices.Query{After: after, Before: before, Limit: int(limit), Unread: q.Get("unread") == "1"})
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, list)
	return nil
}

func (x noticeAPI) read(ctx context.Context, rc notices.Recipient, w http.ResponseWriter, r *http.Request) error {
	var req struct {
		IDs json.RawMessage `json:"ids"`
	}
	if err := web.DecodeJSON(r, &req); err != nil {
		return err
	}
	var ids []string
	var all string
	switch {
	case json.Unmarshal(req.IDs, &all) == nil && all == "all":
	case json.Unmarshal(req.IDs, &ids) == nil && len(ids) > 0:
		for i := range ids {
			ids[i] = strings.TrimSpace(ids[i])
		}
	default:
		return ihos.Invalid(map[string]string{"ids": "请指定要标记为已读的消息编号列表，或 \"all\""})
	}
	n, err := x.svc.MarkRead(ctx, rc, ids, all == "all")
	if err != nil {
		return err
	}
	unread, err := x.svc.Unread(ctx, rc)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]int{"updated": n, "unread": unread})
	return nil
}

func (x noticeAPI) unread(ctx context.Context, rc notices.Recipient, w http.ResponseWriter) error {
	n, err := x.svc.Unread(ctx, rc)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]int{"count": n})
	return nil
}
