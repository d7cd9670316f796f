#!/usr/bin/env bash
# Windows smoke test under Wine: runs the cross-built scanagent.exe's
# version, config check (good and bad files) and debug parse/sign, and checks
# their output and exit codes. Covers: the Windows build starts, parses its
# embedded and on-disk configuration, recognises codes and signs requests.
# Does not cover: the service manager (SCM), COM ports, HID, the event log.
# Wine 8 lacks bcryptprimitives.dll!ProcessPrng (needed by Go 1.26), so a
# stub built with mingw-w64 from test/wine/ is put into the prefix's
# system32 (the Go runtime loads it from there only).
# Usage: scripts/wine-smoke.sh [path/to/scanagent.exe]
set -euo pipefail
cd "$(dirname "$0")/.."
exe=${1:-}
work=$(mktemp -d)
trap 'wineserver -k >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
if [ -z "$exe" ]; then
  CGO_ENABLED=0 GOOS=windows GOARCH=amd64 go build -o "$work/scanagent.exe" ./cmd/scanagent
else
  cp "$exe" "$work/scanagent.exe"
fi
wine=$(command -v wine64 || echo /usr/lib/wine/wine64)
[ -x "$wine" ] || { echo "wine64 not installed (apt-get install wine64)" >&2; exit 1; }
x86_64-w64-mingw32-gcc -shared -O2 -o "$work/bcryptprimitives.dll" test/wine/bcryptprimitives.c test/wine/bcryptprimitives.def -ladvapi32
export WINEPREFIX="$work/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="bcryptprimitives=n,b;mscoree=;mshtml="
"$wine" wineboot --init >/dev/null 2>&1 || true
cp "$work/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
run() { (cd "$work" && timeout 120 "$wine" scanagent.exe "$@"); }

pass=0 fail=0
check() { # name, expected exit code, expected output fragment, command...
  local name=$1 want=$2 frag=$3; shift 3
  local out rc=0
  out=$(run "$@" 2>&1 | tr -d '\r') || rc=$?
  if [ "$rc" = "$want" ] && grep -qF -- "$frag" <<<"$out"; then
    echo "ok   $name"; pass=$((pass+1))
  else
    echo "FAIL $name: exit $rc (want $want), output:"; echo "$out" | head -20; fail=$((fail+1))
  fi
}
run config sample > "$work/good.toml" 2>/dev/null || true
tr -d '\r' < "$work/good.toml" > "$work/good.unix.toml" && mv "$work/good.unix.toml" "$work/good.toml"
printf '[platform]\nmode = "off"\nbogus = 1\n' > "$work/bad.toml"
printf '{"commonIn":{"appToken":"","requestId":"DB4D975748A84309977EA25224C0F5CF","hospitalId":"90003","timestamp":"1525392000"},"req":{"appId":"a1a2e0bde41574ad8ea9a4bb58022oop"}}' > "$work/body.json"

check "version"                 0 "windows/amd64"       version
check "config check (sample)"   0 "ok"                  config check -c good.toml
check "config check (bad file)" 1 'unknown key "platform.bogus"' config check -c bad.toml
check "debug parse static"      0 '"kind":"ehc_static"' debug parse C7DA29345B6DF90A6F5BBEBD73EBE2EDA26F341A6CFEEEB1210A1B2C3D4E5F60:1
check "debug parse id"          0 '"idNumber":"432901198810228888"' debug parse 432901198810228888
check "debug parse rejected"    1 "bad_checksum"        debug parse 101102199809089988
check "debug sign golden"       0 "TsccMUMTHfOiEovR2hMlRXcQqctRFmPbpPIZdxXCJ/o=" debug sign --secret 8c8e763f443ef983ac33aef1c7085cfb --in body.json
check "unknown command"         2 "unknown command"     frobnicate
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
