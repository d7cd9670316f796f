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

// Maintenance: compaction and forgetting expired idempotency keys.

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

// pruneKeys forgets idempotency keys older than IdempotencyWindow.
func (q *Queue) pruneKeys() (int, error) {
	cutoff := uint64(q.o.Now().Add(-IdempotencyWindow).Unix())
	n := 0
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	err := q.update(func(tx *bolt.Tx) error {
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
