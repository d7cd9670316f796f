package scanner

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
)

type funcSource struct {
	name string
	run  func(ctx context.Context) error
}

func (f funcSource) Name() string                                     { return f.name }
func (f funcSource) Run(ctx context.Context, _ func(card.Scan)) error { return f.run(ctx) }

// Wait names the sources that did not return by the deadline, and only
// those.
func TestRunningWaitNamesStuckSources(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	polite := func(ctx context.Context) error { <-ctx.Done(); return nil }
	stuck := func(context.Context) error { <-release; return nil }
	sup := NewSupervisor(zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	r := sup.Start(ctx, []Source{funcSource{"a", polite}, funcSource{"z-stuck", stuck}, funcSource{"b-stuck", stuck}, funcSource{"c", polite}}, func(card.Scan) {})
	cancel()
	got := r.Wait(time.Now().Add(100 * time.Millisecond))
	if want := []string{"b-stuck", "z-stuck"}; !slices.Equal(got, want) {
		t.Fatalf("stuck %q, want %q", got, want)
	}
}
