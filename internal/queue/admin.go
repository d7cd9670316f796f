package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Stats is the outbox's state for status pages, metrics and the CLI.
type Stats struct {
	Pending      map[string]int       `json:"pending"`
	PendingBytes int64                `json:"pendingBytes"`
	Dead         int                  `json:"dead"`
	Oldest       time.Time            `json:"oldest,omitzero"`
	OldestAge    time.Duration        `json:"oldestAgeNs"`
	Delivered    int64                `json:"delivered"`
	Duplicates   int64                `json:"duplicates"`
	Retries      int64                `json:"retries"`
	DeadTotal    int64                `json:"deadTotal"`
	Dropped      int64                `json:"dropped"`
	LastError    map[string]string    `json:"lastError,omitempty"`
	PausedUntil  map[string]time.Time `json:"pausedUntil,omitempty"`
	Alerts       []string             `json:"alerts,omitempty"`
	FileSize     int64                `json:"fileSize"`
	// Recovery is set when the file was found damaged at open and
	// salvaged (an alarm until the agent restarts).
	Recovery *Recovery `json:"recovery,omitempty"`
	// Space: whether the disk is full and new records are refused.
	Space Space `json:"space"`
}

// Depth is the number of pending records.
func (s Stats) Depth() int {
	n := 0
	for _, c := range s.Pending {
		n += c
	}
	return n
}

// Stats returns the counters; the oldest record is read from the file.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	s := Stats{Pending: map[string]int{}, Dead: q.dead, LastError: map[string]string{}, PausedUntil: map[string]time.Time{},
		Delivered: q.counters["delivered"], Duplicates: q.counters["duplicates"], Retries: q.counters["retries"],
		DeadTotal: q.counters["dead"], Dropped: q.counters["dropped"], Alerts: append([]string(nil), q.alerts...)}
	for k, v := range q.pending {
		s.Pending[k] = v
		s.PendingBytes += q.bytes[k]
	}
	for k, v := range q.lastErr {
		s.LastError[k] = v
	}
	now := q.o.Now()
	for k, v := range q.paused {
		if v.After(now) {
			s.PausedUntil[k] = v
		}
	}
	if q.recovery != nil {
		r := *q.recovery
		s.Recovery = &r
	}
	q.mu.Unlock()
	s.Space = q.spaceStats()
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	_ = q.db.View(func(tx *bolt.Tx) error {
		s.FileSize = tx.Size()
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			if len(name) <= len(kindPrefix) || string(name[:len(kindPrefix)]) != kindPrefix {
				return nil
			}
			if k, v := b.Cursor().First(); k != nil {
				if r, err := q.decode(k, v); err == nil && (s.Oldest.IsZero() || r.Enqueued.Before(s.Oldest)) {
					s.Oldest = r.Enqueued
				}
			}
			return nil
		})
	})
	if !s.Oldest.IsZero() {
		s.OldestAge = now.Sub(s.Oldest)
	}
	return s
}

// List returns up to limit records, pending (of every kind) or dead, in
// sequence order, payloads included (callers mask them).
func (q *Queue) List(dead bool, limit int) ([]Record, error) {
	var out []Record
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	err := q.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			isDead := string(name) == string(bucketDead)
			isKind := len(name) > len(kindPrefix) && string(name[:len(kindPrefix)]) == kindPrefix
			if dead != isDead || (!dead && !isKind) {
				return nil
			}
			c := b.Cursor()
			for k, v := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
				r, err := q.decode(k, v)
				if err != nil {
					r = Record{Seq: seqOf(k), LastError: "unreadable: " + err.Error()}
				}
				out = append(out, r)
			}
			return nil
		})
	})
	return out, err
}

// RetryDead moves dead letters back to the pending queue (all of them when
// seqs is empty), with fresh attempts, and returns how many moved.
func (q *Queue) RetryDead(seqs ...uint64) (int, error) {
	want := map[uint64]bool{}
	for _, s := range seqs {
		want[s] = true
	}
	moved := map[string]int{}
	movedBytes := map[string]int64{}
	q.dbMu.RLock()
	err := q.db.Update(func(tx *bolt.Tx) error {
		moved, movedBytes = map[string]int{}, map[string]int64{}
		db := tx.Bucket(bucketDead)
		var keys [][]byte
		c := db.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(want) == 0 || want[seqOf(k)] {
				keys = append(keys, append([]byte(nil), k...))
			}
		}
		for _, k := range keys {
			r, err := q.decode(k, db.Get(k))
			if err != nil {
				return fmt.Errorf("dead letter %d: %w", seqOf(k), err)
			}
			b, err := tx.CreateBucketIfNotExists([]byte(kindPrefix + r.Kind))
			if err != nil {
				return err
			}
			r.Attempts, r.Unknown, r.RequestID, r.NextAttempt, r.DeadAt, r.LastError = 0, false, "", time.Time{}, time.Time{}, ""
			n, err := q.put(b, &r)
			if err != nil {
				return err
			}
			if err := db.Delete(k); err != nil {
				return err
			}
			moved[r.Kind]++
			movedBytes[r.Kind] += n
		}
		meta := tx.Bucket(bucketMeta)
		for k, n := range moved {
			if err := adjust(meta, k, n, movedBytes[k]); err != nil {
				return err
			}
			if err := addCounter(meta, keyDeadN, -int64(n)); err != nil {
				return err
			}
		}
		return nil
	})
	q.dbMu.RUnlock()
	total := 0
	if err == nil {
		q.mu.Lock()
		for k, n := range moved {
			q.pending[k] += n
			q.bytes[k] += movedBytes[k]
			q.dead -= n
			total += n
		}
		q.mu.Unlock()
		for k := range moved {
			q.signal(k)
		}
		q.signal("")
	}
	return total, err
}

// Purge deletes every dead letter (dead) or every pending record (!dead)
// and returns how many went.
func (q *Queue) Purge(dead bool) (int, error) {
	n := 0
	q.dbMu.RLock()
	err := q.db.Update(func(tx *bolt.Tx) error {
		n = 0
		var names [][]byte
		_ = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			isDead := string(name) == string(bucketDead)
			isKind := len(name) > len(kindPrefix) && string(name[:len(kindPrefix)]) == kindPrefix
			if (dead && isDead) || (!dead && isKind) {
				n += b.Stats().KeyN
				names = append(names, append([]byte(nil), name...))
			}
			return nil
		})
		meta := tx.Bucket(bucketMeta)
		for _, name := range names {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
			key := keyDeadN
			if !dead {
				kind := string(name[len(kindPrefix):])
				if err := setCounter(meta, "b:"+kind, 0); err != nil {
					return err
				}
				key = "n:" + kind
			}
			if err := setCounter(meta, key, 0); err != nil {
				return err
			}
		}
		return nil
	})
	q.dbMu.RUnlock()
	if err == nil {
		q.mu.Lock()
		if dead {
			q.dead = 0
		} else {
			q.pending, q.bytes = map[string]int{}, map[string]int64{}
		}
		q.mu.Unlock()
	}
	return n, err
}

// Compact rewrites the file without its free pages (after an outage
// drained, bbolt keeps the high-water size) and swaps it in with a single
// atomic rename: the copy is complete and fsynced as <path>.new first, so
// a crash at any step leaves either the old file or the new one at
// <path>, each whole (a leftover .new is removed at the next open).
// Enqueue and delivery wait while it runs.
func (q *Queue) Compact() (before, after int64, err error) {
	q.dbMu.Lock()
	defer q.dbMu.Unlock()
	path, tmp := q.o.Path, q.o.Path+".new"
	if st, err := os.Stat(path); err == nil {
		before = st.Size()
	}
	if err := q.compactCopy(tmp); err != nil {
		os.Remove(tmp)
		return before, before, fmt.Errorf("compact: %w", err)
	}
	if err := q.compactStep("copied"); err != nil {
		return before, before, err
	}
	if err := q.db.Close(); err != nil {
		return before, before, fmt.Errorf("compact: close: %w", err)
	}
	if err := q.compactStep("closed"); err != nil {
		return before, before, err
	}
	swapErr := os.Rename(tmp, path)
	if swapErr == nil {
		if err := q.compactStep("renamed"); err != nil {
			return before, before, err
		}
		syncDir(dirOf(path))
	}
	db, err := q.tryOpen()
	if err != nil {
		return before, before, fmt.Errorf("compact: reopen: %w", errors.Join(swapErr, err))
	}
	q.db = db
	if swapErr != nil {
		os.Remove(tmp)
		return before, before, fmt.Errorf("compact: swap: %w", swapErr)
	}
	if st, err := os.Stat(path); err == nil {
		after = st.Size()
	}
	return before, after, nil
}

// compactCopy writes the compacted copy of the open file to tmp, fsynced.
func (q *Queue) compactCopy(tmp string) error {
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return err
	}
	if err := bolt.Compact(dst, q.db, 64<<20); err != nil {
		dst.Close()
		return err
	}
	return errors.Join(dst.Sync(), dst.Close())
}

// compactStep runs the test hook after a step of Compact.
func (q *Queue) compactStep(step string) error {
	if q.compactHook == nil {
		return nil
	}
	return q.compactHook(step)
}

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}

// pruneKeys forgets idempotency keys older than IdempotencyWindow.
func (q *Queue) pruneKeys() (int, error) {
	cutoff := uint64(q.o.Now().Add(-IdempotencyWindow).Unix())
	n := 0
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	err := q.db.Update(func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket(bucketIdem)
		var old [][]byte
		_ = b.ForEach(func(k, v []byte) error {
			if len(v) == 16 && binary.BigEndian.Uint64(v[8:]) < cutoff {
				old = append(old, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	return n, err
}

// Maintain forgets expired idempotency keys and compacts the file when it
// is mostly free space: checked every interval, compaction triggered when
// the file exceeds 32 MiB and four times what the records need.
func (q *Queue) Maintain(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := q.pruneKeys(); err != nil {
			q.o.Log.Warn().Err(err).Msg("outbox: pruning idempotency keys failed")
		}
		st, err := os.Stat(q.o.Path)
		if err != nil {
			continue
		}
		q.mu.Lock()
		_, need := q.totalLocked()
		q.mu.Unlock()
		if st.Size() < 32<<20 || st.Size() < 4*need+(16<<20) {
			continue
		}
		before, after, err := q.Compact()
		if err != nil {
			q.o.Log.Error().Err(err).Msg("outbox compaction failed")
			q.alert(err.Error())
			continue
		}
		q.o.Log.Info().Int64("before", before).Int64("after", after).Msg("outbox compacted")
	}
}
