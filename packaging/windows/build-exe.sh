#!/usr/bin/env bash
# Builds scanagent.exe for windows/amd64 with a VERSIONINFO resource (file
# and product version, pre-release/build part included), compiled by
# mingw-w64's windres into a .syso that the Go linker picks up from the main
# package's directory for the length of the build (Go reads .syso files from
# the package directory only; -overlay does not cover them).
# Usage: packaging/windows/build-exe.sh VERSION COMMIT OUT.exe [hid]
#   hid: cgo build with mingw-w64 (USB HID-POS); default CGO_ENABLED=0.
# Needs x86_64-w64-mingw32-windres (Debian: binutils-mingw-w64-x86-64).
set -euo pipefail
version=${1:?usage: build-exe.sh VERSION COMMIT OUT.exe [hid]} commit=${2:?commit} out=${3:?out.exe} flavour=${4:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
eval "$("$root/packaging/versions.sh" "$version")" # numver, pre

work=$(mktemp -d)
syso="$root/cmd/scanagent/zz_versioninfo_windows_amd64.syso"
trap 'rm -rf "$work" "$syso"' EXIT
IFS=. read -r major minor patch <<<"$numver"
flags=0
[ -n "$pre" ] && flags=VS_FF_PRERELEASE
desc="scanagent barcode agent (serial / virtual COM)"
[ "$flavour" = hid ] && desc="scanagent barcode agent (serial, virtual COM and USB HID-POS)"
cat >"$work/versioninfo.rc" <<RC
#include <winver.h>
1 VERSIONINFO
FILEVERSION $major,$minor,$patch,0
PRODUCTVERSION $major,$minor,$patch,0
FILEFLAGSMASK VS_FFI_FILEFLAGSMASK
FILEFLAGS $flags
FILEOS VOS_NT_WINDOWS32
FILETYPE VFT_APP
FILESUBTYPE VFT2_UNKNOWN
BEGIN
  BLOCK "StringFileInfo"
  BEGIN
    BLOCK "040904b0"
    BEGIN
      VALUE "CompanyName", "scanagent"
      VALUE "FileDescription", "$desc"
      VALUE "FileVersion", "$version"
      VALUE "InternalName", "scanagent"
      VALUE "OriginalFilename", "scanagent.exe"
      VALUE "ProductName", "scanagent"
      VALUE "ProductVersion", "$version ($commit)"
    END
  END
  BLOCK "VarFileInfo"
  BEGIN
    VALUE "Translation", 0x409, 1200
  END
END
RC
x86_64-w64-mingw32-windres -O coff -o "$syso" "$work/versioninfo.rc"
ldflags="-s -w -X scanagent/internal/buildinfo.Version=$version -X scanagent/internal/buildinfo.Commit=$commit"
cd "$root"
if [ "$flavour" = hid ]; then
  CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc GOOS=windows GOARCH=amd64 go build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/scanagent
else
  CGO_ENABLED=0 GOOS=windows GOARCH=amd64 go build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/scanagent
fi
