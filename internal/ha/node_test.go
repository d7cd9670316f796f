package ha

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"scanagent/internal/card"
	"scanagent/internal/ha/etcdtest"
)

// platform counts getAppToken calls and hands out numbered tokens.
type platform struct {
	n    atomic.Int32
	fail atomic.Pointer[error]
}

func (p *platform) fetch(ctx context.Context) (string, time.Duration, error) {
	if e := p.fail.Load(); e != nil {
		return "", 0, *e
	}
	return fmt.Sprintf("token-%d", p.n.Add(1)), 2 * time.Hour, nil
}

func newNode(t *testing.T, endpoint, id string, mod func(*Options)) *Node {
	t.Helper()
	o := Options{Endpoints: []string{endpoint}, AppID: "app", ID: id, LeaseTTL: 2 * time.Second, Key: testKey(7),
		FetchTimeout: 500 * time.Millisecond, MinFetchInterval: time.Minute, Log: zerolog.New(zerolog.NewTestWriter(t)).With().Str("gw", id).Logger()}
	if mod != nil {
		mod(&o)
	}
	n, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func token(n *Node) string { tok, _, _, _ := n.Current(); return tok }

// Two gateways: one leads and fetches one token, the other serves with it;
// when the leader leaves, the follower leads with the stored token and
// fetches nothing.
func TestOneLeaderOneFetchAndFailover(t *testing.T) {
	etcd := etcdtest.Start(t)
	var p platform
	a := newNode(t, etcd.Endpoint, "gw-a", nil)
	a.Start(p.fetch)
	eventually(t, "gw-a to lead and fetch", func() bool { return a.Leading() && token(a) != "" })
	b := newNode(t, etcd.Endpoint, "gw-b", nil)
	b.Start(p.fetch)
	eventually(t, "gw-b to read the shared token", func() bool { return token(b) == token(a) })
	if b.Leading() {
		t.Fatal("two leaders")
	}
	if err := b.Refresh(context.Background(), token(b)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower Refresh = %v, want ErrNotLeader", err)
	}
	eventually(t, "gw-b to see gw-a lead", func() bool { return b.Status().Leader == "gw-a" })

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// A gateway stopped normally resigns: its lease is revoked by the time
	// Close returns, so its election key is gone and gw-b need not wait out
	// the lease (maintenance costs no failover delay).
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.Endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	keys, err := cli.Get(context.Background(), b.election, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range keys.Kvs {
		if string(kv.Value) == "gw-a" {
			t.Fatalf("gw-a's election key %s outlives its Close: it did not resign", kv.Key)
		}
	}
	eventually(t, "gw-b to lead after gw-a left", b.Leading)
	if got := token(b); got != "token-1" {
		t.Fatalf("token after failover = %q", got)
	}
	time.Sleep(200 * time.Millisecond)
	if n := p.n.Load(); n != 1 {
		t.Fatalf("%d getAppToken calls; a failover must cost none", n)
	}
	// The platform refused the token: the new leader refetches, once,
	// when the fence and the interval allow it; the interval counts from
	// gw-a's fetch, so it refuses now.
	err = b.Refresh(context.Background(), "token-1")
	if err == nil || !strings.Contains(err.Error(), "the next may come after") {
		t.Fatalf("refresh within min_fetch_interval = %v", err)
	}
	if n := p.n.Load(); n != 1 {
		t.Fatalf("%d getAppToken calls within the interval", n)
	}
}

// A refused token is replaced by the leader once the interval allows; the
// follower learns it through the watch.
func TestRefusedTokenRefetchedOnce(t *testing.T) {
	etcd := etcdtest.Start(t)
	var p platform
	fast := func(o *Options) { o.MinFetchInterval = time.Second }
	a := newNode(t, etcd.Endpoint, "gw-a", fast)
	a.Start(p.fetch)
	eventually(t, "a token", func() bool { return token(a) != "" })
	b := newNode(t, etcd.Endpoint, "gw-b", fast)
	b.Start(p.fetch)
	eventually(t, "gw-b to read the token", func() bool { return token(b) == "token-1" })
	_, _, _, changed := b.Current()
	time.Sleep(time.Second)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = a.Refresh(context.Background(), "token-1") }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := p.n.Load(); n != 2 {
		t.Fatalf("%d getAppToken calls for 8 concurrent refreshes of one refused token; want 2 in all", n)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("the follower was not told of the new token")
	}
	if token(b) != "token-2" {
		t.Fatalf("follower token = %q", token(b))
	}
	// Refresh of a token already replaced adopts the stored one.
	if err := b.Refresh(context.Background(), "token-1"); err != nil || p.n.Load() != 2 {
		t.Fatalf("refresh of a replaced token = %v, %d fetches", err, p.n.Load())
	}
}

// A leader whose lease is gone cannot pass the fence nor store a token,
// and never calls getAppToken.
func TestFenceRejectsStaleLeader(t *testing.T) {
	etcd := etcdtest.Start(t)
	var p platform
	a := newNode(t, etcd.Endpoint, "gw-a", func(o *Options) { o.LeaseTTL = 10 * time.Second })
	a.Start(p.fetch)
	eventually(t, "gw-a to lead with a token", func() bool { return a.Leading() && token(a) != "" })
	a.mu.Lock()
	stale := *a.term
	a.mu.Unlock()

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.Endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	if _, err := cli.Revoke(ctx, stale.lease); err != nil {
		t.Fatal(err)
	}
	before := p.n.Load()
	// The fence, as the stale leader runs it before its session noticed.
	a.o.MinFetchInterval, a.o.RetryFailed = time.Nanosecond, time.Nanosecond
	if err := a.fenced(&stale); !errors.Is(err, errFenced) {
		t.Fatalf("fence of a revoked lease = %v, want errFenced", err)
	}
	// The store transaction alone.
	sealed, _ := a.codec.seal(a.tokenKey, Record{Token: "forged", Epoch: stale.rev})
	if err := a.txn(ctx, &stale, nil, clientv3.OpPut(a.tokenKey, string(sealed))); !errors.Is(err, errFenced) {
		t.Fatalf("store by a deposed leader = %v, want errFenced", err)
	}
	if n := p.n.Load(); n != before {
		t.Fatalf("a deposed leader called getAppToken (%d calls)", n-before)
	}
	resp, err := cli.Get(ctx, a.tokenKey)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatal(err)
	}
	if r, err := a.codec.open(a.tokenKey, resp.Kvs[0].Value); err != nil || r.Token != "token-1" {
		t.Fatalf("stored token = %+v, %v", r, err)
	}
	// Another gateway takes over with the stored token.
	b := newNode(t, etcd.Endpoint, "gw-b", nil)
	b.Start(p.fetch)
	eventually(t, "gw-b to lead", b.Leading)
	if token(b) != "token-1" || p.n.Load() != before {
		t.Fatalf("gw-b: token %q, %d fetches", token(b), p.n.Load())
	}
}

// The fence refuses a fetch the lease cannot cover.
func TestFenceNeedsLeaseForTheFetch(t *testing.T) {
	etcd := etcdtest.Start(t)
	var p platform
	a := newNode(t, etcd.Endpoint, "gw-a", func(o *Options) { o.FetchTimeout = 5 * time.Second })
	a.Start(p.fetch)
	eventually(t, "gw-a to lead", a.Leading)
	time.Sleep(300 * time.Millisecond)
	if n := p.n.Load(); n != 0 {
		t.Fatalf("fetched %d tokens with a 2s lease and a 5s fetch timeout", n)
	}
	if st := a.Status(); !strings.Contains(st.LastError, "a fetch needs") {
		t.Fatalf("status error = %q", st.LastError)
	}
}

// A fetch that failed for certain may be retried after RetryFailed; one
// whose outcome is unknown waits MinFetchInterval.
func TestFailedFetchIntervals(t *testing.T) {
	etcd := etcdtest.Start(t)
	var p platform
	definite := error(&card.Error{API: "getAppToken", Class: card.Retryable, Code: -1, Msg: "system busy"})
	p.fail.Store(&definite)
	a := newNode(t, etcd.Endpoint, "gw-a", func(o *Options) { o.RetryFailed = 200 * time.Millisecond })
	a.Start(p.fetch)
	eventually(t, "gw-a to lead", a.Leading)
	eventually(t, "a retry after the failed fetch", func() bool { return a.Status().Fetches >= 2 })
	unknown := error(&card.Error{API: "getAppToken", Class: card.Retryable, Msg: "timeout", Unknown: true})
	p.fail.Store(&unknown)
	eventually(t, "the unknown fetch", func() bool { return strings.Contains(a.Status().LastError, "timeout") })
	n := a.Status().Fetches
	time.Sleep(time.Second)
	if got := a.Status().Fetches; got != n {
		t.Fatalf("%d fetches after an unknown outcome within min_fetch_interval", got-n)
	}
	if token(a) != "" {
		t.Fatal("a token appeared")
	}
}
