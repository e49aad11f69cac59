"""Replay throughput: archived events into a topic vs a bare aiokafka producer sending the same
bytes in the same run (the ratio is the replay tool's own overhead); a whole archive (200,000
events over six days, dated part files) replayed into the raw topics; offline replay (core).

    .venv/bin/python bench/bench_replay.py --events 50000 --archive-events 200000

Needs the local broker (`newspipe broker start`). Absolute figures drift between machines and
with other load on the box: read the ratio, which compares runs made seconds apart.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402

from devtools.datasets import ag_articles, fox_comments, replicate  # noqa: E402
from pipeline.kafka_io import delete_topics, producer  # noqa: E402
from pipeline.replay.archive import ArchiveWriter, archive_line  # noqa: E402
from pipeline.replay.events import Event, key_for  # noqa: E402
from pipeline.replay.manifest import RunManifest  # noqa: E402
from pipeline.replay.runner import ReplayOptions, replay  # noqa: E402
from pipeline.replay.sources import read_file  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.topics import REPLAY_HEADER  # noqa: E402


def write_archive(root: Path, n: int, days: float = 0.0, prefix: str = "") -> Path:
    """n events (10% articles) archived as `newspipe archive` writes them (gzip, with a
    manifest), Kafka timestamps spread over the last `days` (one part per topic and day)."""
    manifest = RunManifest(root)
    writer = ArchiveWriter(root, max_bytes=1 << 40, manifest=manifest)
    now = int(time.time() * 1000)
    span = int(days * 86_400_000)
    n_art = n // 10
    streams = [("articles", a) for a in replicate(ag_articles(), n_art, "source_id")]
    streams += [("comments", c) for c in replicate(fox_comments(), n - n_art, "source_comment_id")]
    if span:  # interleave, as live traffic would be: each day holds both streams
        streams.sort(key=lambda item: hash(item[1].get("source_id") or item[1]["text"]))
    import orjson

    for i, (stream, rec) in enumerate(streams):
        rec.pop("label", None)
        topic = f"{prefix}raw.{stream}"
        ts = now - span - 60_000 + (i * span) // n if span else now - (n - i)
        line, ms = archive_line(topic, 0, i, ts, key_for(stream, rec), [], orjson.dumps(rec))
        writer.write(topic, line, ms, 0, i, ts)
    writer.close("complete")
    return root


async def make_topics(settings: Settings, names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def bare(settings: Settings, topic: str, events: list[Event], pinned: bool = False) -> float:
    """The floor: the same keys, values, timestamps and header, no reading, no bookkeeping.

    `pinned` also hands the producer precomputed partitions (outside the timing), which is what
    replay's per-key partition cache does, so that ratio is replay's own overhead alone.
    """
    prod = producer(settings, linger_ms=20)
    t0 = time.perf_counter()
    await prod.start()
    header = [(REPLAY_HEADER, b"bench")]
    try:
        parts: list[int | None] = [None] * len(events)
        if pinned:
            await prod.partitions_for(topic)
            cache: dict[bytes | None, int] = {}
            for i, e in enumerate(events):
                if e.key not in cache:
                    cache[e.key] = prod._partition(topic, None, None, None, e.key, e.value)
                parts[i] = cache[e.key]
            t0 = time.perf_counter()
        futures = [await prod.send(topic, e.value, key=e.key, timestamp_ms=e.timestamp_ms,
                                   headers=header, partition=p)
                   for e, p in zip(events, parts, strict=True)]  # fmt: skip
        await asyncio.gather(*futures)
        return len(events) / (time.perf_counter() - t0)
    finally:
        await prod.stop()


async def bare_batched(settings: Settings, topic: str, events: list[Event]) -> float:
    """The fastest aiokafka loop for the same bytes: partitions given (outside the timing), the
    records appended to one batch per partition and each batch sent whole (`send_batch`), one
    future a batch. What replay does since it sends through `pipeline.replay.outbox`, so
    replay / this is the replay's own overhead: reading, parsing, bookkeeping."""
    prod = producer(settings, linger_ms=20)
    await prod.start()
    header = [(REPLAY_HEADER, b"bench")]
    try:
        await prod.partitions_for(topic)
        cache: dict[bytes | None, int] = {}
        parts = []
        for e in events:
            if e.key not in cache:
                cache[e.key] = prod._partition(topic, None, None, None, e.key, e.value)
            parts.append(cache[e.key])
        t0 = time.perf_counter()
        open_: dict[int, Any] = {}
        futures = []
        for e, p in zip(events, parts, strict=True):
            batch = open_.get(p)
            if batch is None:
                batch = open_[p] = prod.create_batch()
            if batch.append(key=e.key, value=e.value, timestamp=e.timestamp_ms,
                            headers=header) is None:  # fmt: skip
                futures.append(await prod.send_batch(batch, topic, partition=p))
                batch = open_[p] = prod.create_batch()
                batch.append(key=e.key, value=e.value, timestamp=e.timestamp_ms, headers=header)
        for p, batch in open_.items():
            futures.append(await prod.send_batch(batch, topic, partition=p))
        await asyncio.gather(*futures)
        return len(events) / (time.perf_counter() - t0)
    finally:
        await prod.stop()


async def through_replay(settings: Settings, topic: str, archive: Path) -> float:
    opts = ReplayOptions(sources=[str(archive)], topic=topic, tty=False, log_every=1e9)
    summary = await replay(settings, opts)
    assert summary.produced == summary.read and not summary.failed, summary.as_dict()
    return summary.produced / summary.seconds


async def archive_to_raw(settings: Settings, archive: Path) -> tuple[float, float, int]:
    """The whole archive into the raw topics, as a backfill runs: (events/s, seconds, files)."""
    opts = ReplayOptions(sources=[str(archive)], tty=False, log_every=1e9, probe_targets=False)
    summary = await replay(settings, opts)
    assert summary.produced == summary.read and not summary.failed, summary.as_dict()
    files = len(list(archive.rglob("part-*.jsonl.gz")))
    return summary.produced / summary.seconds, summary.seconds, files


async def offline(settings: Settings, archive: Path, out: Path) -> float:
    opts = ReplayOptions(sources=[str(archive)], offline=out, tty=False, log_every=1e9)
    summary = await replay(settings, opts)
    return summary.read / summary.seconds


def run(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark, print its lines, return the figures (events/s and ratios)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--offline-events", type=int, default=10_000)
    parser.add_argument("--archive-events", type=int, default=200_000)
    args = parser.parse_args(argv)

    tag = uuid.uuid4().hex[:8]
    settings = replace(Settings.from_env(), topic_prefix=f"bench{tag}.")
    topics = [f"bench{tag}.replay", f"bench{tag}.bare", f"bench{tag}.raw.articles",
              f"bench{tag}.raw.comments"]  # fmt: skip
    asyncio.run(make_topics(settings, topics, args.partitions))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            archive = write_archive(Path(tmp) / "archive", args.events)
            events = [e for f in sorted(archive.rglob("*.gz")) for e in read_file(f)]
            size = sum(f.stat().st_size for f in archive.rglob("*.gz"))
            print(f"{len(events):,} archived events, {size / 1e6:.1f} MB gzip, "
                  f"{args.partitions} partitions, {args.rounds} rounds (alternating)")  # fmt: skip
            bare_rates, pinned_rates, batched_rates, replay_rates = [], [], [], []
            for _ in range(args.rounds):
                bare_rates.append(asyncio.run(bare(settings, topics[1], events)))
                replay_rates.append(asyncio.run(through_replay(settings, topics[0], archive)))
                pinned_rates.append(asyncio.run(bare(settings, topics[1], events, pinned=True)))
                batched_rates.append(asyncio.run(bare_batched(settings, topics[1], events)))
            rows = [
                ("bare aiokafka producer", bare_rates),
                ("bare, partitions given", pinned_rates),
                ("bare, whole batches", batched_rates),
                ("newspipe replay", replay_rates),
            ]
            for label, rates in rows:
                runs = ", ".join(f"{x:,.0f}" for x in rates)
                print(f"{label:23}: {statistics.median(rates):10,.0f} events/s  (runs: {runs})")
            every = (bare_rates, pinned_rates, batched_rates, replay_rates)
            b, p, w, r = (statistics.median(x) for x in every)
            print(f"ratio replay / bare    : {r / b:10.2f}  (target >= 0.80)")
            print(f"ratio replay / pinned  : {r / p:10.2f}")
            print(f"ratio replay / batches : {r / w:10.2f}  (replay's own overhead only)")
            big = write_archive(Path(tmp) / "big", args.archive_events, days=6,
                                prefix=settings.topic_prefix)  # fmt: skip
            a_rate, a_seconds, a_files = asyncio.run(archive_to_raw(settings, big))
            print(f"archive -> raw topics  : {a_rate:10,.0f} events/s  ({args.archive_events:,} "
                  f"events, {a_files} files over 6 days, {a_seconds:.1f} s)")  # fmt: skip
            small = write_archive(Path(tmp) / "small", args.offline_events)
            rate = asyncio.run(offline(settings, small, Path(tmp) / "offline"))
            print(f"offline replay (core)  : {rate:10,.0f} events/s  "
                  f"({args.offline_events:,} events, one process)")  # fmt: skip
    finally:
        asyncio.run(delete_topics(settings, topics))
    return {
        "events": float(args.events),
        "rounds": float(args.rounds),
        "partitions": float(args.partitions),
        "bare_events_per_s": b,
        "bare_pinned_events_per_s": p,
        "bare_batched_events_per_s": w,
        "replay_events_per_s": r,
        "ratio_replay_to_bare": r / b,
        "ratio_replay_to_pinned": r / p,
        "ratio_replay_to_batched": r / w,
        "offline_events": float(args.offline_events),
        "offline_events_per_s": rate,
        "archive_events": float(args.archive_events),
        "archive_files": float(a_files),
        "archive_events_per_s": a_rate,
        "archive_seconds": a_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
