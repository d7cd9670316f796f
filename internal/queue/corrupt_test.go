package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
)

// fixture is an outbox with pending records (some in flight with an
// unknown outcome), dead letters and idempotency keys, closed, and what it
// holds.
type fixture struct {
	path    string
	pending map[string]Record // payload → record
	dead    map[string]Record
}

func (f *fixture) total() int { return len(f.pending) + len(f.dead) }

func recPayload(i int) string { return fmt.Sprintf("rec-%04d-%s", i, strings.Repeat("x", 180)) }

// newFixture stores n report records; the first 20 are sent with an
// unknown outcome (requestId kept), 10 binds end as dead letters.
func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outbox.db")
	q := open(t, path, nil)
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if _, err := q.EnqueueKeyed(ctx, "report", fmt.Sprintf("key-%d", i), []byte(recPayload(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		if _, err := q.Enqueue(ctx, "bind", []byte(fmt.Sprintf("bind-%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	recs, _, err := q.due("report", 20)
	if err != nil || len(recs) != 20 {
		t.Fatal(len(recs), err)
	}
	if err := q.prepare("report", recs); err != nil {
		t.Fatal(err)
	}
	if err := q.settle("report", recs, repeat(Verdict{Outcome: Retry, Unknown: true, Reason: "timeout"}, len(recs))); err != nil {
		t.Fatal(err)
	}
	binds, _, _ := q.due("bind", 10)
	if err := q.prepare("bind", binds); err != nil {
		t.Fatal(err)
	}
	if err := q.settle("bind", binds, repeat(Verdict{Outcome: Dead, Reason: "10042"}, len(binds))); err != nil {
		t.Fatal(err)
	}
	f := &fixture{path: path, pending: map[string]Record{}, dead: map[string]Record{}}
	all, _ := q.List(false, 0)
	for _, r := range all {
		f.pending[string(r.Payload)] = r
	}
	dead, _ := q.List(true, 0)
	for _, r := range dead {
		f.dead[string(r.Payload)] = r
	}
	if len(f.pending) != n || len(f.dead) != 10 {
		t.Fatalf("fixture: %d pending, %d dead", len(f.pending), len(f.dead))
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	return f
}

func repeat(v Verdict, n int) []Verdict {
	out := make([]Verdict, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// recordLeaves returns the ids of the live leaf pages holding report
// records, in file order, found with bbolt's own page information.
func recordLeaves(t *testing.T, path string) (ids []int, pageSize int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw, _ := os.ReadFile(path)
	pageSize = db.Info().PageSize
	_ = db.View(func(tx *bolt.Tx) error {
		for id := 2; ; {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return err
			}
			if info.Type == "free" {
				id++
				continue
			}
			page := raw[id*pageSize : (id+1+info.OverflowCount)*pageSize]
			if info.Type == "leaf" && bytes.Contains(page, []byte("rec-")) {
				ids = append(ids, id)
			}
			id += 1 + info.OverflowCount
		}
	})
	return ids, pageSize
}

// inUse is the size of the pages in use (the rest of the file is
// preallocated).
func inUse(t *testing.T, path string) (n int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error { n = int(tx.Size()); return nil })
	return n
}

// branchOf returns a branch page whose first child is one of leaves.
func branchOf(t *testing.T, path string, leaves []int) int {
	t.Helper()
	raw, _ := os.ReadFile(path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ps := db.Info().PageSize
	found := -1
	_ = db.View(func(tx *bolt.Tx) error {
		for id := 2; found < 0; id++ {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return err
			}
			if info.Type == "branch" && slices.Contains(leaves, int(binary.NativeEndian.Uint64(raw[id*ps+16+8:]))) {
				found = id
			}
		}
		return nil
	})
	if found < 0 {
		t.Fatalf("no branch page starts with one of pages %v", leaves)
	}
	return found
}

// checkSalvage opens the damaged outbox and checks that it starts, that
// every record it kept is one of the originals, unchanged (requestId and
// unknown state included), that at least want of them survived, that the
// damaged file was kept aside byte for byte, and that the outbox works.
func checkSalvage(t *testing.T, f *fixture, damaged []byte, want int) *Queue {
	t.Helper()
	q := open(t, f.path, nil)
	t.Cleanup(func() { q.Close() })
	st := q.Stats()
	pending, err := q.List(false, 0)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := q.List(true, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range []struct {
		got  []Record
		orig map[string]Record
	}{{pending, f.pending}, {dead, f.dead}} {
		seen := map[string]bool{}
		for _, r := range set.got {
			o, ok := set.orig[string(r.Payload)]
			if !ok || seen[string(r.Payload)] {
				t.Fatalf("salvaged record %d %.12q is not an original or is doubled", r.Seq, r.Payload)
			}
			seen[string(r.Payload)] = true
			if r.Seq != o.Seq || r.RequestID != o.RequestID || r.Unknown != o.Unknown || r.Attempts != o.Attempts || !r.DeadAt.Equal(o.DeadAt) {
				t.Fatalf("record %d changed in salvage:\n got %+v\nwant %+v", r.Seq, r, o)
			}
		}
	}
	if got := len(pending) + len(dead); got < want || st.Depth() != len(pending) || st.Dead != len(dead) {
		t.Fatalf("salvaged %d pending + %d dead (want ≥ %d); stats depth %d dead %d", len(pending), len(dead), want, st.Depth(), st.Dead)
	}
	rec := st.Recovery
	if rec == nil || rec.Salvaged != len(pending)+len(dead) || (!rec.LostUnknown && rec.Salvaged+rec.Lost != f.total()) {
		t.Fatalf("recovery %+v; salvaged %d of %d", rec, len(pending)+len(dead), f.total())
	}
	t.Logf("recovery: %+v", *rec)
	matches, _ := filepath.Glob(f.path + ".corrupt-*")
	if len(matches) != 1 || rec.File != matches[0] {
		t.Fatalf("damaged file not kept aside: %v (recovery names %s)", matches, rec.File)
	}
	if b, _ := os.ReadFile(matches[0]); !bytes.Equal(b, damaged) {
		t.Fatal("moved-aside file altered")
	}
	if len(st.Alerts) == 0 || !strings.Contains(strings.Join(st.Alerts, " "), matches[0]) {
		t.Fatalf("no alert naming %s: %q", matches[0], st.Alerts)
	}
	// The outbox works: new records get fresh sequence numbers and
	// everything drains.
	seq, err := q.Enqueue(context.Background(), "report", []byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range pending {
		if r.Seq >= seq {
			t.Fatalf("new record got sequence %d, not above salvaged %d", seq, r.Seq)
		}
	}
	stop := run(t, q, &sender{})
	waitFor(t, "drain", func() bool { return q.Stats().Depth() == 0 })
	stop()
	return q
}

// damage applies fn to the file's bytes and writes them back.
func damage(t *testing.T, path string, fn func([]byte) []byte) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw = fn(raw)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return raw
}

// Every shape of damage: the outbox opens, moves the file aside, keeps
// every readable record and keeps working.
func TestDamagedOutboxIsSalvaged(t *testing.T) {
	const n = 300
	for _, tc := range []struct {
		name string
		// fn damages the file; it returns how many records must survive.
		fn func(t *testing.T, f *fixture, raw []byte, leaves []int, ps int) ([]byte, int)
	}{
		{"record page flags", func(t *testing.T, f *fixture, raw []byte, leaves []int, ps int) ([]byte, int) {
			p := leaves[len(leaves)/2]
			raw[p*ps+8], raw[p*ps+9] = 0xff, 0xff // page flags
			return raw, f.total() - 2*n/len(leaves)
		}},
		{"record page elements", func(t *testing.T, f *fixture, raw []byte, leaves []int, ps int) ([]byte, int) {
			p := leaves[len(leaves)/2]
			for i := 16; i < 16+8*16; i++ { // the element table: positions and sizes
				raw[p*ps+i] ^= 0xA5
			}
			return raw, f.total() - 2*n/len(leaves)
		}},
		{"first record page", func(t *testing.T, f *fixture, raw []byte, leaves []int, ps int) ([]byte, int) {
			p := leaves[0]
			copy(raw[p*ps:p*ps+64], bytes.Repeat([]byte{0xEE}, 64))
			return raw, f.total() - 2*n/len(leaves)
		}},
		{"truncated", func(t *testing.T, f *fixture, raw []byte, leaves []int, ps int) ([]byte, int) {
			return raw[:len(raw)/2], 0
		}},
		{"last page cut off", func(t *testing.T, f *fixture, raw []byte, leaves []int, ps int) ([]byte, int) {
			return raw[:inUse(t, f.path)-ps], f.total() - 2*n/len(leaves)
		}},
		{"unused tail cut off", func(t *testing.T, f *fixture, raw []byte, leaves []int, ps int) ([]byte, int) {
			return raw[:inUse(t, f.path)], -1 // not damaged
		}},
		{"branch page points at itself", func(t *testing.T, f *fixture, raw []byte, leaves []int, ps int) ([]byte, int) {
			b := branchOf(t, f.path, leaves)
			copy(raw[b*ps+16+8:], raw[b*ps:b*ps+8]) // first child := the page itself
			return raw, f.total()                   // the cut-off leaf is found as an orphan
		}},
		{"zero bytes", func(t *testing.T, f *fixture, raw []byte, leaves []int, ps int) ([]byte, int) {
			return nil, 0
		}},
		{"meta pages", func(t *testing.T, f *fixture, raw []byte, leaves []int, ps int) ([]byte, int) {
			copy(raw[16:80], bytes.Repeat([]byte{1}, 64))
			copy(raw[ps+16:ps+80], bytes.Repeat([]byte{1}, 64))
			return raw, 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, n)
			leaves, ps := recordLeaves(t, f.path)
			if len(leaves) < 4 {
				t.Fatalf("only %d record pages", len(leaves))
			}
			var want int
			raw := damage(t, f.path, func(b []byte) []byte {
				var out []byte
				out, want = tc.fn(t, f, b, leaves, ps)
				return out
			})
			if want < 0 {
				q := open(t, f.path, nil)
				defer q.Close()
				if st := q.Stats(); st.Recovery != nil || st.Depth() != n || st.Dead != 10 {
					t.Fatalf("sound file treated as damaged: %+v", st)
				}
				return
			}
			checkSalvage(t, f, raw, want)
		})
	}
}

// A healthy file is not moved aside, however often it is reopened.
func TestHealthyOutboxIsNotMovedAside(t *testing.T) {
	f := newFixture(t, 300)
	for i := 0; i < 3; i++ {
		q := open(t, f.path, nil)
		if st := q.Stats(); st.Depth() != 300 || st.Dead != 10 || len(st.Alerts) != 0 {
			t.Fatalf("reopen %d: %+v", i, st)
		}
		q.Close()
	}
	if m, _ := filepath.Glob(f.path + ".corrupt-*"); len(m) != 0 {
		t.Fatalf("healthy file moved aside: %v", m)
	}
}

// A read-only open (the CLI beside a stopped agent) reports the damage
// and leaves the file where it is.
func TestReadOnlyOpenReportsDamage(t *testing.T) {
	f := newFixture(t, 50)
	raw := damage(t, f.path, func(b []byte) []byte { return b[:len(b)/3] })
	_, err := Open(Options{Path: f.path, ReadOnly: true, Log: zerolog.Nop()})
	var dmg *DamagedError
	if !errors.As(err, &dmg) || dmg.Path != f.path {
		t.Fatalf("read-only open of a damaged file: %v", err)
	}
	if b, _ := os.ReadFile(f.path); !bytes.Equal(b, raw) {
		t.Fatal("a read-only open changed the file")
	}
}
