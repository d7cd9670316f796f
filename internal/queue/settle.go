package queue

import (
	"strconv"
	"time"

	"scanagent/internal/backoff"

	bolt "go.etcd.io/bbolt"
)

// Settling a round: its verdicts are applied in one transaction. A
// delivered record leaves, a refused one becomes a dead letter, the
// others are rescheduled, keeping their requestId while an attempt's
// outcome is unknown.

// settlement is what one settle transaction changed, applied to the
// in-memory state once it is committed (Queue.settled).
type settlement struct {
	delivered, dups, retries, dead int64
	removed                        int
	delta                          int64 // change of the kind's bytes
	pause                          time.Time
	lastErr                        string
	deadRecs                       []Record
}

// settle applies the verdicts in one transaction.
func (q *Queue) settle(kind string, recs []Record, verdicts []Verdict) error {
	now := q.o.Now()
	var s settlement
	q.dbMu.RLock()
	err := q.db.Update(func(tx *bolt.Tx) error {
		s = settlement{}
		return q.settleTx(tx, kind, recs, verdicts, now, &s)
	})
	q.dbMu.RUnlock()
	if err != nil {
		return err
	}
	q.settled(kind, &s)
	for _, r := range s.deadRecs {
		msg := "dead letter: " + kind + " record " + strconv.FormatUint(r.Seq, 10) + " refused by the platform: " + r.LastError
		q.alert(msg)
		q.o.Log.Error().Str("kind", kind).Uint64("seq", r.Seq).Str("reason", r.LastError).Msg("outbox record moved to dead letters (see `scanagent queue list --dead`, retry with `scanagent queue retry`)")
	}
	return nil
}

// settleTx is settle's transaction: each record, then the persisted
// counters.
func (q *Queue) settleTx(tx *bolt.Tx, kind string, recs []Record, verdicts []Verdict, now time.Time, s *settlement) error {
	b := tx.Bucket([]byte(kindPrefix + kind))
	db := tx.Bucket(bucketDead)
	meta := tx.Bucket(bucketMeta)
	for i := range recs {
		if err := q.settleOne(b, db, recs[i], verdicts[i], now, s); err != nil {
			return err
		}
	}
	if err := adjust(meta, kind, -s.removed, s.delta); err != nil {
		return err
	}
	for name, n := range map[string]int64{"delivered": s.delivered, "duplicates": s.dups, "retries": s.retries, "dead": s.dead, keyDeadN: s.dead} {
		if n > 0 {
			if err := addCounter(meta, name, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// settleOne applies verdict v to record r, a copy (the caller's records
// stay as they were): a delivered record leaves b, a refused one moves to
// the dead letters, the others are rescheduled in b.
func (q *Queue) settleOne(b, dead *bolt.Bucket, r Record, v Verdict, now time.Time, s *settlement) error {
	key := seqKey(r.Seq)
	old := int64(len(key) + len(b.Get(key)))
	remove := func() error {
		s.removed++
		s.delta -= old
		return b.Delete(key)
	}
	switch {
	case v.Outcome == Delivered, v.Outcome == Duplicate && r.reused:
		// A 10054 answer to a retry that reused the requestId of an
		// attempt with unknown outcome: that attempt was delivered.
		if v.Outcome == Duplicate {
			s.dups++
		}
		s.delivered++
		return remove()
	case v.Outcome == Dead:
		r.Unknown, r.LastError, r.DeadAt = false, v.Reason, now
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
// whether its requestId is kept (Unknown), after a Pause, a Duplicate on
// a fresh requestId, or a Retry (any other outcome).
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
