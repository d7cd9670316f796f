package queue

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

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
