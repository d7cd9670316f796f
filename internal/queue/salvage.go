package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Recovery describes a damaged outbox found at open: where it was moved
// and what was saved from it. The agent shows it as an alarm and a metric.
type Recovery struct {
	At time.Time `json:"at"`
	// File is where the damaged file now is (<path>.corrupt-<time>).
	File   string `json:"file"`
	Reason string `json:"reason"`
	// Salvaged: records (pending and dead letters) copied into the new
	// file, each with its requestId and unknown-outcome state.
	Salvaged int `json:"salvaged"`
	// Lost: records the damaged file counted that could not be read.
	// LostUnknown: its counters were unreadable too, so Lost is only
	// what is known (0).
	Lost        int  `json:"lost"`
	LostUnknown bool `json:"lostUnknown,omitempty"`
}

// salvage moves the damaged file aside and puts a fresh file holding
// every record still readable in it at the outbox's path. A crash at any
// step is recoverable: the copy is built completely (fsynced) as
// <path>.new before the damaged file moves, and a start that finds no
// outbox but a .new takes the .new (adoptLeftover).
func (q *Queue) salvage(dmg *DamagedError) error {
	path, tmp := q.o.Path, q.o.Path+".new"
	rec := Recovery{At: q.o.Now(), File: q.asideName(), Reason: dmg.Reason}
	os.Remove(tmp)
	if err := q.copyReadable(tmp, &rec); err != nil {
		os.Remove(tmp)
		rec.Salvaged, rec.Lost, rec.LostUnknown = 0, 0, true
		rec.Reason += "; nothing could be copied: " + err.Error()
	}
	if err := os.Rename(path, rec.File); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("outbox %s is damaged (%s) and could not be moved aside: %w", path, dmg.Reason, err)
	}
	syncDir(dirOf(path))
	if _, err := os.Stat(tmp); err == nil {
		if err := placeNew(tmp, path); err != nil {
			return fmt.Errorf("outbox %s: put the salvaged copy in place: %w", path, err)
		}
	}
	q.recovery = &rec
	lost := fmt.Sprint(rec.Lost)
	if rec.LostUnknown {
		lost = "an unknown number of"
	}
	q.alert(fmt.Sprintf("outbox file was damaged (%s); moved aside to %s; %d records salvaged, %s lost", rec.Reason, rec.File, rec.Salvaged, lost))
	q.o.Log.Error().Str("path", path).Str("movedTo", rec.File).Str("reason", rec.Reason).Int("salvaged", rec.Salvaged).
		Int("lost", rec.Lost).Bool("lostUnknown", rec.LostUnknown).Msg("outbox damaged: moved aside, readable records salvaged into a fresh file")
	return nil
}

// asideName is <path>.corrupt-<time>, not taken yet.
func (q *Queue) asideName() string {
	base := q.o.Path + ".corrupt-" + q.o.Now().Format("20060102-150405")
	name := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
}

// copyReadable walks the damaged file and copies what it can read into a
// new bbolt file at tmp: pending records, dead letters, idempotency keys
// and the delivery totals; the depth counters are recounted at open. The
// walk has no deadline: it reads each page at most once.
func (q *Queue) copyReadable(tmp string, rec *Recovery) error {
	f, err := os.Open(q.o.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	// The error is not needed: a truncated file comes with a reader for
	// what is there, anything else with none.
	r, _ := newPageReader(f, st.Size(), time.Time{})
	if r == nil {
		rec.LostUnknown = true
		return nil // nothing readable: the caller starts empty
	}
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType, MaxSize: q.o.MaxFileSize})
	if err != nil {
		return err
	}
	s := &salvager{q: q, db: db, seen: map[uint64]bool{}, counted: map[string]int64{}}
	w := newWalk(r)
	w.kv = s.put
	w.bucket = func(name string, seq uint64) {
		if name == string(bucketMeta) {
			s.maxSeq = max(s.maxSeq, seq)
		}
	}
	_ = w.run()
	func() {
		defer func() { _ = recover() }() // what was read is kept
		w.orphans(s.orphan)
	}()
	err = errors.Join(s.finish(), db.Close())
	if err != nil {
		return err
	}
	rec.Salvaged = s.pending + s.dead
	if s.hasCounters {
		rec.Lost = max(0, int(s.counted[keyDeadN])+s.countedPending()-rec.Salvaged)
	} else {
		rec.LostUnknown = true
	}
	return nil
}

// salvager writes what the walk hands it into the new file, in batches.
type salvager struct {
	q           *Queue
	db          *bolt.DB
	batch       []salvaged
	batchBytes  int
	err         error
	seen        map[uint64]bool // record sequences copied
	maxSeq      uint64
	pending     int
	dead        int
	counted     map[string]int64 // the damaged file's depth counters
	hasCounters bool
}

type salvaged struct {
	bucket string
	k, v   []byte
}

func (s *salvager) put(bucket string, k, v []byte) {
	switch {
	case bucket == string(bucketReserve):
		return
	case bucket == string(bucketMeta):
		key := string(k)
		switch {
		case key == keyCounted:
			s.hasCounters = true
			return
		case strings.HasPrefix(key, "n:") || key == keyDeadN:
			if len(v) == 8 {
				s.counted[key] = int64(binary.BigEndian.Uint64(v))
			}
			return
		case strings.HasPrefix(key, "b:"):
			return
		}
	case bucket == string(bucketDead) || strings.HasPrefix(bucket, kindPrefix):
		if len(k) != 8 || s.seen[seqOf(k)] {
			return
		}
		s.seen[seqOf(k)] = true
		s.maxSeq = max(s.maxSeq, seqOf(k))
		if bucket == string(bucketDead) {
			s.dead++
		} else {
			s.pending++
		}
	}
	s.batch = append(s.batch, salvaged{bucket, k, v})
	if s.batchBytes += len(k) + len(v); s.batchBytes > 4<<20 {
		s.flush()
	}
}

// orphan takes a record from a page cut off from its bucket: the record
// itself says its kind, and whether it is a dead letter.
func (s *salvager) orphan(k, v []byte) {
	if len(k) != 8 || s.seen[seqOf(k)] {
		return
	}
	r, err := s.q.decode(k, v)
	if err != nil || r.Kind == "" {
		return
	}
	bucket := kindPrefix + r.Kind
	if !r.DeadAt.IsZero() {
		bucket = string(bucketDead)
	}
	s.put(bucket, k, v)
}

func (s *salvager) flush() {
	if s.err != nil || len(s.batch) == 0 {
		return
	}
	s.err = s.db.Update(func(tx *bolt.Tx) error {
		for _, e := range s.batch {
			b, err := tx.CreateBucketIfNotExists([]byte(e.bucket))
			if err != nil {
				return err
			}
			if err := b.Put(e.k, e.v); err != nil {
				return err
			}
		}
		return nil
	})
	s.batch, s.batchBytes = s.batch[:0], 0
}

// finish writes the rest and sets the sequence above every salvaged
// record's, so new records never take a salvaged one's key.
func (s *salvager) finish() error {
	s.flush()
	if s.err != nil {
		return s.err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := createBuckets(tx); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		return meta.SetSequence(max(meta.Sequence(), s.maxSeq))
	})
}

func (s *salvager) countedPending() int {
	n := 0
	for k, v := range s.counted {
		if strings.HasPrefix(k, "n:") {
			n += int(v)
		}
	}
	return n
}
