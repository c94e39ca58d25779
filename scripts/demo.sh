#!/usr/bin/env bash
# The main job: `tasker dev` (a private Postgres and Redis, started and stopped by it), the
# Swift e-commerce example worker (which registers the order_checkout template), a few orders
# submitted (one whose payment fails twice before it goes through), and `tasker watch` showing
# that one live. Everything started here is stopped at the end, or on Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-deps.sh --system-only
# TASKER_BIN_DIR: binaries built already (the test suite's), used as they are.
if [ -z "${TASKER_BIN_DIR:-}" ]; then
  swift build --product tasker
  swift build --product tasker-example-ecommerce
fi
bin=${TASKER_BIN_DIR:-$(swift build --show-bin-path)}
tasker="$bin/tasker"

port=${TASKER_PORT:-7420}
http_port=${TASKER_HTTP_PORT:-7421}
export TASKER_SERVER="127.0.0.1:$port"
data=${TASKER_DATA:-$root/.tasker}
log="$data/demo"
mkdir -p "$log"

dev="" worker=""
stop() {
  [ -n "$worker" ] && kill -TERM "$worker" 2>/dev/null && wait "$worker" 2>/dev/null || true
  [ -n "$dev" ] && kill -TERM "$dev" 2>/dev/null && wait "$dev" 2>/dev/null || true
}
trap stop EXIT

echo "== tasker dev --port $port   (its log in $log/dev.log)"
"$tasker" dev --port "$port" --http-port "$http_port" --data "$data" >"$log/dev.log" 2>&1 &
dev=$!
for _ in $(seq 1 300); do
  "$tasker" health --timeout 1 >/dev/null 2>&1 && break
  kill -0 "$dev" 2>/dev/null || { cat "$log/dev.log"; echo "tasker dev did not start"; exit 1; }
  sleep 0.2
done
"$tasker" health
# As root, Postgres keeps its data where the postgres user can reach it; tasker dev says where.
sed -n 's/.*starting Postgres, data in /Postgres data in /p' "$log/dev.log" | head -1

echo "== the e-commerce worker connects and registers its template"
"$bin/tasker-example-ecommerce" >"$log/worker.log" 2>&1 &
worker=$!
for _ in $(seq 1 100); do
  "$tasker" templates list 2>/dev/null | grep -q order_checkout && break
  sleep 0.1
done
"$tasker" templates list

order() { # cart_id email payment_failures
  printf '{"cart_id": %s, "email": "%s", "payment_failures": %s, "items": [{"sku": "tea", "price": 4.5, "quantity": 2}, {"sku": "mug", "price": 9, "quantity": 1}]}' "$1" "$2" "$3"
}
echo "== submitting four orders"
for cart in 101 102 103; do
  "$tasker" submit order_checkout --context "$(order "$cart" "customer$cart@example.com" 0)"
done
flaky=$("$tasker" submit order_checkout --json --context "$(order 104 "unlucky@example.com" 2)" \
  | sed -n 's/.*"task_id": *"\([^"]*\)".*/\1/p' | head -1)
echo "submitted order_checkout $flaky   (its payment fails twice, then goes through)"

echo "== the dashboard: http://127.0.0.1:$http_port/   (this order live: http://127.0.0.1:$http_port/#/task/$flaky)"

echo "== tasker watch $flaky"
"$tasker" watch "$flaky"

echo "== tasker list"
sleep 1
"$tasker" list --name order_checkout

if [ -t 0 ] && [ -t 1 ]; then
  read -r -p "== the dashboard stays up until you press Enter: http://127.0.0.1:$http_port/ " _ || true
fi

echo "== stopping the worker (it drains) and tasker dev (server, then Redis, then Postgres)"
stop
trap - EXIT
echo "== done"
