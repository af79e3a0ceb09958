package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"

	"ihos"
)

// Sessions: the console's staff, the patients' H5 pages and the doctors' app
// keep their own session tables, but read and check tokens the same way.

// SessionToken returns the request's session token: a bearer token (the
// mini-program's web-view, the CLI) wins over the named cookie. fromCookie
// says it came from the cookie, whose unsafe requests must pass CSRFValid —
// a browser attaches cookies by itself, never a bearer token.
func SessionToken(r *http.Request, cookie string) (token string, fromCookie bool) {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return strings.TrimSpace(h[len("Bearer "):]), false
	}
	if c, err := r.Cookie(cookie); err == nil {
		return c.Value, true
	}
	return "", false
}

// SafeMethod reports whether m changes nothing (no CSRF check needed).
func SafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// CSRFValid reports whether the request carries the session's CSRF token
// want, in the header (scripts) or, for a plain form post, the csrf_token
// field.
func CSRFValid(r *http.Request, header, want string) bool {
	got := r.Header.Get(header)
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		got = r.PostFormValue("csrf_token")
	}
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// ErrCSRF is the answer to a cookie session's unsafe request without its
// CSRF token.
var ErrCSRF = ihos.Errorf(ihos.EForbidden, "页面已过期（CSRF 校验失败），请刷新后重试")

// NewSessionToken returns a new random session token (256 bits).
func NewSessionToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // the OS random source failing is not recoverable
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// SessionTokenHash is what a session table stores instead of the token, so
// a copy of the table does not let anyone in.
func SessionTokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}
