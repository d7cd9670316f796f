package queue

import (
	"context"
	"crypto/rand"
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

	"scanagent/internal/config"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
)

// A typical reportHISData payload.
var benchPayload = []byte(`{"qrCodeText":"C7DA29345B6DF90A6F5BBEBD73EBE2EDA26F341A6CFEEEB1210A1B2C3D4E5F60:1","time":"2026-11-23 18:00:00","scene":"010101","department":"内科","cardType":"11","cardChannel":"0100"}`)

// BenchmarkRawBoltPut is the baseline: one bbolt Update with one Put per
// commit (fsync each), on the same disk.
func BenchmarkRawBoltPut(b *testing.B) {
	db := openRaw(b)
	defer db.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rawPut(b, db, i)
	}
}

func openRaw(b *testing.B) *bolt.DB {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err })
	return db
}

func rawPut(b *testing.B, db *bolt.DB, i int) {
	err := db.Update(func(tx *bolt.Tx) error {
		k := make([]byte, 8)
		binary.BigEndian.PutUint64(k, uint64(i))
		return tx.Bucket([]byte("b")).Put(k, benchPayload)
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEnqueueVsRaw measures the enqueue goals as ratios, interleaved
// on one disk: each op is a round of 20 raw commits (BenchmarkRawBoltPut's),
// 20 records from one producer and 20 from each of 16 producers (shipped
// options), timed apart. It reports the outbox's rate over the raw commit
// rate: x-raw-1 (goal >= 0.5) and x-raw-16 (goal >= 10). Interleaving
// keeps a disk whose speed drifts (other work on the machine) from
// skewing the ratios, as separate benchmarks run seconds apart can.
func BenchmarkEnqueueVsRaw(b *testing.B) {
	db := openRaw(b)
	defer db.Close()
	q := openShipped(b)
	defer q.Close()
	const n = 20
	var raw, one, sixteen time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		for j := 0; j < n; j++ {
			rawPut(b, db, i*n+j)
		}
		raw += time.Since(start)
		start = time.Now()
		produce(b, q, 1, n)
		one += time.Since(start)
		start = time.Now()
		produce(b, q, 16, n)
		sixteen += time.Since(start)
	}
	b.ReportMetric(float64(raw)/float64(one), "x-raw-1")
	b.ReportMetric(float64(raw)*16/float64(sixteen), "x-raw-16")
}

// produce enqueues n records from each of producers goroutines.
func produce(b *testing.B, q *Queue, producers, n int) {
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if _, err := q.Enqueue(context.Background(), "report", benchPayload); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// shippedOptions are the outbox options of the shipped configuration
// (config.Default(), mapped as agent.QueueOptions maps it) at path: the
// benchmarks measure what ships, batch window included.
// With encryption on (the default), the key is a random one, as the agent
// generates on first start.
func shippedOptions(path string) Options {
	c := config.Default().Queue
	o := Options{Path: path, MaxRecords: c.MaxRecords, MaxBytes: c.MaxBytes, FullPolicy: c.FullPolicy,
		BatchWindow: c.BatchWindow.D(), Concurrency: c.Concurrency, RetryMin: c.RetryMin.D(), RetryMax: c.RetryMax.D(), Log: zerolog.Nop()}
	if c.Encrypt {
		o.Key = make([]byte, 32)
		_, _ = rand.Read(o.Key)
	}
	return o
}

func openShipped(b *testing.B) *Queue {
	q, err := Open(shippedOptions(filepath.Join(b.TempDir(), "q.db")))
	if err != nil {
		b.Fatal(err)
	}
	return q
}

func benchEnqueue(b *testing.B, producers int) {
	q := openShipped(b)
	defer q.Close()
	before := q.writeCount()
	per := (b.N + producers - 1) / producers
	b.ResetTimer()
	produce(b, q, producers, per)
	b.StopTimer()
	b.ReportMetric(float64(per*producers)/float64(q.writeCount()-before), "records/commit")
}

// BenchmarkEnqueue1 is one producer: every record its own durable commit
// (compare its ns/op with BenchmarkRawBoltPut's).
func BenchmarkEnqueue1(b *testing.B) { benchEnqueue(b, 1) }

// BenchmarkEnqueue16 is 16 producers sharing commits (leader/follower,
// no timer with the shipped batch window of 0).
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
