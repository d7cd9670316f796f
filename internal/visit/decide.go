package visit

import (
	"time"

	"scanagent/internal/card"
)

// Outcome is what to do with a queued record after a delivery attempt.
type Outcome int

// Outcomes of a delivery attempt.
const (
	Delivered Outcome = iota + 1 // the platform took it: delete it
	Retry                        // try again after a backoff
	Duplicate                    // 10054 after an unknown outcome: it was delivered
	Pause                        // the platform limits calls: hold every record until RetryAfter
	Dead                         // the platform refused it for good: keep it as a dead letter
)

// Decision is the policy's reading of a delivery attempt's error.
type Decision struct {
	Outcome Outcome
	// Unknown: the request may have been processed; retry with the same
	// requestId (a 10054 answer then means delivered).
	Unknown    bool
	RetryAfter time.Time
	Reason     string
}

// Decide reads a reportHISData / bindCardRelation attempt's error (SPEC
// §4): nil is delivered; a platform fault, a timeout or a refused token
// retries (with a new requestId unless the outcome is unknown); 10054 is a
// duplicate; a rate limit pauses until the platform's time, or pause from
// now; a configuration fault or a refused record is dead. now and pause
// apply to a rate limit without a time of its own.
func Decide(err error, now time.Time, pause time.Duration) Decision {
	if err == nil {
		return Decision{Outcome: Delivered}
	}
	e, ok := card.AsError(err)
	if !ok {
		// Context ended mid-call: the request may have gone out.
		return Decision{Outcome: Retry, Unknown: true, Reason: err.Error()}
	}
	switch e.Class {
	case card.Duplicate:
		return Decision{Outcome: Duplicate, Reason: e.Error()}
	case card.RateLimited:
		until := e.RetryAfter
		if until.IsZero() {
			until = now.Add(pause)
		}
		return Decision{Outcome: Pause, RetryAfter: until, Reason: e.Error()}
	case card.Fatal, card.Rejected:
		return Decision{Outcome: Dead, Reason: e.Error()}
	case card.TokenExpired:
		// 21003/21004 on a queued record: the token was dropped and the
		// request not processed, so its requestId is spent; the next
		// attempt, after the usual backoff, gets a new one.
		return Decision{Outcome: Retry, Reason: e.Error()}
	}
	return Decision{Outcome: Retry, Unknown: e.Unknown, Reason: e.Error()}
}
