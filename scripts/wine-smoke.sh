#!/usr/bin/env bash
# Windows smoke test under Wine, in one wineprefix (Windows 10 mode).
#  1. The exe: version (and its VERSIONINFO), config check (good and bad
#     files), debug parse/sign, exit codes.
#  2. The service through `scanagent install`: registered with the SCM and
#     the event log source, started (runs under services.exe, answers its
#     local API, writes its start to the event log), stopped, uninstalled.
#  3. The MSI (dist/..._x64.msi beside the exe, or the second argument):
#     refused on Windows 8.1 with its message; installed (service started,
#     recovery custom action run, event log source); the configuration
#     edited; upgraded to a vN+1 MSI built here (the edit survives, the
#     service runs the new binary); uninstalled (ProgramData\scanagent keeps
#     the configuration and the outbox).
# Not covered, because Wine 8 does not implement them: the SCM's recovery
# actions and delayed start (its services.exe ignores failure actions and
# refuses the delayed-start level; the MSI's sc.exe step is checked to run,
# build-msi.sh checks its command line), file ACLs (Wine synthesizes them
# from Unix modes, so ProgramData\scanagent's SYSTEM+Administrators ACL set
# by the service cannot be read back), the event message rendering.
# Wine 8 lacks bcryptprimitives.dll!ProcessPrng (needed by Go 1.26), so a
# stub built with mingw-w64 from test/wine/ is put into the prefix's
# system32 (the Go runtime loads it from there only).
# Usage: scripts/wine-smoke.sh [path/to/scanagent.exe [path/to/scanagent.msi]]
#   WINE_SMOKE_KEEP=1 keeps the work folder (prefix, logs) for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=${1:-}
msi=${2:-}
work=$(mktemp -d)
wine=$(command -v wine64 || echo /usr/lib/wine/wine64)
wineserver=$(command -v wineserver || echo /usr/lib/wine/wineserver)
[ -x "$wine" ] || { echo "wine64 not installed (apt-get install wine64)" >&2; exit 1; }
export WINEPREFIX="$work/prefix" WINEDLLOVERRIDES="bcryptprimitives=n,b;mscoree=;mshtml="
trap '"$wineserver" -k >/dev/null 2>&1 || true; [ -n "${WINE_SMOKE_KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
if [ -z "$exe" ]; then
  CGO_ENABLED=0 GOOS=windows GOARCH=amd64 go build -o "$work/scanagent.exe" ./cmd/scanagent
else
  cp "$exe" "$work/scanagent.exe"
  [ -n "$msi" ] || msi="${exe%_windows_amd64.exe}_x64.msi"
fi
x86_64-w64-mingw32-gcc -shared -O2 -o "$work/bcryptprimitives.dll" test/wine/bcryptprimitives.c test/wine/bcryptprimitives.def -ladvapi32

# Create the prefix and wait until its setup has finished (it goes on in the
# background and restarts services.exe, losing services created meanwhile).
export WINEDEBUG=-all
"$wine" wineboot --init </dev/null >/dev/null 2>&1 || true
"$wineserver" -w
cp "$work/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
# Then one wineserver for the whole test (-p: no restart between commands,
# which would auto-start installed services again). services.exe, started
# by the wineboot below, passes its environment and stderr to the services:
# Wine prints ReportEvent texts on its eventlog debug channel, so the
# services' event log goes to eventlog.txt.
"$wineserver" -p </dev/null >/dev/null 2>&1 || true
WINEDEBUG=-all,err+eventlog,warn+eventlog,trace+eventlog "$wine" wineboot </dev/null >/dev/null 2>"$work/eventlog.txt" || true
"$wine" winecfg -v win10 </dev/null >/dev/null 2>&1
event() { grep -qF -- "${1//\\/\\\\}" "$work/eventlog.txt"; } # Wine doubles backslashes there
run() { (cd "$work" && timeout 120 "$wine" scanagent.exe "$@" </dev/null); }
w() { timeout 120 "$wine" "$@" </dev/null 2>&1 | tr -d '\r'; } # any Windows command, output as text

pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass+1)); }
bad() { echo "FAIL $1${2:+: $2}"; fail=$((fail+1)); }
check() { # name, expected exit code, expected output fragment, command...
  local name=$1 want=$2 frag=$3; shift 3
  local out rc=0
  out=$(run "$@" 2>&1 | tr -d '\r') || rc=$?
  if [ "$rc" = "$want" ] && grep -qF -- "$frag" <<<"$out"; then
    ok "$name"
  else
    bad "$name" "exit $rc (want $want), output:"; echo "$out" | head -20
  fi
}
expect() { if eval "$2"; then ok "$1"; else bad "$1"; fi; } # name, shell condition
eventually() { # name, shell condition: true within 10 s
  local _
  for _ in $(seq 50); do eval "$2" && { ok "$1"; return; }; sleep 0.2; done
  bad "$1"
}

echo "== the exe"
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
if [ -n "$exe" ]; then
  ver=$(run version 2>/dev/null | tr -d '\r' | awk '{print $2}')
  expect "exe version resource carries $ver" "strings -el '$work/scanagent.exe' | grep -qxF -- '$ver'"
fi

svckey='HKLM\System\CurrentControlSet\Services\scanagent'
evkey='HKLM\System\CurrentControlSet\Services\EventLog\Application\scanagent'
# agentconf FILE PORT DATA_DIR: a hospital's configuration: a terminal of a
# gateway that is down (so the outbox opens and nothing leaves the machine),
# the local API on PORT. DATA_DIR is explicit: Wine gives services
# ProgramData=C:\users\Public, Windows C:\ProgramData.
agentconf() {
  cat > "$1" <<TOML
# edited by hospital IT ($RANDOM$RANDOM)
[agent]
data_dir = '$3'
[platform]
mode = "gateway"
gateway_url = "http://127.0.0.1:9"
gateway_token = "wine-smoke-terminal-token"
[his.api]
listen = "127.0.0.1:$2"
TOML
}
answers() { # PORT VERSION: the running agent's /v1/status names VERSION
  local _
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$1/v1/status" 2>/dev/null | grep -qF "\"version\":\"$2\"" && return 0
    sleep 0.2
  done
  return 1
}
down() { ! curl -fsS -m 2 "http://127.0.0.1:$1/healthz" >/dev/null 2>&1; }

echo "== the service through scanagent install"
sa="$WINEPREFIX/drive_c/sa"
mkdir -p "$sa"
cp "$work/scanagent.exe" "$sa/scanagent.exe"
agentconf "$sa/agent.toml" 18471 'C:\sa\data'
sarun() { (cd "$sa" && timeout 120 "$wine" scanagent.exe "$@" </dev/null 2>&1 | tr -d '\r'); }
out=$(sarun install -c 'C:\sa\agent.toml') || true
expect "install" 'grep -q "install: done" <<<"$out"' || true
grep -q "install: done" <<<"$out" || echo "$out"
expect "service registered (service-run with the config)" "w reg query '$svckey' /v ImagePath | grep -qF 'service-run -c C:\\sa\\agent.toml'"
expect "event log source registered" "w reg query '$evkey' /v EventMessageFile | grep -qF 'REG_EXPAND_SZ    %SystemRoot%\\System32\\EventCreate.exe'"
sarun start >/dev/null || true
expect "started by the SCM, the agent answers" "answers 18471 '$(run version 2>/dev/null | tr -d '\r' | awk '{print $2}')'"
expect "status: running" "{ sarun status || true; } | grep -qE '^service +running'"
expect "start written to the event log" "event 'scanagent started (config C:\\sa\\agent.toml)'"
eventually "outbox created in data_dir" "test -f '$sa/data/outbox.db'"
expect "data_dir restricted to SYSTEM + Administrators (as the service reports)" "event 'access to C:\\sa\\data restricted to SYSTEM and Administrators'"
sarun stop >/dev/null || true
eventually "stopped" "{ sarun status || true; } | grep -qE '^service +stopped' && down 18471"
expect "stop written to the event log" "event 'scanagent stopped'"
sarun uninstall >/dev/null || true
expect "uninstalled" "! w reg query '$svckey' >/dev/null && { sarun status || true; } | grep -q 'not installed'"

if [ -z "$msi" ] || [ ! -f "$msi" ]; then
  if [ "${CI:-}" = true ]; then bad "MSI ${msi:-(none)} not found"; fi
  echo "$pass passed, $fail failed"
  [ "$fail" = 0 ]; exit
fi

echo "== the MSI: install, edit, upgrade, uninstall"
cp "$msi" "$WINEPREFIX/drive_c/vN.msi"
msiexec() { # LOG ARGS...: msiexec quietly, verbose log to LOG; returns its exit code
  local log=$1; shift
  timeout 300 "$wine" msiexec "$@" /qn /l*v "C:\\$log" </dev/null >/dev/null 2>&1
}
msilog() { tr -d '\r' < "$WINEPREFIX/drive_c/$1"; }
pd="$WINEPREFIX/drive_c/ProgramData/scanagent"
pf="$WINEPREFIX/drive_c/Program Files/scanagent"

# The launch condition: Windows 8.1 is refused with the message.
"$wine" winecfg -v win81 </dev/null >/dev/null 2>&1
# (Windows exits 1603 and shows the LaunchCondition message, whose text
# build-msi.sh checks; Wine exits non-zero and logs no message when quiet.)
rc=0; msiexec old.log /i 'C:\vN.msi' || rc=$?
expect "Windows 8.1: refused (exit $rc)" "[ $rc != 0 ] && msilog old.log | grep -qx 'Property(S): WINDOWSBUILDNUMBER = 9600'"
expect "Windows 8.1: nothing installed" "[ ! -e '$pf/scanagent.exe' ] && ! w reg query '$svckey' >/dev/null"
"$wine" winecfg -v win10 </dev/null >/dev/null 2>&1

rc=0; msiexec install.log /i 'C:\vN.msi' || rc=$?
expect "Windows 10: install vN (exit 0)" "[ $rc = 0 ] && msilog install.log | grep -qx 'Property(S): WINDOWSBUILDNUMBER = [0-9]*' && ! msilog install.log | grep -qx 'Property(S): WINDOWSBUILDNUMBER = [0-9]\{1,4\}'"
[ "$rc" = 0 ] || msilog install.log | grep -iE 'error|fail|return value 3' | head -20
verN=$(cd "$pf" && timeout 60 "$wine" scanagent.exe version </dev/null 2>/dev/null | tr -d '\r' | awk '{print $2}')
expect "installed exe is vN ($verN)" "[ -n '$verN' ]"
go run ./cmd/scanagent config sample --shipped >"$work/shipped.toml"
expect "shipped configuration in ProgramData" "cmp -s '$pd/scanagent.toml' '$work/shipped.toml'"
expect "service registered by the MSI" "w reg query '$svckey' /v ImagePath | grep -qF 'service-run -c \"C:\\ProgramData\\scanagent\\scanagent.toml\"'"
expect "service started by the MSI" "msilog install.log | grep -q 'StartServices.*Return value 1'"
# A fresh install runs the shipped configuration: not configured yet, so the
# service idles with its status page up, and status exits 1 with the reason.
eventually "fresh install idles: not configured yet" "curl -fsS http://127.0.0.1:8470/v1/status 2>/dev/null | grep -qF '\"configured\":false'"
expect "status exits 1: not configured" "rc=0; sarun status -c 'C:\\ProgramData\\scanagent\\scanagent.toml' >'$work/status.txt' || rc=\$?; [ \$rc = 1 ] && grep -q 'NOT CONFIGURED' '$work/status.txt'"
expect "recovery set by the MSI (sc.exe failure, after InstallServices)" \
  "msilog install.log | grep -q 'ScanagentRecovery.*Return value 1'"
expect "event log source registered by the MSI" "w reg query '$evkey' /v EventMessageFile | grep -qF 'REG_EXPAND_SZ    %SystemRoot%\\System32\\EventCreate.exe'"

# The hospital edits its configuration and restarts the service.
agentconf "$work/edited.toml" 18472 'C:\ProgramData\scanagent'
cp "$work/edited.toml" "$pd/scanagent.toml"
(cd "$pf" && timeout 120 "$wine" scanagent.exe restart </dev/null >/dev/null 2>&1) || true
expect "edited configuration in use" "answers 18472 '$verN'"
expect "ProgramData\\scanagent restricted to SYSTEM + Administrators (as the service reports)" \
  "event 'access to C:\\ProgramData\\scanagent restricted to SYSTEM and Administrators'"

# vN+1: same exe source, next version, same MSI recipe.
next=0.0.1-ci.upgrade
[ "$verN" != "$next" ] || next=0.0.2-ci.upgrade
packaging/windows/build-exe.sh "$next" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$work/next.exe"
packaging/windows/build-msi.sh "$next" "$work/next.exe" "$work/shipped.toml" "$WINEPREFIX/drive_c/vN1.msi" >/dev/null
rc=0; msiexec upgrade.log /i 'C:\vN1.msi' || rc=$?
expect "upgrade to vN+1 $next (exit 0)" "[ $rc = 0 ]"
[ "$rc" = 0 ] || msilog upgrade.log | grep -iE 'error|fail|return value 3' | head -20
expect "upgrade removed vN first" "msilog upgrade.log | grep -q 'RemoveExistingProducts.*Return value 1'"
expect "the edited configuration survived" "cmp -s '$pd/scanagent.toml' '$work/edited.toml'"
expect "installed exe is vN+1" "(cd '$pf' && timeout 60 '$wine' scanagent.exe version </dev/null 2>/dev/null) | grep -qF 'scanagent $next '"
expect "the service runs vN+1 with the edited configuration" "answers 18472 '$next'"
expect "one scanagent in Programs and Features" \
  "[ \$(w reg query 'HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall' /s | grep -c 'DisplayName.*REG_SZ.*scanagent ') = 1 ]"
expect "outbox in ProgramData" "test -f '$pd/outbox.db'"

rc=0; msiexec uninstall.log /x 'C:\vN1.msi' || rc=$?
expect "uninstall (exit 0)" "[ $rc = 0 ]"
eventually "service stopped and removed" "down 18472 && ! w reg query '$svckey' >/dev/null"
expect "program removed" "[ ! -e '$pf/scanagent.exe' ]"
expect "event log source removed" "! w reg query '$evkey' >/dev/null"
expect "configuration kept" "cmp -s '$pd/scanagent.toml' '$work/edited.toml'"
expect "outbox kept" "test -f '$pd/outbox.db'"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
