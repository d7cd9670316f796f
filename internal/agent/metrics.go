package agent

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// The agent's counters and gauges. Their values live in the stages (the
// pipeline's and sinks' counters, carried across reloads; the outbox,
// which outlives them; the platform client) and are read at scrape time.
var (
	descHISClients      = desc("scanagent_his_clients", "Connected WebSocket and SSE clients.")
	descScans           = desc("scanagent_scans_total", "Scans by outcome.", "outcome")
	descReportsQueued   = desc("scanagent_reports_queued_total", "Usage reports of scans queued in the outbox.")
	descReportsRefused  = desc("scanagent_reports_refused_total", "Usage reports of scans the outbox refused (full, disk full).")
	descHandoffs        = desc("scanagent_his_handoffs_total", "Outcomes handed to each HIS sink.", "sink", "result")
	descSourceConnected = desc("scanagent_source_connected", "Whether a scanner is connected.", "source")
	descBreakerOpen     = desc("scanagent_platform_breaker_open", "Whether the platform circuit breaker is open.")
	descTokenAge        = desc("scanagent_platform_token_age_seconds", "Age of the appToken.")
	descQueueDepth      = desc("scanagent_queue_depth", "Records waiting in the outbox.", "kind")
	descQueueOldest     = desc("scanagent_queue_oldest_age_seconds", "Age of the oldest waiting record.")
	descQueueDead       = desc("scanagent_queue_dead_letters", "Records the platform refused for good.")
	descQueueDelivered  = desc("scanagent_queue_delivered_total", "Records the platform accepted.")
	descQueueRetries    = desc("scanagent_queue_retries_total", "Delivery attempts that will be retried.")
	descQueueDropped    = desc("scanagent_queue_dropped_total", "Records dropped under drop_oldest.")
	descQueueFileBytes  = desc("scanagent_queue_file_bytes", "Size of the outbox file.")
	descQueueDamaged    = desc("scanagent_queue_damaged", "1 when the outbox file was found damaged at start and salvaged (see /v1/status queue.recovery).")
	descQueueSalvaged   = desc("scanagent_queue_salvaged_records", "Records salvaged from a damaged outbox file at start.")
	descQueueLost       = desc("scanagent_queue_lost_records", "Records of a damaged outbox file that could not be read.")
	descQueueDiskFull   = desc("scanagent_queue_disk_full", "1 while the outbox cannot grow: new records are refused, delivery goes on.")
	descQueueNoSpace    = desc("scanagent_queue_refused_no_space_total", "Records refused for lack of disk space.")
	descFleetTerminals  = desc("scanagent_fleet_terminals", "Terminals in a gateway's fleet view by campus and state (online, offline).", "campus", "state")

	agentDescs = []*prometheus.Desc{descHISClients, descScans, descReportsQueued, descReportsRefused, descHandoffs, descSourceConnected,
		descBreakerOpen, descTokenAge, descQueueDepth, descQueueOldest, descQueueDead, descQueueDelivered, descQueueRetries,
		descQueueDropped, descQueueFileBytes, descQueueDamaged, descQueueSalvaged, descQueueLost, descQueueDiskFull, descQueueNoSpace,
		descFleetTerminals}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// agentCollector exposes the state of the running agent, which a reload
// replaces: it reads whichever agent the observer follows at scrape time.
type agentCollector struct{ running *atomic.Pointer[agent] }

func (c agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range agentDescs {
		ch <- d
	}
}

func (c agentCollector) Collect(ch chan<- prometheus.Metric) {
	if a := c.running.Load(); a != nil {
		a.collect(ch)
	}
}

// collect sends the agent's counters and gauges.
func (a *agent) collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	flag := func(d *prometheus.Desc, on bool, labels ...string) {
		v := 0.0
		if on {
			v = 1
		}
		gauge(d, v, labels...)
	}
	if a.api != nil {
		gauge(descHISClients, float64(a.api.Clients()))
	}
	st := a.pipe.Stats()
	counter(descScans, st.Verified.Load(), "verified")
	counter(descScans, st.Unverified.Load(), "unverified")
	counter(descScans, st.Rejected.Load(), "rejected")
	counter(descScans, st.Failed.Load(), "failed")
	counter(descScans, st.Suppressed.Load(), "suppressed")
	counter(descReportsQueued, st.Reports.Load())
	counter(descReportsRefused, st.ReportsRefused.Load())
	sinks := a.pipe.SinkStats()
	for _, name := range a.pipe.SinkNames() {
		s := sinks[name]
		counter(descHandoffs, s.Delivered.Load(), name, "delivered")
		counter(descHandoffs, s.Failed.Load(), name, "failed")
	}
	for _, s := range a.sup.States() {
		flag(descSourceConnected, s.Connected, s.Name)
	}
	if a.platform != nil {
		ps := a.platform.Status()
		flag(descBreakerOpen, ps.BreakerOpen)
		gauge(descTokenAge, ps.TokenAge.Seconds())
	}
	if a.outbox != nil {
		qs := a.outbox.Stats()
		for k, n := range qs.Pending {
			gauge(descQueueDepth, float64(n), k)
		}
		gauge(descQueueOldest, qs.OldestAge.Seconds())
		gauge(descQueueDead, float64(qs.Dead))
		counter(descQueueDelivered, qs.Delivered)
		counter(descQueueRetries, qs.Retries)
		counter(descQueueDropped, qs.Dropped)
		gauge(descQueueFileBytes, float64(qs.FileSize))
		damaged, salvaged, lost := false, 0, 0
		if r := qs.Recovery; r != nil {
			damaged, salvaged, lost = true, r.Salvaged, r.Lost
		}
		flag(descQueueDamaged, damaged)
		gauge(descQueueSalvaged, float64(salvaged))
		gauge(descQueueLost, float64(lost))
		flag(descQueueDiskFull, qs.Space.Full)
		counter(descQueueNoSpace, qs.Space.Refused)
	}
	a.collectFleet(ch)
}
