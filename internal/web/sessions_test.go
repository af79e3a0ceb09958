package web_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
)

// sessionRow reads a session's owner and last use, ok false when it is gone.
func sessionRow(t *testing.T, db *sqldb.DB, token string) (owner, seen string, ok bool) {
	t.Helper()
	err := db.QueryRowContext(context.Background(), `SELECT account_id, last_seen_at FROM patient_sessions WHERE token_hash = ?`,
		web.SessionTokenHash(token)).Scan(&owner, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return owner, seen, true
}

func TestSessionsRows(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := web.Sessions{DB: db, Table: "patient_sessions", Owner: "account_id", Log: "test"}
		t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
		insert := func(token, owner string, expires time.Time) {
			t.Helper()
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				return s.Insert(ctx, tx, token, "csrf-"+token, owner, "10.0.0.1", strings.Repeat("u", 300), t0, expires)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, tok := range []string{"a1", "a2", "idle", "expired", "refused"} {
			insert(tok, "acct-"+tok[:1], t0.Add(time.Hour))
		}
		var hash, csrf, ua string
		if err := db.QueryRowContext(ctx, `SELECT token_hash, csrf_token, user_agent FROM patient_sessions WHERE account_id = 'acct-a' AND csrf_token = 'csrf-a1'`).Scan(&hash, &csrf, &ua); err != nil {
			t.Fatal(err)
		}
		if hash != web.SessionTokenHash("a1") || len(ua) != 200 {
			t.Errorf("stored hash %q, user agent %d chars: want the token's hash and 200 chars", hash, len(ua))
		}
		live := func(token string, admitted bool, now time.Time, idle time.Duration) bool {
			_, seen, ok := sessionRow(t, db, token)
			if !ok {
				t.Fatalf("session %s gone before the check", token)
			}
			return s.Live(ctx, web.SessionTokenHash(token), admitted, ihos.FormatTime(t0.Add(time.Hour)), seen, now, idle)
		}
		// Used within a minute: live, last use not written.
		if !live("a1", true, t0.Add(30*time.Second), time.Hour) {
			t.Fatal("fresh session not live")
		}
		if _, seen, _ := sessionRow(t, db, "a1"); seen != ihos.FormatTime(t0) {
			t.Errorf("last use written within a minute: %s", seen)
		}
		// Used after two minutes: last use written.
		if !live("a1", true, t0.Add(2*time.Minute), time.Hour) {
			t.Fatal("session not live after two minutes")
		}
		if _, seen, _ := sessionRow(t, db, "a1"); seen != ihos.FormatTime(t0.Add(2*time.Minute)) {
			t.Errorf("last use %s, want it written at +2m", seen)
		}
		// Idle, expired and refused sessions end and are deleted.
		if live("idle", true, t0.Add(20*time.Minute), 10*time.Minute) {
			t.Error("idle session live")
		}
		if live("expired", true, t0.Add(time.Hour), 2*time.Hour) {
			t.Error("expired session live")
		}
		if live("refused", false, t0, time.Hour) {
			t.Error("session of a refused owner live")
		}
		for _, tok := range []string{"idle", "expired", "refused"} {
			if _, _, ok := sessionRow(t, db, tok); ok {
				t.Errorf("ended session %s not deleted", tok)
			}
		}
		// Delete ends one session, DeleteOwner every session of an owner.
		insert("b1", "acct-b", t0.Add(time.Hour))
		if err := db.Tx(ctx, func(tx *sql.Tx) error { return s.Delete(ctx, tx, web.SessionTokenHash("a1")) }); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := sessionRow(t, db, "a1"); ok {
			t.Error("Delete kept the session")
		}
		if _, _, ok := sessionRow(t, db, "a2"); !ok {
			t.Error("Delete removed another session")
		}
		if err := db.Tx(ctx, func(tx *sql.Tx) error { return s.DeleteOwner(ctx, tx, "acct-a") }); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := sessionRow(t, db, "a2"); ok {
			t.Error("DeleteOwner kept the owner's session")
		}
		if owner, _, ok := sessionRow(t, db, "b1"); !ok || owner != "acct-b" {
			t.Error("DeleteOwner removed another owner's session")
		}
	})
}

type holder struct{ id string }

func (h holder) Actor(ip, requestID string) ihos.Actor {
	return ihos.Actor{UserID: h.id, IP: ip, RequestID: requestID}
}

func TestSessionCookieAuthorize(t *testing.T) {
	c := web.SessionCookie{Name: "ihos_test", CSRFHeader: "X-CSRF-Token", Secure: true}
	noSession := ihos.Errorf(ihos.EUnauthorized, "未登录")
	lookup := func(ctx context.Context, th string) (holder, string, error) {
		if th != web.SessionTokenHash("good") {
			return holder{}, "", noSession
		}
		return holder{"h1"}, "the-csrf", nil
	}
	req := func(method, bearer, cookie, csrf string) *http.Request {
		r := httptest.NewRequest(method, "/x", nil)
		if bearer != "" {
			r.Header.Set("Authorization", "Bearer "+bearer)
		}
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: "ihos_test", Value: cookie})
		}
		if csrf != "" {
			r.Header.Set("X-CSRF-Token", csrf)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		want error
	}{
		{"no token", req("GET", "", "", ""), noSession},
		{"oversized token", req("GET", strings.Repeat("x", 101), "", ""), noSession},
		{"unknown token", req("GET", "bad", "", ""), noSession},
		{"bearer post without csrf", req("POST", "good", "", ""), nil},
		{"cookie get", req("GET", "", "good", ""), nil},
		{"cookie post without csrf", req("POST", "", "good", ""), web.ErrCSRF},
		{"cookie post with wrong csrf", req("POST", "", "good", "nope"), web.ErrCSRF},
		{"cookie post with csrf", req("POST", "", "good", "the-csrf"), nil},
	} {
		h, err := web.Authorize(c, tc.r, noSession, lookup)
		if err != tc.want {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
		if err == nil && h.id != "h1" {
			t.Errorf("%s: holder %+v", tc.name, h)
		}
	}

	exp := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	w := httptest.NewRecorder()
	c.Set(w, "tok", exp)
	set := w.Result().Cookies()
	if len(set) != 1 || set[0].Name != "ihos_test" || set[0].Value != "tok" || set[0].Path != "/" || !set[0].HttpOnly ||
		!set[0].Secure || set[0].SameSite != http.SameSiteLaxMode || !set[0].Expires.Equal(exp) {
		t.Errorf("Set cookie %+v", set)
	}
	w = httptest.NewRecorder()
	c.Clear(w)
	if got := w.Header().Get("Set-Cookie"); !strings.HasPrefix(got, "ihos_test=;") || !strings.Contains(got, "Max-Age=0") ||
		!strings.Contains(got, "HttpOnly") || !strings.Contains(got, "Secure") {
		t.Errorf("Clear cookie %q", got)
	}
}

func TestHandleSession(t *testing.T) {
	mux := http.NewServeMux()
	authorize := func(r *http.Request) (holder, error) {
		if r.Header.Get("Authorization") != "Bearer good" {
			return holder{}, ihos.Errorf(ihos.EUnauthorized, "未登录")
		}
		return holder{"h1"}, nil
	}
	web.HandleSession(mux, "GET /x", authorize, func(ctx context.Context, h holder, w http.ResponseWriter, r *http.Request) error {
		a, ok := ihos.ActorFrom(ctx)
		if !ok || a.UserID != "h1" || a.IP == "" {
			t.Errorf("actor %+v %v", a, ok)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	r := httptest.NewRequest("GET", "/x", nil)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("without a session: %d, want 401", w.Code)
	}
	r = httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer good")
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != http.StatusNoContent {
		t.Errorf("with a session: %d, want 204", w.Code)
	}
}
