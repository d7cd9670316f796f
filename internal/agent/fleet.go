package agent

import (
	"context"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"scanagent/internal/buildinfo"
	"scanagent/internal/fleet"
	"scanagent/internal/gateway"
	"scanagent/internal/ha"
	"scanagent/internal/logging"
)

// The fleet view: a terminal in gateway mode sends its gateway a
// heartbeat (built from the same snapshot as its /v1/status); a gateway
// keeps them in a registry (internal/fleet) that its server and its
// metrics read.

// heartbeater is what the heartbeat needs of the terminal's gateway
// client (verify.Gateway).
type heartbeater interface {
	Heartbeat(ctx context.Context, hb any) error
}

// startHeartbeat sends a terminal's heartbeat at once and then every
// platform.heartbeat_interval, on its own goroutine: a heartbeat never
// waits for a scan nor a scan for it. The returned func stops it and
// waits (idempotent).
func (a *agent) startHeartbeat(ctx context.Context) (stop func()) {
	gw, ok := a.platform.(heartbeater)
	every := a.cfg.Platform.HeartbeatInterval.D()
	if !ok || every <= 0 {
		return func() {}
	}
	hctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.heartbeats(hctx, gw, every)
	}()
	return func() { cancel(); <-done }
}

// heartbeats sends one heartbeat per tick until ctx ends. One at a time:
// the ticks that fall due while one is under way (a gateway timing out
// before the failover) make one more, at once. Failures are logged at
// debug, at most once a minute.
func (a *agent) heartbeats(ctx context.Context, gw heartbeater, every time.Duration) {
	log := logging.Component(a.log, "heartbeat").Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Minute})
	var last problem
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := gw.Heartbeat(ctx, a.heartbeat(&last, time.Now())); err != nil && ctx.Err() == nil {
			log.Debug().Err(err).Msg("heartbeat not delivered; the next one follows")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scanClock is when a scanner last read a code; a reload keeps it. A nil
// one keeps nothing.
type scanClock struct{ ns atomic.Int64 }

func (c *scanClock) mark(t time.Time) {
	if c != nil {
		c.ns.Store(t.UnixNano())
	}
}

// last is the time of the last scan, zero before the first.
func (c *scanClock) last() time.Time {
	if c == nil || c.ns.Load() == 0 {
		return time.Time{}
	}
	return time.Unix(0, c.ns.Load())
}

// problem is the last problem the terminal's health reported, and when.
type problem struct {
	msg string
	at  time.Time
}

// heartbeat is the terminal's state for its gateway's fleet view, read
// from the snapshot /v1/status reports, clipped and masked.
func (a *agent) heartbeat(last *problem, now time.Time) fleet.Heartbeat {
	in := a.snapshot(now)
	h := evaluate(in)
	if len(h.Reasons) > 0 {
		last.msg, last.at = h.Reasons[0].Message, now
	}
	hb := fleet.Heartbeat{Campus: a.cfg.Platform.Campus, Version: buildinfo.Version, Health: h.Level, LastScan: a.lastScan.last(),
		LastError: last.msg, LastErrorAt: last.at, Scanners: []fleet.Scanner{}}
	for _, r := range h.Reasons {
		hb.Reasons = append(hb.Reasons, r.Code)
	}
	sources := append(in.Sources[:0:0], in.Sources...)
	sort.Slice(sources, func(i, j int) bool { return sources[i].Name < sources[j].Name })
	for _, s := range sources {
		hb.Scanners = append(hb.Scanners, fleet.Scanner{Name: s.Name, Connected: s.Connected, Since: s.Since, LastError: s.LastError,
			Scans: s.Scans, Reconnects: s.Reconnects})
	}
	if q := in.Queue; q != nil {
		hb.Queue = fleet.Queue{Depth: q.Depth(), Dead: q.Dead, OldestPendingSeconds: int64(q.OldestAge / time.Second)}
	}
	hb.Clip()
	return hb
}

// fleetRegistry is a gateway's fleet registry: in etcd beside its
// election node ([gateway.ha]), shared by every gateway; else in memory,
// kept across reloads (prev).
func (a *agent) fleetRegistry(node *ha.Node, prev *fleet.Memory) gateway.Fleet {
	g, id := a.cfg.Gateway, a.cfg.Agent.TerminalID
	if node != nil {
		return fleet.NewEtcd(node.Client(), fleet.EtcdOptions{Prefix: g.HA.Prefix, Via: id, OfflineAfter: g.OfflineAfter.D()})
	}
	if prev == nil {
		prev = fleet.NewMemory(id, g.OfflineAfter.D(), nil)
	}
	prev.SetOfflineAfter(g.OfflineAfter.D())
	a.memFleet = prev
	return prev
}

// fleetOptions are the gateway server's fleet view settings.
func (a *agent) fleetOptions() gateway.FleetOptions {
	g := a.cfg.Gateway
	return gateway.FleetOptions{Token: g.FleetToken.Reveal(), SilentAfter: g.SilentAfter.D(), OfflineAfter: g.OfflineAfter.D(),
		Gateway: a.cfg.Agent.TerminalID}
}

// collectFleet sends a gateway's terminal counts; nothing when its
// registry cannot be read within 2 s.
func (a *agent) collectFleet(ch chan<- prometheus.Metric) {
	if a.fleet == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ts, err := a.fleet.List(ctx)
	if err != nil {
		a.log.Debug().Err(err).Msg("metrics: the fleet registry cannot be read")
		return
	}
	for campus, byState := range fleet.Count(ts) {
		for state, n := range byState {
			ch <- prometheus.MustNewConstMetric(descFleetTerminals, prometheus.GaugeValue, float64(n), campus, state)
		}
	}
}
