package cloudtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"ihos/accounts"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/staffauth"
)

// Auth is who a call is sent as: it sets the request's credentials.
type Auth func(*http.Request)

// Bearer sends token as "Authorization: Bearer" (the mini-program's
// web-view, the staff app); "" sends nothing.
func Bearer(token string) Auth {
	return func(r *http.Request) {
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
	}
}

// PatientCookie sends the H5's session cookie with csrf as its CSRF header
// ("" sends none).
func PatientCookie(token, csrf string) Auth {
	return func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: accounts.CookieName, Value: token})
		if csrf != "" {
			r.Header.Set(accounts.CSRFHeader, csrf)
		}
	}
}

// StaffCookie sends the staff app's session cookie (safe methods only: it
// carries no CSRF token).
func StaffCookie(token string) Auth {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: staffauth.CookieName, Value: token}) }
}

// Header sends header k: v (an acting party, Last-Event-ID, ...).
func Header(k, v string) Auth {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

// CLI acts as the command-line tool: staff-level access to everything.
func (c *Cloud) CLI() Auth { return Header(node.CLITokenHeader, c.Token) }

// Response is an answer as the test reads it.
type Response struct {
	Status int
	Body   []byte
	// Error is the error body of a 3xx-5xx answer.
	Error web.ErrorBody
}

// Message is the error's Chinese message with its field messages.
func (r *Response) Message() string {
	text := r.Error.Message
	for _, f := range r.Error.Fields {
		text += " " + f
	}
	return text
}

// Request builds a request for the cloud's path with body as JSON.
func (c *Cloud) Request(method, path string, body any, auth ...Auth) *http.Request {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	for _, a := range auth {
		a(req)
	}
	return req
}

// Send calls the API and reads the whole answer; it never fails the test,
// so goroutines may call it.
func (c *Cloud) Send(method, path string, body any, auth ...Auth) (*Response, error) {
	resp, err := c.HC.Do(c.Request(method, path, body, auth...))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	r := &Response{Status: resp.StatusCode}
	r.Body, _ = io.ReadAll(resp.Body)
	if r.Status >= 300 {
		json.Unmarshal(r.Body, &r.Error)
	}
	return r, nil
}

// Try is Call for goroutines: a failed request is status 0 and the error,
// an undecodable success its message.
func (c *Cloud) Try(method, path string, body, out any, auth ...Auth) (int, string) {
	r, err := c.Send(method, path, body, auth...)
	if err != nil {
		return 0, err.Error()
	}
	if r.Status >= 300 {
		return r.Status, r.Error.Message
	}
	if out != nil && len(r.Body) > 0 {
		if err := json.Unmarshal(r.Body, out); err != nil {
			return r.Status, fmt.Sprintf("decode %s: %v", r.Body, err)
		}
	}
	return r.Status, ""
}

// Call calls the API with body as JSON and decodes a success into out; it
// returns the status and, for a refusal, its Chinese message. A failed
// request or an undecodable success fails the test.
func (c *Cloud) Call(method, path string, body, out any, auth ...Auth) (int, string) {
	c.T.Helper()
	r := c.Answer(method, path, body, out, auth...)
	return r.Status, r.Error.Message
}

// Answer is Call returning the whole answer (field messages, raw body).
func (c *Cloud) Answer(method, path string, body, out any, auth ...Auth) *Response {
	c.T.Helper()
	r, err := c.Send(method, path, body, auth...)
	if err != nil {
		c.T.Fatal(err)
	}
	if r.Status < 300 && out != nil && len(r.Body) > 0 {
		if err := json.Unmarshal(r.Body, out); err != nil {
			c.T.Fatalf("%s %s: %s: %v", method, path, r.Body, err)
		}
	}
	return r
}

// Event is one server-sent event of a stream.
type Event struct{ ID, Name, Data string }

// Stream opens the server-sent event stream at path and delivers its named
// events until ctx ends or the stream closes; an answer other than 200 is
// the error "HTTP <status>".
func (c *Cloud) Stream(ctx context.Context, path string, auth ...Auth) (<-chan Event, error) {
	resp, err := c.HC.Do(c.Request("GET", path, nil, auth...).WithContext(ctx))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	ch := make(chan Event, 256)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev Event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" {
					ch <- ev
				}
				ev = Event{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Name = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		}
	}()
	return ch, nil
}
