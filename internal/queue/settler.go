package queue

import (
	"sync"
	"time"
)

// settler applies the verdicts of every lane in batches, one transaction
// each (a request to the committer, so records being stored may share
// it). A verdict never waits for a slow answer, only for company: a batch
// of paceBatch goes at once, and so does a verdict after a quiet spell
// (at low rates each verdict is its own transaction, right away); a
// smaller batch waits until paceEvery after the previous settle. That
// bounds settle transactions to a few hundred a second, however fast
// answers come: each costs the fsyncs and the CPU of a commit, which on a
// small machine the sending needs.
type settler struct {
	q     *Queue
	mu    sync.Mutex
	items []settleItem
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

// Settle pacing (see settler).
const (
	paceEvery = 5 * time.Millisecond
	paceBatch = 64
)

func (q *Queue) startSettler() *settler {
	s := &settler{q: q, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

// add hands a verdict over.
func (s *settler) add(it settleItem) {
	s.mu.Lock()
	s.items = append(s.items, it)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close settles what was handed over (one try) and stops the settler.
// Call it once the lanes have stopped.
func (s *settler) close() {
	close(s.stop)
	<-s.done
}

func (s *settler) loop() {
	defer close(s.done)
	// Verdicts left unsettled when it stops: their requestIds are on disk
	// and in Queue.sent, so a later attempt is a replay.
	defer s.final()
	var last time.Time // the end of the previous settle
	for {
		if s.count() == 0 {
			select {
			case <-s.wake:
				continue
			case <-s.stop:
				return
			}
		}
		if !s.pace(last) {
			return
		}
		items := s.take()
		left := s.settle(items)
		last = time.Now()
		if len(left) == 0 {
			continue
		}
		s.putBack(left)
		if len(left) == len(items) && !sleepStop(s.stop, time.Second) {
			return // a failed write: tried again a second later
		}
	}
}

// pace waits, while fewer than paceBatch verdicts wait, until
// paceEvery has passed since the previous settle (last); it reports
// false if the settler stops meanwhile.
func (s *settler) pace(last time.Time) bool {
	wait := paceEvery - time.Since(last)
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for s.count() < paceBatch {
		select {
		case <-t.C:
			return true
		case <-s.wake:
		case <-s.stop:
			return false
		}
	}
	return true
}

// final settles what is left, one try.
func (s *settler) final() {
	for {
		items := s.take()
		if len(items) == 0 {
			return
		}
		left := s.settle(items)
		if len(left) == len(items) {
			return
		}
		s.putBack(left)
	}
}

func (s *settler) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

func sleepStop(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}

// take takes the verdicts waiting, at most a transaction's worth (few
// while the disk is full, so that the transaction fits the reserve).
func (s *settler) take() []settleItem {
	limit := maxBatch
	s.q.mu.Lock()
	if s.q.space.full {
		limit = s.q.o.Concurrency
	}
	s.q.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(len(s.items), limit)
	items := s.items[:n:n]
	s.items = s.items[n:]
	if len(s.items) == 0 {
		s.items = nil
	}
	return items
}

func (s *settler) putBack(items []settleItem) {
	s.mu.Lock()
	s.items = append(append([]settleItem(nil), items...), s.items...)
	s.mu.Unlock()
}

// settle settles items in one transaction and returns those left
// unsettled. Short of space it releases the reserve, and if even that is
// not enough, settles the first alone: a one-record transaction needs the
// fewest pages, and a delivered record frees some.
func (s *settler) settle(items []settleItem) (left []settleItem) {
	q := s.q
	err := q.spaceRetry(func() error { return q.settleItems(items) })
	if isNoSpace(err) && len(items) > 1 {
		if q.settleItems(items[:1]) == nil {
			s.release(items[:1])
			return items[1:]
		}
	}
	if err != nil {
		writeFailed(q.o.Log, err).Int("records", len(items)).Msg("outbox settle failed; tried again")
		return items
	}
	s.release(items)
	q.restoreReserve()
	return nil
}

// release hands settled records back to their lanes.
func (s *settler) release(items []settleItem) {
	by := map[*lane][]Record{}
	for _, it := range items {
		if it.lane != nil {
			by[it.lane] = append(by[it.lane], it.rec)
		}
	}
	for l, recs := range by {
		l.release(recs...)
	}
}
