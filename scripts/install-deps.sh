#!/usr/bin/env bash
# Installs what building, testing and running Tasker need on Debian 12, skipping what is there.
#   scripts/install-deps.sh                system packages and the Python test environment
#   scripts/install-deps.sh --system-only  system packages only
# Python packages go into .build-venv (a virtualenv of the repository's own), so the system
# Python is never changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

system_only=false
[ "${1:-}" = "--system-only" ] && system_only=true

packages=(pkg-config libnghttp2-dev libpq-dev libhiredis-dev libssl-dev postgresql redis-server
  protobuf-compiler grpc-proto nghttp2-client nghttp2-server python3 python3-venv openssl prometheus
  chromium chromium-driver)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# python3-venv only matters for Debian's own python3; another python3 with venv works as is.
if [ ${#missing[@]} -gt 0 ] && command -v python3 >/dev/null && python3 -c "import venv, ensurepip" 2>/dev/null; then
  filtered=()
  for package in "${missing[@]}"; do
    case "$package" in python3|python3-venv) ;; *) filtered+=("$package") ;; esac
  done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

$system_only && exit 0

venv="$root/.build-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import grpc, grpc_tools, grpc_reflection, pytest, hpack, prometheus_client, grpc_health, selenium" 2>/dev/null; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check grpcio grpcio-tools grpcio-reflection pytest protobuf hpack prometheus-client grpcio-health-checking selenium
fi
# The Python SDK, editable: the tests and the Python example use it as the clone has it.
if ! "$venv/bin/python" -c "import tasker_sdk" 2>/dev/null; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$root/sdks/python"
fi
