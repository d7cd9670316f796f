package queue

import (
	"strconv"
	"time"

	"scanagent/internal/backoff"

	bolt "go.etcd.io/bbolt"
)

// Settling: verdicts are applied in batches of any kinds, one
// transaction each, through the committer (commit.go), so they share it
// with records being stored. A delivered record leaves, a refused one
// becomes a dead letter, the others are rescheduled: keeping their
// requestId while an attempt's outcome is unknown, or with the next
// attempt's new requestId written in this same transaction (ids.go). The
// attempt count, for the backoff, is written here too.

// settleItem is an attempt's record (as sent) and its verdict.
type settleItem struct {
	rec  Record
	v    Verdict
	lane *lane // to release the record to once settled (nil in tests)
}

// settlement is what one settle transaction changed for a kind, applied
// to the in-memory state once it is committed (Queue.settled).
type settlement struct {
	delivered, dups, retries, dead int64
	removed                        int
	delta                          int64 // change of the kind's bytes
	pause                          time.Time
	lastErr                        string
	deadRecs                       []Record
}

// settleBatch is one settle transaction.
type settleBatch struct {
	q     *Queue
	items []settleItem
	now   time.Time
	per   map[string]*settlement
}

// settle applies the verdicts of recs, of kind, in one transaction.
func (q *Queue) settle(kind string, recs []Record, verdicts []Verdict) error {
	items := make([]settleItem, len(recs))
	for i := range recs {
		recs[i].Kind = kind
		items[i] = settleItem{rec: recs[i], v: verdicts[i]}
	}
	return q.settleItems(items)
}

// settleItems applies the verdicts of items in one transaction.
func (q *Queue) settleItems(items []settleItem) error {
	b := &settleBatch{q: q, items: items, now: q.o.Now()}
	return q.write(b.apply, b.applied)
}

// apply is the transaction: each record, then the persisted counters.
func (b *settleBatch) apply(tx *bolt.Tx) error {
	b.per = map[string]*settlement{}
	dead := tx.Bucket(bucketDead)
	for _, it := range b.items {
		s := b.per[it.rec.Kind]
		if s == nil {
			s = &settlement{}
			b.per[it.rec.Kind] = s
		}
		kb := tx.Bucket([]byte(kindPrefix + it.rec.Kind))
		if kb == nil {
			continue
		}
		if err := b.q.settleOne(kb, dead, it.rec, it.v, b.now, s); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	totals := map[string]int64{}
	for kind, s := range b.per {
		if err := adjust(meta, kind, -s.removed, s.delta); err != nil {
			return err
		}
		for name, n := range map[string]int64{"delivered": s.delivered, "duplicates": s.dups, "retries": s.retries, "dead": s.dead, keyDeadN: s.dead} {
			totals[name] += n
		}
	}
	for name, n := range totals {
		if n > 0 {
			if err := addCounter(meta, name, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// applied applies a committed batch to the in-memory state, forgets the
// attempts settled (Queue.sent) and raises the dead letters' alerts.
func (b *settleBatch) applied() {
	q := b.q
	q.mu.Lock()
	for _, it := range b.items {
		if q.sent[it.rec.Seq] == it.rec.RequestID {
			delete(q.sent, it.rec.Seq)
		}
	}
	q.mu.Unlock()
	for kind, s := range b.per {
		q.settled(kind, s)
		for _, r := range s.deadRecs {
			msg := "dead letter: " + kind + " record " + strconv.FormatUint(r.Seq, 10) + " refused by the platform: " + r.LastError
			q.alert(msg)
			q.o.Log.Error().Str("kind", kind).Uint64("seq", r.Seq).Str("reason", r.LastError).Msg("outbox record moved to dead letters (see `scanagent queue list --dead`, retry with `scanagent queue retry`)")
		}
	}
}

// settleOne applies verdict v to record r, a copy (the caller's records
// stay as they were): a delivered record leaves b, a refused one moves to
// the dead letters, the others are rescheduled in b. A record no longer in
// b (dropped or purged while in flight) is left alone.
func (q *Queue) settleOne(b, dead *bolt.Bucket, r Record, v Verdict, now time.Time, s *settlement) error {
	key := seqKey(r.Seq)
	cur := b.Get(key)
	if cur == nil {
		return nil
	}
	old := int64(len(key) + len(cur))
	r.Attempts++
	remove := func() error {
		s.removed++
		s.delta -= old
		return b.Delete(key)
	}
	switch {
	case v.Outcome == Delivered, v.Outcome == Duplicate && r.reused:
		// A 10054 answer to an attempt that may repeat one already sent
		// with its requestId (reused, ids.go): that one was delivered.
		if v.Outcome == Duplicate {
			s.dups++
		}
		s.delivered++
		return remove()
	case v.Outcome == Dead:
		r.Unknown, r.next, r.LastError, r.DeadAt = false, false, v.Reason, now
		if _, err := q.put(dead, &r); err != nil {
			return err
		}
		if err := remove(); err != nil {
			return err
		}
		s.dead++
		s.deadRecs = append(s.deadRecs, r)
		return nil
	}
	q.reschedule(&r, v, now, s)
	r.LastError = v.Reason
	if v.Reason != "" {
		s.lastErr = v.Reason
	}
	n, err := q.put(b, &r)
	if err != nil {
		return err
	}
	s.delta += n - old
	return nil
}

// reschedule sets when a record that stays pending is tried next and
// whether its requestId is kept (Unknown) or the next attempt gets a new
// one, after a Pause, a Duplicate on a fresh requestId, or a Retry (any
// other outcome).
func (q *Queue) reschedule(r *Record, v Verdict, now time.Time, s *settlement) {
	switch v.Outcome {
	case Pause:
		// A replay of an unresolved requestId stays unresolved: the
		// first attempt may have been processed.
		r.Unknown = r.reused
		r.NextAttempt = v.RetryAfter
		if v.RetryAfter.After(s.pause) {
			s.pause = v.RetryAfter
		}
	case Duplicate:
		// 10054 on a first attempt: a requestId collision; retry
		// with a new one.
		r.Unknown = false
		r.NextAttempt = now
	default: // Retry
		s.retries++
		// Keep the requestId while any attempt with it has an
		// unknown outcome: only acceptance, 10054 or a refusal
		// resolves it (a fault answer to a replay does not say
		// whether the first attempt was processed).
		r.Unknown = v.Unknown || r.reused
		r.NextAttempt = now.Add(q.backoff(r.Attempts))
	}
	if r.Unknown {
		r.next = false
	} else {
		q.assignID(r) // after a definite answer the next attempt is new
	}
}

// settled applies a committed settlement to the in-memory counters, the
// kind's last error and its pause.
func (q *Queue) settled(kind string, s *settlement) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending[kind] -= s.removed
	q.bytes[kind] += s.delta
	q.dead += int(s.dead)
	q.counters["delivered"] += s.delivered
	q.counters["duplicates"] += s.dups
	q.counters["retries"] += s.retries
	q.counters["dead"] += s.dead
	if s.lastErr != "" {
		q.lastErr[kind] = s.lastErr
	} else if s.delivered > 0 {
		delete(q.lastErr, kind)
	}
	if !s.pause.IsZero() {
		q.paused[kind] = s.pause
	}
}

// backoff is the wait before a record's next attempt, from its persisted
// attempt count: exponential from RetryMin to RetryMax, jittered.
func (q *Queue) backoff(attempts int) time.Duration {
	return backoff.Policy{Min: q.o.RetryMin, Max: q.o.RetryMax}.Delay(attempts)
}
