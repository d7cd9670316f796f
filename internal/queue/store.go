package queue

import (
	"encoding/binary"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// The file's layout: pending records in one bucket per kind ("q:<kind>"),
// dead letters in "dead", both keyed by sequence number (8 bytes,
// big-endian); idempotency keys in "idem"; in "meta" the sequence, the
// delivery totals and the depth counters; the delivery reserve in
// "reserve" (space.go).

var (
	bucketMeta  = []byte("meta")
	bucketDead  = []byte("dead")
	bucketIdem  = []byte("idem")
	kindPrefix  = "q:"
	counterKeys = []string{"delivered", "duplicates", "retries", "dead", "dropped"}
)

// Meta keys of the persisted depth counters ("n:<kind>", "b:<kind>").
const (
	keyCounted = "counted"
	keyDeadN   = "deadn"
)

// createBuckets creates the buckets every outbox has (a kind's bucket is
// created with its first record).
func createBuckets(tx *bolt.Tx) error {
	for _, b := range [][]byte{bucketMeta, bucketDead, bucketIdem} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

func seqOf(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

func (q *Queue) decode(k, v []byte) (Record, error) {
	plain, err := q.sealer.open(k, v)
	if err != nil {
		return Record{}, err
	}
	rec, err := unmarshal(plain)
	if err != nil {
		return Record{}, err
	}
	rec.Seq = seqOf(k)
	return rec, nil
}

// update runs a write transaction on the open file and counts it once
// committed: each commit costs the fsyncs of one bbolt commit, and the
// count is what the tests and benchmarks hold the outbox to.
func (q *Queue) update(fn func(*bolt.Tx) error) error {
	err := q.db.Update(fn)
	if err == nil {
		q.writes.Add(1)
	}
	return err
}

// writeCount is the number of write transactions committed since Open.
func (q *Queue) writeCount() int64 { return q.writes.Load() }

func (q *Queue) put(b *bolt.Bucket, rec *Record) (int64, error) {
	key := seqKey(rec.Seq)
	val := q.sealer.seal(key, rec.marshal())
	return int64(len(key) + len(val)), b.Put(key, val)
}

// Counters are 8-byte big-endian two's complement, so deltas may be
// negative.
func getCounter(meta *bolt.Bucket, name string) int64 {
	if v := meta.Get([]byte(name)); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func setCounter(meta *bolt.Bucket, name string, v int64) error {
	buf := make([]byte, 8)
	binary.BigEndian.PutUint64(buf, uint64(v))
	return meta.Put([]byte(name), buf)
}

func addCounter(meta *bolt.Bucket, name string, n int64) error {
	return setCounter(meta, name, getCounter(meta, name)+n)
}

// adjust moves the persisted counters of kind by dn records and db bytes.
func adjust(meta *bolt.Bucket, kind string, dn int, db int64) error {
	if dn != 0 {
		if err := addCounter(meta, "n:"+kind, int64(dn)); err != nil {
			return err
		}
	}
	if db != 0 {
		return addCounter(meta, "b:"+kind, db)
	}
	return nil
}

// load reads the counters. They are kept in the meta bucket, updated in
// the same transactions as the records, so opening does not walk (and page
// in) every record; a file without them is walked once.
func (q *Queue) load(tx *bolt.Tx) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending, q.bytes, q.dead = map[string]int{}, map[string]int64{}, 0
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return nil
	}
	for _, k := range counterKeys {
		q.counters[k] = getCounter(meta, k)
	}
	if meta.Get([]byte(keyCounted)) != nil {
		q.dead = int(getCounter(meta, keyDeadN))
		c := meta.Cursor()
		for k, _ := c.Seek([]byte("n:")); k != nil && strings.HasPrefix(string(k), "n:"); k, _ = c.Next() {
			kind := string(k[2:])
			q.pending[kind] = int(getCounter(meta, "n:"+kind))
			q.bytes[kind] = getCounter(meta, "b:"+kind)
		}
		return nil
	}
	q.needCount = true
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		switch {
		case string(name) == string(bucketDead):
			q.dead = b.Stats().KeyN
		case len(name) > len(kindPrefix) && string(name[:len(kindPrefix)]) == kindPrefix:
			kind := string(name[len(kindPrefix):])
			return b.ForEach(func(k, v []byte) error {
				if len(k) != 8 {
					return errCorruptRecord
				}
				q.pending[kind]++
				q.bytes[kind] += int64(len(k) + len(v))
				return nil
			})
		}
		return nil
	})
}

// storeCounts writes walked counters into meta (first open of a file).
func (q *Queue) storeCounts(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	q.mu.Lock()
	defer q.mu.Unlock()
	for kind, n := range q.pending {
		if err := setCounter(meta, "n:"+kind, int64(n)); err != nil {
			return err
		}
		if err := setCounter(meta, "b:"+kind, q.bytes[kind]); err != nil {
			return err
		}
	}
	if err := setCounter(meta, keyDeadN, int64(q.dead)); err != nil {
		return err
	}
	return meta.Put([]byte(keyCounted), []byte{1})
}
