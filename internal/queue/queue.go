// Package queue is scanagent's durable outbox on bbolt: usage reports and
// card bindings waiting for the platform. Enqueue returns only after the
// record is committed to disk (fsync), with concurrent producers sharing
// commits; records leave only after the platform accepted them; once an
// attempt's outcome is unknown (timeout, crash mid-send) its requestId is
// kept for every retry until the platform accepts it, answers 10054 or
// refuses it, so a report is never counted twice.
// Open verifies the file first: a damaged one is moved aside and every
// record still readable in it copied into a fresh one (open.go,
// salvage.go). A full disk refuses new records while delivery goes on
// and frees space, using a reserve kept in the file (space.go).
// Compaction swaps files with one atomic rename.
// It is the agent's only durable state. It does not import other stages: it
// consumes a Sender.
package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
)

// Outcome is the result of one delivery attempt.
type Outcome int

// Outcomes.
const (
	// Delivered: the platform accepted the record.
	Delivered Outcome = iota + 1
	// Duplicate: the platform has seen this requestId (10054).
	Duplicate
	// Retry: try again later (platform fault, timeout, outage).
	Retry
	// Dead: the platform refused the record for good; keep it as a dead
	// letter and alert.
	Dead
	// Pause: the API is rate limited until RetryAfter.
	Pause
)

// Verdict is a Sender's account of one attempt.
type Verdict struct {
	Outcome Outcome
	// Unknown: the request may have been processed (sent, no answer).
	Unknown    bool
	RetryAfter time.Time
	Reason     string
}

// Sender delivers one record. It is the platform client, adapted.
type Sender interface {
	Send(ctx context.Context, kind string, payload []byte, requestID string) Verdict
}

// Errors of Enqueue.
var (
	// ErrFull: the queue is at its configured bound (or the disk is full)
	// and the policy is to reject new records.
	ErrFull = errors.New("outbox full")
	// ErrClosed: the queue is closing.
	ErrClosed = errors.New("outbox closed")
)

// Options configures the outbox.
type Options struct {
	Path        string
	MaxRecords  int
	MaxBytes    int64
	FullPolicy  string // reject, drop_oldest
	BatchWindow time.Duration
	Concurrency int
	RetryMin    time.Duration
	RetryMax    time.Duration
	// Key, when set, encrypts record values with AES-256-GCM.
	Key []byte
	// OpenTimeout bounds waiting for the file lock (another process).
	OpenTimeout time.Duration
	// VerifyTimeout bounds the verification of the file at open (0: 10s;
	// negative: no verification); see defaultVerifyTimeout.
	VerifyTimeout time.Duration
	// MaxFileSize caps the file (0: no cap). A write that would grow it
	// past the cap fails like a full disk does; tests use it for that.
	MaxFileSize int
	// Reserve is the space kept in the file for delivery when the disk is
	// full (0: 1 MiB, or an eighth of MaxFileSize; negative: none); see
	// space.go.
	Reserve  int
	ReadOnly bool
	Log      zerolog.Logger
	Now      func() time.Time
}

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

// Queue is the outbox.
type Queue struct {
	o      Options
	sealer *sealer

	dbMu sync.RWMutex // write-locked only to swap the file (compaction)
	db   *bolt.DB

	reqs      chan *enqueueReq
	closeMu   sync.RWMutex
	closed    bool
	closing   chan struct{}
	committer sync.WaitGroup
	closeOnce sync.Once

	mu       sync.Mutex
	pending  map[string]int
	bytes    map[string]int64
	dead     int
	counters map[string]int64
	lastErr  map[string]string
	paused   map[string]time.Time
	alerts   []string
	notify   map[string]chan struct{}
	commits  int64 // write transactions of the committer (tests, metrics)
	// needCount: the file had no persisted counters; load walked it.
	needCount bool
	// recovery: the file was damaged at open and salvaged.
	recovery *Recovery
	// partial: verification at open stopped at its deadline.
	partial bool
	space   spaceState
	// compactHook, when set (tests), runs after each step of Compact; an
	// error stops Compact there, as a crash would.
	compactHook func(step string) error
}

type enqueueReq struct {
	kind    string
	key     string
	payload []byte
	done    chan enqueueRes
}

type enqueueRes struct {
	seq uint64
	err error
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

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if os.IsPathSeparator(p[i]) {
			return p[:i+1]
		}
	}
	return "."
}

func (q *Queue) alert(msg string) {
	q.mu.Lock()
	q.alerts = append(q.alerts, q.o.Now().Format(time.RFC3339)+" "+msg)
	if len(q.alerts) > 20 {
		q.alerts = q.alerts[len(q.alerts)-20:]
	}
	q.mu.Unlock()
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

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
	r := &enqueueReq{kind: kind, key: key, payload: payload, done: make(chan enqueueRes, 1)}
	q.closeMu.RLock()
	if q.closed {
		q.closeMu.RUnlock()
		return 0, ErrClosed
	}
	select {
	case q.reqs <- r:
		q.closeMu.RUnlock()
	case <-ctx.Done():
		q.closeMu.RUnlock()
		return 0, ctx.Err()
	}
	// Once handed over the commit happens; wait for its result even if ctx
	// ends, so the caller never mistakes a stored record for a lost one.
	res := <-r.done
	return res.seq, res.err
}

// commitLoop is the group committer: it takes every request waiting (and,
// with a batch window, those arriving within it) and commits them in one
// transaction, so concurrent producers share one fsync.
func (q *Queue) commitLoop() {
	defer q.committer.Done()
	for {
		var first *enqueueReq
		select {
		case first = <-q.reqs:
		case <-q.closing:
			// Commit what was handed over before closing.
			for {
				select {
				case r := <-q.reqs:
					q.commit([]*enqueueReq{r})
				default:
					return
				}
			}
		}
		batch := []*enqueueReq{first}
		var window <-chan time.Time
		if q.o.BatchWindow > 0 {
			window = time.After(q.o.BatchWindow)
		}
	collect:
		for len(batch) < 1024 {
			select {
			case r := <-q.reqs:
				batch = append(batch, r)
				continue
			default:
			}
			if window == nil {
				break
			}
			select {
			case r := <-q.reqs:
				batch = append(batch, r)
			case <-window:
				break collect
			}
		}
		q.commit(batch)
	}
}

func (q *Queue) commit(batch []*enqueueReq) {
	if err := q.admit(len(batch)); err != nil {
		for _, r := range batch {
			r.done <- enqueueRes{err: err}
		}
		return
	}
	res := make([]enqueueRes, len(batch))
	type dropped struct {
		kind string
		size int64
	}
	var drops []dropped
	added := map[string]int{}
	addedBytes := map[string]int64{}
	now := q.o.Now()
	q.dbMu.RLock()
	err := q.db.Update(func(tx *bolt.Tx) error {
		drops, added, addedBytes = drops[:0], map[string]int{}, map[string]int64{}
		for i := range res {
			res[i] = enqueueRes{}
		}
		meta := tx.Bucket(bucketMeta)
		q.mu.Lock()
		count, size := q.totalLocked()
		q.mu.Unlock()
		idem := tx.Bucket(bucketIdem)
		for i, r := range batch {
			var idemKey []byte
			if r.key != "" {
				idemKey = []byte(r.kind + "\x00" + r.key)
				if v := idem.Get(idemKey); len(v) == 16 {
					res[i].seq = binary.BigEndian.Uint64(v)
					continue
				}
			}
			rec := Record{Kind: r.kind, Payload: r.payload, Enqueued: now}
			seq, err := meta.NextSequence()
			if err != nil {
				return err
			}
			key := seqKey(seq)
			val := q.sealer.seal(key, rec.marshal())
			need := int64(len(key) + len(val))
			for count+1 > q.o.MaxRecords || size+need > q.o.MaxBytes {
				if q.o.FullPolicy != "drop_oldest" {
					break
				}
				kind, n, ok := dropOldest(tx)
				if !ok {
					break
				}
				drops = append(drops, dropped{kind, n})
				count, size = count-1, size-n
			}
			if count+1 > q.o.MaxRecords || size+need > q.o.MaxBytes {
				res[i].err = fmt.Errorf("%w: %d records / %d bytes (limits %d / %d)", ErrFull, count, size, q.o.MaxRecords, q.o.MaxBytes)
				continue
			}
			b, err := tx.CreateBucketIfNotExists([]byte(kindPrefix + r.kind))
			if err != nil {
				return err
			}
			b.FillPercent = 1.0 // keys only grow: pack pages full
			if err := b.Put(key, val); err != nil {
				return err
			}
			res[i].seq = seq
			count, size = count+1, size+need
			if idemKey != nil {
				v := make([]byte, 16)
				binary.BigEndian.PutUint64(v, seq)
				binary.BigEndian.PutUint64(v[8:], uint64(now.Unix()))
				if err := idem.Put(idemKey, v); err != nil {
					return err
				}
			}
			added[r.kind]++
			addedBytes[r.kind] += need
		}
		for k, n := range added {
			if err := adjust(meta, k, n, addedBytes[k]); err != nil {
				return err
			}
		}
		for _, d := range drops {
			if err := adjust(meta, d.kind, -1, -d.size); err != nil {
				return err
			}
		}
		if len(drops) > 0 {
			return addCounter(meta, "dropped", int64(len(drops)))
		}
		return nil
	})
	q.dbMu.RUnlock()
	if err != nil {
		// Nothing of this transaction is stored (disk full, I/O error):
		// every producer hears so; the queue keeps running.
		err = q.commitFailed(err, len(batch))
		for i := range res {
			res[i] = enqueueRes{err: err}
		}
	} else {
		q.wrote()
		q.mu.Lock()
		q.commits++
		for k, n := range added {
			q.pending[k] += n
			q.bytes[k] += addedBytes[k]
		}
		for _, d := range drops {
			q.pending[d.kind]--
			q.bytes[d.kind] -= d.size
			q.counters["dropped"]++
		}
		q.mu.Unlock()
		for _, d := range drops {
			q.o.Log.Warn().Str("kind", d.kind).Msg("outbox full: oldest record dropped (queue.full_policy = \"drop_oldest\")")
		}
		for k := range added {
			q.signal(k)
		}
		if len(added) > 0 {
			q.signal("") // Run starts a delivery loop for a new kind
		}
	}
	for i, r := range batch {
		r.done <- res[i]
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

func (q *Queue) totalLocked() (int, int64) {
	n, s := 0, int64(0)
	for k, c := range q.pending {
		n += c
		s += q.bytes[k]
	}
	return n, s
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

// Close stops accepting records, commits those already handed over and
// closes the file. Call it after Run returned.
func (q *Queue) Close() error {
	var err error
	q.closeOnce.Do(func() {
		q.closeMu.Lock()
		q.closed = true
		q.closeMu.Unlock()
		close(q.closing)
		q.committer.Wait()
		q.dbMu.Lock()
		err = q.db.Close()
		q.dbMu.Unlock()
		if err == nil && q.partial {
			os.Remove(q.o.Path + ".unverified")
		}
	})
	return err
}
