package main

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ratio says how a row's ratio is formed.
type ratio int

const (
	noRatio ratio = iota
	mOverB        // measured / baseline, in the units shown
	bOverM        // baseline / measured (rates turned into times)
)

// row is one line of the table.
type row struct {
	goal, what string
	// m and b are the keys of the measurement and its baseline: the first
	// key present is used.
	m, b []string
	// rkey, when present, is a ratio the test computed itself.
	rkey  string
	ratio ratio
	// conv turns a raw value into the unit shown (nil: as is).
	conv func(float64) float64
	unit string
	// target is shown; pass judges the medians (measured, ratio).
	target string
	pass   func(m, r float64) bool
	// tests, for a correctness row, matches the names of the tests that
	// cover it; the row is left out when none exists.
	tests *regexp.Regexp
}

func k(s ...string) []string { return s }

func perSecond(nsPerOp float64) float64 { return 1e9 / nsPerOp }
func micro(nsPerOp float64) float64     { return nsPerOp / 1e3 }

func below(x float64) func(m, r float64) bool   { return func(m, _ float64) bool { return m < x } }
func atMost(x float64) func(m, r float64) bool  { return func(m, _ float64) bool { return m <= x } }
func atLeast(x float64) func(m, r float64) bool { return func(m, _ float64) bool { return m >= x } }
func ratioAtMost(x float64) func(m, r float64) bool {
	return func(_, r float64) bool { return r <= x }
}
func ratioAtLeast(x float64) func(m, r float64) bool {
	return func(_, r float64) bool { return r >= x }
}

// rows are issue 14's goals, in its order.
func rows() []row {
	var rs []row
	for _, kind := range []string{"static", "dynamic", "id"} {
		for _, baud := range []string{"9600", "115200"} {
			l := "baud=" + baud + " kind=" + kind
			rs = append(rs, row{goal: "1", what: fmt.Sprintf("latency p99 (a), %s, %s baud", kindName(kind), baud),
				m: k("latency " + l + " prog=agent p99_ms"), b: k("latency " + l + " prog=bare p99_ms"), ratio: mOverB,
				unit: "ms", target: "< 1 ms", pass: below(1)})
		}
	}
	rs = append(rs,
		row{goal: "1", what: "report survives a kill between hand-off and commit", tests: regexp.MustCompile(`(?i)handoff`)},
		row{goal: "2", what: "outbox, 1 producer vs raw bbolt commit (b)",
			m: k("go BenchmarkEnqueue1 ns/op"), b: k("go BenchmarkRawBoltPut ns/op"), ratio: mOverB, conv: perSecond,
			unit: "/s", target: "≥ 0.5× raw", pass: ratioAtLeast(0.5)},
		row{goal: "2", what: "outbox, 16 producers vs raw bbolt commit (b)",
			m: k("go BenchmarkEnqueue16 ns/op"), b: k("go BenchmarkRawBoltPut ns/op"), ratio: mOverB, conv: perSecond,
			unit: "/s", target: "≥ 10× raw", pass: ratioAtLeast(10)},
		row{goal: "2", what: "group commit semantics", tests: regexp.MustCompile(`(?i)groupcommit`)},
		row{goal: "3", what: "a source's scans stay in order, sources independent", tests: regexp.MustCompile(`(?i)lanes?|scanorder|inorderpersource`)},
		row{goal: "3", what: "platform budget (3 s), then \"platform slow\"", tests: regexp.MustCompile(`(?i)budget`)},
		row{goal: "4", what: "drain, 2% answers past the timeout: time vs clean (c)",
			m: k("go BenchmarkDrainSlow records/s", "go BenchmarkDrainSlow reports/s"), b: k("go BenchmarkDrainClean records/s", "go BenchmarkDrainClean reports/s"),
			ratio: bOverM, unit: "/s", target: "≤ 1.5× clean time", pass: ratioAtMost(1.5)},
		row{goal: "4", what: "clean drain, internal/queue (c)",
			m: k("go BenchmarkDrainClean records/s", "go BenchmarkDrainClean reports/s"), unit: "/s", target: "≥ 5000/s", pass: atLeast(5000)},
		row{goal: "4", what: "clean drain via platform client, internal/agent (c)",
			m: k("go BenchmarkDrain reports/s", "go BenchmarkDrain records/s"), unit: "/s", target: "≥ 5000/s", pass: atLeast(5000)},
		row{goal: "4", what: "a slow answer holds only its own worker", tests: regexp.MustCompile(`(?i)headofline|holb|slowanswer`)},
	)
	for _, kind := range []string{"static", "dynamic", "id"} {
		for _, baud := range []string{"9600", "115200"} {
			l := "baud=" + baud + " kind=" + kind
			rs = append(rs, row{goal: "5", what: fmt.Sprintf("CPU per 1000 scans (d), %s, %s baud", kindName(kind), baud),
				m: k("cpu " + l + " prog=agent ms_per_1000"), b: k("cpu " + l + " prog=bare ms_per_1000"), ratio: mOverB,
				unit: "ms", target: "≤ 1.5× bare", pass: ratioAtMost(1.5)})
		}
	}
	rs = append(rs,
		row{goal: "5", what: "idle CPU of the binary (e)",
			m: k("idle prog=agent cpu_ms_per_s"), b: k("idle prog=bare cpu_ms_per_s"), unit: "ms/s", target: "≤ 1 ms/s", pass: atMost(1)},
	)
	for _, baud := range []string{"9600", "115200"} {
		rs = append(rs, row{goal: "5", what: "component: serial source CPU/1000 scans, " + baud + " (f)",
			m: k("serial cpu baud=" + baud + " agent"), b: k("serial cpu baud=" + baud + " bare"), ratio: mOverB,
			unit: "ms", target: "≤ 1.5× bare", pass: ratioAtMost(1.5)})
	}
	rs = append(rs,
		row{goal: "5", what: "component: serial source, idle port (f)",
			m: k("serial idle ms_per_s"), unit: "ms/s", target: "≤ 1 ms/s", pass: atMost(1)},
		row{goal: "6", what: "fan-out, 10 clients, latency p99 (g)",
			m: k("fanout baud=115200 clients=10 kind=static prog=agent p99_ms"), b: k("fanout baud=115200 clients=10 kind=static prog=bare p99_ms"),
			ratio: mOverB, unit: "ms", target: "≤ 1.5× bare", pass: ratioAtMost(1.5)},
		row{goal: "6", what: "component: hub alone, 10 clients, p99, one scan at a time (h)",
			m: k("hub fanout clients=10 mode=isolated p99_ms", "hub fanout clients=10 p99_ms"), b: k("hub fanout clients=10 mode=isolated bare_p99_ms", "hub fanout clients=10 bare_p99_ms"),
			rkey: "hub fanout clients=10 mode=isolated ratio_p99", ratio: mOverB, unit: "ms", target: "≤ 1.5× bare", pass: ratioAtMost(1.5)},
		row{goal: "6", what: "component: hub alone, 10 clients, p99, a scan every 200 µs (h)",
			m: k("hub fanout clients=10 mode=paced p99_ms"), b: k("hub fanout clients=10 mode=paced bare_p99_ms"),
			rkey: "hub fanout clients=10 mode=paced ratio_p99", ratio: mOverB, unit: "ms", target: "≤ 1.5× bare", pass: ratioAtMost(1.5)},
		row{goal: "6", what: "1000 HIS clients, RSS of the binary (g)",
			m: k("fanoutmem clients=1000 prog=agent rss_mb"), b: k("fanoutmem clients=1000 prog=bare rss_mb"), ratio: mOverB,
			unit: "MB", target: "< 50 MB", pass: below(50)},
		row{goal: "6", what: "component: hub alone, 1000 clients, RSS growth (h)",
			m: k("hub fanoutmem clients=1000 rss_mb"), unit: "MB", target: "< 50 MB", pass: below(50)},
		row{goal: "7", what: "idle RSS of the binary (e)",
			m: k("idle prog=agent rss_mb"), b: k("idle prog=bare rss_mb"), ratio: mOverB, unit: "MB", target: "< 25 MB", pass: below(25)},
		row{goal: "7", what: "start → ready (e)",
			m: k("ready prog=agent ms"), b: k("ready prog=bare ms"), ratio: mOverB, unit: "ms", target: "< 300 ms", pass: below(300)},
		row{goal: "7", what: "1M queued reports: RSS after reopen (i)",
			m: k("million rss_mb"), unit: "MB", target: "< 100 MB", pass: below(100)},
		row{goal: "7", what: "1M queued reports: file size (i)",
			m: k("million file_mb"), unit: "MB", target: "< 300 MB", pass: below(300)},
		row{goal: "info", what: "verify round trip vs bare POST (j)",
			m: k("go BenchmarkVerifyStatic ns/op"), b: k("go BenchmarkRawPost ns/op"), ratio: mOverB, conv: micro, unit: "µs"},
	)
	return rs
}

func kindName(kind string) string {
	return map[string]string{"static": "static code", "dynamic": "dynamic code", "id": "ID number"}[kind]
}

type table struct {
	header         []string
	lines          [][]string
	pass, fail, na int
}

func (d *data) get(keys []string) *series {
	for _, key := range keys {
		if s := d.series[key]; s != nil {
			return s
		}
	}
	return nil
}

func build(d *data) *table {
	t := &table{header: []string{"goal", "measurement", "rounds", "measured: median [min–max]", "baseline (same run)", "ratio: median [min–max]", "target", "result"}}
	for _, r := range rows() {
		if r.tests != nil {
			var names []string
			for name, dir := range d.tests {
				if r.tests.MatchString(name) {
					names = append(names, name+" ("+dir+")")
				}
			}
			if len(names) == 0 {
				continue
			}
			slices.Sort(names)
			t.lines = append(t.lines, []string{r.goal, r.what, "", "tested by " + strings.Join(names, ", "), "", "", "correctness", "see tests"})
			continue
		}
		if s := d.series["million records"]; s != nil && strings.HasPrefix(r.what, "1M ") {
			if n := s.stats().median; n != 1e6 {
				r.what = fmt.Sprintf("only %.0f", n) + strings.TrimPrefix(r.what, "1M")
			}
		}
		t.lines = append(t.lines, t.row(d, r))
	}
	return t
}

func (t *table) row(d *data, r row) []string {
	conv := r.conv
	if conv == nil {
		conv = func(v float64) float64 { return v }
	}
	out := []string{r.goal, r.what, "", "n/a", "", "", r.target, "n/a"}
	ms := d.get(r.m)
	if ms == nil {
		t.na++
		return out
	}
	m := convAgg(ms.stats(), conv)
	out[2] = strconv.Itoa(m.rounds)
	out[3] = spread(m, r.unit)
	bs := d.get(r.b)
	rmed := math.NaN()
	if bs != nil {
		b := convAgg(bs.stats(), conv)
		out[4] = fmtNum(b.median) + " " + r.unit
		var rs agg
		switch {
		case r.rkey != "" && d.series[r.rkey] != nil:
			rs = d.series[r.rkey].stats()
		case r.ratio != noRatio && ms.agg == nil && bs.agg == nil && len(ms.vals) == len(bs.vals):
			var per []float64
			for i := range ms.vals {
				per = append(per, ratioOf(r.ratio, conv(ms.vals[i]), conv(bs.vals[i])))
			}
			rs = (&series{vals: per}).stats()
		case r.ratio != noRatio:
			x := ratioOf(r.ratio, m.median, b.median)
			rs = agg{median: x, min: x, max: x, rounds: 1}
		}
		if r.ratio != noRatio {
			rmed = rs.median
			out[5] = spread(rs, "×")
		}
	} else if r.ratio != noRatio {
		out[4], out[5] = "n/a", "n/a"
	}
	switch {
	case r.pass == nil:
		out[7] = "info"
	case r.ratio != noRatio && math.IsNaN(rmed) && isRatioTarget(r.target):
		out[7] = "n/a"
		t.na++
	case r.pass(m.median, rmed):
		out[7] = "PASS"
		t.pass++
	default:
		out[7] = "FAIL"
		t.fail++
	}
	return out
}

func isRatioTarget(target string) bool { return strings.Contains(target, "×") }

func ratioOf(r ratio, m, b float64) float64 {
	if r == bOverM {
		return b / m
	}
	return m / b
}

func convAgg(a agg, conv func(float64) float64) agg {
	lo, hi := conv(a.min), conv(a.max)
	if lo > hi {
		lo, hi = hi, lo
	}
	return agg{median: conv(a.median), min: lo, max: hi, rounds: a.rounds}
}

func spread(a agg, unit string) string {
	u := unit
	if u != "×" && u != "" {
		u = " " + u
	}
	if a.rounds <= 1 || a.min == a.max {
		return fmtNum(a.median) + u
	}
	return fmt.Sprintf("%s%s [%s–%s]", fmtNum(a.median), u, fmtNum(a.min), fmtNum(a.max))
}

func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v):
		return "n/a"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1: // 24.99 MB is not shown as 25.0 beside "< 25 MB"
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// write prints the table as aligned Markdown, then the tally.
func (t *table) write(w io.Writer) {
	width := make([]int, len(t.header))
	for _, l := range append([][]string{t.header}, t.lines...) {
		for i, c := range l {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)))
		}
		fmt.Fprintln(w, b.String())
	}
	line(t.header)
	sep := make([]string, len(width))
	for i, n := range width {
		sep[i] = strings.Repeat("-", n)
	}
	line(sep)
	for _, l := range t.lines {
		line(l)
	}
	fmt.Fprintf(w, "\n%d PASS, %d FAIL, %d n/a\n\n%s", t.pass, t.fail, t.na, legend)
}

// legend says how each row is measured.
const legend = `(a) The real binary on configs/scanagent.toml (outbox, platform URLs, scanner port and API port swapped
    for the fakes), fake scanner typing on a pty, N distinct payloads one after the other after a warm-up:
    time the HIS WebSocket client received the event − time the last byte was written − the event's
    platformMs. Baseline: test/bench/barereader (pty → read → split on CR → WebSocket), measured the same way.
(b) go test -bench, records/s = 1e9 / ns/op; raw = one bbolt Update with one Put (fsync) per record.
(c) records/s of the benchmark; ratio = clean rate / slow rate (the drain-time ratio).
(d) CPU of the process (threads' runtime from /proc) over the N scans and the delivery of their
    reports, per 1000 scans; baseline: the bare reader over the same payloads.
(e) Idle: CPU over an idle window (one HIS client connected, no scans), then VmRSS. Ready: process start
    → API listening + "agent ready" + "scanner connected" (bare reader: port open and listening).
(f) internal/scanner TestSerialCPU: the Serial source alone vs a bare reader of the same pty.
(g) The binary with 10 WebSocket clients (latency per client and scan, as (a), static codes); and with
    1000 clients connected (his.api.max_stream_clients raised to 1000) after 3 scans reached them all.
(h) internal/his TestFanoutLatency: the hub alone vs a bare broadcast; its own rounds and spread.
(i) internal/queue TestMillionRecords, one round.
(j) internal/verify BenchmarkVerifyStatic vs BenchmarkRawPost, µs per call; not a goal of issue 14.
Rounds: each occurrence of a measurement in the input is one round; PASS/FAIL is judged on the medians.
`
