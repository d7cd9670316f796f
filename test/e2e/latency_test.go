//go:build linux

package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"scanagent/test/fakeplatform/platform"
	"scanagent/test/fakescanner/device"
)

// TestLatencyReport measures, over N scans of static e-Health Card codes
// verified against the fake platform on loopback, the time from the last
// byte written by the fake scanner to the outcome leaving the agent, and
// prints it next to the payload's wire time at the same baud, measured in
// the same run. Run by scripts/bench.sh (SCANAGENT_BENCH=1); skipped in CI.
func TestLatencyReport(t *testing.T) {
	if os.Getenv("SCANAGENT_BENCH") == "" {
		t.Skip("set SCANAGENT_BENCH=1 (scripts/bench.sh) to run")
	}
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("SCANAGENT_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	cards := platform.BuiltinCards()
	for _, baud := range []int{9600, 115200} {
		s := newSetup(t, device.Options{Baud: baud, Suffix: "\r"})
		s.debounce, s.logLevel = "0s", "info" // as in production
		started := time.Now()
		a := s.start(s.config(fmt.Sprintf("baud = %d", baud), ""))
		ready := time.Since(started)
		time.Sleep(2 * time.Second)
		idleRSS := procRSS(a.cmd.Process.Pid)
		cpu0 := procCPU(a.cmd.Process.Pid)
		var observed, internal []time.Duration
		for i := 0; i < n; i++ {
			payload := cards[i%len(cards)].QRCodeText
			if os.Getenv("SCANAGENT_BENCH_IDS") != "" {
				payload = "432901198810228888"
			}
			if err := s.dev.Type([]byte(payload)); err != nil {
				t.Fatal(err)
			}
			last := s.dev.LastByte()
			e := a.waitFor("scan", 5*time.Second)
			observed = append(observed, time.Since(last))
			if ms, ok := e["latencyMs"].(float64); ok {
				internal = append(internal, time.Duration(ms*float64(time.Millisecond)))
			}
			if e["verified"] != true && os.Getenv("SCANAGENT_BENCH_IDS") == "" {
				t.Fatalf("scan %d not verified: %v", i, e)
			}
		}
		wire := time.Duration(len(cards[0].QRCodeText)+1) * s.dev.ByteTime()
		p := func(d []time.Duration, q float64) time.Duration {
			slices.Sort(d)
			return d[int(float64(len(d)-1)*q)]
		}
		fmt.Printf("baud=%-6d n=%d wire=%-9v last-byte→outcome p50=%-9v p99=%-9v (p50 = %.3f× wire)  agent-internal p50=%v p99=%v\n",
			baud, n, wire.Round(time.Microsecond), p(observed, .5).Round(time.Microsecond), p(observed, .99).Round(time.Microsecond),
			float64(p(observed, .5))/float64(wire), p(internal, .5).Round(time.Microsecond), p(internal, .99).Round(time.Microsecond))
		cpu := procCPU(a.cmd.Process.Pid) - cpu0
		fmt.Printf("baud=%-6d start-to-ready=%v (process start → scanner connected)  idle RSS=%.1f MB  CPU per 1000 scans=%v (%.0f%% of their wire time)\n",
			baud, ready.Round(time.Millisecond), float64(idleRSS)/1e6, (cpu * 1000 / time.Duration(n)).Round(time.Millisecond),
			100*float64(cpu)/float64(wire*time.Duration(n)))
		a.stop(syscall.SIGINT, 6*time.Second)
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

// procCPU is a process's user+system CPU time.
func procCPU(pid int) time.Duration {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}
