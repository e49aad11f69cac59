"""Shared fixtures: the real local Kafka broker, isolated topic sets, and worker processes.

The broker is started once per session (or reused when one already runs) and stopped at the end
only if this session started it. With CI=true a broker that will not start fails the run.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from devtools import broker, paths
from devtools.workerproc import WorkerProcess, worker_env
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEED = paths.SEED


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """A running broker's bootstrap address; fails (never skips) when it cannot start."""
    paths = broker.BrokerPaths(broker.DEFAULT_HOME)
    port = int(os.environ.get("NEWSPIPE_BROKER_PORT", "9092"))
    running, _ = broker.status(paths, port)
    started = False
    if not running:
        try:
            print(broker.start(paths, port, port + 1))
        except broker.BrokerError as exc:
            pytest.fail(f"the local Kafka broker did not start: {exc}", pytrace=False)
        started = True
    yield f"127.0.0.1:{port}"
    if started:
        broker.stop(paths)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def pipeline_settings(kafka: str, tmp_path: Path) -> Settings:
    """Settings for one test: its own topic prefix, app id (consumer group), state dir and port."""
    tag = uuid.uuid4().hex[:8]
    return replace(
        Settings(),
        broker=f"kafka://{kafka}",
        topic_prefix=f"t{tag}.",
        app_id=f"newspipe-test-{tag}",
        state_dir=tmp_path / "state",
        web_port=free_port(),
        partitions=3,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a worker or CLI process of this test runs with."""
    return worker_env(settings)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """Keep each phase's report on the item, so fixtures can tell that their test failed."""
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture
def worker_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:
    workers: list[WorkerProcess] = []

    def make(settings: Settings, name: str = "worker") -> WorkerProcess:
        w = WorkerProcess(settings, tmp_path / f"{name}-{len(workers)}.log")
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        # a failed stream test is only debuggable with what its workers said
        for w in workers:
            lines = w.log.read_text(errors="replace").splitlines() if w.log.exists() else []
            print(f"\n----- {w.log.name}: last 80 of {len(lines)} lines -----")
            print("\n".join(lines[-80:]))


@pytest.fixture
def topics(pipeline_settings: Settings) -> Iterator[Settings]:
    """Create the test's topic set before and delete it after."""
    from pipeline.kafka_io import create_topics, delete_topics
    from pipeline.topics import TopicNames

    asyncio.run(create_topics(pipeline_settings))
    yield pipeline_settings
    asyncio.run(delete_topics(pipeline_settings, TopicNames(pipeline_settings.topic_prefix).all()))


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[broker.BrokerPaths, int, int]]:
    """A broker only this test uses (the shared one stays up for the others)."""
    shared = broker.BrokerPaths(broker.DEFAULT_HOME)
    broker.fetch_jars(shared)
    paths = broker.BrokerPaths(tmp_path / "kafka")
    paths.home.mkdir(parents=True)
    paths.libs.symlink_to(shared.libs, target_is_directory=True)
    port, controller = free_port(), free_port()
    try:
        broker.start(paths, port, controller)
    except broker.BrokerError as exc:
        pytest.fail(f"the test's own broker did not start: {exc}", pytrace=False)
    yield paths, port, controller
    broker.stop(paths)
