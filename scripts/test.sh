#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs the Swift tests, fuzzes each
# libFuzzer target for a minute, and runs the tests that pit Tasker against stock gRPC
# (grpcio), raw HTTP/2 peers and real Postgres, Redis and processes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-deps.sh
scripts/generate-protos.sh --check

swift build --build-tests
bin_dir=$(swift build --show-bin-path)

swift test --skip-build
# Each libFuzzer target for a while (TASKER_FUZZ_SECONDS, 60 by default; 0 skips), from the
# committed corpus; a crash fails the suite.
fuzz_seconds=${TASKER_FUZZ_SECONDS:-60}
if [ "$fuzz_seconds" -gt 0 ]; then scripts/fuzz.sh all "$fuzz_seconds"; fi
TASKER_BIN_DIR="$bin_dir" .build-venv/bin/python -m pytest -q Tests/interop
