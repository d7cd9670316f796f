package verify

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"scanagent/internal/card"
)

// However the half-open trial ends, the breaker lets a call through again
// once its cooldown is over: the trial is never held forever.
func TestGateTrialEnds(t *testing.T) {
	fault := &card.Error{Class: card.Retryable, Unavailable: true}
	tests := []struct {
		name     string
		end      func(p *pass)
		wantOpen bool // refused until the next cooldown ends
	}{
		{"success closes", func(p *pass) { p.record(nil) }, false},
		{"fault reopens", func(p *pass) { p.record(fault) }, true},
		{"release frees the trial without counting", func(p *pass) { p.release() }, false},
		{"release after record does nothing", func(p *pass) { p.record(fault); p.release() }, true},
		{"record after release does nothing", func(p *pass) { p.release(); p.record(fault) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			g := newGate(1, 30*time.Second, time.Hour, c.Now)
			p, err := g.allow("api")
			if err != nil {
				t.Fatal(err)
			}
			p.record(fault) // opens
			if _, err := g.allow("api"); err == nil {
				t.Fatal("open breaker let a call through")
			}
			c.Add(31 * time.Second)
			trial, err := g.allow("api")
			if err != nil || !trial.trial {
				t.Fatalf("after the cooldown: %v, trial %v", err, trial != nil && trial.trial)
			}
			if _, err := g.allow("api"); err == nil {
				t.Fatal("a second call got through while the trial runs")
			}
			tt.end(trial)
			_, err = g.allow("api")
			if refused := err != nil; refused != tt.wantOpen {
				t.Fatalf("after the trial: err = %v, want refused %v", err, tt.wantOpen)
			}
		})
	}
}

// A trial released after the breaker let a new trial through must not free
// the new one.
func TestGateStaleReleaseKeepsNewTrial(t *testing.T) {
	c := newClock()
	g := newGate(1, 30*time.Second, time.Hour, c.Now)
	p, _ := g.allow("api")
	p.record(&card.Error{Class: card.Retryable})
	c.Add(31 * time.Second)
	first, _ := g.allow("api")
	first.release()
	second, err := g.allow("api")
	if err != nil || !second.trial {
		t.Fatalf("new trial: %v", err)
	}
	first.release()
	if _, err := g.allow("api"); err == nil {
		t.Fatal("a stale release freed the running trial")
	}
}

// The breaker's half-open trial whose context ends (a scan timed out, a
// terminal hung up on the gateway) does not leave the breaker stuck open:
// the next call is the new trial.
func TestTrialCancelledDoesNotStickOpen(t *testing.T) {
	type modeFn func(w http.ResponseWriter, r *http.Request)
	clients := map[string]struct {
		new func(url string, c *clock) func(ctx context.Context) error
		ok  string
	}{
		"direct": {func(url string, c *clock) func(ctx context.Context) error {
			ehc := stubEHC(url, c)
			return func(ctx context.Context) error { return ehc.ReportHISData(ctx, card.Report{}, card.NewRequestID()) }
		}, `{"commonOut":{"resultCode":0},"rsp":{"none":""}}`},
		"gateway": {func(url string, c *clock) func(ctx context.Context) error {
			gw := stubGateway(url, c)
			return func(ctx context.Context) error { return gw.ReportHISData(ctx, card.Report{}, card.NewRequestID()) }
		}, `{"result":{}}`},
	}
	for name, cl := range clients {
		t.Run(name, func(t *testing.T) {
			arrived := make(chan struct{}, 1)
			var mode atomic.Value
			fail := modeFn(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) })
			block := modeFn(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body) // the server sees the hang-up only once the body is read
				arrived <- struct{}{}
				<-r.Context().Done()
			})
			ok := modeFn(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(cl.ok)) })
			mode.Store(fail)
			srv := stubPlatform(t, func(w http.ResponseWriter, r *http.Request) { mode.Load().(modeFn)(w, r) })
			c := newClock()
			call := cl.new(srv.URL, c)

			if err := call(context.Background()); !card.IsUnavailable(err) {
				t.Fatalf("first call: %v, want a platform fault", err)
			}
			c.Add(31 * time.Second)
			mode.Store(block)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- call(ctx) }()
			<-arrived
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled trial: %v", err)
			}
			mode.Store(ok)
			if err := call(context.Background()); err != nil {
				t.Fatalf("after a cancelled trial: %v (the breaker stuck open)", err)
			}
		})
	}
}
