#!/usr/bin/env bash
# Full crash test of the outbox through the real binary: N usage reports
# posted to the local API while kill -9 hits the agent K times at random
# moments and the fake platform has outage windows. Prints
#   accepted=N delivered=N lost=0 dup=K
# Usage: scripts/crash.sh [N] [KILLS]   (default 10000 20)
set -euo pipefail
cd "$(dirname "$0")/.."
SCANAGENT_CRASH_N=${1:-10000} SCANAGENT_CRASH_KILLS=${2:-20} \
  go test ./test/e2e/ -run TestCrashExactlyOnce -count 1 -v -timeout 30m | grep -E 'accepted=|^(ok|FAIL|---)'
