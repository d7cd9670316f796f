package verify

import (
	"context"
	"sync"
	"time"

	"scanagent/internal/card"
)

// TokenShare is an appToken shared by several gateways of one appId, one
// of them elected to fetch it (internal/ha implements it on etcd). The
// gateways that do not lead never call getAppToken: they wait for the
// leader's token.
type TokenShare interface {
	// Current returns the shared token ("" when none is known), when it
	// was fetched and when it expires, and a channel closed when it next
	// changes.
	Current() (token string, fetchedAt, expiresAt time.Time, changed <-chan struct{})
	// Refresh asks for a token other than stale ("" for none): it reads
	// the store again and adopts a newer token found there; failing that,
	// on the leader and when its fence passes, it fetches and stores a
	// new one. nil means Current now holds a token other than stale. An
	// error that is a *card.Error is getAppToken's own failure; any other
	// error means "not here, not now" (a follower, the fence refused, the
	// store unreachable) and the caller waits for Current to change.
	Refresh(ctx context.Context, stale string) error
}

// expiryMargin is how long before its expiry a shared token is no longer
// used (the expiry was computed on another gateway's clock).
const expiryMargin = 5 * time.Second

// sharedTokens takes the client's token from a TokenShare. A token the
// platform refused is not used again; the next call asks the share for a
// new one and, if this gateway cannot fetch it, waits up to wait for the
// leader's, then fails with card.TokenExpired.
type sharedTokens struct {
	share TokenShare
	wait  time.Duration
	// refresh bounds one Refresh: a store that cannot be reached must not
	// hold a call for longer than a fetch would take.
	refresh time.Duration
	now     func() time.Time

	mu      sync.Mutex
	refused string // the last token the platform refused
}

func newSharedTokens(share TokenShare, wait, fetchTimeout time.Duration, now func() time.Time) *sharedTokens {
	if wait <= 0 {
		wait = 5 * time.Second
	}
	return &sharedTokens{share: share, wait: wait, refresh: max(wait, fetchTimeout+2*time.Second), now: now}
}

// Token returns the shared token while it is live and not refused;
// otherwise it asks the share for a new one and waits for it.
func (h *sharedTokens) Token(ctx context.Context) (string, error) {
	var timeout <-chan time.Time
	for {
		tok, _, exp, changed := h.share.Current()
		h.mu.Lock()
		refused := tok != "" && tok == h.refused
		h.mu.Unlock()
		if tok != "" && !refused && h.now().Before(exp.Add(-expiryMargin)) {
			return tok, nil
		}
		rctx, cancel := context.WithTimeout(ctx, h.refresh)
		err := h.share.Refresh(rctx, tok)
		cancel()
		if err == nil {
			if now, _, _, _ := h.share.Current(); now != tok {
				continue
			}
		} else if _, ok := card.AsError(err); ok {
			return "", err // getAppToken itself failed
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if timeout == nil {
			t := time.NewTimer(h.wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-changed:
		case <-timeout:
			msg := "no live appToken: the leader gateway has not stored a new one"
			if err != nil {
				msg += " (" + err.Error() + ")"
			}
			return "", &card.Error{API: APIGetAppToken, Class: card.TokenExpired, Msg: msg}
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// Invalidate marks tok refused: it is not used again.
func (h *sharedTokens) Invalidate(tok string) {
	h.mu.Lock()
	h.refused = tok
	h.mu.Unlock()
}

// Age is how old the shared token is.
func (h *sharedTokens) Age() time.Duration {
	tok, fetched, _, _ := h.share.Current()
	if tok == "" {
		return 0
	}
	return h.now().Sub(fetched)
}
