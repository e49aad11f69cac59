"""Global tables: topics every worker reads whole into memory, kept up to date in the background.

The stages' state is partitioned (`pipeline.stream.state`): a worker holds the partitions it
owns. Two things every comments batch needs are not partitioned like comments, so every worker
keeps all of them, like a Kafka Streams GlobalKTable or a Faust GlobalTable:

- `moderation.rules` (compacted, keyed by list name): editors' lists, folded into the current
  `Rules` snapshot (`pipeline.moderation.folds.RulesFold`: a tombstone means "back to the
  seed", see there);
- `moderation.history` (delete, retention about the history horizon, keyed by author): the
  non-approved comments of every author, folded into an `AuthorHistory` (`HistoryFold`).

One consumer per worker for all tables: no consumer group, every partition assigned, read from
the beginning, `read_committed` (history events are written in the comments batches'
transactions, so an aborted batch's events are never counted). Each table is *ready* once its
reader got to the end offsets it saw when it started; the stages process no batch before every
table is ready (`GlobalTables.wait_ready`). After that, every fetch response is applied at once:
a rule written with `newspipe moderation` is in the next batch's snapshot within about a second
(`fetch_max_wait_ms`).

The folds are pure (tested without a broker in tests/test_tables.py; the CLI's `newspipe
moderation show` folds the rules topic the same way); the reader's liveness is
exported as `newspipe_table_lag` (records not yet applied) and `newspipe_table_age_seconds`
(since the broker last answered a fetch for the table), and a table whose age passes
`STALE_AFTER_S` turns /readyz to 503. A broker outage is not an error here: the consumer
reconnects by itself, its connection errors are counted by the runner's broker watch (one line
a minute), and the table keeps serving its last value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError

from pipeline import kafka_io
from pipeline.logs import log_event
from pipeline.moderation.folds import HistoryFold, RulesFold
from pipeline.moderation.history import AuthorHistory
from pipeline.moderation.rules import Rules
from pipeline.settings import Settings
from pipeline.topics import MODERATION_HISTORY, MODERATION_RULES, TopicNames

log = logging.getLogger(__name__)
worker_log = logging.getLogger("newspipe.worker")

# the tables' names: their topics' base names
RULES = MODERATION_RULES
HISTORY = MODERATION_HISTORY
# a table the broker has not answered a fetch for in this long turns readiness to 503
STALE_AFTER_S = 30.0
POLL_MS = 500
# how often a table with nothing to read checks where its partitions end (lag, readiness)
END_CHECK_S = 5.0
# a bad record (a value that does not parse) is skipped; at most one log line per this long
BAD_RECORD_LOG_S = 60.0


class Fold(Protocol):
    """How one table's records become its in-memory value (pipeline.moderation.folds)."""

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one record; raises ValueError (or KeyError, TypeError) for a bad one."""


__all__ = ["GlobalTables", "HistoryFold", "ModerationTables", "RulesFold", "moderation_tables"]


@dataclass
class TableStatus:
    """One table's reader as the metrics and /readyz see it."""

    ready: bool
    lag: int  # records (and markers) between what was applied and the last stable offset
    age_s: float | None  # since the broker last answered a fetch for it (None: not yet)
    applied: int
    bad: int


class GlobalTables:
    """The reader of every global table of one worker: one consumer, all partitions of each
    table's topic from the beginning, records applied to the tables' folds as they arrive."""

    def __init__(self, settings: Settings, folds: Mapping[str, tuple[str, Fold]]) -> None:
        """`folds`: table name -> (topic, fold)."""
        self.settings = settings
        self.folds = dict(folds)
        self.topic_of = {name: topic for name, (topic, _) in self.folds.items()}
        self.table_of = {topic: name for name, topic in self.topic_of.items()}
        self.consumer: AIOKafkaConsumer | None = None
        self.partitions: dict[str, list[TopicPartition]] = {name: [] for name in self.folds}
        self.targets: dict[TopicPartition, int] = {}  # the end offsets seen at start
        self.positions: dict[TopicPartition, int] = {}
        self.ends: dict[TopicPartition, int] = {}  # the last stable offsets seen since
        self.ready: dict[str, asyncio.Event] = {name: asyncio.Event() for name in self.folds}
        self.applied = dict.fromkeys(self.folds, 0)
        self.bad = dict.fromkeys(self.folds, 0)
        self.ready_after_s: dict[str, float] = {}
        self.stale: set[str] = set()
        self.started_at = time.monotonic()
        self.last_bad_line = -BAD_RECORD_LOG_S
        self.task: asyncio.Future[None] | None = None
        self.stopping = False

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the consumer and the background reader; returns at once (see `wait_ready`)."""
        self.started_at = time.monotonic()
        self.consumer = kafka_io.consumer(
            self.settings,
            group_id=None,
            client_id=f"{self.settings.app_id}-tables",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_max_wait_ms=POLL_MS,
            metadata_max_age_ms=30_000,
        )
        await self.consumer.start()
        self.task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        self.stopping = True
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.consumer.stop()

    def value(self, name: str) -> Any:
        return self.folds[name][1].value  # type: ignore[attr-defined]

    def is_ready(self) -> bool:
        return all(event.is_set() for event in self.ready.values())

    async def wait_ready(self, stop: Any = lambda: False, poll_s: float = 0.5) -> bool:
        """Wait until every table caught up with the end offsets seen at start, or `stop()`
        says so; returns whether they are ready."""
        while not self.is_ready():
            if stop():
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(e.wait() for e in self.ready.values())), poll_s
                )
        return True

    # -- the reader -----------------------------------------------------------------------
    async def _assign(self) -> bool:
        """Assign every partition of every table's topic and note where each ends now; False
        while a topic has no partitions yet (not created)."""
        consumer = self.consumer
        assert consumer is not None
        found: dict[str, list[TopicPartition]] = {}
        for name, topic in self.topic_of.items():
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic)
            if not parts:
                return False
            found[name] = [TopicPartition(topic, p) for p in sorted(parts)]
        tps = [tp for group in found.values() for tp in group]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)  # read_committed: the last stable offsets
        self.partitions = found
        self.targets = dict(ends)
        self.ends = dict(ends)
        self.positions = dict(starts)
        self._check_ready()
        return True

    async def _run(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        backoff = 1.0
        while not self.stopping:
            try:
                if not self.targets and not await self._assign():
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=5000)
            except ConsumerStoppedError:
                return
            except (TimeoutError, KafkaError, OSError) as exc:
                # the consumer retries connections itself; this is the rare error it hands up
                self._note_trouble(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 1.0
            for tp, records in batch.items():
                self._apply(tp, records)
            self._update_positions()
            self._check_ready()

    def _apply(self, tp: TopicPartition, records: Iterable[Any]) -> None:
        name = self.table_of[tp.topic]
        fold = self.folds[name][1]
        for rec in records:
            try:
                fold.apply(rec.key, rec.value)
                self.applied[name] += 1
            except (ValueError, KeyError, TypeError) as exc:
                self.bad[name] += 1
                now = time.monotonic()
                if now - self.last_bad_line >= BAD_RECORD_LOG_S:
                    self.last_bad_line = now
                    log_event(worker_log, logging.WARNING, "table_record_skipped", table=name,
                              partition=tp.partition, offset=rec.offset,
                              reason=repr(exc)[:300], skipped_so_far=self.bad[name])  # fmt: skip

    def _update_positions(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        try:
            assignment = consumer._subscription.subscription.assignment
        except Exception:
            return
        if assignment is None:
            return
        for tp in self.targets:
            try:
                state = assignment.state_value(tp)
            except Exception:
                continue
            if state is None:
                continue
            if state.position is not None:
                self.positions[tp] = state.position
            if state.lso is not None:
                self.ends[tp] = state.lso

    def _check_ready(self) -> None:
        for name, tps in self.partitions.items():
            event = self.ready[name]
            if event.is_set() or not tps:
                continue
            if all(self.positions.get(tp, -1) >= self.targets.get(tp, 0) for tp in tps):
                event.set()
                self.ready_after_s[name] = round(time.monotonic() - self.started_at, 3)
                log_event(worker_log, logging.INFO, "table_ready", table=name,
                          records=self.applied[name], after_s=self.ready_after_s[name],
                          partitions=len(tps))  # fmt: skip

    def _note_trouble(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self.last_bad_line >= BAD_RECORD_LOG_S:
            self.last_bad_line = now
            log.warning("reading the global tables failed, retrying: %r", exc)

    # -- what the metrics and /readyz read ------------------------------------------------
    def status(self) -> dict[str, TableStatus]:
        """Each table's readiness, lag and age. Logs one line when a table goes stale (no fetch
        answered for `STALE_AFTER_S`) and one when it is fresh again."""
        self._update_positions()
        out: dict[str, TableStatus] = {}
        now_ms = time.time() * 1000
        for name, tps in self.partitions.items():
            lag = sum(max(0, self.ends.get(tp, 0) - self.positions.get(tp, 0)) for tp in tps)
            polled = [self._last_poll(tp) for tp in tps]
            age_s: float | None = None
            if tps and all(p is not None for p in polled):
                age_s = max(0.0, (now_ms - min(polled)) / 1000)  # type: ignore[type-var]
            elif not tps or not self.ready[name].is_set():
                age_s = None
            out[name] = TableStatus(self.ready[name].is_set(), lag, age_s, self.applied[name],
                                    self.bad[name])  # fmt: skip
            self._note_staleness(name, age_s)
        for name in self.folds:
            out.setdefault(name, TableStatus(False, 0, None, 0, 0))
        return out

    def _last_poll(self, tp: TopicPartition) -> float | None:
        consumer = self.consumer
        try:
            return consumer.last_poll_timestamp(tp) if consumer is not None else None
        except Exception:
            return None

    def _note_staleness(self, name: str, age_s: float | None) -> None:
        if age_s is None:
            return
        if age_s >= STALE_AFTER_S and name not in self.stale:
            self.stale.add(name)
            log_event(worker_log, logging.WARNING, "table_stale", table=name,
                      age_s=round(age_s, 1))  # fmt: skip
        elif age_s < STALE_AFTER_S and name in self.stale:
            self.stale.discard(name)
            log_event(worker_log, logging.INFO, "table_fresh", table=name)

    def problems(self) -> list[dict[str, Any]]:
        """Tables not ready or not updating, for /readyz."""
        found = []
        for name, st in self.status().items():
            if not st.ready:
                found.append({"table": name, "reason": "loading", "lag": st.lag})
            elif st.age_s is not None and st.age_s >= STALE_AFTER_S:
                found.append({"table": name, "reason": "not updating",
                              "age_s": round(st.age_s, 1)})  # fmt: skip
        return found


@dataclass(frozen=True)
class ModerationTables:
    """What the comments stage reads per batch: the current rules snapshot and the history."""

    rules: Rules
    history: AuthorHistory


def moderation_tables(settings: Settings, names: TopicNames) -> GlobalTables:
    """The worker's two moderation tables over their topics."""
    return GlobalTables(
        settings,
        {
            RULES: (names.moderation_rules, RulesFold()),
            HISTORY: (names.moderation_history, HistoryFold(settings.moderation_history_horizon_s)),
        },
    )
