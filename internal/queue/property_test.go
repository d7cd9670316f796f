package queue

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// platformModel accepts a requestId once: a replay is 10054.
type platformModel struct {
	mu        sync.Mutex
	seen      map[string]bool
	delivered map[string]int // payload → times accepted
}

// send processes an attempt; lose makes the answer get lost (the request
// was processed, the caller hears nothing); fail makes it fail before
// processing.
func (p *platformModel) send(payload []byte, rid string, lose, fail bool) Verdict {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fail {
		return Verdict{Outcome: Retry, Reason: "platform fault"}
	}
	if p.seen[rid] {
		return Verdict{Outcome: Duplicate}
	}
	p.seen[rid] = true
	p.delivered[string(payload)]++
	if lose {
		return Verdict{Outcome: Retry, Unknown: true, Reason: "timeout"}
	}
	return Verdict{Outcome: Delivered}
}

// FuzzCrashInterleavings drives the outbox through random interleavings of
// enqueue, delivery rounds that succeed, fail, lose the answer, or crash
// between sending and settling, and reopen; then drains. Every accepted
// record must reach the platform exactly once and the stored order must
// stay the arrival order.
func FuzzCrashInterleavings(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 3, 4, 2, 0, 5, 1})
	f.Add([]byte{0, 0, 3, 3, 3, 0, 2, 2, 5, 5, 4, 1})
	f.Add([]byte{0, 5, 4, 0, 3, 1, 0, 0, 2, 4, 5, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		path := filepath.Join(t.TempDir(), "q.db")
		clock := time.Unix(1_800_000_000, 0)
		now := func() time.Time { return clock }
		opts := Options{Path: path, Concurrency: 2, RetryMin: time.Second, RetryMax: time.Minute, Log: zerolog.Nop(), Now: now}
		q, err := Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		pm := &platformModel{seen: map[string]bool{}, delivered: map[string]int{}}
		var accepted []string
		round := func(lose, fail, crash bool) {
			recs, _, err := q.due("report", 4)
			if err != nil || len(recs) == 0 {
				return
			}
			if err := q.prepare("report", recs); err != nil {
				t.Fatal(err)
			}
			vs := make([]Verdict, len(recs))
			for i, r := range recs {
				vs[i] = pm.send(r.Payload, r.RequestID, lose, fail)
			}
			if crash {
				q.Close()
				if q, err = Open(opts); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err := q.settle("report", recs, vs); err != nil {
				t.Fatal(err)
			}
		}
		for i, op := range ops {
			clock = clock.Add(time.Hour)
			switch op % 6 {
			case 0:
				p := fmt.Sprintf("r%03d", i)
				if _, err := q.Enqueue(context.Background(), "report", []byte(p)); err != nil {
					t.Fatal(err)
				}
				accepted = append(accepted, p)
			case 1:
				round(false, false, false)
			case 2:
				round(false, true, false)
			case 3:
				round(false, false, true)
			case 4:
				q.Close()
				if q, err = Open(opts); err != nil {
					t.Fatal(err)
				}
			case 5:
				round(true, false, false)
			}
			// Stored order is arrival order, and the persisted counters
			// agree with the records.
			recs, _ := q.List(false, 0)
			if d := q.Stats().Depth(); d != len(recs) {
				t.Fatalf("depth counter %d, records %d (ops %v)", d, len(recs), ops)
			}
			for j := 1; j < len(recs); j++ {
				if recs[j].Seq <= recs[j-1].Seq || string(recs[j].Payload) <= string(recs[j-1].Payload) {
					t.Fatalf("reordered: %v then %v", recs[j-1], recs[j])
				}
			}
		}
		for n := 0; q.Stats().Depth() > 0; n++ {
			if n > 1000 {
				t.Fatal("queue does not drain")
			}
			clock = clock.Add(time.Hour)
			round(false, false, false)
		}
		q.Close()
		for _, p := range accepted {
			if pm.delivered[p] != 1 {
				t.Fatalf("record %s delivered %d times (ops %v)", p, pm.delivered[p], ops)
			}
		}
		if len(pm.delivered) != len(accepted) {
			t.Fatalf("platform got %d records, %d accepted", len(pm.delivered), len(accepted))
		}
	})
}
