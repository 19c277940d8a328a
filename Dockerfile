# syntax=docker/dockerfile:1
#
# The production image: the core, the CLI and every first-party plugin under plugins/*/,
# installed from wheels; runs `platformctl serve` as a non-root user.
#
#   docker build -t platform .
#   docker run -p 8000:8000 \
#       -v "$PWD/plugins.toml:/srv/plugins.toml:ro" -v platform-var:/srv/var platform
#
# State (the SQLite database, the generated secret key) lives in the /srv/var volume.
# See docs/operations.md.

ARG PYTHON_IMAGE=python:3.11-slim

# -- builder: wheels of our distributions and of all their dependencies ------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY . .

# The core (.), the CLI (./cli) and every plugin distribution that exists under plugins/.
# `pip wheel` builds our projects and fetches wheels of their dependencies, so the runtime
# stage installs offline from /wheels.
RUN set -eux; \
    projects=". ./cli"; \
    for dir in plugins/*/; do \
        if [ -f "${dir}pyproject.toml" ]; then projects="${projects} ./${dir%/}"; fi; \
    done; \
    echo "building wheels of: ${projects}"; \
    pip wheel --wheel-dir /wheels ${projects}

# -- runtime ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PLATFORM_CONFIG=/srv/plugins.toml

RUN set -eux; \
    groupadd --system --gid 10001 platform; \
    useradd --system --uid 10001 --gid platform --home-dir /srv --no-create-home \
        --shell /usr/sbin/nologin platform

RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels /wheels/*.whl

WORKDIR /srv
# The repository's plugins.toml (inventory, scheduler and pricing enabled); mount your own over it:
#   -v /path/to/plugins.toml:/srv/plugins.toml:ro
COPY --chown=root:root --chmod=0644 plugins.toml /srv/plugins.toml
# var/ sits beside the config file: the SQLite database and the generated secret key.
RUN install -d -o platform -g platform -m 0750 /srv/var
VOLUME ["/srv/var"]

USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

CMD ["platformctl", "serve", "--host", "0.0.0.0", "--port", "8000", "--migrate"]
