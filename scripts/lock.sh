#!/usr/bin/env bash
# Regenerate the lock files with pip-tools, keeping every pin they already hold (pass
# --upgrade-package NAME to move one) and a sha256 for every file of every pinned release:
#   requirements.lock          runtime + test tools: what `make install` installs (--require-hashes)
#   requirements-runtime.lock  runtime only: what the container image installs (--require-hashes)
#   requirements-build.lock    maturin, which builds native/ (make install, the Dockerfile)
# Run it after changing dependencies in pyproject.toml: bash scripts/lock.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.cache/lock-venv"
PIP_TOOLS_VERSION="7.6.2"
test -x "$VENV/bin/pip-compile" || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "pip-tools==$PIP_TOOLS_VERSION"; }
cd "$ROOT"
common=(--quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url "$@")
"$VENV/bin/pip-compile" "${common[@]}" --extra test -o requirements.lock pyproject.toml
# the runtime lock starts from the full one, so both pin the same versions
cp requirements.lock requirements-runtime.lock
"$VENV/bin/pip-compile" "${common[@]}" -o requirements-runtime.lock pyproject.toml
# the build tool of native/ (maturin), for `make install` and the Dockerfile's build stage
"$VENV/bin/pip-compile" "${common[@]}" -o requirements-build.lock native/build-requirements.in
