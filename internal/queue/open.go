package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Opening the file: leftovers of an interrupted compaction or salvage are
// settled, the file is verified by reading its pages directly (pages.go,
// walk.go) before bbolt maps it, and a damaged file is moved aside and
// salvaged into a fresh one (salvage.go).

// ErrLocked: another process holds the outbox file.
var ErrLocked = errors.New("locked by another process")

// DamagedError: the outbox file is damaged. A writable Open moves such a
// file aside and salvages it; a read-only Open returns this error.
type DamagedError struct {
	Path   string
	Reason string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("outbox %s is damaged: %s (the agent moves it aside and salvages its records when it starts)", e.Path, e.Reason)
}

// defaultVerifyTimeout bounds the verification at open. It reads each page
// in use once: a 256 MiB outbox (the default max_bytes) takes about a
// second from an SSD, a few from a slow eMMC or disk. Past the deadline
// the rest of the file is trusted, as it was before verification existed,
// with a warning, rather than delaying the start further; a marker file
// makes the next start verify in full should this run not stop cleanly
// (a damaged page beyond the deadline would crash it), so a crash is
// followed by a salvage, not by a crash loop.
const defaultVerifyTimeout = 10 * time.Second

// Open opens (or creates) the outbox at o.Path. A file held by another
// process fails after OpenTimeout with ErrLocked; a damaged file is moved
// aside to <path>.corrupt-<time>, every record still readable in it is
// copied into a fresh file, and Stats().Recovery and an alert say so.
func Open(o Options) (*Queue, error) {
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
	s, err := newSealer(o.Key)
	if err != nil {
		return nil, err
	}
	q := &Queue{o: o, sealer: s, reqs: make(chan *enqueueReq, 1024), closing: make(chan struct{}),
		pending: map[string]int{}, bytes: map[string]int64{}, counters: map[string]int64{}, lastErr: map[string]string{},
		paused: map[string]time.Time{}, notify: map[string]chan struct{}{}}
	if err := q.openFile(); err != nil {
		return nil, err
	}
	if !o.ReadOnly {
		q.makeReserve()
		q.committer.Add(1)
		go q.commitLoop()
	}
	return q, nil
}

func (q *Queue) openFile() error {
	path := q.o.Path
	if q.o.ReadOnly {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no outbox at %s (the agent has not run with this configuration yet)", path)
		}
	} else {
		if err := os.MkdirAll(dirOf(path), 0o750); err != nil {
			return fmt.Errorf("outbox directory: %w", err)
		}
		q.adoptLeftover()
	}
	var dmg *DamagedError
	err := q.verify()
	if errors.As(err, &dmg) && !q.o.ReadOnly {
		err = q.salvage(dmg)
	}
	if err != nil {
		return err
	}
	if !q.o.ReadOnly {
		if err := q.createIfMissing(); err != nil {
			return err
		}
	}
	db, err := q.tryOpen()
	if errors.As(err, &dmg) && !q.o.ReadOnly {
		// bbolt refused or panicked on a file the walk passed (damage past
		// the verification deadline).
		if err = q.salvage(dmg); err == nil {
			db, err = q.tryOpen()
		}
	}
	if err != nil {
		return err
	}
	q.db = db
	return nil
}

// adoptLeftover finishes what a compaction or salvage killed half-way
// left. Both build the new file completely (fsynced) as <path>.new before
// touching <path>, so with <path> missing, <path>.new is whole and is the
// outbox. An agent before this version compacted with two renames and
// could leave <path>.old as the only copy of the backlog.
func (q *Queue) adoptLeftover() {
	path := q.o.Path
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return
	}
	for _, from := range []string{".new", ".old"} {
		if err := os.Rename(path+from, path); err == nil {
			syncDir(dirOf(path))
			q.o.Log.Warn().Str("path", path).Str("from", path+from).Msg("outbox recovered from an interrupted compaction or salvage")
			return
		}
	}
}

// removeLeftovers deletes, with the file's lock held, what an interrupted
// compaction, salvage or creation left beside an existing outbox: an
// unfinished <path>.new, <path>.init-* or (earlier versions) <path>.compact,
// and <path>.old, a stale copy once both renames of an earlier version's
// compaction were done.
func (q *Queue) removeLeftovers() {
	path := q.o.Path
	stale := []string{path + ".new", path + ".old", path + ".compact"}
	if entries, err := os.ReadDir(filepath.Dir(path)); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), filepath.Base(path)+".init-") {
				stale = append(stale, filepath.Join(filepath.Dir(path), e.Name()))
			}
		}
	}
	for _, f := range stale {
		if err := os.Remove(f); err == nil {
			q.o.Log.Warn().Str("file", f).Msg("outbox: removed the leftover of an interrupted compaction, salvage or creation")
		}
	}
}

// verify checks the file before bbolt maps it: nil for a sound or absent
// file, a *DamagedError for a damaged one, another error when it cannot
// be read or another process holds it.
func (q *Queue) verify() error {
	path := q.o.Path
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("outbox %s: %w", path, err)
	}
	if st.Size() == 0 {
		return &DamagedError{Path: path, Reason: "the file is empty (0 bytes)"}
	}
	// bbolt's shared lock, held while reading, keeps a running agent's
	// writes (and temporary files) from being mistaken for damage.
	lock, err := q.boltOpen(path, true)
	if err != nil {
		return err
	}
	defer lock.Close()
	if !q.o.ReadOnly {
		q.removeLeftovers()
	}
	if q.o.VerifyTimeout < 0 {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("outbox %s: %w", path, err)
	}
	defer f.Close()
	return q.walkFile(f, st.Size())
}

// walkFile verifies the open file, within VerifyTimeout unless a marker
// says the last run verified only part of it and did not stop cleanly.
func (q *Queue) walkFile(f *os.File, size int64) error {
	path := q.o.Path
	var deadline time.Time
	marker := path + ".unverified"
	if _, err := os.Stat(marker); err != nil {
		deadline = time.Now().Add(q.o.VerifyTimeout)
	} else {
		q.o.Log.Warn().Str("path", path).Msg("outbox: the last run verified only part of the file and did not stop cleanly: verifying all of it")
	}
	r, err := newPageReader(f, size, deadline)
	if err != nil {
		return &DamagedError{Path: path, Reason: err.Error()}
	}
	w := newWalk(r)
	if err := w.run(); errors.Is(err, errDeadline) {
		q.o.Log.Warn().Str("path", path).Dur("after", q.o.VerifyTimeout).Msg("outbox verification stopped at its deadline: the pages not read yet are trusted")
		if !q.o.ReadOnly {
			q.partial = os.WriteFile(marker, nil, 0o600) == nil
		}
		return nil
	}
	if !q.o.ReadOnly {
		os.Remove(marker) // verified in full: sound, or salvaged next
	}
	if err := w.err(); err != nil {
		return &DamagedError{Path: path, Reason: err.Error()}
	}
	return nil
}

// boltOpen opens path with bbolt; its errors come back classified (locked,
// damaged, other) and its panics as damage.
func (q *Queue) boltOpen(path string, readOnly bool) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, &DamagedError{Path: path, Reason: fmt.Sprint(r)}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: q.o.OpenTimeout, FreelistType: bolt.FreelistMapType, ReadOnly: readOnly, MaxSize: q.o.MaxFileSize})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("outbox %s is %w (is another scanagent running on this file?)", path, ErrLocked)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch),
		errors.Is(err, berrors.ErrInvalidMapping), strings.Contains(err.Error(), "file size too small"):
		return nil, &DamagedError{Path: path, Reason: err.Error()}
	}
	return nil, fmt.Errorf("open outbox %s: %w", path, err)
}

// createIfMissing creates a fresh outbox, whole or not at all: it is
// built under a temporary name and linked into place, so a crash never
// leaves an empty or half-written outbox behind (an empty file is damage),
// and a racing agent's file is never replaced.
func (q *Queue) createIfMissing() error {
	path := q.o.Path
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tmp := fmt.Sprintf("%s.init-%d", path, os.Getpid())
	os.Remove(tmp)
	defer os.Remove(tmp)
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("create outbox %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := createBuckets(tx); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put([]byte(keyCounted), []byte{1})
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = placeNew(tmp, path)
	}
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create outbox %s: %w", path, err)
	}
	return nil
}

// placeNew puts the finished file tmp at path unless path exists (another
// process was quicker): a hard link where the file system has them, else
// a rename.
func placeNew(tmp, path string) error {
	err := os.Link(tmp, path)
	if err != nil && !errors.Is(err, os.ErrExist) {
		if _, serr := os.Stat(path); serr == nil {
			return os.ErrExist
		}
		err = os.Rename(tmp, path)
	}
	if err == nil {
		os.Remove(tmp)
		syncDir(dirOf(path))
	}
	return err
}

func createBuckets(tx *bolt.Tx) error {
	for _, b := range [][]byte{bucketMeta, bucketDead, bucketIdem} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

// tryOpen opens the file with bbolt and loads the counters (walking the
// records once if the file has none persisted). bbolt panics on some
// damage; those panics come back as a *DamagedError.
func (q *Queue) tryOpen() (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			db, err = nil, &DamagedError{Path: q.o.Path, Reason: fmt.Sprint(r)}
		}
	}()
	if db, err = q.boltOpen(q.o.Path, q.o.ReadOnly); err != nil {
		return nil, err
	}
	fail := func(err error) (*bolt.DB, error) {
		db.Close()
		return nil, fmt.Errorf("open outbox %s: %w", q.o.Path, err)
	}
	complete := true
	_ = db.View(func(tx *bolt.Tx) error {
		complete = tx.Bucket(bucketMeta) != nil && tx.Bucket(bucketDead) != nil && tx.Bucket(bucketIdem) != nil
		return nil
	})
	if !complete && !q.o.ReadOnly {
		if err := db.Update(createBuckets); err != nil {
			return fail(err)
		}
	}
	if err := db.View(q.load); err != nil {
		if errors.Is(err, errCorruptRecord) {
			db.Close()
			return nil, &DamagedError{Path: q.o.Path, Reason: "a record key is not a sequence number"}
		}
		return fail(err)
	}
	if q.needCount && !q.o.ReadOnly {
		if err := db.Update(q.storeCounts); err != nil {
			return fail(err)
		}
		q.needCount = false
	}
	return db, nil
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
