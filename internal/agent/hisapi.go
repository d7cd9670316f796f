package agent

import (
	"context"
	"fmt"
	"time"

	"scanagent/internal/buildinfo"
	"scanagent/internal/card"
	"scanagent/internal/code"
	"scanagent/internal/his"
	"scanagent/internal/verify"
	"scanagent/internal/visit"
)

// usageRecorder queues the HIS's usage reports and bindings through the
// visit policy's recorder.
type usageRecorder struct{ r visit.Recorder }

var _ his.UsageRecorder = usageRecorder{}

func (u usageRecorder) RecordUsage(ctx context.Context, in his.Usage) (string, error) {
	return refused(u.r.RecordUsage(ctx, in.ScanID, in.IdempotencyKey, in.Report))
}

func (u usageRecorder) RecordBinding(ctx context.Context, in his.Binding) (string, error) {
	return refused(u.r.RecordBinding(ctx, in.IdempotencyKey, in.Binding))
}

// refused marks an outbox refusal for the API (503).
func refused(id string, err error) (string, error) {
	if err != nil {
		return "", fmt.Errorf("%w: %v", his.ErrQueueRefused, err)
	}
	return id, nil
}

// ehcCheck tells the local API, with the agent's parser, whether a text is
// an e-Health Card code, which one (normalized, as the scanners would have
// read it) and whether a dynamic one.
func ehcCheck(p *code.Parser) func(string) (string, bool, error) {
	return func(text string) (string, bool, error) {
		c, err := p.Parse([]byte(text))
		if err != nil {
			return "", false, err
		}
		if c.Kind.IsEHC() {
			return c.Text, c.Kind == card.KindEHCDynamic, nil
		}
		return "", false, fmt.Errorf("a %s code, not an e-Health Card code", c.Kind)
	}
}

func checkIDNumber(s string) error {
	_, err := code.CheckIDNumber(s)
	return err
}

// snapshot is the agent's state at now as /v1/status and the heartbeat
// report it, and as its health is computed from.
func (a *agent) snapshot(now time.Time) healthInput {
	in := healthInput{Now: now, Sources: a.sup.States(), Setup: setupOf(a.setupStatus())}
	for _, name := range a.pipe.SinkNames() {
		if name == "api" {
			continue
		}
		s := a.pipe.SinkStats()[name]
		in.Sinks = append(in.Sinks, sinkHealth{Name: name, Failing: watchedSinks.look(s), Failed: s.Failed.Load()})
	}
	if a.platform != nil {
		ps := a.platform.Status()
		in.Platform = &ps
	}
	if a.outbox != nil {
		qs := a.outbox.Stats()
		in.Queue = &qs
	}
	if s, ok := a.skm.(interface{ Status() verify.SKMStatus }); ok {
		ss := s.Status()
		in.SKM = &ss
	}
	return in
}

// status is the agent's state for /v1/status and the status page.
func (a *agent) status() map[string]any {
	st := a.pipe.Stats()
	in := a.snapshot(time.Now())
	m := map[string]any{
		"version":  buildinfo.Version,
		"terminal": a.cfg.Agent.TerminalID,
		"started":  a.started,
		"uptime":   time.Since(a.started).Round(time.Second).String(),
		"sources":  in.Sources,
		"scans": map[string]int64{"total": st.Scans.Load(), "verified": st.Verified.Load(), "unverified": st.Unverified.Load(),
			"rejected": st.Rejected.Load(), "failed": st.Failed.Load(), "suppressed": st.Suppressed.Load(),
			"reportsQueued": st.Reports.Load(), "reportsRefused": st.ReportsRefused.Load()},
	}
	sinks := map[string]map[string]int64{}
	for _, name := range a.pipe.SinkNames() {
		s := a.pipe.SinkStats()[name]
		sinks[name] = map[string]int64{"delivered": s.Delivered.Load(), "failed": s.Failed.Load()}
	}
	m["his"] = sinks
	m["setup"] = a.setupStatus()
	if ps := in.Platform; ps != nil {
		p := map[string]any{"mode": ps.Mode, "tokenAge": ps.TokenAge.Round(time.Second).String(), "hasToken": ps.TokenAge > 0, "breakerOpen": ps.BreakerOpen,
			"openUntil": ps.OpenUntil, "consecutiveFailures": ps.Failures, "pausedUntil": ps.Paused, "lastError": ps.LastError}
		if len(ps.Gateways) > 0 {
			p["gateways"] = ps.Gateways // a terminal's breaker towards each gateway
		}
		m["platform"] = p
		if c, ok := a.platform.(*haEHC); ok {
			m["ha"] = c.node.Status() // a gateway of [gateway.ha]: who leads, the shared token
		}
	} else {
		m["platform"] = map[string]any{"mode": "off"}
	}
	if qs := in.Queue; qs != nil {
		m["queue"] = map[string]any{"depth": qs.Depth(), "pending": qs.Pending, "oldestAge": qs.OldestAge.Round(time.Second).String(),
			"dead": qs.Dead, "delivered": qs.Delivered, "duplicates": qs.Duplicates, "retries": qs.Retries, "dropped": qs.Dropped,
			"lastError": qs.LastError, "pausedUntil": qs.PausedUntil, "alerts": qs.Alerts, "fileSize": qs.FileSize,
			"recovery": qs.Recovery, "space": qs.Space, "oldestAgeSeconds": int64(qs.OldestAge / time.Second)}
	}
	if in.SKM != nil {
		m["skm"] = *in.SKM
	}
	m["health"] = evaluate(in)
	return m
}
