package queue

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// lane delivers the records of one kind. Its dispatcher reads the records
// due, in sequence order, and hands them one at a time to Concurrency
// workers through an unbuffered channel, so first attempts start in
// arrival order (strictly so with Concurrency 1). A worker sends its
// record, hands the verdict to the settler and takes the next record at
// once: a slow answer holds only its own worker, and no answer waits for
// another to be settled. A record belongs to the lane from the moment it
// is read until its verdict is settled (or it is let go unsent), so it is
// never read, and sent, twice meanwhile; window bounds how many it holds.
type lane struct {
	q     *Queue
	kind  string
	s     Sender
	st    *settler
	log   zerolog.Logger
	work  chan Record
	freed chan struct{} // records were let go: room, maybe records due
	mu    sync.Mutex
	owned map[uint64]bool
}

// deliverKind runs the lane of kind until ctx ends; its workers finish
// the attempts they started and hand their verdicts over first.
func (q *Queue) deliverKind(ctx context.Context, s Sender, st *settler, kind string) {
	l := &lane{q: q, kind: kind, s: s, st: st, log: q.o.Log.With().Str("kind", kind).Logger(),
		work: make(chan Record), freed: make(chan struct{}, 1), owned: map[uint64]bool{}}
	var wg sync.WaitGroup
	for range q.o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range l.work {
				l.attempt(ctx, r)
			}
		}()
	}
	l.dispatch(ctx)
	close(l.work)
	wg.Wait()
}

// dispatch hands the records due to the workers until ctx ends.
func (l *lane) dispatch(ctx context.Context) {
	wake := l.q.notifyChan(l.kind)
	var buf []Record
	defer func() { l.release(buf...) }()
	for ctx.Err() == nil {
		if l.paused(ctx) {
			continue
		}
		if len(buf) == 0 {
			buf = l.fetch(ctx, wake)
			continue
		}
		select {
		case l.work <- buf[0]:
			buf = buf[1:]
		case <-ctx.Done():
		}
	}
}

// fetch reads the next records due, as many as the window has room for,
// and takes them; with none (or no room) it waits for a change instead.
func (l *lane) fetch(ctx context.Context, wake <-chan struct{}) []Record {
	room := l.window() - l.count()
	if room <= 0 {
		select {
		case <-l.freed:
		case <-ctx.Done():
		}
		return nil
	}
	// The records held are those held before the read begins: one let go
	// during the read was settled after its snapshot was taken, so the
	// read would see it as it was before its attempt.
	held := l.held()
	recs, next, err := l.q.dueSkip(l.kind, min(room, l.q.o.Concurrency*16), func(seq uint64) bool { return held[seq] })
	if err != nil {
		l.log.Error().Err(err).Msg("outbox read failed")
		sleepCtx(ctx, time.Second)
		return nil
	}
	if len(recs) > 0 {
		l.take(recs)
		return l.prepare(ctx, recs)
	}
	wait := time.Second
	if !next.IsZero() {
		wait = min(wait, max(next.Sub(l.q.o.Now()), time.Millisecond))
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-wake:
	case <-l.freed:
	case <-t.C:
	}
	return nil
}

// paused waits out a rate-limit pause of the kind, if there is one.
func (l *lane) paused(ctx context.Context) bool {
	l.q.mu.Lock()
	until := l.q.paused[l.kind]
	l.q.mu.Unlock()
	wait := until.Sub(l.q.o.Now())
	if wait <= 0 {
		return false
	}
	l.log.Info().Time("until", until).Msg("delivery paused by the platform's rate limit")
	sleepCtx(ctx, wait)
	return true
}

// prepare makes the records read ready to send (ids.go): a record that
// has no requestId it may use gets one, all of them in one write. Short of
// space it releases the reserve, and if even that is not enough, prepares
// the first record alone (the fewest pages) and lets the others go.
func (l *lane) prepare(ctx context.Context, recs []Record) []Record {
	q := l.q
	err := q.spaceRetry(func() error { return q.prepare(l.kind, recs) })
	if isNoSpace(err) && len(recs) > 1 {
		l.release(recs[1:]...)
		recs = recs[:1]
		err = q.prepare(l.kind, recs)
	}
	if err != nil {
		writeFailed(l.log, err).Msg("outbox write failed; delivery waits")
		l.release(recs...)
		sleepCtx(ctx, time.Second)
		return nil
	}
	ready := recs[:0]
	for _, r := range recs {
		if sendable(&r) {
			ready = append(ready, r)
		} else {
			l.release(r) // gone from the file meanwhile
		}
	}
	return ready
}

// attempt sends r with the requestId it has on disk and hands the verdict
// to the settler.
func (l *lane) attempt(ctx context.Context, r Record) {
	l.q.sending(&r)
	v := l.s.Send(ctx, l.kind, r.Payload, r.RequestID)
	if v.Outcome == Pause {
		l.q.pause(l.kind, v.RetryAfter) // at once: the other workers stop
	}
	l.st.add(settleItem{rec: r, v: v, lane: l})
}

// window is how many records the lane may hold; while the disk is full,
// few, so that settling them fits the reserve.
func (l *lane) window() int {
	l.q.mu.Lock()
	full := l.q.space.full
	l.q.mu.Unlock()
	if full {
		return l.q.o.Concurrency
	}
	return l.q.o.Concurrency * 64
}

func (l *lane) take(recs []Record) {
	l.mu.Lock()
	for _, r := range recs {
		l.owned[r.Seq] = true
	}
	l.mu.Unlock()
}

// release lets records go (settled, or not sent) and wakes the dispatcher.
func (l *lane) release(recs ...Record) {
	if len(recs) == 0 {
		return
	}
	l.mu.Lock()
	for _, r := range recs {
		delete(l.owned, r.Seq)
	}
	l.mu.Unlock()
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

// held returns a copy of the records the lane holds.
func (l *lane) held() map[uint64]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.owned)
}

func (l *lane) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.owned)
}

// pause stops the kind's delivery until until (a rate limit).
func (q *Queue) pause(kind string, until time.Time) {
	q.mu.Lock()
	if until.After(q.paused[kind]) {
		q.paused[kind] = until
	}
	q.mu.Unlock()
}
