package card

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Class says what to do about a failure.
type Class int

// Classes of failure (SPEC §4).
const (
	// Retryable: a platform fault, timeout or outage; try again later.
	Retryable Class = iota + 1
	// Fatal: a configuration problem (signature, credentials, hospital);
	// retrying cannot help until someone fixes the configuration.
	Fatal
	// Rejected: this code or record is bad (unknown, expired, frozen card).
	Rejected
	// RateLimited: the platform limits calls; pause until RetryAfter.
	RateLimited
	// TokenExpired: the platform refused the appToken (21003/21004) and the
	// client dropped it. A fresh call retries by itself; a call with a
	// caller-supplied requestId (a queued record) returns it: the request
	// was not processed (Unknown is false) and its requestId is spent, so
	// retry with a new one.
	TokenExpired
	// Duplicate: the platform has seen this requestId (10054).
	Duplicate
)

func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case Fatal:
		return "fatal"
	case Rejected:
		return "rejected"
	case RateLimited:
		return "rate_limited"
	case TokenExpired:
		return "token_expired"
	case Duplicate:
		return "duplicate"
	}
	return "unknown"
}

// Error is a failed platform call (or gateway call): how the platform
// answered, and so what the policy does about it (SPEC §4). The platform
// clients (internal/verify) make them; the visit policy, the outbox's
// sender and the gateway read them.
type Error struct {
	API   string
	Class Class
	// Code and Msg are the platform's resultCode and errMsg (0 and our own
	// message for transport faults).
	Code int
	Msg  string
	// RequestID is the requestId of the attempt that failed.
	RequestID string
	// Unknown is true when the request may have been processed: it was
	// sent, but no definite answer came back.
	Unknown bool
	// RetryAfter is when a rate-limited API or an open breaker allows calls
	// again.
	RetryAfter time.Time
	// Unavailable marks failures that mean the platform cannot be reached
	// (transport faults, open breaker): the offline policy applies.
	Unavailable bool
	Err         error
}

func (e *Error) Error() string {
	s := e.API + ": "
	if e.Code != 0 {
		s += fmt.Sprintf("platform error %d %s", e.Code, e.Msg)
	} else {
		s += e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s + " (" + e.Class.String() + ")"
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err: an *Error's class, Retryable for any
// other error except context cancellation (0).
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	if err == nil || errors.Is(err, errors.ErrUnsupported) {
		return 0
	}
	return Retryable
}

// AsError returns err as an *Error, if it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// IsUnavailable reports whether err means the platform cannot be reached
// right now (the offline policy applies).
func IsUnavailable(err error) bool {
	e, ok := AsError(err)
	return ok && e.Unavailable
}

// errorJSON is an Error's JSON form, the gateway wire's error: the class
// by name, the cause (Err) left out — it stays with the process that saw
// it.
type errorJSON struct {
	API         string    `json:"api"`
	Class       Class     `json:"class"`
	Code        int       `json:"code,omitempty"`
	Message     string    `json:"message"`
	RequestID   string    `json:"requestId,omitempty"`
	Unknown     bool      `json:"unknown,omitempty"`
	Unavailable bool      `json:"unavailable,omitempty"`
	RetryAfter  time.Time `json:"retryAfter,omitzero"`
}

// MarshalJSON writes e's JSON form.
func (e Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(errorJSON{API: e.API, Class: e.Class, Code: e.Code, Message: e.Msg, RequestID: e.RequestID,
		Unknown: e.Unknown, Unavailable: e.Unavailable, RetryAfter: e.RetryAfter})
}

// UnmarshalJSON reads e's JSON form.
func (e *Error) UnmarshalJSON(b []byte) error {
	var w errorJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = Error{API: w.API, Class: w.Class, Code: w.Code, Msg: w.Message, RequestID: w.RequestID,
		Unknown: w.Unknown, Unavailable: w.Unavailable, RetryAfter: w.RetryAfter}
	return nil
}

// MarshalText writes the class by name.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a class by name; a name this version does not know
// is taken as Retryable (try again later), never as a verdict.
func (c *Class) UnmarshalText(b []byte) error {
	for k := Retryable; k <= Duplicate; k++ {
		if k.String() == string(b) {
			*c = k
			return nil
		}
	}
	*c = Retryable
	return nil
}
