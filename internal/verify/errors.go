package verify

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

// Error is a failed platform call.
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

// classify maps a resultCode to a class (SPEC §4).
func classify(code int) Class {
	switch code {
	case 21003, 21004:
		return TokenExpired
	case 21006, 21002, 21005, 20000, 21001:
		return Fatal
	case 10034, 21007:
		return RateLimited
	case 10054:
		return Duplicate
	case 1, -1, -2, 10001, 10005, -10029, -10044, -110086, 20003:
		return Retryable
	}
	return Rejected
}

// guideCodes are the resultCodes of the guide's global table (§3.2.12).
// Only these are taken as the platform's own answer when they come with an
// HTTP error status.
var guideCodes = map[int]bool{
	1: true, -1: true, -2: true,
	10001: true, 10002: true, 10003: true, 10004: true, 10005: true, 10006: true, 10007: true, 10008: true,
	10009: true, 10010: true, 10011: true, 10012: true, 10013: true, 10014: true, 10015: true, -10017: true,
	10018: true, -10019: true, 10020: true, 10021: true, -10022: true, -10023: true, -10024: true, -10025: true,
	-10026: true, -10027: true, -10028: true, -10029: true, 10030: true, -10031: true, -10032: true, 10033: true,
	10034: true, 10035: true, 10036: true, 10037: true, -10038: true, -10039: true, -10040: true, 10041: true,
	10042: true, 10043: true, -10044: true, 10048: true, 10050: true, 10051: true, 10053: true, 10054: true,
	10055: true, 10056: true, 10057: true, -110086: true,
	20000: true, 20001: true, 20002: true, 20003: true, 20004: true,
	21001: true, 21002: true, 21003: true, 21004: true, 21005: true, 21006: true, 21007: true,
}
