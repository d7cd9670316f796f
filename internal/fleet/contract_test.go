package fleet

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"scanagent/internal/ha/etcdtest"
)

// registry is what the gateway consumes of a registry (gateway.Fleet).
type registry interface {
	Beat(ctx context.Context, hb Heartbeat) error
	List(ctx context.Context) ([]Terminal, error)
}

var (
	_ registry = (*Memory)(nil)
	_ registry = (*Etcd)(nil)
)

// pair is two gateways' views of one registry, with offline_after.
type pair func(t *testing.T, offlineAfter time.Duration) (a, b registry)

// The contract every registry keeps, run against both.
func TestContract(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		runContract(t, func(t *testing.T, offlineAfter time.Duration) (registry, registry) {
			m := NewMemory("gw-a", offlineAfter, nil)
			return m, m
		})
	})
	t.Run("etcd", func(t *testing.T) {
		srv := etcdtest.Start(t)
		n := 0
		runContract(t, func(t *testing.T, offlineAfter time.Duration) (registry, registry) {
			n++
			prefix := fmt.Sprintf("/contract%d/", n)
			a := NewEtcd(etcdClient(t, srv.Endpoint), EtcdOptions{Prefix: prefix, Via: "gw-a", OfflineAfter: offlineAfter})
			b := NewEtcd(etcdClient(t, srv.Endpoint), EtcdOptions{Prefix: prefix, Via: "gw-b", OfflineAfter: offlineAfter})
			return a, b
		})
	})
}

func etcdClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func runContract(t *testing.T, newPair pair) {
	t.Run("beat then list", func(t *testing.T) { contractBeatList(t, newPair) })
	t.Run("invalid refused", func(t *testing.T) { contractInvalid(t, newPair) })
	t.Run("online, offline, back", func(t *testing.T) { contractOnline(t, newPair) })
	t.Run("any gateway", func(t *testing.T) { contractAnyGateway(t, newPair) })
}

// sample is a full heartbeat of terminal id.
func sample(id string) Heartbeat {
	at := time.Date(2026, 11, 23, 10, 24, 51, 0, time.UTC)
	return Heartbeat{Terminal: id, Campus: "东院", Version: "1.4.0", Health: HealthDegraded, Reasons: []string{"queue_backlog"},
		Scanners: []Scanner{{Name: "counter", Connected: true, Since: at.Add(-time.Hour), Scans: 212, Reconnects: 1},
			{Name: "kiosk", LastError: "open /dev/ttyUSB1: no such file or directory", Since: at}},
		Queue: Queue{Depth: 12, Dead: 1, OldestPendingSeconds: 420}, LastScan: at, LastError: "12 reports queued", LastErrorAt: at}
}

func list(t *testing.T, r registry) map[string]Terminal {
	t.Helper()
	ts, err := r.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]Terminal{}
	for i, tm := range ts {
		if i > 0 && ts[i-1].Terminal >= tm.Terminal {
			t.Fatalf("List not in terminal order: %q before %q", ts[i-1].Terminal, tm.Terminal)
		}
		m[tm.Terminal] = tm
	}
	return m
}

func contractBeatList(t *testing.T, newPair pair) {
	a, _ := newPair(t, time.Minute)
	ctx := context.Background()
	before := time.Now()
	for _, id := range []string{"counter-02", "counter-01", "kiosk/7"} {
		if err := a.Beat(ctx, sample(id)); err != nil {
			t.Fatal(err)
		}
	}
	got := list(t, a)
	if len(got) != 3 {
		t.Fatalf("listed %d terminals, want 3: %v", len(got), got)
	}
	tm := got["counter-01"]
	want := sample("counter-01")
	if fmt.Sprint(tm.Heartbeat) != fmt.Sprint(want) {
		t.Fatalf("stored heartbeat\n got %+v\nwant %+v", tm.Heartbeat, want)
	}
	if !tm.Online || tm.Via != "gw-a" || tm.LastSeen.Before(before.Add(-time.Second)) || tm.LastSeen.After(time.Now().Add(time.Second)) {
		t.Fatalf("online %v via %q lastSeen %v", tm.Online, tm.Via, tm.LastSeen)
	}
	if _, ok := got["kiosk/7"]; !ok {
		t.Fatal("an id with a slash is not listed")
	}
	// A later heartbeat replaces the earlier.
	hb := sample("counter-01")
	hb.Health, hb.Queue.Depth = HealthOK, 0
	if err := a.Beat(ctx, hb); err != nil {
		t.Fatal(err)
	}
	if got := list(t, a); len(got) != 3 || got["counter-01"].Health != HealthOK || got["counter-01"].Queue.Depth != 0 {
		t.Fatalf("after a second heartbeat: %+v", got["counter-01"])
	}
}

func contractInvalid(t *testing.T, newPair pair) {
	a, _ := newPair(t, time.Minute)
	bad := sample("counter-01")
	bad.Health = "fine"
	for name, hb := range map[string]Heartbeat{"no terminal": sample(""), "bad health": bad} {
		if err := a.Beat(context.Background(), hb); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Beat = %v, want ErrInvalid", name, err)
		}
	}
	if got := list(t, a); len(got) != 0 {
		t.Fatalf("invalid heartbeats stored: %v", got)
	}
}

// Heartbeats keep a terminal online beyond offline_after; silence makes it
// offline, still listed with its last heartbeat; a heartbeat brings it
// back.
func contractOnline(t *testing.T, newPair pair) {
	a, b := newPair(t, time.Second)
	ctx := context.Background()
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if err := a.Beat(ctx, sample("counter-01")); err != nil {
			t.Fatal(err)
		}
		if tm := list(t, b)["counter-01"]; !tm.Online {
			t.Fatal("offline while heartbeats come every 250 ms (offline_after 1s)")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for list(t, b)["counter-01"].Online {
		if time.Now().After(deadline) {
			t.Fatal("still online 5 s after the last heartbeat (offline_after 1s)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if tm, ok := list(t, b)["counter-01"]; !ok || tm.Version != "1.4.0" {
		t.Fatalf("offline terminal not listed with its last heartbeat: %+v", tm)
	}
	if err := b.Beat(ctx, sample("counter-01")); err != nil {
		t.Fatal(err)
	}
	if tm := list(t, a)["counter-01"]; !tm.Online {
		t.Fatal("a heartbeat did not bring the terminal back online")
	}
}

// A terminal that fails over to another gateway stays one terminal, online,
// now via the other gateway; every gateway lists it.
func contractAnyGateway(t *testing.T, newPair pair) {
	a, b := newPair(t, time.Minute)
	ctx := context.Background()
	if err := a.Beat(ctx, sample("counter-01")); err != nil {
		t.Fatal(err)
	}
	if tm := list(t, b)["counter-01"]; !tm.Online || tm.Via != "gw-a" {
		t.Fatalf("the other gateway lists %+v", tm)
	}
	if err := b.Beat(ctx, sample("counter-01")); err != nil {
		t.Fatal(err)
	}
	got := list(t, a)
	if len(got) != 1 || !got["counter-01"].Online {
		t.Fatalf("after a failover: %+v", got)
	}
}
