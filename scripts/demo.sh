#!/usr/bin/env bash
# The main job: builds tasker, starts a server, shows its health check answering over gRPC,
# then stops it gracefully.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-deps.sh --system-only
swift build --product tasker
tasker=$(swift build --show-bin-path)/tasker

port=${TASKER_PORT:-7420}
echo "== starting: tasker serve --port $port"
"$tasker" serve --port "$port" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  "$tasker" health --server "127.0.0.1:$port" --timeout 1 >/dev/null 2>&1 && break
  sleep 0.1
done
echo "== grpc.health.v1.Health/Check"
"$tasker" health --server "127.0.0.1:$port"
echo "== a service the server does not host"
"$tasker" health --server "127.0.0.1:$port" --service tasker.v1.Tasker || true
echo "== stopping (SIGTERM: GOAWAY, in-flight calls finish)"
kill -TERM "$server"
wait "$server"
trap - EXIT
echo "== done"
