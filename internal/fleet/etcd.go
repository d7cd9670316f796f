package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// onlineSuffix ends a terminal's online key.
const onlineSuffix = "/online"

// Etcd is the registry the gateways of [gateway.ha] share on their etcd
// cluster. Under <prefix>fleet/ each terminal has two keys (its id
// path-escaped, so it holds no "/"):
//
//	<prefix>fleet/<id>         its last heartbeat, when and by which gateway it was received (no lease: an offline terminal still shows)
//	<prefix>fleet/<id>/online  the gateway that received it, under a lease of offline_after
//
// Each heartbeat renews the terminal's lease (any gateway may renew a
// lease another granted, so a terminal that fails over keeps it) and
// writes both keys in one transaction; when the lease is gone (expired:
// the terminal was offline) a new one is granted. A terminal is online
// while its online key lives. List reads the whole fleet with one Get on
// the prefix. Safe for concurrent use.
type Etcd struct {
	cli    *clientv3.Client
	prefix string
	via    string
	ttl    int64 // seconds
	now    func() time.Time

	mu     sync.Mutex
	leases map[string]clientv3.LeaseID // terminal → the lease this gateway last used
}

// EtcdOptions configures an Etcd registry.
type EtcdOptions struct {
	// Prefix is the root of the agent's keys ("/scanagent/"); the fleet
	// lives under Prefix + "fleet/".
	Prefix string
	// Via names this gateway.
	Via string
	// OfflineAfter is the online key's lease, rounded up to whole seconds
	// (at least 1 s).
	OfflineAfter time.Duration
	Now          func() time.Time
}

// NewEtcd returns the registry on cli, which it does not close (it is the
// gateway's election client, internal/ha).
func NewEtcd(cli *clientv3.Client, o EtcdOptions) *Etcd {
	if o.Now == nil {
		o.Now = time.Now
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	ttl := max(int64(math.Ceil(o.OfflineAfter.Seconds())), 1)
	return &Etcd{cli: cli, prefix: o.Prefix + "fleet/", via: o.Via, ttl: ttl, now: o.Now, leases: map[string]clientv3.LeaseID{}}
}

// stored is the value of a terminal's key.
type stored struct {
	Heartbeat
	LastSeen time.Time `json:"lastSeen"`
	Via      string    `json:"via,omitempty"`
}

func (e *Etcd) key(id string) string { return e.prefix + url.PathEscape(id) }

// Beat stores hb as its terminal's last heartbeat and keeps the terminal
// online for another offline_after. A write that fails (the lease expired
// meanwhile) is tried once more with a new lease.
func (e *Etcd) Beat(ctx context.Context, hb Heartbeat) error {
	if err := checkBeat(hb); err != nil {
		return err
	}
	val, err := json.Marshal(stored{Heartbeat: hb, LastSeen: e.now().UTC(), Via: e.via})
	if err != nil {
		return fmt.Errorf("fleet: encoding the heartbeat: %w", err)
	}
	key := e.key(hb.Terminal)
	for try := 0; ; try++ {
		lease, err := e.lease(ctx, hb.Terminal)
		if err != nil {
			return err
		}
		_, err = e.cli.Txn(ctx).Then(clientv3.OpPut(key, string(val)),
			clientv3.OpPut(key+onlineSuffix, e.via, clientv3.WithLease(lease))).Commit()
		if err == nil {
			return nil
		}
		e.forget(hb.Terminal)
		if try == 1 || ctx.Err() != nil {
			return fmt.Errorf("fleet: storing the heartbeat of %s: %w", hb.Terminal, err)
		}
	}
}

// lease returns a live lease for the terminal's online key, renewed for
// another TTL: the one this gateway used last, else the one the online
// key holds (another gateway's), else a new one.
func (e *Etcd) lease(ctx context.Context, id string) (clientv3.LeaseID, error) {
	e.mu.Lock()
	l := e.leases[id]
	e.mu.Unlock()
	if l != 0 && e.renew(ctx, l) {
		return l, nil
	}
	resp, err := e.cli.Get(ctx, e.key(id)+onlineSuffix)
	if err != nil {
		return 0, fmt.Errorf("fleet: reading the online key of %s: %w", id, err)
	}
	if len(resp.Kvs) > 0 {
		if l := clientv3.LeaseID(resp.Kvs[0].Lease); l != 0 && e.renew(ctx, l) {
			e.remember(id, l)
			return l, nil
		}
	}
	g, err := e.cli.Grant(ctx, e.ttl)
	if err != nil {
		return 0, fmt.Errorf("fleet: granting a lease: %w", err)
	}
	e.remember(id, g.ID)
	return g.ID, nil
}

// renew renews l; false when it is gone, or shorter than offline_after
// (granted under a shorter setting: it is replaced).
func (e *Etcd) renew(ctx context.Context, l clientv3.LeaseID) bool {
	resp, err := e.cli.KeepAliveOnce(ctx, l)
	return err == nil && resp.TTL >= e.ttl
}

func (e *Etcd) remember(id string, l clientv3.LeaseID) {
	e.mu.Lock()
	e.leases[id] = l
	e.mu.Unlock()
}

func (e *Etcd) forget(id string) {
	e.mu.Lock()
	delete(e.leases, id)
	e.mu.Unlock()
}

// List returns every terminal stored under the prefix, by id, read with
// one Get. A value that is not a valid heartbeat (written by something
// else) is left out.
func (e *Etcd) List(ctx context.Context) ([]Terminal, error) {
	resp, err := e.cli.Get(ctx, e.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("fleet: listing terminals: %w", err)
	}
	online := map[string]bool{}
	var out []Terminal
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), e.prefix)
		if esc, ok := strings.CutSuffix(rest, onlineSuffix); ok {
			online[esc] = true
			continue
		}
		if t, ok := decodeStored(rest, kv.Value); ok {
			out = append(out, t)
		}
	}
	for i := range out {
		out[i].Online = online[url.PathEscape(out[i].Terminal)]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Terminal < out[j].Terminal })
	return out, nil
}

// decodeStored reads the value of the key <prefix>fleet/<esc>.
func decodeStored(esc string, value []byte) (Terminal, bool) {
	id, err := url.PathUnescape(esc)
	if err != nil || strings.Contains(esc, "/") || len(value) > 2*MaxBody {
		return Terminal{}, false
	}
	var s stored
	if json.Unmarshal(value, &s) != nil {
		return Terminal{}, false
	}
	s.Terminal = id
	if checkBeat(s.Heartbeat) != nil {
		return Terminal{}, false
	}
	s.maskTexts()
	return Terminal{Heartbeat: s.Heartbeat, LastSeen: s.LastSeen, Via: s.Via}, true
}
