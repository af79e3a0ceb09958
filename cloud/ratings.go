package cloud

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"ihos"
	"ihos/accounts"
	"ihos/internal/web"
	"ihos/ratings"
)

// ratingAPI is the HTTP face of package ratings.
type ratingAPI struct {
	svc      *ratings.Service
	patients *accounts.Service
}

// routes registers:
//
//	POST /api/visits/{id}/rating          {"score": 1..5, "comment", "tags": [...]} → Rating (201);
//	                                      the visit's patient account only, once the visit ended, once (409 已评价)
//	GET  /api/visits/{id}/rating          the account's rating of the visit (404 尚未评价)
//	GET  /api/public/doctors/{id}/ratings?limit=&before=  {"average", "count", "items": [{score, comment, tags, created_at, patient}]}
//	GET  /api/public/rating-tags          {"tags": [...], "max_tags", "max_comment"}: what the rating page offers
func (x ratingAPI) routes(mux *http.ServeMux) {
	x.patients.Handle(mux, "POST /api/visits/{id}/rating", func(ctx context.Context, p accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		var in ratings.Input
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		rt, err := x.svc.Rate(ctx, p.AccountID, r.PathValue("id"), in)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusCreated, rt)
		return nil
	})
	x.patients.Handle(mux, "GET /api/visits/{id}/rating", func(ctx context.Context, p accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		rt, err := x.svc.OfVisit(ctx, p.AccountID, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, rt)
		return nil
	})
	mux.Handle("GET /api/public/doctors/{id}/ratings", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		var before time.Time
		if b := q.Get("before"); b != "" {
			t, err := time.Parse(time.RFC3339Nano, b)
			if err != nil {
				return ihos.Invalid(map[string]string{"before": "时间格式应为 RFC 3339，如 2026-12-01T08:00:00Z"})
			}
			before = t
		}
		sum, err := x.svc.Doctor(r.Context(), r.PathValue("id"), limit, before)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, sum)
		return nil
	}))
	mux.Handle("GET /api/public/rating-tags", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		web.WriteJSON(w, http.StatusOK, map[string]any{"tags": ratings.Tags, "max_tags": ratings.MaxTags, "max_comment": ratings.MaxComment})
		return nil
	}))
}
