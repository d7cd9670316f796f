#!/usr/bin/env bash
# Builds the release artifacts into dist/, each stamped with the version:
#   scanagent_<v>_linux_amd64            (cgo: HID-POS support)
#   scanagent_<v>_windows_amd64.exe      (CGO_ENABLED=0: serial and virtual COM; HID needs the mingw build below)
#   scanagent_<v>_windows_amd64_hid.exe  (cgo with mingw-w64, when x86_64-w64-mingw32-gcc is installed)
#   scanagent_<v>_amd64.deb              (dpkg-deb: systemd unit, udev rules, /etc/scanagent conffile)
#   scanagent_<v>_x64.msi                (wixl: service, sample config under ProgramData)
#   SHA256SUMS
# Usage: scripts/package.sh [VERSION]. Needs dpkg-deb, wixl and msibuild (Debian: dpkg-dev wixl msitools).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)}
# Debian and MSI versions must start with a digit; MSI wants a.b.c.
debver=$(echo "$version" | sed -E 's/^v//; s/^([^0-9])/0.0.0-\1/')
msiver=$(echo "$debver" | grep -oE '^[0-9]+(\.[0-9]+){0,2}' || echo 0.0.0)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
ldflags="-s -w -X scanagent/internal/buildinfo.Version=$version -X scanagent/internal/buildinfo.Commit=$commit"
out=dist
rm -rf "$out"; mkdir -p "$out"

echo "== binaries ($version, commit $commit)"
CGO_ENABLED=1 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags "$ldflags" -o "$out/scanagent_${debver}_linux_amd64" ./cmd/scanagent
CGO_ENABLED=0 GOOS=windows GOARCH=amd64 go build -trimpath -ldflags "$ldflags" -o "$out/scanagent_${debver}_windows_amd64.exe" ./cmd/scanagent
if command -v x86_64-w64-mingw32-gcc >/dev/null; then
  CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc GOOS=windows GOARCH=amd64 go build -trimpath -ldflags "$ldflags" -o "$out/scanagent_${debver}_windows_amd64_hid.exe" ./cmd/scanagent
fi

echo "== deb"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
install -D -m 0755 "$out/scanagent_${debver}_linux_amd64" "$root/usr/bin/scanagent"
install -D -m 0640 configs/scanagent.toml "$root/etc/scanagent/scanagent.toml"
install -D -m 0644 packaging/linux/scanagent.service "$root/lib/systemd/system/scanagent.service"
install -D -m 0644 packaging/linux/60-scanagent.rules "$root/lib/udev/rules.d/60-scanagent.rules"
install -D -m 0644 README.md "$root/usr/share/doc/scanagent/README.md"
install -d "$root/DEBIAN"
for f in postinst prerm postrm; do install -m 0755 "packaging/linux/$f" "$root/DEBIAN/$f"; done
echo "/etc/scanagent/scanagent.toml" >"$root/DEBIAN/conffiles"
cat >"$root/DEBIAN/control" <<CONTROL
Package: scanagent
Version: $debver
Architecture: amd64
Maintainer: scanagent developers <scanagent@localhost>
Section: net
Priority: optional
Depends: adduser
Installed-Size: $(du -sk "$root" | cut -f1)
Description: barcode agent for hospital counters and kiosks
 Reads WeChat e-Health Card, Su Kang Code, ID card and hospital card codes
 from serial, HID-POS or keyboard-wedge scanners, verifies them with the
 e-Health Card platform and hands the identity to the HIS. Usage reports
 are delivered through a durable outbox. Build: $version ($commit).
CONTROL
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/scanagent_${debver}_amd64.deb" >/dev/null
dpkg-deb --info "$out/scanagent_${debver}_amd64.deb" | sed -n 's/^ *\(Package\|Version\):/   &/p'

echo "== msi"
cp "$out/scanagent_${debver}_windows_amd64.exe" "$out/scanagent.exe"
wixl -a x64 -D Version="$msiver" -D ExePath="$out/scanagent.exe" -D ReadmePath=README.md -D ConfigPath=configs/scanagent.toml \
  -o "$out/scanagent_${debver}_x64.msi" packaging/windows/scanagent.wxs 2> >(grep -v -e '^$' -e 'GLib-GObject-WARNING' >&2 || true)
rm "$out/scanagent.exe"
# The configuration outlives upgrades and uninstall: Permanent (0x10) and
# NeverOverwrite (0x4000), on top of 64-bit (0x100).
msibuild "$out/scanagent_${debver}_x64.msi" -q "UPDATE \`Component\` SET \`Attributes\` = 16656 WHERE \`Component\` = 'SampleConfig'"
msiinfo export "$out/scanagent_${debver}_x64.msi" ServiceInstall | tail -n +4 | cut -f2,3,9 | sed 's/^/   service: /'

echo "== checksums"
(cd "$out" && sha256sum scanagent_* > SHA256SUMS && cat SHA256SUMS)
