#!/usr/bin/env bash
# Regenerate the Go stubs under gen/ from proto/ (the contract, which has no go_package options).
#
#   examples/clients/go/generate.sh           # rewrite gen/
#   examples/clients/go/generate.sh --check   # exit 1 if gen/ is stale
#
# protoc is grpc_tools' (the one scripts/gen_protos.py uses, from .venv); the Go plugins are pinned and
# `go install`ed into .cache/bin on first use. Go import paths come from M mappings, not from the protos.
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12      # keep equal to google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
BIN="$ROOT/.cache/bin"
PY="$ROOT/.venv/bin/python"
MODULE="$(cd "$HERE" && go list -m)"

install_plugin() {  # name module version
  local name=$1 module=$2 version=$3 stamp="$BIN/.$1.version"
  if [[ -x "$BIN/$name" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]; then return; fi
  echo "generate.sh: go install $module@$version" >&2
  mkdir -p "$BIN"
  GOBIN="$BIN" CGO_ENABLED=0 go install "$module@$version"
  echo "$version" >"$stamp"
}
install_plugin protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
install_plugin protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"

# The files the users client needs: the service and the gateway and validation options it imports
# (buf/validate is generated here from the vendored copy: its usual Go module lives on the Buf Schema
# Registry). google/api/* and the well-known types map to the packages that already ship them.
FILES=(users/v1/users.proto portico/gateway/v1/options.proto buf/validate/validate.proto)
MAPPINGS=(
  "users/v1/users.proto=$MODULE/gen/users/v1;usersv1"
  "portico/gateway/v1/options.proto=$MODULE/gen/portico/gateway/v1;gatewayv1"
  "buf/validate/validate.proto=$MODULE/gen/buf/validate;validate"
  "google/api/annotations.proto=google.golang.org/genproto/googleapis/api/annotations;annotations"
  "google/api/http.proto=google.golang.org/genproto/googleapis/api/annotations;annotations"
)
go_opts=(--go_opt=paths=import --go_opt="module=$MODULE")
grpc_opts=(--go-grpc_opt=paths=import --go-grpc_opt="module=$MODULE")
for m in "${MAPPINGS[@]}"; do
  go_opts+=(--go_opt="M$m")
  grpc_opts+=(--go-grpc_opt="M$m")
done

WKT="$("$PY" -c 'import grpc_tools, pathlib; print(pathlib.Path(grpc_tools.__file__).parent / "_proto")')"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
(
  cd "$ROOT/proto"
  "$PY" -m grpc_tools.protoc \
    -I . -I third_party/googleapis -I third_party/protovalidate -I "$WKT" \
    --plugin=protoc-gen-go="$BIN/protoc-gen-go" --plugin=protoc-gen-go-grpc="$BIN/protoc-gen-go-grpc" \
    --go_out="$OUT" "${go_opts[@]}" \
    --go-grpc_out="$OUT" "${grpc_opts[@]}" \
    "${FILES[@]}"
)

if [[ "${1:-}" == "--check" ]]; then
  if ! diff -r "$OUT/gen" "$HERE/gen" >/dev/null 2>&1; then
    echo "generate.sh: examples/clients/go/gen is stale; run examples/clients/go/generate.sh" >&2
    diff -r "$OUT/gen" "$HERE/gen" >&2 || true
    exit 1
  fi
  echo "generate.sh: examples/clients/go/gen is up to date"
  exit 0
fi
rm -rf "$HERE/gen"
cp -r "$OUT/gen" "$HERE/gen"
echo "generate.sh: wrote $(cd "$HERE" && find gen -name '*.go' | sort | tr '\n' ' ')"
