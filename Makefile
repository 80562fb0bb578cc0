# Portico: `make up` runs the mesh, `make test` runs the whole suite against real services.
# Both install whatever is missing first: `up` what the mesh runs on (Python env from uv.lock, Java and the
# Kafka jars, Redis, swagger-ui-dist); `test` that and what only the tests use (PostgreSQL, grpcurl, ghz,
# kustomize, wrk, chromium, docker-compose, promtool). `compose-check` (root) builds the Dockerfile and runs
# compose.yaml on a private Docker engine with stand-in base images (docs/deploying.md).

PYTHON ?= python3
UV := $(PYTHON) -m uv
UV_VERSION := 0.13.9
VENV_PY := .venv/bin/python

.PHONY: up test install install-up python-env python-env-up protos lint check-protos clean-run bench bench-gateway asyncapi dashboards config-docs compose-check

up: export PORTICO_UP_STARTED := $(shell date +%s.%N)
up: install-up
	@$(VENV_PY) scripts/up.py

test: install
	@bash scripts/test.sh

install: python-env
	@$(VENV_PY) -m infra install

install-up: python-env-up
	@$(VENV_PY) -m infra install --for up

python-env:
	@$(UV) --version >/dev/null 2>&1 || { echo "[install] uv: installing from PyPI"; $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"; }
	@$(UV) sync --frozen --quiet && echo "[install] python env: in sync with uv.lock"

# The runtime dependencies only (no test tools); --inexact keeps a test environment installed earlier.
python-env-up:
	@$(UV) --version >/dev/null 2>&1 || { echo "[install] uv: installing from PyPI"; $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"; }
	@$(UV) sync --frozen --no-dev --inexact --quiet && echo "[install] python env: runtime dependencies in sync with uv.lock"

protos: python-env
	@$(VENV_PY) scripts/gen_protos.py
	@examples/clients/go/generate.sh

check-protos: python-env
	@$(VENV_PY) scripts/gen_protos.py --check
	@examples/clients/go/generate.sh --check

bench: install
	@$(VENV_PY) -m bench.users_get
	@$(VENV_PY) -m bench.auth_login
	@$(VENV_PY) -m bench.gateway_users
	@$(VENV_PY) -m bench.footprint

# Portico's gateway against the Go grpc-gateway peer (built on demand) and direct gRPC; rewrites its
# section of docs/benchmarks.md and bench/results/gateway_users.png.
bench-gateway: install
	@$(VENV_PY) -m bench.gateway_users

# The unmodified Dockerfile and compose.yaml on a private Docker engine, torn down after (needs root).
compose-check:
	@bash scripts/compose_check.sh

lint: python-env
	@$(VENV_PY) -m ruff check . && $(VENV_PY) -m ruff format --check . && $(VENV_PY) -m mypy

clean-run:
	rm -rf .run

asyncapi: python-env
	@$(VENV_PY) scripts/gen_asyncapi.py

config-docs: python-env
	@$(VENV_PY) scripts/gen_config_docs.py

dashboards: python-env
	@$(VENV_PY) -m observability.dashboards
