#!/usr/bin/env bash
# Operational benchmarks. Every number is printed next to a baseline
# measured in the same run on the same machine (these machines are noisy):
#   1. platform round trip: agent verification vs a bare net/http POST to the same fake
#   2. scan latency: last byte written by the fake scanner → outcome, vs the wire time
#   3. outbox: durable enqueue vs raw bbolt, group commit, drain rate (when present)
# Usage: scripts/bench.sh [N]   (N scans for the latency run, default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}

echo "== 1. platform round trip on loopback (go test -bench)"
go test ./internal/verify/ -run '^$' -bench 'BenchmarkVerifyStatic|BenchmarkRawPost' -benchtime 3000x -count 3 | tee /tmp/scanagent-bench-verify.txt | grep Benchmark
awk '/BenchmarkVerifyStatic/ {a+=$3; na++} /BenchmarkRawPost/ {b+=$3; nb++} END { if (na && nb) printf "   verification / raw POST = %.2fx (%.0f µs vs %.0f µs)\n", (a/na)/(b/nb), a/na/1000, b/nb/1000 }' /tmp/scanagent-bench-verify.txt

echo "== 2. scan latency through the real binary ($n scans per baud rate)"
SCANAGENT_BENCH=1 SCANAGENT_BENCH_N="$n" go test ./test/e2e/ -run TestLatencyReport -count 1 -v -timeout 30m | grep -E '^baud='

if ls internal/queue/*_test.go >/dev/null 2>&1 && grep -q BenchmarkEnqueue internal/queue/*_test.go; then
  echo "== 3. outbox"
  go test ./internal/queue/ -run '^$' -bench . -benchtime 2s | grep -E 'Benchmark|ratio'
fi
