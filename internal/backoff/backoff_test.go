package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		attempt int
		base    time.Duration
	}{
		{0, 100 * time.Millisecond}, {1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond}, {5, time.Second}, {60, time.Second}, {1 << 20, time.Second},
	}
	for _, tt := range tests {
		if got := p.Base(tt.attempt); got != tt.base {
			t.Errorf("Base(%d) = %v, want %v", tt.attempt, got, tt.base)
		}
		for range 100 {
			if d := p.Delay(tt.attempt); d < tt.base/2 || d > tt.base {
				t.Fatalf("Delay(%d) = %v, outside [%v, %v]", tt.attempt, d, tt.base/2, tt.base)
			}
		}
	}
	if d := (Policy{Min: time.Second}).Base(20); d != time.Second<<19 {
		t.Errorf("uncapped Base(20) = %v", d)
	}
	if d := (Policy{Min: time.Second}).Base(1000); d <= 0 {
		t.Errorf("uncapped Base(1000) overflowed: %v", d)
	}
	if d := (Policy{}).Delay(3); d != 0 {
		t.Errorf("zero policy: %v", d)
	}
}

func TestSleepStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("Sleep = %v", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
}
