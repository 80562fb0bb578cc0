# syntax=docker/dockerfile:1
# One image for every Portico process; compose and Kubernetes pick the process with the command
# (`python -m backends.users`, …, `python -m gateway`). Three stages:
#   assets — swagger-ui-dist from the npm lock file, for /docs (served from local files, no CDN)
#   build  — the Python environment from uv.lock, then the code
#   final  — python:slim with the environment and the code, run as an unprivileged numeric user

FROM node:22-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts

FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
COPY pyproject.toml uv.lock ./
# The dependencies only: the code runs from /app (PYTHONPATH), the packages listed in pyproject.toml.
RUN uv sync --frozen --no-dev --no-install-project
# Everything `python -m gateway` and `python -m backends.<name>` read at run time: the packages (with the
# migrations folders and data files inside backends/), the generated stubs and their descriptor set
# (stubs/portico.binpb), and the container health check.
COPY stubs ./stubs
COPY observability ./observability
COPY meshkit ./meshkit
COPY backends ./backends
COPY gateway ./gateway
COPY deploy/healthcheck.py ./deploy/healthcheck.py
COPY --from=assets /assets/node_modules/swagger-ui-dist ./node_modules/swagger-ui-dist
RUN python -m compileall -q stubs observability meshkit backends gateway deploy

FROM python:3.11-slim
RUN groupadd --system --gid 10001 portico \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home portico \
    && mkdir -p /data/keys /data/blobs /data/run \
    && chown -R 10001:10001 /data && chmod 0700 /data/keys
COPY --from=build --chown=root:root /app /app
WORKDIR /app
# Code owned by root and read-only to the process; the process writes only under /data (volumes there).
USER 10001:10001
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PORTICO_LOG_FORMAT=json \
    PORTICO_RUN_DIR=/data/run \
    PORTICO_AUTH_KEYS_DIR=/data/keys \
    PORTICO_POSTS_BLOB_STORE_URL=/data/blobs
EXPOSE 8080 50051 50052 50053 50054 9101 9102 9103 9104
CMD ["python", "-m", "gateway"]
