#!/usr/bin/env bash
# Regenerates the committed Swift code of every .proto the package uses.
#   scripts/generate-protos.sh           rewrite the generated files and proto/generated.sha256
#   scripts/generate-protos.sh --check   fast: fail if a .proto (or the generator version) changed
#                                        since the code was generated (no plugin build; CI runs it)
#   scripts/generate-protos.sh --verify  slow: regenerate into a temporary folder and diff
# Needs protoc (Debian: protobuf-compiler) and the grpc-proto package for the standard gRPC
# protos; protoc-gen-swift is built once from the swift-protobuf dependency into .build-protoc.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
grpc_proto=/usr/share/grpc-proto

missing=()
command -v protoc >/dev/null || missing+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/struct.proto ] || missing+=(libprotobuf-dev)
[ -d "$grpc_proto" ] || missing+=(grpc-proto)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Every input of the generated code: the .proto files and the generator's version.
inputs() {
  {
    echo "swift-protobuf $(sed -n 's/.*swift-protobuf.git", from: "\([^"]*\)".*/\1/p' Package.swift)"
    (cd "$grpc_proto" && sha256sum grpc/health/v1/health.proto grpc/testing/empty.proto \
      grpc/testing/messages.proto grpc/testing/test.proto)
    find proto -name '*.proto' -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum
  }
}

if [ "${1:-}" = "--check" ]; then
  if ! diff <(inputs) proto/generated.sha256 >/dev/null; then
    echo "generated protobuf code is stale (its inputs changed): run scripts/generate-protos.sh" >&2
    diff <(inputs) proto/generated.sha256 >&2 || true
    exit 1
  fi
  echo "generated protobuf code matches its .proto inputs"
  exit 0
fi

plugin=${PROTOC_GEN_SWIFT:-}
if [ -z "$plugin" ]; then
  plugin="$root/.build-protoc/release/protoc-gen-swift"
  if [ ! -x "$plugin" ]; then
    swift build -c release --scratch-path "$root/.build-protoc" --product protoc-gen-swift >&2
  fi
fi

out=$root
if [ "${1:-}" = "--verify" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi

generate() { # destination, include path, files...
  local dest=$1 include=$2
  shift 2
  mkdir -p "$out/$dest"
  protoc --plugin=protoc-gen-swift="$plugin" -I "$include" -I /usr/include \
    --swift_opt=Visibility=Public --swift_opt=FileNaming=DropPath \
    --swift_out="$out/$dest" "$@"
}

generate Sources/TaskerProto/Generated proto tasker/v1/tasker.proto tasker/v1/workers.proto
generate Sources/TaskerRPC/Health/Generated "$grpc_proto" grpc/health/v1/health.proto
generate Sources/Interop/TaskerInterop/Generated "$grpc_proto" \
  grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto

if [ "${1:-}" = "--verify" ]; then
  for dir in Sources/TaskerProto/Generated Sources/TaskerRPC/Health/Generated Sources/Interop/TaskerInterop/Generated; do
    if ! diff -r "$root/$dir" "$out/$dir" >/dev/null; then
      echo "generated protobuf code in $dir is stale: run scripts/generate-protos.sh" >&2
      diff -r "$root/$dir" "$out/$dir" | head -20 >&2
      exit 1
    fi
  done
  echo "generated protobuf code is current"
fi
if [ "${1:-}" != "--verify" ]; then
  inputs > proto/generated.sha256
fi
