package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"scanagent/internal/card"
	"scanagent/test/fakeplatform/platform"
)

// attempts records what EHCOptions.Observe is told.
type attempts struct {
	mu   sync.Mutex
	got  []string
	took map[string]time.Duration
}

func (a *attempts) observe(api, result string, d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := api + " " + result
	a.got = append(a.got, s)
	a.took[s] = max(a.took[s], d)
}

// take returns the attempts seen since the last take.
func (a *attempts) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	got := a.got
	a.got = nil
	return got
}

// Observe is told every HTTP attempt of the direct client, once, with the
// API, the result's class and the attempt's duration; a call the gate
// refuses makes no attempt.
func TestObservePlatformAttempts(t *testing.T) {
	e := newEnv(t)
	rec := &attempts{took: map[string]time.Duration{}}
	o := e.ehcOptions()
	o.Observe = rec.observe
	// The fake platform's clock plus real elapsed time: durations are real,
	// timestamps stay within the platform's window.
	base, t0 := e.clock.Now(), time.Now()
	o.Now = func() time.Time { return base.Add(time.Since(t0)) }
	c := NewEHC(o)
	ctx := context.Background()
	cards := platform.BuiltinCards()
	static := card.Request{Kind: card.KindEHCStatic, Text: cards[1].QRCodeText}
	want := func(step string, want ...string) {
		t.Helper()
		if got := rec.take(); !slices.Equal(got, want) {
			t.Fatalf("%s: attempts = %q, want %q", step, got, want)
		}
	}

	e.fake.SetFaults(platform.Faults{APIs: []string{APIGetHealthCardByQRCode}, Latency: platform.Duration(30 * time.Millisecond), Count: 1})
	if _, err := c.Verify(ctx, static); err != nil {
		t.Fatal(err)
	}
	want("first call", "getAppToken ok", "getHealthCardByQRCode ok")
	if d := rec.took["getHealthCardByQRCode ok"]; d < 30*time.Millisecond || d > 5*time.Second {
		t.Fatalf("observed %v for an answer delayed 30ms", d)
	}

	_, err := c.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: strings.Repeat("A", 64) + ":1"})
	wantClass(t, err, card.Rejected, -10019)
	want("unknown card", "getHealthCardByQRCode rejected")

	e.fake.SetFaults(platform.Faults{APIs: []string{APIGetHealthCardByQRCode}, ResultCode: 21003, Count: 1})
	if _, err := c.Verify(ctx, static); err != nil {
		t.Fatal(err)
	}
	want("token rejected", "getHealthCardByQRCode token_expired", "getAppToken ok", "getHealthCardByQRCode ok")

	e.fake.SetFaults(platform.Faults{APIs: []string{APIGetHealthCardByQRCode}, Status: 502, Count: 2})
	if _, err := c.Verify(ctx, static); !card.IsUnavailable(err) {
		t.Fatalf("err = %v, want unavailable", err)
	}
	want("platform fault, retried once", "getHealthCardByQRCode retryable", "getHealthCardByQRCode retryable")

	e.fake.SetFaults(platform.Faults{APIs: []string{APIReportHISData}, ResultCode: 10034, Count: 1})
	r := card.Report{QRCodeText: cards[0].QRCodeText, Time: "2026-11-23 18:00:00", Scene: "010101", CardType: "11", CardChannel: "0100"}
	wantClass(t, c.ReportHISData(ctx, r, ""), card.RateLimited, 10034)
	want("rate limited", "reportHISData rate_limited")
	wantClass(t, c.ReportHISData(ctx, r, ""), card.RateLimited, 0)
	want("paused API: no attempt")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Verify(cctx, static); err == nil {
		t.Fatal("cancelled call succeeded")
	}
	want("caller gave up", "getHealthCardByQRCode canceled")
}

// attemptResult names every class by its String, nil "ok", a caller's
// cancellation "canceled", and a platform timeout by its class.
func TestAttemptResult(t *testing.T) {
	for err, want := range map[error]string{
		nil:                                   "ok",
		context.Canceled:                      "canceled",
		fmt.Errorf("x: %w", context.Canceled): "canceled",
		&card.Error{Class: card.Retryable, Err: context.DeadlineExceeded}: "retryable",
		&card.Error{Class: card.RateLimited}:                              "rate_limited",
		&card.Error{Class: card.Fatal}:                                    "fatal",
	} {
		if got := attemptResult(err); got != want {
			t.Errorf("attemptResult(%v) = %q, want %q", err, got, want)
		}
	}
}
