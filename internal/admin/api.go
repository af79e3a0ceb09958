package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

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
	mux.Handle(prefix+"/", fallback(mux, prefix))
}

// fallback answers every other path under prefix with a JSON error, as the rest
// of the API does, instead of the mux's plain-text 404 and 405: 405 (with Allow)
// when the path exists for other methods, 404 otherwise.
func fallback(mux *http.ServeMux, prefix string) http.Handler {
	return web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if _, ok := ihos.ActorFrom(r.Context()); !ok {
			return ihos.Errorf(ihos.EUnauthorized, "未登录或登录已过期，请重新登录")
		}
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != prefix+"/" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			return ihos.Errorf(ihos.ENotFound, "接口不存在")
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		web.WriteJSON(w, http.StatusMethodNotAllowed, web.ErrorBody{Code: web.EMethodNotAllowed, Message: "此接口不支持该请求方法"})
		return nil
	})
}

// badText returns a Chinese message when s is not text a person could have
// typed: invalid UTF-8 or control characters. Query parameters are not decoded
// by a JSON parser, so nothing else has replaced invalid bytes.
func badText(s string) string {
	if !utf8.ValidString(s) {
		return "包含无效字符"
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return "包含控制字符"
	}
	return ""
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
	if msg := badText(q.Q); msg != "" {
		bad["q"] = msg
	}
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
	// Authorization runs on every request, before the cache is looked at: a
	// cached page never answers an actor who may not read it, and every denial
	// is audited.
	ctx := r.Context()
	if err := s.Auth.Authorize(ctx, res.Perm+".read", ""); err != nil {
		return err
	}
	if s.ListCacheBytes <= 0 {
		page, err := s.list(ctx, res, q, s.DB.Generation())
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, page)
		return nil
	}
	gen := s.DB.Generation() // before any read: see listcache.go
	key := listKey(ctx, res, q)
	body, ok := s.cache.get(gen, key)
	if ok {
		s.cacheHits.Add(1)
	} else {
		s.cacheMisses.Add(1)
		page, err := s.list(ctx, res, q, gen)
		if err != nil {
			return err
		}
		if body, err = web.EncodeJSON(page); err != nil {
			return ihos.Internal(err)
		}
		s.cache.put(gen, key, body, s.ListCacheBytes)
	}
	web.WriteJSONBytes(w, http.StatusOK, body)
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

// MaxAuditPageSize bounds a page of the audit log.
const MaxAuditPageSize = 200

// maxPage bounds a page number, so page × page size cannot overflow.
const maxPage = 1_000_000

// AuditRoutes registers GET {prefix}/audit: the audit log as JSON, filtered by
// resource, record_id, actor_id, action and q, newest first; and GET
// {prefix}/audit/verify, which checks the hash chain.
func (s *Store) AuditRoutes(mux *http.ServeMux, prefix string) {
	mux.Handle("GET "+prefix+"/audit", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if err := s.Auth.Authorize(r.Context(), "audit.read", ""); err != nil {
			return err
		}
		q := r.URL.Query()
		f := audit.Filter{Resource: q.Get("resource"), RecordID: q.Get("record_id"), ActorID: q.Get("actor_id"),
			Action: q.Get("action"), Q: q.Get("q")}
		bad := map[string]string{}
		for _, p := range []struct {
			name string
			dst  *int
			max  int
		}{{"page", &f.Page, 0}, {"page_size", &f.PageSize, MaxAuditPageSize}} {
			v := q.Get(p.name)
			if v == "" {
				continue
			}
			n, err := strconv.Atoi(v)
			switch {
			case err != nil || n < 1:
				bad[p.name] = "应为正整数"
				continue
			case p.max != 0 && n > p.max:
				bad[p.name] = fmt.Sprintf("每页条数应在 1 到 %d 之间", p.max)
				continue
			}
			*p.dst = min(n, maxPage)
		}
		for name, v := range map[string]string{"resource": f.Resource, "record_id": f.RecordID, "actor_id": f.ActorID, "action": f.Action, "q": f.Q} {
			if msg := badText(v); msg != "" {
				bad[name] = msg
			} else if utf8.RuneCountInString(v) > 100 {
				bad[name] = "不能超过 100 个字"
			}
		}
		if len(bad) > 0 {
			return ihos.Invalid(bad)
		}
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
