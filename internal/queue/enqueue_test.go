package queue

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBounds(t *testing.T) {
	ctx := context.Background()
	t.Run("reject", func(t *testing.T) {
		q := open(t, filepath.Join(t.TempDir(), "q.db"), func(o *Options) { o.MaxRecords = 3 })
		defer q.Close()
		for i := 0; i < 3; i++ {
			if _, err := q.Enqueue(ctx, "report", []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := q.Enqueue(ctx, "report", []byte("x")); !errors.Is(err, ErrFull) {
			t.Fatalf("err = %v, want ErrFull", err)
		}
		if q.Stats().Depth() != 3 {
			t.Fatal("depth changed")
		}
	})
	t.Run("bytes", func(t *testing.T) {
		q := open(t, filepath.Join(t.TempDir(), "q.db"), func(o *Options) { o.MaxBytes = 1000 })
		defer q.Close()
		var err error
		for i := 0; i < 20 && err == nil; i++ {
			_, err = q.Enqueue(ctx, "report", bytes.Repeat([]byte("x"), 100))
		}
		if !errors.Is(err, ErrFull) || q.Stats().PendingBytes > 1000 {
			t.Fatalf("err = %v, bytes %d", err, q.Stats().PendingBytes)
		}
	})
	t.Run("drop_oldest", func(t *testing.T) {
		q := open(t, filepath.Join(t.TempDir(), "q.db"), func(o *Options) { o.MaxRecords = 3; o.FullPolicy = "drop_oldest" })
		defer q.Close()
		for i := 0; i < 5; i++ {
			if _, err := q.Enqueue(ctx, []string{"report", "bind"}[i%2], []byte{byte('0' + i)}); err != nil {
				t.Fatal(err)
			}
		}
		recs, _ := q.List(false, 0)
		var got []string
		for _, r := range recs {
			got = append(got, string(r.Payload))
		}
		if st := q.Stats(); st.Depth() != 3 || st.Dropped != 2 || strings.Contains(strings.Join(got, ""), "0") || strings.Contains(strings.Join(got, ""), "1") {
			t.Fatalf("after drop_oldest: %v %+v", got, st)
		}
	})
}

func TestGroupCommit(t *testing.T) {
	q := open(t, filepath.Join(t.TempDir(), "q.db"), nil)
	defer q.Close()
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if _, err := q.Enqueue(context.Background(), "report", []byte("x")); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	commits := q.writeCount()
	if q.Stats().Depth() != 800 || commits >= 800 {
		t.Fatalf("800 records in %d commits: producers did not share commits", commits)
	}
	t.Logf("800 records from 16 producers in %d commits", commits)
}

func TestCloseCommitsHandedOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := open(t, path, nil)
	var wg sync.WaitGroup
	var accepted sync.Map
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				seq, err := q.Enqueue(context.Background(), "report", []byte("x"))
				if err == nil {
					accepted.Store(seq, true)
				} else if !errors.Is(err, ErrClosed) {
					t.Error(err)
				}
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	q.Close()
	wg.Wait()
	q = open(t, path, nil)
	defer q.Close()
	recs, _ := q.List(false, 0)
	n := 0
	accepted.Range(func(any, any) bool { n++; return true })
	if len(recs) != n {
		t.Fatalf("accepted %d, stored %d", n, len(recs))
	}
}

// A full disk refuses new records with ErrFull and crashes nothing: what
// was stored stays (delivered or still queued), and once space returns
// everything drains. (space_test.go: delivery drains while it is full.)
func TestDiskFullIsRefusal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	q := open(t, path, func(o *Options) { o.MaxFileSize = 256 << 10 })
	ctx := context.Background()
	payload := bytes.Repeat([]byte("p"), 2000)
	var stored int
	var err error
	for i := 0; i < 1000; i++ {
		if _, err = q.Enqueue(ctx, "report", payload); err != nil {
			break
		}
		stored++
	}
	if !errors.Is(err, ErrFull) || stored == 0 || stored == 1000 {
		t.Fatalf("after %d records: err = %v, want ErrFull", stored, err)
	}
	s := &sender{}
	stop := run(t, q, s)
	time.Sleep(300 * time.Millisecond) // delivery goes on while the disk is full
	stop()
	if d := q.Stats().Depth(); d+int(q.Stats().Delivered) != stored {
		t.Fatalf("records lost while full: depth %d + delivered %d != %d", d, q.Stats().Delivered, stored)
	}
	q.Close()
	// Space is back.
	q = open(t, path, nil)
	defer q.Close()
	stop = run(t, q, s)
	waitFor(t, "drain", func() bool { return q.Stats().Depth() == 0 })
	stop()
	if q.Stats().Delivered != int64(stored) {
		t.Fatalf("delivered %d of %d", q.Stats().Delivered, stored)
	}
	if _, err := q.Enqueue(ctx, "report", payload); err != nil {
		t.Fatalf("after space returned: %v", err)
	}
}
