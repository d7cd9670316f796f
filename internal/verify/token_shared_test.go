package verify

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"scanagent/internal/card"
	"scanagent/test/fakeplatform/platform"
)

// shareStore is an in-memory TokenShare store (internal/ha's on etcd):
// one token, one leader, views per gateway.
type shareStore struct {
	mu      sync.Mutex
	tok     string
	fetched time.Time
	exp     time.Time
	changed chan struct{}
	leader  *shareView
}

func newShareStore() *shareStore { return &shareStore{changed: make(chan struct{})} }

// shareView is one gateway's TokenShare.
type shareView struct {
	s     *shareStore
	fetch func(ctx context.Context) (string, time.Duration, error)
	now   func() time.Time
}

func (s *shareStore) view(leader bool, now func() time.Time) func(fetch func(ctx context.Context) (string, time.Duration, error)) TokenShare {
	return func(fetch func(ctx context.Context) (string, time.Duration, error)) TokenShare {
		v := &shareView{s: s, fetch: fetch, now: now}
		if leader {
			s.leader = v
		}
		return v
	}
}

func (v *shareView) Current() (string, time.Time, time.Time, <-chan struct{}) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	return v.s.tok, v.s.fetched, v.s.exp, v.s.changed
}

var errNotLeader = errors.New("not the leader")

func (v *shareView) Refresh(ctx context.Context, stale string) error {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	if v.s.tok != "" && v.s.tok != stale {
		return nil
	}
	if v.s.leader != v {
		return errNotLeader
	}
	tok, ttl, err := v.fetch(ctx)
	if err != nil {
		return err
	}
	v.s.tok, v.s.fetched, v.s.exp = tok, v.now(), v.now().Add(ttl)
	close(v.s.changed)
	v.s.changed = make(chan struct{})
	return nil
}

// Two gateways share one token: only the leader fetches; a follower whose
// token is refused waits for the leader's new one instead of fetching.
func TestSharedTokenOnlyLeaderFetches(t *testing.T) {
	e := newEnv(t)
	store := newShareStore()
	leaderOpts, followerOpts := e.ehcOptions(), e.ehcOptions()
	leaderOpts.Share, followerOpts.Share = store.view(true, e.clock.Now), store.view(false, e.clock.Now)
	followerOpts.TokenWait = 300 * time.Millisecond
	leader, follower := NewEHC(leaderOpts), NewEHC(followerOpts)
	ctx := context.Background()
	req := card.Request{Kind: card.KindEHCStatic, Text: platform.BuiltinCards()[0].QRCodeText}

	// No token yet: the follower waits and gives up with the TokenExpired
	// class, without fetching.
	_, err := follower.Verify(ctx, req)
	wantClass(t, err, card.TokenExpired, 0)
	if n := e.fake.Stats().Tokens; n != 0 {
		t.Fatalf("a follower fetched %d tokens", n)
	}
	if _, err := leader.Verify(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := follower.Verify(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Stats().Tokens; n != 1 {
		t.Fatalf("getAppToken calls = %d, want 1 for both gateways", n)
	}

	// Someone else fetches a token: the shared one dies. The follower
	// sees 21004 and waits for the leader, which refetches on its next
	// call; the follower's waiting call then succeeds with the new token.
	if _, err := e.direct().Verify(ctx, req); err != nil {
		t.Fatal(err)
	}
	followerOpts.TokenWait = 10 * time.Second
	follower = NewEHC(followerOpts)
	done := make(chan error, 1)
	go func() { _, err := follower.Verify(ctx, req); done <- err }()
	time.Sleep(100 * time.Millisecond)
	if _, err := leader.Verify(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("follower after the leader's refresh: %v", err)
	}
	if n := e.fake.Stats().Tokens; n != 3 {
		t.Fatalf("getAppToken calls = %d, want 3 (leader, intruder, leader)", n)
	}
}

// A token past its expiry is not used; the leader's getAppToken failure
// reaches the caller as it is.
func TestSharedTokenExpiryAndFetchFailure(t *testing.T) {
	e := newEnv(t)
	store := newShareStore()
	o := e.ehcOptions()
	o.Share = store.view(true, e.clock.Now)
	leader := NewEHC(o)
	ctx := context.Background()
	req := card.Request{Kind: card.KindEHCStatic, Text: platform.BuiltinCards()[0].QRCodeText}
	if _, err := leader.Verify(ctx, req); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(7200*time.Second - expiryMargin + time.Second)
	e.fake.SetFaults(platform.Faults{APIs: []string{"getAppToken"}, ResultCode: 21002})
	_, err := leader.Verify(ctx, req)
	wantClass(t, err, card.Fatal, 21002)
	e.fake.SetFaults(platform.Faults{})
	if _, err := leader.Verify(ctx, req); err != nil {
		t.Fatal(err)
	}
	if age := leader.Status().TokenAge; age != 0 {
		t.Fatalf("age of a token just fetched = %v", age)
	}
}
