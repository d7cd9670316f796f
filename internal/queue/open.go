package queue

import (
	"errors"
	"fmt"
	"os"
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
