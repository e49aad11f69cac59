#!/usr/bin/env bash
# Builds the container images: `make image` (the newspipe image) and `make broker-image`, and
# tests/test_container_stack.py before it starts the stack.
#
#   bash scripts/container_images.sh tools    podman, runc, mmdebstrap, podman-compose (apt-get)
#   bash scripts/container_images.sh bases    local base images (podman only, see below)
#   bash scripts/container_images.sh app      newspipe:0.1.0 from ./Dockerfile
#   bash scripts/container_images.sh broker   newspipe-kafka:<kafka/pom.xml version>
#   bash scripts/container_images.sh all      all of the above
#
# With a working Docker engine (`docker info` succeeds) the Dockerfile is built as shipped, from
# the public python image. Without one, podman builds it: no registry is reachable on these
# machines, so the base images are made here from Debian bookworm packages (mmdebstrap), with the
# host's extra CA certificates (a TLS-inspecting proxy re-signs PyPI), cached as tars under
# .cache/images and imported once; the Dockerfile then only gets its base through
# `--build-arg PYTHON_IMAGE=...`. podman reads deploy/podman/containers.conf (CONTAINERS_CONF).
#
# Prints one line per image with its size and build seconds (the README's figures).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache/images"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/deploy/podman/containers.conf}"

KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/kafka/pom.xml")"
APP_VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n1)"
APP_IMAGE="${APP_IMAGE:-localhost/newspipe:$APP_VERSION}"
BROKER_IMAGE="${BROKER_IMAGE:-localhost/newspipe-kafka:$KAFKA_VERSION}"
SUITE="bookworm"
# Same package set as python:3.11-slim-bookworm offers the Dockerfile: python, venv, pip, useradd.
PYTHON_PACKAGES="python3.11,python3.11-venv,python3-venv,python3-pip,python-is-python3,ca-certificates,passwd"
JRE_PACKAGES="openjdk-17-jre-headless,ca-certificates,passwd"
PYTHON_BASE="localhost/newspipe-base-python:3.11-$SUITE"
JRE_BASE="localhost/newspipe-base-jre:17-$SUITE"

log() { printf 'container_images: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        log "need root for: $*"
        return 1
    fi
}

have_docker() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

podman_() { podman --runtime runc "$@"; }

install_tools() {
    local missing=()
    for pair in podman:podman runc:runc mmdebstrap:mmdebstrap podman-compose:podman-compose; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "tools: $(podman --version), runc $(runc --version | sed -n 's/^runc version //p'), podman-compose present"
        return
    fi
    log "tools: apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# Extra CA certificates the host trusts (empty on a machine without a TLS-inspecting proxy).
host_cas() { find /usr/local/share/ca-certificates -name '*.crt' -type f 2>/dev/null | sort; }

# A base image from Debian packages: cached tar keyed by its definition and the host CAs.
build_base() {
    local image="$1" packages="$2" key tar
    key="$( { echo "$SUITE $packages v2"; host_cas | xargs -r cat; } | sha256sum | cut -c1-16)"
    if podman image inspect "$image" --format '{{index .Labels "newspipe.base-key"}}' 2>/dev/null \
        | grep -qx "$key"; then
        log "base $image: present (key $key)"
        return
    fi
    mkdir -p "$CACHE"
    tar="$CACHE/$(echo "$image" | tr '/:' '__')-$key.tar"
    if [ ! -s "$tar" ]; then
        local started=$SECONDS cas=() hooks=()
        mapfile -t cas < <(host_cas)
        if [ "${#cas[@]}" -gt 0 ]; then
            hooks+=("--customize-hook=copy-in ${cas[*]} /usr/local/share/ca-certificates")
        fi
        log "base $image: mmdebstrap $SUITE ($packages)"
        # Docs, man pages and apt lists are dropped as in the slim images (man1 stays as a directory:
        # the JRE's postinst links its man page there); the CA hook copies the host's extra
        # certificates and refreshes the bundle (no-op when there are none).
        as_root mmdebstrap --variant=minbase --format=tar --include="$packages" \
            --aptopt='APT::Install-Recommends "false"' \
            --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            --setup-hook='mkdir -p "$1/usr/share/man/man1"' \
            --customize-hook='mkdir -p "$1/usr/local/share/ca-certificates"' \
            ${hooks[@]+"${hooks[@]}"} \
            --customize-hook='chroot "$1" update-ca-certificates --fresh >/dev/null' \
            --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
            "$SUITE" "$tar.part"
        rm -f "${tar%-*}"-*.tar # older definitions of the same base
        mv "$tar.part" "$tar"
        log "base $image: rootfs $(du -m "$tar" | cut -f1) MB in $((SECONDS - started)) s"
    fi
    podman_ import \
        --change "LABEL newspipe.base-key=$key" \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$tar" "$image" >/dev/null
    log "base $image: imported"
}

report() {
    local engine="$1" image="$2" seconds="$3" bytes
    bytes="$("$engine" image inspect "$image" --format '{{.Size}}')"
    printf '%s: %s MB, built in %s s\n' "$image" "$((bytes / 1000000))" "$seconds"
}

build_app() {
    local started=$SECONDS
    if have_docker; then
        docker build -t "${APP_IMAGE#localhost/}" "$ROOT"
        report docker "${APP_IMAGE#localhost/}" $((SECONDS - started))
        return
    fi
    build_base "$PYTHON_BASE" "$PYTHON_PACKAGES"
    started=$SECONDS
    # --format docker keeps the HEALTHCHECK (the OCI image format has no field for it).
    podman_ build --network host --format docker --layers \
        --build-arg "PYTHON_IMAGE=$PYTHON_BASE" -t "$APP_IMAGE" -f "$ROOT/Dockerfile" "$ROOT"
    report podman "$APP_IMAGE" $((SECONDS - started))
}

# The broker's jars: Kafka as kafka/pom.xml pins it (the dev broker's set) plus kafka-tools, which
# holds the command behind the compose file's healthcheck (kafka-broker-api-versions.sh).
fetch_broker_jars() {
    local libs="$CACHE/broker-context/libs" stamp
    stamp="$libs/.kafka-$KAFKA_VERSION"
    [ -f "$stamp" ] && return
    command -v mvn >/dev/null 2>&1 || { log "Maven (mvn) is needed once to fetch Kafka's jars"; return 1; }
    rm -rf "$libs" && mkdir -p "$libs"
    mvn -q -B -f "$ROOT/deploy/broker/pom.xml" "-Dkafka.version=$KAFKA_VERSION" \
        org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
        -DincludeScope=runtime "-DoutputDirectory=$libs"
    touch "$stamp"
}

build_broker() {
    local context="$CACHE/broker-context" started=$SECONDS engine=podman
    fetch_broker_jars
    find "$context" -mindepth 1 -maxdepth 1 ! -name libs -exec rm -rf {} +
    cp -a "$ROOT/deploy/broker/." "$context/"
    if have_docker; then
        engine=docker
        docker build --build-arg "KAFKA_VERSION=$KAFKA_VERSION" -t "${BROKER_IMAGE#localhost/}" "$context"
        report docker "${BROKER_IMAGE#localhost/}" $((SECONDS - started))
        return
    fi
    build_base "$JRE_BASE" "$JRE_PACKAGES"
    started=$SECONDS
    podman_ build --network host --format docker --layers \
        --build-arg "JRE_IMAGE=$JRE_BASE" --build-arg "KAFKA_VERSION=$KAFKA_VERSION" \
        -t "$BROKER_IMAGE" "$context"
    report "$engine" "$BROKER_IMAGE" $((SECONDS - started))
}

case "${1:-all}" in
    tools) install_tools ;;
    bases)
        install_tools
        build_base "$PYTHON_BASE" "$PYTHON_PACKAGES"
        build_base "$JRE_BASE" "$JRE_PACKAGES"
        ;;
    app)
        have_docker || install_tools
        build_app
        ;;
    broker)
        have_docker || install_tools
        build_broker
        ;;
    all)
        have_docker || install_tools
        build_app
        build_broker
        ;;
    *)
        echo "usage: $0 tools|bases|app|broker|all" >&2
        exit 2
        ;;
esac
