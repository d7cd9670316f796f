package queue

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
)

// The page reader reads what bbolt wrote: every key and value of every
// top-level bucket, through branch pages, overflow pages, inline and
// nested buckets, with no problem reported.
func TestPageReaderMatchesBbolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	err = db.Update(func(tx *bolt.Tx) error {
		big, _ := tx.CreateBucket([]byte("big"))
		for i := 0; i < 5000; i++ {
			big.Put([]byte(fmt.Sprintf("k%06d", i)), bytes.Repeat([]byte{byte(i)}, rnd.IntN(300)))
		}
		big.Put([]byte("overflow"), bytes.Repeat([]byte("o"), 20000))
		_ = big.SetSequence(77)
		small, _ := tx.CreateBucket([]byte("inline"))
		small.Put([]byte("a"), []byte("1"))
		nested, _ := big.CreateBucket([]byte("nested"))
		nested.Put([]byte("n"), []byte("dropped"))
		_, err := tx.CreateBucket([]byte("empty"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Free some pages too.
	_ = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("big"))
		for i := 0; i < 5000; i += 3 {
			b.Delete([]byte(fmt.Sprintf("k%06d", i)))
		}
		return nil
	})
	want := map[string]string{}
	_ = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if v != nil {
					want[string(name)+"/"+string(k)] = string(v)
				}
				return nil
			})
		})
	})
	db.Close()

	f, _ := os.Open(path)
	defer f.Close()
	st, _ := f.Stat()
	r, err := newPageReader(f, st.Size(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	got, seqs := map[string]string{}, map[string]uint64{}
	w := newWalk(r)
	w.kv = func(bucket string, k, v []byte) { got[bucket+"/"+string(k)] = string(v) }
	w.bucket = func(name string, seq uint64) { seqs[name] = seq }
	if err := w.run(); err != nil || w.err() != nil {
		t.Fatal(err, w.err())
	}
	if len(got) != len(want) || seqs["big"] != 77 || len(seqs) != 3 {
		t.Fatalf("read %d pairs of %d; sequences %v", len(got), len(want), seqs)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: read %d bytes, bbolt has %d", k, len(got[k]), len(v))
		}
	}
}

// An outbox used every way (enqueue, delivery, dead letters, retries,
// purges, drops, compaction) and reopened after each round is always
// found sound.
func TestVerifyAcceptsEveryUsedOutbox(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	opts := func(o *Options) { o.MaxRecords = 400; o.FullPolicy = "drop_oldest" }
	rnd := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 12; round++ {
		q := open(t, path, opts)
		if st := q.Stats(); st.Recovery != nil {
			t.Fatalf("round %d: a sound outbox was found damaged: %+v", round, st.Recovery)
		}
		for i := 0; i < 150; i++ {
			kind := []string{"report", "bind"}[rnd.IntN(2)]
			q.Enqueue(context.Background(), kind, bytes.Repeat([]byte{'a' + byte(i%26)}, rnd.IntN(3000)))
		}
		s := &sender{fn: func(_ string, _ []byte, _ string, n int) Verdict {
			return []Verdict{{Outcome: Delivered}, {Outcome: Dead}, {Outcome: Retry, Unknown: true}, {Outcome: Retry}}[n%4]
		}}
		stop := run(t, q, s)
		time.Sleep(30 * time.Millisecond)
		stop()
		switch round % 4 {
		case 1:
			q.RetryDead()
		case 2:
			q.Purge(true)
		case 3:
			if _, _, err := q.Compact(); err != nil {
				t.Fatal(err)
			}
		}
		q.Close()
	}
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 0 {
		t.Fatalf("sound outbox moved aside: %v", m)
	}
}

// Verification stops at its deadline and trusts the rest of the file,
// with a warning; if that run does not stop cleanly, the next start
// verifies the whole file.
func TestVerifyDeadline(t *testing.T) {
	f := newFixture(t, 300)
	var logs bytes.Buffer
	o := func(o *Options) { o.VerifyTimeout = time.Nanosecond; o.Log = zerolog.New(&logs) }
	q := open(t, f.path, o)
	if !strings.Contains(logs.String(), "verification stopped at its deadline") || q.Stats().Depth() != 300 {
		t.Fatalf("log %s; stats %+v", logs.String(), q.Stats())
	}
	marker := f.path + ".unverified"
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("no marker while the file is only partly verified")
	}
	// The run dies; meanwhile a page beyond the deadline is damaged.
	kill(q)
	leaves, ps := recordLeaves(t, f.path)
	damage(t, f.path, func(b []byte) []byte { b[leaves[len(leaves)/2]*ps+8] = 0xff; return b })
	logs.Reset()
	q = open(t, f.path, o)
	if st := q.Stats(); st.Recovery == nil || !strings.Contains(logs.String(), "verifying all of it") {
		t.Fatalf("damage past the deadline not found after an unclean stop: %+v\n%s", st, logs.String())
	}
	q.Close()
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("marker left after a clean stop")
	}
}

// The page reader never panics, loops or reads out of bounds, whatever
// bytes of a file are damaged: the fuzzer overwrites bytes of a small
// outbox and the walk (verification and orphan scan) must simply end.
func FuzzPageReader(f *testing.F) {
	path := filepath.Join(f.TempDir(), "q.db")
	q := open(f, path, func(o *Options) { o.Reserve = -1 })
	for i := 0; i < 120; i++ {
		q.Enqueue(context.Background(), []string{"report", "bind"}[i%2], bytes.Repeat([]byte{'p'}, 150))
	}
	q.Close()
	base, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0x20, 0x10, 0xff})
	f.Add([]byte{0x00, 0x30, 0x01, 0x18, 0x30, 0x02})
	f.Fuzz(func(t *testing.T, edits []byte) {
		file := append([]byte(nil), base...)
		for i := 0; i+2 < len(edits); i += 3 {
			// Offsets fall mostly on page headers and element tables.
			off := (int(edits[i])<<8 | int(edits[i+1])) * 4 % len(file)
			file[off] = edits[i+2]
		}
		r, err := newPageReader(bytes.NewReader(file), int64(len(file)), time.Time{})
		if err != nil {
			return
		}
		w := newWalk(r)
		w.kv = func(string, []byte, []byte) {}
		if err := w.walkAll(); err != nil {
			t.Fatal(err)
		}
		w.orphans(func([]byte, []byte) {})
	})
}
