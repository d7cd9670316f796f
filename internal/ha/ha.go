// Package ha makes several scanagent gateways serve one appId together. The
// platform keeps one live appToken per appId and every getAppToken
// invalidates the previous one, so the gateways elect a leader on an etcd
// cluster (a concurrency.Session whose lease the leader keeps alive, and an
// Election on it); only the leader fetches tokens, each fetch fenced by a
// linearizable etcd transaction that proves it still leads; the token is
// stored in etcd, sealed, and every gateway watches it and calls the
// platform itself with it. A failover costs no new token.
//
// It owns the keys under <prefix>ehc/<appId>/ (leader/, token, fetch; the
// fleet registry owns <prefix>fleet/ and borrows the client), the
// sealing of the stored token, and when the leader refreshes. It does not
// call the platform: the e-Health Card client hands it a fetcher
// (verify.EHC's getAppToken) and reads the shared token through the small
// interface verify declares (Current, Refresh). It imports no other stage.
package ha

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Fetcher calls getAppToken once: the token and its lifetime.
type Fetcher func(ctx context.Context) (token string, ttl time.Duration, err error)

// Options configures a Node.
type Options struct {
	// Endpoints are the etcd members (host:port or http(s) URLs).
	Endpoints []string
	// TLS, when set, is used towards etcd (https endpoints).
	TLS *tls.Config
	// Prefix is the root of the keys ("/scanagent/"); AppID separates the
	// appIds that share a cluster.
	Prefix string
	AppID  string
	// ID names this gateway (the leader key's value, status, logs).
	ID string
	// LeaseTTL is the session's lease (whole seconds; default 10 s).
	LeaseTTL time.Duration
	// Key seals the stored token (32 bytes, AES-256-GCM).
	Key []byte
	// FetchTimeout bounds one getAppToken; the leader fetches only while
	// its lease outlasts it.
	FetchTimeout time.Duration
	// MinFetchInterval spaces fetches across all gateways (default 1 m).
	// After a fetch that failed for certain (the platform answered, or
	// the request never left) the next may come after RetryFailed
	// (default min(MinFetchInterval, 5 s)).
	MinFetchInterval time.Duration
	RetryFailed      time.Duration
	// RefreshAt is the fraction of a token's lifetime after which the
	// leader replaces it (default 0.9, as a single gateway does).
	RefreshAt float64
	// DialTimeout bounds connecting to etcd (default 5 s).
	DialTimeout time.Duration
	Log         zerolog.Logger
	Now         func() time.Time
}

// Node is one gateway's membership in the election and its view of the
// shared token. Safe for concurrent use.
type Node struct {
	o     Options
	cli   *clientv3.Client
	codec *codec
	// keys
	election, tokenKey, fetchKey string

	ctx     context.Context // canceled by Close: leave
	cancel  context.CancelFunc
	sessCtx context.Context // canceled last: abandons a revoke or grant
	sessEnd context.CancelFunc
	started sync.Once
	stopped chan struct{} // run returned
	wg      sync.WaitGroup
	fetch   Fetcher

	mu       sync.Mutex
	term     *term // nil: not leading
	leader   string
	cur      Record
	curRev   int64 // etcd ModRevision of cur
	changed  chan struct{}
	inflight *flight
	lastErr  string
	fetches  int
}

// term is one leadership: the election key this gateway holds and the
// lease it lives by.
type term struct {
	key   string
	rev   int64 // the key's create revision: the epoch
	lease clientv3.LeaseID
	done  <-chan struct{} // the session ended
}

// flight is a fenced fetch under way; callers wait on done.
type flight struct {
	done chan struct{}
	err  error
}

// New connects lazily to etcd; nothing is campaigned until Start.
func New(o Options) (*Node, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("no etcd endpoints")
	}
	if o.Prefix == "" {
		o.Prefix = "/scanagent/"
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 5 * time.Second
	}
	if o.MinFetchInterval <= 0 {
		o.MinFetchInterval = time.Minute
	}
	if o.RetryFailed <= 0 {
		o.RetryFailed = min(o.MinFetchInterval, 5*time.Second)
	}
	if o.RefreshAt <= 0 || o.RefreshAt >= 1 {
		o.RefreshAt = 0.9
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c, err := newCodec(o.Key)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: o.Endpoints, TLS: o.TLS, DialTimeout: o.DialTimeout,
		DialKeepAliveTime: 5 * time.Second, DialKeepAliveTimeout: 3 * time.Second,
		Logger: zapLogger(o.Log.With().Str("component", "etcd").Logger()),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	base := o.Prefix + "ehc/" + o.AppID + "/"
	n := &Node{o: o, cli: cli, codec: c, election: base + "leader", tokenKey: base + "token", fetchKey: base + "fetch",
		stopped: make(chan struct{}), changed: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.sessCtx, n.sessEnd = context.WithCancel(context.Background())
	return n, nil
}

// Start joins the election and watches the shared token; fetch is how
// the node gets a token while it leads. Later calls do nothing.
func (n *Node) Start(fetch Fetcher) {
	n.started.Do(func() {
		n.fetch = fetch
		n.wg.Add(2)
		go func() { defer n.wg.Done(); n.watch() }()
		go func() { defer n.wg.Done(); n.run() }()
	})
}

// Close leaves: the session's lease is revoked, which deletes the election
// key, so a follower takes over at once instead of after the lease TTL.
// The token stays in etcd for the others. When etcd cannot be reached the
// revoke is abandoned after a few seconds and the lease expires by itself.
func (n *Node) Close() error {
	n.cancel()
	n.started.Do(func() {}) // no Start after Close
	if n.fetch != nil {
		t := time.NewTimer(3 * time.Second)
		select {
		case <-n.stopped:
		case <-t.C:
			n.sessEnd()
		}
		t.Stop()
		n.wg.Wait()
	}
	n.sessEnd()
	return n.cli.Close()
}

// Client is the node's etcd client, for the other owners of keys under
// the prefix (the fleet registry, internal/fleet). It lives until Close;
// callers must not close it.
func (n *Node) Client() *clientv3.Client { return n.cli }

// Leading reports whether this gateway holds the leadership now (as far
// as it knows: a partitioned leader learns it lost its lease only when its
// keep-alives have failed for the lease's TTL; the fence covers that gap).
func (n *Node) Leading() bool {
	n.mu.Lock()
	t := n.term
	n.mu.Unlock()
	return t.alive()
}

func (t *term) alive() bool {
	if t == nil {
		return false
	}
	select {
	case <-t.done:
		return false
	default:
		return true
	}
}

// Current returns the shared token ("" when none is known), when it was
// fetched and expires, and a channel closed when it next changes.
func (n *Node) Current() (token string, fetchedAt, expiresAt time.Time, changed <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cur.Token, n.cur.FetchedAt, n.cur.ExpiresAt, n.changed
}

// Status is the node's state for status pages.
type Status struct {
	ID        string    `json:"id"`
	Leading   bool      `json:"leading"`
	Leader    string    `json:"leader,omitempty"`
	Epoch     int64     `json:"epoch,omitempty"`
	TokenBy   string    `json:"tokenBy,omitempty"`
	FetchedAt time.Time `json:"tokenFetchedAt,omitzero"`
	ExpiresAt time.Time `json:"tokenExpiresAt,omitzero"`
	// Fetches counts this gateway's getAppToken calls since it started.
	Fetches   int    `json:"fetches"`
	LastError string `json:"lastError,omitempty"`
}

// Status reports the node's state.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := Status{ID: n.o.ID, Leading: n.term.alive(), Leader: n.leader, TokenBy: n.cur.By, FetchedAt: n.cur.FetchedAt,
		ExpiresAt: n.cur.ExpiresAt, Fetches: n.fetches, LastError: n.lastErr}
	if n.term.alive() {
		s.Epoch = n.term.rev
	}
	return s
}

// apply adopts a stored record read at etcd revision rev, unless an
// equally new or newer one is known already. A record of an older epoch
// than the current one is refused: only a replayed value can be older.
func (n *Node) apply(r Record, rev int64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if rev <= n.curRev {
		return false
	}
	if r.Epoch < n.cur.Epoch {
		n.o.Log.Warn().Int64("epoch", r.Epoch).Int64("current", n.cur.Epoch).Msg("stored token of an older leadership ignored")
		return false
	}
	n.curRev = rev
	if r.Token == n.cur.Token {
		n.cur = r
		return false
	}
	n.cur = r
	close(n.changed)
	n.changed = make(chan struct{})
	n.o.Log.Info().Str("by", r.By).Int64("epoch", r.Epoch).Time("expiresAt", r.ExpiresAt).Msg("shared appToken updated")
	return true
}

// applyKV opens a stored token value and applies it.
func (n *Node) applyKV(value []byte, modRev int64) {
	r, err := n.codec.open(n.tokenKey, value)
	if err != nil {
		n.setErr(err)
		n.o.Log.Error().Err(err).Msg("cannot read the shared token")
		return
	}
	n.apply(r, modRev)
}

func (n *Node) setErr(err error) {
	n.mu.Lock()
	if err == nil {
		n.lastErr = ""
	} else {
		n.lastErr = err.Error()
	}
	n.mu.Unlock()
}

// watch keeps Current up to date: a read, then a watch from the next
// revision, again after any break.
func (n *Node) watch() {
	delay := 200 * time.Millisecond
	for n.ctx.Err() == nil {
		resp, err := n.cli.Get(n.ctx, n.tokenKey)
		if err != nil {
			if n.ctx.Err() == nil {
				n.o.Log.Warn().Err(err).Msg("reading the shared token from etcd failed; retrying")
			}
			sleep(n.ctx, delay)
			delay = min(2*delay, 5*time.Second)
			continue
		}
		delay = 200 * time.Millisecond
		for _, kv := range resp.Kvs {
			n.applyKV(kv.Value, kv.ModRevision)
		}
		wch := n.cli.Watch(clientv3.WithRequireLeader(n.ctx), n.tokenKey, clientv3.WithRev(resp.Header.Revision+1))
		for wr := range wch {
			if err := wr.Err(); err != nil {
				n.o.Log.Warn().Err(err).Msg("watch on the shared token broke; reading it again")
				break
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypePut {
					n.applyKV(ev.Kv.Value, ev.Kv.ModRevision)
				}
			}
		}
		sleep(n.ctx, delay)
	}
}

// run keeps a session with etcd and campaigns on it, for as long as the
// node lives; a lost session (lease expired) is replaced by a new one.
func (n *Node) run() {
	defer close(n.stopped)
	ttl := int(math.Ceil(n.o.LeaseTTL.Seconds()))
	delay := 500 * time.Millisecond
	for n.ctx.Err() == nil {
		s, err := concurrency.NewSession(n.cli, concurrency.WithTTL(ttl), concurrency.WithContext(n.sessCtx))
		if err != nil {
			if n.ctx.Err() == nil {
				n.setErr(err)
				n.o.Log.Warn().Err(err).Msg("no etcd session; retrying")
			}
			sleep(n.ctx, delay)
			delay = min(2*delay, 5*time.Second)
			continue
		}
		delay = 500 * time.Millisecond
		for n.ctx.Err() == nil && !isDone(s.Done()) {
			if err := n.campaign(s); err != nil && n.ctx.Err() == nil && !isDone(s.Done()) {
				n.o.Log.Warn().Err(err).Msg("campaign failed; retrying")
				sleep(n.ctx, time.Second)
			}
		}
		if n.ctx.Err() != nil {
			// Leaving: revoking the lease deletes the election key.
			if err := s.Close(); err != nil {
				n.o.Log.Warn().Err(err).Msg("revoking the lease failed; it expires by itself")
			}
			return
		}
		n.o.Log.Warn().Msg("etcd session lost (lease expired or etcd unreachable): rejoining the election")
		s.Orphan()
	}
}

// campaign waits to lead on s, then leads until the session ends or the
// node leaves.
func (n *Node) campaign(s *concurrency.Session) error {
	ctx, cancel := context.WithCancel(n.ctx)
	defer cancel()
	go func() {
		select {
		case <-s.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	e := concurrency.NewElection(s, n.election)
	go n.observe(ctx, e)
	if err := e.Campaign(ctx, n.o.ID); err != nil {
		return err
	}
	t := &term{key: e.Key(), rev: e.Rev(), lease: s.Lease(), done: s.Done()}
	// Campaign returns once every older key is gone, even when our own
	// key went with an expired lease meanwhile: check it is still there.
	resp, err := n.cli.Get(ctx, t.key)
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != t.rev {
		return errors.New("election key lost while campaigning")
	}
	n.mu.Lock()
	n.term = t
	n.mu.Unlock()
	n.o.Log.Info().Int64("epoch", t.rev).Msg("leading: this gateway fetches the shared appToken")
	n.lead(ctx, t)
	n.mu.Lock()
	n.term = nil
	n.mu.Unlock()
	n.o.Log.Info().Int64("epoch", t.rev).Msg("no longer leading")
	return nil
}

// observe follows who leads, for the status.
func (n *Node) observe(ctx context.Context, e *concurrency.Election) {
	for resp := range e.Observe(ctx) {
		if len(resp.Kvs) > 0 {
			n.mu.Lock()
			n.leader = string(resp.Kvs[0].Value)
			n.mu.Unlock()
		}
	}
}

// lead refreshes the shared token while this gateway leads: at once when
// there is none (or it expired), else after RefreshAt of its lifetime.
func (n *Node) lead(ctx context.Context, t *term) {
	for ctx.Err() == nil {
		tok, fetched, expires, changed := n.Current()
		wait := time.Duration(0)
		if tok != "" && n.o.Now().Before(expires) {
			wait = time.Until(fetched.Add(time.Duration(float64(expires.Sub(fetched)) * n.o.RefreshAt)))
		}
		if wait <= 0 {
			err := n.Refresh(ctx, tok)
			if err == nil {
				continue
			}
			wait = n.o.RetryFailed
			var soon *tooSoon
			switch {
			case errors.As(err, &soon):
				wait = max(soon.wait-soon.since, 10*time.Millisecond)
				n.o.Log.Info().Err(err).Msg("token refresh deferred")
			case ctx.Err() == nil:
				n.o.Log.Warn().Err(err).Msg("token refresh failed; retrying")
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// ErrNotLeader is Refresh's answer on a follower: the leader fetches,
// the caller waits for Current to change.
var ErrNotLeader = errors.New("not the leader: waiting for the leader's token")

// Refresh asks for a token other than stale ("" when there is none). It
// reads etcd first (linearizably): a newer token stored there is adopted
// and Refresh returns nil. Otherwise the leader fetches one under the
// fence and stores it (one fetch at a time, however many callers); a
// follower gets ErrNotLeader, a leader that may not fetch now the reason.
// The fetcher's own error is returned as it is.
func (n *Node) Refresh(ctx context.Context, stale string) error {
	resp, err := n.cli.Get(ctx, n.tokenKey)
	if err != nil {
		return fmt.Errorf("reading the shared token: %w", err)
	}
	for _, kv := range resp.Kvs {
		n.applyKV(kv.Value, kv.ModRevision)
	}
	if tok, _, exp, _ := n.Current(); tok != "" && tok != stale && n.o.Now().Before(exp) {
		return nil
	}
	n.mu.Lock()
	t := n.term
	if !t.alive() {
		n.mu.Unlock()
		return ErrNotLeader
	}
	f := n.inflight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		n.inflight = f
		go func() {
			err := n.fenced(t)
			n.setErr(err)
			n.mu.Lock()
			n.inflight = nil
			n.mu.Unlock()
			f.err = err
			close(f.done)
		}()
	}
	n.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
