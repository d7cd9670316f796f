package agent

import (
	"fmt"
	"io"
)

// metrics writes the agent's Prometheus metrics (text exposition format,
// written directly: a handful of series needs no client library).
func (a *agent) metrics(w io.Writer) {
	metric := func(name, typ, help string, samples ...any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for i := 0; i+1 < len(samples); i += 2 {
			fmt.Fprintf(w, "%s%s %v\n", name, samples[i], samples[i+1])
		}
	}
	st := a.pipe.Stats()
	metric("scanagent_scans_total", "counter", "Scans by outcome.",
		`{outcome="verified"}`, st.Verified.Load(), `{outcome="unverified"}`, st.Unverified.Load(), `{outcome="rejected"}`, st.Rejected.Load(),
		`{outcome="failed"}`, st.Failed.Load(), `{outcome="suppressed"}`, st.Suppressed.Load())
	metric("scanagent_reports_queued_total", "counter", "Usage reports of scans queued in the outbox.", "", st.Reports.Load())
	metric("scanagent_reports_refused_total", "counter", "Usage reports of scans the outbox refused (full, disk full).", "", st.ReportsRefused.Load())
	var sinkSamples []any
	for _, name := range a.pipe.SinkNames() {
		s := a.pipe.SinkStats()[name]
		sinkSamples = append(sinkSamples, fmt.Sprintf(`{sink=%q,result="delivered"}`, name), s.Delivered.Load(), fmt.Sprintf(`{sink=%q,result="failed"}`, name), s.Failed.Load())
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
