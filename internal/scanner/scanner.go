// Package scanner reads barcode scanners: serial ports (real or USB virtual
// COM, via go.bug.st/serial), USB HID-POS devices (via karalabe/usb, with
// per-vendor report decoders) and, on Linux, keyboard-wedge scanners through
// evdev with an exclusive grab. It frames the bytes into scans and keeps each
// source alive across unplug and replug. It does not interpret payloads.
package scanner

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/backoff"
	"scanagent/internal/card"
)

// Source is one scanner. Run opens the device, emits scans until ctx ends
// or the device fails, and closes it; it returns nil only when ctx ended.
type Source interface {
	Name() string
	Run(ctx context.Context, emit func(card.Scan)) error
}

// State is a source's connection state.
type State struct {
	Name       string    `json:"name"`
	Connected  bool      `json:"connected"`
	Since      time.Time `json:"since"`
	LastError  string    `json:"lastError,omitempty"`
	Scans      int64     `json:"scans"`
	Reconnects int64     `json:"reconnects"`
}

// Supervisor keeps sources alive: a source that fails is reopened with a
// capped backoff (100 ms doubling to MaxBackoff), so a replugged scanner is
// back within a second and an absent one costs no busy loop.
type Supervisor struct {
	MaxBackoff time.Duration
	Log        zerolog.Logger

	mu     sync.Mutex
	states map[string]*State
}

// NewSupervisor returns a supervisor.
func NewSupervisor(log zerolog.Logger) *Supervisor {
	return &Supervisor{MaxBackoff: time.Second, Log: log, states: map[string]*State{}}
}

// States returns a snapshot of every source's state.
func (s *Supervisor) States() []State {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]State, 0, len(s.states))
	for _, st := range s.states {
		out = append(out, *st)
	}
	return out
}

func (s *Supervisor) update(name string, fn func(*State)) {
	s.mu.Lock()
	st, ok := s.states[name]
	if !ok {
		st = &State{Name: name, Since: time.Now()}
		s.states[name] = st
	}
	fn(st)
	s.mu.Unlock()
}

// connectedFunc is offered to sources that can say when they are open.
type connectedFunc func()

type connectedKey struct{}

// Connected marks the source of ctx as connected; sources call it once the
// device is open.
func Connected(ctx context.Context) {
	if f, ok := ctx.Value(connectedKey{}).(connectedFunc); ok {
		f()
	}
}

// Run runs every source until ctx ends and all of them returned.
func (s *Supervisor) Run(ctx context.Context, sources []Source, emit func(card.Scan)) {
	var wg sync.WaitGroup
	for _, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.keep(ctx, src, emit)
		}()
	}
	wg.Wait()
}

func (s *Supervisor) keep(ctx context.Context, src Source, emit func(card.Scan)) {
	name := src.Name()
	log := s.Log.With().Str("source", name).Logger()
	s.update(name, func(*State) {})
	retry := backoff.Policy{Min: 100 * time.Millisecond, Max: s.MaxBackoff}
	fails := 0 // failures since the source last connected
	count := func(sc card.Scan) {
		s.update(name, func(st *State) { st.Scans++ })
		emit(sc)
	}
	for attempt := 0; ; attempt++ {
		connected := false
		sctx := context.WithValue(ctx, connectedKey{}, connectedFunc(func() {
			connected = true
			fails = 0
			s.update(name, func(st *State) {
				st.Connected, st.Since, st.LastError = true, time.Now(), ""
				if attempt > 0 {
					st.Reconnects++
				}
			})
			log.Info().Msg("scanner connected")
		}))
		err := src.Run(sctx, count)
		if ctx.Err() != nil {
			s.update(name, func(st *State) { st.Connected = false })
			return
		}
		if err == nil {
			err = errors.New("source stopped")
		}
		s.update(name, func(st *State) {
			if st.Connected {
				st.Since = time.Now()
			}
			st.Connected, st.LastError = false, err.Error()
		})
		if connected {
			log.Warn().Err(err).Msg("scanner disconnected; reconnecting")
		} else if attempt%20 == 0 {
			log.Warn().Err(err).Msg("scanner not available; retrying")
		} else {
			log.Debug().Err(err).Msg("scanner still not available")
		}
		fails++
		if backoff.Sleep(ctx, retry.Delay(fails)) != nil {
			return
		}
	}
}

// Running is a set of sources started by Start.
type Running struct {
	done map[string]chan struct{} // closed when the source's goroutine returned
}

// Start runs each source in its own goroutine until ctx ends; Wait tells
// which returned.
func (s *Supervisor) Start(ctx context.Context, sources []Source, emit func(card.Scan)) *Running {
	r := &Running{done: map[string]chan struct{}{}}
	for _, src := range sources {
		done := make(chan struct{})
		r.done[src.Name()] = done
		go func() {
			defer close(done)
			s.keep(ctx, src, emit)
		}()
	}
	return r
}

// Wait waits, until deadline, for every source to return once ctx ended,
// and names those that did not (blocked in a driver call), sorted.
func (r *Running) Wait(deadline time.Time) (stuck []string) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for name, done := range r.done {
		select {
		case <-done:
		case <-t.C:
			t.Reset(0) // past the deadline: only look at the others
			select {
			case <-done:
			default:
				stuck = append(stuck, name)
			}
		}
	}
	slices.Sort(stuck)
	return stuck
}
