#!/usr/bin/env bash
# Installs the built .deb on this (disposable) machine, runs the service,
# checks it answers, stops it, removes and purges the package, and checks
# that nothing is left behind. Needs root. With systemd the package's unit
# is used; without it (containers, CI) `scanagent install` takes the SysV path.
# The arm64 .deb beside it is checked without installing: its fields, and
# its binary run under qemu-user when qemu-aarch64 is there.
# (scripts/package.sh runs lintian on both and fails on errors and warnings.)
# Usage: scripts/deb-smoke.sh dist/scanagent_*_amd64.deb
set -euo pipefail
deb=${1:?usage: deb-smoke.sh PACKAGE.deb}
[ "$(id -u)" = 0 ] || { echo "deb-smoke: needs root; skipped"; exit 0; }
if dpkg -s scanagent >/dev/null 2>&1; then echo "deb-smoke: scanagent already installed here; refusing to touch it" >&2; exit 1; fi
pass=0 fail=0
check() { if eval "$2"; then echo "ok   $1"; pass=$((pass+1)); else echo "FAIL $1"; fail=$((fail+1)); fi; }
cleanup() { scanagent stop >/dev/null 2>&1 || true; scanagent uninstall >/dev/null 2>&1 || true; dpkg -P scanagent >/dev/null 2>&1 || true; }
trap cleanup EXIT

check "depends on the libc it needs (>= 2.34)" "dpkg-deb -f '$deb' Depends | grep -qF 'libc6 (>= 2.34)'"
dpkg -i "$deb" >/dev/null
check "binary installed" "scanagent version | grep -q scanagent"
check "binary is position-independent (PIE)" "readelf -h /usr/bin/scanagent | grep -q 'Type:.*DYN'"
check "configuration readable by root and scanagent only" "[ \"\$(stat -c '%a %U:%G' /etc/scanagent/scanagent.toml)\" = '640 root:scanagent' ]"
if command -v deb-systemd-helper >/dev/null; then
  check "unit enabled by deb-systemd-helper" "test -L /etc/systemd/system/multi-user.target.wants/scanagent.service"
fi
check "config is a conffile" "dpkg-query -W -f='\${Conffiles}' scanagent | grep -q /etc/scanagent/scanagent.toml"
check "service user in dialout" "id -nG scanagent | grep -qw dialout"
check "shipped config is valid and not configured yet (config check exits 1)" "rc=0; scanagent config check -c /etc/scanagent/scanagent.toml >/tmp/scanagent-check.txt 2>&1 || rc=\$?; [ \$rc = 1 ] && grep -q 'not configured yet' /tmp/scanagent-check.txt"
if command -v systemd-analyze >/dev/null; then
  check "systemd unit verifies" "! systemd-analyze verify /lib/systemd/system/scanagent.service 2>&1 | grep -q ."
  check "systemd unit hardened (exposure < 3)" "systemd-analyze security --offline=true /lib/systemd/system/scanagent.service 2>/dev/null | grep -qE 'exposure level for scanagent.service: [0-2]\.'"
fi
if [ -d /run/systemd/system ]; then
  check "systemd unit active" "systemctl is-active --quiet scanagent"
  sleep 1
  check "agent answers" "curl -fsS http://127.0.0.1:8470/healthz | grep -q ok"
  systemctl stop scanagent
  check "service stopped" "! systemctl is-active --quiet scanagent"
else
  scanagent install -c /etc/scanagent/scanagent.toml >/dev/null
  scanagent start >/dev/null
  answers() { curl -fsS http://127.0.0.1:8470/v1/status 2>/dev/null | grep -q "$1"; }
  for _ in $(seq 150); do answers '"configured":false' && break; sleep 0.1; done
  # `status` exits 1 while the configuration is not filled in (0 ok, 1 degraded or not configured, 2 critical or down).
  check "service running, status: not configured (exit 1)" "scanagent status >/tmp/scanagent-status.txt; [ \$? = 1 ] && grep -q '^service .*running' /tmp/scanagent-status.txt && grep -q 'NOT CONFIGURED' /tmp/scanagent-status.txt"
  check "agent answers: not configured yet, idle" "answers '\"configured\":false'"
  check "idle: no outbox yet" "! test -e /var/lib/scanagent/outbox.db"
  # Configured (the demo's sample: a platform on loopback), restarted.
  scanagent config sample >/etc/scanagent/scanagent.toml
  scanagent restart >/dev/null
  for _ in $(seq 150); do answers '"configured":true' && break; sleep 0.1; done
  check "agent answers: configured" "answers '\"configured\":true'"
  check "outbox created" "test -f /var/lib/scanagent/outbox.db"
  # A valid configuration with nothing to fail (no platform, no scanner): healthy, status exits 0.
  printf '[platform]\nmode = "off"\n' >/etc/scanagent/scanagent.toml
  scanagent restart >/dev/null
  for _ in $(seq 150); do answers '"level":"ok"' && break; sleep 0.1; done
  check "status exits 0 when healthy" "scanagent status >/dev/null"
  scanagent stop >/dev/null
  check "service stopped" "! scanagent status | grep -q running"
  scanagent uninstall >/dev/null
fi
dpkg -r scanagent >/dev/null
check "remove keeps config and outbox" "test -f /etc/scanagent/scanagent.toml && test -d /var/lib/scanagent"
dpkg -P scanagent >/dev/null
check "purge leaves nothing" "! ls /etc/scanagent /var/lib/scanagent /var/log/scanagent /usr/bin/scanagent /etc/init.d/scanagent /etc/systemd/system/scanagent.service /etc/systemd/system/multi-user.target.wants/scanagent.service /var/lib/systemd/deb-systemd-helper-enabled/scanagent.service.dsh-also >/dev/null 2>&1"
check "purge removes the user" "! id scanagent >/dev/null 2>&1"
arm=${deb%_amd64.deb}_arm64.deb
if [ "$arm" != "$deb" ] && [ -f "$arm" ]; then
  check "arm64 package: architecture, libc" "[ \"\$(dpkg-deb -f '$arm' Architecture)\" = arm64 ] && dpkg-deb -f '$arm' Depends | grep -qF 'libc6 (>= 2.34)'"
  if command -v qemu-aarch64 >/dev/null && [ -d /usr/aarch64-linux-gnu ]; then
    x=$(mktemp -d); dpkg-deb -x "$arm" "$x"
    printf '[platform]\nmode = "off"\n' >"$x/off.toml"
    check "arm64 binary runs (qemu): version" "qemu-aarch64 -L /usr/aarch64-linux-gnu '$x/usr/bin/scanagent' version | grep -q 'linux/arm64'"
    check "arm64 binary runs (qemu): config check" "qemu-aarch64 -L /usr/aarch64-linux-gnu '$x/usr/bin/scanagent' config check -c '$x/off.toml' | grep -qx ok"
    rm -rf "$x"
  fi
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
