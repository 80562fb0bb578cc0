#!/usr/bin/env bash
# Fails when the protos break clients of the last released contract: `buf breaking` (the FILE rules of
# buf.yaml: wire, JSON and generated code) against proto/released/<newest>.tar.gz, the `git archive` of
# that release's buf.yaml and proto/. Part of `make test`.
#
#   scripts/breaking.sh                 check the working tree against the newest release
#   scripts/breaking.sh --release TAG   archive the git tag TAG as proto/released/TAG.tar.gz (at a release)
set -euo pipefail
cd "$(dirname "$0")/.."
buf=${BUF:-node_modules/.bin/buf}

if [[ ${1:-} == --release ]]; then
  tag=${2:?usage: scripts/breaking.sh --release TAG}
  git archive --format=tar.gz -o "proto/released/$tag.tar.gz" "$tag" buf.yaml proto ':!proto/released'
  echo "breaking: proto/released/$tag.tar.gz written from tag $tag"
  exit 0
fi

newest=$(find proto/released -name '*.tar.gz' -printf '%f\n' | sort -V | tail -n 1)
if [[ -z $newest ]]; then
  echo "breaking: no released contract in proto/released" >&2
  exit 1
fi
"$buf" breaking --against "proto/released/$newest"
echo "breaking: the protos keep every client of ${newest%.tar.gz} working"
