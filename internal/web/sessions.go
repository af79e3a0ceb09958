package web

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"time"

	"ihos"
	"ihos/internal/sqldb"
)

// Sessions is the row mechanics of one session table (patient_sessions,
// staff_app_sessions): the tables differ only in their owner column, and
// each package keeps its own lookup join for what the owner is.
type Sessions struct {
	DB    *sqldb.DB
	Table string // e.g. "patient_sessions"
	Owner string // the owner column, e.g. "account_id"
	Log   string // the package named in a failure's log line
}

// Insert stores a new session of owner in tx: the token only as its hash.
func (s Sessions) Insert(ctx context.Context, tx *sql.Tx, token, csrf, owner, ip, userAgent string, now, expires time.Time) error {
	ts := ihos.FormatTime(now)
	_, err := s.DB.TxExec(ctx, tx, `INSERT INTO `+s.Table+` (token_hash, `+s.Owner+`, csrf_token, ip, user_agent, created_at, expires_at, last_seen_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, SessionTokenHash(token), owner, csrf, ihos.Truncate(ip, 64), ihos.Truncate(userAgent, 200),
		ts, ihos.FormatTime(expires), ts)
	return err
}

// Live reports whether the session th, as its lookup read it (expires_at,
// last_seen_at), still holds at now: admitted by its owner's state, not
// expired, not idle for longer than idle. A session that does not hold is
// deleted; one that does has its last use written, at most once a minute
// so that reading a session rarely writes.
func (s Sessions) Live(ctx context.Context, th string, admitted bool, expires, seen string, now time.Time, idle time.Duration) bool {
	exp, _ := ihos.ParseTime(expires)
	last, _ := ihos.ParseTime(seen)
	if !admitted || !now.Before(exp) || now.Sub(last) > idle {
		s.drop(ctx, th)
		return false
	}
	if now.Sub(last) > time.Minute {
		s.DB.Tx(ctx, func(tx *sql.Tx) error {
			_, err := s.DB.TxExec(ctx, tx, `UPDATE `+s.Table+` SET last_seen_at = ? WHERE token_hash = ?`, ihos.FormatTime(now), th)
			return err
		})
	}
	return true
}

// drop deletes an ended session even when the request is cancelled; a
// failure is only logged (the session no longer admits anyone anyway).
func (s Sessions) drop(ctx context.Context, th string) {
	ctx = context.WithoutCancel(ctx)
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error { return s.Delete(ctx, tx, th) })
	if err != nil {
		slog.ErrorContext(ctx, s.Log+": drop session", "err", err)
	}
}

// Delete ends the session th in tx (a logout).
func (s Sessions) Delete(ctx context.Context, tx *sql.Tx, th string) error {
	_, err := s.DB.TxExec(ctx, tx, `DELETE FROM `+s.Table+` WHERE token_hash = ?`, th)
	return err
}

// DeleteOwner ends every session of owner in tx (a revocation).
func (s Sessions) DeleteOwner(ctx context.Context, tx *sql.Tx, owner string) error {
	_, err := s.DB.TxExec(ctx, tx, `DELETE FROM `+s.Table+` WHERE `+s.Owner+` = ?`, owner)
	return err
}

// SessionCookie is how one kind of session travels over HTTP: its cookie
// (or a bearer token) and the header of its CSRF token.
type SessionCookie struct {
	Name       string
	CSRFHeader string
	Secure     bool
}

// Authorize returns the holder of the request's session through lookup
// (which maps a token hash to the holder and the session's CSRF token).
// A missing or oversized token is noSession; a cookie session must present
// its CSRF token on every unsafe method (a browser never attaches a bearer
// token by itself).
func Authorize[T any](c SessionCookie, r *http.Request, noSession error, lookup func(ctx context.Context, th string) (T, string, error)) (T, error) {
	var zero T
	tok, fromCookie := SessionToken(r, c.Name)
	if tok == "" || len(tok) > 100 {
		return zero, noSession
	}
	v, csrf, err := lookup(r.Context(), SessionTokenHash(tok))
	if err != nil {
		return zero, err
	}
	if fromCookie && !SafeMethod(r.Method) && !CSRFValid(r, c.CSRFHeader, csrf) {
		return zero, ErrCSRF
	}
	return v, nil
}

// Set sets the session cookie of a new login.
func (c SessionCookie) Set(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: c.Name, Value: token, Path: "/", Expires: expires,
		HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteLaxMode})
}

// Clear removes the session cookie (a logout).
func (c SessionCookie) Clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: c.Name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: c.Secure})
}

// SessionHolder is a session's holder as the audit actor of its requests.
type SessionHolder interface {
	Actor(ip, requestID string) ihos.Actor
}

// HandleSession registers fn at pattern behind authorize; fn's ctx carries
// the holder as the audit actor.
func HandleSession[T SessionHolder](mux *http.ServeMux, pattern string, authorize func(*http.Request) (T, error),
	fn func(ctx context.Context, v T, w http.ResponseWriter, r *http.Request) error) {
	mux.Handle(pattern, HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		v, err := authorize(r)
		if err != nil {
			return err
		}
		ctx := ihos.WithActor(r.Context(), v.Actor(ClientIP(r), RequestID(r.Context())))
		return fn(ctx, v, w, r)
	}))
}
