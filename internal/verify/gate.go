package verify

import (
	"sync"
	"time"

	"scanagent/internal/card"
)

// gate is the circuit breaker for the platform and the per-API rate-limit
// pauses. After `failures` consecutive faults it opens for `cooldown`: calls
// fail at once, so a dead platform costs the counter at most one timeout per
// window, not one per scan. Then one trial call is let through (half-open);
// its success closes the breaker.
type gate struct {
	failures int
	cooldown time.Duration
	pause    time.Duration
	now      func() time.Time

	mu        sync.Mutex
	fails     int
	openUntil time.Time
	trial     bool
	paused    map[string]time.Time
	lastErr   map[string]string
}

func newGate(failures int, cooldown, pause time.Duration, now func() time.Time) *gate {
	if failures < 1 {
		failures = 1
	}
	return &gate{failures: failures, cooldown: cooldown, pause: pause, now: now, paused: map[string]time.Time{}, lastErr: map[string]string{}}
}

// pass is a call that allow let through. Exactly one outcome settles it:
// record counts the outcome; release frees a half-open trial without
// counting anything (the call's context ended, so its outcome says nothing
// about the platform). Settling twice does nothing, so callers write
//
//	p, err := g.allow(api)
//	...
//	defer p.release()
//	err = do()
//	if ctx.Err() == nil {
//		p.record(err)
//	}
//
// and a trial can never stay taken: a breaker whose trial is held forever
// refuses every call until restart.
type pass struct {
	g       *gate
	api     string
	trial   bool
	settled bool
}

// allow returns a pass when api may be called now, or the error to fail
// with.
func (g *gate) allow(api string) (*pass, error) { return g.admit(api, false) }

// allowPassive is allow for a passive call (a heartbeat): it passes a
// half-open breaker without taking the trial, which stays for a call whose
// outcome can close the breaker. Otherwise a heartbeat that happened to be
// the trial would turn the next scans away from a gateway that is back.
func (g *gate) allowPassive(api string) (*pass, error) { return g.admit(api, true) }

func (g *gate) admit(api string, passive bool) (*pass, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if until, ok := g.paused[api]; ok {
		if now.Before(until) {
			return nil, &card.Error{API: api, Class: card.RateLimited, Msg: "rate limited by the platform until " + until.In(card.CST).Format(card.TimeLayout) + " CST", RetryAfter: until}
		}
		delete(g.paused, api)
	}
	p := &pass{g: g, api: api}
	if g.fails >= g.failures {
		if now.Before(g.openUntil) || g.trial && !passive {
			return nil, &card.Error{API: api, Class: card.Retryable, Msg: "platform unavailable: circuit breaker open", RetryAfter: g.openUntil, Unavailable: true}
		}
		if !passive {
			g.trial, p.trial = true, true // half-open: this call is the trial
		}
	}
	return p, nil
}

// settle marks p settled and frees its trial; it reports false when p was
// already settled. Called with g.mu held.
func (p *pass) settle() bool {
	if p.settled {
		return false
	}
	p.settled = true
	if p.trial {
		p.g.trial = false
	}
	return true
}

// release frees p's half-open trial, if it holds one, without counting an
// outcome. It does nothing once p is settled.
func (p *pass) release() {
	p.g.mu.Lock()
	defer p.g.mu.Unlock()
	p.settle()
}

// record notes the outcome of the call.
func (p *pass) record(err error) {
	g := p.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if !p.settle() {
		return
	}
	if err == nil {
		g.fails = 0
		delete(g.lastErr, p.api)
		return
	}
	g.lastErr[p.api] = err.Error()
	e, ok := card.AsError(err)
	if !ok {
		return
	}
	switch {
	case e.Class == card.RateLimited:
		until := g.now().Add(g.pause)
		if e.Code == 10034 {
			until = nextCSTMidnight(g.now())
		}
		g.paused[p.api] = until
	case e.Unavailable || e.Class == card.Retryable:
		g.fails++
		if g.fails >= g.failures {
			g.openUntil = g.now().Add(g.cooldown)
		}
	default:
		// The platform answered: it is up.
		g.fails = 0
	}
}

// note settles the pass of a passive call (a terminal's heartbeat): a
// failure to reach the gateway (reached false) counts as record counts
// it; an answer counts nothing, and a success clears the call's last
// error.
func (p *pass) note(err error, reached bool) {
	if !reached {
		p.record(err)
		return
	}
	g := p.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if p.settle() && err == nil {
		delete(g.lastErr, p.api)
	}
}

// GateState is the breaker's state for status pages.
type GateState struct {
	BreakerOpen bool                 `json:"breakerOpen"`
	OpenUntil   time.Time            `json:"openUntil,omitzero"`
	Failures    int                  `json:"consecutiveFailures"`
	Paused      map[string]time.Time `json:"pausedUntil,omitempty"`
	LastError   map[string]string    `json:"lastError,omitempty"`
}

func (g *gate) state() GateState {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := GateState{Failures: g.fails, Paused: map[string]time.Time{}, LastError: map[string]string{}}
	if g.fails >= g.failures {
		s.BreakerOpen, s.OpenUntil = true, g.openUntil
	}
	for k, v := range g.paused {
		s.Paused[k] = v
	}
	for k, v := range g.lastErr {
		s.LastError[k] = v
	}
	return s
}

func nextCSTMidnight(t time.Time) time.Time {
	c := t.In(card.CST)
	return time.Date(c.Year(), c.Month(), c.Day()+1, 0, 0, 0, 0, card.CST)
}
