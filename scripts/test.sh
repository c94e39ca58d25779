#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs the Swift tests and the tests
# that pit this transport against stock gRPC (grpcio) and raw HTTP/2 peers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-deps.sh
scripts/generate-protos.sh --check

swift build --build-tests
bin_dir=$(swift build --show-bin-path)

swift test --skip-build
TASKER_BIN_DIR="$bin_dir" .build-venv/bin/python -m pytest -q Tests/interop
