#!/usr/bin/env bash
# Runs every fuzz target of the module, one after the other, for FUZZTIME
# each (default 2m). CI runs only their seed corpora (make test); this is
# the long run. A crasher is written under the package's testdata/fuzz/
# and fails the run.
#
# Usage: scripts/fuzz.sh [PATTERN]   only targets whose name matches PATTERN
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-2m}
pattern=${1:-.}
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
while IFS=: read -r file name; do
	pkg=./$(dirname "$file")
	echo "== $pkg $name ($fuzztime)"
	if go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" >"$out" 2>&1; then
		tail -n 2 "$out"
	elif grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written to' "$out"; then
		# The Go fuzzer can report its own deadline as a failure when
		# fuzztime ends while it minimises a new input: no crasher.
		echo "ok (fuzztime ended while minimising; no failing input)"
	else
		tail -n 40 "$out"
		failed=1
	fi
done < <(grep -rHo --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+' internal test cmd 2>/dev/null |
	sed -E 's/:func /:/' | grep -E ":.*${pattern}" | sort)
exit $failed
