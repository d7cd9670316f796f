package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// sender is a fake Sender built from a func; it records every attempt.
type sender struct {
	mu       sync.Mutex
	fn       func(kind string, payload []byte, rid string, n int) Verdict
	attempts []attempt
}

type attempt struct {
	kind, payload, rid string
}

func (s *sender) Send(ctx context.Context, kind string, payload []byte, rid string) Verdict {
	s.mu.Lock()
	n := len(s.attempts)
	s.attempts = append(s.attempts, attempt{kind, string(payload), rid})
	fn := s.fn
	s.mu.Unlock()
	if fn == nil {
		return Verdict{Outcome: Delivered}
	}
	return fn(kind, payload, rid, n)
}

func (s *sender) got() []attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]attempt(nil), s.attempts...)
}

func open(t testing.TB, path string, mut func(*Options)) *Queue {
	t.Helper()
	o := Options{Path: path, Concurrency: 2, RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, OpenTimeout: 200 * time.Millisecond, Log: zerolog.Nop()}
	if mut != nil {
		mut(&o)
	}
	q, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func run(t testing.TB, q *Queue, s Sender) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx, s); close(done) }()
	return func() { cancel(); <-done }
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	// Generous: the race detector on a busy machine slows draining 20,000
	// records to several seconds.
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeliverInOrderPerKind(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), func(o *Options) { o.Concurrency = 1 })
	defer q.Close()
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		kind := []string{"report", "bind"}[i%2]
		if _, err := q.Enqueue(ctx, kind, []byte(fmt.Sprintf("%s-%02d", kind, i))); err != nil {
			t.Fatal(err)
		}
	}
	if st := q.Stats(); st.Depth() != 50 || st.Pending["report"] != 25 || st.PendingBytes == 0 {
		t.Fatalf("stats %+v", st)
	}
	s := &sender{}
	stop := run(t, q, s)
	waitFor(t, "drain", func() bool { return q.Stats().Depth() == 0 })
	stop()
	last := map[string]string{}
	for _, a := range s.got() {
		if a.payload <= last[a.kind] {
			t.Fatalf("%s out of order: %s after %s", a.kind, a.payload, last[a.kind])
		}
		last[a.kind] = a.payload
		if len(a.rid) != 32 {
			t.Fatalf("requestId %q", a.rid)
		}
	}
	if st := q.Stats(); st.Delivered != 50 || st.PendingBytes != 0 {
		t.Fatalf("after drain %+v", st)
	}
}

func TestRequestIDRule(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), nil)
	defer q.Close()
	q.Enqueue(context.Background(), "report", []byte("r1"))
	// attempt 0: definite failure (fresh id) → attempt 1 gets a new id;
	// attempt 1: unknown outcome → attempt 2 must reuse it;
	// attempt 2: a fault answer to the replay does not resolve it → reuse;
	// attempt 3: 10054 to the replay: the record was delivered.
	s := &sender{fn: func(_ string, _ []byte, _ string, n int) Verdict {
		switch n {
		case 0, 2:
			return Verdict{Outcome: Retry, Reason: "platform fault -1"}
		case 1:
			return Verdict{Outcome: Retry, Unknown: true, Reason: "timeout"}
		}
		return Verdict{Outcome: Duplicate}
	}}
	stop := run(t, q, s)
	waitFor(t, "delivery", func() bool { return q.Stats().Depth() == 0 })
	stop()
	a := s.got()
	if len(a) != 4 || a[1].rid == a[0].rid || a[2].rid != a[1].rid || a[3].rid != a[1].rid {
		t.Fatalf("requestIds: %+v", a)
	}
	if st := q.Stats(); st.Delivered != 1 || st.Duplicates != 1 || st.Retries != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDuplicateOnFreshRequestIDIsRetried(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), nil)
	defer q.Close()
	q.Enqueue(context.Background(), "report", []byte("r1"))
	s := &sender{fn: func(_ string, _ []byte, _ string, n int) Verdict {
		if n == 0 {
			return Verdict{Outcome: Duplicate}
		}
		return Verdict{Outcome: Delivered}
	}}
	stop := run(t, q, s)
	waitFor(t, "delivery", func() bool { return q.Stats().Depth() == 0 })
	stop()
	if a := s.got(); len(a) != 2 || a[0].rid == a[1].rid {
		t.Fatalf("attempts %+v", a)
	}
}

func TestDeadLetterAndRetry(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), nil)
	defer q.Close()
	ctx := context.Background()
	q.Enqueue(ctx, "report", []byte("bad"))
	q.Enqueue(ctx, "report", []byte("good"))
	var refuse sync.Map
	refuse.Store("bad", true)
	s := &sender{fn: func(_ string, p []byte, _ string, _ int) Verdict {
		if _, ok := refuse.Load(string(p)); ok {
			return Verdict{Outcome: Dead, Reason: "platform error 10042 参数错误"}
		}
		return Verdict{Outcome: Delivered}
	}}
	stop := run(t, q, s)
	defer stop()
	waitFor(t, "dead letter", func() bool { st := q.Stats(); return st.Depth() == 0 && st.Dead == 1 })
	st := q.Stats()
	if st.DeadTotal != 1 || len(st.Alerts) != 1 || !strings.Contains(st.Alerts[0], "10042") {
		t.Fatalf("stats %+v", st)
	}
	dead, _ := q.List(true, 0)
	if len(dead) != 1 || string(dead[0].Payload) != "bad" || dead[0].LastError == "" || dead[0].DeadAt.IsZero() {
		t.Fatalf("dead %+v", dead)
	}
	refuse.Delete("bad")
	if n, err := q.RetryDead(); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	waitFor(t, "retried dead letter delivered", func() bool { st := q.Stats(); return st.Dead == 0 && st.Depth() == 0 && st.Delivered == 2 })
}

func TestPauseKeepsAccepting(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), nil)
	defer q.Close()
	ctx := context.Background()
	resume := time.Now().Add(400 * time.Millisecond)
	s := &sender{fn: func(_ string, _ []byte, _ string, n int) Verdict {
		if n == 0 {
			return Verdict{Outcome: Pause, RetryAfter: resume, Reason: "10034 daily limit"}
		}
		if time.Now().Before(resume) {
			return Verdict{Outcome: Dead, Reason: "sent during the pause"}
		}
		return Verdict{Outcome: Delivered}
	}}
	stop := run(t, q, s)
	defer stop()
	q.Enqueue(ctx, "report", []byte("a"))
	waitFor(t, "pause", func() bool { return len(q.Stats().PausedUntil) == 1 })
	for i := 0; i < 5; i++ {
		if _, err := q.Enqueue(ctx, "report", []byte{byte('b' + i)}); err != nil {
			t.Fatal("enqueue during pause:", err)
		}
	}
	waitFor(t, "drain after pause", func() bool { return q.Stats().Depth() == 0 })
	if st := q.Stats(); st.Dead != 0 || st.Delivered != 6 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBounds(t *testing.T) {
	ctx := context.Background()
	t.Run("reject", func(t *testing.T) {
		q := open(t, filepath.Join(t.TempDir(), "q.db"), func(o *Options) { o.MaxRecords = 3 })
		defer q.Close()
		for i := 0; i < 3; i++ {
			if _, err := q.Enqueue(ctx, "report", []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := q.Enqueue(ctx, "report", []byte("x")); !errors.Is(err, ErrFull) {
			t.Fatalf("err = %v, want ErrFull", err)
		}
		if q.Stats().Depth() != 3 {
			t.Fatal("depth changed")
		}
	})
	t.Run("bytes", func(t *testing.T) {
		q := open(t, filepath.Join(t.TempDir(), "q.db"), func(o *Options) { o.MaxBytes = 1000 })
		defer q.Close()
		var err error
		for i := 0; i < 20 && err == nil; i++ {
			_, err = q.Enqueue(ctx, "report", bytes.Repeat([]byte("x"), 100))
		}
		if !errors.Is(err, ErrFull) || q.Stats().PendingBytes > 1000 {
			t.Fatalf("err = %v, bytes %d", err, q.Stats().PendingBytes)
		}
	})
	t.Run("drop_oldest", func(t *testing.T) {
		q := open(t, filepath.Join(t.TempDir(), "q.db"), func(o *Options) { o.MaxRecords = 3; o.FullPolicy = "drop_oldest" })
		defer q.Close()
		for i := 0; i < 5; i++ {
			if _, err := q.Enqueue(ctx, []string{"report", "bind"}[i%2], []byte{byte('0' + i)}); err != nil {
				t.Fatal(err)
			}
		}
		recs, _ := q.List(false, 0)
		var got []string
		for _, r := range recs {
			got = append(got, string(r.Payload))
		}
		if st := q.Stats(); st.Depth() != 3 || st.Dropped != 2 || strings.Contains(strings.Join(got, ""), "0") || strings.Contains(strings.Join(got, ""), "1") {
			t.Fatalf("after drop_oldest: %v %+v", got, st)
		}
	})
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := open(t, path, nil)
	defer q.Close()
	start := time.Now()
	_, err := Open(Options{Path: path, OpenTimeout: 200 * time.Millisecond, Log: zerolog.Nop()})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q.db")
	junk := bytes.Repeat([]byte("not a bbolt file "), 4096)
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	q := open(t, path, nil)
	defer q.Close()
	if _, err := q.Enqueue(context.Background(), "report", []byte("x")); err != nil {
		t.Fatal(err)
	}
	st := q.Stats()
	if len(st.Alerts) != 1 || !strings.Contains(st.Alerts[0], "corrupt") {
		t.Fatalf("no alert: %+v", st)
	}
	matches, _ := filepath.Glob(path + ".corrupt-*")
	if len(matches) != 1 {
		t.Fatalf("corrupt file not kept aside: %v", matches)
	}
	if b, _ := os.ReadFile(matches[0]); !bytes.Equal(b, junk) {
		t.Fatal("moved-aside file altered")
	}
}

func TestEncryptionAtRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	key := bytes.Repeat([]byte{7}, 32)
	secret := []byte(`{"qrCodeText":"C7DA29345B6DF90A6F5BBEBD73EBE2ED:1","idCardNumber":"432901198810228888"}`)
	q := open(t, path, func(o *Options) { o.Key = key })
	q.Enqueue(context.Background(), "report", secret)
	q.Close()
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("432901198810228888")) || bytes.Contains(raw, []byte("C7DA29345B")) {
		t.Fatal("plaintext payload on disk")
	}
	q = open(t, path, func(o *Options) { o.Key = key })
	recs, _ := q.List(false, 0)
	q.Close()
	if len(recs) != 1 || !bytes.Equal(recs[0].Payload, secret) {
		t.Fatalf("decrypt: %+v", recs)
	}
	q = open(t, path, func(o *Options) { o.Key = bytes.Repeat([]byte{8}, 32) })
	defer q.Close()
	recs, _ = q.List(false, 0)
	if len(recs) != 1 || !strings.Contains(recs[0].LastError, "decrypted") {
		t.Fatalf("wrong key: %+v", recs)
	}
	if q.Stats().Depth() != 1 {
		t.Fatal("undecryptable record lost")
	}
}

func TestCompactionShrinksAfterDrain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := open(t, path, nil)
	defer q.Close()
	ctx := context.Background()
	payload := bytes.Repeat([]byte("p"), 400)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2500; i++ {
				q.Enqueue(ctx, "report", payload)
			}
		}()
	}
	wg.Wait()
	stop := run(t, q, &sender{})
	waitFor(t, "drain", func() bool { return q.Stats().Depth() == 0 })
	stop()
	before, after, err := q.Compact()
	if err != nil {
		t.Fatal(err)
	}
	if after >= before/2 {
		t.Fatalf("compaction %d → %d", before, after)
	}
	if _, err := q.Enqueue(ctx, "report", []byte("after")); err != nil {
		t.Fatal("enqueue after compaction:", err)
	}
	if st := q.Stats(); st.Depth() != 1 || st.Delivered != 20000 {
		t.Fatalf("counters after compaction: %+v", st)
	}
}

func TestGroupCommit(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), nil)
	defer q.Close()
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if _, err := q.Enqueue(context.Background(), "report", []byte("x")); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	q.mu.Lock()
	commits := q.commits
	q.mu.Unlock()
	if q.Stats().Depth() != 800 || commits >= 800 {
		t.Fatalf("800 records in %d commits: producers did not share commits", commits)
	}
	t.Logf("800 records from 16 producers in %d commits", commits)
}

func TestCloseCommitsHandedOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := open(t, path, nil)
	var wg sync.WaitGroup
	var accepted sync.Map
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				seq, err := q.Enqueue(context.Background(), "report", []byte("x"))
				if err == nil {
					accepted.Store(seq, true)
				} else if !errors.Is(err, ErrClosed) {
					t.Error(err)
				}
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	q.Close()
	wg.Wait()
	q = open(t, path, nil)
	defer q.Close()
	recs, _ := q.List(false, 0)
	n := 0
	accepted.Range(func(any, any) bool { n++; return true })
	if len(recs) != n {
		t.Fatalf("accepted %d, stored %d", n, len(recs))
	}
}

func TestRecordCodec(t *testing.T) {
	now := time.UnixMilli(1763900000123)
	for _, r := range []Record{
		{Kind: "report", Payload: []byte("{}"), Enqueued: now},
		{Kind: "bind", Payload: []byte("x"), Enqueued: now, Attempts: 3, RequestID: "DB4D975748A84309977EA25224C0F5CF", Unknown: true, NextAttempt: now.Add(time.Hour), LastError: "超时", DeadAt: now},
		{Kind: "k", RequestID: "odd-id"},
	} {
		got, err := unmarshal(r.marshal())
		if err != nil {
			t.Fatal(err)
		}
		got.Seq = r.Seq
		if fmt.Sprint(got) != fmt.Sprint(r) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, r)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add((&Record{Kind: "report", Payload: []byte("{}"), RequestID: "DB4D975748A84309977EA25224C0F5CF"}).marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := unmarshal(b)
		if err != nil {
			return
		}
		again, err := unmarshal(r.marshal())
		if err != nil || fmt.Sprint(again) != fmt.Sprint(r) {
			t.Fatalf("re-encode differs: %+v vs %+v (%v)", r, again, err)
		}
	})
}

// A full disk refuses new records with ErrFull and crashes nothing: what
// was stored stays (delivered or still queued), and once space returns
// everything drains. (space_test.go: delivery drains while it is full.)
func TestDiskFullIsRefusal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := open(t, path, func(o *Options) { o.MaxFileSize = 256 << 10 })
	ctx := context.Background()
	payload := bytes.Repeat([]byte("p"), 2000)
	var stored int
	var err error
	for i := 0; i < 1000; i++ {
		if _, err = q.Enqueue(ctx, "report", payload); err != nil {
			break
		}
		stored++
	}
	if !errors.Is(err, ErrFull) || stored == 0 || stored == 1000 {
		t.Fatalf("after %d records: err = %v, want ErrFull", stored, err)
	}
	s := &sender{}
	stop := run(t, q, s)
	time.Sleep(300 * time.Millisecond) // delivery goes on while the disk is full
	stop()
	if d := q.Stats().Depth(); d+int(q.Stats().Delivered) != stored {
		t.Fatalf("records lost while full: depth %d + delivered %d != %d", d, q.Stats().Delivered, stored)
	}
	q.Close()
	// Space is back.
	q = open(t, path, nil)
	defer q.Close()
	stop = run(t, q, s)
	waitFor(t, "drain", func() bool { return q.Stats().Depth() == 0 })
	stop()
	if q.Stats().Delivered != int64(stored) {
		t.Fatalf("delivered %d of %d", q.Stats().Delivered, stored)
	}
	if _, err := q.Enqueue(ctx, "report", payload); err != nil {
		t.Fatalf("after space returned: %v", err)
	}
}
