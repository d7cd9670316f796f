package queue

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// Helpers shared by the package's tests: a fake Sender, opening a queue
// with test options, running delivery, waiting for a condition.

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

// Every outcome has its own metric label; an unset one is "unknown".
func TestOutcomeNames(t *testing.T) {
	seen := map[string]bool{}
	for o := Delivered; o <= Pause; o++ {
		name := o.String()
		if name == "unknown" || seen[name] {
			t.Errorf("outcome %d named %q", int(o), name)
		}
		seen[name] = true
	}
	if got := Outcome(0).String(); got != "unknown" {
		t.Errorf("Outcome(0) = %q, want unknown", got)
	}
}
