package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Enqueueing: each record is a request to the group committer
// (commit.go), which stores every record in line in one transaction (one
// fsync) and answers each producer once it is on disk. The record's first
// requestId is assigned in the same transaction (ids.go).

// Enqueue stores a record of kind and returns its sequence number once it
// is committed to disk. It fails with ErrFull (bound reached under the
// reject policy, or disk full) or ErrClosed; nothing is half-stored.
func (q *Queue) Enqueue(ctx context.Context, kind string, payload []byte) (uint64, error) {
	return q.EnqueueKeyed(ctx, kind, "", payload)
}

// IdempotencyWindow is how long an idempotency key is remembered.
const IdempotencyWindow = 24 * time.Hour

// EnqueueKeyed is Enqueue with an idempotency key: a producer that retries
// after losing the answer (the agent died between commit and reply) gets
// the first record's sequence back instead of a second record. Keys are
// remembered for IdempotencyWindow; "" means no key.
func (q *Queue) EnqueueKeyed(ctx context.Context, kind, key string, payload []byte) (uint64, error) {
	if q.o.ReadOnly {
		return 0, errors.New("outbox opened read-only")
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// The record is encoded here, with its first requestId, while the
	// commit in progress (if any) runs: the leader only seals and stores.
	rec := Record{Kind: kind, Payload: payload, Enqueued: q.o.Now()}
	q.assignID(&rec)
	// Once in line the commit happens; its result is awaited even if ctx
	// ends, so the caller never mistakes a stored record for a lost one.
	res := q.submit(&writeReq{kind: kind, key: key, plain: rec.marshal()})
	return res.seq, res.err
}

// groupCommit is the records of one transaction of the committer: the
// requests, each producer's result, and what the transaction changed,
// applied to the in-memory counters once it is committed
// (Queue.committed).
type groupCommit struct {
	q     *Queue
	batch []*writeReq
	res   []writeRes
	now   time.Time
	// count and size: the queue's depth as the transaction goes on.
	count int
	size  int64
	// drops: records dropped (drop_oldest); added and addedBytes: records
	// stored, per kind.
	drops      []droppedRec
	added      map[string]int
	addedBytes map[string]int64
	buckets    map[string]*bolt.Bucket // the kinds' buckets, looked up once
}

// droppedRec is a record dropped under the drop_oldest policy.
type droppedRec struct {
	kind string
	size int64
}

// store is the transaction: it stores each record of the batch (or finds
// its idempotency key already there) and moves the persisted counters.
func (c *groupCommit) store(tx *bolt.Tx) error {
	c.drops, c.added, c.addedBytes, c.buckets = c.drops[:0], map[string]int{}, map[string]int64{}, map[string]*bolt.Bucket{}
	for i := range c.res {
		c.res[i] = writeRes{}
	}
	meta := tx.Bucket(bucketMeta)
	c.q.mu.Lock()
	c.count, c.size = c.q.totalLocked()
	c.q.mu.Unlock()
	idem := tx.Bucket(bucketIdem)
	for i, r := range c.batch {
		if err := c.storeOne(tx, meta, idem, i, r); err != nil {
			return err
		}
	}
	return c.moveCounters(meta)
}

// storeOne stores record i of the batch and sets its result: its
// sequence (a new one, or the first record's for a known idempotency
// key), or ErrFull when it does not fit the bounds. An error fails the
// whole transaction.
func (c *groupCommit) storeOne(tx *bolt.Tx, meta, idem *bolt.Bucket, i int, r *writeReq) error {
	var idemKey []byte
	if r.key != "" {
		idemKey = []byte(r.kind + "\x00" + r.key)
		if v := idem.Get(idemKey); len(v) == 16 {
			c.res[i].seq = binary.BigEndian.Uint64(v)
			return nil
		}
	}
	seq, err := meta.NextSequence()
	if err != nil {
		return err
	}
	key := seqKey(seq)
	val := c.q.sealer.seal(key, r.plain)
	need := int64(len(key) + len(val))
	if !c.makeRoom(tx, need) {
		o := &c.q.o
		c.res[i].err = fmt.Errorf("%w: %d records / %d bytes (limits %d / %d)", ErrFull, c.count, c.size, o.MaxRecords, o.MaxBytes)
		return nil
	}
	b := c.buckets[r.kind]
	if b == nil {
		if b, err = tx.CreateBucketIfNotExists([]byte(kindPrefix + r.kind)); err != nil {
			return err
		}
		b.FillPercent = 1.0 // keys only grow: pack pages full
		c.buckets[r.kind] = b
	}
	if err := b.Put(key, val); err != nil {
		return err
	}
	c.res[i].seq = seq
	c.count, c.size = c.count+1, c.size+need
	if idemKey != nil {
		if err := rememberKey(idem, idemKey, seq, c.now); err != nil {
			return err
		}
	}
	c.added[r.kind]++
	c.addedBytes[r.kind] += need
	return nil
}

// makeRoom reports whether one more record of need bytes fits the
// bounds, first dropping the oldest records if the policy is drop_oldest.
func (c *groupCommit) makeRoom(tx *bolt.Tx, need int64) bool {
	o := &c.q.o
	for c.count+1 > o.MaxRecords || c.size+need > o.MaxBytes {
		if o.FullPolicy != "drop_oldest" {
			break
		}
		kind, n, ok := dropOldest(tx)
		if !ok {
			break
		}
		c.drops = append(c.drops, droppedRec{kind, n})
		c.count, c.size = c.count-1, c.size-n
	}
	return c.count+1 <= o.MaxRecords && c.size+need <= o.MaxBytes
}

// rememberKey stores an idempotency key's value: the record's sequence
// and, for pruneKeys, the time the key was stored (Unix seconds).
func rememberKey(idem *bolt.Bucket, key []byte, seq uint64, now time.Time) error {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, seq)
	binary.BigEndian.PutUint64(v[8:], uint64(now.Unix()))
	return idem.Put(key, v)
}

// moveCounters adds the records stored to the persisted counters and
// takes those dropped off.
func (c *groupCommit) moveCounters(meta *bolt.Bucket) error {
	for k, n := range c.added {
		if err := adjust(meta, k, n, c.addedBytes[k]); err != nil {
			return err
		}
	}
	for _, d := range c.drops {
		if err := adjust(meta, d.kind, -1, -d.size); err != nil {
			return err
		}
	}
	if len(c.drops) > 0 {
		return addCounter(meta, "dropped", int64(len(c.drops)))
	}
	return nil
}

// committed applies a committed groupCommit to the in-memory counters,
// logs the drops and wakes the delivery loops.
func (q *Queue) committed(c *groupCommit) {
	q.wrote()
	q.mu.Lock()
	for k, n := range c.added {
		q.pending[k] += n
		q.bytes[k] += c.addedBytes[k]
	}
	for _, d := range c.drops {
		q.pending[d.kind]--
		q.bytes[d.kind] -= d.size
		q.counters["dropped"]++
	}
	q.mu.Unlock()
	for _, d := range c.drops {
		q.o.Log.Warn().Str("kind", d.kind).Msg("outbox full: oldest record dropped (queue.full_policy = \"drop_oldest\")")
	}
	for k := range c.added {
		q.signal(k)
	}
	if len(c.added) > 0 {
		q.signal("") // Run starts a delivery loop for a new kind
	}
}

// dropOldest deletes the record with the lowest sequence across kinds.
func dropOldest(tx *bolt.Tx) (kind string, size int64, ok bool) {
	var best []byte
	var bestKind string
	_ = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if len(name) <= len(kindPrefix) || string(name[:len(kindPrefix)]) != kindPrefix {
			return nil
		}
		if k, _ := b.Cursor().First(); k != nil && (best == nil || string(k) < string(best)) {
			best, bestKind = append([]byte(nil), k...), string(name[len(kindPrefix):])
		}
		return nil
	})
	if best == nil {
		return "", 0, false
	}
	b := tx.Bucket([]byte(kindPrefix + bestKind))
	size = int64(len(best) + len(b.Get(best)))
	return bestKind, size, b.Delete(best) == nil
}
