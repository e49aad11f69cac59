"""The stream shell: a Faust app whose agents decode, call the core, send and count. Nothing more.

Agents take events in batches (`stream.take_events`) because Faust's per-event machinery costs as
much as the whole core (see ../shared/notes/cost-floors.md). Values stay bytes end to end (raw
serializer, orjson), so Faust never builds model objects. Offsets are committed only after the
producer has flushed what the batch sent (Faust's at-least-once commit path), and the dedup state
makes a re-processed batch emit nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from aiohttp import web
from faust.streams import _current_event

from pipeline import __version__, kafka_io, trends
from pipeline.broker import kafka_version
from pipeline.core import ARTICLES, CLEAN, COMMENTS, DLQ, Core, Meta, Result, States
from pipeline.logs import logging_config, wire_app_logging
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.statelog import PartitionedMap, StageState
from pipeline.topics import TopicNames

REPLAY_HEADER = "newspipe-replay"
NEARDUP = "neardup"
# a batch whose transaction keeps failing stops the worker before Faust can commit its offsets
MAX_ATTEMPTS = 3

log = logging.getLogger(__name__)


@dataclass
class Work:
    """One partition's share of a batch: what to send, and the counters to move once sent."""

    sends: list[tuple[str, bytes | None, bytes, int | None, int | None]] = field(
        default_factory=list
    )
    effects: list[Callable[[], None]] = field(default_factory=list)
    last_offset: int = -1


def _use_read_committed() -> None:
    """Faust's consumer reads read_committed only in its own exactly_once mode; the stages'
    internal topics (near-dup, trend events) are written in transactions, so always read them
    committed: an aborted attempt must not reach the next stage."""
    from faust.transport.drivers import aiokafka as driver

    thread = driver.AIOKafkaConsumerThread
    if getattr(thread, "_newspipe_read_committed", False):
        return
    create = thread._create_worker_consumer

    def create_read_committed(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        consumer._isolation_level = "read_committed"  # read by AIOKafkaConsumer.start()
        return consumer

    thread._create_worker_consumer = create_read_committed  # type: ignore[method-assign]
    thread._newspipe_read_committed = True  # type: ignore[attr-defined]


def _headers(message: Any) -> list[tuple[str, bytes]]:
    raw = message.headers or []
    items = raw.items() if isinstance(raw, dict) else raw
    return [(k if isinstance(k, str) else k.decode("utf-8", "replace"), v or b"") for k, v in items]


def _credentials(settings: Settings) -> Any:
    """Faust's form of the Kafka security settings (None for PLAINTEXT)."""
    options = settings.aiokafka_security()
    if not options:
        return None
    if "sasl_mechanism" in options:
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=str(options["sasl_mechanism"]),
            ssl_context=options.get("ssl_context"),
        )
    return faust.SSLCredentials(options["ssl_context"])


def create_app(settings: Settings | None = None) -> faust.App:
    """Build the app for `settings`; tests build several with their own ids and prefixes."""
    settings = settings or Settings.from_env()
    names = TopicNames(settings.topic_prefix, settings.app_id)
    _use_read_committed()
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        store=settings.store,
        datadir=str(settings.state_dir),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_enabled=True,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee=settings.processing_guarantee,
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
        producer_linger_ms=5,
        broker_commit_interval=settings.commit_interval_s,
        stream_buffer_maxsize=max(4096, settings.batch_size * 4),
        table_cleanup_interval=60.0,
        table_standby_replicas=settings.standby_replicas,
        # a topic missing when the worker joined (a broker still creating it) is seen within
        # 30 s instead of aiokafka's default 5 minutes, and the group rebalances onto it
        consumer_metadata_max_age_ms=30_000,
        broker_credentials=_credentials(settings),
        logging_config=logging_config(settings.log_level),
    )
    metrics = Metrics(kafka_version=kafka_version())
    app.newspipe_metrics = metrics  # type: ignore[attr-defined]
    app.newspipe_settings = settings  # type: ignore[attr-defined]

    def topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            partitions=settings.partitions,
            retention=None,
            internal=False,
        )

    raw_articles = topic(names.raw_articles)
    raw_comments = topic(names.raw_comments)
    trend_events_topic = topic(names.trend_events)
    neardup_topic = app.topic(
        names.neardup, key_type=bytes, value_type=bytes, partitions=1, internal=False
    )

    states = States(
        articles=PartitionedMap("articles"),
        comments=PartitionedMap("comments"),
        index=PartitionedMap("index"),
        article_tags=PartitionedMap("article_tags"),
    )

    def txn_producer(**options: Any) -> Any:
        # a batch's transaction takes a second or two; one left open by a dead worker holds
        # back read_committed readers until the broker aborts it, so keep the timeout short
        return kafka_io.producer(settings, transaction_timeout_ms=20_000, **options)

    stages = {
        ARTICLES: StageState(
            ARTICLES,
            {"articles": states.articles, "article_tags": states.article_tags},
            names.state_articles, settings, txn_producer,
        ),
        COMMENTS: StageState(
            COMMENTS, {"comments": states.comments}, names.state_comments, settings, txn_producer
        ),
        # the near-dup index sees every article: it lives with the one-partition near-dup stage
        NEARDUP: StageState(
            NEARDUP, {"index": states.index}, names.state_neardup, settings, txn_producer
        ),
    }  # fmt: skip
    sources = {ARTICLES: names.raw_articles, COMMENTS: names.raw_comments, NEARDUP: names.neardup}
    app.newspipe_stages = stages  # type: ignore[attr-defined]
    core = Core(settings, states)
    last_sweep = [time.monotonic()]

    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        """Give up the state of partitions that moved away; new ones load on first use."""
        for name, stage in stages.items():
            await stage.release({tp.partition for tp in assigned if tp.topic == sources[name]})

    app.on_partitions_assigned.connect(on_assigned)

    async def run_batch(stage_name: str, events: list[Any]) -> None:
        """Process a batch: one transaction per input partition, the partitions side by side."""
        if time.monotonic() - last_sweep[0] >= settings.expiry_sweep_s:
            last_sweep[0] = time.monotonic()
            core.expire()
        by_partition: dict[int, list[Any]] = {}
        for event in events:
            by_partition.setdefault(event.message.partition, []).append(event)
        await asyncio.gather(
            *(run_partition(stage_name, p, evs) for p, evs in by_partition.items())
        )

    def still_owned(stage_name: str, partition: int) -> bool:
        """Whether this worker is still assigned the stage's input partition."""
        consumer = app._consumer
        if consumer is None:
            return False
        return any(
            tp.topic == sources[stage_name] and tp.partition == partition
            for tp in consumer.assignment()
        )

    async def run_partition(stage_name: str, partition: int, events: list[Any]) -> None:
        stage = stages[stage_name]
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                part = await stage.open(partition)
                if stage_name == COMMENTS:  # comments read their article's tags
                    await stages[ARTICLES].open(partition)
                work = process_partition(stage_name, stage, partition, part.mark, events)
                if work.last_offset < 0:
                    return
                await stage.commit(partition, part, work.sends, work.last_offset)
                for effect in work.effects:
                    effect()
                return
            except Exception as exc:
                stage.discard(partition)  # nothing of a failed attempt may reach the state
                if not still_owned(stage_name, partition):
                    # the partition moved to another worker, which processes these records
                    # from its own mark; this worker's offsets for it can no longer commit
                    metrics.child(metrics.transaction_retries, stage_name, "moved").inc()
                    log.warning("partition %s of %s moved to another worker: %r",
                                partition, stage_name, exc)  # fmt: skip
                    return
                metrics.child(metrics.transaction_retries, stage_name, "retried").inc()
                log.warning(
                    "batch of %s-%s failed (attempt %d): %r", stage_name, partition, attempt, exc
                )
                await asyncio.sleep(0.2 * attempt)
        # Faust acks a batch's records even when the agent fails: leave before it commits them
        log.critical("batch of %s-%s failed %d times; exiting", stage_name, partition, attempt)
        logging.shutdown()
        os._exit(70)

    def process_partition(
        stage_name: str, stage: StageState, partition: int, mark: int, events: list[Any]
    ) -> Work:
        """The synchronous part: the core over one partition's records, with no await inside,
        so the selected partition of the shared state maps cannot change under it."""
        stage.select(partition)
        if stage_name == COMMENTS:
            states.article_tags.select(partition)
        work = Work()
        counts = trends.BatchCounts()
        for event in events:
            msg = event.message
            if msg.offset <= mark:
                stream = ARTICLES if stage_name == NEARDUP else stage_name
                metrics.child(metrics.already_committed, stream).inc()
                continue
            work.last_offset = max(work.last_offset, msg.offset)
            if stage_name == NEARDUP:
                item = orjson.loads(event.value)
                staged = Result(ARTICLES, CLEAN, item["reason"], item["source"], item["record"])
                result = core.finish_article(staged)
                emit(work, counts, result, names.clean_articles, item["mode"], item["ts"],
                     counted=True)  # fmt: skip
                continue
            headers = _headers(msg)
            mode = "replay" if any(k == REPLAY_HEADER for k, _ in headers) else "live"
            result = core.process_local(
                stage_name,
                event.value,
                Meta(
                    msg.topic,
                    msg.partition,
                    msg.offset,
                    msg.key,
                    headers,
                    msg.timestamp and int(msg.timestamp * 1000),
                ),
            )
            if stage_name == ARTICLES and result.status == CLEAN:
                # on to the one-partition near-dup stage, which emits or drops it
                work.effects.append(lambda r=result, m=mode: count_in(r, m))
                forward = {"reason": result.reason, "source": result.source, "mode": mode,
                           "ts": msg.timestamp, "partition": msg.partition,
                           "record": result.record}  # fmt: skip
                key = result.record["article_id"].encode()
                work.sends.append((names.neardup, key, orjson.dumps(forward), None, None))
                continue
            clean_topic = names.clean_articles if stage_name == ARTICLES else names.clean_comments
            emit(work, counts, result, clean_topic, mode, msg.timestamp, partition)
        for tkey, minute, label, n in counts.drain():
            # the Kafka timestamp carries the event time: the windowed table counts by it
            value = orjson.dumps({"label": label, "n": n})
            work.sends.append((names.trend_events, tkey.encode(), value, None, int(minute * 1000)))
        return work

    def count_in(result: Result, mode: str) -> None:
        metrics.child(metrics.records_in, result.stream, result.source, mode).inc()
        for stage, seconds in result.stage_seconds.items():
            metrics.child(metrics.stage_seconds, stage, result.stream).observe(seconds)

    def emit(
        work: Work,
        counts: trends.BatchCounts,
        result: Result,
        clean_topic: str,
        mode: str,
        timestamp: float | None,
        partition: int | None = None,
        counted: bool = False,
    ) -> None:
        """Queue the result's output; its counters move only once the transaction committed."""
        value = orjson.dumps(result.record)
        if result.status == CLEAN:
            key = result.key.encode() if result.key else None
            # Comments go to their source partition's number (the one their key gives when raw
            # events are keyed by article id), so clean output stays co-partitioned.
            work.sends.append((clean_topic, key, value, partition, None))
            counts.add(result.stream, result.record)
        elif result.status == DLQ:
            work.sends.append((names.dlq, None, value, None, None))
        work.effects.append(lambda: count(result, mode, timestamp, counted))

    def count(result: Result, mode: str, timestamp: float | None, counted: bool) -> None:
        m = metrics
        if counted:  # counted in by the first stage; only this stage's time is new
            for stage, seconds in result.stage_seconds.items():
                m.child(m.stage_seconds, stage, result.stream).observe(seconds)
        else:
            count_in(result, mode)
        if result.status == CLEAN:
            m.child(m.records_out, result.stream, mode).inc()
            for tag in result.record.get("tags", ()):
                if tag.get("level") == 1 and not tag.get("inherited"):
                    m.child(m.tags, result.stream, tag["code"]).inc()
            if timestamp:
                m.child(m.event_to_emit, result.stream).observe(max(0.0, time.time() - timestamp))
        elif result.status == DLQ:
            m.child(m.dead_letters, result.stream, result.reason, mode).inc()
            dlq_log.note(result.reason, result.stream)
        else:
            m.child(m.duplicates, result.stream, result.reason, mode).inc()

    def batches(stream: faust.StreamT) -> Any:
        return stream.take_events(settings.batch_size, within=settings.batch_timeout_s)

    @app.agent(raw_articles, name="articles")
    async def articles(stream: faust.StreamT) -> None:
        async for events in batches(stream):
            await run_batch(ARTICLES, events)

    @app.agent(raw_comments, name="comments")
    async def comments(stream: faust.StreamT) -> None:
        async for events in batches(stream):
            await run_batch(COMMENTS, events)

    @app.agent(neardup_topic, name="neardup")
    async def neardup(stream: faust.StreamT) -> None:
        async for events in batches(stream):
            await run_batch(NEARDUP, events)

    windowed = {
        name: app.Table(
            f"trends-{name}",
            default=int,
            partitions=settings.partitions,
            schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
        )
        .tumbling(size, expires=trends.WINDOW_EXPIRES[name])
        .relative_to_stream()
        for name, size in trends.WINDOWS.items()
    }
    latest: dict[str, dict[str, Any]] = {}
    watermark = [0.0]
    for wrapper in windowed.values():
        wrapper.table._verified_source_topics_for_partitions.add(names.trend_events)

    @app.agent(trend_events_topic, name="trends")
    async def count_trends(stream: faust.StreamT) -> None:
        async for events in stream.take_events(
            settings.batch_size, within=settings.batch_timeout_s
        ):
            changed: dict[str, dict[str, Any]] = {}
            for event in events:
                _current_event.set(weakref.ref(event))
                key = event.message.key.decode()
                item = orjson.loads(event.value)
                label = item["label"]
                ts = event.message.timestamp
                for name, table in windowed.items():
                    table[key] += item.get("n", 1)
                    record = trends.trend_record(name, key, label, ts, table[key].current())
                    changed[trends.trend_key(record)] = record
            for tkey, record in changed.items():
                # Faust's producer (not a stage's transaction): the trend counts are
                # at-least-once; Faust flushes it before committing the batch's offsets
                await app.producer.send(
                    names.trends, tkey.encode(), orjson.dumps(record), None, None, None
                )
                start = trends.event_epoch({"event_time": record["window_start"]})
                latest[tkey] = {**record, "_start": start}
            # keep what the web page shows bounded: drop windows past expiry in event time
            watermark[0] = max(watermark[0], *(e.message.timestamp for e in events))
            horizon = watermark[0] - max(trends.WINDOW_EXPIRES.values())
            for tkey in [k for k, r in latest.items() if r["_start"] < horizon]:
                del latest[tkey]

    @app.page("/trends")
    async def trends_page(web_: Any, request: Any) -> Any:
        window = request.query.get("window")
        rows = [
            {k: v for k, v in r.items() if k != "_start"}
            for r in latest.values()
            if window in (None, r["window"])
        ]
        rows.sort(key=lambda r: (r["window"], r["window_start"], -r["count"]))
        return web_.json({"trends": rows})

    @app.page("/metrics")
    async def metrics_page(web_: Any, request: Any) -> Any:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        _update_gauges(app, metrics, states, frozenset({names.neardup, names.trend_events}))
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    @app.page("/healthz")
    async def healthz(web_: Any, request: Any) -> Any:
        return web_.json({"status": "ok", "version": __version__})

    @app.page("/readyz")
    async def readyz(web_: Any, request: Any) -> Any:
        ready = _is_ready(app)
        metrics.ready.set(1 if ready else 0)
        return web_.json({"ready": ready}, status=200 if ready else 503)

    dlq_log = wire_app_logging(app, app.tables)
    return app


def _is_ready(app: faust.App) -> bool:
    """Ready when the worker has an assignment, state is recovered and agents consume.

    The stages' state (pipeline.statelog) loads when a partition's first batch arrives;
    `loading` is non-zero meanwhile.
    Faust's own flags: `app.rebalancing` (on_rebalance_start .. on_rebalance_end),
    `app.in_recovery` (changelog replay running), `app.tables.actives_ready` (reset at every
    rebalance start, set when active tables are recovered) and `recovery.completed` (set once the
    first recovery finished and streams were resumed). `app._consumer` is read instead of
    `app.consumer`, which would create a consumer when none exists yet.
    """
    try:
        consumer = app._consumer
        if consumer is None or not consumer.assignment():
            return False
        tables = app.tables
        stages = getattr(app, "newspipe_stages", {})
        return (
            not any(stage.loading for stage in stages.values())
            and not app.rebalancing
            and not app.in_recovery
            and bool(tables.actives_ready)
            and tables.recovery.completed.is_set()
        )
    except Exception:
        return False


STATE_COUNT_INTERVAL_S = 30.0


def _caught_up(consumer: Any, tp: Any, read: dict, committed: int) -> bool:
    """Fetched to the log end, and every record read is committed (a transactional topic)."""
    try:
        aio = consumer._thread._ensure_consumer()
        fetched = aio._subscription.subscription.assignment.state_value(tp).position
    except Exception:
        return False
    last_read = read.get(tp)
    return (
        fetched is not None
        and fetched >= consumer.highwater(tp)
        and (last_read is None or committed >= last_read + 1)
    )


def _update_gauges(
    app: faust.App, metrics: Metrics, states: States, transactional: frozenset[str] = frozenset()
) -> None:
    # Counting a RocksDB table walks every key: do it at most every 30 s, not on every scrape.
    now = time.monotonic()
    if (
        now - getattr(metrics, "state_counted_at", -STATE_COUNT_INTERVAL_S)
        >= STATE_COUNT_INTERVAL_S
    ):
        metrics.state_counted_at = now  # type: ignore[attr-defined]
        for name in ("articles", "comments", "index", "article_tags"):
            try:
                metrics.state_entries.labels(name).set(len(getattr(states, name)))
            except Exception:  # a table mid-rebalance has no size to report
                pass
    metrics.ready.set(1 if _is_ready(app) else 0)
    # Lag per assigned source partition = log end offset (aiokafka's highwater: the offset the
    # next record gets, known after a fetch) minus the committed offset (the next offset to
    # process; Faust keeps it in `_committed_offset`, None for "0 or never committed"). Before
    # the first commit Faust's `_read_offset` is the position (set by the seek to committed,
    # then the offset of the last record read). Changelog partitions are left out (paused after
    # recovery, their highwater grows with our own writes), and so is Faust's leader topic.
    # Partitions lost in a rebalance are removed, so no stale value stays exported.
    try:
        consumer = app._consumer
        lags: dict[tuple[str, str], int] = {}
        if consumer is not None:
            changelogs = app.tables.changelog_topics
            committed = consumer._committed_offset
            read = consumer._read_offset
            for tp in consumer.assignment():
                if tp.topic in changelogs or tp.topic.endswith("__assignor-__leader"):
                    continue
                highwater = consumer.highwater(tp)
                if highwater is None or highwater < 0:
                    continue
                position = committed.get(tp)
                if position is None or position < 0:
                    position = read.get(tp)
                if position is None or position < 0:
                    position = 0
                lag = max(0, highwater - position)
                if lag and tp.topic in transactional and _caught_up(consumer, tp, read, position):
                    # the stages write these topics in transactions: the log ends with commit
                    # markers, which take offsets but are never records to commit past
                    lag = 0
                lags[(tp.topic, str(tp.partition))] = lag
        metrics.consumer_lag.clear()
        for (topic, partition), lag in lags.items():
            metrics.consumer_lag.labels(topic, partition).set(lag)
    except Exception:
        pass
