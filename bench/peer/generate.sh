#!/usr/bin/env bash
# Generate the Go grpc-gateway peer's code from proto/ (the contract, which has no go_package options).
#
#   bench/peer/generate.sh              # into bench/peer/gen (gitignored), for working on the peer
#   bench/peer/generate.sh OUT_DIR      # into OUT_DIR/gen (what bench/peer_build.py does)
#
# protoc is grpc_tools' (the one scripts/gen_protos.py uses, from .venv). The three plugins are `tool`
# lines of go.mod, so go.mod and go.sum pin them with the runtime they must match; they are built into
# a temporary directory (the Go build cache makes that seconds after the first time).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="$ROOT/.venv/bin/python"
OUT_ROOT="$(cd "${1:-$HERE}" && pwd)"
MODULE="$(cd "$HERE" && go list -m)"

TOOLS="$(mktemp -d)"
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$TOOLS" "$SCRATCH"' EXIT
(
  cd "$HERE"
  export GOFLAGS=-buildvcs=false CGO_ENABLED=0
  go build -o "$TOOLS/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
  go build -o "$TOOLS/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc
  go build -o "$TOOLS/protoc-gen-grpc-gateway" github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway
)

# Go import paths come from M mappings, not from the protos; google/api/* and the well-known types map
# to the packages that already ship them. buf/validate (the rule options users.proto imports) is
# generated here from the vendored copy: its usual Go module lives on the Buf Schema Registry.
MAPPINGS=(
  "users/v1/users.proto=$MODULE/gen/users/v1;usersv1"
  "auth/v1/auth.proto=$MODULE/gen/auth/v1;authv1"
  "portico/gateway/v1/options.proto=$MODULE/gen/portico/gateway/v1;gatewayv1"
  "buf/validate/validate.proto=$MODULE/gen/buf/validate;validate"
  "google/api/annotations.proto=google.golang.org/genproto/googleapis/api/annotations;annotations"
  "google/api/http.proto=google.golang.org/genproto/googleapis/api/annotations;annotations"
)
opts() {  # plugin: its options, the mappings included
  local plugin=$1
  printf '%s\n' "--${plugin}_opt=paths=import" "--${plugin}_opt=module=$MODULE"
  for m in "${MAPPINGS[@]}"; do printf '%s\n' "--${plugin}_opt=M$m"; done
}
WKT="$("$PY" -c 'import grpc_tools, pathlib; print(pathlib.Path(grpc_tools.__file__).parent / "_proto")')"
protoc() {
  (cd "$ROOT/proto" && "$PY" -m grpc_tools.protoc -I . -I third_party/googleapis -I third_party/protovalidate -I "$WKT" "$@")
}
mapfile -t GO_OPTS < <(opts go)
mapfile -t GRPC_OPTS < <(opts go-grpc)
mapfile -t GW_OPTS < <(opts grpc-gateway)

# Messages for all three; clients for users (forwarded to) and auth (GetJwks); REST handlers for users.
protoc --plugin=protoc-gen-go="$TOOLS/protoc-gen-go" --go_out="$SCRATCH" "${GO_OPTS[@]}" \
  users/v1/users.proto auth/v1/auth.proto portico/gateway/v1/options.proto buf/validate/validate.proto
protoc --plugin=protoc-gen-go-grpc="$TOOLS/protoc-gen-go-grpc" --go-grpc_out="$SCRATCH" "${GRPC_OPTS[@]}" \
  users/v1/users.proto auth/v1/auth.proto
protoc --plugin=protoc-gen-grpc-gateway="$TOOLS/protoc-gen-grpc-gateway" --grpc-gateway_out="$SCRATCH" \
  "${GW_OPTS[@]}" users/v1/users.proto

rm -rf "$OUT_ROOT/gen"
cp -r "$SCRATCH/gen" "$OUT_ROOT/gen"
echo "generate.sh: wrote $(cd "$OUT_ROOT" && find gen -name '*.go' | sort | tr '\n' ' ')" >&2
