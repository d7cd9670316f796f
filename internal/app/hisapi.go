package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"scanagent/internal/buildinfo"
	"scanagent/internal/his"
	"scanagent/internal/verify"
)

// usageRecorder turns the HIS's usage reports and bindings into outbox
// records.
type usageRecorder struct {
	q       recorder
	reports map[string]reportDefaults
	now     func() time.Time
}

var _ his.UsageRecorder = usageRecorder{}

func (u usageRecorder) enqueue(ctx context.Context, kind, key string, v any) (string, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	if key != "" {
		key = "his:" + key
	}
	seq, err := u.q.EnqueueKeyed(ctx, kind, key, payload)
	if err != nil {
		return "", fmt.Errorf("%w: %v", his.ErrQueueRefused, err)
	}
	return strconv.FormatUint(seq, 10), nil
}

func (u usageRecorder) RecordUsage(ctx context.Context, in his.Usage) (string, error) {
	r := verify.Report{QRCodeText: in.QRCodeText, IDCardNumber: in.IDCardNumber, Name: in.Name, Time: in.Time, Scene: in.Scene,
		Department: in.Department, CardType: in.CardType, CardChannel: in.CardChannel}
	if r.Time == "" {
		r.Time = verify.FormatTime(u.now())
	}
	if r.CardChannel == "" || r.Department == "" {
		// Fill from the source the scan came from, else the first source
		// with report settings, else 其他.
		var d reportDefaults
		if len(u.reports) > 0 {
			names := make([]string, 0, len(u.reports))
			for n := range u.reports {
				names = append(names, n)
			}
			sort.Strings(names)
			d = u.reports[names[0]]
		}
		if r.CardChannel == "" {
			r.CardChannel = d.channel
		}
		if r.CardChannel == "" {
			r.CardChannel = "0000"
		}
		if r.Department == "" {
			r.Department = d.department
		}
	}
	return u.enqueue(ctx, kindReport, in.IdempotencyKey, r)
}

func (u usageRecorder) RecordBinding(ctx context.Context, in his.Binding) (string, error) {
	return u.enqueue(ctx, kindBind, in.IdempotencyKey, verify.Binding{PatID: in.PatID, QRCodeText: in.QRCodeText})
}

// status is the agent's state for /v1/status and the status page.
func (a *agent) status() map[string]any {
	st := a.pipe.stats
	m := map[string]any{
		"version":  buildinfo.Version,
		"terminal": a.cfg.Agent.TerminalID,
		"started":  a.started,
		"uptime":   time.Since(a.started).Round(time.Second).String(),
		"sources":  a.sup.States(),
		"scans": map[string]int64{"total": st.Scans.Load(), "verified": st.Verified.Load(), "unverified": st.Unverified.Load(),
			"rejected": st.Rejected.Load(), "failed": st.Failed.Load(), "suppressed": st.Suppressed.Load(),
			"reportsQueued": st.Reports.Load(), "reportsRefused": st.ReportsRefused.Load()},
	}
	sinks := map[string]map[string]int64{}
	for _, s := range a.pipe.sinks {
		sinks[s.name] = map[string]int64{"delivered": s.delivered.Load(), "failed": s.failed.Load()}
	}
	m["his"] = sinks
	if a.platform != nil {
		ps := a.platform.Status()
		m["platform"] = map[string]any{"mode": ps.Mode, "tokenAge": ps.TokenAge.Round(time.Second).String(), "breakerOpen": ps.BreakerOpen,
			"openUntil": ps.OpenUntil, "consecutiveFailures": ps.Failures, "pausedUntil": ps.Paused, "lastError": ps.LastError}
	} else {
		m["platform"] = map[string]any{"mode": "off"}
	}
	if a.outbox != nil {
		qs := a.outbox.Stats()
		m["queue"] = map[string]any{"depth": qs.Depth(), "pending": qs.Pending, "oldestAge": qs.OldestAge.Round(time.Second).String(),
			"dead": qs.Dead, "delivered": qs.Delivered, "duplicates": qs.Duplicates, "retries": qs.Retries, "dropped": qs.Dropped,
			"lastError": qs.LastError, "pausedUntil": qs.PausedUntil, "alerts": qs.Alerts, "fileSize": qs.FileSize}
	}
	return m
}

// metrics writes the agent's Prometheus metrics (text exposition format,
// written directly: a handful of series needs no client library).
func (a *agent) metrics(w io.Writer) {
	metric := func(name, typ, help string, samples ...any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for i := 0; i+1 < len(samples); i += 2 {
			fmt.Fprintf(w, "%s%s %v\n", name, samples[i], samples[i+1])
		}
	}
	st := a.pipe.stats
	metric("scanagent_scans_total", "counter", "Scans by outcome.",
		`{outcome="verified"}`, st.Verified.Load(), `{outcome="unverified"}`, st.Unverified.Load(), `{outcome="rejected"}`, st.Rejected.Load(),
		`{outcome="failed"}`, st.Failed.Load(), `{outcome="suppressed"}`, st.Suppressed.Load())
	var sinkSamples []any
	for _, s := range a.pipe.sinks {
		sinkSamples = append(sinkSamples, fmt.Sprintf(`{sink=%q,result="delivered"}`, s.name), s.delivered.Load(), fmt.Sprintf(`{sink=%q,result="failed"}`, s.name), s.failed.Load())
	}
	metric("scanagent_his_handoffs_total", "counter", "Outcomes handed to each HIS sink.", sinkSamples...)
	var sources []any
	for _, s := range a.sup.States() {
		up := 0
		if s.Connected {
			up = 1
		}
		sources = append(sources, fmt.Sprintf(`{source=%q}`, s.Name), up)
	}
	metric("scanagent_source_connected", "gauge", "Whether a scanner is connected.", sources...)
	if a.platform != nil {
		ps := a.platform.Status()
		open := 0
		if ps.BreakerOpen {
			open = 1
		}
		metric("scanagent_platform_breaker_open", "gauge", "Whether the platform circuit breaker is open.", "", open)
		metric("scanagent_platform_token_age_seconds", "gauge", "Age of the appToken.", "", ps.TokenAge.Seconds())
	}
	if a.outbox != nil {
		qs := a.outbox.Stats()
		var kinds []any
		for k, n := range qs.Pending {
			kinds = append(kinds, fmt.Sprintf(`{kind=%q}`, k), n)
		}
		metric("scanagent_queue_depth", "gauge", "Records waiting in the outbox.", kinds...)
		metric("scanagent_queue_oldest_age_seconds", "gauge", "Age of the oldest waiting record.", "", qs.OldestAge.Seconds())
		metric("scanagent_queue_dead_letters", "gauge", "Records the platform refused for good.", "", qs.Dead)
		metric("scanagent_queue_delivered_total", "counter", "Records the platform accepted.", "", qs.Delivered)
		metric("scanagent_queue_retries_total", "counter", "Delivery attempts that will be retried.", "", qs.Retries)
		metric("scanagent_queue_dropped_total", "counter", "Records dropped under drop_oldest.", "", qs.Dropped)
		metric("scanagent_queue_file_bytes", "gauge", "Size of the outbox file.", "", qs.FileSize)
	}
}
