package agent

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"scanagent/internal/card"
	"scanagent/internal/queue"
	"scanagent/internal/visit"
)

// latencyBuckets suit hand-offs and calls of a millisecond to seconds.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// observer is the process's Prometheus registry: the Go and process
// collectors, the agent's counters and gauges (read from the running agent
// at scrape time) and the latency histograms. It is made once per process
// and outlives configuration reloads, so nothing it holds restarts at zero.
type observer struct {
	reg      *prometheus.Registry
	running  atomic.Pointer[agent] // the agent whose state is exposed
	handoff  *prometheus.HistogramVec
	platform *prometheus.HistogramVec
	enqueue  *prometheus.HistogramVec
	delivery *prometheus.HistogramVec
}

func newObserver() *observer {
	o := &observer{reg: prometheus.NewRegistry()}
	histogram := func(name, help string, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets}, labels)
		o.reg.MustRegister(h)
		return h
	}
	o.handoff = histogram("scanagent_handoff_seconds", "Time from a scan to its hand-off to the HIS sinks.", "source", "kind")
	o.platform = histogram("scanagent_platform_call_seconds", "Duration of each HTTP attempt to the e-Health Card platform.", "api", "result")
	o.enqueue = histogram("scanagent_outbox_enqueue_seconds", "Time to commit a usage record to the outbox.", "kind")
	o.delivery = histogram("scanagent_outbox_delivery_seconds", "Duration of each delivery attempt of an outbox record.", "kind", "outcome")
	o.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		agentCollector{&o.running})
	return o
}

// follow makes a the agent whose state is exposed.
func (o *observer) follow(a *agent) { o.running.Store(a) }

// handler serves the registry (GET /metrics).
func (o *observer) handler() http.Handler {
	return promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{})
}

// observeHandoff is visit.Options.ObserveHandoff.
func (o *observer) observeHandoff(source string, kind card.Kind, d time.Duration) {
	k := string(kind)
	if k == "" {
		k = "unknown" // not recognised
	}
	o.handoff.WithLabelValues(source, k).Observe(d.Seconds())
}

// observePlatformCall is verify.EHCOptions.Observe.
func (o *observer) observePlatformCall(api, result string, d time.Duration) {
	o.platform.WithLabelValues(api, result).Observe(d.Seconds())
}

// recordKind bounds the kind label to the record kinds.
func recordKind(kind string) string {
	if kind == card.RecordReport || kind == card.RecordBind {
		return kind
	}
	return "other"
}

// timedOutbox measures the outbox's commit of each record it accepts.
type timedOutbox struct {
	visit.Outbox
	h *prometheus.HistogramVec
}

func (t timedOutbox) EnqueueKeyed(ctx context.Context, kind, key string, payload []byte) (uint64, error) {
	start := time.Now()
	seq, err := t.Outbox.EnqueueKeyed(ctx, kind, key, payload)
	if err == nil {
		t.h.WithLabelValues(recordKind(kind)).Observe(time.Since(start).Seconds())
	}
	return seq, err
}

// timedSender measures each delivery attempt, by its outcome.
type timedSender struct {
	queue.Sender
	h *prometheus.HistogramVec
}

func (t timedSender) Send(ctx context.Context, kind string, payload []byte, requestID string) queue.Verdict {
	start := time.Now()
	v := t.Sender.Send(ctx, kind, payload, requestID)
	t.h.WithLabelValues(recordKind(kind), v.Outcome.String()).Observe(time.Since(start).Seconds())
	return v
}

// outbox returns ob measured; ob itself without an observer.
func (o *observer) outbox(ob visit.Outbox) visit.Outbox {
	if o == nil {
		return ob
	}
	return timedOutbox{ob, o.enqueue}
}

// sender returns s measured; s itself without an observer.
func (o *observer) sender(s queue.Sender) queue.Sender {
	if o == nil {
		return s
	}
	return timedSender{s, o.delivery}
}
