"""Through a real broker of this test's own (killed and restarted mid-feed): readiness follows
the broker, the log says so in a few lines instead of thousands, and every id stays exactly
once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.error
import urllib.request
from dataclasses import replace

import orjson
import pytest

from devtools import broker
from pipeline.kafka_io import create_topics
from tests.test_stream_dedup import assert_exactly_once, events, feed, read_clean, reference_ids

pytestmark = pytest.mark.kafka
OUTAGE_S = 20.0


def _readyz(worker) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(worker.url("/readyz"), timeout=2) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"{}")
    except OSError:
        return 0, {}


def test_a_broker_outage_turns_readiness_off_and_on_in_a_few_log_lines(
    own_broker, pipeline_settings, worker_factory
):
    paths, port, controller = own_broker
    settings = replace(pipeline_settings, broker=f"kafka://127.0.0.1:{port}")
    asyncio.run(create_topics(settings))
    items = events()[:8000]
    first, second = items[:4000], items[4000:]
    expected = reference_ids(items)
    worker = worker_factory(settings).start()
    worker.wait_ready(timeout=120)
    asyncio.run(feed(settings, first))

    log_before = len(worker.log.read_text(errors="replace").splitlines())
    pid = broker._read_pid(paths)
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)  # a crash, not a clean shutdown
    killed = time.monotonic()
    went_unready = None
    while time.monotonic() - killed < OUTAGE_S:
        status, body = _readyz(worker)
        if status == 503 and "broker_unreachable_for_s" in body and went_unready is None:
            went_unready = time.monotonic() - killed
        time.sleep(0.5)
    assert went_unready is not None and went_unready <= settings.broker_unreachable_s + 5

    broker.start(paths, port, controller)
    restarted = time.monotonic()
    worker.wait_ready(timeout=120)
    ready_again = time.monotonic() - restarted
    lines = worker.log.read_text(errors="replace").splitlines()[log_before:]
    events_logged = [orjson.loads(line).get("event") for line in lines if line.startswith("{")]
    print(f"outage {OUTAGE_S:.0f} s: unready after {went_unready:.1f} s, ready again "
          f"{ready_again:.1f} s after the broker restarted, {len(lines)} log lines: "
          f"{events_logged}")  # fmt: skip
    assert "broker_unreachable" in events_logged and "broker_reachable" in events_logged
    assert len(lines) <= 25, lines[:40]  # thousands before: one per failed connection

    asyncio.run(feed(settings, second))
    assert_exactly_once(read_clean(settings, len(expected)), settings, expected)
