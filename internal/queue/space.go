package queue

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// A full disk must pause the outbox, not wedge it. bbolt copies on write:
// every transaction, a delete too, needs fresh pages before it frees old
// ones, and delivery must write (the requestId of each attempt goes to
// disk before it is sent) before it can delete. With the disk full and no
// free page left in the file, nothing could be delivered and so nothing
// freed.
//
// So the file keeps a reserve: a bucket of filler (Options.Reserve bytes,
// 1 MiB by default) written when the outbox opens. When a delivery write
// fails for lack of space, the reserve is deleted; its pages are free
// inside the file from the next transaction on, so marking, sending and
// settling go on, and each delivered record frees more. Meanwhile new
// records are refused at once (ErrFull, the cause wrapped), with one
// attempt a second to notice space coming back. Once pages are free
// again the reserve is rewritten and records are accepted again.
//
// Why inside the file rather than a ballast file beside it: pages inside
// the file are ours alone, where space a deleted ballast file hands back
// to the file system goes to whichever process writes first (the logs,
// for a start); it also works the same for the MaxFileSize cap, and pages
// bbolt reuses need no new disk blocks on ext4, xfs, NTFS or tmpfs (a
// copy-on-write file system such as btrfs or ZFS may still refuse). The
// delete of the reserve itself needs two or three pages (the root leaf
// and the freelist); every committed transaction frees at least as many
// (the previous copies of those same pages), so they are there.

var bucketReserve = []byte("reserve")

// spaceState is guarded by Queue.mu.
type spaceState struct {
	full     bool
	since    time.Time
	cause    error
	reserve  bool
	released int64
	refused  int64
	lastTry  time.Time // wall clock: throttles attempts while full
}

// Space is the outbox's disk-space state, for the agent's metric and
// alarm.
type Space struct {
	// Full: a write failed for lack of space and new records are refused
	// (ErrFull) until space is back; delivery goes on.
	Full   bool      `json:"full"`
	Since  time.Time `json:"since,omitzero"`
	Reason string    `json:"reason,omitempty"`
	// Reserve: the delivery reserve is in place; Released counts the
	// times it was given up to let delivery write.
	Reserve  bool  `json:"reserve"`
	Released int64 `json:"released"`
	// Refused counts records refused for lack of space since the start.
	Refused int64 `json:"refused"`
}

// isNoSpace reports whether err is a write failing for lack of space:
// the disk (or quota) is full, or the file reached MaxFileSize.
func isNoSpace(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, berrors.ErrMaxSizeReached) {
		return true
	}
	for _, e := range noSpaceErrnos() {
		// bbolt formats some write errors with %s, which drops the errno:
		// its text is matched too.
		if errors.Is(err, e) || strings.Contains(err.Error(), e.Error()) {
			return true
		}
	}
	return false
}

func (q *Queue) reserveSize() int {
	switch {
	case q.o.ReadOnly || q.o.Reserve < 0:
		return 0
	case q.o.Reserve > 0:
		return q.o.Reserve
	case q.o.MaxFileSize > 0:
		return min(1<<20, q.o.MaxFileSize/8)
	}
	return 1 << 20
}

// makeReserve writes the reserve if it is missing and reports whether it
// is in place. Writing it means the file has room again: a full state
// ends.
func (q *Queue) makeReserve() bool {
	size := q.reserveSize()
	if size == 0 {
		return false
	}
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	var exists bool
	_ = q.db.View(func(tx *bolt.Tx) error { exists = tx.Bucket(bucketReserve) != nil; return nil })
	var err error
	if !exists {
		err = q.update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket(bucketReserve)
			if err != nil {
				return err
			}
			b.FillPercent = 1.0
			chunk := make([]byte, 1024)
			_, _ = rand.Read(chunk) // incompressible: it really holds the space
			for i := 0; i*len(chunk) < size; i++ {
				if err := b.Put(binary.BigEndian.AppendUint32(nil, uint32(i)), chunk); err != nil {
					return err
				}
			}
			return nil
		})
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if err != nil {
		if isNoSpace(err) {
			q.noSpaceLocked(err)
		}
		q.o.Log.Debug().Err(err).Msg("outbox: cannot write the delivery reserve yet")
		return false
	}
	q.space.reserve = true
	if q.space.full {
		q.space.full = false
		q.o.Log.Info().Msg("outbox: space is back, the delivery reserve is in place again; new records are accepted")
	}
	return true
}

// releaseReserve deletes the reserve so that delivery can write; it
// reports whether it did.
func (q *Queue) releaseReserve() bool {
	q.mu.Lock()
	had := q.space.reserve
	q.mu.Unlock()
	if !had {
		return false
	}
	q.dbMu.RLock()
	err := q.update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketReserve) })
	q.dbMu.RUnlock()
	if err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		q.o.Log.Error().Err(err).Msg("outbox: disk full and the delivery reserve cannot be released; delivery waits for space")
		return false
	}
	q.mu.Lock()
	q.space.reserve, q.space.lastTry = false, time.Now()
	q.space.released++
	q.mu.Unlock()
	q.o.Log.Warn().Msg("outbox: disk full; the delivery reserve is released so that delivery goes on and frees space; new records are refused")
	return true
}

// restoreReserve rewrites a released reserve, at most once a second.
func (q *Queue) restoreReserve() {
	q.mu.Lock()
	try := !q.space.reserve && q.reserveSize() > 0 && time.Since(q.space.lastTry) >= time.Second
	if try {
		q.space.lastTry = time.Now()
	}
	q.mu.Unlock()
	if try {
		q.makeReserve()
	}
}

func (q *Queue) noSpaceLocked(err error) {
	if !q.space.full {
		q.space.full, q.space.since, q.space.lastTry = true, q.o.Now(), time.Now()
		q.o.Log.Error().Err(err).Msg("outbox: no space left; new records are refused until space is back, delivery goes on")
	}
	q.space.cause = err
}

func (q *Queue) noSpace(err error) {
	q.mu.Lock()
	q.noSpaceLocked(err)
	q.mu.Unlock()
}

// spaceRetry runs a delivery write; when it fails for lack of space, it
// releases the reserve and runs it once more.
func (q *Queue) spaceRetry(write func() error) error {
	err := write()
	if !isNoSpace(err) {
		return err
	}
	q.noSpace(err)
	if q.releaseReserve() {
		err = write()
	}
	return err
}

// admit says whether the committer may try to write a batch of n
// records: while the disk is full it refuses at once, except for one
// attempt a second (after rewriting the reserve, which must come first).
func (q *Queue) admit(n int) error {
	q.mu.Lock()
	sp := &q.space
	if !sp.full {
		q.mu.Unlock()
		return nil
	}
	probe := time.Since(sp.lastTry) >= time.Second
	if probe {
		sp.lastTry = time.Now()
	}
	needReserve, cause := !sp.reserve && q.reserveSize() > 0, sp.cause
	q.mu.Unlock()
	if probe && (!needReserve || q.makeReserve()) {
		return nil
	}
	return q.refuse(n, cause)
}

// refuse counts n records refused for lack of space and returns the
// error their producers get.
func (q *Queue) refuse(n int, cause error) error {
	q.mu.Lock()
	q.space.refused += int64(n)
	q.mu.Unlock()
	if cause == nil {
		return fmt.Errorf("%w: no space for the outbox", ErrFull)
	}
	return fmt.Errorf("%w: no space for the outbox: %w", ErrFull, cause)
}

// commitFailed turns a failed enqueue transaction into its producers'
// error.
func (q *Queue) commitFailed(err error, n int) error {
	if isNoSpace(err) {
		q.noSpace(err)
		return q.refuse(n, err)
	}
	q.o.Log.Error().Err(err).Int("records", n).Msg("outbox commit failed; records refused")
	return fmt.Errorf("%w: cannot write the outbox: %w", ErrFull, err)
}

// wrote records a successful enqueue: if the outbox was full, space is
// back.
func (q *Queue) wrote() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.space.full {
		q.space.full = false
		q.o.Log.Info().Msg("outbox: space is back; new records are accepted")
	}
}

func (q *Queue) spaceStats() Space {
	q.mu.Lock()
	defer q.mu.Unlock()
	sp := q.space
	s := Space{Full: sp.full, Reserve: sp.reserve, Released: sp.released, Refused: sp.refused}
	if sp.full {
		s.Since = sp.since
		if sp.cause != nil {
			s.Reason = sp.cause.Error()
		}
	}
	return s
}
