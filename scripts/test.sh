#!/usr/bin/env bash
# The whole check, in the order that fails fastest: lint, types, contracts, then the test suite
# (unit, integration and end-to-end against a real Kafka, Redis and PostgreSQL started by the session).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python

step() { printf '\n== %s\n' "$*"; }

step "ruff"
$py -m ruff check .
$py -m ruff format --check .
step "mypy"
$py -m mypy
step "contracts: buf lint, buf format, buf breaking, generated stubs and configuration reference up to date"
node_modules/.bin/buf lint
node_modules/.bin/buf format --diff --exit-code
scripts/breaking.sh
$py scripts/gen_protos.py --check
examples/clients/go/generate.sh --check
$py scripts/gen_config_docs.py --check
step "pytest"
$py -m pytest "$@"
