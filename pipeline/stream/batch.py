"""The batch step, pure: one stage's records of one partition -> the records to send in the
batch's transaction, the state writes (left in the partition's overlay maps) and the tallies
the metrics take once the transaction committed. No Kafka and no await here, so it is tested
without a broker (tests/test_stream_batch.py) and a later stage plugs in as one more branch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import orjson

from pipeline import trends
from pipeline.core import CLEAN, DLQ, Core, Meta, Result, States
from pipeline.moderation import APPROVED, HistoryEvent, ModerationContext
from pipeline.stream.state import NotOwned, OutRecord
from pipeline.stream.tables import ModerationTables
from pipeline.stream.topology import NEARDUP, Stage
from pipeline.topics import ARTICLES, REPLAY_HEADER, TopicNames

STATE_FIELDS = ("articles", "comments", "index", "article_tags")


class InRecord(Protocol):
    """What the batch step reads of a consumed record (aiokafka's ConsumerRecord has it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None
    headers: Any


class Tally(NamedTuple):
    """What the metrics count of one result, once its transaction committed.

    Only what they count, not the result: a result holds its whole record, and the records of
    every batch waiting for its transaction were the young objects each garbage collection
    walked and promoted. `counted_in`: the record was already counted in by an earlier stage
    (near-dup: the articles stage counted it when it forwarded it). `forwarded`: it went on to
    another stage, which will count where it ends."""

    stream: str
    status: str
    reason: str
    source: str
    stage_seconds: dict[str, float]
    mode: str  # live or replay
    event_ts: float | None  # the record's Kafka timestamp in seconds (event time)
    own_tags: tuple[str, ...] = ()  # a clean record's level-1 tags of its own (not inherited)
    counted_in: bool = False
    forwarded: bool = False

    @classmethod
    def of(
        cls,
        result: Result,
        mode: str,
        event_ts: float | None,
        counted_in: bool = False,
        forwarded: bool = False,
    ) -> Tally:
        """The tally of `result`: its own level-1 tags are read now, while its record is here."""
        own: tuple[str, ...] = ()
        if result.status == CLEAN and not forwarded:
            own = tuple([t["code"] for t in result.record.get("tags", ())
                         if t.get("level") == 1 and not t.get("inherited")])  # fmt: skip
        return cls(result.stream, result.status, result.reason, result.source,
                   result.stage_seconds, mode, event_ts, own, counted_in, forwarded)  # fmt: skip


@dataclass
class BatchOutput:
    """What one partition's share of a batch produced."""

    records: list[OutRecord] = field(default_factory=list)
    tallies: list[Tally] = field(default_factory=list)
    last_offset: int = -1  # the mark to commit; -1 when every record was already committed
    already_committed: int = 0  # records at or below the mark, skipped
    # the history events sent in this batch: the core added them to this worker's history as
    # it moderated; the other workers get them from the topic once the transaction committed
    # (keyed by comment id: an event read back, or an aborted attempt's redone, counts once)
    history: list[HistoryEvent] = field(default_factory=list)
    queued: int = 0  # clean records also sent to the moderation queue
    rules_version: int | None = None  # the rules snapshot the core had (None: no tables)


def state_view(stage: Stage, maps: Mapping[str, MutableMapping[str, Any]]) -> States:
    """The core's `States` for one stage and partition: the maps it owns or reads; every
    other map refuses writes, so a topology mistake fails loudly instead of losing state."""
    return States(**{f: maps[f] if f in maps else NotOwned(stage.name, f) for f in STATE_FIELDS})


def headers_of(record: InRecord) -> list[tuple[str, bytes]]:
    raw = record.headers
    if not raw:
        return []
    items = raw.items() if isinstance(raw, dict) else raw
    return [(k if isinstance(k, str) else k.decode("utf-8", "replace"), v or b"") for k, v in items]


@contextlib.contextmanager
def handing_over(core: Core, tables: ModerationTables | None) -> Iterator[None]:
    """The core moderates against `tables` (this batch's rules snapshot and the author history)
    for the duration of one synchronous batch call: its `moderation` context is replaced by
    one over them, and put back afterwards (the core's own, offline one: the seed lists)."""
    if tables is None:
        yield
        return
    saved = core.moderation
    core.moderation = ModerationContext(tables.rules, tables.history)
    try:
        yield
    finally:
        core.moderation = saved


def moderation_status(record: Mapping[str, Any]) -> str | None:
    """A clean record's moderation status (None: the record carries no moderation object)."""
    moderation = record.get("moderation")
    if type(moderation) is dict or isinstance(moderation, Mapping):
        return moderation.get("status")
    return None


def process_batch(
    stage: Stage,
    core: Core,
    states: States,
    mark: int,
    records: Sequence[InRecord],
    names: TopicNames,
    tables: ModerationTables | None = None,
) -> BatchOutput:
    """Run `stage` over one partition's records (in offset order) against that partition's
    `states`; records at or below `mark` were emitted by a committed batch and are skipped.
    `tables`: the global tables the stage reads (`stage.tables`), one snapshot per batch."""
    out = BatchOutput()
    todo = [r for r in records if r.offset > mark]
    out.already_committed = len(records) - len(todo)
    if not todo:
        return out
    out.last_offset = todo[-1].offset
    counts = trends.BatchCounts()
    if stage.name == NEARDUP:
        items = [orjson.loads(r.value or b"{}") for r in todo]
        staged = [Result(ARTICLES, CLEAN, i["reason"], i["source"], i["record"]) for i in items]
        clean_topic = stage.emits(names) if stage.emits else ""
        for item, result in zip(items, core.finish_batch(staged, states), strict=True):
            _emit(out, counts, names, result, clean_topic, item["mode"], item["ts"],
                  counted_in=True)  # fmt: skip
    else:
        metas = [
            Meta(r.topic, r.partition, r.offset, r.key, headers_of(r), r.timestamp) for r in todo
        ]
        items = [(r.value, meta) for r, meta in zip(todo, metas, strict=True)]
        with handing_over(core, tables):
            results = core.process_batch(stage.stream, items, states)
        if tables is not None:
            out.rules_version = tables.rules.version
        clean_topic = stage.emits(names) if stage.emits else ""
        side = Sides(stage.queue(names) if stage.queue else None,
                     stage.history(names) if stage.history else None)  # fmt: skip
        for rec, meta, result in zip(todo, metas, results, strict=True):
            headers = meta.headers
            mode = "replay" if headers and any(k == REPLAY_HEADER for k, _ in headers) else "live"
            ts_s = rec.timestamp / 1000 if rec.timestamp else None
            if stage.forwards is not None and result.status == CLEAN:
                # on to the next stage, which emits or drops it and counts it out
                forward = {"reason": result.reason, "source": result.source, "mode": mode,
                           "ts": ts_s, "partition": rec.partition,
                           "record": result.record}  # fmt: skip
                key = result.record["article_id"].encode()
                out.records.append(OutRecord(stage.forwards(names), key, orjson.dumps(forward)))
                out.tallies.append(Tally.of(result, mode, ts_s, forwarded=True))
                continue
            value = _emit(out, counts, names, result, clean_topic, mode, ts_s, rec.partition)
            if value is not None and (side.queue or side.history):
                _moderate(out, side, result, rec.partition, value)
    for tkey, minute, label, n in counts.drain():
        # the Kafka timestamp carries the event time: the windowed table counts by it
        value = orjson.dumps({"label": label, "n": n})
        out.records.append(
            OutRecord(names.trend_events, tkey.encode(), value, None, int(minute * 1000))
        )
    return out


class Sides(NamedTuple):
    """A stage's moderation side outputs: the queue and history topics (None: it has none)."""

    queue: str | None
    history: str | None


def _moderate(out: BatchOutput, side: Sides, result: Result, partition: int, value: bytes) -> None:
    """The moderation side outputs of one result, in the batch's transaction: a clean record
    whose status is not `approved` goes to the queue as well (its key and partition), and the
    core's history event for it to the history topic (keyed by author, stamped with its event
    time, so the topic's retention follows the horizon). `value`: the clean record as sent."""
    if side.queue is not None:
        status = moderation_status(result.record)
        if status is not None and status != APPROVED:
            key = result.key.encode() if result.key else None
            out.records.append(OutRecord(side.queue, key, value, partition))
            out.queued += 1
    event = result.history_event
    if side.history is not None and event is not None:
        ts_ms = int(event.t * 1000) if event.t > 0 else None
        out.records.append(OutRecord(side.history, event.key(), event.value(), None, ts_ms))
        out.history.append(event)


def _emit(
    out: BatchOutput,
    counts: trends.BatchCounts,
    names: TopicNames,
    result: Result,
    clean_topic: str,
    mode: str,
    event_ts: float | None,
    partition: int | None = None,
    counted_in: bool = False,
) -> bytes | None:
    """Queue a result's output: a clean record, a dead letter, or nothing for a duplicate.
    Returns the clean record as sent (None for the others)."""
    value = None
    if result.status == CLEAN:
        key = result.key.encode() if result.key else None
        # Comments go to their source partition's number (the one their key gives when raw
        # events are keyed by article id), so clean output stays co-partitioned.
        value = orjson.dumps(result.record)
        out.records.append(OutRecord(clean_topic, key, value, partition))
        counts.add(result.stream, result.record)
    elif result.status == DLQ:
        out.records.append(OutRecord(names.dlq, None, orjson.dumps(result.record)))
    out.tallies.append(Tally.of(result, mode, event_ts, counted_in=counted_in))
    return value
