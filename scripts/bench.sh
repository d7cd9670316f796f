#!/usr/bin/env bash
# Operational benchmarks. Every number is printed next to a baseline
# measured in the same run on the same machine (these machines are noisy):
#   1. platform round trip: agent verification vs a bare net/http POST to the same fake
#   2. the real binary: last byte written by the fake scanner → outcome, vs the wire time;
#      start-to-ready, idle RSS, CPU time per 1000 scans; HIS fan-out vs a bare WebSocket broadcast
#   3. outbox: durable enqueue vs raw bbolt, group commit
#   4. outbox drain rate through the platform client
#   5. outbox with 1,000,000 records: file size and RSS
# Usage: scripts/bench.sh [N]   (N scans for the latency run, default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}

echo "== 1. platform round trip on loopback (go test -bench)"
go test ./internal/verify/ -run '^$' -bench 'BenchmarkVerifyStatic|BenchmarkRawPost' -benchtime 3000x -count 3 | tee /tmp/scanagent-bench-verify.txt | grep Benchmark
awk '/BenchmarkVerifyStatic/ {a+=$3; na++} /BenchmarkRawPost/ {b+=$3; nb++} END { if (na && nb) printf "   verification / raw POST = %.2fx (%.0f µs vs %.0f µs)\n", (a/na)/(b/nb), a/na/1000, b/nb/1000 }' /tmp/scanagent-bench-verify.txt

echo "== 2. the real binary ($n scans per baud rate): scan latency vs wire time; start-to-ready, idle RSS, CPU per 1000 scans"
SCANAGENT_BENCH=1 SCANAGENT_BENCH_N="$n" go test ./test/e2e/ -run TestLatencyReport -count 1 -v -timeout 30m | grep -E '^baud='

echo "== 2b. local API fan-out to 10 WebSocket clients vs a bare loopback WebSocket broadcast"
SCANAGENT_BENCH=1 go test ./internal/his/ -run TestFanoutLatency -count 1 -v | grep -E '^fan-out'

echo "== 3. outbox: durable enqueue vs a raw bbolt Update with one Put per commit (same disk, same run)"
go test ./internal/queue/ -run '^$' -bench 'BenchmarkRawBoltPut|BenchmarkEnqueue1$|BenchmarkEnqueue16' -benchtime 2s -count 2 | tee /tmp/scanagent-bench-queue.txt | grep Benchmark
awk '/BenchmarkRawBoltPut/ {r+=$3; nr++} /BenchmarkEnqueue1-/ {a+=$3; na++} /BenchmarkEnqueue16-/ {b+=$3; nb++}
     END { raw=r/nr; printf "   1 producer:   %.2fx the raw per-record time (%.0f µs vs %.0f µs)\n", (a/na)/raw, a/na/1000, raw/1000;
           printf "   16 producers: %.1fx the raw throughput with group commit (%.0f µs per record)\n", raw/(b/nb), b/nb/1000 }' /tmp/scanagent-bench-queue.txt
echo "== 4. outbox drain through the platform client to the fake platform on loopback (target >= 2000 reports/s)"
go test ./internal/agent/ -run '^$' -bench BenchmarkDrain -benchtime 20000x | grep -E 'Benchmark'
echo "== 5. 1,000,000 queued reports: file size and RSS after reopen (targets < 300 MB, < 100 MB)"
SCANAGENT_BENCH=1 go test ./internal/queue/ -run TestMillionRecords -count 1 -v -timeout 30m | grep -oE 'records=.*'
