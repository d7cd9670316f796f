package gateway

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/fleet"
)

// Fleet is where the gateway keeps its terminals' heartbeats: in memory on
// a single gateway (fleet.Memory), in etcd, shared, on the gateways of
// [gateway.ha] (fleet.Etcd).
type Fleet interface {
	Beat(ctx context.Context, hb fleet.Heartbeat) error
	List(ctx context.Context) ([]fleet.Terminal, error)
}

var (
	_ Fleet = (*fleet.Memory)(nil)
	_ Fleet = (*fleet.Etcd)(nil)
)

// FleetOptions configures the fleet view.
type FleetOptions struct {
	// Token is the fleet viewer token. Without one, /v1/fleet and /fleet
	// answer 404 (heartbeats are still taken, and counted in the metrics).
	Token string
	// SilentAfter: a terminal not heard from for longer is silent, and
	// listed first.
	SilentAfter time.Duration
	// OfflineAfter is the registry's (the page says it).
	OfflineAfter time.Duration
	// Gateway names this gateway on the page.
	Gateway string
	Now     func() time.Time
}

// fleetView is the server's fleet registry and view.
type fleetView struct {
	reg Fleet // nil: no heartbeats taken
	o   FleetOptions
	// quiet logs registry failures and refused viewers at most once a
	// minute: a thousand terminals heartbeat.
	quiet zerolog.Logger
}

// fleetTimeout bounds one registry call.
const fleetTimeout = 5 * time.Second

// WithFleet makes s take terminals' heartbeats into reg and serve the
// fleet view from it; it returns s. Without it, /v1/heartbeat answers 404.
func (s *Server) WithFleet(reg Fleet, o FleetOptions) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	s.fleet = fleetView{reg: reg, o: o, quiet: s.log.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Minute})}
	return s
}

// serveHeartbeat takes a terminal's heartbeat: 400 when it does not
// decode within the bounds, a retryable error in the envelope when the
// registry cannot store it (the terminal tries again at its next beat).
func (s *Server) serveHeartbeat(w http.ResponseWriter, r *http.Request) {
	if s.fleet.reg == nil {
		http.NotFound(w, r)
		return
	}
	term, body, ok := s.terminalCall(w, r, fleet.MaxBody)
	if !ok {
		return
	}
	hb, err := fleet.Decode(body)
	if err != nil {
		s.fleet.quiet.Warn().Str("terminal", term).Err(err).Msg("heartbeat refused")
		writeBadRequest(w, err)
		return
	}
	hb.Terminal = term
	ctx, cancel := context.WithTimeout(r.Context(), fleetTimeout)
	defer cancel()
	if err := s.fleet.reg.Beat(ctx, hb); err != nil {
		s.fleet.quiet.Warn().Str("terminal", term).Err(err).Msg("heartbeat not stored: the fleet registry failed")
		writeError(w, &card.Error{API: "heartbeat", Class: card.Retryable, Msg: "the fleet registry is unavailable", Unavailable: true})
		return
	}
	s.log.Debug().Str("terminal", term).Str("health", hb.Health).Msg("heartbeat")
	writeResult(w, struct{}{})
}

// fleetResult is the answer of GET /v1/fleet.
type fleetResult struct {
	Gateway             string         `json:"gateway"`
	Now                 time.Time      `json:"now"`
	OfflineAfterSeconds int64          `json:"offlineAfterSeconds"`
	SilentAfterSeconds  int64          `json:"silentAfterSeconds"`
	Counts              map[string]int `json:"counts"`
	Terminals           []fleet.Entry  `json:"terminals"`
}

// serveFleet answers every terminal as JSON, silent ones first, then by
// ?sort= (as the page).
func (s *Server) serveFleet(w http.ResponseWriter, r *http.Request) {
	if !s.fleet.admit(w, r, `Bearer realm="scanagent-fleet"`) {
		return
	}
	now, entries, err := s.fleet.entries(r)
	if err != nil {
		writeFailure(w, http.StatusServiceUnavailable, &card.Error{API: "fleet", Class: card.Retryable, Msg: "the fleet registry is unavailable", Unavailable: true})
		return
	}
	writeResult(w, fleetResult{Gateway: s.fleet.o.Gateway, Now: now, OfflineAfterSeconds: int64(s.fleet.o.OfflineAfter / time.Second),
		SilentAfterSeconds: int64(s.fleet.o.SilentAfter / time.Second), Counts: counts(entries), Terminals: nonNilEntries(entries)})
}

// entries lists the fleet as seen now, sorted by the request's ?sort=.
func (f *fleetView) entries(r *http.Request) (time.Time, []fleet.Entry, error) {
	ctx, cancel := context.WithTimeout(r.Context(), fleetTimeout)
	defer cancel()
	ts, err := f.reg.List(ctx)
	if err != nil {
		f.quiet.Warn().Err(err).Msg("fleet view: listing terminals failed")
		return time.Time{}, nil, err
	}
	now := f.o.Now()
	return now, fleet.View(ts, now, f.o.SilentAfter, r.URL.Query().Get("sort")), nil
}

// admit answers the request unless it may see the fleet: 404 without a
// fleet token configured, 401 (with challenge) without the token.
// Responses are never cached.
func (f *fleetView) admit(w http.ResponseWriter, r *http.Request, challenge string) bool {
	w.Header().Set("Cache-Control", "no-store")
	if f.reg == nil || f.o.Token == "" {
		http.Error(w, "the fleet view is off: no gateway.fleet_token is configured", http.StatusNotFound)
		return false
	}
	if !f.viewer(r) {
		f.quiet.Warn().Str("remote", r.RemoteAddr).Str("path", r.URL.Path).Msg("fleet view requested without the fleet token")
		w.Header().Set("WWW-Authenticate", challenge)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return false
	}
	return true
}

// viewer reports whether r carries the fleet token: as a bearer token, or
// as the password of HTTP Basic (any user name), compared in constant
// time.
func (f *fleetView) viewer(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		_, got, _ = r.BasicAuth()
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(f.o.Token)) == 1
}

// counts are the view's totals by state.
func counts(es []fleet.Entry) map[string]int {
	c := map[string]int{"total": len(es), fleet.StateOnline: 0, fleet.StateOffline: 0, fleet.StateSilent: 0}
	for _, e := range es {
		c[e.State]++
	}
	return c
}

func nonNilEntries(es []fleet.Entry) []fleet.Entry {
	if es == nil {
		return []fleet.Entry{}
	}
	return es
}
