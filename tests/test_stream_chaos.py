"""A bounded chaos run through a broker of the test's own: two workers on six partitions, a
rate-limited feed, and on a fixed-seed schedule a worker SIGKILLed and restarted, a worker
frozen with SIGSTOP past its session timeout, a SIGTERM and restart, and the broker SIGKILLed
and restarted. Every id ends exactly once, and the clean output never stops for long while a
worker lives and the broker is up."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import threading
import time
from dataclasses import replace

import pytest

from devtools import broker
from pipeline.kafka_io import create_topics, producer
from pipeline.topics import TopicNames
from tests.conftest import free_port
from tests.test_stream_dedup import assert_exactly_once, events, read_clean, reference_ids

pytestmark = pytest.mark.kafka
SEED = 20261130
RATE = 500  # events per second offered
MAX_FREEZE_S = 30.0


def interleaved(n: int) -> list[tuple[str, bytes, bytes]]:
    items = events()
    articles = [i for i in items if i[0] == "articles"]
    comments = [i for i in items if i[0] == "comments"]
    out: list[tuple[str, bytes, bytes]] = []
    for k in range(max(len(articles), len(comments))):
        out.extend(x[k] for x in (articles, comments) if k < len(x))
    return out[:n]


class Feeder(threading.Thread):
    """Sends `items` at RATE per second; keeps going through a broker outage (the producer
    retries, idempotently)."""

    def __init__(self, settings, items) -> None:
        super().__init__(daemon=True)
        self.settings, self.items, self.sent, self.error = settings, items, 0, None

    def run(self) -> None:
        try:
            asyncio.run(self._feed())
        except BaseException as exc:  # reported by the test
            self.error = exc

    async def _feed(self) -> None:
        names = TopicNames(self.settings.topic_prefix)
        topic = {"articles": names.raw_articles, "comments": names.raw_comments}
        prod = producer(self.settings, linger_ms=20, request_timeout_ms=120_000)
        await prod.start()
        try:
            started = time.monotonic()
            pending = []
            for n, (stream, key, value) in enumerate(self.items):
                pending.append(await prod.send(topic[stream], value, key=key))
                ahead = n / RATE - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
                if len(pending) >= 500:
                    await asyncio.gather(*pending)
                    self.sent += len(pending)
                    pending.clear()
            await asyncio.gather(*pending)
            self.sent += len(pending)
        finally:
            await prod.stop()


class OutputWatch(threading.Thread):
    """Notes when clean records arrive (read_committed), to find the longest stop."""

    def __init__(self, settings) -> None:
        super().__init__(daemon=True)
        self.settings, self.arrivals, self.stop_flag = settings, [], threading.Event()

    def run(self) -> None:
        asyncio.run(self._watch())

    async def _watch(self) -> None:
        from pipeline.kafka_io import assign_from_beginning, consumer

        names = TopicNames(self.settings.topic_prefix)
        c = consumer(self.settings, isolation_level="read_committed", request_timeout_ms=60_000)
        await c.start()
        try:
            await assign_from_beginning(c, [names.clean_articles, names.clean_comments])
            while not self.stop_flag.is_set():
                try:
                    batch = await c.getmany(timeout_ms=500)
                except Exception:  # the broker is away: try again
                    await asyncio.sleep(0.5)
                    continue
                if batch:
                    self.arrivals.append((time.monotonic(), sum(len(v) for v in batch.values())))
        finally:
            await c.stop()


def test_chaos_keeps_every_id_exactly_once_and_no_long_freeze(
    own_broker, pipeline_settings, worker_factory
):
    paths, port, controller = own_broker
    rng = random.Random(SEED)
    settings = replace(pipeline_settings, broker=f"kafka://127.0.0.1:{port}", partitions=6)
    asyncio.run(create_topics(settings))
    items = interleaved(20_000)
    expected = reference_ids(items)
    a = worker_factory(settings, "a").start()
    b = worker_factory(replace(settings, web_port=free_port()), "b").start()
    a.wait_ready(timeout=120)
    b.wait_ready(timeout=120)
    watch, feeder = OutputWatch(settings), Feeder(settings, items)
    watch.start()
    feeder.start()
    t0 = time.monotonic()
    broker_down: list[tuple[float, float]] = []
    timeline: list[str] = []

    def at(seconds: float) -> None:
        time.sleep(max(0.0, t0 + seconds + rng.uniform(0, 2) - time.monotonic()))

    at(5)  # a crash, and the process manager restarts it
    a.kill(signal.SIGKILL)
    a = worker_factory(settings, "a2").start()
    timeline.append(f"{time.monotonic() - t0:.0f}s SIGKILL a, restarted")
    at(12)  # a worker frozen past its session timeout, then thawed (it finds itself fenced)
    os.killpg(b.proc.pid, signal.SIGSTOP)
    at(32)
    os.killpg(b.proc.pid, signal.SIGCONT)
    timeline.append(f"{time.monotonic() - t0:.0f}s SIGSTOP b for ~20 s")
    at(38)  # the broker crashes and comes back
    os.killpg(broker._read_pid(paths), signal.SIGKILL)
    down = time.monotonic()
    time.sleep(8)
    broker.start(paths, port, controller)
    broker_down.append((down, time.monotonic()))
    timeline.append(f"{down - t0:.0f}s SIGKILL broker for {time.monotonic() - down:.0f} s")
    at(52)  # a rolling restart
    a.stop()
    a = worker_factory(settings, "a3").start()
    timeline.append(f"{time.monotonic() - t0:.0f}s SIGTERM a, restarted")

    feeder.join(timeout=300)
    assert feeder.error is None and feeder.sent == len(items), feeder.error
    out = read_clean(settings, len(expected), timeout=300)
    watch.stop_flag.set()
    watch.join(timeout=30)

    times = [t for t, _ in watch.arrivals]
    gaps = []
    for before, after in itertools.pairwise(times):
        outage = sum(max(0.0, min(after, end) - max(before, start)) for start, end in broker_down)
        gaps.append(after - before - outage)
    longest = max(gaps, default=0.0)
    print(f"chaos: {'; '.join(timeline)}; longest stop of the clean output {longest:.1f} s "
          f"(broker outages excluded), {len(expected)} ids")  # fmt: skip
    assert_exactly_once(out, settings, expected)
    assert longest <= MAX_FREEZE_S, (longest, timeline)
