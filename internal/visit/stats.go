package visit

import (
	"context"
	"sync"
	"sync/atomic"

	"scanagent/internal/card"
)

// Stats are the pipeline's counters.
type Stats struct {
	Scans      atomic.Int64
	Suppressed atomic.Int64
	Rejected   atomic.Int64
	Verified   atomic.Int64
	Unverified atomic.Int64
	Failed     atomic.Int64
	// Reports queued, and refused by the outbox.
	Reports        atomic.Int64
	ReportsRefused atomic.Int64
}

// SinkStats are one HIS sink's hand-off counters.
type SinkStats struct {
	Delivered, Failed atomic.Int64
}

type sink struct {
	name  string
	sink  Sink
	stats *SinkStats
}

// AddSink adds a HIS sink; its counters continue those of the sink of the
// same name before a reload.
func (p *Pipeline) AddSink(name string, s Sink) {
	st, ok := p.o.Sinks[name]
	if !ok {
		st = &SinkStats{}
		p.o.Sinks[name] = st
	}
	p.sinks = append(p.sinks, sink{name: name, sink: s, stats: st})
}

// Stats returns the pipeline's counters.
func (p *Pipeline) Stats() *Stats { return p.o.Stats }

// SinkStats returns the counters of the pipeline's sinks, by name (those
// carried over from before a reload included).
func (p *Pipeline) SinkStats() map[string]*SinkStats { return p.o.Sinks }

// SinkNames lists the pipeline's sinks in the order they were added.
func (p *Pipeline) SinkNames() []string {
	names := make([]string, len(p.sinks))
	for i, s := range p.sinks {
		names[i] = s.name
	}
	return names
}

// deliver hands the visit to every sink. Sinks run side by side: a slow
// HIS push does not delay the others.
func (p *Pipeline) deliver(ctx context.Context, v card.Visit) {
	if len(p.sinks) == 0 {
		return
	}
	// The first sink (the local API, when on) runs on this goroutine: one
	// sink, the usual case, costs no goroutine to wake. The others run
	// beside it.
	var wg sync.WaitGroup
	for _, s := range p.sinks[1:] {
		wg.Go(func() { p.deliverTo(ctx, s, v) })
	}
	p.deliverTo(ctx, p.sinks[0], v)
	wg.Wait()
}

// deliverTo hands v to one sink and counts the outcome.
func (p *Pipeline) deliverTo(ctx context.Context, s sink, v card.Visit) {
	if err := s.sink.Deliver(ctx, v); err != nil {
		s.stats.Failed.Add(1)
		p.o.Log.Warn().Err(err).Str("sink", s.name).Str("scan", v.ID).Msg("HIS hand-off failed")
		return
	}
	s.stats.Delivered.Add(1)
}
