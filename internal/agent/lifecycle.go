package agent

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"scanagent/internal/card"
	"scanagent/internal/scanner"
	"scanagent/internal/visit"
)

// run starts the agent and blocks until ctx ends, then stops in reverse
// order within the shutdown timeout: scanners first, in-flight scans
// drained, servers closed, outbox delivery stopped (the caller closes the
// outbox, which outlives reloads). Whatever missed the deadline is named in
// the returned error; nothing of this agent runs once run returned, except
// a scanner blocked in a driver call, which is named too.
func (a *agent) run(ctx context.Context) error {
	stopDelivery := a.startDelivery(ctx)
	defer stopDelivery() // on every return path: delivery stops before the caller closes the file
	stopServers, err := a.servers.Start(a.log)
	if err != nil {
		return err
	}
	sc := a.startScanning(ctx)
	stopHeartbeat := a.startHeartbeat(ctx)
	defer stopHeartbeat()
	a.log.Info().Int("sources", len(a.sources)).Str("platform", a.cfg.Platform.Mode).Str("terminal", a.cfg.Agent.TerminalID).Msg("agent ready")
	a.notifyf("READY=1\nSTATUS=%s", a.summary())
	// Start-up garbage (on a fresh outbox, the transaction that writes its
	// disk-space reserve is megabytes of heap) would otherwise stay mapped
	// until the runtime's background scavenger gets to it: give it back now
	// (idle RSS 30 → 25.7 MB on the shipped configuration).
	go debug.FreeOSMemory()

	a.watch(ctx)
	a.log.Info().Msg("stopping: scanners first")
	a.notifyf("STOPPING=1")
	deadline := time.Now().Add(a.cfg.Agent.ShutdownTimeout.D())
	abandoned := sc.stop(deadline)
	stopHeartbeat()
	stopServers()
	// Delivery stops after the pipeline drained, so every report of an
	// in-flight scan is on disk; in-flight sends keep their requestIds.
	stopDelivery()
	st := a.pipe.Stats()
	a.log.Info().Int64("scans", st.Scans.Load()).Int64("verified", st.Verified.Load()).Int64("rejected", st.Rejected.Load()).
		Int64("failed", st.Failed.Load()).Int64("suppressed", st.Suppressed.Load()).Int64("reportsQueued", st.Reports.Load()).Msg("stopped")
	if len(abandoned) > 0 {
		return fmt.Errorf("stop abandoned: %s", strings.Join(abandoned, "; "))
	}
	return nil
}

// watch is the agent's main loop while it runs: until ctx ends it tells
// systemd's watchdog the agent is alive (WATCHDOG=1, at half the unit's
// WatchdogSec). A process whose main loop hangs stops telling it, and
// systemd restarts it.
func (a *agent) watch(ctx context.Context) {
	every := a.notify.WatchdogInterval()
	if every <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.notifyf("WATCHDOG=1")
		}
	}
}

// notifyf tells systemd (sd_notify); outside systemd it does nothing.
func (a *agent) notifyf(format string, args ...any) {
	if err := a.notify.Notify(fmt.Sprintf(format, args...)); err != nil {
		a.log.Warn().Err(err).Msg("sd_notify failed")
	}
}

// summary is the one-line state systemctl status shows.
func (a *agent) summary() string {
	if a.unconfigured != nil {
		return "not configured yet: " + setupHint(a.cfg.Path)
	}
	return fmt.Sprintf("scanning: %d scanner(s), platform %s", len(a.sources), a.cfg.Platform.Mode)
}

// startDelivery runs the outbox's delivery and maintenance; the returned
// func stops them and waits (idempotent).
func (a *agent) startDelivery(ctx context.Context) (stop func()) {
	if a.outbox == nil {
		return func() {}
	}
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		a.outbox.Run(dctx, a.obs.sender(platformSender{p: a.platform, pause: a.cfg.Platform.RateLimitPause.D(), now: time.Now}))
	}()
	go func() {
		defer wg.Done()
		a.outbox.Maintain(dctx, 10*time.Minute)
	}()
	return func() { cancel(); wg.Wait() }
}

// scanning is the running scanners and pipeline of an agent.
type scanning struct {
	a       *agent
	lanes   *visit.Lanes
	work    context.CancelFunc
	halt    chan struct{} // closed: emitting stops
	dropped atomic.Int64  // scans read after the stop began
	sources *scanner.Running
}

// startScanning runs each source under the supervisor, each submitting
// its scans straight to its pipeline lane. Verifications in flight at stop
// get the shutdown timeout.
func (a *agent) startScanning(ctx context.Context) *scanning {
	workCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &scanning{a: a, lanes: a.pipe.Start(workCtx), work: cancel, halt: make(chan struct{})}
	s.sources = a.sup.Start(ctx, a.sources, s.emit)
	return s
}

// emit passes a scan to the pipeline unless the stop has begun.
func (s *scanning) emit(sc card.Scan) {
	s.a.lastScan.mark(sc.At)
	if !s.lanes.Submit(sc, s.halt) {
		s.dropped.Add(1)
	}
}

// stop waits, until deadline, for the scanners to return and the pipeline
// to drain, in that order, and names what it had to abandon.
func (s *scanning) stop(deadline time.Time) (abandoned []string) {
	if stuck := s.sources.Wait(deadline); len(stuck) > 0 {
		abandoned = append(abandoned, "scanner "+strings.Join(stuck, ", ")+" did not stop (blocked in its driver)")
	}
	close(s.halt) // release emitters, then close the lanes
	drained := make(chan struct{})
	go func() {
		s.lanes.Close()
		close(drained)
	}()
	if !waitBy(drained, deadline) {
		s.work() // cancel verifications in flight; they end promptly
		if waitBy(drained, time.Now().Add(2*time.Second)) {
			abandoned = append(abandoned, "scans in flight were cancelled at the shutdown timeout")
		} else {
			abandoned = append(abandoned, "scans in flight did not end after cancellation")
		}
	}
	s.work()
	if n := s.dropped.Load(); n > 0 {
		abandoned = append(abandoned, fmt.Sprintf("%d scans read during the stop were dropped", n))
	}
	return abandoned
}

// waitBy reports whether done closed by deadline.
func waitBy(done <-chan struct{}, deadline time.Time) bool {
	select {
	case <-done:
		return true
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
