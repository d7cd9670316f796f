package queue

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Administration (the queue command, the local API): listing records,
// retrying dead letters, purging.

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
	err := q.update(func(tx *bolt.Tx) error {
		moved, movedBytes = map[string]int{}, map[string]int64{}
		db := tx.Bucket(bucketDead)
		for _, k := range deadKeys(db, want) {
			kind, n, err := q.revive(tx, db, k)
			if err != nil {
				return err
			}
			moved[kind]++
			movedBytes[kind] += n
		}
		return countRevived(tx.Bucket(bucketMeta), moved, movedBytes)
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

// deadKeys returns the keys of the dead letters in want (all of them when
// want is empty), copied so that they outlive deletes.
func deadKeys(db *bolt.Bucket, want map[uint64]bool) [][]byte {
	var keys [][]byte
	c := db.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(want) == 0 || want[seqOf(k)] {
			keys = append(keys, append([]byte(nil), k...))
		}
	}
	return keys
}

// revive moves the dead letter at k back to its kind's pending records,
// with fresh attempts, and returns its kind and its stored size.
func (q *Queue) revive(tx *bolt.Tx, db *bolt.Bucket, k []byte) (kind string, size int64, err error) {
	r, err := q.decode(k, db.Get(k))
	if err != nil {
		return "", 0, fmt.Errorf("dead letter %d: %w", seqOf(k), err)
	}
	b, err := tx.CreateBucketIfNotExists([]byte(kindPrefix + r.Kind))
	if err != nil {
		return "", 0, err
	}
	r.Attempts, r.Unknown, r.RequestID, r.NextAttempt, r.DeadAt, r.LastError = 0, false, "", time.Time{}, time.Time{}, ""
	n, err := q.put(b, &r)
	if err != nil {
		return "", 0, err
	}
	if err := db.Delete(k); err != nil {
		return "", 0, err
	}
	return r.Kind, n, nil
}

// countRevived moves the persisted counters for the dead letters revived:
// moved (and movedBytes) per kind.
func countRevived(meta *bolt.Bucket, moved map[string]int, movedBytes map[string]int64) error {
	for k, n := range moved {
		if err := adjust(meta, k, n, movedBytes[k]); err != nil {
			return err
		}
		if err := addCounter(meta, keyDeadN, -int64(n)); err != nil {
			return err
		}
	}
	return nil
}

// Purge deletes every dead letter (dead) or every pending record (!dead)
// and returns how many went.
func (q *Queue) Purge(dead bool) (int, error) {
	n := 0
	q.dbMu.RLock()
	err := q.update(func(tx *bolt.Tx) error {
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
