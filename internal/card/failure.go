package card

import (
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
