package queue

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
)

// Delivery: per kind, a lane of Concurrency workers, each sending the next
// record due as soon as it is free (lane.go); one settler applies the
// verdicts of every lane in batches (settler.go). A record's requestId is
// on disk before it is sent without a write of its own (ids.go).

// Run delivers records through s until ctx ends, one lane per kind seen.
// Records are dispatched in arrival order per kind, Concurrency at a time;
// a slow answer holds only the worker waiting for it.
func (q *Queue) Run(ctx context.Context, s Sender) {
	st := q.startSettler()
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
			q.deliverKind(ctx, s, st, kind)
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
			st.close() // settles what the lanes handed over
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
	return q.dueSkip(kind, n, nil)
}

// dueSkip is due leaving out the records skip names (those in flight).
func (q *Queue) dueSkip(kind string, n int, skip func(seq uint64) bool) ([]Record, time.Time, error) {
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
			if skip != nil && skip(seqOf(k)) {
				continue
			}
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
