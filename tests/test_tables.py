"""The global tables without a broker: how the moderation topics' records fold into the rules
snapshot and the author history, what the reader does with a bad record, when a table counts as
ready and stale, and the moderation side outputs of the comments batch step."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from pipeline.core import CLEAN, Result
from pipeline.moderation import ModerationContext
from pipeline.moderation.history import AuthorHistory, HistoryEvent
from pipeline.moderation.rules import BANNED_WORDS, PREMOD_AUTHORS, SUSPECT_WORDS, Rules
from pipeline.settings import Settings
from pipeline.stream import tables as tables_mod
from pipeline.stream.batch import process_batch, state_view
from pipeline.stream.state import OverlayMap
from pipeline.stream.tables import (
    HISTORY,
    RULES,
    GlobalTables,
    HistoryFold,
    ModerationTables,
    RulesFold,
    moderation_tables,
)
from pipeline.stream.topology import BY_NAME
from pipeline.topics import COMMENTS, TopicNames

NAMES = TopicNames("t.", "app")
SEED = Rules({BANNED_WORDS: frozenset({"seedword"}), SUSPECT_WORDS: frozenset(),
              PREMOD_AUTHORS: frozenset({"troll"})}, 0)  # fmt: skip


def rules_record(name: str, entries: list[str]) -> bytes:
    return Rules.record(name, entries, "editor", "2026-11-30T10:00:00Z")


def test_a_record_replaces_its_list_and_bumps_the_snapshot_version() -> None:
    fold = RulesFold(SEED)
    before = fold.value
    fold.apply(BANNED_WORDS.encode(), rules_record(BANNED_WORDS, ["Alpha", " beta  gamma "]))
    assert fold.value.get(BANNED_WORDS) == {"alpha", "beta gamma"}
    assert fold.value.get(PREMOD_AUTHORS) == {"troll"}  # other lists keep the seed
    assert fold.value.version == 1
    assert before.get(BANNED_WORDS) == {"seedword"}  # a snapshot handed out never changes


def test_a_record_with_no_entries_empties_the_list() -> None:
    fold = RulesFold(SEED)
    fold.apply(PREMOD_AUTHORS.encode(), rules_record(PREMOD_AUTHORS, []))
    assert fold.value.get(PREMOD_AUTHORS) == frozenset()


def test_a_tombstone_puts_the_list_back_to_the_seed_as_compaction_would() -> None:
    """After compaction drops the tombstone a new worker sees no record: the seed. A worker that
    read the tombstone must end up with the same lists."""
    fold = RulesFold(SEED)
    fold.apply(BANNED_WORDS.encode(), rules_record(BANNED_WORDS, ["alpha"]))
    fold.apply(BANNED_WORDS.encode(), None)
    fresh = RulesFold(SEED)
    assert fold.value.lists == fresh.value.lists
    assert fold.value.get(BANNED_WORDS) == {"seedword"}
    assert BANNED_WORDS not in fold.written


def test_an_unknown_list_name_is_ignored_and_a_bad_value_is_refused() -> None:
    fold = RulesFold(SEED)
    fold.apply(b"list_from_a_newer_version", rules_record(BANNED_WORDS, ["x"]))
    assert fold.ignored == 1 and fold.value.version == 0
    with pytest.raises(ValueError):
        fold.apply(BANNED_WORDS.encode(), b"not json")
    with pytest.raises(ValueError):
        fold.apply(BANNED_WORDS.encode(), orjson.dumps({"entries": "alpha"}))
    assert fold.value.get(BANNED_WORDS) == {"seedword"}


def test_the_repository_seed_is_where_the_rules_start() -> None:
    assert RulesFold().value.lists == Rules.seed().lists


def test_history_events_fold_per_author_once_per_comment() -> None:
    fold = HistoryFold(horizon_s=3600)
    event = HistoryEvent("ann", "c1", 1000.0, "review")
    fold.apply(event.key(), event.value())
    fold.apply(event.key(), event.value())  # read back after the worker added it itself
    fold.apply(b"ann", HistoryEvent("ann", "c2", 1500.0, "rejected").value())
    fold.apply(b"bob", None)  # nobody writes tombstones here; one is ignored
    assert fold.value.count("ann", now=2000.0) == {"review": 1, "rejected": 1}
    assert fold.value.count("ann", now=5000.0) == {"rejected": 1}  # c1 is past the horizon
    with pytest.raises((ValueError, KeyError)):
        fold.apply(b"ann", b"{}")


@dataclass
class Rec:
    key: bytes | None
    value: bytes | None
    offset: int = 0
    topic: str = "t.moderation.rules"
    partition: int = 0
    timestamp: int | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def reader() -> GlobalTables:
    return moderation_tables(Settings(), NAMES)


def test_the_reader_skips_a_bad_record_counts_it_and_logs_one_line(caplog) -> None:
    tables = reader()
    tp = TopicPartition(NAMES.moderation_rules, 0)
    good = rules_record(BANNED_WORDS, ["alpha"])
    records = [Rec(BANNED_WORDS.encode(), b"{bad", i) for i in range(5)]
    records.append(Rec(BANNED_WORDS.encode(), good, 5))
    with caplog.at_level("WARNING", logger="newspipe.worker"):
        tables._apply(tp, records)
    assert tables.bad[RULES] == 5 and tables.applied[RULES] == 1
    assert tables.value(RULES).get(BANNED_WORDS) == {"alpha"}
    assert len([r for r in caplog.records if "table_record_skipped" in r.getMessage()]) == 1


def test_a_table_is_ready_once_every_partition_reached_the_end_seen_at_start() -> None:
    async def run() -> None:
        tables = reader()
        rules = [TopicPartition(NAMES.moderation_rules, 0)]
        history = [TopicPartition(NAMES.moderation_history, p) for p in range(2)]
        tables.partitions = {RULES: rules, HISTORY: history}
        tables.targets = {rules[0]: 3, history[0]: 0, history[1]: 10}
        tables.positions = {rules[0]: 3, history[0]: 0, history[1]: 4}
        tables._check_ready()
        assert tables.ready[RULES].is_set() and not tables.ready[HISTORY].is_set()
        assert not tables.is_ready()
        assert not await tables.wait_ready(stop=lambda: True)
        tables.positions[history[1]] = 11  # past the end: a commit marker was skipped
        tables._check_ready()
        assert await tables.wait_ready(poll_s=0.01)

    asyncio.run(run())


def test_a_table_the_broker_stopped_answering_for_turns_stale_once(monkeypatch, caplog) -> None:
    async def run() -> None:
        tables = reader()
        tp = TopicPartition(NAMES.moderation_rules, 0)
        tables.partitions = {RULES: [tp], HISTORY: []}
        tables.targets = {tp: 0}
        tables.positions = {tp: 0}
        tables._check_ready()
        polled = {"at": None}
        monkeypatch.setattr(tables, "_last_poll", lambda _tp: polled["at"])
        assert tables.status()[RULES].age_s is None
        polled["at"] = 1000 * (tables_mod.time.time() - 5)
        assert tables.problems() == [{"table": HISTORY, "reason": "loading", "lag": 0}]
        polled["at"] = 1000 * (tables_mod.time.time() - tables_mod.STALE_AFTER_S - 1)
        with caplog.at_level("INFO", logger="newspipe.worker"):
            for _ in range(3):
                problems = tables.problems()
            polled["at"] = 1000 * tables_mod.time.time()
            tables.problems()
        assert {"table": RULES, "reason": "not updating"}.items() <= problems[0].items()
        lines = [r.getMessage() for r in caplog.records]
        assert sum("table_stale" in line for line in lines) == 1
        assert sum("table_fresh" in line for line in lines) == 1

    asyncio.run(run())


# -- the comments stage's moderation side outputs (the core's result shape is faked) --------


class FakeCore:
    """Returns one clean comment per record, its status and history event taken from the raw
    value; remembers the moderation context it had for each batch."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.moderation = ModerationContext(Rules(), AuthorHistory(1.0))  # the offline one

    def process_batch(self, stream: str, items: list, states: Any) -> list[Result]:
        self.seen.append(self.moderation)
        out = []
        for value, _meta in items:
            raw = orjson.loads(value)
            record = {"comment_id": raw["id"], "article_id": "a1", "author": raw["author"],
                      "text": "x", "tags": []}  # fmt: skip
            if raw.get("status"):
                record["moderation"] = {"status": raw["status"], "flags": []}
            result = Result(COMMENTS, CLEAN, "new", "t", record)
            if raw.get("status") not in (None, "approved"):
                result.history_event = HistoryEvent(
                    raw["author"], raw["id"], 1_790_000_000.0, raw["status"]
                )
            out.append(result)
        return out


@dataclass
class RawRec:
    offset: int
    value: bytes
    topic: str = "t.raw.comments"
    partition: int = 2
    key: bytes | None = b"a1"
    timestamp: int | None = 1_790_000_000_000
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def test_the_queue_holds_the_clean_comments_not_approved_and_history_their_events() -> None:
    stage = BY_NAME[COMMENTS]
    states = state_view(stage, {m: OverlayMap() for m in (*stage.owns, "article_tags")})
    raws = [
        {"id": "c1", "author": "ann", "status": "approved"},
        {"id": "c2", "author": "bob", "status": "review"},
        {"id": "c3", "author": "cy", "status": "rejected"},
        {"id": "c4", "author": "dee"},  # no moderation object (an older core): not queued
    ]
    records = [RawRec(i, orjson.dumps(r)) for i, r in enumerate(raws)]
    core = FakeCore()
    tables = ModerationTables(SEED, AuthorHistory(3600))
    offline = core.moderation
    out = process_batch(stage, core, states, -1, records, NAMES, tables)  # type: ignore[arg-type]
    queue = [r for r in out.records if r.topic == NAMES.moderation_queue]
    clean = [r for r in out.records if r.topic == NAMES.clean_comments]
    history = [r for r in out.records if r.topic == NAMES.moderation_history]
    assert [orjson.loads(r.value)["comment_id"] for r in queue] == ["c2", "c3"]
    assert {r.value for r in queue} <= {r.value for r in clean}  # the same record
    assert all(r.key == b"a1" and r.partition == 2 for r in queue)  # like its clean record
    assert [(r.key, HistoryEvent.parse(r.value).comment_id) for r in history] == [
        (b"bob", "c2"), (b"cy", "c3"),
    ]  # fmt: skip
    assert all(r.timestamp_ms == 1_790_000_000_000 for r in history)  # event time: retention
    assert out.queued == 2 and [e.comment_id for e in out.history] == ["c2", "c3"]
    assert (core.seen[0].rules, core.seen[0].history) == (tables.rules, tables.history)
    assert out.rules_version == 0
    assert core.moderation is offline  # handed over for the call only


def test_without_tables_the_core_keeps_its_own_context_and_side_outputs_still_go() -> None:
    stage = BY_NAME[COMMENTS]
    states = state_view(stage, {m: OverlayMap() for m in (*stage.owns, "article_tags")})
    core = FakeCore()
    records = [RawRec(0, orjson.dumps({"id": "c1", "author": "ann", "status": "review"}))]
    out = process_batch(stage, core, states, -1, records, NAMES)  # type: ignore[arg-type]
    assert core.seen == [core.moderation] and out.rules_version is None
    assert {r.topic for r in out.records} >= {NAMES.moderation_queue, NAMES.moderation_history}


def test_the_comments_stage_declares_its_tables_and_side_outputs() -> None:
    stage = BY_NAME[COMMENTS]
    assert stage.tables == (RULES, HISTORY)
    assert stage.queue is not None and stage.queue(NAMES) == "t.moderation.queue"
    assert stage.history is not None and stage.history(NAMES) == "t.moderation.history"
    assert all(s.queue is None and not s.tables for s in BY_NAME.values() if s is not stage)


def test_the_moderation_topics_are_made_for_their_use() -> None:
    """The rules compacted on one partition (the last record per list is the list), the history
    deleted a day after the horizon, the queue partitioned like the comments."""
    from pipeline.kafka_io import TopicLayoutError, _check_layout, topic_specs

    settings = Settings(topic_prefix="t.", app_id="app", partitions=4)
    specs = {s.name: s for s in topic_specs(settings)}
    rules, history = specs[NAMES.moderation_rules], specs[NAMES.moderation_history]
    queue = specs[NAMES.moderation_queue]
    assert rules.num_partitions == 1 and rules.topic_configs == {"cleanup.policy": "compact"}
    assert history.topic_configs["cleanup.policy"] == "delete"
    day_ms = 24 * 3600 * 1000
    assert int(history.topic_configs["retention.ms"]) == (
        1000 * settings.moderation_history_horizon_s + day_ms
    )
    assert queue.num_partitions == specs[NAMES.raw_comments].num_partitions == 4
    with pytest.raises(TopicLayoutError, match=r"moderation\.queue"):
        _check_layout(settings, {NAMES.raw_comments: 4, NAMES.moderation_queue: 2})
