# syntax=docker/dockerfile:1
# The image ECS runs: `bookshelf serve` from a virtual environment that holds exactly the
# locked runtime dependencies and the app (migrations included, as package data).
# There is no Docker engine on CI: tests/test_image.py replays this file instruction by
# instruction instead, so keep it to FROM, COPY, RUN, ENV, WORKDIR, USER and metadata.
# Multi-arch (linux/amd64, linux/arm64): both bases are multi-arch and every locked runtime
# dependency has wheels for both, so nothing is compiled.

# ---- build: the locked runtime dependencies, then the app, into /app/.venv
FROM python:3.13-slim-trixie AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv
# Bytecode is compiled here because the runtime user cannot write it; files are copied out
# of the cache mount rather than hard-linked; the base image's Python is the only Python.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies alone first: this layer is rebuilt only when the lock changes.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --no-editable --no-install-project
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
# --no-dev drops the default `dev` group; `infra` and `bench` are never default.
# --no-editable installs the app as a wheel, so the runtime stage needs only the venv.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# ---- runtime: the base image, a user, and the environment; no uv, no caches, no sources
FROM python:3.13-slim-trixie
RUN groupadd --system --gid 10001 bookshelf \
    && useradd --system --uid 10001 --gid bookshelf --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin bookshelf
# Owned by root: the app cannot rewrite its own code.
COPY --from=build /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    BOOKSHELF_HOST=0.0.0.0 \
    BOOKSHELF_PORT=8000
WORKDIR /app
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# `bookshelf healthcheck` GETs /health/live on $BOOKSHELF_PORT; the slim base has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["bookshelf", "healthcheck"]
# Exec form, no shell: the server is PID 1 and gets ECS's SIGTERM itself.
ENTRYPOINT ["bookshelf"]
CMD ["serve"]
