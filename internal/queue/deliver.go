package queue

import (
	"context"
	"sync"
	"time"

	"scanagent/internal/card"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
)

// Delivery: one loop per kind reads the records due, marks them in flight
// (their requestIds on disk before anything is sent), sends them and
// settles the verdicts (settle.go).

// Run delivers records through s until ctx ends, one loop per kind seen.
// Records are dispatched in arrival order per kind, Concurrency at a time.
func (q *Queue) Run(ctx context.Context, s Sender) {
	var wg sync.WaitGroup
	started := map[string]bool{}
	start := func(kind string) {
		if started[kind] {
			return
		}
		started[kind] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.deliverKind(ctx, s, kind)
		}()
	}
	newKind := q.notifyChan("")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for _, k := range q.kinds() {
			start(k)
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-newKind:
		case <-tick.C:
		}
	}
}

func (q *Queue) kinds() []string {
	var out []string
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	_ = q.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if len(name) > len(kindPrefix) && string(name[:len(kindPrefix)]) == kindPrefix {
				out = append(out, string(name[len(kindPrefix):]))
			}
			return nil
		})
	})
	return out
}

func (q *Queue) signal(kind string) {
	q.mu.Lock()
	ch, ok := q.notify[kind]
	if !ok {
		ch = make(chan struct{}, 1)
		q.notify[kind] = ch
	}
	q.mu.Unlock()
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (q *Queue) notifyChan(kind string) chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	ch, ok := q.notify[kind]
	if !ok {
		ch = make(chan struct{}, 1)
		q.notify[kind] = ch
	}
	return ch
}

// batchSize is how many records one round reads, marks and sends; while
// the disk is full, few, so that a round fits the reserve.
func (q *Queue) batchSize() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.space.full {
		return q.o.Concurrency
	}
	return q.o.Concurrency * 16
}

func (q *Queue) deliverKind(ctx context.Context, s Sender, kind string) {
	log := q.o.Log.With().Str("kind", kind).Logger()
	wake := q.notifyChan(kind)
	for ctx.Err() == nil {
		q.mu.Lock()
		until := q.paused[kind]
		q.mu.Unlock()
		if wait := until.Sub(q.o.Now()); wait > 0 {
			log.Info().Time("until", until).Msg("delivery paused by the platform's rate limit")
			if !sleepCtx(ctx, wait) {
				return
			}
			continue
		}
		recs, next, err := q.due(kind, q.batchSize())
		if err != nil {
			log.Error().Err(err).Msg("outbox read failed")
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		if len(recs) == 0 {
			wait := time.Second
			if !next.IsZero() {
				wait = min(wait, max(next.Sub(q.o.Now()), time.Millisecond))
			}
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-time.After(wait):
			}
			continue
		}
		if recs, err = q.markRound(kind, recs); err != nil {
			writeFailed(log, err).Msg("outbox write failed; delivery waits")
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		verdicts := q.sendAll(ctx, s, kind, recs)
		if err := q.spaceRetry(func() error { return q.settle(kind, recs, verdicts) }); err != nil {
			// The in-flight marks are on disk: a later round (or a restart)
			// retries with the same requestIds. Nothing is lost.
			writeFailed(log, err).Msg("outbox settle failed")
			sleepCtx(ctx, time.Second)
			continue
		}
		q.restoreReserve()
	}
}

// sendAll sends recs, Concurrency at a time, and returns the verdicts.
func (q *Queue) sendAll(ctx context.Context, s Sender, kind string, recs []Record) []Verdict {
	verdicts := make([]Verdict, len(recs))
	sem := make(chan struct{}, q.o.Concurrency)
	var wg sync.WaitGroup
	for i := range recs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			verdicts[i] = s.Send(ctx, kind, recs[i].Payload, recs[i].RequestID)
		}()
	}
	wg.Wait()
	return verdicts
}

// writeFailed is the log event of a failed delivery write: an error, but
// for lack of space a debug line (the full state is logged once, when it
// begins, and shows in Stats).
func writeFailed(log zerolog.Logger, err error) *zerolog.Event {
	if isNoSpace(err) {
		return log.Debug().Err(err)
	}
	return log.Error().Err(err)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// due returns up to n records of kind whose next attempt is due, in
// sequence order, and the earliest next attempt of those not yet due.
func (q *Queue) due(kind string, n int) ([]Record, time.Time, error) {
	now := q.o.Now()
	var out []Record
	var next time.Time
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	err := q.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(kindPrefix + kind))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		scanned := 0
		for k, v := c.First(); k != nil && len(out) < n && scanned < 8192; k, v = c.Next() {
			scanned++
			rec, err := q.decode(k, v)
			if err != nil {
				q.o.Log.Error().Err(err).Uint64("seq", seqOf(k)).Msg("unreadable outbox record left in place")
				continue
			}
			if rec.NextAttempt.After(now) {
				if next.IsZero() || rec.NextAttempt.Before(next) {
					next = rec.NextAttempt
				}
				continue
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, next, err
}

// markInFlight records, before sending, the requestId each record's
// attempt will use, flagged unknown: if the agent dies mid-send, the retry
// after restart reuses it and the platform answers 10054 instead of
// counting the report twice.
// recs are updated only once the marks are committed, so a failed mark
// can be tried again with the same recs.
func (q *Queue) markInFlight(kind string, recs []Record) error {
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	var delta int64
	marked := make([]Record, len(recs))
	err := q.db.Update(func(tx *bolt.Tx) error {
		delta = 0
		copy(marked, recs)
		b := tx.Bucket([]byte(kindPrefix + kind))
		for i := range marked {
			r := &marked[i]
			old := int64(len(b.Get(seqKey(r.Seq))) + 8)
			r.reused = r.Unknown
			if !r.Unknown {
				r.RequestID = card.NewRequestID()
				r.Unknown = true
			}
			r.Attempts++
			n, err := q.put(b, r)
			if err != nil {
				return err
			}
			delta += n - old
		}
		return adjust(tx.Bucket(bucketMeta), kind, 0, delta)
	})
	if err == nil {
		copy(recs, marked)
		q.mu.Lock()
		q.bytes[kind] += delta
		q.mu.Unlock()
	}
	return err
}

// markRound marks recs in flight. Short of space it releases the
// reserve, and if even that is not enough, marks the first record alone:
// one record's round needs the fewest pages and frees some.
func (q *Queue) markRound(kind string, recs []Record) ([]Record, error) {
	err := q.spaceRetry(func() error { return q.markInFlight(kind, recs) })
	if isNoSpace(err) && len(recs) > 1 {
		recs = recs[:1]
		err = q.markInFlight(kind, recs)
	}
	return recs, err
}
