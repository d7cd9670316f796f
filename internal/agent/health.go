package agent

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"scanagent/internal/card"
	"scanagent/internal/fleet"
	"scanagent/internal/queue"
	"scanagent/internal/scanner"
	"scanagent/internal/verify"
	"scanagent/internal/visit"
)

// The agent's health: one verdict, computed from its state, that the status
// page, `scanagent status` (its exit code) and monitoring read from
// GET /v1/status as "health". Red reasons make it critical (scanning or the
// usage reports are broken until someone acts), amber ones degraded (the
// agent rides it out, but someone should look), and a configuration that is
// not filled in yet makes it unconfigured, whatever else.

// Health levels: those a terminal reports in its heartbeat (defined
// there, the wire of the fleet view).
const (
	HealthOK           = fleet.HealthOK
	HealthDegraded     = fleet.HealthDegraded
	HealthCritical     = fleet.HealthCritical
	HealthUnconfigured = fleet.HealthUnconfigured
)

// Severities of a reason.
const (
	SeverityAmber = "amber"
	SeverityRed   = "red"
)

// Reason codes. The status page words each code in Chinese and English
// from its detail; Message is the English text for the command line.
const (
	ReasonNotConfigured       = "not_configured"
	ReasonScannerDisconnected = "scanner_disconnected"
	ReasonOutboxDamaged       = "outbox_damaged"
	ReasonDiskFull            = "disk_full"
	ReasonPlatformUnreachable = "platform_unreachable"
	ReasonPlatformPaused      = "platform_paused"
	ReasonPlatformRefused     = "platform_refused"
	ReasonQueueBacklog        = "queue_backlog"
	ReasonDeadLetters         = "dead_letters"
	ReasonSKMError            = "skm_error"
	ReasonHISFailing          = "his_failing"
)

// startGrace is how long a scanner that has not failed yet may take to
// open before it counts as not connected.
const startGrace = 3 * time.Second

// BacklogAge is how old the oldest queued report may get before the
// backlog is a reason of its own.
const BacklogAge = 5 * time.Minute

// Health is the agent's verdict on itself.
type Health struct {
	Level   string         `json:"level"`
	Reasons []HealthReason `json:"reasons"`
}

// HealthReason is one thing that keeps the agent from ok.
type HealthReason struct {
	Code     string `json:"code"`
	Severity string `json:"severity"`
	// Detail holds the reason's numbers (and the names they are about: a
	// scanner, an API, a sink), never personal data.
	Detail  map[string]any `json:"detail,omitempty"`
	Message string         `json:"message"`
}

// setupState is the "setup" part of /v1/status.
type setupState struct {
	Configured *bool    `json:"configured"`
	Missing    []string `json:"missing"`
	Hint       string   `json:"hint"`
}

// unconfigured reports whether the setup says the configuration is not
// filled in yet; a missing setup means configured.
func (s *setupState) unconfigured() bool {
	return s != nil && s.Configured != nil && !*s.Configured
}

// setupOf reads the "setup" value of a status map, whatever Go type holds
// it, by its JSON form; nil when absent or unreadable.
func setupOf(v any) *setupState {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var s setupState
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	return &s
}

// sinkHealth is a HIS sink's recent hand-offs.
type sinkHealth struct {
	Name    string
	Failing bool
	Failed  int64
}

// healthInput is the state health is computed from; nil parts are not
// running (platform.mode = "off", no outbox, [skm] off).
type healthInput struct {
	Now      time.Time
	Setup    *setupState
	Sources  []scanner.State
	Platform *verify.Status
	Queue    *queue.Stats
	SKM      *verify.SKMStatus
	Sinks    []sinkHealth
}

// evaluate computes the health: red reasons first, then amber, each group in
// a stable order.
func evaluate(in healthInput) Health {
	if in.Setup.unconfigured() {
		msg := "not configured yet"
		if len(in.Setup.Missing) > 0 {
			msg += ": fill in " + strings.Join(in.Setup.Missing, ", ")
		}
		if in.Setup.Hint != "" {
			msg += "; " + in.Setup.Hint
		}
		return Health{Level: HealthUnconfigured, Reasons: []HealthReason{{Code: ReasonNotConfigured, Severity: SeverityRed,
			Detail: map[string]any{"missing": nonNil(in.Setup.Missing), "hint": in.Setup.Hint}, Message: msg}}}
	}
	var red, amber []HealthReason
	sources := append([]scanner.State(nil), in.Sources...)
	sort.Slice(sources, func(i, j int) bool { return sources[i].Name < sources[j].Name })
	for _, s := range sources {
		if s.Connected || (s.LastError == "" && in.Now.Sub(s.Since) < startGrace) {
			continue // connected, or opening for the first time
		}
		minutes := minutesSince(in.Now, s.Since)
		msg := fmt.Sprintf("scanner %q not connected", s.Name)
		if minutes > 0 {
			msg += fmt.Sprintf(" for %d min", minutes)
		}
		if s.LastError != "" {
			msg += " (" + s.LastError + ")"
		}
		msg += ": check its cable and power; `scanagent ports` lists the ports this PC sees"
		red = append(red, HealthReason{Code: ReasonScannerDisconnected, Severity: SeverityRed,
			Detail: map[string]any{"source": s.Name, "minutes": minutes}, Message: msg})
	}
	if q := in.Queue; q != nil {
		if r := q.Recovery; r != nil {
			lost := fmt.Sprint(r.Lost)
			if r.LostUnknown {
				lost = "an unknown number"
			}
			red = append(red, HealthReason{Code: ReasonOutboxDamaged, Severity: SeverityRed,
				Detail: map[string]any{"salvaged": r.Salvaged, "lost": r.Lost, "lostUnknown": r.LostUnknown},
				Message: fmt.Sprintf("the outbox file was damaged and moved to %s: %d records salvaged, %s lost; keep that file for the vendor (the alarm clears at the next restart)",
					r.File, r.Salvaged, lost)})
		}
		if q.Space.Full {
			red = append(red, HealthReason{Code: ReasonDiskFull, Severity: SeverityRed,
				Detail:  map[string]any{"refused": q.Space.Refused, "minutes": minutesSince(in.Now, q.Space.Since)},
				Message: fmt.Sprintf("disk full: new usage reports are refused (%d so far), delivery goes on; free space on the disk that holds the outbox", q.Space.Refused)})
		}
	}
	amber = append(amber, platformReasons(in)...)
	if q := in.Queue; q != nil {
		if depth := q.Depth(); depth > 0 && q.OldestAge >= BacklogAge {
			oldest := int(q.OldestAge / time.Minute)
			amber = append(amber, HealthReason{Code: ReasonQueueBacklog, Severity: SeverityAmber,
				Detail:  map[string]any{"queued": depth, "oldestMinutes": oldest},
				Message: fmt.Sprintf("%d reports queued, the oldest %d min: they are sent once the platform accepts them", depth, oldest)})
		}
		if q.Dead > 0 {
			amber = append(amber, HealthReason{Code: ReasonDeadLetters, Severity: SeverityAmber,
				Detail:  map[string]any{"dead": q.Dead},
				Message: fmt.Sprintf("%d reports refused by the platform (dead letters): stop the service, see why with `scanagent queue list --dead -c FILE`, fix the cause, then `scanagent queue retry -c FILE`", q.Dead)})
		}
	}
	if s := in.SKM; s != nil && s.LastError != "" {
		amber = append(amber, HealthReason{Code: ReasonSKMError, Severity: SeverityAmber,
			Detail:  map[string]any{"minutes": minutesSince(in.Now, s.Since)},
			Message: "the Su Kang Code service is failing (" + s.LastError + "): Su Kang Codes cannot be verified; check the network and the [skm] settings"})
	}
	for _, s := range in.Sinks {
		if !s.Failing {
			continue
		}
		what := map[string]string{"push": "HTTP push to the HIS (his.push.url)", "hl7": "HL7 hand-off to the HIS (his.hl7.addr)"}[s.Name]
		if what == "" {
			what = "HIS hand-off " + s.Name
		}
		amber = append(amber, HealthReason{Code: ReasonHISFailing, Severity: SeverityAmber,
			Detail:  map[string]any{"sink": s.Name, "failed": s.Failed},
			Message: fmt.Sprintf("%s failing (%d failed so far): check that the HIS answers there", what, s.Failed)})
	}
	h := Health{Level: HealthOK, Reasons: append(red, amber...)}
	switch {
	case len(red) > 0:
		h.Level = HealthCritical
	case len(amber) > 0:
		h.Level = HealthDegraded
	}
	if h.Reasons == nil {
		h.Reasons = []HealthReason{}
	}
	return h
}

// platformReasons are the amber reasons about the platform (or the
// gateway, for a terminal in gateway mode).
func platformReasons(in healthInput) []HealthReason {
	p := in.Platform
	if p == nil || p.Mode == "off" {
		return nil
	}
	name := "the platform"
	if p.Mode == "gateway" {
		name = "the gateway"
	}
	var out []HealthReason
	queued, oldest := 0, 0
	if q := in.Queue; q != nil {
		queued, oldest = q.Depth(), int(q.OldestAge/time.Minute)
	}
	if p.BreakerOpen || p.Failures > 0 {
		msg := fmt.Sprintf("%s is unreachable (%d calls failed in a row", name, p.Failures)
		if p.BreakerOpen && !p.OpenUntil.IsZero() {
			msg += ", next try " + cst(p.OpenUntil)
		}
		msg += ")"
		switch {
		case queued > 0 && oldest > 0:
			msg += fmt.Sprintf("; %d reports queued, the oldest %d min", queued, oldest)
		case queued > 0:
			msg += fmt.Sprintf("; %d reports queued", queued)
		}
		msg += ": check this PC's network, proxy and firewall towards " + name
		out = append(out, HealthReason{Code: ReasonPlatformUnreachable, Severity: SeverityAmber,
			Detail:  map[string]any{"mode": p.Mode, "failures": p.Failures, "breakerOpen": p.BreakerOpen, "queued": queued, "oldestMinutes": oldest},
			Message: msg})
	}
	paused := map[string]time.Time{}
	for api, t := range p.Paused {
		if t.After(in.Now) {
			paused[api] = t
		}
	}
	if q := in.Queue; q != nil {
		for kind, t := range q.PausedUntil {
			if t.After(in.Now) && t.After(paused[kind]) {
				paused[kind] = t
			}
		}
	}
	if len(paused) > 0 {
		apis := make([]string, 0, len(paused))
		var until time.Time
		for api, t := range paused {
			apis = append(apis, api)
			if t.After(until) {
				until = t
			}
		}
		sort.Strings(apis)
		out = append(out, HealthReason{Code: ReasonPlatformPaused, Severity: SeverityAmber,
			Detail: map[string]any{"apis": apis, "minutes": int(until.Sub(in.Now).Round(time.Minute) / time.Minute), "queued": queued},
			Message: fmt.Sprintf("%s limits this hospital's calls (%s paused until %s); delivery resumes by itself — a hospital not yet live is limited to 100 calls a day",
				name, strings.Join(apis, ", "), cst(until))})
	}
	apis := make([]string, 0, len(p.LastError))
	for api, e := range p.LastError {
		if strings.HasSuffix(e, "("+card.Fatal.String()+")") {
			apis = append(apis, api)
		}
	}
	if len(apis) > 0 {
		sort.Strings(apis)
		fix := "check platform.app_id, platform.app_secret and platform.hospital_id (`scanagent debug sign` shows the signing text)"
		if p.Mode == "gateway" {
			fix = "check platform.gateway_url and platform.gateway_token"
		}
		out = append(out, HealthReason{Code: ReasonPlatformRefused, Severity: SeverityAmber,
			Detail:  map[string]any{"apis": apis},
			Message: fmt.Sprintf("%s refuses this agent's configuration (%s): %s", name, p.LastError[apis[0]], fix)})
	}
	return out
}

func minutesSince(now, t time.Time) int {
	if t.IsZero() || now.Before(t) {
		return 0
	}
	return int(now.Sub(t) / time.Minute)
}

func cst(t time.Time) string { return t.In(card.CST).Format("2006-01-02 15:04") + " CST" }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// sinkWatch tells whether a HIS sink is failing now from its counters,
// which only count: at each look, failures without deliveries since the
// previous look mean failing, deliveries without failures mean working,
// and nothing new changes nothing. The first look at a sink trusts its
// counters only when it never delivered. It is keyed by the counters,
// which outlive configuration reloads.
type sinkWatch struct {
	mu   sync.Mutex
	seen map[*visit.SinkStats]*sinkSeen
}

type sinkSeen struct {
	delivered, failed int64
	failing           bool
}

var watchedSinks = &sinkWatch{seen: map[*visit.SinkStats]*sinkSeen{}}

// look records the counters of s and reports whether it is failing.
func (w *sinkWatch) look(s *visit.SinkStats) bool {
	d, f := s.Delivered.Load(), s.Failed.Load()
	w.mu.Lock()
	defer w.mu.Unlock()
	prev, ok := w.seen[s]
	if !ok {
		w.seen[s] = &sinkSeen{delivered: d, failed: f, failing: f > 0 && d == 0}
		return f > 0 && d == 0
	}
	switch {
	case f > prev.failed:
		prev.failing = true // some failed since the last look
	case d > prev.delivered:
		prev.failing = false
	}
	prev.delivered, prev.failed = d, f
	return prev.failing
}
