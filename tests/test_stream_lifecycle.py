"""Through the real broker: a crashed worker is replaced in seconds, and SIGTERM ends a worker
within its grace period whatever it is doing, saying what it waited for."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import orjson
import pytest

from pipeline.ingest import ingest_paths
from tests.conftest import SEED

pytestmark = pytest.mark.kafka

# the targets are ~15 s to process and a 10 s grace period; the bounds leave room for a
# loaded 2-core CI machine without hiding a return of the minute-long stalls
RESTART_BOUND_S = 25.0
GRACE_S = 10.0


def _wait_for_seed(worker, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if 'newspipe_records_out_total{mode="live",stream="comments"} 20.0' in worker.metrics():
            return
        time.sleep(0.2)
    raise AssertionError("the seed's 20 comments did not come out")


def test_a_worker_restarted_after_sigkill_processes_within_seconds(topics, worker_factory):
    first = worker_factory(topics, "first").start()
    first.wait_ready(timeout=120)
    first.kill(signal.SIGKILL)  # its group membership stays until the session times out

    started = time.monotonic()
    restarted = worker_factory(topics, "restarted").start()
    restarted.wait_ready(timeout=120)
    ready_after = time.monotonic() - started
    asyncio.run(ingest_paths(topics, [SEED]))
    _wait_for_seed(restarted)
    processing_after = time.monotonic() - started
    print(f"restart after SIGKILL: ready {ready_after:.1f} s, seed out {processing_after:.1f} s")
    assert processing_after < RESTART_BOUND_S


def test_sigterm_while_joining_a_group_exits_within_the_grace_period(topics, worker_factory):
    first = worker_factory(topics, "first").start()
    first.wait_ready(timeout=120)
    first.kill(signal.SIGKILL)
    joining = worker_factory(topics, "joining").start()
    time.sleep(3)  # started, now waiting for the dead member's session to time out
    assert joining.alive() and not joining.ready()

    started = time.monotonic()
    os.killpg(joining.proc.pid, signal.SIGTERM)
    joining.proc.wait(timeout=30)
    took = time.monotonic() - started
    assert took < GRACE_S, took
    lines = [orjson.loads(line) for line in joining.log.read_text().splitlines()
             if line.startswith("{") and '"shutdown_' in line]  # fmt: skip
    requested = [entry for entry in lines if entry["event"] == "shutdown_requested"]
    assert requested and requested[0]["signal"] == "SIGTERM"
    assert requested[0]["waiting_for"]  # says what it waits for, in words


def test_sigterm_of_a_busy_worker_commits_and_a_restart_emits_nothing_twice(topics, worker_factory):
    from tests.test_stream_dedup import (
        assert_exactly_once,
        events,
        feed,
        read_clean,
        reference_ids,
        scrape,
    )

    items = events()[:8000]
    expected = reference_ids(items)
    asyncio.run(feed(topics, items))
    worker = worker_factory(topics, "busy").start()
    worker.wait_ready(timeout=120)
    while scrape(topics).get("newspipe_records_in", 0) < 1000:
        time.sleep(0.1)
    started = time.monotonic()
    os.killpg(worker.proc.pid, signal.SIGTERM)
    worker.proc.wait(timeout=30)
    assert time.monotonic() - started < GRACE_S
    restarted = worker_factory(topics, "after").start()
    restarted.wait_ready(timeout=120)
    assert_exactly_once(read_clean(topics, len(expected)), topics, expected)
