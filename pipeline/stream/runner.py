"""The stages' consumer: polls batches, hands each input partition's records to the pure batch
step (`pipeline.stream.batch`), commits each partition's share in ONE Kafka transaction with its
state changelog record (`pipeline.stream.state`), and follows rebalances.

Why a plain aiokafka consumer and not Faust agents: docs/architecture.md. Input at or below a
partition's mark is skipped, so the group's own offsets only say where to resume reading: they
are committed every `commit_interval_s` and at each rebalance, outside the transactions. Faust
still runs the worker (`pipeline.app`): trend windows, web endpoints, startup and shutdown.

Ownership: the group (`<app_id>.stages`) uses the range assignor, so partition `p` of the raw
articles and of the raw comments go to the same worker (a stage's `reads` in the topology). A
rebalance waits for the batches in flight (`lock`, `drain`), then gives up the state of
partitions that moved away; the new owner's producer fences any straggler. A partition's batches
run one after the other and the partitions side by side. Fetching does not wait for them: what
is fetched for a partition while its batch is under way joins ONE batch waiting behind it, so
a batch is as large as what arrived during the last one (`run_batch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any, NamedTuple

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import (
    ConsumerStoppedError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
)
from mode import Service

from pipeline import kafka_io
from pipeline.core import Core, Meta, States
from pipeline.dedup import StateCorrupted
from pipeline.logs import CONNECTION_NOISE, log_event, partitions_summary
from pipeline.metrics import Metrics, observe_many
from pipeline.settings import Settings
from pipeline.stream.batch import (
    DEAD,
    InRecord,
    Tallies,
    headers_of,
    mode_of,
    process_batch,
    state_view,
)
from pipeline.stream.state import OutRecord, PartitionState, ReadOnly, StageState
from pipeline.stream.tables import HISTORY, RULES, GlobalTables, ModerationTables, moderation_tables
from pipeline.stream.topology import BY_NAME, NEARDUP, ORDER, STAGES, Stage
from pipeline.topics import TopicNames

GROUP_SUFFIX = ".stages"
# attempts at a batch before it is rewound (broker trouble) or split into single records
MAX_ATTEMPTS = 3
COMMIT_TIMEOUT_S = 10.0
# a partition's next batch starts at once, whatever `transaction_interval_s` says, when this
# share of `batch_size` waits for it: a transaction's fixed cost is then a small part of its own
PACE_SHARE = 8
# while `transaction_interval_s` paces the batches, a fetch waits for this much data (or half
# the interval, at most PACED_FETCH_MAX_WAIT_MS): a batch takes everything fetched meanwhile
# anyway, and a fetch answered for each record or two costs the worker and the broker a request
PACED_FETCH_MIN_BYTES = 64 * 1024
PACED_FETCH_MAX_WAIT_MS = 500  # Kafka's default, far below the client's request timeout
BROKER_PROBE_S = 1.0
BROKER_SUMMARY_S = 60.0
# the expiry sweep waits until event time moved on by this share of the shortest horizon since
# the last one: on a live stream about every half hour of a 2-day horizon instead of every
# minute (an entry lingers that much longer at most); a backfill's event time races, so its
# sweeps still come every `expiry_sweep_s`. Expired entries read as absent before any sweep.
SWEEP_PROGRESS = 0.01
# why a batch failed: the broker (retry for as long as it lasts), unreadable local state
# (rebuild it), or the batch itself (a bug or a record Kafka refuses: find it, dead-letter it)
BROKER, STATE, BATCH = "broker", "state", "batch"
# record-level refusals that retrying cannot change
_REFUSED = (MessageSizeTooLargeError, RecordTooLargeError)


def failure_kind(exc: BaseException) -> str:
    """Which of BROKER, STATE or BATCH a failed batch attempt was."""
    if isinstance(exc, StateCorrupted):
        return STATE
    if isinstance(exc, _REFUSED):
        return BATCH
    if isinstance(exc, KafkaError | OSError | asyncio.TimeoutError):
        return BROKER
    return BATCH


async def broker_reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    """Does any of the bootstrap brokers accept a connection?"""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
        except (TimeoutError, OSError, ValueError):
            continue
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        return True
    return False


def paced_fetch(settings: Settings) -> dict[str, int]:
    """The stages' consumer's fetch options: Kafka's defaults (answer as soon as there is a
    byte) unless the batches are paced (`transaction_interval_s`)."""
    if settings.transaction_interval_s <= 0:
        return {}
    wait_ms = min(PACED_FETCH_MAX_WAIT_MS, max(1, int(settings.transaction_interval_s * 500)))
    return {"fetch_min_bytes": PACED_FETCH_MIN_BYTES, "fetch_max_wait_ms": wait_ms}


class Queued(NamedTuple):
    """A partition's next batch, waiting for the one under way: later fetches add to it."""

    records: list[InRecord]
    generation: int  # the partition's generation when it was fetched (a rewind drops it)


class Stall(NamedTuple):
    """A partition whose batch keeps failing: since when (epoch seconds) and why."""

    since: float
    reason: str


log = logging.getLogger(__name__)
worker_log = logging.getLogger("newspipe.worker")


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
        metrics: Metrics,
        producer_factory: Callable[..., AIOKafkaProducer],
        on_dead_letter: Callable[[str, str], None] = lambda code, stream: None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.names = TopicNames(settings.topic_prefix, settings.app_id)
        self.core = core
        self.metrics = metrics
        self.on_dead_letter = on_dead_letter
        self.states: dict[str, StageState] = {
            stage.name: StageState(
                stage.name,
                stage.owns,
                stage.changelog(self.names),
                settings,
                producer_factory,
                on_rebuilt=lambda name: metrics.child(metrics.state_rebuilds, name).inc(),
            )
            for stage in STAGES
        }
        self.sources = {stage.name: stage.source(self.names) for stage in STAGES}
        self.stage_of = {topic: BY_NAME[name] for name, topic in self.sources.items()}
        self.group_id = f"{settings.app_id}{GROUP_SUFFIX}"
        self.consumer: AIOKafkaConsumer | None = None
        self.lock = asyncio.Lock()
        # next offset to process per input partition (after the last committed or skipped
        # record), and the partitions whose records are being processed right now
        self.done: dict[TopicPartition, int] = {}
        self.in_flight: set[TopicPartition] = set()
        # each partition's latest batch task: a partition's batches run one after the other,
        # the partitions side by side, and the next fetch overlaps the transactions in flight
        self.tasks: dict[TopicPartition, asyncio.Future[None]] = {}
        # the records fetched for each partition while its batch is under way: its next batch
        self.waiting: dict[TopicPartition, Queued] = {}
        self.taken = asyncio.Event()  # set when a waiting batch gets under way
        # when each partition's last batch got under way, and the records that make its next
        # one start before `transaction_interval_s` is up (`_pace`)
        self.batch_started: dict[TopicPartition, float] = {}
        self.filled: dict[TopicPartition, asyncio.Event] = {}
        self.pace_full = max(1, settings.batch_size // PACE_SHARE)
        self.draining = 0  # drains under way: no batch is paced meanwhile
        self.pressing = False  # the fetch waits for a batch to get under way: none is paced
        # a stage whose state another reads is never paced: run_batch starts the articles of a
        # fetch before its comments so that a comment sees its article's tags, and a paced
        # articles batch would let the comments run ahead of it
        self.unpaced = {name for stage in STAGES for name in stage.reads}
        # bumped when a partition is rewound: its batches fetched before are dropped (fetched again)
        self.generation: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}  # what the group has, as far as we know
        self.last_commit = time.monotonic()
        self.last_sweep = time.monotonic()
        self.swept_at = -math.inf  # the event-time watermark at the last sweep
        self.stalled: dict[TopicPartition, Stall] = {}
        self.last_contact = time.monotonic()  # the last time a broker accepted a connection
        self.broker_down_since: float | None = None  # set once unreachable for long enough
        self.assigning = False
        self.stopping = False
        self.loader: asyncio.Future[None] | None = None
        # the global tables the stages read (moderation rules and history), every worker whole
        self.tables: GlobalTables = moderation_tables(settings, self.names)
        self.rules_version: int | None = None  # the rules snapshot the last comments batch had

    # -- lifecycle ------------------------------------------------------------------------
    async def on_start(self) -> None:
        s = self.settings
        self.consumer = kafka_io.consumer(
            s,
            group_id=self.group_id,
            client_id=f"{s.app_id}-stages",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",  # near-dup forwards are written in transactions
            partition_assignment_strategy=(RangePartitionAssignor,),
            max_partition_fetch_bytes=4 * 1024 * 1024,
            session_timeout_ms=int(s.group_session_timeout_s * 1000),
            heartbeat_interval_ms=int(s.group_session_timeout_s * 1000 / 3),
            metadata_max_age_ms=30_000,
            **paced_fetch(s),
        )
        self.consumer.subscribe(list(self.sources.values()), listener=_Listener(self))
        await self.tables.start()
        await self.consumer.start()

    async def on_stop(self) -> None:
        """Let the batch in flight commit, commit offsets, then leave the group so the others
        rebalance at once. The lock is not held while leaving: aiokafka's stop waits for its
        coordinator task, which may be inside our rebalance listener."""
        self.stopping = True
        self._wake_paced()
        if self.loader is not None:
            self.loader.cancel()
        async with self.lock:
            await self.drain()
            await self.commit_offsets()
        if self.consumer is not None:
            await self.consumer.stop()  # no listener call after this
        if self.loader is not None:
            self.loader.cancel()
            with contextlib.suppress(BaseException):
                await self.loader
        async with self.lock:
            for state in self.states.values():
                await state.close()
        await self.tables.stop()

    @Service.task
    async def _watch_broker(self) -> None:
        """Is any bootstrap broker reachable? One line when it goes, a summary a minute while it
        stays away, one line when it is back; the clients' own connection errors are counted
        (pipeline.logs.ConnectionNoise), not printed."""
        last_line = time.monotonic()
        while not (self.should_stop or self.stopping):
            reachable = await broker_reachable(self.settings.bootstrap_servers)
            now = time.monotonic()
            if reachable:
                self.last_contact = now
                if self.broker_down_since is not None:
                    log_event(worker_log, logging.WARNING, "broker_reachable",
                              down_for_s=round(now - self.broker_down_since, 1),
                              errors_suppressed=CONNECTION_NOISE.take())  # fmt: skip
                    self.broker_down_since = None
                    last_line = now
            else:
                threshold = self.settings.broker_unreachable_s
                if self.broker_down_since is None and now - self.last_contact >= threshold:
                    self.broker_down_since = self.last_contact
                    log_event(worker_log, logging.WARNING, "broker_unreachable",
                              bootstrap=self.settings.bootstrap_servers,
                              for_s=round(now - self.last_contact, 1),
                              errors_suppressed=CONNECTION_NOISE.take())  # fmt: skip
                    last_line = now
            if now - last_line >= BROKER_SUMMARY_S:
                noise = CONNECTION_NOISE.take()
                if self.broker_down_since is not None:
                    log_event(worker_log, logging.WARNING, "broker_still_unreachable",
                              for_s=round(now - self.broker_down_since, 1),
                              errors_suppressed=noise)  # fmt: skip
                elif noise:
                    log_event(worker_log, logging.WARNING, "kafka_connection_errors",
                              errors_suppressed=noise,
                              in_last_s=round(now - last_line))  # fmt: skip
                last_line = now
            await asyncio.sleep(BROKER_PROBE_S)

    @Service.task
    async def _consume(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        timeout_ms = int(self.settings.batch_timeout_s * 1000)
        # no batch before the global tables caught up with their topics: a comment must not be
        # judged against the seed lists while an editor's list is still being read
        if not await self.tables.wait_ready(lambda: self.should_stop or self.stopping):
            return
        while not (self.should_stop or self.stopping):
            try:
                batch = await consumer.getmany(
                    timeout_ms=timeout_ms, max_records=self.settings.batch_size
                )
            except ConsumerStoppedError:
                return
            if batch:
                # as fetched: a partition rewound while this waits for the lock (a rebalance,
                # the sweep) must drop these records, or they would commit past the rewind
                generations = {tp: self.generation.get(tp, 0) for tp in batch}
                async with self.lock:
                    if self.stopping:
                        return
                    await self.run_batch(batch, generations)
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
        async with self.lock:  # the batches in flight commit first
            await self.drain()
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
            await self.drain()
            for name, topic in self.sources.items():
                await self.states[name].release({tp.partition for tp in assigned
                                                 if tp.topic == topic})  # fmt: skip
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

    def _needs(self, stage: Stage) -> tuple[str, ...]:
        """The stages whose state of a partition must be loaded before `stage` processes it."""
        return (stage.name, *stage.reads)

    def _loaded(self, tp: TopicPartition) -> bool:
        stage = self.stage_of[tp.topic]
        return all(self.states[name].is_open(tp.partition) for name in self._needs(stage))

    async def _load(self, partitions: set[TopicPartition]) -> None:
        try:
            await asyncio.gather(*(self._load_one(tp) for tp in partitions))
        finally:
            if asyncio.current_task() is self.loader:  # not a load cancelled by a rebalance
                self.assigning = False

    async def _load_one(self, tp: TopicPartition) -> None:
        """Load one partition's state, then let its records in (also when loading failed: its
        first batch tries again)."""
        stage = self.stage_of[tp.topic]
        try:
            for name in self._needs(stage):
                await self.states[name].open(tp.partition)
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
        return (
            self.assigning
            or any(state.loading for state in self.states.values())
            or not self.tables.is_ready()
        )

    def moderation_tables(self) -> ModerationTables:
        """This moment's rules snapshot and the author history, for one batch."""
        return ModerationTables(self.tables.value(RULES), self.tables.value(HISTORY))

    def state_sizes(self) -> dict[str, int]:
        """Entries per state map over the partitions this worker owns (a RocksDB count walks
        every key: the caller rate-limits it)."""
        sizes: dict[str, int] = {}
        for state in self.states.values():
            for part in list(state.parts.values()):
                for name, m in part.maps.items():
                    sizes[name] = sizes.get(name, 0) + len(m)
        return sizes

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
    def sweep_due(self, now: float) -> bool:
        """Whether to sweep the state for entries past their horizon: `expiry_sweep_s` after the
        last sweep, once event time moved on by `SWEEP_PROGRESS` of the shortest horizon since
        (the sweep reads every entry, and until event time moves nothing more can have aged)."""
        if now - self.last_sweep < self.settings.expiry_sweep_s:
            return False
        s = self.settings
        shortest = min(s.article_horizon_s, s.comment_horizon_s, s.moderation_history_horizon_s)
        return bool(self.core.deduper.watermark - self.swept_at >= SWEEP_PROGRESS * shortest)

    async def _sweep(self) -> None:
        """Forget the state past its horizon in every partition this worker owns, and in the
        authors' history. A partition whose local state turns out unreadable is set aside to be
        rebuilt from its changelog, as a batch that finds it so does: the sweep reads every
        entry, so it may be the first to find it."""
        for name, state in self.states.items():
            for partition, part in list(state.parts.items()):
                try:
                    self.core.expire_partition(state_view(BY_NAME[name], part.maps))
                except StateCorrupted as exc:
                    log.warning("expiry sweep of %s-%s: %s; rebuilding it from its changelog",
                                name, partition, exc)  # fmt: skip
                    await state.heal(partition, exc)
        self.tables.value(HISTORY).expire()

    async def run_batch(
        self,
        batch: dict[TopicPartition, list[Any]],
        generations: dict[TopicPartition, int] | None = None,
    ) -> None:
        """Queue each input partition's share of `batch` for its next batch: a partition runs
        one batch at a time, each in its own task, and what is fetched while its batch is under
        way waits in ONE batch behind it (the next fetch's records join that batch), so a batch
        takes in all that arrived during the last one. Returns at once unless the records
        waiting reach `batch_size`: then it waits for batches to finish (back-pressure).
        `generations`: each partition's generation when the batch was fetched; the records of a
        partition rewound since are dropped (fetched again from the rewind)."""
        if self.sweep_due(time.monotonic()):
            await self.drain()  # the sweep writes to the state: no batch may be half-way
            self.last_sweep = time.monotonic()
            self.swept_at = self.core.deduper.watermark
            await self._sweep()
        # in topology order: each partition's batch step runs (synchronously) before the next
        # partition's starts, so a comment sees the tags of an article fetched with it, unless
        # the article's partition still has a batch under way (the article then waits for it)
        order = sorted(batch.items(), key=lambda item: ORDER[self.stage_of[item[0].topic].name])
        for tp, records in order:
            generation = self.generation.get(tp, 0)
            if generations is not None and generations.get(tp, generation) != generation:
                continue
            waiting = self.waiting.get(tp)
            if waiting is not None and waiting.generation == generation:
                waiting.records.extend(records)
                if len(waiting.records) >= self.pace_full and tp in self.filled:
                    self.filled[tp].set()
                continue
            self.in_flight.add(tp)
            queued = Queued(list(records), generation)
            self.waiting[tp] = queued
            task = asyncio.ensure_future(self._after(self.tasks.get(tp), tp, queued))
            self.tasks[tp] = task
            task.add_done_callback(lambda t, tp=tp: self._finished(tp, t))
        while sum(len(q.records) for q in self.waiting.values()) >= self.settings.batch_size:
            self.pressing = True  # records enough wait: no batch waits out its interval
            self._wake_paced()
            self.taken.clear()
            try:
                await self.taken.wait()
            finally:
                self.pressing = False

    async def _after(
        self, previous: asyncio.Future[None] | None, tp: TopicPartition, queued: Queued
    ) -> None:
        """`run_partition` over the records queued for `tp` once its previous batch is done,
        unless the partition was rewound meanwhile (its records are then fetched again). A
        rebalance drains every task before the assignment changes, so a task never runs for a
        partition moved away."""
        if previous is not None:
            with contextlib.suppress(BaseException):
                await previous
        try:
            await self._pace(tp, queued)
        except BaseException:
            if self.waiting.get(tp) is queued:  # cancelled before it got under way
                self._rewind(tp, queued.records[0].offset)
            raise
        if self.waiting.get(tp) is queued:
            del self.waiting[tp]  # what is fetched from now on waits for this batch
            self.taken.set()
        if self.generation.get(tp, 0) != queued.generation:
            return
        self.batch_started[tp] = time.monotonic()
        try:
            await self.run_partition(tp, queued.records)
        except BaseException:
            # not committed and not rewound: the batch queued behind would commit past it
            self._rewind(tp, queued.records[0].offset)
            raise

    async def _pace(self, tp: TopicPartition, queued: Queued) -> None:
        """Let `tp`'s next batch start `transaction_interval_s` after its last one did, unless
        `pace_full` records wait for it already (or the worker is stopping): what arrives
        meanwhile joins it. A transaction costs the worker and the broker a few milliseconds of
        CPU whatever it holds, so without this a lightly loaded worker commits every few records
        and spends most of a core, and the broker as much, on transactions alone. A stage whose
        state another reads (`unpaced`) is not paced."""
        interval = self.settings.transaction_interval_s
        last = self.batch_started.get(tp)
        if interval <= 0 or last is None or self.stage_of[tp.topic].name in self.unpaced:
            return
        wait = last + interval - time.monotonic()
        if (wait > 0 and len(queued.records) < self.pace_full
                and not (self.stopping or self.draining or self.pressing)
                and self.waiting.get(tp) is queued):  # fmt: skip
            filled = self.filled[tp] = asyncio.Event()
            try:
                await asyncio.wait_for(filled.wait(), wait)
            except TimeoutError:
                pass
            finally:
                if self.filled.get(tp) is filled:
                    del self.filled[tp]

    def _wake_paced(self) -> None:
        """Start every batch waiting out its interval now (a drain, stopping, back-pressure)."""
        for filled in self.filled.values():
            filled.set()

    def _finished(self, tp: TopicPartition, task: asyncio.Future[None]) -> None:
        if self.tasks.get(tp) is task:
            del self.tasks[tp]
            self.in_flight.discard(tp)
        if not task.cancelled() and task.exception() is not None:
            log.error("batch task of %s failed: %r", tp, task.exception())

    async def drain(self) -> None:
        """Wait until no batch is under way (rebalances, the expiry sweep, stopping)."""
        self.draining += 1  # a batch being paced starts now, and none waits from now on
        try:
            while self.tasks:
                self._wake_paced()
                await asyncio.gather(*list(self.tasks.values()), return_exceptions=True)
        finally:
            self.draining -= 1

    def _rewind(self, tp: TopicPartition, offset: int) -> None:
        """Fetch `tp` again from `offset`; batches of it fetched before are dropped."""
        self.generation[tp] = self.generation.get(tp, 0) + 1
        if self.waiting.pop(tp, None) is not None:
            self.taken.set()
        if self.consumer is not None and tp in self.assignment():
            self.consumer.seek(tp, offset)

    async def run_partition(self, tp: TopicPartition, records: list[InRecord]) -> None:
        """Commit one partition's share of a batch, retrying what retrying can fix.

        A broker failure is retried (then the records are fetched again) for as long as it
        lasts; unreadable local state is set aside and rebuilt from the changelog; any other
        failure is the batch's own, so after `MAX_ATTEMPTS` its records go one per transaction
        and the ones that still fail become `internal` dead letters: the partition moves on."""
        stage = self.stage_of[tp.topic]
        metrics = self.metrics
        failures = 0
        while True:
            try:
                await self._commit_batch(tp, stage, records)
                self.stalled.pop(tp, None)
                return
            except Exception as exc:
                if tp not in self.assignment():
                    # moved to another worker, which resumes from the committed offset
                    metrics.child(metrics.transaction_retries, stage.name, "moved").inc()
                    log.warning("partition %s of %s moved to another worker: %r",
                                tp.partition, stage.name, exc)  # fmt: skip
                    self.stalled.pop(tp, None)
                    self._rewind(tp, records[0].offset)  # drops what waits behind it
                    return
                failures += 1
                kind = failure_kind(exc)
                self.stalled.setdefault(tp, Stall(time.time(), ""))
                self.stalled[tp] = self.stalled[tp]._replace(reason=f"{kind}: {exc!r}"[:300])
                if kind == STATE and failures <= MAX_ATTEMPTS:
                    metrics.child(metrics.transaction_retries, stage.name, "rebuilt").inc()
                    await self._heal(tp, stage, exc)
                    continue
                metrics.child(metrics.transaction_retries, stage.name, "retried").inc()
                log.warning("batch of %s-%s failed (attempt %d, %s): %r",
                            stage.name, tp.partition, failures, kind, exc)  # fmt: skip
                if failures < MAX_ATTEMPTS:
                    await asyncio.sleep(0.2 * failures)
                    continue
                if kind == BATCH:
                    await self._isolate(tp, stage, records)
                    return
                # nothing of it committed: fetch the same records again rather than skip them
                metrics.child(metrics.transaction_retries, stage.name, "rewound").inc()
                log.error("batch of %s-%s failed %d times (%s); rewinding to offset %d",
                          stage.name, tp.partition, failures, kind, records[0].offset)  # fmt: skip
                self._rewind(tp, records[0].offset)
                return

    async def _open_view(self, stage: Stage, partition: int) -> tuple[PartitionState, States]:
        """The stage's own partition state (owned here, caught up) and the core's view of it."""
        part = await self.states[stage.name].open(partition)
        maps: dict[str, MutableMapping[str, Any]] = dict(part.maps)
        for name in stage.reads:
            read = await self.states[name].open(partition)
            maps.update({m: ReadOnly(name, m, overlay) for m, overlay in read.maps.items()})
        return part, state_view(stage, maps)

    async def _commit_batch(
        self, tp: TopicPartition, stage: Stage, records: Sequence[InRecord]
    ) -> None:
        state = self.states[stage.name]
        part = None
        try:
            part, view = await self._open_view(stage, tp.partition)
            tables = self.moderation_tables() if stage.tables else None
            t0 = time.perf_counter()
            output = process_batch(stage, self.core, view, part.mark, records, self.names, tables)
            t1 = time.perf_counter()
            if output.last_offset >= 0:
                await state.commit(tp.partition, part, output.records, output.last_offset)
            m = self.metrics
            m.child(m.batch_seconds, stage.name, "process").observe(t1 - t0)
            m.child(m.batch_seconds, stage.name, "commit").observe(time.perf_counter() - t1)
        except BaseException:
            if part is not None:
                part.discard()  # nothing of a failed attempt may reach the state
            raise
        if output.already_committed:
            self.metrics.child(self.metrics.already_committed, stage.stream).inc(
                output.already_committed
            )
        self.count(output.tallies)
        if output.rules_version is not None:
            self.rules_version = output.rules_version
        if output.queued:
            self.metrics.child(self.metrics.moderation_queued, stage.stream).inc(output.queued)
        self.done[tp] = records[-1].offset + 1

    async def _heal(self, tp: TopicPartition, stage: Stage, exc: BaseException) -> None:
        """Set the unreadable local state of `tp`'s partition aside (every stage involved) and
        let the next attempt rebuild it from the changelogs."""
        for name in (stage.name, *stage.reads):
            await self.states[name].heal(tp.partition, exc)

    async def _isolate(self, tp: TopicPartition, stage: Stage, records: Sequence[InRecord]) -> None:
        """One record per transaction, so a record that cannot be committed is found, sent to
        the dead-letter topic as `internal` with the reason, and the rest goes on."""
        log.error("batch of %s-%s keeps failing: committing its %d records one by one",
                  stage.name, tp.partition, len(records))  # fmt: skip
        for index, rec in enumerate(records):
            error: BaseException | None = None
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    await self._commit_batch(tp, stage, [rec])
                    error = None
                    break
                except Exception as exc:
                    error = exc
                    if tp not in self.assignment() or failure_kind(exc) != BATCH:
                        break
                    await asyncio.sleep(0.1 * attempt)
            if error is None:
                continue
            if tp not in self.assignment() or failure_kind(error) != BATCH:
                log.warning("record %s-%s at offset %d failed (%s): %r; fetching it again",
                            stage.name, tp.partition, rec.offset, failure_kind(error),
                            error)  # fmt: skip
                self._rewind(tp, records[index].offset)  # fetch the rest again
                return
            await self._dead_letter(tp, stage, rec, error)
        self.stalled.pop(tp, None)

    async def _dead_letter(
        self, tp: TopicPartition, stage: Stage, rec: InRecord, error: BaseException
    ) -> None:
        """Commit `rec` as an `internal` dead letter (and its offset as the partition's mark)."""
        part, _ = await self._open_view(stage, tp.partition)
        part.discard()
        if rec.offset <= part.mark:
            return
        meta = Meta(rec.topic, rec.partition, rec.offset, rec.key, headers_of(rec), rec.timestamp)
        result = self.core.dead_letter(
            stage.stream, rec.value, meta, "internal",
            f"the {stage.name} stage could not commit this record: {error!r}", stage=stage.name,
        )  # fmt: skip
        letter = OutRecord(self.names.dlq, None, orjson.dumps(result.record))
        await self.states[stage.name].commit(tp.partition, part, [letter], rec.offset)
        tallies = Tallies()
        tallies.add(result, mode_of(meta.headers), None, counted_in=stage.name == NEARDUP)
        self.count(tallies)
        self.done[tp] = rec.offset + 1
        log_event(worker_log, logging.ERROR, "record_dead_lettered", stage=stage.name,
                  partition=tp.partition, offset=rec.offset, reason=repr(error)[:300])  # fmt: skip

    def count(self, tallies: Tallies) -> None:
        """Move the counters for a committed batch: one `inc(n)` per label set and one
        batched observe per histogram child (the per-record calls were a tenth of a worker's
        time)."""
        m = self.metrics
        for (what, *labels), n in tallies.counts.items():
            m.child(getattr(m, what), *labels).inc(n)
            if what == DEAD:
                stream, reason = labels[0], labels[1]
                for _ in range(n):
                    self.on_dead_letter(reason, stream)
        for (stream, stage), values in tallies.stage_seconds.items():
            observe_many(m.child(m.stage_seconds, stage, stream), values)
        now = time.time()
        for stream, times in tallies.event_ts.items():
            observe_many(m.child(m.event_to_emit, stream), [max(0.0, now - t) for t in times])
