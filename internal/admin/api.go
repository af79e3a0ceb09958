package admin

import (
	"net/http"
	"net/url"
	"strconv"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/web"
)

// Routes registers the JSON API of every resource under prefix (for example
// "/api/admin"):
//
//	GET    {prefix}/{resource}              list: q, page, page_size, sort and field filters
//	POST   {prefix}/{resource}              create
//	GET    {prefix}/{resource}/{id}         get
//	PUT    {prefix}/{resource}/{id}         update (body carries "version")
//	DELETE {prefix}/{resource}/{id}         delete
//	POST   {prefix}/{resource}/{id}/enable  enable
//	POST   {prefix}/{resource}/{id}/disable disable
//
// The caller wraps mux with the auth middleware; every route here needs a session.
func (s *Store) Routes(mux *http.ServeMux, prefix string) {
	mux.Handle("GET "+prefix+"/{resource}", s.handle(s.apiList))
	mux.Handle("POST "+prefix+"/{resource}", s.handle(s.apiCreate))
	mux.Handle("GET "+prefix+"/{resource}/{id}", s.handle(s.apiGet))
	mux.Handle("PUT "+prefix+"/{resource}/{id}", s.handle(s.apiUpdate))
	mux.Handle("DELETE "+prefix+"/{resource}/{id}", s.handle(s.apiDelete))
	mux.Handle("POST "+prefix+"/{resource}/{id}/enable", s.handle(s.apiEnable(true)))
	mux.Handle("POST "+prefix+"/{resource}/{id}/disable", s.handle(s.apiEnable(false)))
}

type resourceHandler func(w http.ResponseWriter, r *http.Request, res *Resource) error

func (s *Store) handle(h resourceHandler) http.Handler {
	return web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if _, ok := ihos.ActorFrom(r.Context()); !ok {
			return ihos.Errorf(ihos.EUnauthorized, "未登录或登录已过期，请重新登录")
		}
		res, err := s.Resource(r.PathValue("resource"))
		if err != nil {
			return err
		}
		return h(w, r, res)
	})
}

// ParseQuery reads list parameters from a URL query: q, page, page_size, sort,
// and every other parameter as a field filter. Pages and the API share it.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Q: v.Get("q"), Sort: v.Get("sort"), Filters: map[string]string{}}
	bad := map[string]string{}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"page", &q.Page}, {"page_size", &q.PageSize}} {
		if s := v.Get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				bad[p.name] = "应为正整数"
				continue
			}
			*p.dst = n
		}
	}
	for k, vals := range v {
		switch k {
		case "q", "page", "page_size", "sort", "csrf_token":
			continue
		}
		if len(vals) > 0 && vals[0] != "" {
			q.Filters[k] = vals[0]
		}
	}
	if len(bad) > 0 {
		return q, ihos.Invalid(bad)
	}
	return q, nil
}

func (s *Store) apiList(w http.ResponseWriter, r *http.Request, res *Resource) error {
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		return err
	}
	page, err := s.List(r.Context(), res, q)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, page)
	return nil
}

func (s *Store) apiGet(w http.ResponseWriter, r *http.Request, res *Resource) error {
	rec, err := s.Get(r.Context(), res, r.PathValue("id"))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, rec)
	return nil
}

func decodeObject(r *http.Request) (map[string]any, error) {
	var input map[string]any
	if err := web.DecodeJSON(r, &input); err != nil {
		return nil, err
	}
	if input == nil {
		return nil, ihos.Errorf(ihos.EInvalid, "请求内容必须是 JSON 对象")
	}
	return input, nil
}

func (s *Store) apiCreate(w http.ResponseWriter, r *http.Request, res *Resource) error {
	input, err := decodeObject(r)
	if err != nil {
		return err
	}
	rec, err := s.Create(r.Context(), res, input)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusCreated, rec)
	return nil
}

func (s *Store) apiUpdate(w http.ResponseWriter, r *http.Request, res *Resource) error {
	input, err := decodeObject(r)
	if err != nil {
		return err
	}
	rec, err := s.Update(r.Context(), res, r.PathValue("id"), input)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, rec)
	return nil
}

func (s *Store) apiDelete(w http.ResponseWriter, r *http.Request, res *Resource) error {
	if err := s.Delete(r.Context(), res, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Store) apiEnable(enabled bool) resourceHandler {
	return func(w http.ResponseWriter, r *http.Request, res *Resource) error {
		rec, err := s.SetEnabled(r.Context(), res, r.PathValue("id"), enabled)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, rec)
		return nil
	}
}

// AuditRoutes registers GET {prefix}/audit: the audit log as JSON, filtered by
// resource, record_id, actor_id, action and q, newest first; and GET
// {prefix}/audit/verify, which checks the hash chain.
func (s *Store) AuditRoutes(mux *http.ServeMux, prefix string) {
	mux.Handle("GET "+prefix+"/audit", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if err := s.Auth.Authorize(r.Context(), "audit.read", ""); err != nil {
			return err
		}
		q := r.URL.Query()
		page, _ := strconv.Atoi(q.Get("page"))
		size, _ := strconv.Atoi(q.Get("page_size"))
		f := audit.Filter{Resource: q.Get("resource"), RecordID: q.Get("record_id"), ActorID: q.Get("actor_id"),
			Action: q.Get("action"), Q: q.Get("q"), Page: page, PageSize: size}
		entries, total, err := audit.List(r.Context(), s.DB, f)
		if err != nil {
			return ihos.Internal(err)
		}
		if entries == nil {
			entries = []audit.Entry{}
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"items": entries, "total": total})
		return nil
	}))
	mux.Handle("GET "+prefix+"/audit/verify", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if err := s.Auth.Authorize(r.Context(), "audit.read", ""); err != nil {
			return err
		}
		bad, err := audit.Verify(r.Context(), s.DB)
		if err != nil {
			return ihos.Internal(err)
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"intact": bad == 0, "first_bad_seq": bad})
		return nil
	}))
}
