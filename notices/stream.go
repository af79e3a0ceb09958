package notices

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	"ihos"
	"ihos/visits"
)

// Pushed is the "notice" event of a user's stream: the notice, and the
// recipient's unread count after it (the badge).
type Pushed struct {
	*Notice
	Unread int `json:"unread"`
}

// patientRole is the audit actor role of a patient session (accounts.Role).
const patientRole = "patient"

// recipients returns who a stream of party by is for: a doctor; for a
// patient, the account of the session (the request's actor), or with a
// staff tool's acting-party header every account the patient is on.
func (s *Service) recipients(ctx context.Context, by visits.Party) ([]Recipient, error) {
	switch by.Role {
	case visits.RoleDoctor:
		return []Recipient{{Kind: ToStaff, ID: by.ID}}, nil
	case visits.RolePatient:
		if a, ok := ihos.ActorFrom(ctx); ok && a.Role == patientRole && a.UserID != "" {
			return []Recipient{{Kind: ToPatient, ID: a.UserID}}, nil
		}
		ids, err := s.strings(ctx, nil, `SELECT DISTINCT account_id FROM patient_members WHERE patient_id = ? AND deleted_at IS NULL`, by.ID)
		if err != nil {
			return nil, err
		}
		out := make([]Recipient, len(ids))
		for i, id := range ids {
			out[i] = Recipient{Kind: ToPatient, ID: id}
		}
		return out, nil
	}
	return nil, nil
}

// Stream is the visits service's Extra: it adds the recipient's new and
// updated notices to their stream (GET /api/events) as "notice" events, from
// the moment the stream opens, or from ?notice_after=<seq> (the newest seq the
// page has, so nothing made in between is missed). A client that reconnects
// reloads its list (GET …/notices); a coalesced notice comes again, with its
// new seq, whenever it is updated, so the page replaces it by id.
func (s *Service) Stream(r *http.Request, by visits.Party) func(ctx context.Context, emit func(event string, v any)) error {
	ctx := r.Context()
	rcs, err := s.recipients(ctx, by)
	cursor, serr := s.lastSeq(ctx)
	if err == nil {
		err = serr
	}
	if err != nil {
		// The stream still carries the visits' messages; the page's list
		// shows the notices.
		slog.WarnContext(ctx, "notices: stream without notices", "err", err)
		return nil
	}
	if len(rcs) == 0 {
		return nil
	}
	if after, err := strconv.ParseInt(r.URL.Query().Get("notice_after"), 10, 64); err == nil && after >= 0 && after < cursor {
		cursor = after
	}
	return func(ctx context.Context, emit func(string, any)) error {
		// Everything up to the committed seq is visible (the seq row commits
		// with the notices it numbers): read up to it, then move past it.
		last, err := s.lastSeq(ctx)
		if err != nil || last <= cursor {
			return err
		}
		for _, rc := range rcs {
			unread := -1
			for after := cursor; ; {
				page, err := s.between(ctx, rc, after, last)
				if err != nil {
					return err
				}
				if len(page) > 0 && unread < 0 {
					if unread, err = s.Unread(ctx, rc); err != nil {
						return err
					}
				}
				for _, n := range page {
					emit("notice", Pushed{Notice: n, Unread: unread})
				}
				if len(page) < pushBatch {
					break
				}
				after = page[len(page)-1].Seq
			}
		}
		cursor = last
		return nil
	}
}

// pushBatch is how many notices one read sends.
const pushBatch = 200

// between returns rc's notices with after < seq <= upto, oldest first.
func (s *Service) between(ctx context.Context, rc Recipient, after, upto int64) ([]*Notice, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+noticeCols+` FROM notices WHERE recipient_kind = ? AND recipient_id = ? AND seq > ? AND seq <= ?
		ORDER BY seq LIMIT ?`, rc.Kind, rc.ID, after, upto, pushBatch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Notice
	for rows.Next() {
		n, err := scanNotice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
