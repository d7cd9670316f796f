package queue

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
)

// A typical reportHISData payload.
var benchPayload = []byte(`{"qrCodeText":"C7DA29345B6DF90A6F5BBEBD73EBE2EDA26F341A6CFEEEB1210A1B2C3D4E5F60:1","time":"2026-11-23 18:00:00","scene":"010101","department":"内科","cardType":"11","cardChannel":"0100"}`)

// BenchmarkRawBoltPut is the baseline: one bbolt Update with one Put per
// commit (fsync each), on the same disk.
func BenchmarkRawBoltPut(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := db.Update(func(tx *bolt.Tx) error {
			k := make([]byte, 8)
			binary.BigEndian.PutUint64(k, uint64(i))
			return tx.Bucket([]byte("b")).Put(k, benchPayload)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func benchEnqueue(b *testing.B, producers int) {
	q := open(b, filepath.Join(b.TempDir(), "q.db"), nil)
	defer q.Close()
	ctx := context.Background()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := (b.N + producers - 1) / producers
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if _, err := q.Enqueue(ctx, "report", benchPayload); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	q.mu.Lock()
	b.ReportMetric(float64(per*producers)/float64(q.commits), "records/commit")
	q.mu.Unlock()
}

// BenchmarkEnqueue1 is one producer: every record its own durable commit.
func BenchmarkEnqueue1(b *testing.B) { benchEnqueue(b, 1) }

// BenchmarkEnqueue16 is 16 producers sharing commits.
func BenchmarkEnqueue16(b *testing.B) { benchEnqueue(b, 16) }

// TestMillionRecords measures RSS and file size with 1,000,000 queued
// reports (targets: < 100 MB RSS, < 300 MB file). Run by scripts/bench.sh.
func TestMillionRecords(t *testing.T) {
	if os.Getenv("SCANAGENT_BENCH") == "" {
		t.Skip("set SCANAGENT_BENCH=1 (scripts/bench.sh) to run")
	}
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("SCANAGENT_BENCH_RECORDS")); err == nil && v > 0 {
		n = v
	}
	path := filepath.Join(t.TempDir(), "q.db")
	q, err := Open(Options{Path: path, MaxRecords: n + 1, MaxBytes: 1 << 40, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for p := 0; p < 64; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += 64 {
				if _, err := q.Enqueue(context.Background(), "report", benchPayload); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	q.Close()
	// Reopen as the agent would after a restart with the backlog.
	runtime.GC()
	start = time.Now()
	q, err = Open(Options{Path: path, MaxRecords: n + 1, MaxBytes: 1 << 40, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	reopen := time.Since(start)
	depth := q.Stats().Depth()
	// The agent after a restart with this backlog: its first delivery
	// round reads the head of the queue.
	if _, _, err := q.due("report", 64); err != nil {
		t.Fatal(err)
	}
	debug.FreeOSMemory() // return the producers' garbage: measure the open queue
	rss := vmRSS()
	q.Close()
	st, _ := os.Stat(path)
	t.Logf("records=%d enqueue=%v (%.0f/s, 64 producers) reopen=%v file=%.1f MB (%.0f B/record) rss=%.1f MB",
		depth, took.Round(time.Millisecond), float64(n)/took.Seconds(), reopen.Round(time.Millisecond), float64(st.Size())/1e6, float64(st.Size())/float64(n), float64(rss)/1e6)
	if depth != n {
		t.Fatalf("depth %d", depth)
	}
}

func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
