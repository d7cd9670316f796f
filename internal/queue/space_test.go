package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// persistedSender checks, for every attempt, that the requestId it is sent
// with is already on disk (as the next attempt's, or kept after an unknown
// outcome) before it is sent.
type persistedSender struct {
	q    *Queue
	mu   sync.Mutex
	sent map[string]int
	bad  []string
}

func (s *persistedSender) Send(ctx context.Context, kind string, payload []byte, rid string) Verdict {
	recs, err := s.q.List(false, 0)
	ok := false
	for _, r := range recs {
		if bytes.Equal(r.Payload, payload) {
			ok = r.RequestID == rid && (r.Unknown || r.next)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		s.bad = append(s.bad, fmt.Sprintf("%.10s sent with requestId %s not on disk (%v)", payload, rid, err))
	}
	s.sent[string(payload)]++
	return Verdict{Outcome: Delivered}
}

// fillUntilFull enqueues distinct records until the outbox refuses one;
// it returns how many were stored.
func fillUntilFull(t *testing.T, q *Queue, size int) int {
	t.Helper()
	pad := bytes.Repeat([]byte("p"), size)
	for i := 0; i < 100000; i++ {
		_, err := q.Enqueue(context.Background(), "report", append([]byte(fmt.Sprintf("f-%05d-", i)), pad...))
		if errors.Is(err, ErrFull) {
			return i
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the outbox never filled up")
	return 0
}

// drainWhileFull checks the full-disk behaviour on an outbox that has
// just refused a record: enqueue keeps failing fast, delivery drains every
// record once with its requestId on disk before each send, and once the
// backlog is gone new records are accepted again.
func drainWhileFull(t *testing.T, q *Queue, stored int) {
	t.Helper()
	start := time.Now()
	for i := 0; i < 50; i++ {
		if _, err := q.Enqueue(context.Background(), "report", []byte("refused")); !errors.Is(err, ErrFull) {
			t.Fatalf("enqueue on a full disk: %v, want ErrFull", err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("50 refusals took %v", d)
	}
	if sp := q.Stats().Space; !sp.Full || sp.Refused < 50 || sp.Reason == "" || sp.Since.IsZero() {
		t.Fatalf("space state while full: %+v", sp)
	}
	s := &persistedSender{q: q, sent: map[string]int{}}
	stop := run(t, q, s)
	defer stop()
	waitFor(t, "drain while the disk is full", func() bool { return q.Stats().Depth() == 0 })
	s.mu.Lock()
	if len(s.bad) > 0 || len(s.sent) != stored {
		t.Fatalf("sent %d distinct records of %d; %v", len(s.sent), stored, s.bad)
	}
	for p, n := range s.sent {
		if n != 1 {
			t.Fatalf("%.10s sent %d times", p, n)
		}
	}
	s.mu.Unlock()
	waitFor(t, "new records accepted once the backlog is gone", func() bool {
		_, err := q.Enqueue(context.Background(), "report", []byte("after the drain"))
		return err == nil
	})
	if sp := q.Stats().Space; sp.Full || !sp.Reserve {
		t.Fatalf("space state after the drain: %+v", sp)
	}
	t.Logf("%d records stored, drained while full; %+v", stored, q.Stats().Space)
}

func TestDiskFullDeliveryDrains(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), func(o *Options) { o.MaxFileSize = 256 << 10 })
	defer q.Close()
	stored := fillUntilFull(t, q, 2000)
	if stored == 0 {
		t.Fatal("nothing stored")
	}
	drainWhileFull(t, q, stored)
}

// The same on a real file system that runs out of space: a 2 MiB tmpfs
// (root only; skipped where mounting is not permitted).
func TestDiskFullTmpfs(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("needs root on Linux to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	q := open(t, filepath.Join(dir, "q.db"), nil)
	defer q.Close()
	stored := fillUntilFull(t, q, 2000)
	if stored == 0 {
		t.Fatal("nothing stored")
	}
	drainWhileFull(t, q, stored)
}

// With the file full to its last free page, delivery cannot even settle
// an answer: the settler gives up the reserve and settles it; delivery
// drains, and the reserve comes back.
func TestDiskFullReserveRescuesDelivery(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), func(o *Options) { o.MaxFileSize = 256 << 10; o.Concurrency = 4 })
	defer q.Close()
	stored := fillUntilFull(t, q, 2000)
	// Take every page left with small records, trying at once each time
	// rather than once a second.
	for fails := 0; fails < 20; {
		q.mu.Lock()
		q.space.lastTry = time.Time{}
		q.mu.Unlock()
		if _, err := q.Enqueue(context.Background(), "report", []byte(fmt.Sprintf("f-small-%03d", stored))); err != nil {
			fails++
			continue
		}
		stored++
	}
	// Settling needs fewer pages than storing (a delivered record is only
	// deleted), so take the pages a refused record leaves too.
	takeLastPages(t, q)
	recs, _, _ := q.due("report", 1)
	delivered := []Verdict{{Outcome: Delivered}}
	if q.settle("report", recs, delivered) == nil {
		t.Fatal("settling a record still finds free pages: the file is not full")
	}
	// The settler's first write (which records a batch holds depends on
	// timing, and so how many pages it needs: settled here directly).
	st := &settler{q: q}
	if left := st.settle([]settleItem{{rec: recs[0], v: delivered[0]}}); len(left) != 0 {
		t.Fatal("the settler could not settle with the reserve released")
	}
	if sp := q.Stats().Space; sp.Released != 1 || !sp.Full {
		t.Fatalf("the reserve was not released: %+v", sp)
	}
	drainWhileFull(t, q, stored-1)
}

// takeLastPages writes filler into the file until not even one byte more
// fits.
func takeLastPages(t *testing.T, q *Queue) {
	t.Helper()
	n := 0
	for _, size := range []int{4096, 1024, 256, 64, 16, 1} {
		for {
			err := q.db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("filler"))
				if err != nil {
					return err
				}
				return b.Put([]byte(fmt.Sprintf("%08d", n)), make([]byte, size))
			})
			if err != nil {
				break
			}
			n++
		}
	}
}

// spaceRetry gives up the reserve when a delivery write finds no space and
// tries once more; the reserve is rewritten later.
func TestSpaceRetryReleasesTheReserve(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), nil)
	defer q.Close()
	calls := 0
	err := q.spaceRetry(func() error {
		if calls++; calls == 1 {
			return fmt.Errorf("write: %w", syscall.ENOSPC)
		}
		return nil
	})
	if sp := q.Stats().Space; err != nil || calls != 2 || !sp.Full || sp.Reserve || sp.Released != 1 {
		t.Fatalf("err %v after %d calls; %+v", err, calls, sp)
	}
	if _, err := q.Enqueue(context.Background(), "report", []byte("x")); !errors.Is(err, ErrFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("enqueue while full: %v", err)
	}
	q.mu.Lock()
	q.space.lastTry = time.Time{}
	q.mu.Unlock()
	q.restoreReserve()
	if sp := q.Stats().Space; sp.Full || !sp.Reserve {
		t.Fatalf("after restoring: %+v", sp)
	}
}
