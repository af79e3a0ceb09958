// Package web is the HTTP plumbing both services share: handlers that return
// errors, the one place that maps an error to an HTTP status and JSON body,
// request ids, access logs and panic recovery.
//
// Handlers never write errors themselves. They return an *ihos.Error (or any
// error, which becomes an internal error whose details are logged, not shown),
// and WriteError renders {"code","message","fields"} with the status for its code.
package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"ihos"
)

// HandlerFunc is an HTTP handler that returns its error instead of writing it.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP makes HandlerFunc an http.Handler.
func (h HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h(w, r); err != nil {
		WriteError(w, r, err)
	}
}

// Status returns the HTTP status for an error code.
func Status(code string) int {
	switch code {
	case ihos.EInvalid:
		return http.StatusBadRequest
	case ihos.EUnauthorized:
		return http.StatusUnauthorized
	case ihos.EForbidden:
		return http.StatusForbidden
	case ihos.ENotFound:
		return http.StatusNotFound
	case ihos.EConflict:
		return http.StatusConflict
	case ihos.ETooMany:
		return http.StatusTooManyRequests
	case ihos.EUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// ErrorBody is the JSON every error response carries.
type ErrorBody struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// WriteError writes err as JSON with the status of its code. Internal errors are
// logged with their cause; the client sees only a generic message and the request
// id to quote to IT.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var e *ihos.Error
	if !errors.As(err, &e) {
		e = ihos.Internal(err)
	}
	status := Status(e.Code)
	if status >= 500 {
		slog.ErrorContext(r.Context(), "request failed", "err", err.Error(), "path", r.URL.Path)
	}
	body := ErrorBody{Code: e.Code, Message: e.Message, Fields: e.Fields}
	if e.Code == ihos.EInternal {
		body.Message = fmt.Sprintf("%s（请求编号 %s）", body.Message, RequestID(r.Context()))
	}
	WriteJSON(w, status, body)
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// EncodeJSON returns v encoded exactly as WriteJSON writes it, for callers that
// keep the bytes (a response cache) and send them with WriteJSONBytes.
func EncodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteJSONBytes writes body, JSON from EncodeJSON, with WriteJSON's headers.
func WriteJSONBytes(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// MaxBody is the largest request body a JSON API accepts.
const MaxBody = 1 << 20

// EMethodNotAllowed is the code of a 405 answer: the path exists but does not
// take the request's method. It is not an ihos error code because no
// application layer ever returns it; only routers do.
const EMethodNotAllowed = "method_not_allowed"

// DecodeOptionalJSON is DecodeJSON for a request whose body may be left out
// (a cancel without a reason): an empty body leaves v as it is.
func DecodeOptionalJSON(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return DecodeJSON(r, v)
}

// DecodeJSON decodes the request body into v. Anything that is not a single JSON
// value of the right shape is an invalid-input error with a Chinese message. The
// Content-Type is not checked: scripts and tools often omit it, and cookie
// sessions are protected by the CSRF token, not by the content type.
func DecodeJSON(r *http.Request, v any) error {
	if r.Body == nil {
		return ihos.Errorf(ihos.EInvalid, "请求内容为空")
	}
	body := &io.LimitedReader{R: r.Body, N: MaxBody + 1}
	tooLarge := func() error {
		return ihos.Errorf(ihos.EInvalid, "请求内容过大（不能超过 %d KB）", MaxBody>>10)
	}
	dec := json.NewDecoder(body)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		if body.N <= 0 {
			return tooLarge()
		}
		if errors.Is(err, io.EOF) {
			return ihos.Errorf(ihos.EInvalid, "请求内容为空")
		}
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			if ute.Field != "" {
				return &ihos.Error{Code: ihos.EInvalid, Message: "输入有误，请检查标出的字段", Fields: map[string]string{ute.Field: "类型不正确"}}
			}
			if ute.Type != nil && (ute.Type.Kind() == reflect.Map || ute.Type.Kind() == reflect.Struct) {
				return ihos.Errorf(ihos.EInvalid, "请求内容必须是 JSON 对象")
			}
			return ihos.Errorf(ihos.EInvalid, "请求内容的类型不正确")
		}
		return ihos.Errorf(ihos.EInvalid, "请求内容不是合法的 JSON")
	}
	// Only white space may follow the value: not a second value, and not a
	// stray closing bracket (which Decoder.More would not notice).
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if body.N <= 0 {
			return tooLarge()
		}
		return ihos.Errorf(ihos.EInvalid, "请求内容只能包含一个 JSON 对象")
	}
	if body.N <= 0 {
		return tooLarge()
	}
	return nil
}

type requestIDKey struct{}

// RequestID returns the request id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}

// WithRequestID returns a context carrying id; background jobs use it so their
// log lines can be traced like requests.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// NewRequestID returns a random 16-hex-digit id.
func NewRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Middleware gives every request an id (kept from a sane X-Request-ID header, or
// new), echoes it in the response, logs one access line per request, and turns a
// panic into a logged internal error so one bad request never takes the
// service down.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if len(id) == 0 || len(id) > 64 || strings.ContainsFunc(id, func(c rune) bool { return c < '!' || c > '~' }) {
			id = NewRequestID()
		}
		ctx := WithRequestID(r.Context(), id)
		r = r.WithContext(ctx)
		w.Header().Set("X-Request-ID", id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				slog.ErrorContext(ctx, "panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rec.wrote {
					WriteError(rec, r, ihos.Internal(fmt.Errorf("panic: %v", p)))
				}
			}
			slog.InfoContext(ctx, "http", "method", r.Method, "path", r.URL.Path, "status", rec.status,
				"dur_ms", float64(time.Since(start).Microseconds())/1000, "remote", r.RemoteAddr)
		}()
		next.ServeHTTP(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// ClientIP returns the remote address without its port. The console is served on
// the LAN without a proxy, so RemoteAddr is the client.
func ClientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// LogHandler wraps a slog.Handler so every record logged with a context carries
// that context's request id.
type LogHandler struct{ slog.Handler }

// Handle adds request_id when the context has one.
func (h LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around derived handlers.
func (h LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return LogHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper around derived handlers.
func (h LogHandler) WithGroup(name string) slog.Handler { return LogHandler{h.Handler.WithGroup(name)} }

// NewLogger returns the JSON logger services install as slog's default.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(LogHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

// Authorizer checks that the request may use perm ("his.read",
// "printing.write", …) and returns the context to continue with: the
// appliance passes node.AuthorizeCLIOr (a console session or the local CLI
// token). Every service's JSON API takes one.
type Authorizer func(r *http.Request, perm string) (context.Context, error)

// AuthorizedFunc is a handler that runs with the authorised context.
type AuthorizedFunc func(ctx context.Context, w http.ResponseWriter, r *http.Request) error

// Guard returns a function that registers fn on mux at pattern behind
// authorize for perm: a refused request gets the error's status, fn never runs.
func Guard(mux *http.ServeMux, authorize Authorizer) func(pattern, perm string, fn AuthorizedFunc) {
	return func(pattern, perm string, fn AuthorizedFunc) {
		mux.Handle(pattern, HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			ctx, err := authorize(r, perm)
			if err != nil {
				return err
			}
			return fn(ctx, w, r)
		}))
	}
}
