package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/code"
	"scanagent/internal/his"
	"scanagent/internal/mask"
	"scanagent/internal/scanner"
	"scanagent/internal/verify"
)

// Verifier turns a parsed code into an identity. The EHC client, the gateway
// client, the SKM client and the router all satisfy it.
type Verifier interface {
	Verify(ctx context.Context, r verify.Request) (verify.Identity, error)
}

// namedSink is a HIS sink with its delivery counters.
type namedSink struct {
	name              string
	sink              his.Sink
	delivered, failed *atomic.Int64
}

// addSink adds a sink; its counters continue those of the sink of the same
// name before a reload.
func (p *pipeline) addSink(name string, s his.Sink) {
	ns := namedSink{name: name, sink: s, delivered: new(atomic.Int64), failed: new(atomic.Int64)}
	if old, ok := p.carried[name]; ok {
		ns.delivered, ns.failed = old.delivered, old.failed
	}
	p.sinks = append(p.sinks, ns)
}

// identityOf is the HIS contract's view of a verified identity.
func identityOf(id verify.Identity) his.Identity {
	return his.Identity{Name: id.Name, Gender: id.Gender, Nation: id.Nation, Birthday: id.Birthday, IDType: id.IDType,
		IDNumber: id.IDNumber, Phone: id.Phone, Address: id.Address, PHID: id.PHID, HealthCardID: id.HealthCardID, PatID: id.PatID,
		QRCodeText: id.QRCodeText, Level: id.Level, Tip: id.Tip}
}

// pipelineStats are the pipeline's counters.
type pipelineStats struct {
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

// pipeline is parse → debounce → verify → sinks, with bounded concurrency.
type pipeline struct {
	parser   *code.Parser
	debounce *code.Debouncer
	verifier Verifier
	sinks    []namedSink
	// carried are the sinks of the agent before a reload, by name.
	carried map[string]namedSink
	offline string // refuse, unverified
	// outbox and reports: usage reports for e-Health Card scans from
	// sources with report settings (nil outbox: none).
	outbox  recorder
	reports map[string]reportDefaults
	log     zerolog.Logger
	// refusedLog is log sampled to one line a minute.
	refusedLog zerolog.Logger
	stats      *pipelineStats
	now        func() time.Time
}

func newScanID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%s", time.Now().UnixMilli(), hex.EncodeToString(b[:]))
}

// handle processes one scan to its outcome and hands it to every sink.
func (p *pipeline) handle(ctx context.Context, sc scanner.Scan) {
	p.stats.Scans.Add(1)
	if p.debounce.Repeat(sc.Source, sc.Data, sc.At) {
		p.stats.Suppressed.Add(1)
		p.log.Debug().Str("source", sc.Source).Msg("repeat suppressed")
		return
	}
	o := his.Event{Type: "scan", ID: newScanID(), Time: sc.At, Source: sc.Source}
	p.resolve(ctx, sc, &o)
	o.Latency = float64(p.now().Sub(sc.At).Microseconds()) / 1000
	p.logOutcome(o)
	p.deliver(ctx, o)
	// The usage report is queued after the hand-off: the patient waits for
	// the HIS, not for the disk. A crash in between loses at most the
	// report of the scan being handled, never a queued one.
	p.report(ctx, o)
}

// deliver hands the outcome to every sink. Sinks run side by side: a slow
// HIS push does not delay the others.
func (p *pipeline) deliver(ctx context.Context, o his.Event) {
	var wg sync.WaitGroup
	for _, s := range p.sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.sink.Deliver(ctx, o); err != nil {
				s.failed.Add(1)
				p.log.Warn().Err(err).Str("sink", s.name).Str("scan", o.ID).Msg("HIS hand-off failed")
				return
			}
			s.delivered.Add(1)
		}()
	}
	wg.Wait()
}

func (p *pipeline) resolve(ctx context.Context, sc scanner.Scan, o *his.Event) {
	if sc.Overflow {
		p.stats.Rejected.Add(1)
		o.Error = &his.EventError{Code: "too_long", Message: "scan longer than the source's max_frame"}
		return
	}
	c, err := p.parser.Parse(sc.Data)
	if err != nil {
		p.stats.Rejected.Add(1)
		reason := "unknown"
		if r, ok := code.IsRejected(err); ok {
			reason = string(r.Reason)
		}
		o.Error = &his.EventError{Code: reason, Message: err.Error()}
		return
	}
	o.Kind = string(c.Kind)
	req := verify.Request{Kind: string(c.Kind), Text: c.Text, IDNumber: c.IDNumber}
	if d, ok := p.reports[sc.Source]; ok && c.Kind == code.KindEHCDynamic {
		// verifyQRCode is the dynamic code's usage record (guide §3.2.11):
		// it carries the source's 用卡环节 and channel.
		req.MedicalStep, req.UseScene, req.UseChannel = d.scene, d.scene, d.channel
	}
	id, err := p.verifier.Verify(ctx, req)
	if err == nil {
		hi := identityOf(id)
		if c.Kind == code.KindCustom {
			hi.QRCodeText, hi.CustomType = c.Text, c.Type
		}
		o.Identity, o.Verified = &hi, id.Verified
		if id.Verified {
			p.stats.Verified.Add(1)
		} else {
			p.stats.Unverified.Add(1)
		}
		return
	}
	if c.Kind == code.KindEHCStatic && verify.IsUnavailable(err) && p.offline == "unverified" {
		p.stats.Unverified.Add(1)
		o.Offline = true
		o.Identity = &his.Identity{QRCodeText: c.Text}
		o.Error = &his.EventError{Code: "offline", Message: "platform unreachable: card handed over unverified (agent.offline = \"unverified\")"}
		return
	}
	p.stats.Failed.Add(1)
	o.Error = outcomeError(err, c.Kind)
}

func outcomeError(err error, kind code.Kind) *his.EventError {
	e, ok := verify.AsError(err)
	if !ok {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return &his.EventError{Code: "timeout", Message: "verification did not finish in time"}
		}
		return &his.EventError{Code: "error", Message: err.Error()}
	}
	switch {
	case e.Unavailable && kind == code.KindEHCDynamic:
		return &his.EventError{Code: "offline", Message: "platform unreachable: a dynamic code cannot be verified offline; ask for an ID card or retry"}
	case e.Unavailable:
		return &his.EventError{Code: "offline", Message: "platform unreachable: " + e.Msg}
	case e.Class == verify.Rejected && e.Code != 0:
		return &his.EventError{Code: fmt.Sprintf("platform_%d", e.Code), Message: e.Msg}
	}
	return &his.EventError{Code: e.Class.String(), Message: e.Error()}
}

// report queues the one reportHISData of a static e-Health Card scan that
// reached the HIS (verified, or handed over unverified offline) from a
// source with report settings. A dynamic code's visit was counted by
// verifyQRCode itself (guide §3.2.11) and is never reported again; an ID
// number carries no name, so its visit is reported by the HIS through
// POST /v1/usage, once per scan.
func (p *pipeline) report(ctx context.Context, o his.Event) {
	d, ok := p.reports[o.Source]
	if p.outbox == nil || !ok || o.Identity == nil || o.Kind != string(code.KindEHCStatic) {
		return
	}
	if _, err := enqueueReport(ctx, p.outbox, d, o.ID, o.Identity.QRCodeText, o.Time); err != nil {
		n := p.stats.ReportsRefused.Add(1)
		// Sampled: with the disk full every scan is refused; one line a
		// minute says so, the counter says how often.
		p.refusedLog.Error().Err(err).Str("scan", o.ID).Int64("refusedTotal", n).
			Msg("usage report not queued (the identity reached the HIS; see scanagent_reports_refused_total)")
		return
	}
	p.stats.Reports.Add(1)
}

// logOutcome writes one masked line per outcome.
func (p *pipeline) logOutcome(o his.Event) {
	ev := p.log.Info()
	if o.Error != nil {
		if o.Identity == nil {
			ev = p.log.Warn()
		}
		ev = ev.Str("error", o.Error.Code).Str("reason", o.Error.Message)
	}
	ev = ev.Str("scan", o.ID).Str("source", o.Source).Str("kind", o.Kind).Bool("verified", o.Verified).Float64("latencyMs", o.Latency)
	if o.Offline {
		ev = ev.Bool("offline", true)
	}
	if id := o.Identity; id != nil {
		d := zerolog.Dict()
		for _, f := range []struct{ k, v string }{
			{"name", mask.Name(id.Name)}, {"idNumber", mask.ID(id.IDNumber)}, {"phone", mask.Phone(id.Phone)},
			{"qrCodeText", mask.QR(id.QRCodeText)}, {"level", id.Level},
		} {
			if f.v != "" {
				d = d.Str(f.k, f.v)
			}
		}
		ev = ev.Dict("identity", d)
	}
	ev.Msg("scan")
}

// run consumes scans with n workers until scans is closed and drained.
func (p *pipeline) run(ctx context.Context, scans <-chan scanner.Scan, n int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sc := range scans {
				p.handle(ctx, sc)
			}
		}()
	}
	wg.Wait()
}
