#!/usr/bin/env bash
# Benchmarks of issue 14, every number next to a baseline measured in the
# same run on the same machine, ending in one table (test/bench/table):
# goal | measured median [min–max] over the rounds | baseline | ratio | target | PASS/FAIL.
#
#   e2e      the real binary on configs/scanagent.toml (only the outbox dir, the
#            platform URLs, the scanner port and the API port swapped for the
#            fakes): agent-added latency last byte → HIS WebSocket client minus
#            platformMs, CPU per 1000 scans, idle CPU and RSS, start → ready,
#            fan-out to 10 clients, RSS with 1000 clients; baseline: the bare
#            pty → WebSocket reader of test/bench/barereader   (test/e2e)
#   hub      the local API's fan-out alone vs a bare broadcast  (internal/his)
#   queue    durable enqueue, 1 and 16 producers, vs raw bbolt; drain clean vs
#            2% slow answers; drain through the platform client (internal/queue,
#            internal/agent)
#   serial   the Serial source's CPU vs a bare reader           (internal/scanner)
#   million  1,000,000 queued reports: RSS after reopen, file size (internal/queue)
#   verify   platform round trip vs a bare POST (info)          (internal/verify)
#
# Rounds: everything runs BENCH_ROUNDS (3) times, except
#   - the 9600-baud latency/CPU runs: BENCH_SLOW_ROUNDS (1) — 1000 scans of each
#     kind, agent and bare reader, are 7 minutes of wire time per round;
#   - TestMillionRecords: once (a minute; file size and RSS barely move);
#   - internal/his TestFanoutLatency: once, it runs its own 3 rounds;
#   - internal/scanner TestSerialCPU: once (a component diagnostic of goal 5; its
#     9600-baud half is 25 s of wire time).
#
# Usage: scripts/bench.sh [N]      N scans per kind and baud rate (default 1000)
# Environment:
#   BENCH_ROUNDS=3 BENCH_SLOW_ROUNDS=1  rounds (see above)
#   BENCH_IDLE=10s                      idle window of the binary
#   BENCH_QUICK=1                       CI-sized: N=100, 1 round, 100k records, 2 s idle
#   BENCH_PROFILE=DIR                   CPU profiles: go test -cpuprofile for the in-process
#                                       benchmarks, perf record of the binary during the e2e runs
#                                       (timings of a profiled run include perf's overhead)
#   BENCH_OUT=FILE                      where the raw measurement lines go
#   BENCH_ONLY="e2e queue ..."          run only these sections
set -uo pipefail
cd "$(dirname "$0")/.."

if [ -n "${BENCH_QUICK:-}" ]; then
	n=${1:-${BENCH_N:-100}}
	rounds=${BENCH_ROUNDS:-1} slow_rounds=${BENCH_SLOW_ROUNDS:-1} idle=${BENCH_IDLE:-2s}
	records=${BENCH_RECORDS:-100000} benchtime=200ms drain_benchtime=200ms drain_agent=2000x serial_scans=50
else
	n=${1:-${BENCH_N:-1000}}
	rounds=${BENCH_ROUNDS:-3} slow_rounds=${BENCH_SLOW_ROUNDS:-1} idle=${BENCH_IDLE:-10s}
	records=${BENCH_RECORDS:-1000000} benchtime=2s drain_benchtime=1s drain_agent=2000x serial_scans=300
fi
only=" ${BENCH_ONLY:-e2e hub queue serial million verify} "
prof=${BENCH_PROFILE:-}
if [ -n "$prof" ]; then
	mkdir -p "$prof" && prof=$(cd "$prof" && pwd)
fi
log=${BENCH_OUT:-/tmp/scanagent-bench-$(date +%Y%m%d-%H%M%S).log}
: >"$log"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
t_start=$SECONDS
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
show='^(bench |Benchmark|fan-out|serial (cpu|idle)|.*records=[0-9]|--- FAIL|FAIL|panic:)'

want() { case "$only" in *" $1 "*) return 0 ;; esac; return 1; }

# measure NAME CMD...: runs CMD, appends its output to the log, shows the
# measurement lines; a failure is reported and the run goes on (its rows
# become n/a in the table).
measure() {
	local name=$1 t0=$SECONDS rc=0
	shift
	echo "== $name" >&2
	"$@" >"$tmp" 2>&1 || rc=$?
	cat "$tmp" >>"$log"
	grep -E "$show" "$tmp" | grep -v '^bench profile' | sed 's/^/   /' >&2
	if [ $rc -ne 0 ]; then
		echo "   FAILED (exit $rc); last lines:" >&2
		tail -n 15 "$tmp" | sed 's/^/   | /' >&2
	fi
	echo "   ($((SECONDS - t0)) s)" >&2
}

# cpuprof NAME: go test flags for a CPU profile under BENCH_PROFILE.
cpuprof() {
	[ -n "$prof" ] && echo "-cpuprofile $prof/$1.pprof -o $prof/$1.test"
}

# The correctness goals are tested, not measured: the table lists the tests.
grep -rHoE '^func Test[A-Za-z0-9_]+' --include='*_test.go' internal cmd test |
	sed -E 's#^(.*)/[^/]+_test\.go:func (Test[A-Za-z0-9_]+)$#test \1 \2#' >>"$log"

if want e2e; then
	for r in $(seq 1 "$rounds"); do
		bauds=115200
		[ "$r" -le "$slow_rounds" ] && bauds=9600,115200
		measure "e2e round $r/$rounds: the binary vs the bare reader, $n scans per kind at $bauds baud" \
			env SCANAGENT_BENCH=1 SCANAGENT_BENCH_N="$n" SCANAGENT_BENCH_ROUND="$r" SCANAGENT_BENCH_BAUDS="$bauds" \
			SCANAGENT_BENCH_IDLE="$idle" SCANAGENT_BENCH_PROFILE="$prof" \
			go test ./test/e2e/ -run '^(TestLatencyReport|TestBenchFanout)$' -count 1 -v -timeout 60m
	done
fi

if want hub; then
	# shellcheck disable=SC2046
	measure "hub: local API fan-out alone vs a bare broadcast (its own 3 rounds)" \
		env SCANAGENT_BENCH=1 go test ./internal/his/ -run '^TestFanout' -count 1 -v -timeout 20m $(cpuprof his-fanout)
fi

if want queue; then
	for r in $(seq 1 "$rounds"); do
		# shellcheck disable=SC2046
		measure "queue round $r/$rounds: durable enqueue vs raw bbolt (same disk, side by side)" \
			go test ./internal/queue/ -run '^$' -bench '^(BenchmarkRawBoltPut|BenchmarkEnqueue1|BenchmarkEnqueue16)$' \
			-benchtime "$benchtime" -count 1 $(cpuprof "queue-enqueue-r$r")
		# shellcheck disable=SC2046
		measure "queue round $r/$rounds: drain, clean vs 2% slow answers" \
			go test ./internal/queue/ -run '^$' -bench '^(BenchmarkDrainClean|BenchmarkDrainSlow)$' \
			-benchtime "$drain_benchtime" -count 1 -timeout 20m $(cpuprof "queue-drain-r$r")
		# shellcheck disable=SC2046
		measure "queue round $r/$rounds: drain through the platform client to the fake platform" \
			go test ./internal/agent/ -run '^$' -bench '^BenchmarkDrain$' -benchtime "$drain_agent" -count 1 $(cpuprof "agent-drain-r$r")
	done
fi

if want serial; then
	# shellcheck disable=SC2046
	measure "serial: the Serial source's CPU vs a bare reader (one round)" \
		env SCANAGENT_BENCH=1 SCANAGENT_BENCH_SCANS="$serial_scans" \
		go test ./internal/scanner/ -run '^TestSerialCPU$' -count 1 -v -timeout 20m $(cpuprof serial)
fi

if want million; then
	measure "million: $records queued reports, file size and RSS after reopen (one round)" \
		env SCANAGENT_BENCH=1 SCANAGENT_BENCH_RECORDS="$records" \
		go test ./internal/queue/ -run '^TestMillionRecords$' -count 1 -v -timeout 30m
fi

if want verify; then
	# shellcheck disable=SC2046
	measure "verify: platform round trip vs a bare POST (info)" \
		go test ./internal/verify/ -run '^$' -bench '^(BenchmarkVerifyStatic|BenchmarkRawPost)$' -benchtime 3000x \
		-count "$rounds" $(cpuprof verify)
fi

elapsed=$((SECONDS - t_start))
title="scanagent scripts/bench.sh — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(go env GOVERSION), commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo '+changes'); N=$n scans per kind and baud, $rounds rounds (9600 baud: $slow_rounds), idle window $idle; took $((elapsed / 60)) min $((elapsed % 60)) s"
title="$title; load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
[ -n "${BENCH_QUICK:-}" ] && title="$title; QUICK MODE: smaller than the goals ask"
[ -n "$prof" ] && title="$title; PROFILED: timings include the profilers' overhead"
echo >&2
go run ./test/bench/table -title "$title" <"$log"
echo
echo "raw measurements: $log"
[ -n "$prof" ] && echo "profiles: $prof (go tool pprof -top FILE.pprof; perf report -i FILE.perf.data, or the .flat.txt/.graph.txt next to it)"
exit 0
