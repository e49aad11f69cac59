# The README's two commands: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NEWSPIPE := $(VENV)/bin/newspipe
SEED ?= data/seed/000_ab5b4fd25105b7c2.txt
DEMO_ENV := NEWSPIPE_APP_ID=newspipe-demo NEWSPIPE_TOPIC_PREFIX=demo. NEWSPIPE_STATE_DIR=.cache/demo-state

.PHONY: install demo test test-unit lint audit bench bench-peers bench-backfill eval-topics eval-moderation \
	broker-start broker-stop tools clean image broker-image

# Every package from requirements.lock, each file checked against its sha256 there; then the
# project itself (editable) without touching them. scripts/lock.sh regenerates the locks.
$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

# The compiled part of the core (native/, Rust + PyO3 via maturin): rebuilt when its sources change.
$(VENV)/.native: $(VENV)/.installed requirements-build.lock native/Cargo.toml native/Cargo.lock \
		native/pyproject.toml $(wildcard native/src/*.rs)
	bash scripts/build_native.sh $(VENV)
	@touch $@

install: $(VENV)/.installed $(VENV)/.native

tools: install
	bash scripts/install_tools.sh

broker-start: install
	$(PY) -m devtools.broker start

broker-stop:
	@test -x $(PY) && $(PY) -m devtools.broker stop || true

demo: install
	@bash scripts/demo.sh "$(SEED)"

test: tools
	$(PY) -m pytest -ra $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest -ra -m "not kafka and not container" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check pipeline devtools tests bench scripts
	$(VENV)/bin/ruff format --check pipeline devtools tests bench scripts
	cd native && cargo fmt --check && cargo clippy --release --locked -q -- -D warnings

# The newspipe image from ./Dockerfile (podman, or docker where an engine runs); prints size and time.
image:
	bash scripts/container_images.sh app

# The single-node Kafka image for docker-compose.yml where apache/kafka cannot be pulled.
broker-image:
	bash scripts/container_images.sh broker

# Known vulnerabilities of the pinned packages (PyPI's advisory data via pip-audit). Needs the
# PyPI JSON API, which mirrors that serve only the package index do not offer: it is not part of
# `make test` for that reason.
audit: install
	$(PY) -m pip install -q pip-audit==2.10.1
	$(VENV)/bin/pip-audit -r requirements.lock --no-deps --disable-pip --strict --progress-spinner off

eval-topics: install
	$(PY) -m devtools.tagging_eval

# ROC-AUC and precision/recall of the toxicity score on the labelled Fox News comments.
eval-moderation: install
	$(PY) -m devtools.moderation_eval

bench: install
	$(PY) -m bench.run

# The two parts of `make bench` that are worth running alone (docs/performance.md, 5 and 6).
bench-peers: install
	$(PY) -m bench.peers

bench-backfill: install
	$(PY) -m bench.backfill

clean:
	rm -rf .cache/demo-state .state .pytest_cache
