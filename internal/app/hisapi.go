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
	"scanagent/internal/code"
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
	if key != "" {
		key = "his:" + key
	}
	return u.enqueueKeyed(ctx, kind, key, v)
}

func (u usageRecorder) enqueueKeyed(ctx context.Context, kind, key string, v any) (string, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return "", err
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
	d := defaultReport(u.reports)
	if r.CardChannel == "" {
		r.CardChannel = d.channel
	}
	if r.CardChannel == "" {
		r.CardChannel = "0000" // 其他
	}
	if r.Department == "" {
		r.Department = d.department
	}
	key := in.IdempotencyKey
	if in.ScanID != "" {
		// One visit, one report: the key the pipeline used for this scan's
		// automatic report, so the HIS reporting the same scan again (or a
		// static scan the agent already reported) queues nothing new.
		return u.enqueueKeyed(ctx, kindReport, "scan:"+in.ScanID, r)
	}
	return u.enqueue(ctx, kindReport, key, r)
}

func (u usageRecorder) RecordBinding(ctx context.Context, in his.Binding) (string, error) {
	return u.enqueue(ctx, kindBind, in.IdempotencyKey, verify.Binding{PatID: in.PatID, QRCodeText: in.QRCodeText})
}

// defaultReport is the report settings a HIS report without channel or
// department takes: those of the first source (by name) that has them.
func defaultReport(reports map[string]reportDefaults) reportDefaults {
	names := make([]string, 0, len(reports))
	for n := range reports {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return reportDefaults{}
	}
	return reports[names[0]]
}

// ehcCheck tells the local API whether a text is an e-Health Card code,
// and whether a dynamic one, with the agent's parser.
func ehcCheck(p *code.Parser) func(string) (bool, error) {
	return func(text string) (bool, error) {
		c, err := p.Parse([]byte(text))
		if err != nil {
			return false, err
		}
		switch c.Kind {
		case code.KindEHCStatic:
			return false, nil
		case code.KindEHCDynamic:
			return true, nil
		}
		return false, fmt.Errorf("a %s code, not an e-Health Card code", c.Kind)
	}
}

func checkIDNumber(s string) error {
	_, err := code.CheckIDNumber(s)
	return err
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
			"lastError": qs.LastError, "pausedUntil": qs.PausedUntil, "alerts": qs.Alerts, "fileSize": qs.FileSize,
			"recovery": qs.Recovery, "space": qs.Space}
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
	metric("scanagent_reports_queued_total", "counter", "Usage reports of scans queued in the outbox.", "", st.Reports.Load())
	metric("scanagent_reports_refused_total", "counter", "Usage reports of scans the outbox refused (full, disk full).", "", st.ReportsRefused.Load())
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
		damaged, salvaged, lost := 0, 0, 0
		if r := qs.Recovery; r != nil {
			damaged, salvaged, lost = 1, r.Salvaged, r.Lost
		}
		metric("scanagent_queue_damaged", "gauge", "1 when the outbox file was found damaged at start and salvaged (see /v1/status queue.recovery).", "", damaged)
		metric("scanagent_queue_salvaged_records", "gauge", "Records salvaged from a damaged outbox file at start.", "", salvaged)
		metric("scanagent_queue_lost_records", "gauge", "Records of a damaged outbox file that could not be read.", "", lost)
		full := 0
		if qs.Space.Full {
			full = 1
		}
		metric("scanagent_queue_disk_full", "gauge", "1 while the outbox cannot grow: new records are refused, delivery goes on.", "", full)
		metric("scanagent_queue_refused_no_space_total", "counter", "Records refused for lack of disk space.", "", qs.Space.Refused)
	}
}
