// Package visit is the policy of a visit (SPEC §4 and the README's
// "kind → calls → counted" table), as plain Go over small interfaces: a
// scan is parsed, routed to the verifier of its kind, turned into the
// outcome the HIS receives, handed to every HIS sink, and — for the codes
// the agent itself reports — queued as a usage record. It also decides what
// a queued record's delivery attempt means (Decide). It does no I/O of its
// own: the parser, the verifiers, the sinks and the outbox are injected.
//
// To change what happens to a kind of code (say, a dynamic code scanned
// while the platform is down), read route.go and the table in
// visit_test.go, which walks every row.
package visit

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
)

// Parser recognises a raw payload (internal/code).
type Parser interface {
	Parse(raw []byte) (card.Code, error)
}

// Debouncer suppresses a payload repeated by the same source (a held
// trigger).
type Debouncer interface {
	Repeat(source string, payload []byte, at time.Time) bool
}

// Verifier turns a code into an identity: the e-Health Card client (direct
// or through a gateway) and the Su Kang Code client. Its errors are
// *card.Error, or context errors.
type Verifier interface {
	Verify(ctx context.Context, r card.Request) (card.Identity, error)
}

// Sink receives every visit (the HIS's local API, HTTP push, HL7).
type Sink interface {
	Deliver(ctx context.Context, v card.Visit) error
}

// Outbox queues a usage record durably under an idempotency key and
// returns its sequence once it is on disk. Intend announces a record that
// will be enqueued right after: it must survive the process dying before
// that EnqueueKeyed commits (the outbox's journal); done ends it once
// EnqueueKeyed returned.
type Outbox interface {
	EnqueueKeyed(ctx context.Context, kind, key string, payload []byte) (uint64, error)
	Intend(kind, key string, payload []byte) (done func(), err error)
}

// Offline policies for a static code when the platform cannot be reached.
const (
	OfflineRefuse     = "refuse"     // refuse the scan
	OfflineUnverified = "unverified" // hand the code over unverified, and report it
)

// Options configure a Pipeline.
type Options struct {
	Parser Parser
	// Debounce, when set, suppresses repeats.
	Debounce Debouncer
	// EHC verifies e-Health Card codes (nil: platform.mode = "off"); SKM
	// verifies Su Kang Codes (nil: [skm] disabled).
	EHC, SKM Verifier
	// Offline is OfflineRefuse or OfflineUnverified.
	Offline string
	// Budget bounds a scan's wait for the platform (0: none): past it the
	// HIS is told "platform slow" (a static code under OfflineUnverified is
	// handed over unverified instead).
	Budget time.Duration
	// Reports are the usage-report settings of the sources that report,
	// by source name.
	Reports map[string]card.ReportDefaults
	// Stats and Sinks continue the counters of a pipeline before a reload
	// (nil: fresh).
	Stats *Stats
	Sinks map[string]*SinkStats
	// ObserveHandoff, when set, is told each visit's scan → HIS hand-off
	// time.
	ObserveHandoff func(source string, kind card.Kind, d time.Duration)
	// AfterHandoff, when set, is called between the hand-off and the
	// report's commit (a fault-injection point for crash tests).
	AfterHandoff func(card.Visit)
	Now          func() time.Time
	Log          zerolog.Logger
}

// Pipeline handles scans to their outcome. Safe for concurrent use once
// built; SetOutbox and AddSink are called before Run.
type Pipeline struct {
	o      Options
	sinks  []sink
	outbox Outbox
	// refusedLog is o.Log sampled to one line a minute.
	refusedLog zerolog.Logger
}

// New returns a pipeline.
func New(o Options) *Pipeline {
	if o.Stats == nil {
		o.Stats = &Stats{}
	}
	if o.Sinks == nil {
		o.Sinks = map[string]*SinkStats{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Reports == nil {
		o.Reports = map[string]card.ReportDefaults{}
	}
	return &Pipeline{o: o, refusedLog: o.Log.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Minute})}
}

// SetOutbox sets where usage records are queued (nil: nowhere).
func (p *Pipeline) SetOutbox(o Outbox) { p.outbox = o }

// Handle processes one scan to its outcome, hands it to every sink, then
// queues its usage record: the patient waits for the HIS, not for the disk.
// The record is announced to the outbox's journal before the hand-off, so a
// crash between the hand-off and the commit does not lose it.
func (p *Pipeline) Handle(ctx context.Context, sc card.Scan) {
	if commit := p.handoff(ctx, sc); commit != nil {
		commit()
	}
}

// handoff processes sc up to its hand-off to the sinks and returns the
// commit of its usage record, or nil when it owes none.
func (p *Pipeline) handoff(ctx context.Context, sc card.Scan) (commit func()) {
	p.o.Stats.Scans.Add(1)
	if p.o.Debounce != nil && p.o.Debounce.Repeat(sc.Source, sc.Data, sc.At) {
		p.o.Stats.Suppressed.Add(1)
		p.o.Log.Debug().Str("source", sc.Source).Msg("repeat suppressed")
		return nil
	}
	v := p.Resolve(ctx, sc)
	v.Latency = float64(p.o.Now().Sub(sc.At).Microseconds()) / 1000
	rep := p.announce(p.reportOf(v))
	p.deliver(ctx, v)
	if p.o.ObserveHandoff != nil {
		p.o.ObserveHandoff(v.Source, v.Kind, p.o.Now().Sub(sc.At))
	}
	if p.o.AfterHandoff != nil {
		p.o.AfterHandoff(v)
	}
	p.logVisit(v)
	if rep == nil {
		return nil
	}
	// The commit outlives a cancelled ctx (the shutdown timeout): the
	// identity is out, its record must not be dropped for that.
	return func() { p.commit(context.WithoutCancel(ctx), v, rep) }
}

// laneDepth is how many scans of one source may wait for it.
const laneDepth = 1024

// maxCommits bounds the usage records being committed at once; a lane
// whose scan would exceed it waits (the disk sets the pace).
const maxCommits = 256

// Lanes are a running pipeline's per-source lanes (Pipeline.Start). Each
// source has its own lane: its scans are handled one at a time, in the
// order they were submitted, and a slow platform call for one source's
// scan never delays another source's hand-off. A lane does not wait for
// its scans' records to reach the disk: it hands each commit to the
// committers and goes on to the next scan (the journal covers the
// window), and commits in flight together share one fsync. A scanner's
// read loop submits straight to its lane: no goroutine in between.
type Lanes struct {
	p        *Pipeline
	ctx      context.Context
	mu       sync.RWMutex // held for reading while a scan is submitted
	lanes    map[string]chan card.Scan
	closed   bool
	handlers sync.WaitGroup
	commits  sync.WaitGroup
	slots    chan struct{}
}

// Start returns the pipeline's lanes, ready for scans; ctx bounds the
// scans' platform calls, not their records' commits.
func (p *Pipeline) Start(ctx context.Context) *Lanes {
	return &Lanes{p: p, ctx: ctx, lanes: map[string]chan card.Scan{}, slots: make(chan struct{}, maxCommits)}
}

// Submit hands sc to its source's lane, waiting while the lane is full.
// It reports false, and drops sc, once the lanes are closed or when stop
// closes while it waits.
func (l *Lanes) Submit(sc card.Scan, stop <-chan struct{}) bool {
	l.mu.RLock()
	lane, ok := l.lanes[sc.Source]
	if !ok {
		l.mu.RUnlock()
		l.open(sc.Source)
		l.mu.RLock()
		lane = l.lanes[sc.Source]
	}
	defer l.mu.RUnlock()
	if l.closed {
		return false
	}
	select {
	case lane <- sc:
		return true
	case <-stop:
		return false
	}
}

// open starts source's lane unless it runs or the lanes are closed.
func (l *Lanes) open(source string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.lanes[source]; ok || l.closed {
		return
	}
	lane := make(chan card.Scan, laneDepth)
	l.lanes[source] = lane
	l.handlers.Go(func() { l.handle(lane) })
}

// handle runs one lane until it is closed.
func (l *Lanes) handle(lane <-chan card.Scan) {
	for sc := range lane {
		commit := l.p.handoff(l.ctx, sc)
		if commit == nil {
			continue
		}
		l.slots <- struct{}{}
		l.commits.Go(func() {
			defer func() { <-l.slots }()
			commit()
		})
	}
}

// Close refuses further scans and returns once every scan submitted is
// handled and its record committed. Submits waiting on a full lane hold
// it up: end them first (their stop).
func (l *Lanes) Close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		for _, lane := range l.lanes {
			close(lane)
		}
	}
	l.mu.Unlock()
	l.handlers.Wait()
	l.commits.Wait()
}
