package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// holdsExactly opens path and checks it holds the n records of
// fillCompact, each once.
func holdsExactly(t *testing.T, path string, n int) {
	t.Helper()
	q := open(t, path, nil)
	defer q.Close()
	recs, err := q.List(false, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range recs {
		seen[string(r.Payload)]++
	}
	for i := 0; i < n; i++ {
		if c := seen[fmt.Sprintf("c-%04d", i)]; c != 1 {
			t.Fatalf("record c-%04d held %d times (%d records in all)", i, c, len(recs))
		}
	}
	if len(recs) != n || q.Stats().Depth() != n {
		t.Fatalf("%d records, depth %d, want %d", len(recs), q.Stats().Depth(), n)
	}
}

func fillCompact(t *testing.T, path string, n int) *Queue {
	t.Helper()
	q := open(t, path, nil)
	for i := 0; i < n; i++ {
		if _, err := q.Enqueue(context.Background(), "report", []byte(fmt.Sprintf("c-%04d", i))); err != nil {
			t.Fatal(err)
		}
	}
	return q
}

// An agent of an earlier version killed between the two renames of its
// compaction left no outbox.db, the backlog in outbox.db.old and the
// compacted copy in outbox.db.compact; or killed after them, both the new
// file and the old one. The next start finds the backlog, each record once.
func TestOpenRecoversInterruptedLegacyCompaction(t *testing.T) {
	const n = 200
	for _, tc := range []struct {
		name string
		fn   func(path string) error
	}{
		{"between renames", func(path string) error {
			if err := copyFile(path, path+".compact"); err != nil {
				return err
			}
			return os.Rename(path, path+".old")
		}},
		{"before removing old", func(path string) error {
			return copyFile(path, path+".old")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "outbox.db")
			fillCompact(t, path, n).Close()
			if err := tc.fn(path); err != nil {
				t.Fatal(err)
			}
			holdsExactly(t, path, n)
			for _, leftover := range []string{".old", ".compact", ".new"} {
				if _, err := os.Stat(path + leftover); err == nil {
					t.Errorf("%s left behind", leftover)
				}
			}
		})
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

var errKilled = errors.New("killed")

// kill stops q as the death of its process would: no cleanup, the file
// (and its lock) let go.
func kill(q *Queue) {
	q.stopCommits()
	q.db.Close()
}

// Compaction killed after each of its steps, or while writing its copy,
// leaves an outbox that opens with every record once.
func TestCompactionSurvivesAKillAtEveryStep(t *testing.T) {
	const n = 300
	for _, step := range []string{"copying", "copied", "closed", "renamed"} {
		t.Run(step, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "outbox.db")
			q := fillCompact(t, path, n)
			if step == "copying" {
				kill(q)
				// A copy cut short: the start of a bbolt file, no more.
				if err := os.WriteFile(path+".new", make([]byte, 8192), 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				q.compactHook = func(s string) error {
					if s == step {
						return errKilled
					}
					return nil
				}
				if _, _, err := q.Compact(); !errors.Is(err, errKilled) {
					t.Fatalf("compact: %v", err)
				}
				kill(q)
			}
			holdsExactly(t, path, n)
			if _, err := os.Stat(path + ".new"); err == nil {
				t.Error(".new left behind")
			}
			if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 0 {
				t.Errorf("sound outbox moved aside: %v", m)
			}
		})
	}
}

func TestCompactionShrinksAfterDrain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := open(t, path, nil)
	defer q.Close()
	ctx := context.Background()
	payload := bytes.Repeat([]byte("p"), 400)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2500; i++ {
				q.Enqueue(ctx, "report", payload)
			}
		}()
	}
	wg.Wait()
	stop := run(t, q, &sender{})
	waitFor(t, "drain", func() bool { return q.Stats().Depth() == 0 })
	stop()
	before, after, err := q.Compact()
	if err != nil {
		t.Fatal(err)
	}
	if after >= before/2 {
		t.Fatalf("compaction %d → %d", before, after)
	}
	if _, err := q.Enqueue(ctx, "report", []byte("after")); err != nil {
		t.Fatal("enqueue after compaction:", err)
	}
	if st := q.Stats(); st.Depth() != 1 || st.Delivered != 20000 {
		t.Fatalf("counters after compaction: %+v", st)
	}
}
