#!/usr/bin/env bash
# Installs the system packages the tests need, if missing. Idempotent.
set -euo pipefail
need=()
command -v make >/dev/null || need+=(make)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "missing: ${need[*]} (install them, or run as root)" >&2; exit 1
  fi
fi
