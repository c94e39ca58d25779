#!/usr/bin/env bash
# Fuzzes one target (or every one) with libFuzzer, starting from the seed corpus in
# fuzz/corpus/TARGET; new inputs go to .build-fuzz/corpus/TARGET, crashes to .build-fuzz/crashes.
#   scripts/fuzz.sh TARGET SECONDS     e.g. scripts/fuzz.sh http2 1800
#   scripts/fuzz.sh all SECONDS        each target in turn, SECONDS each
# Targets: deframer http2 requests schema template pattern stored-json (fuzz/Targets).
# Exits 1 when a target crashed, and prints the input that did it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
targets=(deframer http2 requests schema template pattern stored-json)
target=${1:?usage: scripts/fuzz.sh TARGET|all SECONDS}
seconds=${2:?usage: scripts/fuzz.sh TARGET|all SECONDS}
if [ "$target" = all ]; then
  selected=("${targets[@]}")
else
  [[ " ${targets[*]} " == *" $target "* ]] || { echo "no target '$target'; targets: ${targets[*]}" >&2; exit 64; }
  selected=("$target")
fi

scripts/install-deps.sh --system-only
scratch="$root/.build-fuzz"
swift build --scratch-path "$scratch" --product tasker-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DFUZZING 2>&1 \
  | grep -v "warning: Cannot export local symbol" >&2
binary="$(swift build --scratch-path "$scratch" --show-bin-path)/tasker-fuzz"

status=0
for name in "${selected[@]}"; do
  work="$scratch/corpus/$name"
  crashes="$scratch/crashes"
  mkdir -p "$work" "$crashes"
  log="$scratch/$name.log"
  echo "== fuzzing $name for $seconds s" >&2
  if TASKER_FUZZ_TARGET="$name" ASAN_OPTIONS=detect_leaks=0 "$binary" "$work" "fuzz/corpus/$name" \
      -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$crashes/$name-" -print_final_stats=1 >"$log" 2>&1; then
    outcome=ok
  else
    outcome=CRASHED
    status=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  features=$(grep -o 'ft: [0-9]*' "$log" | tail -1)
  echo "$name: $outcome, ${runs:-0} executions, ${coverage:-cov: 0}, ${features:-ft: 0}, corpus $(ls "$work" | wc -l) inputs"
  if [ "$outcome" = CRASHED ]; then
    grep -m1 -B2 -A25 "ERROR\|Fatal error\|deadly signal" "$log" >&2 || tail -40 "$log" >&2
    ls "$crashes"/"$name"-* 2>/dev/null >&2 || true
  fi
done
exit $status
