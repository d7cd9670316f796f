// Package queue is scanagent's durable outbox on bbolt: usage reports and
// card bindings waiting for the platform. Enqueue returns only after the
// record is committed to disk (fsync), with concurrent producers sharing
// commits (leader/follower, commit.go); records leave only after the
// platform accepted them; once an attempt's outcome is unknown (timeout,
// crash mid-send) its requestId is kept for every retry until the platform
// accepts it, answers 10054 or refuses it, so a report is never counted
// twice. Delivery runs Concurrency workers per kind, each sending the next
// record due as soon as it is free, and settles answers in batches.
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
	"errors"
	"os"
	"sync"
	"sync/atomic"
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

// String is the outcome's name, as metrics label it.
func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Duplicate:
		return "duplicate"
	case Retry:
		return "retry"
	case Dead:
		return "dead"
	case Pause:
		return "pause"
	}
	return "unknown"
}

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
	Path       string
	MaxRecords int
	MaxBytes   int64
	FullPolicy string // reject, drop_oldest
	// BatchWindow: 0 (the default) commits at once, producers arriving
	// during a commit share the next one; > 0 makes each commit wait that
	// long for more producers first (commit.go).
	BatchWindow time.Duration
	// Concurrency: the records of one kind in flight at once, each sent
	// by its own worker (lane.go).
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

// Queue is the outbox.
type Queue struct {
	o      Options
	sealer *sealer

	dbMu sync.RWMutex // write-locked only to swap the file (compaction)
	db   *bolt.DB

	cm        *committer   // group commit (commit.go)
	writes    atomic.Int64 // write transactions committed (store.go)
	closeOnce sync.Once
	// idPrefix starts every requestId this process assigns (ids.go).
	idPrefix    [6]byte
	idPrefixHex string

	mu       sync.Mutex
	pending  map[string]int
	bytes    map[string]int64
	dead     int
	counters map[string]int64
	lastErr  map[string]string
	paused   map[string]time.Time
	alerts   []string
	notify   map[string]chan struct{}
	// sent: requestIds of attempts sent whose answer is not settled yet,
	// by sequence (ids.go).
	sent map[uint64]string
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
	// journal holds records announced by Intend and not yet committed.
	journal *journal
}

// Open opens (or creates) the outbox at o.Path. A file held by another
// process fails after OpenTimeout with ErrLocked; a damaged file is moved
// aside to <path>.corrupt-<time>, every record still readable in it is
// copied into a fresh file, and Stats().Recovery and an alert say so.
func Open(o Options) (*Queue, error) {
	o = withDefaults(o)
	s, err := newSealer(o.Key)
	if err != nil {
		return nil, err
	}
	q := &Queue{o: o, sealer: s, cm: newCommitter(),
		pending: map[string]int{}, bytes: map[string]int64{}, counters: map[string]int64{}, lastErr: map[string]string{},
		paused: map[string]time.Time{}, notify: map[string]chan struct{}{}, sent: map[uint64]string{}}
	q.idPrefix, q.idPrefixHex = newIDPrefix()
	if err := q.openFile(); err != nil {
		return nil, err
	}
	if !o.ReadOnly {
		q.makeReserve()
		if err := q.openJournal(); err != nil {
			q.Close()
			return nil, err
		}
	}
	return q, nil
}

// withDefaults fills in the options left unset.
func withDefaults(o Options) Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OpenTimeout == 0 {
		o.OpenTimeout = 2 * time.Second
	}
	if o.VerifyTimeout == 0 {
		o.VerifyTimeout = defaultVerifyTimeout
	}
	if o.Concurrency < 1 {
		o.Concurrency = 4
	}
	if o.RetryMin <= 0 {
		o.RetryMin = time.Second
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = o.RetryMin
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = 1_000_000
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 256 << 20
	}
	return o
}

// Close stops accepting records, commits those already handed over and
// closes the file. Call it after Run returned.
func (q *Queue) Close() error {
	var err error
	q.closeOnce.Do(func() {
		q.stopCommits()
		if q.journal != nil {
			q.journal.close()
		}
		q.dbMu.Lock()
		err = q.db.Close()
		q.dbMu.Unlock()
		if err == nil && q.partial {
			os.Remove(q.o.Path + ".unverified")
		}
	})
	return err
}
