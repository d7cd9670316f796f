#!/usr/bin/env bash
# Builds the release artifacts into dist/, each stamped with the version
# (artifact names carry it as given, minus a leading v; packaging/versions.sh
# derives the Debian and MSI versions from it):
#   scanagent_<v>_linux_amd64            (cgo, PIE: HID-POS support; glibc >= 2.34)
#   scanagent_<v>_linux_arm64            (cgo with Debian's aarch64 cross compiler, PIE: same features)
#   scanagent_<v>_windows_amd64.exe      (CGO_ENABLED=0: serial and virtual COM; version resource)
#   scanagent_<v>_windows_amd64_hid.exe  (cgo with mingw-w64: USB HID-POS too)
#   scanagent_<v>_amd64.deb, scanagent_<v>_arm64.deb
#                                        (systemd unit, udev rules, /etc/scanagent conffile; lintian-clean)
#   scanagent_<v>_x64.msi                (service with recovery, event log source, config kept on upgrade)
#   SHA256SUMS
# Usage: scripts/package.sh [VERSION]. Needs (Debian): gcc, gcc-aarch64-linux-gnu, gcc-mingw-w64-x86-64,
# lintian, wixl, msitools (scripts/ci-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)}
scripts/versions-test.sh >/dev/null || { scripts/versions-test.sh; exit 1; }
eval "$(packaging/versions.sh "$version")" # filever debver numver pre
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
ldflags="-s -w -X scanagent/internal/buildinfo.Version=$version -X scanagent/internal/buildinfo.Commit=$commit"
out=dist
rm -rf "$out"; mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== binaries ($version, commit $commit)"
# Linux: position-independent, full RELRO, the C parts (libusb/hidapi, cgo)
# fortified and stack-protected, as Debian's hardening flags do.
linux() { # GOARCH CC
  CGO_ENABLED=1 CC=$2 CGO_CFLAGS="-O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong" GOOS=linux GOARCH=$1 \
    go build -trimpath -buildmode=pie -ldflags "$ldflags -extldflags=-Wl,-z,relro,-z,now" \
    -o "$out/scanagent_${filever}_linux_$1" ./cmd/scanagent
}
linux amd64 gcc
linux arm64 aarch64-linux-gnu-gcc
packaging/windows/build-exe.sh "$version" "$commit" "$out/scanagent_${filever}_windows_amd64.exe"
packaging/windows/build-exe.sh "$version" "$commit" "$out/scanagent_${filever}_windows_amd64_hid.exe" hid

# The packages install the shipped configuration: the annotated sample
# without credentials ("not configured yet": the service idles until it is).
go run ./cmd/scanagent config sample --shipped >"$work/scanagent.toml"

echo "== deb ($debver)"
packaging/linux/manpage.sh "$out/scanagent_${filever}_linux_amd64" "$version" >"$work/scanagent.1"
for arch in amd64 arm64; do
  deb="$out/scanagent_${filever}_${arch}.deb"
  packaging/linux/build-deb.sh "$version" "$commit" "$arch" "$out/scanagent_${filever}_linux_${arch}" \
    "$work/scanagent.toml" "$work/scanagent.1" "$deb"
  dpkg-deb --field "$deb" Package Version Architecture Depends | sed 's/^/   /'
  # Errors and warnings fail the build (info tags are not shown).
  tags=$(lintian --fail-on error,warning --tag-display-limit 0 "$deb" 2> >(grep -v 'root privileges is not recommended' >&2)) ||
    { echo "$tags"; echo "lintian: $deb has errors or warnings" >&2; exit 1; }
  echo "   lintian: no errors, no warnings"
done

echo "== msi ($numver, product name scanagent $filever)"
packaging/windows/build-msi.sh "$version" "$out/scanagent_${filever}_windows_amd64.exe" "$work/scanagent.toml" \
  "$out/scanagent_${filever}_x64.msi"

echo "== checksums"
(cd "$out" && sha256sum scanagent_* > SHA256SUMS && cat SHA256SUMS)
