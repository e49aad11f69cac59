"""End to end through the real broker: raw topics pre-loaded, `newspipe worker` subprocesses.

Measured in one invocation, each against a baseline run over the same topics and bytes:

- one worker: time from process start to every input record settled (emitted, dropped as a
  duplicate or dead-lettered, counted only after its batch's transaction committed; scraped from
  /metrics), and the throughput from the first record counted to the last;
- the baseline: a bare aiokafka consume-and-produce passthrough (consumer group, getmany,
  produce every record to an output topic, wait for the acks, commit), same raw topics, run
  before each worker run and after the last; the fastest of those runs is the baseline;
- two workers (two subprocesses, one consumer group) on the same topics;
- event-to-emit latency at a fixed offered rate (a share of the measured one-worker maximum),
  exact from Kafka timestamps (clean record's CreateTime - raw record's CreateTime, joined by
  source id) and from the worker's `newspipe_event_to_emit_seconds` histogram.

Every run uses its own topic prefix and consumer group; every topic it made is deleted at the end.

    .venv/bin/python -m bench.e2e --comments 200000 --articles 20000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402

from devtools.datasets import ag_articles, fox_comments, replicate  # noqa: E402
from devtools.workerproc import WorkerProcess  # noqa: E402
from pipeline.ingest import page_article_id  # noqa: E402
from pipeline.kafka_io import create_topics, producer  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.topics import TopicNames  # noqa: E402

Item = tuple[str, bytes, bytes, str]  # stream, key, value, source id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_events(n_comments: int, n_articles: int, tag: str = "") -> list[Item]:
    """Real texts with fresh ids (AG News articles, Fox News comments), keyed as ingest keys."""
    out: list[Item] = []
    for art in replicate(ag_articles(), n_articles, "source_id"):
        art.pop("label", None)
        art["source_id"] = tag + art["source_id"]
        out.append(("articles", page_article_id(art).encode(), orjson.dumps(art), art["source_id"]))
    for com in replicate(fox_comments(), n_comments, "source_comment_id"):
        com["source_comment_id"] = tag + com["source_comment_id"]
        key = page_article_id({"source": com["source"], "title": com["article_title"]}).encode()
        out.append(("comments", key, orjson.dumps(com), com["source_comment_id"]))
    return out


async def preload(settings: Settings, items: Iterable[Item]) -> float:
    """Produce all items (a list, or a generator for runs too big to hold) to the raw topics;
    returns events/s of the load."""
    names = TopicNames(settings.topic_prefix)
    topic = {"articles": names.raw_articles, "comments": names.raw_comments}
    prod = producer(settings, linger_ms=20)
    await prod.start()
    t0 = time.perf_counter()
    n = 0
    try:
        pending = []
        for stream, key, value, _ in items:
            pending.append(await prod.send(topic[stream], value, key=key))
            n += 1
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await prod.stop()
    return n / (time.perf_counter() - t0)


# -- workers ------------------------------------------------------------------------------------
class Worker(WorkerProcess):
    """The shared worker process, quieter: benchmarks read its metrics, not its log."""

    def __init__(self, settings: Settings, log: Path) -> None:
        super().__init__(settings, log, extra_env={"NEWSPIPE_LOG_LEVEL": "warning"})


def counter(text: str, name: str) -> float:
    """Sum of a counter over all its label sets in a Prometheus text page."""
    total = 0.0
    prefix = name + "{"
    for line in text.splitlines():
        if line.startswith(prefix) or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def histogram_quantiles(
    text: str, name: str, qs: tuple[float, ...], having: str = ""
) -> dict[str, float]:
    """histogram_quantile() over the buckets summed across label sets (linear in a bucket);
    `having`: only the series whose labels contain that text (e.g. 'step="commit"')."""
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "_bucket{") and having in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(line.rsplit(" ", 1)[1])
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] == 0:
        return {}
    total = buckets[bounds[-1]]
    out = {}
    for q in qs:
        rank, prev_b, prev_c = q * total, 0.0, 0.0
        for b in bounds:
            c = buckets[b]
            if c >= rank:
                if b == float("inf"):
                    out[f"p{round(q * 100)}"] = prev_b
                else:
                    share = (rank - prev_c) / (c - prev_c) if c > prev_c else 1.0
                    out[f"p{round(q * 100)}"] = prev_b + (b - prev_b) * share
                break
            prev_b, prev_c = b, c
    return out


# How often the benches scrape the workers' /metrics while waiting for the end. A scrape costs a
# worker milliseconds of CPU (the page has a few hundred series), which the passthrough baseline
# does not pay (docs/performance.md has the profile). So the scrapes are sparse while the end is
# far, and dense once it is near, which also tightens the end time the throughput is measured to.
POLL_START_S, POLL_FAR_S, POLL_NEAR_S = 0.25, 1.0, 0.1


def poll_interval(timeline: list[tuple[float, float]], total: float) -> float:
    """The wait before the next scrape, from the progress in `timeline` (time, records counted):
    `POLL_NEAR_S` once every record is counted (their commits follow within a batch) or the end
    is at most a few far polls away at the last rate, `POLL_FAR_S` before that, and
    `POLL_START_S` while there is no rate yet (startup, a rebalance)."""
    if timeline and timeline[-1][1] >= total:
        return POLL_NEAR_S
    if len(timeline) < 2:
        return POLL_START_S
    (t0, n0), (t1, n1) = timeline[-2], timeline[-1]
    if n1 <= n0 or t1 <= t0:
        return POLL_START_S
    seconds_left = (total - n1) * (t1 - t0) / (n1 - n0)
    return POLL_FAR_S if seconds_left > 3 * POLL_FAR_S else POLL_NEAR_S


def settled(page: str) -> float:
    """Records whose fate is committed: emitted, dropped as duplicates or dead-lettered.

    The worker moves these counters only after the batch's transaction committed (output,
    state and input mark together), so their sum reaching the input count means the last clean
    record is in Kafka. (Committed consumer offsets cannot say it: a transactional topic's end
    offset sits one past its last commit marker.)
    """
    return sum(
        counter(page, name)
        for name in (
            "newspipe_records_out_total",
            "newspipe_duplicates_total",
            "newspipe_dead_letters_total",
        )
    )


def run_workers(
    settings: Settings, count: int, total: int, logdir: Path, timeout: float
) -> dict[str, Any]:
    """Start `count` workers in one group at t0; wait until they counted `total` inputs."""
    workers = []
    for i in range(count):
        own = replace(settings, web_port=free_port(), state_dir=logdir / f"state-{i}")
        workers.append(Worker(own, logdir / f"{settings.app_id}-{i}.log"))
    t0 = time.monotonic()
    for w in workers:
        w.start()
    t_first = t_done = t_counted = None
    done = 0.0
    committed = 0
    rss: list[tuple[float, float]] = []  # (records in, summed RSS MiB)
    timeline: list[tuple[float, float]] = []  # (time, records in)
    cpu0 = None
    try:
        while time.monotonic() - t0 < timeout:
            dead = [w for w in workers if not w.alive()]
            if dead:
                raise RuntimeError(f"worker exited:\n{dead[0].log.read_text()[-2000:]}")
            pages = [w.metrics() for w in workers]
            done = sum(counter(p, "newspipe_records_in_total") for p in pages)
            now = time.monotonic()
            if done > 0 and t_first is None:
                t_first = now
                cpu0 = _cpu_s(workers)
            sizes = [w.rss_mib() or 0.0 for w in workers]
            rss.append((done, sum(sizes)))
            timeline.append((now, done))
            if done >= total and t_counted is None:
                t_counted = now
            committed = sum(settled(p) for p in pages)
            if committed >= total:
                t_done = time.monotonic()
                break
            time.sleep(poll_interval(timeline, total))
        if t_done is None:
            raise RuntimeError(
                f"{count} worker(s) settled {committed} of {total} events in {timeout}s"
            )
        cpu = _cpu_s(workers) - (cpu0 or 0.0)
        pages = [w.metrics() for w in workers]
    finally:
        for w in workers:
            w.stop()
    assert t_first is not None
    busy = t_done - t_first
    return {
        "steady_events_per_s": steady_rate(timeline, total),
        "workers": count,
        "events": total,
        "start_to_last_s": t_done - t0,
        "start_to_all_counted_s": (t_counted or t_done) - t0,
        "first_to_last_s": busy,
        "events_per_s": total / busy if busy > 0 else float("nan"),
        "events_per_s_incl_startup": total / (t_done - t0),
        "worker_cpu_s": cpu,
        "worker_cpu_us_per_event": cpu / total * 1e6,
        "records_in": sum(counter(p, "newspipe_records_in_total") for p in pages),
        "records_out": sum(counter(p, "newspipe_records_out_total") for p in pages),
        "duplicates": sum(counter(p, "newspipe_duplicates_total") for p in pages),
        "dead_letters": sum(counter(p, "newspipe_dead_letters_total") for p in pages),
        # the cyclic collector's pauses (the event loop stops for each), by generation
        "worker_gc_pause_s": gc_pauses(pages, "sum"),
        "worker_gc_runs": gc_pauses(pages, "count"),
        "rss_mib_samples": rss[:: max(1, len(rss) // 20)] + rss[-1:],
        "rss_mib_peak": max((r for _, r in rss), default=0.0),
    }


def gc_pauses(pages: list[str], what: str) -> dict[str, float]:
    """The workers' `newspipe_gc_pause_seconds` sum or count per generation, summed."""
    name = f"newspipe_gc_pause_seconds_{what}"
    return {g: sum(counter(p, f'{name}{{generation="{g}"}}') for p in pages) for g in "012"}


def steady_rate(timeline: list[tuple[float, float]], total: int) -> float:
    """Events/s between 10% and 90% of the input: leaves out startup, rebalances and the tail."""
    lo = next(((t, n) for t, n in timeline if n >= 0.1 * total), None)
    hi = next(((t, n) for t, n in timeline if n >= 0.9 * total), None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return float("nan")
    return (hi[1] - lo[1]) / (hi[0] - lo[0])


def _cpu_s(workers: list[Worker]) -> float:
    """User + system CPU seconds of the worker processes (from /proc/<pid>/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for w in workers:
        try:
            fields = Path(f"/proc/{w.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()  # type: ignore[union-attr]
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError):
            pass
    return total


# -- the baseline -------------------------------------------------------------------------------
async def passthrough(
    settings: Settings, out_topic: str, total: int, timeout: float, round_no: int = 0
) -> dict:
    """Bare aiokafka: consume the raw topics in a group (a new one each round, so each reads
    everything), produce each record, ack, commit."""
    names = TopicNames(settings.topic_prefix)
    group = f"{settings.app_id}-passthrough{round_no}"
    t0 = time.monotonic()
    cpu0 = time.process_time()
    consumer = AIOKafkaConsumer(
        names.raw_articles,
        names.raw_comments,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    prod = producer(settings)
    await consumer.start()
    await prod.start()
    done = 0
    t_first = None
    try:
        while done < total and time.monotonic() - t0 < timeout:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            futures = []
            for records in batches.values():
                for rec in records:
                    futures.append(await prod.send(out_topic, rec.value, key=rec.key))
            if futures:
                if t_first is None:
                    t_first = time.monotonic()
                await asyncio.gather(*futures)
                await consumer.commit()
                done += len(futures)
        t_done = time.monotonic()
    finally:
        await consumer.stop()
        await prod.stop()
    if done < total:
        raise RuntimeError(f"passthrough moved {done} of {total} in {timeout}s")
    busy = t_done - (t_first or t0)
    return {
        "events": done,
        "start_to_last_s": t_done - t0,
        "first_to_last_s": busy,
        "events_per_s": done / busy,
        "cpu_us_per_event": (time.process_time() - cpu0) / done * 1e6,
    }


def baseline(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest passthrough round, with every round's rate and their median: the ratios
    are taken against what the bare client can do at best in this run, so they err against
    the worker, as the core's do against the fastest floor window."""
    best = dict(max(rounds, key=lambda r: r["events_per_s"]))
    rates = [r["events_per_s"] for r in rounds]
    best["rounds_events_per_s"] = rates
    best["median_events_per_s"] = statistics.median(rates)
    return best


# -- latency at a fixed offered rate ------------------------------------------------------------
async def offered_load(settings: Settings, items: list[Item], rate: float) -> dict[str, int]:
    """Send at `rate` events/s (10 ms ticks); returns source id -> raw CreateTime (ms)."""
    names = TopicNames(settings.topic_prefix)
    topic = {"articles": names.raw_articles, "comments": names.raw_comments}
    prod = producer(settings)
    await prod.start()
    sent: dict[str, int] = {}
    try:
        t0 = time.monotonic()
        pending = []
        for i, (stream, key, value, sid) in enumerate(items):
            due = t0 + i / rate
            delay = due - time.monotonic()
            if delay > 0.002:
                await asyncio.sleep(delay)
            ms = int(time.time() * 1000)
            sent[sid] = ms
            pending.append(await prod.send(topic[stream], value, key=key, timestamp_ms=ms))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await prod.stop()
    return sent


async def clean_timestamps(settings: Settings, expected: int, timeout: float) -> dict[str, int]:
    """Source id -> the clean record's CreateTime (ms), read from both clean topics (committed
    records only, as `records_out` counts them) until `expected` records were read. A source id
    can have two clean records (a comment edited within the round): the later one's time is
    kept, and counting ids instead of records waited out the whole timeout."""
    names = TopicNames(settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        names.clean_articles,
        names.clean_comments,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    out: dict[str, int] = {}
    read = 0
    deadline = time.monotonic() + timeout
    try:
        while read < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batches.values():
                read += len(records)
                for rec in records:
                    body = orjson.loads(rec.value)
                    sid = body.get("source_comment_id") or body.get("source_id")
                    if sid is not None:
                        out[str(sid)] = rec.timestamp
    finally:
        await consumer.stop()
    return out


# Each round runs on topics of its own, and a partition's first append makes its index files
# (docs/performance.md): the first seconds of a round on fresh topics measure that cold start,
# not the steady state the target is about. So a round first offers this long at its rate, lets
# the worker catch up, and then measures; the cold seconds' p99 is reported beside it.
WARM_UP_S = 5.0


def latency_run(
    settings: Settings, items: list[Item], rate: float, logdir: Path, warm: Sequence[Item] = ()
) -> dict:
    """Offer `warm` then `items` at `rate` to a fresh worker; the latency figures are those of
    `items` (the steady state), `cold_*` those of `warm` (the round's first seconds)."""
    worker = Worker(replace(settings, web_port=free_port(), state_dir=logdir / "state-lat"),
                    logdir / f"{settings.app_id}-latency.log").start()  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not worker.ready():
            if not worker.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"latency worker not ready:\n{worker.log.read_text()[-2000:]}")
            time.sleep(0.3)
        time.sleep(2.0)  # let the first assignment settle
        cold_sent = asyncio.run(offered_load(settings, list(warm), rate)) if warm else {}
        _wait_for_records_in(worker, len(warm), 300)
        t0, cpu0 = time.monotonic(), _cpu_s([worker])
        sent = asyncio.run(offered_load(settings, items, rate))
        offered_s = time.monotonic() - t0
        page = _wait_for_records_in(worker, len(warm) + len(items), 300)
        # the share of a core the worker used from the first record sent to the last counted
        # (its scrapes included): what the load costs it, beside what the latency is
        worker_cores = (_cpu_s([worker]) - cpu0) / (time.monotonic() - t0)
        hist = histogram_quantiles(page, "newspipe_event_to_emit_seconds", (0.5, 0.99))
        # where the time goes: one partition's batch step, and its transaction
        steps = {step: histogram_quantiles(page, "newspipe_batch_seconds", (0.5, 0.99),
                                           f'step="{step}"')
                 for step in ("process", "commit")}  # fmt: skip
        out_count = int(counter(page, "newspipe_records_out_total"))
    finally:
        worker.stop()
    emitted = asyncio.run(clean_timestamps(settings, out_count, timeout=60))
    lat = sorted(emitted[s] - sent[s] for s in emitted if s in sent)
    if not lat:
        raise RuntimeError("latency run: no clean record joined to a raw one")
    cold = sorted(emitted[s] - cold_sent[s] for s in emitted if s in cold_sent)
    articles = {sid for stream, _, _, sid in items if stream == "articles"}
    by_stream = {
        name: sorted(emitted[s] - sent[s] for s in emitted if s in sent and (s in articles) == is_a)
        for name, is_a in (("articles", True), ("comments", False))
    }

    def q(p: float, values: list[int] = lat) -> float:
        return values[min(len(values) - 1, int(p * len(values)))] / 1000 if values else 0.0

    return {
        "offered_rate": rate,
        "warm_up_events": len(warm),
        "cold_p99_s": q(0.99, cold) if cold else None,
        "achieved_offered_rate": len(items) / offered_s,
        "events": len(items),
        "joined": len(lat),
        "p50_s": q(0.50),
        "p99_s": q(0.99),
        "max_s": lat[-1] / 1000,
        "mean_s": statistics.fmean(lat) / 1000,
        "histogram_p50_s": hist.get("p50"),
        "histogram_p99_s": hist.get("p99"),
        "worker_cores": worker_cores,
        "batch_process_s": steps["process"],
        "batch_commit_s": steps["commit"],
        # articles pass two stages (raw -> near-dup topic -> clean), comments one
        "by_stream": {
            name: {"p50_s": q(0.5, values), "p99_s": q(0.99, values), "joined": len(values)}
            for name, values in by_stream.items()
        },
    }


def _wait_for_records_in(worker: Worker, n: int, timeout: float) -> str:
    """The worker's metrics page once it counted `n` records in (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    page = worker.metrics()
    while counter(page, "newspipe_records_in_total") < n and time.monotonic() < deadline:
        time.sleep(0.3)
        page = worker.metrics()
    return page


WRITTEN_KINDS = ("clean", "trends", "neardup", "state changelogs", "trend changelogs")


async def records_written(settings: Settings, app_id: str) -> dict[str, int]:
    """Committed records in the output, trend, near-dup and changelog topics, by kind.

    Counted by reading them (read_committed): end offsets would also count the transaction
    markers, one per partition a transaction touched, and the records of aborted attempts.
    """
    from aiokafka import TopicPartition

    names = TopicNames(settings.topic_prefix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        topics = cluster.topics()
        state = [t for t in topics if t.startswith(f"{settings.topic_prefix}{app_id}-state.")]
        groups: dict[str, list[str]] = {
            "clean": [names.clean_articles, names.clean_comments, names.dlq],
            "trends": [names.trend_events, names.trends],
            "neardup": [names.neardup],
            "state changelogs": state,
            "trend changelogs": [t for t in topics if t.startswith(app_id) and "changelog" in t],
        }
        kind_of = {t: kind for kind, members in groups.items() for t in members}
        tps = [
            TopicPartition(t, p)
            for t in kind_of
            if t in topics
            for p in cluster.partitions_for_topic(t) or ()
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)  # the last stable offsets
        per_topic: dict[str, int] = dict.fromkeys(kind_of, 0)
        pending = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(*pending, timeout_ms=1000, max_records=20_000)
            for tp, messages in batch.items():
                per_topic[tp.topic] += len(messages)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        out = {kind: sum(per_topic[t] for t in members) for kind, members in groups.items()}
        for t in state:
            out[t[len(settings.topic_prefix) :]] = per_topic[t]
        return out
    finally:
        await consumer.stop()


# -- orchestration ------------------------------------------------------------------------------
async def _topics_with(settings: Settings, prefixes: tuple[str, ...]) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        return [t for t in await admin.list_topics() if t.startswith(prefixes)]
    finally:
        await admin.close()


async def _delete(settings: Settings, names: list[str]) -> None:
    if not names:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


async def _create(settings: Settings, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def run(
    n_comments: int = 200_000,
    n_articles: int = 20_000,
    *,
    two_workers: bool = True,
    latency: bool = True,
    latency_rounds: int = 1,
    store: str | None = None,
    latency_share: float = 0.5,
    latency_seconds: float = 20.0,
    timeout: float = 600.0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The whole end-to-end benchmark; returns its figures (and deletes every topic it made).

    `store`: the workers' state store (NEWSPIPE_STORE's values; default: the environment's).
    `latency=False` skips the fixed-rate latency part; `latency_rounds` > 1 runs it that many
    times (fresh topics and state each) and keeps the round of the median p99."""
    tag = uuid.uuid4().hex[:8]
    env = Settings.from_env()
    base = replace(
        env,
        topic_prefix=f"bench{tag}.",
        app_id=f"bench{tag}-w1",
        partitions=6,
        store=store or env.store,
    )
    total = n_comments + n_articles
    result: dict[str, Any] = {
        "comments": n_comments, "articles": n_articles, "partitions": 6, "store": base.store,
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        logdir = Path(tmp)
        try:
            asyncio.run(create_topics(base))
            out_topic = f"bench{tag}.passthrough.out"
            asyncio.run(_create(base, out_topic, 6))
            items = make_events(n_comments, n_articles)
            raw_bytes = sum(len(v) for _, _, v, _ in items)
            result["raw_mb"] = raw_bytes / 1e6
            log(f"e2e: pre-loading {total:,} events ({raw_bytes / 1e6:.1f} MB) into 6 partitions")
            result["preload_events_per_s"] = asyncio.run(preload(base, items))
            del items

            # a passthrough round before each worker run and one after the last: it moves
            # everything in a few seconds where a worker takes tens, so one round is at the
            # mercy of a few seconds of the machine's noise
            base_rounds: list[dict[str, Any]] = []

            def passthrough_round() -> None:
                k = len(base_rounds)
                log(f"e2e: bare aiokafka passthrough (baseline, round {k + 1})")
                pt = asyncio.run(passthrough(base, out_topic, total, timeout, k))
                base_rounds.append(pt)
                log(f"  {pt['events_per_s']:,.0f} events/s")

            passthrough_round()
            log("e2e: one newspipe worker")
            one = run_workers(base, 1, total, logdir, timeout)
            result["one_worker"] = one
            written = asyncio.run(records_written(base, base.app_id))
            one["records_written"] = written
            one["kafka_records_written_per_input"] = (
                sum(v for k, v in written.items() if k in WRITTEN_KINDS) / total
            )
            steady = one["steady_events_per_s"]
            log(f"  {one['events_per_s']:,.0f} events/s (steady {steady:,.0f}), "
                f"{one['start_to_last_s']:.1f} s from start")  # fmt: skip
            passthrough_round()
            if two_workers:
                log("e2e: two newspipe workers, one group")
                two = run_workers(replace(base, app_id=f"bench{tag}-w2"), 2, total, logdir,
                                  timeout)  # fmt: skip
                result["two_workers"] = two
                log(f"  {two['events_per_s']:,.0f} events/s (steady "
                    f"{two['steady_events_per_s']:,.0f})")  # fmt: skip
                passthrough_round()
            result["passthrough"] = baseline(base_rounds)
            log(f"e2e: the baseline, the fastest of {len(base_rounds)} passthrough rounds: "
                f"{result['passthrough']['events_per_s']:,.0f} events/s")  # fmt: skip

            if latency:
                rate = max(50.0, round(one["events_per_s"] * latency_share, -1))
                rounds = [
                    _latency_round(base, tag, k, n_comments, n_articles, rate, latency_seconds,
                                   latency_share, logdir, log)
                    for k in range(latency_rounds)
                ]  # fmt: skip
                # the round of the median p99 stands for the run; every round's p99 is kept
                result["latency"] = sorted(rounds, key=lambda r: r["p99_s"])[len(rounds) // 2]
                result["latency"]["rounds_p99_s"] = [r["p99_s"] for r in rounds]
                result["latency"]["rounds_p50_s"] = [r["p50_s"] for r in rounds]
                result["latency"]["rounds_worker_cores"] = [r["worker_cores"] for r in rounds]
                result["latency"]["rounds_cold_p99_s"] = [r["cold_p99_s"] for r in rounds]
        finally:
            doomed = asyncio.run(_topics_with(base, (f"bench{tag}",)))
            asyncio.run(_delete(base, doomed))
            result["topics_deleted"] = len(doomed)
    return _ratios(result, two_workers)


def _latency_round(
    base: Settings,
    tag: str,
    k: int,
    n_comments: int,
    n_articles: int,
    rate: float,
    seconds: float,
    share: float,
    logdir: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """One latency round at `rate` for `seconds`, on topics and state of its own."""
    total = n_comments + n_articles
    n_warm = int(rate * WARM_UP_S)
    n_lat = int(rate * seconds) + n_warm
    lat_settings = replace(base, topic_prefix=f"bench{tag}l{k}.", app_id=f"bench{tag}-lat{k}")
    asyncio.run(create_topics(lat_settings))
    share_articles = n_articles / total
    lat_items = make_events(n_lat - int(n_lat * share_articles), int(n_lat * share_articles),
                            tag=f"lat{k}")  # fmt: skip
    # interleave articles among comments, as live traffic would
    lat_items.sort(key=lambda it: hash(it[3]))
    log(f"e2e: latency round {k + 1} at {rate:,.0f} events/s offered ({share:.0%} of max), "
        f"{WARM_UP_S:.0f} s on fresh topics, then {seconds:.0f} s measured")  # fmt: skip
    lat = latency_run(lat_settings, lat_items[n_warm:], rate, logdir, warm=lat_items[:n_warm])
    lat["share_of_max"] = share
    lat["warm_up_s"] = WARM_UP_S
    proc, commit = lat["batch_process_s"], lat["batch_commit_s"]
    cold = lat["cold_p99_s"]
    log(f"  p50 {lat['p50_s'] * 1000:.0f} ms, p99 {lat['p99_s'] * 1000:.0f} ms (the first "
        f"{WARM_UP_S:.0f} s on fresh topics: p99 {(cold or 0) * 1000:.0f} ms); a "
        f"partition's batch: process p50 {proc.get('p50', 0) * 1000:.0f} ms, "
        f"transaction p50 {commit.get('p50', 0) * 1000:.0f} ms; the worker used "
        f"{lat['worker_cores']:.2f} of a core")  # fmt: skip
    return lat


def _ratios(result: dict[str, Any], two_workers: bool) -> dict[str, Any]:
    pt = result["passthrough"]["events_per_s"]
    one = result["one_worker"]
    result["ratio_one_worker_to_passthrough"] = one["events_per_s"] / pt
    # for comparison with runs before the baseline was the fastest of several rounds
    result["ratio_one_worker_to_median_passthrough"] = (
        one["events_per_s"] / result["passthrough"]["median_events_per_s"]
    )
    result["ratio_one_worker_steady_to_passthrough"] = one["steady_events_per_s"] / pt
    if two_workers:
        two = result["two_workers"]
        result["scaling_two_over_one"] = two["events_per_s"] / one["events_per_s"]
        result["scaling_two_over_one_steady"] = (
            two["steady_events_per_s"] / one["steady_events_per_s"]
        )
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--comments", type=int, default=200_000)
    ap.add_argument("--articles", type=int, default=20_000)
    ap.add_argument("--no-two-workers", action="store_true")
    ap.add_argument("--latency-seconds", type=float, default=20.0)
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--latency-rounds", type=int, default=1)
    ap.add_argument("--store", help="the workers' state store (default: NEWSPIPE_STORE's)")
    args = ap.parse_args(argv)
    res = run(args.comments, args.articles, two_workers=not args.no_two_workers,
              latency=not args.no_latency, latency_rounds=args.latency_rounds, store=args.store,
              latency_seconds=args.latency_seconds)  # fmt: skip
    print(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
