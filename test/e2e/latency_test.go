//go:build linux

package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
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
		s.debounce = "0s"
		a := s.start(s.config(fmt.Sprintf("baud = %d", baud), ""))
		var observed, internal []time.Duration
		for i := 0; i < n; i++ {
			if err := s.dev.Type([]byte(cards[i%len(cards)].QRCodeText)); err != nil {
				t.Fatal(err)
			}
			last := s.dev.LastByte()
			e := a.waitFor("scan", 5*time.Second)
			observed = append(observed, time.Since(last))
			if ms, ok := e["latencyMs"].(float64); ok {
				internal = append(internal, time.Duration(ms*float64(time.Millisecond)))
			}
			if e["verified"] != true {
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
		a.stop(syscall.SIGINT, 6*time.Second)
	}
}
