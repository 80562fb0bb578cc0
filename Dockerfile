# One image for every Portico process; compose and Kubernetes pick the process with the command.
# syntax=docker/dockerfile:1

FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev
COPY stubs ./stubs
COPY observability ./observability
COPY backends ./backends
COPY gateway ./gateway
COPY deploy/healthcheck.py ./deploy/healthcheck.py

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app portico
COPY --from=build --chown=portico:portico /app /app
WORKDIR /app
USER portico
ENV PATH=/app/.venv/bin:$PATH PYTHONPATH=/app PYTHONUNBUFFERED=1 PORTICO_LOG_FORMAT=json
CMD ["python", "-m", "gateway"]
