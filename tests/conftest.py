"""Shared fixtures: the real local Kafka broker, isolated topic sets, and worker processes.

The broker is started once per session (or reused when one already runs) and stopped at the end
only if this session started it. With CI=true a broker that will not start fails the run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline import broker
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SEED = SHARED / "data" / "seed" / "000_ab5b4fd25105b7c2.txt"


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
    env = dict(os.environ)
    env.update(
        NEWSPIPE_BROKER=settings.broker,
        NEWSPIPE_TOPIC_PREFIX=settings.topic_prefix,
        NEWSPIPE_APP_ID=settings.app_id,
        NEWSPIPE_STATE_DIR=str(settings.state_dir),
        NEWSPIPE_WEB_PORT=str(settings.web_port),
        NEWSPIPE_PARTITIONS=str(settings.partitions),
        NEWSPIPE_STORE=settings.store,
        NEWSPIPE_PROCESSING_GUARANTEE=settings.processing_guarantee,
    )
    return env


class WorkerProcess:
    """A `newspipe worker` in its own process, so tests can SIGKILL it like a crash."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "worker"],
            env=settings_env(self.settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        import urllib.error
        import urllib.request

        url = f"http://127.0.0.1:{self.settings.web_port}/readyz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise AssertionError(f"worker not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator:
    workers: list[WorkerProcess] = []

    def make(settings: Settings, name: str = "worker") -> WorkerProcess:
        w = WorkerProcess(settings, tmp_path / f"{name}-{len(workers)}.log")
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.stop()


@pytest.fixture
def topics(pipeline_settings: Settings) -> Iterator[Settings]:
    """Create the test's topic set before and delete it after."""
    from pipeline.kafka_io import create_topics, delete_topics
    from pipeline.topics import TopicNames

    asyncio.run(create_topics(pipeline_settings))
    yield pipeline_settings
    asyncio.run(delete_topics(pipeline_settings, TopicNames(pipeline_settings.topic_prefix).all()))
