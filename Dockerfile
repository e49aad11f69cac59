# syntax=docker/dockerfile:1
# newspipe worker image: `docker build -t newspipe:0.1.0 .`
# Two stages: `build` installs the pinned, hashed dependencies (requirements-runtime.lock) and the
# project into a venv; `runtime` copies only that venv onto a clean slim base, as a non-root user.
# Pin by digest in production (python:3.11-slim-bookworm@sha256:...); tests/test_deploy.py checks
# the tag is explicit and never `latest`.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv
# 1) Runtime dependencies only, at the versions and sha256 hashes requirements-runtime.lock pins
#    (the test tools are in requirements.lock only). This layer is rebuilt only when that lock
#    changes.
COPY pyproject.toml requirements-runtime.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements-runtime.lock
# 2) The compiled part of the core (native/, Rust + PyO3): Debian's Rust (rustc-web, recent enough
#    for PyO3) and maturin (hashed, requirements-build.lock, in a venv of its own) build its wheel
#    here; only the wheel reaches /opt/venv, so the runtime stage holds no compiler. Unpinned:
#    Debian stable replaces the version at its point releases, and the crates are pinned anyway.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends rustc-web cargo-web \
    && rm -rf /var/lib/apt/lists/*
COPY requirements-build.lock ./
RUN python -m venv /opt/build && /opt/build/bin/pip install --require-hashes -r requirements-build.lock
COPY native ./native
RUN /opt/build/bin/maturin build --release --locked --manifest-path native/Cargo.toml \
        --interpreter /opt/venv/bin/python --out /tmp/wheels \
    && pip install --no-deps /tmp/wheels/*.whl \
    && python -c "import newspipe_native"
# 3) The project itself, without touching the resolved dependencies.
COPY README.md ./
COPY pipeline ./pipeline
COPY schemas ./schemas
# The event contracts are package data of the wheel (`schemas/` becomes `pipeline.schemas`); the
# check below fails the build when one is missing. `-P`: import the installed package, not the
# source tree in the working directory (which has no `pipeline/schemas`).
RUN pip install --no-cache-dir --no-deps . \
    && pip check \
    && python -P -c "import pipeline.contracts as c; [c.load_schema(n) for n in c.SCHEMA_NAMES]" \
    && newspipe --version

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="newspipe" \
      org.opencontainers.image.description="Streaming news and comment pipeline (Faust on Kafka)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 newspipe \
    && useradd --system --uid 10001 --gid newspipe --no-create-home \
       --home-dir /var/lib/newspipe --shell /usr/sbin/nologin newspipe \
    && mkdir -p /var/lib/newspipe /app \
    && chown newspipe:newspipe /var/lib/newspipe
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NEWSPIPE_STATE_DIR=/var/lib/newspipe \
    NEWSPIPE_STORE=rocksdb:// \
    NEWSPIPE_WEB_HOST=0.0.0.0 \
    NEWSPIPE_WEB_PORT=6066
# RocksDB state (tables); one volume per container, so scaled replicas never share a directory.
VOLUME ["/var/lib/newspipe"]
EXPOSE 6066
# Numeric, so that Kubernetes runAsNonRoot can verify it.
USER 10001:10001
# No curl in slim images: the standard library does the probe. Non-2xx or no answer -> unhealthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('NEWSPIPE_WEB_PORT', '6066'), timeout=4)"]
ENTRYPOINT ["newspipe"]
CMD ["worker"]
