// Package simulate holds the pieces every external-system simulator shares:
// its service modes, the control endpoint that sets them, JSON answers, and
// the command's start-up.
//
// A simulator stands in for a system the platform talks to (the insurance
// platform, the e-invoice platform, a payment channel, ...). Each has a
// service the platform calls and a /control API the tests and the demo use
// to break it on purpose: down (HTTP 503), slow (every answer late) or
// error (every request refused with a text). The names, the JSON of
// POST /control/mode, the way down and slow are applied, the HTTP server
// (Serve) and the command's flags, ready line and shutdown (Main, Parse,
// Ready, Stop) are the same everywhere, so they live here; what a mode
// means beyond that (an error answer's envelope, extra modes) stays with
// each simulator.
package simulate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	stdsync "sync"
	"time"
)

// Mode is how a simulator's service behaves, as POST /control/mode sets it.
type Mode struct {
	Name  string        // Up, Down, Slow, Error or a simulator's own mode
	Delay time.Duration // slow: how long every answer waits (default DefaultDelay)
	Text  string        // error: the message of every refusal
}

// Mode names.
const (
	Up    = "up"    // answers normally
	Down  = "down"  // the service answers HTTP 503 (the control API keeps working)
	Slow  = "slow"  // every service answer waits Delay
	Error = "error" // every well-formed request is refused with Text
)

// DefaultDelay is how long a slow answer waits when the mode gives no delay.
const DefaultDelay = 3 * time.Second

// Check validates m and fills in its defaults: a Slow mode without a delay
// waits DefaultDelay, an Error mode without a text refuses with errorText.
// more are the simulator's own mode names, accepted as they are.
func (m Mode) Check(errorText string, more ...string) (Mode, error) {
	names := append([]string{Up, Down, Slow, Error}, more...)
	known := false
	for _, n := range names {
		known = known || m.Name == n
	}
	if !known {
		last := len(names) - 1
		return m, fmt.Errorf("unknown mode %q: want %s or %s", m.Name, strings.Join(names[:last], ", "), names[last])
	}
	if m.Name == Slow && m.Delay <= 0 {
		m.Delay = DefaultDelay
	}
	if m.Name == Error && m.Text == "" {
		m.Text = errorText
	}
	return m, nil
}

// ModeJSON is a Mode as the control API reads and shows it.
type ModeJSON struct {
	Name    string `json:"mode"`
	DelayMS int64  `json:"delay_ms"`
	Text    string `json:"text,omitempty"`
}

// JSON returns m as the control API shows it.
func (m Mode) JSON() ModeJSON {
	return ModeJSON{m.Name, m.Delay.Milliseconds(), m.Text}
}

// Mode returns the Mode j stands for.
func (j ModeJSON) Mode() Mode {
	return Mode{Name: j.Name, Delay: time.Duration(j.DelayMS) * time.Millisecond, Text: j.Text}
}

// maxBody bounds the request body Hold reads in slow mode; the service
// handler applies its own, smaller or equal, bound after it.
const maxBody = 4 << 20

// Hold applies m to a service request before it is answered: in Down mode
// it answers HTTP 503 with downText; in Slow mode it reads the body first
// (only then does the server notice a client that gave up, and end the
// wait) and waits m.Delay. It reports whether the request is still to be
// answered.
func Hold(w http.ResponseWriter, r *http.Request, m Mode, downText string) bool {
	switch m.Name {
	case Down:
		Message(w, http.StatusServiceUnavailable, downText)
		return false
	case Slow:
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			return false
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		return Wait(r, m.Delay)
	}
	return true
}

// Service wraps a service handler with Hold, reading the mode for each
// request.
func Service(mode func() Mode, downText string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if Hold(w, r, mode(), downText) {
			h(w, r)
		}
	}
}

// Wait waits d, or less if the client gives up; it reports whether the
// whole time passed.
func Wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// ModeHandler is POST /control/mode for a simulator with the shared modes
// only: it reads {"mode", "delay_ms", "text"}, calls set, and answers with
// state (the simulator's GET /control).
func ModeHandler(set func(Mode) error, state http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var mj ModeJSON
		if !ReadJSON(w, r, &mj) {
			return
		}
		if err := set(mj.Mode()); err != nil {
			Message(w, http.StatusBadRequest, err.Error())
			return
		}
		state(w, r)
	}
}

// ReadJSON decodes a control request's body (at most 64 KiB) into v; on
// failure it answers HTTP 400 and reports false.
func ReadJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(v); err != nil {
		Message(w, http.StatusBadRequest, "JSON 格式不正确："+err.Error())
		return false
	}
	return true
}

// JSON writes v as a JSON answer with status.
func JSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"模拟系统内部错误：应答无法编码"}`)
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Message writes {"message": text} with status: the control API's and
// down mode's answer.
func Message(w http.ResponseWriter, status int, text string) {
	JSON(w, status, map[string]string{"message": text})
}

// Switch holds a simulator's current Mode for its request handlers and its
// control page, which change and read it from different goroutines.
type Switch struct {
	// ErrorText is the default text of the error mode (Mode.Check).
	ErrorText string

	mu   stdsync.Mutex
	mode Mode
}

// Get returns the current mode.
func (s *Switch) Get() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// Set checks m and makes it the current mode.
func (s *Switch) Set(m Mode) error {
	m, err := m.Check(s.ErrorText)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
	return nil
}
