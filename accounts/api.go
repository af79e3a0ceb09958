package accounts

import (
	"context"
	"net/http"
	"strings"

	"ihos/internal/web"
)

// CookieName is the patient session cookie of the H5 pages.
const CookieName = "ihos_patient"

// CSRFHeader carries the session's CSRF token on cookie-authenticated writes.
const CSRFHeader = "X-CSRF-Token"

// Authorize returns the patient of the request's session: the bearer token
// or the session cookie. A cookie session must present its CSRF token on
// every unsafe method (a browser never attaches a bearer token by itself).
// The payment and booking APIs use it for their patient routes.
func (s *Service) Authorize(r *http.Request) (Patient, error) {
	return web.Authorize(s.cookie(), r, ErrNoSession, s.lookup)
}

// cookie is how the patient session travels over HTTP.
func (s *Service) cookie() web.SessionCookie {
	return web.SessionCookie{Name: CookieName, CSRFHeader: CSRFHeader, Secure: s.SecureCookie}
}

// Handler is a patient route's handler: ctx carries the patient as the
// audit actor.
type Handler func(ctx context.Context, p Patient, w http.ResponseWriter, r *http.Request) error

// Handle registers fn at pattern behind Authorize.
func (s *Service) Handle(mux *http.ServeMux, pattern string, fn Handler) {
	web.HandleSession(mux, pattern, s.Authorize, fn)
}

// Routes registers the patient account API:
//
//	POST /api/patient/sms-code               {"phone"} → 204; the code goes by SMS
//	POST /api/patient/login                  {"hospital_id","phone","code"} → Session (and the cookie)
//	POST /api/patient/logout                 ends the session
//	GET  /api/patient/me                     {"patient","csrf_token"}
//	POST /api/patient/realname               {"name","id_number"} → Member (本人)
//	GET  /api/patient/members                {"members": [Member]}
//	POST /api/patient/members                MemberInput → Member
//	POST /api/patient/members/{id}/link-his  → Member with the HIS link
func (s *Service) Routes(mux *http.ServeMux) {
	mux.Handle("POST /api/patient/sms-code", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Phone string `json:"phone"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		if err := s.RequestCode(r.Context(), in.Phone, web.ClientIP(r)); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	mux.Handle("POST /api/patient/login", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			HospitalID string `json:"hospital_id"`
			Phone      string `json:"phone"`
			Code       string `json:"code"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		sess, err := s.Login(r.Context(), in.HospitalID, in.Phone, strings.TrimSpace(in.Code), web.ClientIP(r), r.UserAgent())
		if err != nil {
			return err
		}
		s.cookie().Set(w, sess.Token, sess.ExpiresAt)
		web.WriteJSON(w, http.StatusOK, sess)
		return nil
	}))
	mux.Handle("POST /api/patient/logout", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if _, err := s.Authorize(r); err != nil {
			return err
		}
		tok, _ := web.SessionToken(r, CookieName)
		if err := s.Logout(r.Context(), tok); err != nil {
			return err
		}
		s.cookie().Clear(w)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	s.Handle(mux, "GET /api/patient/me", func(ctx context.Context, p Patient, w http.ResponseWriter, r *http.Request) error {
		tok, _ := web.SessionToken(r, CookieName)
		_, csrf, err := s.lookup(ctx, web.SessionTokenHash(tok))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"patient": p, "csrf_token": csrf})
		return nil
	})
	s.Handle(mux, "POST /api/patient/realname", func(ctx context.Context, p Patient, w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Name     string `json:"name"`
			IDNumber string `json:"id_number"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		m, err := s.RealName(ctx, p, in.Name, in.IDNumber)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, m)
		return nil
	})
	s.Handle(mux, "GET /api/patient/members", func(ctx context.Context, p Patient, w http.ResponseWriter, r *http.Request) error {
		ms, err := s.Members(ctx, p)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"members": ms})
		return nil
	})
	s.Handle(mux, "POST /api/patient/members", func(ctx context.Context, p Patient, w http.ResponseWriter, r *http.Request) error {
		var in MemberInput
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		m, err := s.AddMember(ctx, p, in)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusCreated, m)
		return nil
	})
	s.Handle(mux, "POST /api/patient/members/{id}/link-his", func(ctx context.Context, p Patient, w http.ResponseWriter, r *http.Request) error {
		m, err := s.LinkHIS(ctx, p, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, m)
		return nil
	})
}
