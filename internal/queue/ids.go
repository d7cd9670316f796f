package queue

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// RequestIds (SPEC §4) without a write before each send. The requestId an
// attempt is sent with is always the one already on disk:
//   - a new record gets its first requestId in the enqueue transaction;
//   - an attempt with a definite answer that leaves the record queued (a
//     fault, a rate limit, 10054 on a fresh id) gets the next attempt's
//     new requestId in the transaction that settles it (settle.go);
//   - an attempt whose outcome is unknown keeps its requestId (Unknown)
//     until the platform accepts it, answers 10054 or refuses it.
//
// So a crash mid-send leaves the id that was sent on disk, and the attempt
// after the restart sends it again. A report costs two write transactions
// at low rates: its enqueue and the settle of its delivery.
//
// What such a write does not record is whether the id has been sent. An
// attempt counts as a possible repeat (reused: 10054 then means the report
// was delivered, where on a fresh id it means a collision and the record
// is tried again with a new id) when its id is Unknown, when it was
// assigned by an earlier process (which may have sent it and died before
// settling; ids carry the assigning process's random 48-bit prefix), or
// when this process sent it and could not settle the answer (Queue.sent).
// Otherwise this process assigned the id and has not sent it: fresh.

// newRequestID returns a requestId for the next attempt: a UUIDv4 (32
// uppercase hex digits) whose first 48 bits are this process's prefix.
func (q *Queue) newRequestID() string {
	var b [16]byte
	copy(b[:], q.idPrefix[:])
	_, _ = rand.Read(b[len(q.idPrefix):])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var h [32]byte
	for i, c := range b {
		h[2*i], h[2*i+1] = upperHex[c>>4], upperHex[c&0x0f]
	}
	return string(h[:])
}

const upperHex = "0123456789ABCDEF"

// rawID returns the 16 bytes of a requestId of 32 uppercase hex digits
// (every requestId the outbox makes): the record stores those.
func rawID(s string) (b [16]byte, ok bool) {
	if len(s) != 32 {
		return b, false
	}
	for i := 0; i < 32; i++ {
		c := s[i]
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return b, false
		}
		b[i/2] |= v << (4 * (1 - i%2))
	}
	return b, true
}

// newIDPrefix draws the process's requestId prefix.
func newIDPrefix() (p [6]byte, hexp string) {
	_, _ = rand.Read(p[:])
	return p, strings.ToUpper(hex.EncodeToString(p[:]))
}

// assignID gives r a new requestId for its next attempt.
func (q *Queue) assignID(r *Record) {
	r.RequestID, r.next, r.Unknown = q.newRequestID(), true, false
}

// ready reports whether r can be sent with its stored requestId, and sets
// r.reused; a record from a file of an earlier version, or a revived dead
// letter, has none it may use and needs one written first (prepare).
func (q *Queue) ready(r *Record) bool {
	switch {
	case r.RequestID == "" || !r.Unknown && !r.next:
		return false
	case r.Unknown || !strings.HasPrefix(r.RequestID, q.idPrefixHex):
		r.reused = true
	default:
		q.mu.Lock()
		r.reused = q.sent[r.Seq] == r.RequestID
		q.mu.Unlock()
	}
	return true
}

// prepare makes recs ready to send: a record without a usable requestId
// gets one, committed (one transaction for all) before prepare returns;
// every record's reused is set. recs are changed only once committed; a
// record gone from the file meanwhile (dropped, purged) is left without
// one, and the caller skips it (sendable).
func (q *Queue) prepare(kind string, recs []Record) error {
	var need []int
	for i := range recs {
		if !q.ready(&recs[i]) {
			need = append(need, i)
		}
	}
	if len(need) == 0 {
		return nil
	}
	marked := make([]Record, len(need))
	var delta int64
	err := q.write(func(tx *bolt.Tx) error {
		delta = 0
		b := tx.Bucket([]byte(kindPrefix + kind))
		for j, i := range need {
			marked[j] = recs[i]
			r := &marked[j]
			old := b.Get(seqKey(r.Seq))
			if old == nil {
				continue // not resurrected
			}
			q.assignID(r)
			n, err := q.put(b, r)
			if err != nil {
				return err
			}
			delta += n - int64(len(old)+8)
		}
		return adjust(tx.Bucket(bucketMeta), kind, 0, delta)
	}, func() {
		q.mu.Lock()
		q.bytes[kind] += delta
		q.mu.Unlock()
	})
	if err != nil {
		return err
	}
	for j, i := range need {
		recs[i] = marked[j]
		recs[i].reused = false
	}
	return nil
}

// sending notes that the attempt of r is about to be sent; settled
// forgets it once the answer is committed.
func (q *Queue) sending(r *Record) {
	q.mu.Lock()
	q.sent[r.Seq] = r.RequestID
	q.mu.Unlock()
}

// sendable reports whether r, after prepare, has a requestId to send.
func sendable(r *Record) bool { return r.RequestID != "" && (r.Unknown || r.next) }
