"""Through the real broker, several partitions: feeding everything twice, crashing a worker with
SIGKILL, and losing one of two workers all end with every input id in the clean topics exactly once
(read_committed: each batch's output, state and input mark commit in one transaction).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from typing import Any

import orjson
import pytest

from devtools.datasets import ag_articles, fox_comments, replicate
from pipeline.ingest import page_article_id
from pipeline.kafka_io import producer
from pipeline.show import read_topics
from pipeline.topics import TopicNames

pytestmark = pytest.mark.kafka

N_ARTICLES = 7_600  # every AG News item once
N_COMMENTS = 12_400  # every Fox News comment, replicated with fresh ids


def events() -> list[tuple[str, bytes, bytes]]:
    """20,000 raw events from real texts with fresh ids, keyed as ingest keys them."""
    out = []
    for art in replicate(ag_articles(), N_ARTICLES, "source_id"):
        art.pop("label", None)
        out.append(("articles", page_article_id(art).encode(), orjson.dumps(art)))
    for com in replicate(fox_comments(), N_COMMENTS, "source_comment_id"):
        key = page_article_id({"source": com["source"], "title": com["article_title"]})
        out.append(("comments", key.encode(), orjson.dumps(com)))
    return out


async def feed(settings, items: list[tuple[str, bytes, bytes]]) -> None:
    names = TopicNames(settings.topic_prefix)
    topic = {"articles": names.raw_articles, "comments": names.raw_comments}
    prod = producer(settings, linger_ms=20)
    await prod.start()
    try:
        pending = []
        for stream, key, value in items:
            pending.append(await prod.send(topic[stream], value, key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await prod.stop()


def read_clean(settings, expected: int, timeout: float = 480) -> dict[str, list[dict[str, Any]]]:
    """Everything in the clean topics and the DLQ once `expected` clean records arrived and
    nothing more came for a few seconds; a run slower than `timeout` fails as such, not as a
    difference in ids."""
    names = TopicNames(settings.topic_prefix)
    started = time.monotonic()
    out = asyncio.run(
        read_topics(
            settings,
            [names.clean_articles, names.clean_comments, names.dlq],
            until=lambda o: len(o[names.clean_articles]) + len(o[names.clean_comments]) >= expected,
            timeout=timeout,
            idle=4.0,
        )
    )
    got = len(out[names.clean_articles]) + len(out[names.clean_comments])
    if got < expected and time.monotonic() - started >= timeout:
        raise AssertionError(f"timed out after {timeout:.0f}s with {got} of {expected} records")
    return out


def scrape(settings) -> dict[str, float]:
    import urllib.request

    text = (
        urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=5)
        .read()
        .decode()
    )
    totals: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("newspipe_") and "_total{" in line:
            totals[line.split("_total{", 1)[0]] += float(line.rsplit(" ", 1)[1])
    return totals


def ids_of(out: dict[str, list[dict[str, Any]]], settings) -> Counter[str]:
    names = TopicNames(settings.topic_prefix)
    ids: Counter[str] = Counter(a["article_id"] for a in out[names.clean_articles])
    ids.update(c["comment_id"] for c in out[names.clean_comments])
    return ids


def test_feeding_the_same_events_twice_emits_each_once(topics, worker_factory):
    settings = topics
    items = events()
    worker = worker_factory(settings).start()
    worker.wait_ready()
    asyncio.run(feed(settings, items))
    first = scrape_until(settings, len(items))
    asyncio.run(feed(settings, items))
    second = scrape_until(settings, 2 * len(items))
    out = read_clean(settings, int(first["newspipe_records_out"]))

    ids = ids_of(out, settings)
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1][:5]
    # the second pass added no clean record, only duplicates
    assert second["newspipe_records_out"] == first["newspipe_records_out"] == sum(ids.values())
    assert second["newspipe_duplicates"] - first["newspipe_duplicates"] == len(items) - (
        second["newspipe_dead_letters"] - first["newspipe_dead_letters"]
    )
    assert second["newspipe_records_in"] == (
        second["newspipe_records_out"]
        + second["newspipe_duplicates"]
        + second["newspipe_dead_letters"]
    )
    # every forwarded article was received by the near-dup stage (one worker: both here)
    forwarded = forwarded_by_direction(topics)
    assert forwarded["sent"] == forwarded["received"] > 0
    assert first["newspipe_dead_letters"] == 0


def forwarded_by_direction(settings) -> dict[str, float]:
    import re
    import urllib.request

    url = f"http://127.0.0.1:{settings.web_port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out = {"sent": 0.0, "received": 0.0}
    for m in re.finditer(r'^newspipe_forwarded_total\{.*direction="(\w+)".*\} (\S+)$', text, re.M):
        out[m.group(1)] += float(m.group(2))
    return out


def scrape_until(settings, n_in: int, timeout: float = 240) -> dict[str, float]:
    """Wait until the worker has counted `n_in` input records; returns its counters."""
    deadline = time.monotonic() + timeout
    totals: dict[str, float] = {}
    while time.monotonic() < deadline:
        try:
            totals = scrape(settings)
        except OSError:
            totals = {}
        n = totals.get("newspipe_records_in", 0)
        done = sum(
            totals.get(name, 0)
            for name in ("newspipe_records_out", "newspipe_duplicates", "newspipe_dead_letters")
        )
        # drained: every record read has also left its last stage (articles pass two)
        if n >= n_in and done == n:
            return totals
        time.sleep(0.5)
    raise AssertionError(f"worker counted {totals.get('newspipe_records_in')} of {n_in} inputs")


def reference_ids(items) -> set[str]:
    """The ids a clean, uninterrupted run emits: the same core, offline, on the same events."""
    from pipeline.core import Core, Meta
    from pipeline.topics import ARTICLES, COMMENTS

    core = Core()
    ids = set()
    for stream, key, value in items:
        res = core.process(
            ARTICLES if stream == "articles" else COMMENTS, value, Meta("raw", key=key)
        )
        if res.status == "clean":
            ids.add(res.record.get("comment_id") or res.record["article_id"])
    return ids


def assert_exactly_once(out, settings, expected: set[str]) -> None:
    """Every expected id in the clean topics (read_committed), none of them twice."""
    names = TopicNames(settings.topic_prefix)
    ids = ids_of(out, settings)
    extra, missing = sorted(set(ids) - expected), sorted(expected - set(ids))
    # counts and a few examples only: a full set diff of 20,000 ids hides what went wrong
    assert not extra and not missing, (
        f"{len(ids)} ids read, {len(expected)} expected; {len(extra)} extra {extra[:5]}, "
        f"{len(missing)} missing {missing[:5]}"
    )
    repeated = [i for i, n in ids.items() if n > 1]
    assert not repeated, (len(repeated), repeated[:5])
    assert not out[names.dlq]


def feed_and_kill_midway(settings, items, worker_factory) -> None:
    """Start a worker, feed `items` while it runs, and SIGKILL it once it has read ~30% of them.

    The feed starts after the worker is ready: the stages start before Faust's web server, so
    input fed earlier could all be processed before the worker's metrics can be read."""
    import threading

    worker = worker_factory(settings, "first").start()
    worker.wait_ready()
    feeder = threading.Thread(target=lambda: asyncio.run(feed(settings, items)), daemon=True)
    feeder.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = scrape(settings).get("newspipe_records_in", 0)
        if done >= len(items) * 0.3:
            break
        time.sleep(0.2)
    assert done < len(items), "worker finished before it could be killed; feed more events"
    worker.kill(signal.SIGKILL)
    feeder.join(timeout=120)  # the rest of the input is in Kafka before the restart


async def rewind_group(settings, timeout: float = 90) -> None:
    """Set the stages' consumer group back to offset 0 on every input partition, as if its
    offsets were lost (expired with `offsets.retention.minutes`, or reset by an operator).

    Waits for the group to be empty first: a killed member stays until its session times out.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from pipeline.stream.runner import GROUP_SUFFIX

    group = settings.app_id + GROUP_SUFFIX
    names = TopicNames(settings.topic_prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            (described,) = await admin.describe_consumer_groups([group])
            state = described.groups[0][2]  # (error_code, group, state, ...)
            if state in ("Empty", "Dead") or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        assert state in ("Empty", "Dead"), f"group {group} still {state}"
    finally:
        await admin.close()
    tps = [TopicPartition(names.raw_articles, p) for p in range(settings.partitions)]
    tps += [TopicPartition(names.raw_comments, p) for p in range(settings.partitions)]
    tps.append(TopicPartition(names.neardup, 0))
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.commit({tp: 0 for tp in tps})
    finally:
        await consumer.stop()


def test_worker_killed_mid_run_emits_each_record_exactly_once(topics, worker_factory):
    settings = topics
    items = events()
    expected = reference_ids(items)
    feed_and_kill_midway(settings, items, worker_factory)

    restarted = worker_factory(settings, "restarted").start()
    restarted.wait_ready(timeout=120)
    out = read_clean(settings, len(expected))
    assert_exactly_once(out, settings, expected)


def test_worker_restarted_with_its_offsets_lost_emits_nothing_twice(topics, worker_factory):
    # The offsets commit in each batch's transaction, so a restart normally resumes exactly
    # after the last committed batch. Here the group is set back to offset 0 after a SIGKILL:
    # only the state changelog's marks keep the restarted worker from emitting again.
    settings = topics
    items = events()
    expected = reference_ids(items)
    feed_and_kill_midway(settings, items, worker_factory)
    asyncio.run(rewind_group(settings))

    restarted = worker_factory(settings, "restarted").start()
    restarted.wait_ready(timeout=120)
    out = read_clean(settings, len(expected))
    assert_exactly_once(out, settings, expected)
    assert scrape(settings).get("newspipe_already_committed", 0) > 0


def test_losing_one_of_two_workers_still_emits_each_record_exactly_once(topics, worker_factory):
    settings = topics
    items = events()
    expected = reference_ids(items)
    a = worker_factory(settings, "a").start()
    from dataclasses import replace

    from tests.conftest import free_port

    b = worker_factory(replace(settings, web_port=free_port()), "b").start()
    a.wait_ready(timeout=120)
    b.wait_ready(timeout=120)
    asyncio.run(feed(settings, items))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = scrape(b.settings).get("newspipe_records_in", 0)
        if done >= 2000:
            break
        time.sleep(0.2)
    b.kill(signal.SIGKILL)
    out = read_clean(settings, len(expected))
    assert_exactly_once(out, settings, expected)
