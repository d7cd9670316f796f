#!/usr/bin/env bash
# Derives every package's version from one release version (a tag like
# v1.2.3, v1.2.3-rc.1, `git describe` output like v1.2.3-4-gabcdef[-dirty],
# or anything else) and prints shell assignments for eval:
#   filever  the version in artifact names (leading v dropped; 0.0.0- in front
#            of a version that does not start with a digit)
#   debver   the Debian version: pre-release after "~" so that 1.2.3~rc.1 sorts
#            before 1.2.3, commits after a tag as +gitN.gHASH, revision -1
#   numver   major.minor.patch for the MSI ProductVersion and the exe's
#            FILEVERSION (0..255, 0..255, 0..65535)
#   pre      the rest (pre-release/build part, with its separator), kept in
#            the MSI product name and the exe's version strings
# Usage: eval "$(packaging/versions.sh VERSION)"
set -euo pipefail
v=${1:?usage: versions.sh VERSION}
v=${v#v}
[[ $v =~ ^[0-9] ]] || v="0.0.0-$v"
filever=$v
[[ $v =~ ^([0-9]+)(\.([0-9]+))?(\.([0-9]+))?(.*)$ ]]
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[3]:-0} patch=${BASH_REMATCH[5]:-0} pre=${BASH_REMATCH[6]}
if ((10#$major > 255 || 10#$minor > 255 || 10#$patch > 65535)); then
  echo "versions.sh: $v: an MSI version needs major and minor <= 255, patch <= 65535" >&2; exit 1
fi
numver="$((10#$major)).$((10#$minor)).$((10#$patch))"
up=$v
if [[ $up =~ ^(.*)-([0-9]+)-g([0-9a-f]+)(-dirty)?$ ]]; then # git describe
  up="${BASH_REMATCH[1]}+git${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}${BASH_REMATCH[4]:+.dirty}"
fi
up=${up/-/\~}   # semver pre-release
up=${up//-/.}   # Debian's upstream part keeps no other hyphen
up=${up//_/.}
if ! [[ $up =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
  echo "versions.sh: $v: cannot be made a Debian version (got $up)" >&2; exit 1
fi
printf 'filever=%q\ndebver=%q\nnumver=%q\npre=%q\n' "$filever" "$up-1" "$numver" "$pre"
