package ihos

import (
	"errors"
	"fmt"
)

// Error codes. Every error that crosses a package boundary carries one of these, so
// the HTTP layer (and later the sync and kiosk layers) can decide what to tell the
// user without parsing strings.
const (
	EInvalid      = "invalid"      // malformed or invalid input
	ENotFound     = "not_found"    // the thing asked for does not exist
	EConflict     = "conflict"     // a version, uniqueness or reference conflict
	EUnauthorized = "unauthorized" // no valid session
	EForbidden    = "forbidden"    // a session, but no permission
	ETooMany      = "too_many"     // too many requests of this kind for now (a rate limit): try again later
	EUnavailable  = "unavailable"  // a dependency (HIS, the cloud, a printer) cannot be reached
	EInternal     = "internal"     // a bug or an unexpected failure; details are logged, not shown
)

// Error is the application error. Message is safe to show to a user (it is written
// in Simplified Chinese); Fields holds per-field messages for invalid input; Err is
// the underlying cause, logged but never shown.
type Error struct {
	Code    string
	Message string
	Fields  map[string]string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted, user-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EInvalid error with per-field messages.
func Invalid(fields map[string]string) *Error {
	return &Error{Code: EInvalid, Message: "输入有误，请检查标出的字段", Fields: fields}
}

// Internal wraps an unexpected error; the cause is kept for the log only.
func Internal(err error) *Error {
	return &Error{Code: EInternal, Message: "系统内部错误，请稍后重试或联系信息科", Err: err}
}

// ErrorCode returns the code of err, EInternal for errors that are not *Error, and
// "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the user-safe message of err; errors that are not *Error get
// a generic message so internals never leak to a screen.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return Internal(err).Message
}
