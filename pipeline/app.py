"""The stream shell: a Faust worker that hosts the stages and counts trends. Nothing more.

The stages (articles, near-dup, comments; `pipeline.stream.topology`) run in
`pipeline.stream.runner.StageRunner`, a service of this app fed in batches by its own consumer:
one Kafka transaction per input partition and batch holds the output and the state changelog
record with its input mark. Faust keeps the worker's
lifecycle, the trend windows (an agent over the trend events, windowed tables) and the web
endpoints (/metrics, /healthz, /readyz, /trends). Values stay bytes end to end (raw serializer,
orjson), so Faust never builds model objects.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import faust
import orjson
from aiohttp import web
from faust.streams import _current_event

from pipeline import __version__, kafka_io, trends
from pipeline.core import Core
from pipeline.logs import log_event, logging_config, wire_app_logging
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.stream.runner import StageRunner
from pipeline.topics import TopicNames

log = logging.getLogger(__name__)
worker_log = logging.getLogger("newspipe.worker")


def _use_read_committed() -> None:
    """Faust's consumer reads read_committed only in its own exactly_once mode; the trend
    events it reads are written in the stages' transactions, so always read them committed: an
    aborted attempt must not be counted."""
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


class Worker(faust.Worker):
    """Faust's worker with a bounded shutdown: SIGTERM or SIGINT logs what the worker still
    waits for, and a watchdog ends the process once `shutdown_timeout_s` has passed (a stop
    stuck in a group join took most of a minute). Ending it there is safe: an open transaction
    is aborted by the broker or fenced by the next owner, and its records are processed again.

    No start-up spinner: Faust's writes cursor escape codes even when its output is not a
    terminal (in front of the first JSON log line), and at warning level and above it turned
    the root logger to DEBUG to spin on every record."""

    def __init__(self, app: faust.App, *args: Any, shutdown_timeout_s: float, **kwargs: Any):
        super().__init__(app, *args, **kwargs)
        self.spinner = None
        self.shutdown_timeout_s = shutdown_timeout_s
        self._shutdown_began: float | None = None

    def _schedule_shutdown(self, signal: Any) -> None:
        if self._shutdown_began is None:
            self._shutdown_began = time.monotonic()
            log_event(worker_log, logging.INFO, "shutdown_requested", signal=signal.name,
                      budget_s=self.shutdown_timeout_s,
                      waiting_for=pending_work(self.app))  # fmt: skip
            timer = threading.Timer(self.shutdown_timeout_s, self._force_exit)
            timer.daemon = True
            timer.start()
        super()._schedule_shutdown(signal)

    def _force_exit(self) -> None:
        log_event(worker_log, logging.WARNING, "shutdown_forced",
                  after_s=round(time.monotonic() - (self._shutdown_began or 0.0), 1),
                  waiting_for=pending_work(self.app))  # fmt: skip
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        os._exit(1)


def pending_work(app: faust.App) -> list[str]:
    """What a stopping worker may still wait for, in words an operator can act on."""
    runner = getattr(app, "newspipe_runner", None)
    waits = []
    if runner is not None:
        if runner.in_flight:
            waits.append(f"a batch of {len(runner.in_flight)} partitions committing")
        if runner.loading():
            waits.append("partition state loading from its changelog")
        if runner.consumer is not None and not runner.assignment():
            waits.append(f"joining consumer group {runner.group_id}")
    if getattr(app, "rebalancing", False):
        waits.append("the trend windows' group rebalancing")
    return waits or ["offsets commit and leaving the consumer groups"]


def faust_datadir(settings: Settings) -> Path:
    """Where Faust keeps the trend windows' tables: beside the app's own state directory, one
    per app id. Faust names a table's local files by the table alone (`v1/tables/<table>-<p>.db`),
    so apps sharing a state directory (another app id, a second run of a benchmark) would open
    each other's tables and stop on Faust's ConsistencyError."""
    return Path(settings.state_dir) / f"{settings.app_id}.faust"


def create_app(settings: Settings | None = None) -> faust.App:
    """Build the app for `settings`; tests build several with their own ids and prefixes."""
    settings = settings or Settings.from_env()
    names = TopicNames(settings.topic_prefix, settings.app_id)
    _use_read_committed()
    datadir = faust_datadir(settings)
    datadir.parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        store=settings.store,
        datadir=str(datadir),
        web_host=settings.web_host,
        # Faust binds all interfaces unless told; web_host alone is only the advertised name
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_enabled=True,
        # only the endpoints the README lists: none of Faust's router, table, graph or stats
        # pages (they answer without authentication and expose keys and values)
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee=settings.processing_guarantee,
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
        producer_linger_ms=5,
        broker_commit_interval=settings.commit_interval_s,
        # Faust's default session (60 s) kept a dead member in the trend group for a minute,
        # and nothing of the worker started before that group had settled
        broker_session_timeout=settings.group_session_timeout_s,
        broker_heartbeat_interval=settings.group_session_timeout_s / 3,
        stream_buffer_maxsize=max(4096, settings.batch_size * 4),
        table_cleanup_interval=60.0,
        table_standby_replicas=settings.standby_replicas,
        # a topic missing when the worker joined (a broker still creating it) is seen within
        # 30 s instead of aiokafka's default 5 minutes, and the group rebalances onto it
        consumer_metadata_max_age_ms=30_000,
        broker_credentials=_credentials(settings),
        logging_config=logging_config(settings.log_level),
    )
    metrics = Metrics()

    def topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            partitions=settings.partitions,
            retention=None,
            internal=False,
        )

    trend_events_topic = topic(names.trend_events)

    def txn_producer(**options: Any) -> Any:
        # a batch's transaction takes a second or two; one left open by a dead worker holds
        # back read_committed readers until the broker aborts it, so keep the timeout short
        return kafka_io.producer(settings, transaction_timeout_ms=20_000, **options)

    runner = StageRunner(
        settings, Core(settings), metrics, txn_producer,
        on_dead_letter=lambda c, s: dlq_log.note(c, s),
    )  # fmt: skip
    app.newspipe_runner = runner  # type: ignore[attr-defined]
    # Started and stopped with the app, not after Faust's own group (the trend windows) has
    # recovered: the stages read none of Faust's tables, and a slow trend-group rebalance (a
    # dead member still counted) must not hold back every record.
    app.add_dependency(runner)

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
    horizon = [float("-inf")]  # windows starting before it are past expiry
    pruned = [float("-inf")]  # the horizon of the last scan of `latest`
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
            # keep what the web page shows bounded: drop windows past expiry in event time, in
            # one scan a minute of event time (the page hides the ones past it meanwhile)
            watermark[0] = max(watermark[0], *(e.message.timestamp for e in events))
            horizon[0] = watermark[0] - max(trends.WINDOW_EXPIRES.values())
            if horizon[0] - pruned[0] >= min(trends.WINDOWS.values()):
                pruned[0] = horizon[0]
                for tkey in [k for k, r in latest.items() if r["_start"] < horizon[0]]:
                    del latest[tkey]

    @app.page("/trends")
    async def trends_page(web_: Any, request: Any) -> Any:
        window = request.query.get("window")
        rows = [
            {k: v for k, v in r.items() if k != "_start"}
            for r in latest.values()
            if window in (None, r["window"]) and r["_start"] >= horizon[0]
        ]
        rows.sort(key=lambda r: (r["window"], r["window_start"], -r["count"]))
        return web_.json({"trends": rows})

    @app.page("/metrics")
    async def metrics_page(web_: Any, request: Any) -> Any:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        _update_gauges(app, metrics)
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
        body: dict[str, Any] = {"ready": ready}
        if not ready:
            body["stalled"] = _stalls(app)
            tables = runner.tables.problems()
            if tables:
                body["tables"] = tables
            down = getattr(runner, "broker_down_since", None)
            if down is not None:
                body["broker_unreachable_for_s"] = round(time.monotonic() - down, 1)
        return web_.json(body, status=200 if ready else 503)

    dlq_log = wire_app_logging(app, app.tables)
    return app


def _is_ready(app: faust.App) -> bool:
    """Ready when the stages own input partitions whose state is loaded, and Faust's trend
    tables are recovered.

    The stages' state (pipeline.stream.state) loads when a partition's first batch arrives;
    `loading` is non-zero meanwhile. Faust's own flags: `app.rebalancing` (on_rebalance_start ..
    on_rebalance_end), `app.in_recovery` (changelog replay running), `app.tables.actives_ready`
    (reset at every rebalance start, set when active tables are recovered) and
    `recovery.completed` (set once the first recovery finished and streams were resumed).
    """
    try:
        runner = getattr(app, "newspipe_runner", None)
        if runner is None or runner.broker_down_since is not None:
            return False
        if not runner.assignment() or runner.loading() or runner.stalled:
            return False
        if runner.tables.problems():
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


def _stalls(app: faust.App) -> list[dict[str, Any]]:
    """The partitions whose batches keep failing, with why and since when (for /readyz)."""
    runner = getattr(app, "newspipe_runner", None)
    stalled = dict(getattr(runner, "stalled", {}) or {})
    return [
        {"topic": tp.topic, "partition": tp.partition, "reason": s.reason,
         "stalled_for_s": round(max(0.0, time.time() - s.since), 1)}
        for tp, s in sorted(stalled.items())
    ]  # fmt: skip


def _update_gauges(app: faust.App, metrics: Metrics) -> None:
    runner = getattr(app, "newspipe_runner", None)
    # Counting a RocksDB store walks every key: do it at most every 30 s, not on every scrape.
    now = time.monotonic()
    if (
        runner is not None
        and now - getattr(metrics, "state_counted_at", -STATE_COUNT_INTERVAL_S)
        >= STATE_COUNT_INTERVAL_S
    ):
        metrics.state_counted_at = now  # type: ignore[attr-defined]
        try:
            sizes = runner.state_sizes()
        except Exception:  # a store closing mid-rebalance has no size to report
            sizes = {}
        for name in ("articles", "comments", "index", "article_tags"):
            metrics.state_entries.labels(name).set(sizes.get(name, 0))
    metrics.ready.set(1 if _is_ready(app) else 0)
    # Lag per input partition of the stages (raw topics and the near-dup topic): log end offset
    # minus the next offset to process. Partitions lost in a rebalance are removed, so no stale
    # value stays exported.
    lags = runner.lags() if runner is not None else {}
    metrics.partition_stalled.clear()
    for tp in dict(getattr(runner, "stalled", {}) or {}):
        metrics.partition_stalled.labels(tp.topic, str(tp.partition)).set(1)
    metrics.consumer_lag.clear()
    for tp, lag in lags.items():
        metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)
    if runner is not None:
        for name, st in runner.tables.status().items():
            metrics.table_lag.labels(name).set(st.lag)
            metrics.table_age.labels(name).set(-1 if st.age_s is None else round(st.age_s, 3))
            metrics.table_ready.labels(name).set(1 if st.ready else 0)
            metrics.table_records.labels(name).set(st.applied)
            metrics.table_bad_records.labels(name).set(st.bad)
        if runner.rules_version is not None:
            metrics.moderation_rules_version.set(runner.rules_version)
