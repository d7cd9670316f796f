package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Drain benchmarks: b.N queued reports delivered with the shipped options
// to an in-process sender that answers at once (BenchmarkDrainClean), or
// that lets the first attempt of every 50th report (2%) run into its
// timeout (BenchmarkDrainSlow): the answer comes after drainTimeout, the
// outcome is unknown, and the retry gets 10054, i.e. delivered. Both
// print records/s; scripts/bench.sh divides them (goal: slow within 1.5x
// of clean).
//
// What no worker model removes, and so what bounds the ratio: each slow
// answer holds its worker for the timeout (N x 2% x timeout /
// Concurrency of worker time in all), and a timed-out record is retried
// only after the backoff. With the shipped retry_min of 1 s the backoff
// alone would outlast a clean drain of 20,000 records (about 0.3 s), so
// BenchmarkDrainSlow waits drainRetryMin instead; with a 1 ms timeout the
// slow answers hold about 0.1 s of the 4 workers' time per 20,000
// records. SCANAGENT_DRAIN_TIMEOUT and SCANAGENT_DRAIN_RETRY_MIN (Go
// durations) change both, to see the bound move.
var (
	drainTimeout  = envDuration("SCANAGENT_DRAIN_TIMEOUT", time.Millisecond)
	drainRetryMin = envDuration("SCANAGENT_DRAIN_RETRY_MIN", 10*time.Millisecond)
)

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

func BenchmarkDrainClean(b *testing.B) { benchDrain(b, 0) }

func BenchmarkDrainSlow(b *testing.B) { benchDrain(b, 50) }

func benchDrain(b *testing.B, slowEvery int) {
	o := shippedOptions(filepath.Join(b.TempDir(), "q.db"))
	o.RetryMin = drainRetryMin
	q, err := Open(o)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	fill(b, q, b.N)
	s := &drainSender{slowEvery: slowEvery, seen: map[string]bool{}}
	b.ResetTimer()
	start := time.Now()
	stop := run(b, q, s)
	for q.depth() > 0 {
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	b.StopTimer()
	stop()
	if st := q.Stats(); st.Delivered != int64(b.N) {
		b.Fatalf("delivered %d of %d", st.Delivered, b.N)
	}
	b.ReportMetric(float64(b.N)/took.Seconds(), "records/s")
	b.ReportMetric(float64(q.writeCount())/float64(b.N), "writes/record")
}

// fill queues n reports (64 producers, so that it is quick).
func fill(b *testing.B, q *Queue, n int) {
	var wg sync.WaitGroup
	for p := 0; p < 64; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += 64 {
				if _, err := q.Enqueue(context.Background(), "report", fmt.Appendf(nil, "%08d%s", i, benchPayload)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// depth is the number of records pending (cheaper than Stats).
func (q *Queue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, _ := q.totalLocked()
	return n
}

// drainSender answers at once, except the first attempt of every
// slowEvery-th report (by its number): that one times out.
type drainSender struct {
	slowEvery int
	mu        sync.Mutex
	seen      map[string]bool // requestIds processed
}

func (s *drainSender) Send(_ context.Context, _ string, payload []byte, rid string) Verdict {
	s.mu.Lock()
	dup := s.seen[rid]
	s.seen[rid] = true
	s.mu.Unlock()
	if dup {
		return Verdict{Outcome: Duplicate}
	}
	var n int
	fmt.Sscanf(string(payload[:8]), "%d", &n)
	if s.slowEvery > 0 && n%s.slowEvery == 0 {
		time.Sleep(drainTimeout) // processed, but the answer comes too late
		return Verdict{Outcome: Retry, Unknown: true, Reason: "timeout"}
	}
	return Verdict{Outcome: Delivered}
}
