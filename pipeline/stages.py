"""The processing stages (articles, comments, near-dup), fed in batches by their own consumer.

Why a plain aiokafka consumer and not Faust agents: an agent receives records one at a time
through a per-record chain (fetcher, conductor, queue, stream processors) that cost more CPU
than the core, and its rebalance bookkeeping is where Faust's lost-offset reports live
(docs/architecture.md). Here `getmany` hands over up to `batch_size` records at once, and each
input partition's share of the batch commits in ONE Kafka transaction: clean records, dead
letters, trend events, near-dup forwards and the state changelog record (`pipeline.statelog`),
which carries the batch's last input offset (the mark). Input at or below the mark is skipped,
so the group's own offsets only say where to resume reading: they are committed every
`commit_interval_s` and at each rebalance, outside the transactions (inside, they cost latency
for no gain; docs/performance.md). Faust still runs the worker: trend windows, web endpoints,
startup and shutdown.

Ownership: the group (`<app_id>.stages`) uses the range assignor, so partition `p` of the raw
articles and of the raw comments go to the same worker (comments read their article's tags from
the articles state of `p`). A rebalance waits for the batch in flight (`lock`), then gives up the
state of partitions that moved away; the new owner's producer fences any straggler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import ConsumerStoppedError
from mode import Service

from pipeline import trends
from pipeline.core import CLEAN, DLQ, Core, Meta, Result
from pipeline.logs import log_event, partitions_summary
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.statelog import StageState
from pipeline.topics import ARTICLES, COMMENTS, TopicNames

REPLAY_HEADER = "newspipe-replay"
NEARDUP = "neardup"
GROUP_SUFFIX = ".stages"
# a partition's batch whose transaction keeps failing is rewound and fetched again
MAX_ATTEMPTS = 3
COMMIT_TIMEOUT_S = 10.0
STAGE_ORDER = {ARTICLES: 0, NEARDUP: 1, COMMENTS: 2}

log = logging.getLogger(__name__)
worker_log = logging.getLogger("newspipe.worker")

Send = tuple[str, bytes | None, bytes, int | None, int | None]


@dataclass
class Work:
    """One partition's share of a batch: what to send, and the counters to move once sent."""

    sends: list[Send] = field(default_factory=list)
    effects: list[Callable[[], None]] = field(default_factory=list)
    last_offset: int = -1


def _headers(record: Any) -> list[tuple[str, bytes]]:
    raw = record.headers or []
    items = raw.items() if isinstance(raw, dict) else raw
    return [(k if isinstance(k, str) else k.decode("utf-8", "replace"), v or b"") for k, v in items]


class _Listener(ConsumerRebalanceListener):
    def __init__(self, runner: StageRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.runner.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.runner.on_assigned(set(assigned))


class StageRunner(Service):
    """Consumes the stages' input topics in batches and commits each partition's share of a
    batch as one transaction. Started by the Faust app once its tables have recovered."""

    def __init__(
        self,
        settings: Settings,
        core: Core,
        stages: dict[str, StageState],
        metrics: Metrics,
        on_dead_letter: Callable[[str, str], None] = lambda code, stream: None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.names = TopicNames(settings.topic_prefix, settings.app_id)
        self.core = core
        self.stages = stages
        self.metrics = metrics
        self.on_dead_letter = on_dead_letter
        self.sources = {
            ARTICLES: self.names.raw_articles,
            COMMENTS: self.names.raw_comments,
            NEARDUP: self.names.neardup,
        }
        self.stage_of = {topic: stage for stage, topic in self.sources.items()}
        self.group_id = f"{settings.app_id}{GROUP_SUFFIX}"
        self.consumer: AIOKafkaConsumer | None = None
        self.lock = asyncio.Lock()
        # next offset to process per input partition (after the last committed or skipped
        # record), and the partitions whose records are being processed right now
        self.done: dict[TopicPartition, int] = {}
        self.in_flight: set[TopicPartition] = set()
        self.committed: dict[TopicPartition, int] = {}  # what the group has, as far as we know
        self.last_commit = time.monotonic()
        self.last_sweep = time.monotonic()
        self.assigning = False
        self.stopping = False
        self.loader: asyncio.Future[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------
    async def on_start(self) -> None:
        s = self.settings
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            group_id=self.group_id,
            client_id=f"{s.app_id}-stages",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",  # near-dup forwards are written in transactions
            partition_assignment_strategy=(RangePartitionAssignor,),
            max_partition_fetch_bytes=4 * 1024 * 1024,
            session_timeout_ms=30_000,
            heartbeat_interval_ms=3_000,
            metadata_max_age_ms=30_000,
            **s.aiokafka_security(),
        )
        self.consumer.subscribe(list(self.sources.values()), listener=_Listener(self))
        await self.consumer.start()

    async def on_stop(self) -> None:
        """Let the batch in flight commit, commit offsets, then leave the group so the others
        rebalance at once. The lock is not held while leaving: aiokafka's stop waits for its
        coordinator task, which may be inside our rebalance listener."""
        self.stopping = True
        if self.loader is not None:
            self.loader.cancel()
        async with self.lock:
            await self.commit_offsets()
        if self.consumer is not None:
            await self.consumer.stop()  # no listener call after this
        if self.loader is not None:
            self.loader.cancel()
            with contextlib.suppress(BaseException):
                await self.loader
        async with self.lock:
            for stage in self.stages.values():
                await stage.close()

    @Service.task
    async def _consume(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        timeout_ms = int(self.settings.batch_timeout_s * 1000)
        while not (self.should_stop or self.stopping):
            try:
                batch = await consumer.getmany(
                    timeout_ms=timeout_ms, max_records=self.settings.batch_size
                )
            except ConsumerStoppedError:
                return
            if batch:
                async with self.lock:
                    if self.stopping:
                        return
                    await self.run_batch(batch)
            # also when idle: the group's offsets must not stay behind a burst for long
            if time.monotonic() - self.last_commit >= self.settings.commit_interval_s:
                await self.commit_offsets()

    async def commit_offsets(self) -> None:
        """Commit where reading resumes: after the last record committed in a transaction (or
        skipped as already committed). Losing this commit costs re-reading, never output."""
        self.last_commit = time.monotonic()
        consumer = self.consumer
        assigned = self.assignment()
        offsets = {
            tp: offset
            for tp, offset in self.done.items()
            if tp in assigned and offset > self.committed.get(tp, -1)
        }
        if consumer is None or not offsets:
            return
        try:
            # aiokafka retries a commit while the coordinator is away: do not wait forever
            await asyncio.wait_for(consumer.commit(offsets), COMMIT_TIMEOUT_S)
            self.committed.update(offsets)
        except Exception as exc:  # a rebalance under way: the next owner re-reads a little
            log.warning("committing offsets failed: %r", exc)

    # -- rebalance ------------------------------------------------------------------------
    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        if self.loader is not None:
            self.loader.cancel()  # a load still running is for the old assignment
        if self.stopping:
            return
        async with self.lock:  # the batch in flight commits first
            await self.commit_offsets()
        self._log_rebalance("partitions_revoked", revoked)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Give up the state of partitions that moved away; load the new ones in the background.

        aiokafka sends no heartbeats until this returns, and loading (fencing the previous
        owner, replaying a changelog of up to twice the horizon) can take longer than the
        session timeout: so each partition whose state is not loaded yet stays paused until a
        task has loaded it. No record is processed before its state is there, and /readyz says
        ready only once everything is loaded."""
        consumer = self.consumer
        if consumer is not None and assigned:
            consumer.pause(*assigned)  # before any await: aiokafka may fetch them already
        if self.stopping:
            return
        async with self.lock:
            owned = {name: {tp.partition for tp in assigned if tp.topic == topic}
                     for name, topic in self.sources.items()}  # fmt: skip
            for name, stage in self.stages.items():
                await stage.release(owned[name])
            for tp in [tp for tp in self.done if tp not in assigned]:
                del self.done[tp]
            self.committed.clear()  # another owner may have committed since
        if self.stopping or consumer is None:
            return
        self._log_rebalance("partitions_assigned", assigned)
        loaded = {tp for tp in assigned if self._loaded(tp)}
        consumer.resume(*loaded)
        if assigned - loaded:
            self.assigning = True
            self.loader = asyncio.ensure_future(self._load(assigned - loaded))

    def _loaded(self, tp: TopicPartition) -> bool:
        name = self.stage_of[tp.topic]
        ready = self.stages[name].is_open(tp.partition)
        if name == COMMENTS:  # comments read their article's tags
            ready = ready and self.stages[ARTICLES].is_open(tp.partition)
        return ready

    async def _load(self, partitions: set[TopicPartition]) -> None:
        try:
            await asyncio.gather(*(self._load_one(tp) for tp in partitions))
        finally:
            if asyncio.current_task() is self.loader:  # not a load cancelled by a rebalance
                self.assigning = False

    async def _load_one(self, tp: TopicPartition) -> None:
        """Load one partition's state, then let its records in (also when loading failed: its
        first batch tries again)."""
        name = self.stage_of[tp.topic]
        try:
            await self.stages[name].open(tp.partition)
            if name == COMMENTS:
                await self.stages[ARTICLES].open(tp.partition)
        except Exception as exc:
            log.warning("loading the state of %s failed: %r", tp, exc)
        if self.consumer is not None and not self.stopping and tp in self.assignment():
            self.consumer.resume(tp)

    def _log_rebalance(self, event: str, tps: set[TopicPartition]) -> None:
        log_event(worker_log, logging.INFO, event, group=self.group_id, count=len(tps),
                  topics=partitions_summary(tps))  # fmt: skip

    # -- what the web endpoints read ------------------------------------------------------
    def assignment(self) -> set[TopicPartition]:
        consumer = self.consumer
        try:
            return set(consumer.assignment()) if consumer is not None else set()
        except Exception:  # not started, or stopping
            return set()

    def loading(self) -> bool:
        return self.assigning or any(stage.loading for stage in self.stages.values())

    def lags(self) -> dict[TopicPartition, int]:
        """Records behind the log end per assigned partition: high watermark minus the next
        offset to process. Offsets past the last record that are only transaction markers
        (the near-dup topic is written in transactions) do not count."""
        consumer = self.consumer
        out: dict[TopicPartition, int] = {}
        if consumer is None:
            return out
        for tp in self.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None or highwater < 0:
                continue
            position = self._position(tp)
            done = self.done.get(tp, position)
            if done is None:
                continue
            lag = max(0, highwater - done)
            if lag and tp not in self.in_flight and position is not None and position >= highwater:
                lag = 0  # everything fetched is processed; the rest are markers
            out[tp] = lag
        return out

    def _position(self, tp: TopicPartition) -> int | None:
        try:
            assignment = self.consumer._subscription.subscription.assignment  # type: ignore[union-attr]
            return assignment.state_value(tp).position
        except Exception:
            return None

    # -- one batch ------------------------------------------------------------------------
    async def run_batch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Each input partition's records as their own transaction, the partitions side by side."""
        if time.monotonic() - self.last_sweep >= self.settings.expiry_sweep_s:
            self.last_sweep = time.monotonic()
            self.core.expire()
        self.in_flight = set(batch)
        # articles first: each partition's processing runs up to its first send before the next
        # one starts, so a comment sees the tags of an article that came in the same batch
        order = sorted(batch.items(), key=lambda item: STAGE_ORDER[self.stage_of[item[0].topic]])
        try:
            await asyncio.gather(*(self.run_partition(tp, records) for tp, records in order))
        finally:
            self.in_flight = set()

    async def run_partition(self, tp: TopicPartition, records: list[Any]) -> None:
        stage_name = self.stage_of[tp.topic]
        stage = self.stages[stage_name]
        partition = tp.partition
        metrics = self.metrics
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                part = await stage.open(partition)
                if stage_name == COMMENTS:  # comments read their article's tags
                    await self.stages[ARTICLES].open(partition)
                work = self.process_partition(stage_name, stage, partition, part.mark, records)
                if work.last_offset >= 0:
                    await stage.commit(partition, part, work.sends, work.last_offset)
                for effect in work.effects:
                    effect()
                self.done[tp] = records[-1].offset + 1
                return
            except Exception as exc:
                stage.discard(partition)  # nothing of a failed attempt may reach the state
                if tp not in self.assignment():
                    # moved to another worker, which resumes from the committed offset
                    metrics.child(metrics.transaction_retries, stage_name, "moved").inc()
                    log.warning("partition %s of %s moved to another worker: %r",
                                partition, stage_name, exc)  # fmt: skip
                    return
                metrics.child(metrics.transaction_retries, stage_name, "retried").inc()
                log.warning(
                    "batch of %s-%s failed (attempt %d): %r", stage_name, partition, attempt, exc
                )
                await asyncio.sleep(0.2 * attempt)
        # nothing of it committed: fetch the same records again rather than skip them
        metrics.child(metrics.transaction_retries, stage_name, "rewound").inc()
        log.error("batch of %s-%s failed %d times; rewinding to offset %d",
                  stage_name, partition, MAX_ATTEMPTS, records[0].offset)  # fmt: skip
        if self.consumer is not None and tp in self.assignment():
            self.consumer.seek(tp, records[0].offset)

    def process_partition(
        self, stage_name: str, stage: StageState, partition: int, mark: int, records: list[Any]
    ) -> Work:
        """The synchronous part: the core over one partition's records, with no await inside,
        so the selected partition of the shared state maps cannot change under it."""
        names = self.names
        metrics = self.metrics
        core = self.core
        stage.select(partition)
        if stage_name == COMMENTS:
            self.stages[ARTICLES].maps["article_tags"].select(partition)
        work = Work()
        counts = trends.BatchCounts()
        for rec in records:
            if rec.offset <= mark:
                stream = ARTICLES if stage_name == NEARDUP else stage_name
                metrics.child(metrics.already_committed, stream).inc()
                continue
            work.last_offset = max(work.last_offset, rec.offset)
            ts_s = rec.timestamp / 1000 if rec.timestamp else None
            if stage_name == NEARDUP:
                item = orjson.loads(rec.value)
                staged = Result(ARTICLES, CLEAN, item["reason"], item["source"], item["record"])
                result = core.finish_article(staged)
                self.emit(work, counts, result, names.clean_articles, item["mode"], item["ts"],
                          counted=True)  # fmt: skip
                continue
            headers = _headers(rec)
            mode = "replay" if any(k == REPLAY_HEADER for k, _ in headers) else "live"
            result = core.process_local(
                stage_name,
                rec.value,
                Meta(rec.topic, rec.partition, rec.offset, rec.key, headers, rec.timestamp),
            )
            if stage_name == ARTICLES and result.status == CLEAN:
                # on to the one-partition near-dup stage, which emits or drops it
                work.effects.append(lambda r=result, m=mode: self.count_in(r, m))
                forward = {"reason": result.reason, "source": result.source, "mode": mode,
                           "ts": ts_s, "partition": rec.partition,
                           "record": result.record}  # fmt: skip
                key = result.record["article_id"].encode()
                work.sends.append((names.neardup, key, orjson.dumps(forward), None, None))
                continue
            clean_topic = names.clean_articles if stage_name == ARTICLES else names.clean_comments
            self.emit(work, counts, result, clean_topic, mode, ts_s, partition)
        for tkey, minute, label, n in counts.drain():
            # the Kafka timestamp carries the event time: the windowed table counts by it
            value = orjson.dumps({"label": label, "n": n})
            work.sends.append((names.trend_events, tkey.encode(), value, None, int(minute * 1000)))
        return work

    def count_in(self, result: Result, mode: str) -> None:
        m = self.metrics
        m.child(m.records_in, result.stream, result.source, mode).inc()
        for stage, seconds in result.stage_seconds.items():
            m.child(m.stage_seconds, stage, result.stream).observe(seconds)

    def emit(
        self,
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
            work.sends.append((self.names.dlq, None, value, None, None))
        work.effects.append(lambda: self.count(result, mode, timestamp, counted))

    def count(self, result: Result, mode: str, timestamp: float | None, counted: bool) -> None:
        m = self.metrics
        if counted:  # counted in by the first stage; only this stage's time is new
            for stage, seconds in result.stage_seconds.items():
                m.child(m.stage_seconds, stage, result.stream).observe(seconds)
        else:
            self.count_in(result, mode)
        if result.status == CLEAN:
            m.child(m.records_out, result.stream, mode).inc()
            for tag in result.record.get("tags", ()):
                if tag.get("level") == 1 and not tag.get("inherited"):
                    m.child(m.tags, result.stream, tag["code"]).inc()
            if timestamp:
                m.child(m.event_to_emit, result.stream).observe(max(0.0, time.time() - timestamp))
        elif result.status == DLQ:
            m.child(m.dead_letters, result.stream, result.reason, mode).inc()
            self.on_dead_letter(result.reason, result.stream)
        else:
            m.child(m.duplicates, result.stream, result.reason, mode).inc()
