"""The stream shell: a Faust app whose agents decode, call the core, send and count. Nothing more.

Agents take events in batches (`stream.take_events`) because Faust's per-event machinery costs as
much as the whole core (see ../shared/notes/cost-floors.md). Values stay bytes end to end (raw
serializer, orjson), so Faust never builds model objects. Offsets are committed only after the
producer has flushed what the batch sent (Faust's at-least-once commit path), and the dedup state
makes a re-processed batch emit nothing twice.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator, MutableMapping
from typing import Any

import faust
import orjson
from aiohttp import web
from faust.streams import _current_event

from pipeline import __version__
from pipeline.broker import kafka_version
from pipeline.core import ARTICLES, CLEAN, COMMENTS, DLQ, Core, Meta, Result, States
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.topics import TopicNames

REPLAY_HEADER = "newspipe-replay"


class TableState(MutableMapping[str, Any]):
    """Adapts a Faust table to the plain mapping the core expects."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def __getitem__(self, key: str) -> Any:
        return self.table[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.table.get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self.table[key] = value

    def __delitem__(self, key: str) -> None:
        del self.table[key]

    def __contains__(self, key: object) -> bool:
        return key in self.table

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.keys())

    def __len__(self) -> int:
        return len(self.table)


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
        broker_credentials=_credentials(settings),
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

    def table(name: str, horizon_s: int) -> faust.Table:
        return app.Table(
            name,
            default=None,
            partitions=settings.partitions,
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
        index=TableState(table("neardup-index", settings.article_horizon_s)),
        article_tags=TableState(table("article-tags", settings.article_horizon_s)),
    )
    for state in (states.articles, states.comments, states.index, states.article_tags):
        # Faust checks source vs changelog partitions against a metadata snapshot that can show
        # 0 partitions for a changelog created a moment earlier, and then fails the first
        # events. Both are created with `settings.partitions` here, so the check is settled.
        verified = state.table._verified_source_topics_for_partitions
        verified.update({names.raw_articles, names.raw_comments})
    core = Core(settings, states)
    outputs = {ARTICLES: clean_articles, COMMENTS: clean_comments}

    async def handle_batch(stream_name: str, events: list[Any]) -> None:
        for event in events:
            # take_events does not set Faust's current event; tables need it to pick the
            # changelog partition (the event's own partition, so state follows the data).
            _current_event.set(weakref.ref(event))
            msg = event.message
            headers = _headers(msg)
            mode = "replay" if any(k == REPLAY_HEADER for k, _ in headers) else "live"
            result = core.process(
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
            await emit(result, outputs[stream_name], dlq, mode, msg.timestamp)

    async def emit(
        result: Result, clean_topic: Any, dlq_topic: Any, mode: str, timestamp: float | None
    ) -> None:
        m = metrics
        m.records_in.labels(result.stream, result.source, mode).inc()
        for stage, seconds in result.stage_seconds.items():
            m.stage_seconds.labels(stage, result.stream).observe(seconds)
        value = orjson.dumps(result.record)
        if result.status == CLEAN:
            key = result.key.encode() if result.key else None
            await clean_topic.send(key=key, value=value)
            m.records_out.labels(result.stream, mode).inc()
            for tag in result.record.get("tags", ()):
                if tag.get("level") == 1 and not tag.get("inherited"):
                    m.tags.labels(result.stream, tag["code"]).inc()
            if timestamp:
                m.event_to_emit.labels(result.stream).observe(max(0.0, time.time() - timestamp))
        elif result.status == DLQ:
            await dlq_topic.send(key=None, value=value)
            m.dead_letters.labels(result.stream, result.reason, mode).inc()
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

    return app


def _is_ready(app: faust.App) -> bool:
    """Ready when the worker has an assignment, tables are recovered and agents consume."""
    try:
        consumer = app.consumer
        assigned = consumer.assignment()
    except Exception:
        return False
    recovery = app.tables.recovery
    return bool(assigned) and not recovery.in_recovery and app.rebalancing is False


def _update_gauges(app: faust.App, metrics: Metrics, states: States) -> None:
    for name in ("articles", "comments", "index", "article_tags"):
        try:
            metrics.state_entries.labels(name).set(len(getattr(states, name)))
        except Exception:
            pass
    metrics.ready.set(1 if _is_ready(app) else 0)
    try:
        consumer = app.consumer
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = app.consumer._last_offset(tp) if hasattr(consumer, "_last_offset") else None
            if highwater is not None and position is not None:
                lag = max(0, highwater - position - 1)
                metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)
    except Exception:
        pass
