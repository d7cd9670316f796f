package agent

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/code"
	"scanagent/internal/config"
	"scanagent/internal/scanner"
	"scanagent/internal/visit"
)

// stuckSource ignores cancellation, like a driver blocked in a read, and
// keeps emitting until released.
type stuckSource struct {
	release chan struct{}
	emitted atomic.Int64
}

func (s *stuckSource) Name() string { return "stuck" }
func (s *stuckSource) Run(_ context.Context, emit func(card.Scan)) error {
	for {
		select {
		case <-s.release:
			return nil
		case <-time.After(5 * time.Millisecond):
			emit(card.Scan{Data: []byte("432901198810228888"), Source: "stuck", At: time.Now()})
			s.emitted.Add(1)
		}
	}
}

// A scanner that misses the shutdown deadline is named in run's error, and
// what it emits afterwards is dropped, not sent into a closed pipeline.
func TestStopNamesAbandonedScanner(t *testing.T) {
	parser, _ := code.NewParser(code.Options{})
	src := &stuckSource{release: make(chan struct{})}
	cfg := config.Default()
	cfg.Agent.ShutdownTimeout = config.Duration(100 * time.Millisecond)
	var handled atomic.Int64
	a := &agent{cfg: cfg, log: zerolog.Nop(), sup: scanner.NewSupervisor(zerolog.Nop()), sources: []scanner.Source{src},
		pipe: visit.New(visit.Options{Parser: parser, Log: zerolog.Nop(), Sinks: map[string]*visit.SinkStats{}})}
	a.pipe.AddSink("count", sinkFunc(func(card.Visit) { handled.Add(1) }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	for src.emitted.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after the shutdown timeout")
	}
	if err == nil || !strings.Contains(err.Error(), "scanner stuck did not stop") {
		t.Fatalf("run = %v, want the stuck scanner named", err)
	}
	after := handled.Load()
	time.Sleep(50 * time.Millisecond) // the source keeps emitting: nothing may reach the pipeline
	close(src.release)
	if handled.Load() != after {
		t.Fatalf("the pipeline handled %d scans after run returned", handled.Load()-after)
	}
}

type sinkFunc func(card.Visit)

func (f sinkFunc) Deliver(_ context.Context, v card.Visit) error { f(v); return nil }
