//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"scanagent/test/fakeplatform/platform"
	"scanagent/test/fakescanner/device"
)

// TestLatencyReport is one round of scripts/bench.sh's end-to-end
// measurements of the real binary on the shipped configuration
// (configs/scanagent.toml: 2 s debounce, platform budget, usage reports
// through the outbox, the local API; only the outside world is swapped for
// the fakes, see shippedConfig), each next to the bare pty → WebSocket
// reader (test/bench/barereader) measured the same way in the same run:
//
//   - start → ready: process start until the API listens, "agent ready" and
//     "scanner connected" (the bare reader: until it listens);
//   - idle: CPU over SCANAGENT_BENCH_IDLE (10s) with one HIS client
//     connected and no scans, then RSS (first baud rate only);
//   - for each baud rate (SCANAGENT_BENCH_BAUDS, 9600,115200) and kind
//     (SCANAGENT_BENCH_KINDS: static, dynamic, id), SCANAGENT_BENCH_N (1000)
//     scans typed one after the other after a warm-up: agent-added latency
//     = the time the WebSocket client received the event − the time the
//     fake scanner's last byte was written − the event's platformMs (the
//     visit's wait for the platform), and the process's CPU per 1000 scans
//     (threads' runtime from /proc, platform calls and the delivery of the
//     usage reports included).
//
// Every payload is distinct (debounce). SCANAGENT_BENCH_PROFILE=DIR records
// perf profiles of the agent. Skipped without SCANAGENT_BENCH=1.
func TestLatencyReport(t *testing.T) {
	benchGate(t)
	n := benchInt("SCANAGENT_BENCH_N", 1000)
	warm := max(5, min(20, n/10))
	idle := benchDuration("SCANAGENT_BENCH_IDLE", 10*time.Second)
	kinds := benchList("SCANAGENT_BENCH_KINDS", "static,dynamic,id")
	round := benchInt("SCANAGENT_BENCH_ROUND", 1)
	var bauds []int
	for _, b := range benchList("SCANAGENT_BENCH_BAUDS", "9600,115200") {
		v, err := strconv.Atoi(b)
		if err != nil {
			t.Fatalf("SCANAGENT_BENCH_BAUDS: %v", err)
		}
		bauds = append(bauds, v)
	}
	fake := platform.New(platform.Config{Strict: true, Cards: benchCards(warm + n)})
	srv := httptest.NewServer(fake.Handler())
	defer srv.Close()

	for bi, baud := range bauds {
		dir := t.TempDir()
		devA, linkA := benchDevice(t, dir, "scanner", baud)
		a := startShipped(t, shippedConfig(t, dir, srv.URL, linkA, baud))
		wsA := dialWS(t, a.addr)
		devB, linkB := benchDevice(t, dir, "bare-scanner", baud)
		b := startBare(t, linkB)
		wsB := dialWS(t, b.addr)
		labels := fmt.Sprintf("baud=%d", baud)
		benchLine("ready", "prog=agent", "ms", ms(a.ready), "baud", baud)
		benchLine("ready", "prog=bare", "ms", ms(b.ready), "baud", baud)

		if bi == 0 && idle > 0 {
			time.Sleep(time.Second) // past the start
			a0, b0 := cpuPrecise(a.pid), cpuPrecise(b.pid)
			time.Sleep(idle)
			a1, b1 := cpuPrecise(a.pid), cpuPrecise(b.pid)
			perS := func(d time.Duration) float64 { return ms(d) / idle.Seconds() }
			benchLine("idle", "prog=agent", "cpu_ms_per_s", perS(a1-a0), "rss_mb", mb(procRSS(a.pid)), "window_s", idle.Seconds(), "baud", baud)
			benchLine("idle", "prog=bare", "cpu_ms_per_s", perS(b1-b0), "rss_mb", mb(procRSS(b.pid)), "window_s", idle.Seconds(), "baud", baud)
		}

		stopPerf := startPerf(t, a.pid, fmt.Sprintf("agent-%d-round%d", baud, round))
		for _, kind := range kinds {
			payload, check := benchPayloads(t, fake, kind)
			settle := func(int) {}
			if kind == "static" {
				// Each static scan queues one reportHISData: the CPU of a
				// scan includes delivering it.
				base := len(fake.Stats().Reports)
				settle = func(scans int) { waitReports(t, fake, base+scans) }
			}
			ra := runScans(t, devA, []*wsClient{wsA}, a.pid, payload, check, warm, n, settle)
			rb := runScans(t, devB, []*wsClient{wsB}, b.pid, payload, checkBare(payload), warm, n, func(int) {})
			l := labels + " kind=" + kind
			wire := ms(time.Duration(len(payload(warm))+1) * devA.ByteTime())
			benchLine("latency", "prog=agent "+l, "n", n, "p50_ms", ms(pct(ra.added, .5)), "p90_ms", ms(pct(ra.added, .9)),
				"p99_ms", ms(pct(ra.added, .99)), "max_ms", ms(pct(ra.added, 1)),
				"platform_p50_ms", ms(pct(ra.platform, .5)), "platform_p99_ms", ms(pct(ra.platform, .99)),
				"inside_p99_ms", ms(pct(ra.inside, .99)), "wire_ms", wire, "refused", ra.refused)
			benchLine("latency", "prog=bare "+l, "n", n, "p50_ms", ms(pct(rb.added, .5)), "p90_ms", ms(pct(rb.added, .9)),
				"p99_ms", ms(pct(rb.added, .99)), "max_ms", ms(pct(rb.added, 1)), "wire_ms", wire)
			benchLine("cpu", "prog=agent "+l, "ms_per_1000", ms(ra.cpu)*1000/float64(n), "stat_ms_per_1000", ms(ra.statCPU)*1000/float64(n), "n", n)
			benchLine("cpu", "prog=bare "+l, "ms_per_1000", ms(rb.cpu)*1000/float64(n), "stat_ms_per_1000", ms(rb.statCPU)*1000/float64(n), "n", n)
		}
		stopPerf()
		a.stop(syscall.SIGINT, 15*time.Second)
		b.stop()
	}
}

// benchPayloads returns the i-th payload of a kind (static and dynamic
// codes of distinct cards, distinct ID numbers) and the check of the
// agent's event for it.
func benchPayloads(t *testing.T, fake *platform.Server, kind string) (payload func(i int) []byte, check func(i int, m scanMsg) error) {
	t.Helper()
	wantKind := map[string]string{"static": "ehc_static", "dynamic": "ehc_dynamic", "id": "id_card"}[kind]
	if wantKind == "" {
		t.Fatalf("unknown kind %q (static, dynamic, id)", kind)
	}
	idNumber := func(i int) string { return benchIDNumber(i, 1) } // the card's
	switch kind {
	case "static":
		payload = func(i int) []byte { return []byte(benchCard(i).QRCodeText) }
	case "dynamic":
		minted := map[int][]byte{}
		payload = func(i int) []byte {
			if p, ok := minted[i]; ok {
				return p
			}
			code, err := fake.MintDynamic(i) // fresh: dynamic codes expire
			if err != nil {
				t.Fatal(err)
			}
			minted[i] = []byte(code)
			return minted[i]
		}
	case "id":
		idNumber = func(i int) string { return benchIDNumber(i, 2) }
		payload = func(i int) []byte { return []byte(idNumber(i)) }
	}
	check = func(i int, m scanMsg) error {
		switch {
		case m.Kind != wantKind:
			return fmt.Errorf("kind %q, want %q", m.Kind, wantKind)
		case m.Error != nil:
			return fmt.Errorf("%w: %s: %s", errRefused, m.Error.Code, m.Error.Message)
		case kind != "id" && !m.Verified:
			return fmt.Errorf("not verified")
		case m.Identity == nil || m.Identity.IDNumber != idNumber(i):
			return fmt.Errorf("identity %+v, want ID number %s", m.Identity, idNumber(i))
		}
		return nil
	}
	return payload, check
}

func checkBare(payload func(int) []byte) func(int, scanMsg) error {
	return func(i int, m scanMsg) error {
		if m.Data != string(payload(i)) {
			return fmt.Errorf("frame %q, want %q", m.Data, payload(i))
		}
		return nil
	}
}

type scanRun struct {
	added    []time.Duration // per client and scan: received − last byte − platformMs
	platform []time.Duration // platformMs
	inside   []time.Duration // the event's own latencyMs − platformMs
	cpu      time.Duration   // of the process, over the measured scans and settle
	statCPU  time.Duration   // the same from /proc/PID/stat (10 ms ticks), a cross-check
	refused  int             // scans the agent refused (at most 1% of them, else the test fails)
}

// errRefused is a refusal by the agent where an identity was expected.
var errRefused = errors.New("refused")

// runScans types warm + n payloads one after the other, each once its
// predecessor reached every client; the first warm scans are not counted.
// settle(k) returns once the process finished the background work of the
// first k scans it accepted (the delivery of their reports); the CPU is
// measured from after the warm-up's settle to after the last settle. A
// refusal where an identity was expected is a real outcome (e.g. "platform
// slow" on a loaded machine): counted and kept, up to 1% of the scans.
func runScans(t *testing.T, dev *device.Device, clients []*wsClient, pid int, payload func(int) []byte, check func(int, scanMsg) error, warm, n int, settle func(int)) scanRun {
	t.Helper()
	var r scanRun
	var cpu0, stat0 time.Duration
	accepted := 0
	for i := 0; i < warm+n; i++ {
		if i == warm {
			settle(accepted)
			cpu0, stat0 = cpuPrecise(pid), procCPU(pid)
		}
		p := payload(i)
		if err := dev.Type(p); err != nil {
			t.Fatal(err)
		}
		last := dev.LastByte()
		var refused error
		for _, c := range clients {
			m, s, err := c.next(10 * time.Second)
			if err == nil {
				err = check(i, s)
			}
			if errors.Is(err, errRefused) {
				refused = err
			} else if err != nil {
				t.Fatalf("scan %d (%s): %v", i, shorten(p), err)
			}
			if i < warm {
				continue
			}
			plat := time.Duration(s.PlatformMs * float64(time.Millisecond))
			r.added = append(r.added, m.at.Sub(last)-plat)
			r.platform = append(r.platform, plat)
			r.inside = append(r.inside, time.Duration(s.LatencyMs*float64(time.Millisecond))-plat)
		}
		if refused == nil {
			accepted++
			continue
		}
		t.Logf("scan %d (%s): %v", i, shorten(p), refused)
		if r.refused++; r.refused > max(3, n/100) {
			t.Fatalf("%d scans refused", r.refused)
		}
	}
	settle(accepted)
	r.cpu, r.statCPU = cpuPrecise(pid)-cpu0, procCPU(pid)-stat0
	return r
}

func shorten(p []byte) string {
	if len(p) > 24 {
		return string(p[:24]) + "…"
	}
	return string(p)
}

// waitReports waits until the fake platform accepted want reportHISData.
func waitReports(t *testing.T, fake *platform.Server, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := len(fake.Stats().Reports)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fake platform accepted %d of %d reports within 60s", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procRSS is a process's resident set in bytes.
func procRSS(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// procCPU is a process's user+system CPU time from /proc/PID/stat (10 ms
// ticks; dead threads included).
func procCPU(pid int) time.Duration {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}
