#!/usr/bin/env bash
# Builds the scanagent .deb for one architecture from a built binary:
# /usr/bin/scanagent, the configuration /etc/scanagent/scanagent.toml (a
# conffile), the systemd unit, udev rules, the manual page, README,
# copyright (with the bundled Go modules' licences), changelog.Debian.
# Depends on the libc version the binary needs (its highest GLIBC_ symbol
# version, read with readelf, so it works for any architecture).
# Usage: packaging/linux/build-deb.sh VERSION COMMIT ARCH BINARY CONFIG MANPAGE OUT.deb
#   ARCH: a Debian architecture (amd64, arm64); MANPAGE: roff, gzipped here.
# Maintainer: $DEB_MAINTAINER, default below.
set -euo pipefail
[ $# = 7 ] || { echo "usage: build-deb.sh VERSION COMMIT ARCH BINARY CONFIG MANPAGE OUT.deb" >&2; exit 2; }
version=$1 commit=$2 arch=$3 bin=$4 config=$5 man=$6 out=$7
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/packaging/linux"
eval "$("$root/packaging/versions.sh" "$version")" # debver
maintainer=${DEB_MAINTAINER:-scanagent maintainers <scanagent@scanagent.example.org>}
license=${SCANAGENT_LICENSE:-not stated: no licence has been chosen for scanagent yet}

tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
doc="$tree/usr/share/doc/scanagent"
install -D -m 0755 "$bin" "$tree/usr/bin/scanagent"
install -D -m 0644 "$config" "$tree/etc/scanagent/scanagent.toml" # postinst: 0640 root:scanagent
install -D -m 0644 "$here/scanagent.service" "$tree/lib/systemd/system/scanagent.service"
install -D -m 0644 "$here/60-scanagent.rules" "$tree/lib/udev/rules.d/60-scanagent.rules"
install -D -m 0644 "$root/README.md" "$doc/README.md"
# A vendor package has no Debian bug to close (lintian's initial-upload-closes-no-bugs).
install -D -m 0644 "$here/lintian-overrides" "$tree/usr/share/lintian/overrides/scanagent"
install -d "$tree/usr/share/man/man1"
gzip -9n <"$man" >"$tree/usr/share/man/man1/scanagent.1.gz"

# changelog.Debian: one entry for this build, dated by its commit.
date=$(git -C "$root" log -1 --format=%cD 2>/dev/null || date -R)
cat >"$tree/changelog.Debian" <<CL
scanagent ($debver) stable; urgency=medium

  * Release $version (commit $commit).

 -- $maintainer  $date
CL
gzip -9n <"$tree/changelog.Debian" >"$doc/changelog.Debian.gz"
rm "$tree/changelog.Debian"

# copyright: ours, then every Go module linked into the binary with its licence.
{
  sed "s|@LICENSE@|$license|" "$here/copyright.in"
  gomodcache=$(go env GOMODCACHE)
  go version -m "$bin" | awk '$1 == "dep" {print $2, $3}' | while read -r mod ver; do
    dir="$gomodcache/$(sed 's/[A-Z]/!\L&/g' <<<"$mod")@$ver"
    lic=$(find "$dir" -maxdepth 1 -type f \( -iname 'LICEN[CS]E*' -o -iname 'COPYING*' \) 2>/dev/null | sort | head -1)
    [ -n "$lic" ] || { echo "build-deb: no licence file for $mod $ver in $dir" >&2; exit 1; }
    printf '\n-- %s %s --\n\n' "$mod" "$ver"
    # Licences Debian ships are referred to, as policy 12.5 asks.
    common=$(head -c 600 "$lic" | tr -s ' \n' ' ' | sed -nE \
      -e 's/.*GNU LESSER GENERAL PUBLIC LICENSE Version (3|2\.1).*/LGPL-\1/p' \
      -e 's/.*GNU GENERAL PUBLIC LICENSE Version (2|3).*/GPL-\1/p' \
      -e 's/.*Apache License,? Version 2\.0.*/Apache-2.0/p' \
      -e 's/.*Mozilla Public License,? [Vv]ersion 2\.0.*/MPL-2.0/p' | head -1)
    if [ -n "$common" ] && [ -f "/usr/share/common-licenses/$common" ]; then
      echo "Licensed under the $common licence; on Debian systems its full text is in /usr/share/common-licenses/$common."
    else
      cat "$lic"
    fi
  done
} >"$doc/copyright"
chmod 0644 "$doc/copyright"

# The C library version the binary links against.
glibc=$(readelf --version-info --wide "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
depends="adduser"
[ -z "$glibc" ] || depends="libc6 (>= $glibc), $depends"

install -d "$tree/DEBIAN"
for f in postinst prerm postrm; do install -m 0755 "$here/$f" "$tree/DEBIAN/$f"; done
echo "/etc/scanagent/scanagent.toml" >"$tree/DEBIAN/conffiles"
(cd "$tree" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$tree/DEBIAN/md5sums"
cat >"$tree/DEBIAN/control" <<CONTROL
Package: scanagent
Version: $debver
Architecture: $arch
Maintainer: $maintainer
Section: net
Priority: optional
Depends: $depends
Installed-Size: $(du -sk --exclude=DEBIAN "$tree" | cut -f1)
Description: barcode agent for hospital counters and kiosks
 Reads WeChat e-Health Card, Su Kang Code, ID card and hospital card codes
 from serial, HID-POS or keyboard-wedge scanners, verifies them with the
 e-Health Card platform and hands the identity to the HIS. Usage reports
 are delivered through a durable outbox. Build: $version ($commit).
CONTROL
dpkg-deb --root-owner-group -Zxz --build "$tree" "$out" >/dev/null
