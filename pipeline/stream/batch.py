"""The batch step, pure: one stage's records of one partition -> the records to send in the
batch's transaction, the state writes (left in the partition's overlay maps) and the tallies
the metrics take once the transaction committed. No Kafka and no await here, so it is tested
without a broker (tests/test_stream_batch.py) and a later stage plugs in as one more branch.
"""

from __future__ import annotations

import contextlib
from collections import Counter
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


# what `Tallies.counts` counts: the first item of a key names the `Metrics` counter it moves,
# the rest are that counter's labels, in its order
IN = "records_in"  # (IN, stream, source, mode): a raw record read
FORWARDED = "forwarded"  # (FORWARDED, stream, "sent" or "received"): handed between stages
OUT = "records_out"  # (OUT, stream, mode): a clean record
TAG = "tags"  # (TAG, stream, code): a clean record's level-1 tag of its own (not inherited)
DEAD = "dead_letters"  # (DEAD, stream, reason, mode): a dead letter
DUP = "duplicates"  # (DUP, stream, reason, mode): a duplicate dropped


class Tallies:
    """What the metrics count of one batch, summed while the batch step runs; the runner moves
    the counters once the batch's transaction committed.

    Label sets and numbers only, not results: a result holds its whole record, and the records
    of every batch waiting for its transaction were the young objects each garbage collection
    walked. Summed here instead of one object per result, which the runner then walked again:
    the metrics' work for a record is a few dict updates."""

    __slots__ = ("counts", "event_ts", "stage_seconds")

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, ...]] = Counter()  # (what, stream, *labels) -> records
        self.stage_seconds: dict[tuple[str, str], list[float]] = {}  # (stream, stage) -> each
        self.event_ts: dict[str, list[float]] = {}  # stream -> its clean records' event times

    def add(
        self,
        result: Result,
        mode: str,
        event_ts: float | None,
        counted_in: bool = False,
        forwarded: bool = False,
    ) -> None:
        """Count `result`. `counted_in`: an earlier stage counted the record in (near-dup: the
        articles stage, when it forwarded it). `forwarded`: it went on to another stage, which
        counts where it ends. `event_ts`: its Kafka timestamp in seconds (event time)."""
        counts = self.counts
        stream = result.stream
        if counted_in:
            counts[(FORWARDED, stream, "received")] += 1
        else:
            counts[(IN, stream, result.source, mode)] += 1
        seconds = self.stage_seconds
        for stage, value in result.stage_seconds.items():
            values = seconds.get((stream, stage))
            if values is None:
                seconds[(stream, stage)] = [value]
            else:
                values.append(value)
        if forwarded:
            counts[(FORWARDED, stream, "sent")] += 1
            return
        status = result.status
        if status == CLEAN:
            counts[(OUT, stream, mode)] += 1
            for tag in result.record.get("tags", ()):
                if tag.get("level") == 1 and not tag.get("inherited"):
                    counts[(TAG, stream, tag["code"])] += 1
            if event_ts:
                times = self.event_ts.get(stream)
                if times is None:
                    self.event_ts[stream] = [event_ts]
                else:
                    times.append(event_ts)
        elif status == DLQ:
            counts[(DEAD, stream, result.reason, mode)] += 1
        else:
            counts[(DUP, stream, result.reason, mode)] += 1


def mode_of(headers: Sequence[tuple[str, bytes]]) -> str:
    """`replay` for a record the replay tool sent (it carries REPLAY_HEADER), else `live`.
    A plain loop: a generator per record cost more than the rest of the check."""
    for name, _ in headers:
        if name == REPLAY_HEADER:
            return "replay"
    return "live"


@dataclass
class BatchOutput:
    """What one partition's share of a batch produced."""

    records: list[OutRecord] = field(default_factory=list)
    tallies: Tallies = field(default_factory=Tallies)
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
            mode = mode_of(meta.headers)
            ts_s = rec.timestamp / 1000 if rec.timestamp else None
            if stage.forwards is not None and result.status == CLEAN:
                # on to the next stage, which emits or drops it and counts it out
                forward = {"reason": result.reason, "source": result.source, "mode": mode,
                           "ts": ts_s, "partition": rec.partition,
                           "record": result.record}  # fmt: skip
                key = result.record["article_id"].encode()
                out.records.append(OutRecord(stage.forwards(names), key, orjson.dumps(forward)))
                out.tallies.add(result, mode, ts_s, forwarded=True)
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
    out.tallies.add(result, mode, event_ts, counted_in=counted_in)
    return value
