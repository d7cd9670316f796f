package fleet

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"scanagent/internal/ha/etcdtest"
)

// Heartbeats through two gateways keep one lease per terminal alive
// rather than granting one per heartbeat; values that are not heartbeats
// are left out of the list; the gateway that took the last heartbeat is
// named.
func TestEtcdLeasesAndGarbage(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := etcdClient(t, srv.Endpoint)
	a := NewEtcd(cli, EtcdOptions{Prefix: "/h/", Via: "gw-a", OfflineAfter: 90 * time.Second})
	b := NewEtcd(etcdClient(t, srv.Endpoint), EtcdOptions{Prefix: "/h", Via: "gw-b", OfflineAfter: 90 * time.Second})
	ctx := context.Background()
	for i := range 6 {
		r := a
		if i%2 == 1 {
			r = b
		}
		for _, id := range []string{"counter-01", "counter-02"} {
			if err := r.Beat(ctx, sample(id)); err != nil {
				t.Fatal(err)
			}
		}
	}
	leases, err := cli.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(leases.Leases); n != 2 {
		t.Fatalf("%d leases after 12 heartbeats of 2 terminals through 2 gateways; want one per terminal", n)
	}
	resp, err := cli.Get(ctx, "/h/fleet/counter-01/online")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "gw-b" {
		t.Fatalf("online key: %v %v", resp, err)
	}
	if ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil || ttl.GrantedTTL != 90 {
		t.Fatalf("online lease: %+v %v", ttl, err)
	}
	for k, v := range map[string]string{
		"/h/fleet/junk":          "not json",
		"/h/fleet/bad-health":    `{"health":"fine","version":"1"}`,
		"/h/fleet/a/b/c":         `{"health":"ok"}`,
		"/h/fleet/%zz":           `{"health":"ok"}`,
		"/h/fleet/huge-campus":   `{"health":"ok","campus":"` + string(make([]byte, 100)) + `"}`,
		"/h/fleetish/counter-09": `{"health":"ok"}`,
	} {
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	got := list(t, a)
	if len(got) != 2 || got["counter-01"].Via != "gw-b" {
		t.Fatalf("listed %v", got)
	}
}
