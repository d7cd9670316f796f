package queue

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// One record's answer never comes while it is blocked: every other record
// is sent, answered and settled meanwhile (the slow answer holds only its
// own worker, and settling does not wait for it); once it is answered, it
// is settled too. No timing: the slow send blocks on a channel.
func TestSlowAnswerHoldsOnlyItsWorker(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), func(o *Options) { o.Concurrency = 2 })
	defer q.Close()
	const n = 200
	for i := 0; i < n; i++ {
		if _, err := q.Enqueue(context.Background(), "report", []byte(fmt.Sprintf("r%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	blocked, release := make(chan struct{}), make(chan struct{})
	s := &sender{fn: func(_ string, p []byte, _ string, _ int) Verdict {
		if string(p) == "r003" {
			close(blocked)
			<-release
		}
		return Verdict{Outcome: Delivered}
	}}
	stop := run(t, q, s)
	defer stop()
	<-blocked
	waitFor(t, "every other record delivered while one answer is outstanding", func() bool {
		return q.Stats().Delivered == n-1
	})
	if recs, _ := q.List(false, 0); len(recs) != 1 || string(recs[0].Payload) != "r003" {
		t.Fatalf("pending while blocked: %+v", recs)
	}
	close(release)
	waitFor(t, "the slow record delivered", func() bool { return q.Stats().Depth() == 0 })
	if got := len(s.got()); got != n {
		t.Fatalf("%d attempts for %d records", got, n)
	}
}

// The same with the slow record's kind busy: a slow answer in one kind
// does not hold another kind either.
func TestSlowAnswerDoesNotHoldOtherKinds(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), func(o *Options) { o.Concurrency = 1 })
	defer q.Close()
	ctx := context.Background()
	q.Enqueue(ctx, "bind", []byte("slow"))
	for i := 0; i < 20; i++ {
		q.Enqueue(ctx, "report", []byte(fmt.Sprintf("r%02d", i)))
	}
	release := make(chan struct{})
	s := &sender{fn: func(kind string, _ []byte, _ string, _ int) Verdict {
		if kind == "bind" {
			<-release
		}
		return Verdict{Outcome: Delivered}
	}}
	stop := run(t, q, s)
	defer stop()
	waitFor(t, "reports delivered while the bind is outstanding", func() bool { return q.Stats().Pending["report"] == 0 })
	close(release)
	waitFor(t, "the bind delivered", func() bool { return q.Stats().Depth() == 0 })
}

// At low rates a delivered report costs two write transactions (two
// fsync'd commits) in its whole life: its enqueue, and the settle of its
// delivery. The requestId it is sent with was written by the enqueue.
func TestTwoWritesPerDeliveredReport(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), nil)
	defer q.Close()
	s := &diskCheckSender{q: q}
	stop := run(t, q, s)
	defer stop()
	for i := 1; i <= 20; i++ {
		before := q.writeCount()
		if _, err := q.Enqueue(context.Background(), "report", []byte(fmt.Sprintf("r%02d", i))); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "delivery", func() bool { return q.Stats().Delivered == int64(i) })
		if got := q.writeCount() - before; got != 2 {
			t.Fatalf("report %d: %d write transactions, want 2 (enqueue, settle)", i, got)
		}
	}
	s.check(t, 20)
}

// One write per attempt after the enqueue: an attempt answered with a
// definite fault is settled together with the next attempt's new
// requestId; an unknown outcome keeps it; each id is on disk before it is
// sent.
func TestOneWritePerAttempt(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), nil)
	defer q.Close()
	s := &diskCheckSender{q: q, verdicts: []Verdict{
		{Outcome: Retry, Reason: "platform fault -1"},
		{Outcome: Retry, Unknown: true, Reason: "timeout"},
		{Outcome: Duplicate},
	}}
	before := q.writeCount()
	q.Enqueue(context.Background(), "report", []byte("r1"))
	first, _ := q.List(false, 0)
	stop := run(t, q, s)
	defer stop()
	waitFor(t, "delivery", func() bool { return q.Stats().Delivered == 1 })
	stop()
	a := s.check(t, 3)
	if a[0] != first[0].RequestID || a[1] == a[0] || a[2] != a[1] {
		t.Fatalf("requestIds %v (stored at enqueue %s)", a, first[0].RequestID)
	}
	if got := q.writeCount() - before; got != 4 {
		t.Fatalf("%d write transactions for an enqueue and 3 attempts, want 4", got)
	}
	if st := q.Stats(); st.Duplicates != 1 || st.Retries != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// diskCheckSender answers with verdicts in turn (then Delivered) and
// checks, for every attempt, that the requestId it is sent with is the
// record's on disk, as the next attempt's or kept after an unknown
// outcome.
type diskCheckSender struct {
	q        *Queue
	verdicts []Verdict
	mu       sync.Mutex
	rids     []string
	bad      []string
}

func (s *diskCheckSender) Send(_ context.Context, _ string, payload []byte, rid string) Verdict {
	recs, err := s.q.List(false, 0)
	ok := false
	for _, r := range recs {
		if string(r.Payload) == string(payload) {
			ok = r.RequestID == rid && (r.next || r.Unknown)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		s.bad = append(s.bad, fmt.Sprintf("%s sent with requestId %s not on disk (%v)", payload, rid, err))
	}
	s.rids = append(s.rids, rid)
	if n := len(s.rids); n <= len(s.verdicts) {
		return s.verdicts[n-1]
	}
	return Verdict{Outcome: Delivered}
}

// check fails t unless there were n attempts, each with its requestId on
// disk; it returns their requestIds.
func (s *diskCheckSender) check(t *testing.T, n int) []string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bad) > 0 || len(s.rids) != n {
		t.Fatalf("%d attempts, want %d; %v", len(s.rids), n, s.bad)
	}
	return append([]string(nil), s.rids...)
}

// At full speed every record is sent exactly once: a record is never read
// again while its attempt is in flight or being settled (the read that
// would see it as it was before its attempt).
func TestEachRecordSentOnceAtFullSpeed(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), func(o *Options) { o.Concurrency = 4 })
	defer q.Close()
	const n = 5000
	var wg sync.WaitGroup
	for p := 0; p < 50; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += 50 {
				if _, err := q.Enqueue(context.Background(), "report", []byte(fmt.Sprintf("r%05d", i))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	s := &sender{}
	stop := run(t, q, s)
	waitFor(t, "drain", func() bool { return q.Stats().Depth() == 0 })
	stop()
	seen := map[string]bool{}
	for _, a := range s.got() {
		if seen[a.payload] {
			t.Fatalf("%s sent twice", a.payload)
		}
		seen[a.payload] = true
	}
	if len(seen) != n || q.Stats().Delivered != n {
		t.Fatalf("%d records sent, %d delivered, of %d", len(seen), q.Stats().Delivered, n)
	}
}
