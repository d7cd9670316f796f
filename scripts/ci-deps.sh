#!/usr/bin/env bash
# Installs the Debian packages the CI steps need, if missing. Idempotent.
#   make, gcc            build and the race detector (cgo)
#   gcc-aarch64-linux-gnu, libc6-dev-arm64-cross
#                        the arm64 Linux build (cgo, for HID-POS)
#   qemu-user            runs the arm64 binary in the deb smoke test
#   wixl, msitools       the Windows MSI
#   gcc-mingw-w64-x86-64 the HID-capable Windows build, the exe's version resource
#                        (windres) and the Wine stub DLL
#   wine64               the Windows smoke test
#   lintian              the .debs' check
#   curl                 the demo and the package smoke test
#   chromium             the browser test of the local API and the status page
#   fonts-wqy-microhei   Chinese glyphs for the status page's screenshots
#   systemd              systemd-analyze, to verify the packaged unit (not run as init)
#   etcd-server          a real etcd for the [gateway.ha] tests (internal/ha, test/e2e TestHAGateways)
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have make || need+=(make)
have gcc || need+=(gcc)
have aarch64-linux-gnu-gcc || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/include/stdio.h ] || need+=(libc6-dev-arm64-cross)
have qemu-aarch64 || need+=(qemu-user)
have lintian || need+=(lintian)
have curl || need+=(curl)
have dpkg-deb || need+=(dpkg)
have wixl || need+=(wixl)
have msibuild && have msiinfo || need+=(msitools)
have x86_64-w64-mingw32-gcc && have x86_64-w64-mingw32-windres || need+=(gcc-mingw-w64-x86-64)
have wine64 || [ -x /usr/lib/wine/wine64 ] || need+=(wine64)
have chromium || need+=(chromium)
# A CJK font: the status page is Chinese by default; without one its screenshots show boxes.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
have systemd-analyze || need+=(systemd)
[ -x /usr/bin/etcd ] || need+=(etcd-server)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (install them, or run as root)" >&2; exit 1
  fi
fi
