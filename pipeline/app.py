"""The stream shell: a Faust app whose agents decode, call the core, send and count. Nothing more.

Agents take events in batches (`stream.take_events`) because Faust's per-event machinery costs as
much as the whole core (see ../shared/notes/cost-floors.md). Values stay bytes end to end (raw
serializer, orjson), so Faust never builds model objects. Offsets are committed only after the
producer has flushed what the batch sent (Faust's at-least-once commit path), and the dedup state
makes a re-processed batch emit nothing twice.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import weakref
from collections.abc import Iterator, MutableMapping
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
from pipeline.topics import TopicNames

REPLAY_HEADER = "newspipe-replay"
# the delivery futures of what the current batch sent (one list per agent task)
batch_futures: contextvars.ContextVar[list[Any]] = contextvars.ContextVar("batch_futures")


class TableState(MutableMapping[str, Any]):
    """Adapts a Faust table to the plain mapping the core expects, with writes held back.

    Writes stay in an overlay until `flush()`, which the shell calls only after the batch's
    output has been acknowledged by Kafka. So a crash can lose output-and-state or state alone,
    never leave state that claims a record was emitted when its output was lost; the first case
    is what reprocessing is for, the second what the clean-tail reconciliation repairs.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self.pending: dict[str, tuple[Any, Any]] = {}

    def __getitem__(self, key: str) -> Any:
        hit = self.pending.get(key)
        return hit[0] if hit is not None else self.table[key]

    def get(self, key: str, default: Any = None) -> Any:
        hit = self.pending.get(key)
        return hit[0] if hit is not None else self.table.get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        # remember the event, whose partition decides the changelog partition at flush
        self.pending[key] = (value, _current_event.get(None))

    def flush(self) -> None:
        for key, (value, ref) in self.pending.items():
            _current_event.set(ref)
            self.table[key] = value
        self.pending.clear()

    def __delitem__(self, key: str) -> None:
        # Local delete only. Deletes come from the expiry sweep, which runs outside the key's
        # own partition; a tombstone would land in the wrong changelog partition. The changelog
        # forgets old keys by itself (cleanup.policy compact,delete with retention.ms), and a
        # key restored from it before that is older than the horizon, so the core ignores it.
        self.pending.pop(key, None)
        if key in self.table:
            del self.table.data[key]

    def __contains__(self, key: object) -> bool:
        return key in self.pending or key in self.table

    def __iter__(self) -> Iterator[str]:
        return iter(set(self.table.keys()) | set(self.pending))

    def __len__(self) -> int:
        return len(set(self.table.keys()) | set(self.pending))


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
    names = TopicNames(settings.topic_prefix)
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
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(4096, settings.batch_size * 4),
        table_cleanup_interval=60.0,
        table_standby_replicas=settings.standby_replicas,
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
    clean_articles = topic(names.clean_articles)
    clean_comments = topic(names.clean_comments)
    dlq = topic(names.dlq)
    trend_events_topic = topic(names.trend_events)
    neardup_topic = app.topic(
        names.neardup, key_type=bytes, value_type=bytes, partitions=1, internal=False
    )
    trends_topic = topic(names.trends)

    def table(name: str, horizon_s: int, partitions: int = settings.partitions) -> faust.Table:
        return app.Table(
            name,
            default=None,
            partitions=partitions,
            schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
            # Changelog keeps the latest value per key, and deletes what is older than the
            # horizon, so recovery time is bounded like the state itself.
            extra_topic_configs={
                "cleanup.policy": "compact,delete",
                "retention.ms": str(horizon_s * 1000 * 2),
            },
        )

    states = States(
        articles=TableState(table("articles", settings.article_horizon_s)),
        comments=TableState(table("comments", settings.comment_horizon_s)),
        # the near-dup index sees every article: it lives with the one-partition near-dup stage
        index=TableState(table("neardup-index", settings.article_horizon_s, partitions=1)),
        article_tags=TableState(table("article-tags", settings.article_horizon_s)),
    )
    for state in (states.articles, states.comments, states.index, states.article_tags):
        # Faust checks source vs changelog partitions against a metadata snapshot that can show
        # 0 partitions for a changelog created a moment earlier, and then fails the first
        # events. Both are created with the same count here, so the check is settled.
        verified = state.table._verified_source_topics_for_partitions
        if state is states.index:
            verified.add(names.neardup)
        else:
            verified.update({names.raw_articles, names.raw_comments})
    core = Core(settings, states)
    outputs = {ARTICLES: clean_articles, COMMENTS: clean_comments}

    last_sweep = [time.monotonic()]
    owned = {ARTICLES: [states.articles, states.article_tags], COMMENTS: [states.comments]}
    # Source partitions whose clean output tail has been read since the last assignment: after a
    # crash the output of the uncommitted records can be in the clean topic while their state
    # write was lost; remembering that output first makes the reprocessing emit nothing twice.
    reconciled: set[tuple[str, int]] = set()
    tail_records = max(5000, 10 * settings.batch_size)

    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        reconciled.clear()

    app.on_partitions_assigned.connect(on_assigned)

    async def reconcile(stream_name: str, partition: int | None) -> None:
        """Mark as seen what a partition's stage already wrote to Kafka (see `reconciled`)."""
        if stream_name == COMMENTS:  # clean.comments partition p holds raw partition p's output
            for value in await kafka_io.read_tail(
                settings, names.clean_comments, [partition], tail_records
            ):
                core.deduper.remember_emitted(COMMENTS, orjson.loads(value))
        elif partition is not None:  # the articles' local stage writes to the near-dup topic
            for value in await kafka_io.read_tail(settings, names.neardup, None, tail_records):
                item = orjson.loads(value)
                if item.get("partition") == partition:
                    core.deduper.remember_emitted(ARTICLES, item["record"], stage="local")
        else:  # the near-dup stage writes to every clean.articles partition
            for value in await kafka_io.read_tail(
                settings, names.clean_articles, None, tail_records
            ):
                core.deduper.remember_emitted(ARTICLES, orjson.loads(value), stage="neardup")

    async def handle_batch(stream_name: str, events: list[Any]) -> None:
        batch_futures.set([])
        if time.monotonic() - last_sweep[0] >= settings.expiry_sweep_s:
            last_sweep[0] = time.monotonic()
            core.expire()
        for event in events:
            # take_events does not set Faust's current event; tables need it to pick the
            # changelog partition (the event's own partition, so state follows the data).
            _current_event.set(weakref.ref(event))
            msg = event.message
            if settings.reconcile_on_assign and (msg.topic, msg.partition) not in reconciled:
                await reconcile(stream_name, msg.partition)
                reconciled.add((msg.topic, msg.partition))
            headers = _headers(msg)
            mode = "replay" if any(k == REPLAY_HEADER for k, _ in headers) else "live"
            result = core.process_local(
                stream_name,
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
            if stream_name == ARTICLES and result.status == CLEAN:
                # on to the one-partition near-dup stage, which emits or drops it
                count_in(result, mode)
                forward = {"reason": result.reason, "source": result.source, "mode": mode,
                           "ts": msg.timestamp, "partition": msg.partition,
                           "record": result.record}  # fmt: skip
                await send(
                    neardup_topic, result.record["article_id"].encode(), orjson.dumps(forward)
                )
                continue
            await emit(result, outputs[stream_name], dlq, mode, msg.timestamp, msg.partition)
        await flush_trends()
        await commit_state(owned[stream_name])

    @app.agent(neardup_topic, name="neardup")
    async def neardup(stream: faust.StreamT) -> None:
        async for events in stream.take_events(
            settings.batch_size, within=settings.batch_timeout_s
        ):
            batch_futures.set([])
            for event in events:
                _current_event.set(weakref.ref(event))
                if settings.reconcile_on_assign and (event.message.topic, 0) not in reconciled:
                    # the near-dup stage emits to every clean.articles partition
                    await reconcile(ARTICLES, None)
                    reconciled.add((event.message.topic, 0))
                item = orjson.loads(event.value)
                staged = Result(ARTICLES, CLEAN, item["reason"], item["source"], item["record"])
                result = core.finish_article(staged)
                await emit(result, clean_articles, dlq, item["mode"], item["ts"], counted=True)
            await flush_trends()
            await commit_state([states.index])

    async def send(
        topic_: Any,
        key: bytes | None,
        value: bytes,
        timestamp: float | None = None,
        partition: int | None = None,
    ) -> Any:
        # Straight to the transport producer: Faust's Topic.send machinery (models, codecs,
        # futures, callbacks) cost more than the whole core per record. Offsets are still
        # committed only after this producer is flushed (Faust's at-least-once commit path).
        future = await app.producer.send(
            topic_.get_topic_name(), key, value, partition, timestamp, None
        )
        batch_futures.get().append(future)
        return future

    async def commit_state(tables: list[TableState]) -> None:
        """State goes to the tables (and their changelogs) only once the output is in Kafka."""
        futures = batch_futures.get()
        if futures:
            await asyncio.gather(*futures)
            futures.clear()
        for state in tables:
            state.flush()

    trend_counts = trends.BatchCounts()

    async def flush_trends() -> None:
        """One trend event per topic and minute per batch, not one per record."""
        for tkey, minute, label, n in trend_counts.drain():
            value = orjson.dumps({"label": label, "n": n})
            # the Kafka timestamp carries the event time: the windowed table counts by it
            await send(trend_events_topic, tkey.encode(), value, timestamp=minute)

    def count_in(result: Result, mode: str) -> None:
        metrics.records_in.labels(result.stream, result.source, mode).inc()
        for stage, seconds in result.stage_seconds.items():
            metrics.stage_seconds.labels(stage, result.stream).observe(seconds)

    async def emit(
        result: Result,
        clean_topic: Any,
        dlq_topic: Any,
        mode: str,
        timestamp: float | None,
        partition: int | None = None,
        counted: bool = False,
    ) -> None:
        m = metrics
        if counted:  # counted in by the first stage; only this stage's time is new
            for stage, seconds in result.stage_seconds.items():
                m.stage_seconds.labels(stage, result.stream).observe(seconds)
        else:
            count_in(result, mode)
        value = orjson.dumps(result.record)
        if result.status == CLEAN:
            key = result.key.encode() if result.key else None
            # Comments go to their source partition's number (the same one their key gives
            # when raw events are keyed by article id), so a restarted worker finds the output
            # of its own partitions in the clean topic's tail.
            await send(clean_topic, key, value, partition=partition)
            m.records_out.labels(result.stream, mode).inc()
            for tag in result.record.get("tags", ()):
                if tag.get("level") == 1 and not tag.get("inherited"):
                    m.tags.labels(result.stream, tag["code"]).inc()
            if timestamp:
                m.event_to_emit.labels(result.stream).observe(max(0.0, time.time() - timestamp))
            trend_counts.add(result.stream, result.record)
        elif result.status == DLQ:
            await send(dlq_topic, None, value)
            m.dead_letters.labels(result.stream, result.reason, mode).inc()
            dlq_log.note(result.reason, result.stream)
        else:
            m.duplicates.labels(result.stream, result.reason, mode).inc()

    @app.agent(raw_articles, name="articles")
    async def articles(stream: faust.StreamT) -> None:
        async for events in stream.take_events(
            settings.batch_size, within=settings.batch_timeout_s
        ):
            await handle_batch(ARTICLES, events)

    @app.agent(raw_comments, name="comments")
    async def comments(stream: faust.StreamT) -> None:
        async for events in stream.take_events(
            settings.batch_size, within=settings.batch_timeout_s
        ):
            await handle_batch(COMMENTS, events)

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
            batch_futures.set([])
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
                await send(trends_topic, tkey.encode(), orjson.dumps(record))
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

        _update_gauges(app, metrics, states)
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
    """Ready when the worker has an assignment, tables are recovered and agents consume.

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
        return (
            not app.rebalancing
            and not app.in_recovery
            and bool(tables.actives_ready)
            and tables.recovery.completed.is_set()
        )
    except Exception:
        return False


STATE_COUNT_INTERVAL_S = 30.0


def _update_gauges(app: faust.App, metrics: Metrics, states: States) -> None:
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
                lags[(tp.topic, str(tp.partition))] = max(0, highwater - position)
        metrics.consumer_lag.clear()
        for (topic, partition), lag in lags.items():
            metrics.consumer_lag.labels(topic, partition).set(lag)
    except Exception:
        pass
