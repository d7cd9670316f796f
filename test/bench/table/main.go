// Command table reads the output of scripts/bench.sh's measurements on
// stdin and prints one table with every goal of issue 14: the measured
// median and spread (min–max) over the rounds, the same-run baseline, the
// ratio, the target and PASS/FAIL. A measurement that is missing (a
// benchmark not written yet, a section skipped) is an n/a row, not an
// error. It understands:
//
//	bench <name> <label>=<v>... | <metric>=<number>...   (test/e2e)
//	BenchmarkX-2  N  123 ns/op  4.5 records/s ...        (go test -bench)
//	fan-out clients=… p99=…µs bare_p99=… ratio_p99=… p99_spread=a..b …
//	fan-out memory clients=1000 rss=…MB                  (internal/his)
//	serial cpu: baud=… agent=…ms/1000 bare=…ms/1000 ratio=…
//	serial idle: …ms/s (baud=…)                          (internal/scanner)
//	records=… reopen=… file=… MB … rss=… MB              (internal/queue)
//	test <package dir> <TestName>                        (scripts/bench.sh)
//
// Each occurrence of a measurement is one round; the ratio of a row is the
// median of the per-round ratios when the measurement and its baseline
// have the same number of rounds, else the ratio of the medians. PASS/FAIL
// is judged on the medians.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	title := flag.String("title", "", "a line printed above the table")
	flag.Parse()
	d := parse(os.Stdin)
	t := build(d)
	if *title != "" {
		fmt.Println(*title)
		fmt.Println()
	}
	t.write(os.Stdout)
}

// series is one measurement: a value per round, or (from a test that
// aggregates its own rounds) a median with its spread.
type series struct {
	vals []float64
	agg  *agg
}

type agg struct {
	median, min, max float64
	rounds           int
}

func (s *series) stats() agg {
	if s.agg != nil {
		return *s.agg
	}
	v := slices.Clone(s.vals)
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return agg{median: m, min: v[0], max: v[len(v)-1], rounds: len(v)}
}

type data struct {
	series map[string]*series
	tests  map[string]string // test name → package dir
}

func (d *data) add(key string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	s := d.series[key]
	if s == nil {
		s = &series{}
		d.series[key] = s
	}
	s.vals = append(s.vals, v)
}

func (d *data) setAgg(key string, a agg) { d.series[key] = &series{agg: &a} }

var (
	reGoBench = regexp.MustCompile(`^(Benchmark[^\s]+?)(?:-\d+)?\s+\d+\s+(.*)$`)
	reFile    = regexp.MustCompile(`\bfile=([0-9.]+) MB`)
	reRSS     = regexp.MustCompile(`\brss=([0-9.]+) MB`)
	reRecords = regexp.MustCompile(`\brecords=(\d+)\b`)
)

func parse(r io.Reader) *data {
	d := &data{series: map[string]*series{}, tests: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		// go test -v prefixes t.Log lines with "file.go:NN: ".
		if i := strings.Index(line, ".go:"); i > 0 && !strings.HasPrefix(line, "bench ") {
			if j := strings.Index(line[i+4:], ": "); j >= 0 {
				line = strings.TrimSpace(line[i+4+j+2:])
			}
		}
		switch {
		case strings.HasPrefix(line, "bench "):
			parseBench(d, line)
		case strings.HasPrefix(line, "test "):
			if f := strings.Fields(line); len(f) == 3 {
				d.tests[f[2]] = f[1]
			}
		case reGoBench.MatchString(line):
			m := reGoBench.FindStringSubmatch(line)
			f := strings.Fields(m[2])
			for i := 0; i+1 < len(f); i += 2 {
				if v, err := strconv.ParseFloat(f[i], 64); err == nil {
					d.add("go "+m[1]+" "+f[i+1], v)
				}
			}
		case strings.HasPrefix(line, "fan-out memory"):
			kv := pairs(strings.TrimPrefix(line, "fan-out memory"))
			if v, ok := kv["rss"]; ok {
				d.add("hub fanoutmem clients="+kv["clients"]+" rss_mb", num(v))
			}
		case strings.HasPrefix(line, "fan-out clients="):
			parseHubFanout(d, line)
		case strings.HasPrefix(line, "serial cpu:"):
			kv := pairs(strings.TrimPrefix(line, "serial cpu:"))
			for _, k := range []string{"agent", "bare", "ratio"} {
				if v, ok := kv[k]; ok {
					d.add("serial cpu baud="+kv["baud"]+" "+k, num(v))
				}
			}
		case strings.HasPrefix(line, "serial idle:"):
			f := strings.Fields(strings.TrimPrefix(line, "serial idle:"))
			if len(f) > 0 {
				d.add("serial idle ms_per_s", num(f[0]))
			}
		case reRecords.MatchString(line) && reFile.MatchString(line) && reRSS.MatchString(line):
			d.add("million file_mb", num(reFile.FindStringSubmatch(line)[1]))
			d.add("million rss_mb", num(reRSS.FindStringSubmatch(line)[1]))
			d.add("million records", num(reRecords.FindStringSubmatch(line)[1]))
		}
	}
	return d
}

// parseBench reads "bench <name> <labels> | <metrics>"; the key of a
// metric is "<name> <labels sorted> <metric>".
func parseBench(d *data, line string) {
	head, metrics, ok := strings.Cut(strings.TrimPrefix(line, "bench "), "|")
	if !ok {
		return
	}
	f := strings.Fields(head)
	if len(f) == 0 {
		return
	}
	labels := f[1:]
	slices.Sort(labels)
	prefix := strings.Join(append([]string{f[0]}, labels...), " ")
	for k, v := range pairs(metrics) {
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			d.add(prefix+" "+k, x)
		}
	}
}

// parseHubFanout reads internal/his's lines, which carry their own rounds'
// medians and spreads; one line per mode (isolated, paced) when it has
// modes.
func parseHubFanout(d *data, line string) {
	kv := pairs(strings.TrimPrefix(line, "fan-out"))
	rounds := int(num(kv["rounds"]))
	if rounds == 0 {
		rounds = 1
	}
	p := "hub fanout clients=" + kv["clients"] + " "
	if m := kv["mode"]; m != "" {
		p += "mode=" + m + " "
	}
	for _, k := range []string{"p50", "p99", "bare_p50", "bare_p99"} {
		v, ok := kv[k]
		if !ok {
			continue
		}
		a := agg{median: num(v), rounds: rounds}
		a.min, a.max = a.median, a.median
		r := kv[k+"_spread"]
		if r == "" {
			r = kv[k+"_range"]
		}
		if lo, hi, ok := strings.Cut(r, ".."); ok {
			if unit := strings.TrimLeft(hi, "0123456789.+-e"); unit != "" && strings.TrimLeft(lo, "0123456789.+-e") == "" {
				lo += unit // "1202..1734µs"
			}
			a.min, a.max = num(lo), num(hi)
		}
		d.setAgg(p+k+"_ms", a)
	}
	if v, ok := kv["ratio_p99"]; ok {
		d.setAgg(p+"ratio_p99", agg{median: num(v), min: num(v), max: num(v), rounds: rounds})
	}
}

// pairs reads k=v tokens up to the first parenthesis.
func pairs(s string) map[string]string {
	if i := strings.IndexByte(s, '('); i >= 0 {
		s = s[:i]
	}
	kv := map[string]string{}
	for _, f := range strings.Fields(s) {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[k] = strings.TrimRight(v, ",;")
		}
	}
	return kv
}

// num reads a number with an optional unit: a Go duration is in
// milliseconds, anything else is its leading number ("25.3MB" → 25.3).
func num(s string) float64 {
	if d, err := time.ParseDuration(s); err == nil && strings.IndexFunc(s, isLetter) >= 0 {
		return float64(d) / float64(time.Millisecond)
	}
	end := 0
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.' || s[end] == '-' || s[end] == '+' || s[end] == 'e') {
		end++
	}
	v, err := strconv.ParseFloat(s[:end], 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

func isLetter(r rune) bool { return r > '9' }
