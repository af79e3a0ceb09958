package staffauth

import (
	"context"
	"net/http"
	"strings"

	"ihos"
	"ihos/internal/web"
)

// CookieName is the staff session cookie of the doctor app.
const CookieName = "ihos_staff"

// CSRFHeader carries the session's CSRF token on cookie-authenticated writes.
const CSRFHeader = "X-CSRF-Token"

// ErrMustChange refuses every action but changing the password after a
// login with an issued password.
var ErrMustChange = ihos.Errorf(ihos.EForbidden, "首次登录请先修改密码")

// Authorize returns the staff member of the request's session: the bearer
// token or the session cookie (whose unsafe requests must carry the CSRF
// token). It refuses a session whose holder the hospital has since disabled
// and one that still has to change its issued password. The visit and
// prescription APIs use it for their doctor and pharmacist routes.
func (s *Service) Authorize(r *http.Request) (Staff, error) {
	st, err := s.authorize(r)
	if err != nil {
		return Staff{}, err
	}
	if st.MustChange {
		return Staff{}, ErrMustChange
	}
	return st, nil
}

// authorize is Authorize that admits a session that must change its password.
func (s *Service) authorize(r *http.Request) (Staff, error) {
	return web.Authorize(s.cookie(), r, ErrNoSession, s.lookup)
}

// cookie is how the staff session travels over HTTP.
func (s *Service) cookie() web.SessionCookie {
	return web.SessionCookie{Name: CookieName, CSRFHeader: CSRFHeader, Secure: s.SecureCookie}
}

// Handler is a staff route's handler: ctx carries the staff member as the
// audit actor.
type Handler func(ctx context.Context, st Staff, w http.ResponseWriter, r *http.Request) error

// Handle registers fn at pattern behind Authorize.
func (s *Service) Handle(mux *http.ServeMux, pattern string, fn Handler) {
	s.handle(mux, pattern, s.Authorize, fn)
}

func (s *Service) handle(mux *http.ServeMux, pattern string, authorize func(*http.Request) (Staff, error), fn Handler) {
	web.HandleSession(mux, pattern, authorize, fn)
}

// Routes registers the staff app's login API:
//
//	POST /api/staff/login          {"phone","password"} → Session (and the cookie)
//	POST /api/staff/password       {"old_password","new_password"} → 204
//	POST /api/staff/logout         ends the session
//	GET  /api/staff/me             {"staff","csrf_token"}
//	POST /api/staff/realname/code  → 204; the code goes by SMS to the phone on record
//	POST /api/staff/realname       {"code"} → {"staff"} with realname_today set
func (s *Service) Routes(mux *http.ServeMux) {
	mux.Handle("POST /api/staff/login", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Phone    string `json:"phone"`
			Password string `json:"password"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		sess, err := s.Login(r.Context(), in.Phone, in.Password, web.ClientIP(r), r.UserAgent())
		if err != nil {
			return err
		}
		s.cookie().Set(w, sess.Token, sess.ExpiresAt)
		web.WriteJSON(w, http.StatusOK, sess)
		return nil
	}))
	s.handle(mux, "POST /api/staff/password", s.authorize, func(ctx context.Context, st Staff, w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Old string `json:"old_password"`
			New string `json:"new_password"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		tok, _ := web.SessionToken(r, CookieName)
		if err := s.ChangePassword(ctx, st, tok, in.Old, in.New); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle(mux, "POST /api/staff/logout", s.authorize, func(ctx context.Context, st Staff, w http.ResponseWriter, r *http.Request) error {
		tok, _ := web.SessionToken(r, CookieName)
		if err := s.Logout(ctx, tok); err != nil {
			return err
		}
		s.cookie().Clear(w)
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.handle(mux, "GET /api/staff/me", s.authorize, func(ctx context.Context, st Staff, w http.ResponseWriter, r *http.Request) error {
		tok, _ := web.SessionToken(r, CookieName)
		_, csrf, err := s.lookup(ctx, web.SessionTokenHash(tok))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"staff": st, "csrf_token": csrf})
		return nil
	})
	s.Handle(mux, "POST /api/staff/realname/code", func(ctx context.Context, st Staff, w http.ResponseWriter, r *http.Request) error {
		if err := s.SendRealNameCode(ctx, st); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	s.Handle(mux, "POST /api/staff/realname", func(ctx context.Context, st Staff, w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Code string `json:"code"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		if err := s.ConfirmRealName(ctx, st, strings.TrimSpace(in.Code)); err != nil {
			return err
		}
		st.RealNameToday = true
		web.WriteJSON(w, http.StatusOK, map[string]any{"staff": st})
		return nil
	})
}

// AdminRoutes registers the console's app-access actions on the appliance
// (开通互联网诊疗账号), behind the staffapp permissions:
//
//	POST /api/admin/staff/{id}/app-access          → {"password"} shown once
//	POST /api/admin/staff/{id}/app-access/disable  → 204
func (s *Service) AdminRoutes(mux *http.ServeMux, authorize web.Authorizer) {
	handle := web.Guard(mux, authorize)
	handle("POST /api/admin/staff/{id}/app-access", "staffapp.write", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		pw, err := s.Grant(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]string{"password": pw,
			"notice": "初始密码仅显示这一次，请当面告知本人；首次登录须修改密码"})
		return nil
	})
	handle("POST /api/admin/staff/{id}/app-access/disable", "staffapp.write", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		if err := s.Disable(ctx, r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
