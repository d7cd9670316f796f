#!/usr/bin/env bash
# Checks packaging/versions.sh: the Debian, MSI and file versions derived
# from release versions, and that Debian orders them as releases go
# (pre-release < release < later commits). Run by scripts/package.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
pass=0 fail=0
is() { # VERSION  filever debver numver pre
  local filever debver numver pre
  eval "$(packaging/versions.sh "$1")"
  if [ "$filever|$debver|$numver|$pre" = "$2|$3|$4|$5" ]; then pass=$((pass+1)); else
    echo "FAIL $1: got $filever|$debver|$numver|$pre, want $2|$3|$4|$5"; fail=$((fail+1)); fi
}
is 1.2.3                        1.2.3                        1.2.3-1                          1.2.3 ''
is v1.2.3-rc.1                  1.2.3-rc.1                   1.2.3~rc.1-1                     1.2.3 -rc.1
is v1.2.3-4-gabcdef0            1.2.3-4-gabcdef0             1.2.3+git4.gabcdef0-1            1.2.3 -4-gabcdef0
is v1.2.3-rc.1-5-gabc1234-dirty 1.2.3-rc.1-5-gabc1234-dirty  1.2.3~rc.1+git5.gabc1234.dirty-1 1.2.3 -rc.1-5-gabc1234-dirty
is 0.0.0-ci                     0.0.0-ci                     0.0.0~ci-1                       0.0.0 -ci
is a76207f                      0.0.0-a76207f                0.0.0~a76207f-1                  0.0.0 -a76207f
is 2.1                          2.1                          2.1-1                            2.1.0 ''
is v1.2.3+build.7               1.2.3+build.7                1.2.3+build.7-1                  1.2.3 +build.7
if packaging/versions.sh 256.0.0 >/dev/null 2>&1; then echo "FAIL 256.0.0 accepted (MSI major <= 255)"; fail=$((fail+1)); else pass=$((pass+1)); fi
prev=
for v in 1.2.3-rc.1 1.2.3-rc.2 1.2.3 v1.2.3-4-gabcdef0 1.2.4-rc.1 1.2.4; do
  eval "$(packaging/versions.sh "$v")"
  if [ -n "$prev" ] && ! dpkg --compare-versions "$prev" lt "$debver"; then
    echo "FAIL Debian orders $prev after $debver"; fail=$((fail+1)); else pass=$((pass+1)); fi
  prev=$debver
done
echo "versions: $pass passed, $fail failed"
[ "$fail" = 0 ]
