package his

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Causes of refused or rejected requests, each logged at most once per
// logEvery.
const (
	causeHost       = "host"        // 403: Host header not this machine's
	causeOrigin     = "origin"      // 403: browser origin not allowed, no token
	causeToken      = "token"       // 401: remote peer without the token
	causeStreamCap  = "stream_cap"  // 503: too many WebSocket/SSE/long-poll clients
	causeBadRequest = "bad_request" // 400/413: body or fields invalid
	causeConflict   = "conflict"    // 409: counted by verifyQRCode, or Idempotency-Key reused
	causeQueue      = "queue"       // 503/500: the recorder refused or failed
)

const logEvery = time.Minute

// limitedLog logs each cause at most once per logEvery: the first event of
// a cause is logged; those that follow within the minute are only counted,
// and the next line logged for the cause carries that count as
// "suppressed". Causes are the constants above, so its map stays small.
type limitedLog struct {
	log zerolog.Logger
	now func() time.Time

	mu     sync.Mutex
	causes map[string]*causeState
}

type causeState struct {
	last       time.Time
	suppressed int
}

func newLimitedLog(log zerolog.Logger, now func() time.Time) *limitedLog {
	return &limitedLog{log: log, now: now, causes: map[string]*causeState{}}
}

// event returns the log event for cause at level, or nil (on which every
// zerolog method is a no-op) when the cause was logged less than a minute
// ago.
func (l *limitedLog) event(level zerolog.Level, cause string) *zerolog.Event {
	now := l.now()
	l.mu.Lock()
	st, ok := l.causes[cause]
	if !ok {
		st = &causeState{}
		l.causes[cause] = st
	}
	if ok && now.Sub(st.last) < logEvery {
		st.suppressed++
		l.mu.Unlock()
		return nil
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	l.mu.Unlock()
	e := l.log.WithLevel(level).Str("cause", cause)
	if n > 0 {
		e = e.Int("suppressed", n)
	}
	return e
}
