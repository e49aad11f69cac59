#!/usr/bin/env bash
# Builds native/ (the compiled part of the core, Rust + PyO3) and installs it into a venv:
#   bash scripts/build_native.sh [VENV]      (default .venv; `make install` calls it)
# maturin comes from requirements-build.lock (hashed); the crates from crates.io at the versions
# native/Cargo.lock pins (--locked). Without cargo on PATH or in ~/.cargo/bin, Debian's
# rustc-web/cargo-web (a Rust recent enough for PyO3) are installed with apt-get.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(cd "${1:-$ROOT/.venv}" && pwd)"
log() { printf 'build_native: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        log "need root for: $*"
        return 1
    fi
}

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    log "no cargo: apt-get install rustc-web cargo-web"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        rustc-web cargo-web
fi
"$VENV/bin/python" -m pip install -q --require-hashes -r "$ROOT/requirements-build.lock"
export PATH="$VENV/bin:$PATH" MATURIN_NO_INSTALL_RUST=1  # maturin by name; never a fetched Rust
started=$SECONDS
# --no-build-isolation: the maturin just installed from the lock, not one fetched unpinned
MATURIN_PEP517_ARGS="--locked" "$VENV/bin/python" -m pip install -q --no-deps \
    --no-build-isolation "$ROOT/native"
log "newspipe_native built and installed in $((SECONDS - started)) s ($(cargo --version))"
