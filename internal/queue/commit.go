package queue

import (
	"runtime"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Group commit, leader/follower, without a timer. Every write of the hot
// path is a request to the committer: a record to store (Enqueue) or a
// delivery write (settling verdicts, settle.go; the rare requestId
// assignment, ids.go). A request that finds no commit running makes its
// own goroutine the leader: it commits at once. Requests arriving while a
// commit runs (its fsyncs) wait in line; when the commit ends the leader
// answers its batch and hands the lead to the first request in line,
// which, after letting the producers just answered rejoin (gather),
// commits everything in line, records and delivery writes together, in
// one transaction. With Options.BatchWindow > 0 a leader instead waits
// that long for company first (the behaviour before leader/follower).

// maxBatch bounds the requests of one transaction.
const maxBatch = 1024

// writeReq is one request to the committer: a record to store (kind, key,
// plain: the record encoded, not yet sealed) or a delivery write (apply,
// run inside the transaction, again if a failed one is retried; applied,
// run once it committed).
type writeReq struct {
	kind, key string
	plain     []byte
	apply     func(*bolt.Tx) error
	applied   func()
	done      chan writeRes
}

// writeRes answers a request: the record's sequence or an error, or the
// lead of the next commit.
type writeRes struct {
	seq  uint64
	err  error
	lead bool
}

// committer is the line of requests; leading says a leader is active.
type committer struct {
	mu      sync.Mutex
	line    []*writeReq
	leading bool
	closed  bool
	idle    *sync.Cond    // broadcast when a leader steps down with no line
	full    chan struct{} // the line reached maxBatch (ends BatchWindow)
}

func newCommitter() *committer {
	c := &committer{full: make(chan struct{}, 1)}
	c.idle = sync.NewCond(&c.mu)
	return c
}

// submit queues r and returns its answer once committed (or refused),
// leading commits if no one else does.
func (q *Queue) submit(r *writeReq) writeRes {
	c := q.cm
	r.done = make(chan writeRes, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return writeRes{err: ErrClosed}
	}
	c.line = append(c.line, r)
	lead := !c.leading
	c.leading = true
	if len(c.line) == maxBatch {
		select {
		case c.full <- struct{}{}:
		default:
		}
	}
	c.mu.Unlock()
	if !lead {
		if res := <-r.done; !res.lead {
			return res
		}
	}
	q.lead()
	return <-r.done
}

// write runs a delivery write through the committer.
func (q *Queue) write(apply func(*bolt.Tx) error, applied func()) error {
	return q.submit(&writeReq{apply: apply, applied: applied}).err
}

// lead commits the line (the leader's own request first in it), then
// hands the lead to the next request in line or steps down.
func (q *Queue) lead() {
	c := q.cm
	if w := q.o.BatchWindow; w > 0 {
		c.await(w)
	} else {
		c.gather()
	}
	c.mu.Lock()
	n := min(len(c.line), maxBatch)
	batch := c.line[:n:n]
	c.line = c.line[n:]
	c.mu.Unlock()
	q.commitBatch(batch)
	c.mu.Lock()
	if len(c.line) > 0 {
		c.line[0].done <- writeRes{lead: true}
	} else {
		c.leading = false
		c.line = nil
		c.idle.Broadcast()
	}
	c.mu.Unlock()
}

// gatherYields bounds the yields of gather.
const gatherYields = 4

// gather lets the producers just answered by the previous commit join
// this one, without a timer: the new leader yields its thread while the
// line keeps growing (they are runnable, it goes to the back of the run
// queue), at most gatherYields times. A lone producer yields once to no
// one and commits at once. Without it a steady set of producers splits
// into two halves that take turns, each commit carrying half of them.
func (c *committer) gather() {
	n := c.length()
	for range gatherYields {
		runtime.Gosched()
		m := c.length()
		if m == n {
			return
		}
		n = m
	}
}

// await waits out a batch window, or until the line is a full batch.
func (c *committer) await(w time.Duration) {
	select {
	case <-c.full: // left by an earlier leader
	default:
	}
	t := time.NewTimer(w)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.full:
	}
}

func (c *committer) length() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.line)
}

// stopCommits refuses new requests (ErrClosed) and waits until those in
// line are committed.
func (q *Queue) stopCommits() {
	c := q.cm
	c.mu.Lock()
	c.closed = true
	for c.leading {
		c.idle.Wait()
	}
	c.mu.Unlock()
}

// commitBatch commits a batch in one transaction and answers each
// request. While the disk is full, admit may refuse the records before
// anything is written. If a transaction of both records and delivery
// writes fails, each part is tried alone, delivery first (it frees
// space), so that the records' failure does not fail delivery.
func (q *Queue) commitBatch(batch []*writeReq) {
	var recs, dws []*writeReq
	for _, r := range batch {
		if r.apply != nil {
			dws = append(dws, r)
		} else {
			recs = append(recs, r)
		}
	}
	if len(recs) > 0 {
		if err := q.admit(len(recs)); err != nil {
			answer(recs, err)
			recs = nil
		}
	}
	if len(recs) > 0 && len(dws) > 0 && q.commitTx(recs, dws, false) {
		return
	}
	if len(dws) > 0 {
		q.commitTx(nil, dws, true)
	}
	if len(recs) > 0 {
		q.commitTx(recs, nil, true)
	}
}

// commitTx runs one transaction of recs and dws and, if it committed or
// final is set, answers them; it reports whether it committed.
func (q *Queue) commitTx(recs, dws []*writeReq, final bool) bool {
	var g *groupCommit
	if len(recs) > 0 {
		g = &groupCommit{q: q, batch: recs, res: make([]writeRes, len(recs)), now: q.o.Now()}
	}
	q.dbMu.RLock()
	err := q.update(func(tx *bolt.Tx) error {
		if g != nil {
			if err := g.store(tx); err != nil {
				return err
			}
		}
		for _, r := range dws {
			if err := r.apply(tx); err != nil {
				return err
			}
		}
		return nil
	})
	q.dbMu.RUnlock()
	switch {
	case err == nil:
		for _, r := range dws {
			if r.applied != nil {
				r.applied()
			}
			r.done <- writeRes{}
		}
		if g != nil {
			q.committed(g)
			for i, r := range recs {
				r.done <- g.res[i]
			}
		}
		return true
	case !final:
		return false
	}
	if g != nil {
		// Nothing of the transaction is stored (disk full, I/O error):
		// every producer hears so; the queue keeps running.
		answer(recs, q.commitFailed(err, len(recs)))
	}
	answer(dws, err)
	return false
}

func answer(reqs []*writeReq, err error) {
	for _, r := range reqs {
		r.done <- writeRes{err: err}
	}
}
