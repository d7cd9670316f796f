package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"scanagent/internal/card"
)

// The fence. When a leader is cut off from etcd, it believes it leads
// until its keep-alives have failed for the lease's TTL, while etcd may
// have expired the lease and elected another gateway already: for a
// moment two gateways think they lead. Two gateways that both fetch
// invalidate each other's tokens, so a fetch is allowed only when etcd
// itself, in a linearizable transaction, says this gateway leads:
//
//  1. the last attempt (the fetch record, stored by whichever leader made
//     it) is at least MinFetchInterval old (RetryFailed after a fetch that
//     failed for certain);
//  2. the lease has enough time left to cover the whole fetch (asked of
//     etcd: TimeToLive, renewed once with KeepAliveOnce when short), so
//     the election key, and with it the leadership, outlives the call;
//  3. a transaction that succeeds only while the election key still has
//     this leadership's create revision (and the fetch record is the one
//     read in 1, so two attempts cannot both pass) records the attempt.
//
// The fetch then runs with a deadline inside the lease. Its token is
// stored by a transaction with the same leadership condition: a gateway
// deposed meanwhile cannot store it, and drops it.

// errFenced is a fence or store transaction that failed its condition.
var errFenced = errors.New("fence: this gateway no longer holds the leadership in etcd")

// tooSoon is a fetch refused because the last one is too recent.
type tooSoon struct {
	last        attempt
	since, wait time.Duration
}

func (e *tooSoon) Error() string {
	return fmt.Sprintf("fence: last getAppToken (%s, by %s) %v ago; the next may come after %v", e.last.Outcome, e.last.By, e.since.Round(time.Millisecond), e.wait)
}

// fenceMargin is kept between the end of a fetch and the end of the lease.
const fenceMargin = time.Second

// attempt is the fetch record: the last getAppToken by any leader.
type attempt struct {
	Epoch int64     `json:"epoch"`
	By    string    `json:"by"`
	At    time.Time `json:"at"`
	// Outcome: "pending" (under way, or the leader died in it), "ok",
	// "failed" (for certain: no token was issued) or "unknown".
	Outcome string `json:"outcome"`
}

// fenced fetches a token under the fence and stores it (see above).
func (n *Node) fenced(t *term) error {
	ctx, cancel := context.WithTimeout(n.ctx, n.o.FetchTimeout+5*time.Second)
	defer cancel()
	prev, prevRev, err := n.lastAttempt(ctx)
	if err != nil {
		return err
	}
	if wait := n.interval(prev); !prev.At.IsZero() {
		if since := n.o.Now().Sub(prev.At); since < wait {
			return &tooSoon{last: prev, since: since, wait: wait}
		}
	}
	leaseEnd, err := n.leaseEnd(ctx, t)
	if err != nil {
		return err
	}
	start := n.o.Now()
	rec := attempt{Epoch: t.rev, By: n.o.ID, At: start, Outcome: "pending"}
	if err := n.txn(ctx, t, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(n.fetchKey), "=", prevRev)}, n.putAttempt(rec)); err != nil {
		return err
	}
	budget := min(n.o.FetchTimeout, leaseEnd.Sub(start)-fenceMargin)
	fctx, fcancel := context.WithTimeout(n.ctx, budget)
	n.mu.Lock()
	n.fetches++
	n.mu.Unlock()
	n.o.Log.Info().Int64("epoch", t.rev).Dur("budget", budget).Msg("fence passed: fetching a new appToken")
	tok, ttl, ferr := n.fetch(fctx)
	fcancel()
	if ferr != nil {
		rec.Outcome = "unknown"
		if e, ok := card.AsError(ferr); ok && !e.Unknown {
			rec.Outcome = "failed"
		}
		if err := n.txn(ctx, t, nil, n.putAttempt(rec)); err != nil {
			n.o.Log.Warn().Err(err).Msg("recording the failed fetch")
		}
		return ferr
	}
	if ttl <= 0 {
		ttl = 7200 * time.Second
	}
	tr := Record{Token: tok, FetchedAt: start, ExpiresAt: start.Add(ttl), Epoch: t.rev, By: n.o.ID}
	sealed, err := n.codec.seal(n.tokenKey, tr)
	if err != nil {
		return err
	}
	rec.Outcome = "ok"
	resp, err := n.txnResp(ctx, t, nil, clientv3.OpPut(n.tokenKey, string(sealed)), n.putAttempt(rec))
	if err != nil {
		// Deposed during the fetch: the new token is dropped, never used.
		// The new leader refetches when the platform refuses the old one.
		n.o.Log.Error().Err(err).Msg("the fetched appToken could not be stored under the fence: dropped")
		return err
	}
	n.apply(tr, resp.Header.Revision)
	return nil
}

// interval is how long after prev the next fetch may come.
func (n *Node) interval(prev attempt) time.Duration {
	if prev.Outcome == "failed" {
		return n.o.RetryFailed
	}
	return n.o.MinFetchInterval
}

// lastAttempt reads the fetch record and its ModRevision (0: none).
func (n *Node) lastAttempt(ctx context.Context) (attempt, int64, error) {
	resp, err := n.cli.Get(ctx, n.fetchKey)
	if err != nil {
		return attempt{}, 0, fmt.Errorf("fence: reading the last fetch: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return attempt{}, 0, nil
	}
	var a attempt
	if err := json.Unmarshal(resp.Kvs[0].Value, &a); err != nil {
		// Unreadable: treat as a fetch just now, the safe side.
		n.o.Log.Warn().Err(err).Msg("unreadable fetch record")
		a = attempt{At: n.o.Now(), Outcome: "unknown", By: "?"}
	}
	return a, resp.Kvs[0].ModRevision, nil
}

// leaseEnd asks etcd how long t's lease has left and returns when it ends
// at the earliest; it fails when that does not cover a fetch.
func (n *Node) leaseEnd(ctx context.Context, t *term) (time.Time, error) {
	need := n.o.FetchTimeout + fenceMargin
	asked := n.o.Now()
	ttl, err := n.cli.TimeToLive(ctx, t.lease)
	if err != nil {
		return time.Time{}, fmt.Errorf("fence: asking the lease's TTL: %w", err)
	}
	left := time.Duration(ttl.TTL) * time.Second
	if ttl.TTL > 0 && left < need {
		asked = n.o.Now()
		ka, err := n.cli.KeepAliveOnce(ctx, t.lease)
		if err != nil {
			return time.Time{}, fmt.Errorf("fence: renewing the lease: %w", err)
		}
		left = time.Duration(ka.TTL) * time.Second
	}
	if ttl.TTL <= 0 {
		return time.Time{}, fmt.Errorf("%w (its lease expired)", errFenced)
	}
	if left < need {
		return time.Time{}, fmt.Errorf("fence: the lease has %v left, a fetch needs %v", left, need)
	}
	// TTLs are whole seconds, rounded down: the lease lives at least
	// left from when it was asked.
	return asked.Add(left), nil
}

// putAttempt is the Put of a fetch record.
func (n *Node) putAttempt(a attempt) clientv3.Op {
	b, _ := json.Marshal(a)
	return clientv3.OpPut(n.fetchKey, string(b))
}

// txn runs ops if t's election key still has t's create revision (and
// every cmp holds); errFenced when it does not.
func (n *Node) txn(ctx context.Context, t *term, cmps []clientv3.Cmp, ops ...clientv3.Op) error {
	_, err := n.txnResp(ctx, t, cmps, ops...)
	return err
}

func (n *Node) txnResp(ctx context.Context, t *term, cmps []clientv3.Cmp, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	cmps = append([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(t.key), "=", t.rev)}, cmps...)
	resp, err := n.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("fence: %w", err)
	}
	if !resp.Succeeded {
		if len(cmps) > 1 {
			return nil, fmt.Errorf("%w, or another fetch was recorded meanwhile", errFenced)
		}
		return nil, errFenced
	}
	return resp, nil
}
