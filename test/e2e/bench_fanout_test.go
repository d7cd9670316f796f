//go:build linux

package e2e

import (
	"fmt"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"scanagent/test/fakeplatform/platform"
)

// TestBenchFanout is one round of scripts/bench.sh's HIS fan-out
// measurements of the real binary on the shipped configuration, next to
// the bare reader (test/bench/barereader) in the same run:
//
//   - SCANAGENT_BENCH_CLIENTS (10) WebSocket clients, SCANAGENT_BENCH_N
//     (1000) static codes at 115200 baud: agent-added latency per client
//     and scan (received − last byte − platformMs), p50 and p99 over all;
//   - SCANAGENT_BENCH_BIG_CLIENTS (1000) connected clients: RSS after a few
//     scans reached them all. The shipped cap (his.api.max_stream_clients
//     = 64) is raised to the number of clients: the one change to the
//     shipped configuration in these benchmarks.
//
// Skipped without SCANAGENT_BENCH=1.
func TestBenchFanout(t *testing.T) {
	benchGate(t)
	n := benchInt("SCANAGENT_BENCH_N", 1000)
	warm := max(5, min(20, n/10))
	clients := benchInt("SCANAGENT_BENCH_CLIENTS", 10)
	big := benchInt("SCANAGENT_BENCH_BIG_CLIENTS", 1000)
	const baud = 115200
	fake := platform.New(platform.Config{Strict: true, Cards: benchCards(warm + n)})
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()
	payload, check := benchPayloads(t, fake, "static")
	labels := fmt.Sprintf("clients=%d baud=%d kind=static", clients, baud)

	if clients > 0 {
		dir := t.TempDir()
		devA, linkA := benchDevice(t, dir, "scanner", baud)
		a := startShipped(t, shippedConfig(t, dir, srv.URL, linkA, baud))
		devB, linkB := benchDevice(t, dir, "bare-scanner", baud)
		b := startBare(t, linkB)
		var wsA, wsB []*wsClient
		for range clients {
			wsA, wsB = append(wsA, dialWS(t, a.addr)), append(wsB, dialWS(t, b.addr))
		}
		base := len(fake.Stats().Reports)
		ra := runScans(t, devA, wsA, a.pid, payload, check, warm, n, func(k int) { waitReports(t, fake, base+k) })
		rb := runScans(t, devB, wsB, b.pid, payload, checkBare(payload), warm, n, func(int) {})
		benchLine("fanout", "prog=agent "+labels, "n", n, "p50_ms", ms(pct(ra.added, .5)), "p99_ms", ms(pct(ra.added, .99)),
			"max_ms", ms(pct(ra.added, 1)), "cpu_ms_per_1000", ms(ra.cpu)*1000/float64(n), "refused", ra.refused)
		benchLine("fanout", "prog=bare "+labels, "n", n, "p50_ms", ms(pct(rb.added, .5)), "p99_ms", ms(pct(rb.added, .99)),
			"max_ms", ms(pct(rb.added, 1)), "cpu_ms_per_1000", ms(rb.cpu)*1000/float64(n))
		a.stop(syscall.SIGINT, 15*time.Second)
		b.stop()
	}

	if big > 0 {
		dir := t.TempDir()
		devA, linkA := benchDevice(t, dir, "scanner", baud)
		a := startShipped(t, shippedConfig(t, dir, srv.URL, linkA, baud, tomlKey{"his.api", "max_stream_clients", strconv.Itoa(big)}))
		devB, linkB := benchDevice(t, dir, "bare-scanner", baud)
		b := startBare(t, linkB)
		idleA, idleB := procRSS(a.pid), procRSS(b.pid)
		var wsA, wsB []*wsClient
		for range big {
			wsA, wsB = append(wsA, dialWS(t, a.addr)), append(wsB, dialWS(t, b.addr))
		}
		waitUntil(t, fmt.Sprintf("%d HIS clients", big), func() bool {
			c, _ := a.status(t)["hisClients"].(float64)
			return int(c) >= big
		})
		// A few scans through all of them: the write buffers are part of it.
		runScans(t, devA, wsA, a.pid, payload, check, 0, 3, func(int) {})
		runScans(t, devB, wsB, b.pid, payload, checkBare(payload), 0, 3, func(int) {})
		time.Sleep(500 * time.Millisecond)
		l := fmt.Sprintf("clients=%d", big)
		benchLine("fanoutmem", "prog=agent "+l, "rss_mb", mb(procRSS(a.pid)), "idle_rss_mb", mb(idleA))
		benchLine("fanoutmem", "prog=bare "+l, "rss_mb", mb(procRSS(b.pid)), "idle_rss_mb", mb(idleB))
		for _, c := range append(wsA, wsB...) {
			c.conn.CloseNow()
		}
		a.stop(syscall.SIGINT, 15*time.Second)
		b.stop()
	}
}
