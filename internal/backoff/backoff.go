// Package backoff is scanagent's one retry delay: exponential from a
// minimum, doubling with each attempt, capped at a maximum, with "equal
// jitter" (half of the delay fixed, half random) so that terminals that
// lost the platform together do not come back in step. The outbox computes
// it from a record's persisted attempt count; loops that retry in memory
// (HIS push, scanner reconnects, platform calls) count their own attempts.
package backoff

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Policy is a retry delay schedule.
type Policy struct {
	// Min is the delay before the first retry; Max caps the doubling
	// (0: no cap).
	Min, Max time.Duration
}

// Delay returns the wait before retry number attempt (1 for the first
// retry): Min·2^(attempt-1), capped at Max, of which the upper half is
// random.
func (p Policy) Delay(attempt int) time.Duration {
	d := p.Base(attempt)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Base returns the delay before retry number attempt without jitter.
func (p Policy) Base(attempt int) time.Duration {
	d := p.Min
	for i := 1; i < attempt && (p.Max <= 0 || d < p.Max) && d < math.MaxInt64/2; i++ {
		d *= 2
	}
	if p.Max > 0 && d > p.Max {
		d = p.Max
	}
	return d
}

// Sleep waits for d, or until ctx ends, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
