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
    import threading

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
    worker = worker_factory(topics, "busy").start()
    worker.wait_ready(timeout=120)
    feeder = threading.Thread(target=lambda: asyncio.run(feed(topics, items)), daemon=True)
    feeder.start()
    while scrape(topics).get("newspipe_records_in", 0) < 1000:
        time.sleep(0.1)
    started = time.monotonic()
    os.killpg(worker.proc.pid, signal.SIGTERM)
    worker.proc.wait(timeout=30)
    assert time.monotonic() - started < GRACE_S
    feeder.join(timeout=120)
    restarted = worker_factory(topics, "after").start()
    restarted.wait_ready(timeout=120)
    assert_exactly_once(read_clean(topics, len(expected)), topics, expected)


def test_counters_add_up_over_a_restart_summed_like_increase_does(topics, worker_factory):
    """Two lives of a worker (SIGTERM between them, as a rolling update does): each life's
    counters start at zero, and summed over both lives, as Prometheus' increase() sums over a
    reset, in == out + duplicates + dead letters and the near-dup hand-over balances."""
    from tests.test_stream_dedup import events, feed, forwarded_by_direction, scrape_until

    items = events()[:6000]
    first_half, second_half = items[:3000], items[3000:] + items[:500]  # 500 seen before
    totals: dict[str, float] = {}
    forwarded = {"sent": 0.0, "received": 0.0}
    fed = 0
    for life, part in enumerate((first_half, second_half)):
        worker = worker_factory(topics, f"life{life}").start()
        worker.wait_ready(timeout=120)
        asyncio.run(feed(topics, part))
        fed += len(part)
        counted = scrape_until(topics, len(part))  # this life's own counters, drained
        for name, value in counted.items():
            totals[name] = totals.get(name, 0.0) + value
        for direction, value in forwarded_by_direction(topics).items():
            forwarded[direction] += value
        os.killpg(worker.proc.pid, signal.SIGTERM)
        worker.proc.wait(timeout=30)
    assert totals["newspipe_records_in"] == fed
    assert totals["newspipe_records_in"] == (
        totals["newspipe_records_out"]
        + totals["newspipe_duplicates"]
        + totals.get("newspipe_dead_letters", 0.0)
    )
    assert totals["newspipe_duplicates"] >= 500  # the second life knew the first life's records
    assert forwarded["sent"] == forwarded["received"] > 0
