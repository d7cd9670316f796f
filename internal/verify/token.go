package verify

import (
	"context"
	"sync"
	"time"

	"scanagent/internal/card"
)

// tokenFetcher fetches a new appToken and its lifetime.
type tokenFetcher func(ctx context.Context) (token string, ttl time.Duration, err error)

// tokens is where the client's appToken comes from: the tokenHolder of a
// client that is the only one of its appId, or sharedTokens on one of
// several gateways that share a token (token_shared.go).
type tokens interface {
	// Token returns a live token.
	Token(ctx context.Context) (string, error)
	// Invalidate reports that the platform refused tok (21003/21004).
	Invalidate(tok string)
	// Age is how old the current token is (0 without one).
	Age() time.Duration
}

var (
	_ tokens = (*tokenHolder)(nil)
	_ tokens = (*sharedTokens)(nil)
)

// tokenHolder holds the appToken: fetched lazily, refreshed after 90% of its
// lifetime, single-flight (one getAppToken however many callers wait), and
// invalidated when the platform calls it dead.
type tokenHolder struct {
	fetch   tokenFetcher
	now     func() time.Time
	timeout time.Duration

	mu        sync.Mutex
	token     string
	fetchedAt time.Time
	refreshAt time.Time
	inflight  *tokenCall
	fetches   int
	// strikes: tokens refused in a row within freshWindow of their
	// fetch; hold and holdUntil: the fetch hold-off (Invalidate).
	strikes   int
	hold      time.Duration
	holdUntil time.Time
}

// The token fetch hold-off. A token the platform refuses within
// freshWindow of its fetch did not die of age: another holder of the
// appId fetched one meanwhile (the next fetch recovers, at once), or, when
// the token that replaced it is refused as fast, 21004 means what the
// guide also says it means, "illegal appToken or hospitalId" (§3.2.12):
// the hospital_id is wrong, or another system keeps fetching tokens for
// this appId. Fetching again scan after scan would spend the getAppToken
// quota (100 calls a day per API before go-live) and kill the other
// system's token each time; so from the second fresh token refused in a
// row the next fetch waits holdMin, doubling up to holdMax. A reload (a
// fixed hospital_id) starts a new holder.
const (
	freshWindow = time.Minute
	holdMin     = 30 * time.Second
	holdMax     = 30 * time.Minute
)

type tokenCall struct {
	done  chan struct{}
	token string
	err   error
}

func newTokenHolder(fetch tokenFetcher, now func() time.Time, timeout time.Duration) *tokenHolder {
	return &tokenHolder{fetch: fetch, now: now, timeout: timeout}
}

// Token returns a live token, fetching one if needed.
func (h *tokenHolder) Token(ctx context.Context) (string, error) {
	h.mu.Lock()
	if h.token != "" && h.now().Before(h.refreshAt) {
		t := h.token
		h.mu.Unlock()
		return t, nil
	}
	call := h.inflight
	if call == nil && h.now().Before(h.holdUntil) {
		until := h.holdUntil
		h.mu.Unlock()
		return "", &card.Error{API: APIGetAppToken, Class: card.TokenExpired, Code: 21004, RetryAfter: until,
			Msg: "a freshly fetched appToken was refused (21004: illegal appToken or hospitalId): check platform.hospital_id, " +
				"and that no other system fetches tokens for this appId; next getAppToken at " + until.In(card.CST).Format(time.DateTime)}
	}
	if call == nil {
		call = &tokenCall{done: make(chan struct{})}
		h.inflight = call
		h.fetches++
		// The fetch outlives any one caller: a caller giving up must not
		// fail the others waiting on the same fetch.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.timeout)
		go func() {
			defer cancel()
			tok, ttl, err := h.fetch(fctx)
			h.mu.Lock()
			if err == nil {
				if ttl <= 0 {
					ttl = 7200 * time.Second
				}
				now := h.now()
				h.token, h.fetchedAt, h.refreshAt = tok, now, now.Add(ttl*9/10)
			}
			h.inflight = nil
			h.mu.Unlock()
			call.token, call.err = tok, err
			close(call.done)
		}()
	}
	h.mu.Unlock()
	select {
	case <-call.done:
		return call.token, call.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Invalidate drops tok if it is still the current token, so concurrent
// callers that all saw it die cause one refresh, not many. A token
// refused within freshWindow of its fetch holds the next fetch off.
func (h *tokenHolder) Invalidate(tok string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.token != tok || tok == "" {
		return
	}
	h.token = ""
	now := h.now()
	if now.Sub(h.fetchedAt) >= freshWindow {
		h.strikes, h.hold = 0, 0
		return
	}
	if h.strikes++; h.strikes >= 2 {
		h.hold = min(max(2*h.hold, holdMin), holdMax)
		h.holdUntil = now.Add(h.hold)
	}
}

// Age returns how old the current token is (0 without one).
func (h *tokenHolder) Age() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.token == "" {
		return 0
	}
	return h.now().Sub(h.fetchedAt)
}
