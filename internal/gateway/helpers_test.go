package gateway

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/verify"
)

// The platform clients are what the agent plugs in behind a gateway (the
// e-Health Card client) and what a terminal may use as its own upstream.
var (
	_ Upstream = (*verify.EHC)(nil)
	_ Upstream = (*verify.Gateway)(nil)
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)} }
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const (
	terminalID    = "counter-01"
	terminalToken = "terminal-token-0123456789"
)

// start serves up as a gateway for one terminal and returns its URL.
func start(t testing.TB, up Upstream, log zerolog.Logger) string {
	t.Helper()
	return serve(t, New(up, map[string]string{terminalID: terminalToken}, nil, log))
}

// serve serves s over HTTP and returns its URL.
func serve(t testing.TB, s *Server) string {
	t.Helper()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// client is a terminal's client of the gateway at url: no retries, and a
// breaker that does not open in a test.
func client(url, token string, c *clock) *verify.Gateway {
	return verify.NewGateway(verify.GatewayOptions{URL: url, Token: token, HTTP: &http.Client{Timeout: 5 * time.Second},
		BreakerFailures: 100, BreakerCooldown: time.Second, Now: c.Now})
}

// upstream is an Upstream of funcs; nil funcs succeed with zero values.
type upstream struct {
	verify func(ctx context.Context, r card.Request) (card.Identity, error)
	report func(ctx context.Context, r card.Report, requestID string) error
	bind   func(ctx context.Context, b card.Binding, requestID string) error
}

func (u upstream) Verify(ctx context.Context, r card.Request) (card.Identity, error) {
	if u.verify == nil {
		return card.Identity{}, nil
	}
	return u.verify(ctx, r)
}

func (u upstream) ReportHISData(ctx context.Context, r card.Report, requestID string) error {
	if u.report == nil {
		return nil
	}
	return u.report(ctx, r, requestID)
}

func (u upstream) BindCardRelation(ctx context.Context, b card.Binding, requestID string) error {
	if u.bind == nil {
		return nil
	}
	return u.bind(ctx, b, requestID)
}

// wantClass returns err as an *card.Error of class (and code, unless 0).
func wantClass(t *testing.T, err error, class card.Class, code int) *card.Error {
	t.Helper()
	e, ok := card.AsError(err)
	if !ok {
		t.Fatalf("err = %v (%T), want *card.Error %s", err, err, class)
	}
	if e.Class != class || (code != 0 && e.Code != code) {
		t.Fatalf("err = %v, want class %s code %d", e, class, code)
	}
	return e
}
