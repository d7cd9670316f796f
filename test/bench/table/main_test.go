package main

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `
bench latency prog=agent baud=9600 kind=static | n=1000 p50_ms=0.2 p99_ms=0.8
bench latency prog=bare baud=9600 kind=static | n=1000 p50_ms=0.1 p99_ms=0.4
bench latency prog=agent baud=115200 kind=static | n=1000 p99_ms=1.5
bench latency prog=agent baud=115200 kind=static | n=1000 p99_ms=0.5
bench latency prog=agent baud=115200 kind=static | n=1000 p99_ms=0.7
bench latency prog=bare baud=115200 kind=static | n=1000 p99_ms=0.5
bench latency prog=bare baud=115200 kind=static | n=1000 p99_ms=0.25
bench latency prog=bare baud=115200 kind=static | n=1000 p99_ms=0.35
bench cpu prog=agent baud=9600 kind=id | ms_per_1000=300
bench cpu prog=bare baud=9600 kind=id | ms_per_1000=250
bench idle prog=agent | cpu_ms_per_s=0.5 rss_mb=14 baud=9600
BenchmarkRawBoltPut-2   	    1000	   4000000 ns/op
BenchmarkEnqueue1-2     	    1000	   5000000 ns/op	 1.000 records/commit
BenchmarkEnqueue16-2    	   20000	    200000 ns/op	 9.000 records/commit
BenchmarkDrainClean-2   	       1	 300000000 ns/op	      8000 records/s
BenchmarkDrainSlow-2    	       1	 400000000 ns/op	      6000 records/s
fan-out clients=10 scans=1000 rounds=3 mode=isolated p50=150µs p99=900µs bare_p50=120µs bare_p99=700µs ratio_p50=1.25 ratio_p99=1.29 p99_range=800..1200µs bare_p99_range=600..800µs
fan-out clients=10 scans=1000 rounds=3 mode=paced p50=150µs p99=3000µs bare_p50=120µs bare_p99=1000µs ratio_p50=1.25 ratio_p99=3.00 p99_range=2000..4000µs bare_p99_range=600..800µs
fan-out memory clients=1000 rss=26.4MB rss_connected=26.1MB rss_total=42.6MB per_client=27.0KB
serial cpu: baud=9600 agent=900ms/1000 bare=800ms/1000 ratio=1.13 (n=300; last byte→At p50/p99 agent=1ms/2ms bare=1ms/2ms)
serial idle: 0.250ms/s (baud=9600, open idle port, whole test process, over 3s)
    bench_test.go:127: records=1000000 enqueue=54.388s (18386/s, 64 producers) reopen=710ms file=251.8 MB (252 B/record) rss=10.5 MB
test internal/visit TestLanesKeepOrderAndIndependence
test internal/queue TestDeliverInOrderPerKind
`

func find(t *testing.T, tb *table, what string) []string {
	t.Helper()
	for _, l := range tb.lines {
		if strings.Contains(l[1], what) {
			return l
		}
	}
	t.Fatalf("no row %q", what)
	return nil
}

func TestTable(t *testing.T) {
	tb := build(parse(strings.NewReader(sample)))
	for _, tt := range []struct {
		what                    string
		measured, ratio, result string
	}{
		{"static code, 9600 baud", "0.800 ms", "2.00×", "PASS"},
		{"static code, 115200 baud", "0.700 ms [0.500–1.50]", "2.00× [2.00–3.00]", "PASS"},
		{"CPU per 1000 scans (d), ID number, 9600", "300 ms", "1.20×", "PASS"},
		{"latency p99 (a), dynamic code, 9600", "n/a", "", "n/a"},
		{"1 producer", "200 /s", "0.800×", "PASS"},
		{"16 producers", "5000 /s", "20.00×", "PASS"},
		{"2% answers", "6000 /s", "1.33×", "PASS"},
		{"clean drain, internal/queue", "8000 /s", "", "PASS"},
		{"hub alone, 10 clients, p99, one scan", "0.900 ms [0.800–1.20]", "1.29×", "PASS"},
		{"hub alone, 10 clients, p99, a scan every", "3.00 ms [2.00–4.00]", "3.00×", "FAIL"},
		{"hub alone, 1000 clients", "26.40 MB", "", "PASS"},
		{"serial source CPU/1000 scans, 9600", "900 ms", "1.12×", "PASS"},
		{"idle port", "0.250 ms/s", "", "PASS"},
		{"RSS after reopen", "10.50 MB", "", "PASS"},
		{"file size", "252 MB", "", "PASS"},
		{"idle CPU", "0.500 ms/s", "", "PASS"},
	} {
		l := find(t, tb, tt.what)
		if l[3] != tt.measured || l[5] != tt.ratio || l[7] != tt.result {
			t.Errorf("%s: got %q / %q / %q, want %q / %q / %q", tt.what, l[3], l[5], l[7], tt.measured, tt.ratio, tt.result)
		}
	}
	if l := find(t, tb, "stay in order"); !strings.Contains(l[3], "TestLanesKeepOrderAndIndependence") || strings.Contains(l[3], "PerKind") {
		t.Errorf("ordering row: %q", l[3])
	}
	for _, l := range tb.lines {
		if strings.Contains(l[1], "slow answer holds") {
			t.Errorf("a correctness row without tests is listed: %v", l)
		}
	}
	var out bytes.Buffer
	tb.write(&out)
	if !strings.Contains(out.String(), "| goal ") || !strings.Contains(out.String(), "PASS,") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[string]float64{"157µs": 0.157, "2.6ms": 2.6, "25.3MB": 25.3, "1234ms/1000": 1234, "0.250ms/s": 0.25, "10": 10, "1.5x": 1.5} {
		if got := num(in); got < want-1e-9 || got > want+1e-9 {
			t.Errorf("num(%q) = %v, want %v", in, got, want)
		}
	}
}
