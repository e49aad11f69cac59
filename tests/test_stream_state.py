"""The stream shell's per-partition state, without a broker: the batch overlay, changelog
records and applying them (the end-to-end guarantee is in test_stream_dedup.py)."""

from __future__ import annotations

import asyncio
import gc
from dataclasses import replace
from typing import Any, NamedTuple

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st
from newspipe_native import murmur2, untrack_data

from pipeline.settings import Settings
from pipeline.stream.runner import StageRunner
from pipeline.stream.state import MAX_RECORD_BYTES, OverlayMap, PartitionState, StageState


def stage(**settings: object) -> StageState:
    st = StageState(
        "comments", ("comments", "tags"), "state.comments", Settings(**settings), lambda **_: None
    )
    for p in (0, 1):
        st._new_part(p)
    return st


def test_each_partition_has_its_own_maps() -> None:
    st = stage()
    st.parts[0].maps["comments"]["c:1"] = [1, "h"]
    assert st.parts[1].maps["comments"].get("c:1") is None
    assert "c:1" not in st.parts[1].maps["comments"]
    assert st.parts[0].maps["comments"]["c:1"] == [1, "h"]


def test_writes_stay_in_the_overlay_until_the_batch_commits() -> None:
    part = stage().parts[0]
    m = part.maps["comments"]
    m["c:1"] = [1, "h"]
    assert m.store == {} and m.overlay == {"c:1": [1, "h"]}
    part.discard()  # an aborted transaction
    assert m.get("c:1") is None
    m["c:2"] = [2, "h"]
    part.committed(mark=10, changelog_offset=3)
    assert m.store == {"c:2": [2, "h"]} and m.overlay == {}
    assert (part.mark, part.applied) == (10, 3)


def test_a_changelog_record_rebuilds_the_state_and_the_mark() -> None:
    part = stage().parts[1]
    part.maps["comments"]["c:9"] = (5, "x")
    part.maps["comments"]["s:h"] = (5, 2, (("ann", "c1"), ("bob", "c2")))
    part.maps["tags"]["a"] = {"t": 5}
    (value,) = part.changelog_records(mark=41)
    fresh = stage().parts[1]
    fresh.apply_changelog(orjson.loads(value), offset=7)
    # entries come back as the core wrote them: tuples (the collector lets them go), not lists
    assert fresh.maps["comments"].store == part.maps["comments"].overlay
    assert fresh.maps["tags"].store == {"a": {"t": 5}}
    assert (fresh.mark, fresh.applied) == (41, 7)


def test_committed_in_memory_entries_are_out_of_the_collectors_sight_and_unchanged() -> None:
    part = stage().parts[0]
    tags = [{"code": "04000000", "label": "economy", "level": 1, "score": 0.5,
             "evidence": ["bank", "rate"], "inherited": False}]  # fmt: skip
    part.maps["tags"]["a"] = {"t": 5, "tags": tags}
    part.maps["comments"]["a:1"] = {"t": 5, "h": ("x",), "r": 1}
    assert gc.is_tracked(tags[0])  # while the batch is open, as the core made it
    part.committed(mark=1, changelog_offset=0)
    entry = part.maps["tags"].store["a"]
    for container in (entry, entry["tags"], entry["tags"][0], entry["tags"][0]["evidence"],
                      part.maps["comments"].store["a:1"]):  # fmt: skip
        assert not gc.is_tracked(container)
    assert entry == {"t": 5, "tags": [{"code": "04000000", "label": "economy", "level": 1,
                     "score": 0.5, "evidence": ["bank", "rate"], "inherited": False}]}  # fmt: skip
    assert part.maps["tags"].overlay == {}  # committed: nothing left in the overlay
    # restored from the changelog: the same
    part.maps["tags"]["b"] = {"t": 6, "tags": [{"code": "x", "evidence": ["y"]}]}
    (value,) = part.changelog_records(mark=2)
    fresh = stage().parts[0]
    fresh.apply_changelog(orjson.loads(value), offset=1)
    restored = fresh.maps["tags"].store["b"]
    assert restored == {"t": 6, "tags": [{"code": "x", "evidence": ["y"]}]}
    assert not gc.is_tracked(restored) and not gc.is_tracked(restored["tags"][0])


def test_only_plain_data_is_untracked_and_a_changed_copy_is_tracked_again() -> None:
    class Other:
        pass

    gc.disable()  # a collection in between would untrack the tuples itself
    try:
        pair = tuple([1, tuple(["a"])])  # made at run time: tracked, as the core's are
        odd = {"plain": [1, 2.5, True, None, b"x", "s", pair], "other": [Other()]}
        deep: list = []
        inner = deep
        for _ in range(100):  # deeper than any state entry
            inner.append([])
            inner = inner[0]
        assert untrack_data([odd, deep]) == 3  # the plain list, its tuple, the tuple inside
    finally:
        gc.enable()
    assert not gc.is_tracked(odd["plain"]) and not gc.is_tracked(pair)
    assert gc.is_tracked(odd) and gc.is_tracked(odd["other"])  # they hold another kind of object
    assert gc.is_tracked(deep)  # too deep to walk: left as it was
    m = OverlayMap({})
    m["a"] = {"t": 1, "h": ["x"]}
    m.apply()
    copy = m.get("a")
    assert copy == {"t": 1, "h": ["x"]} and copy is not m.store["a"]
    copy["h"] = ["x", "y"]  # a dict given a container is tracked again (CPython does that)
    assert gc.is_tracked(copy) and m.store["a"] == {"t": 1, "h": ["x"]}


def test_a_large_batch_is_split_into_records_under_the_size_limit() -> None:
    part = stage().parts[0]
    m = part.maps["comments"]
    for i in range(30_000):
        m[f"c:{i:08d}"] = (1_700_000_000 + i, f"{i:016x}" * 3)
    values = part.changelog_records(mark=99)
    assert len(values) > 1
    assert all(len(v) <= MAX_RECORD_BYTES for v in values)
    fresh = stage().parts[0]
    for offset, value in enumerate(values):
        fresh.apply_changelog(orjson.loads(value), offset)
    assert fresh.maps["comments"].store == m.overlay
    assert fresh.mark == 99


def test_the_expiry_sweep_deletes_from_the_committed_store() -> None:
    m = OverlayMap({"c:a": [1, "h"], "c:b": [2, "h"]})
    assert dict(m.items()) == {"c:a": [1, "h"], "c:b": [2, "h"]} and len(m) == 2
    del m["c:b"]
    assert m.store == {"c:a": [1, "h"]}
    with pytest.raises(KeyError):
        del m["c:b"]


def test_the_expiry_sweep_of_an_overlay_drops_old_entries_from_the_store_and_the_overlay() -> None:
    m = OverlayMap({"c:a": (1, "h"), "c:b": (5, "h"), "t:x": {"t": 2, "tags": []}})
    m["c:a"] = (1, "h2")  # a write of this batch to a key the sweep drops
    assert sorted(m.expire_before(3)) == ["c:a", "t:x"]
    assert m.store == {"c:b": (5, "h")} and m.overlay == {}


def test_changing_a_value_read_from_the_store_does_not_change_committed_state() -> None:
    part = stage().parts[0]
    m = part.maps["comments"]
    m.store["a:1"] = {"t": 1, "h": ["x"], "r": 1}
    entry = m.get("a:1")
    entry["r"] = 2  # what the deduper does to a revision before writing it back
    entry["h"] = ["x", "y"]
    assert m.store["a:1"] == {"t": 1, "h": ["x"], "r": 1}
    part.discard()
    assert m.get("a:1")["r"] == 1


def test_a_recreated_changelog_resets_the_partition() -> None:
    part = stage().parts[0]
    part.maps["comments"].store["c:1"] = [1, "h"]
    part.mark, part.applied = 50, 9
    part.reset()
    assert part.maps["comments"].store == {} and (part.mark, part.applied) == (-1, -1)


def test_rocksdb_partition_state_survives_reopening_with_its_position(tmp_path) -> None:
    st = stage(store="rocksdb://", state_dir=tmp_path)
    part = st.parts[0]
    part.maps["comments"]["c:1"] = [1, "h"]
    part.committed(mark=5, changelog_offset=2)
    st._save_position(0, part)
    for m in part.maps.values():
        m.store.close()  # type: ignore[attr-defined]
    again = StageState(
        "comments", ("comments", "tags"), "state.comments", st.settings, lambda **_: None
    )._new_part(0)
    assert again.maps["comments"]["c:1"] == [1, "h"]
    assert (again.mark, again.applied) == (5, 2)
    assert isinstance(again, PartitionState)


def test_a_committed_batch_reaches_rocksdb_in_one_write_batch(tmp_path, monkeypatch) -> None:
    """A batch's writes (and a replayed changelog record's) go to RocksDB as one write batch:
    all of them or none, and about half the cost of a put per key."""
    from pipeline.dedup.state import RocksState

    st = stage(store="rocksdb://", state_dir=tmp_path)
    part = st.parts[0]
    part.maps["comments"]["c:1"] = [1, "h"]
    part.maps["comments"]["c:2"] = [2, "i"]
    part.maps["tags"]["a:1"] = {"t": ["x"]}
    writes: list[list[str]] = []
    real = RocksState.write_many

    def write_many(self, items):
        items = list(items)
        writes.append([k for k, _ in items])
        real(self, items)

    def one_by_one(self, key, value):
        raise AssertionError("a put per key")

    monkeypatch.setattr(RocksState, "write_many", write_many)
    monkeypatch.setattr(RocksState, "__setitem__", one_by_one)
    part.committed(mark=5, changelog_offset=2)
    part.apply_changelog({"mark": 7, "maps": {"comments": {"c:3": [3, "j"]}}}, offset=3)
    assert writes == [["c:1", "c:2"], ["a:1"], ["c:3"]]
    comments = part.maps["comments"]
    assert [comments.get(k) for k in ("c:1", "c:2", "c:3")] == [[1, "h"], [2, "i"], [3, "j"]]
    assert part.maps["tags"].get("a:1") == {"t": ["x"]}
    assert comments.overlay == {} and (part.mark, part.applied) == (7, 3)


def test_rocksdb_state_files_carry_a_bloom_filter_for_every_key(tmp_path) -> None:
    """Most dedup lookups are for keys never seen; a Bloom filter per table file answers them
    without reading the file's blocks (a miss: ~10 us without, ~1 us with)."""
    from pipeline.dedup.state import RocksState

    state = RocksState(tmp_path / "comments")
    state.write_many((f"c:{i}", [i, "h"]) for i in range(1000))
    state.db.flush()
    props = dict(
        item.split("=", 1)
        for item in state.db.property_value("rocksdb.aggregated-table-properties").split("; ")
        if "=" in item
    )
    assert int(props["# entries for filter"]) == 1000
    assert int(props["filter block size"]) > 0
    assert state.get("c:5") == [5, "h"] and state.get("c:1000") is None
    state.close()


@given(st.binary(max_size=70))
def test_a_keyed_record_goes_to_the_partition_aiokafkas_partitioner_picks(key: bytes) -> None:
    """The compiled murmur2 is aiokafka's (Kafka's Java client's): the same key, the same
    partition, so a record's partition does not depend on which process sent it."""
    assert murmur2(key) == aiokafka_murmur2(key)


def test_state_changelogs_outlive_the_raw_topics_and_twice_their_horizon():
    # the mark in a changelog's last record must still be there when the input it covers is
    from pipeline.kafka_io import topic_specs
    from pipeline.settings import Settings
    from pipeline.topics import STATE, TopicNames

    settings = replace(Settings(), comment_horizon_s=3600, article_horizon_s=30 * 24 * 3600)
    names = TopicNames(settings.topic_prefix, settings.app_id)
    state = {names.name(t) for t in STATE}
    specs = {s.name: s for s in topic_specs(settings)}
    raw_ms = int(specs[names.raw_comments].topic_configs["retention.ms"])
    for name in state:
        retention = int(specs[name].topic_configs["retention.ms"])
        assert retention >= raw_ms + 24 * 3600 * 1000, name
        assert specs[name].topic_configs["cleanup.policy"] == "delete"
    assert int(specs[names.state_articles].topic_configs["retention.ms"]) == 60 * 24 * 3600 * 1000


@pytest.mark.kafka
def test_a_worker_refuses_raw_topics_with_different_partition_counts(pipeline_settings):
    # partition p of the raw comments reads the articles state of partition p: a raw.comments
    # with more partitions than raw.articles would leave comments without their article state
    import asyncio
    import subprocess
    import sys

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from pipeline.kafka_io import delete_topics
    from pipeline.topics import TopicNames
    from tests.conftest import ROOT, settings_env

    settings = pipeline_settings
    names = TopicNames(settings.topic_prefix, settings.app_id)

    async def make() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(names.raw_comments, settings.partitions + 1, 1)])
        finally:
            await admin.close()

    asyncio.run(make())
    try:
        worker = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "worker"],
            env=settings_env(settings), cwd=ROOT, capture_output=True, timeout=120,
        )  # fmt: skip
        err = worker.stderr.decode()
        assert worker.returncode == 1, err[-2000:]
        assert "must have the same number of partitions" in err and names.raw_comments in err
    finally:
        asyncio.run(delete_topics(settings, names.all()))


def test_a_batch_processes_articles_before_near_dups_before_comments():
    # a comment inherits the tags of its article: when both come in one batch, the article's
    # partition must be processed first
    import asyncio

    from aiokafka import TopicPartition

    from pipeline.topics import TopicNames

    names = TopicNames("", "newspipe")
    runner = _bare_runner()
    seen: list[str] = []

    async def record(tp: TopicPartition, records: list) -> None:
        seen.append(tp.topic)

    runner.run_partition = record  # type: ignore[method-assign]
    batch = {
        TopicPartition(names.raw_comments, 0): [object()],
        TopicPartition(names.neardup, 0): [object()],
        TopicPartition(names.raw_articles, 1): [object()],
        TopicPartition(names.raw_comments, 1): [object()],
    }

    async def run_and_drain() -> None:
        await runner.run_batch(batch)
        await runner.drain()

    asyncio.run(run_and_drain())
    assert seen == [names.raw_articles, names.neardup, names.raw_comments, names.raw_comments]


def _bare_runner(**overrides: Any) -> StageRunner:
    """A runner without Kafka or a core. Its batches are not paced unless `overrides` say so:
    the tests of their order would otherwise wait out `transaction_interval_s`."""
    from pipeline.metrics import Metrics

    settings = replace(Settings(), **{"transaction_interval_s": 0.0, **overrides})
    return StageRunner(settings, None, Metrics(), lambda **_: None)  # type: ignore[arg-type]


def test_the_sweep_waits_for_its_interval_and_for_event_time_to_move_on() -> None:
    from types import SimpleNamespace

    from pipeline.stream.runner import SWEEP_PROGRESS

    runner = _bare_runner()
    runner.core = SimpleNamespace(deduper=SimpleNamespace(watermark=1_700_000_000.0))
    s = runner.settings
    step = SWEEP_PROGRESS * min(s.article_horizon_s, s.comment_horizon_s,
                                s.moderation_history_horizon_s)  # fmt: skip
    t = runner.last_sweep
    assert not runner.sweep_due(t + s.expiry_sweep_s - 1)  # too soon
    assert runner.sweep_due(t + s.expiry_sweep_s)  # the first: restored state may hold old entries
    runner.last_sweep, runner.swept_at = t + s.expiry_sweep_s, 1_700_000_000.0
    later = runner.last_sweep + 100 * s.expiry_sweep_s
    assert not runner.sweep_due(later)  # event time stood still: nothing more has aged
    runner.core.deduper.watermark += step / 2
    assert not runner.sweep_due(later)
    runner.core.deduper.watermark += step / 2
    assert runner.sweep_due(later)


def test_a_partition_the_sweep_finds_unreadable_is_set_aside_and_the_others_are_swept() -> None:
    from pathlib import Path
    from types import SimpleNamespace

    from pipeline.dedup import StateCorrupted

    runner = _bare_runner()
    bad = OverlayMap({"c:x": (1, "h")})
    swept: list[object] = []

    class Core:
        deduper = SimpleNamespace(watermark=0.0)

        def expire_partition(self, states):
            if states.comments is bad:
                raise StateCorrupted(Path("state/comments-1"), RuntimeError("Corruption"))
            swept.append(states.comments)
            return 0

    runner.core = Core()
    comments = runner.states["comments"]
    for partition, m in enumerate([OverlayMap({}), bad, OverlayMap({})]):
        comments.parts[partition] = PartitionState({"comments": m})
    asyncio.run(runner._sweep())
    assert sorted(comments.parts) == [0, 2]  # the next batch of 1 rebuilds it from its changelog
    assert swept == [comments.parts[0].maps["comments"], comments.parts[2].maps["comments"]]


def test_what_is_fetched_while_a_partitions_batch_is_under_way_becomes_one_next_batch():
    from pipeline.topics import TopicNames

    names = TopicNames("", "newspipe")
    runner = _bare_runner()
    tp0, tp1 = TopicPartition(names.raw_comments, 0), TopicPartition(names.raw_comments, 1)
    log: list[str] = []
    gates: dict[str, asyncio.Event] = {}

    async def slow(tp: TopicPartition, records: list) -> None:
        name = f"{tp.partition}:{''.join(records)}"
        log.append(f"start {name}")
        gates[name] = asyncio.Event()
        await gates[name].wait()  # the transaction, until the test lets it commit
        log.append(f"done {name}")

    runner.run_partition = slow  # type: ignore[method-assign]

    async def scenario() -> None:
        await runner.run_batch({tp0: ["a"], tp1: ["a"]})  # returns at once: nothing before it
        await asyncio.sleep(0)
        assert runner.in_flight == {tp0, tp1}
        # the next fetches do not wait for the transactions in flight ...
        await asyncio.wait_for(runner.run_batch({tp0: ["b"]}), 1)
        await asyncio.wait_for(runner.run_batch({tp0: ["c"], tp1: ["b"]}), 1)
        await asyncio.sleep(0.01)
        assert "start 0:b" not in log and "start 0:bc" not in log  # ... tp0 waits for "a"
        gates["0:a"].set()
        await asyncio.sleep(0.01)
        assert "start 0:bc" in log  # both later fetches, as one batch
        assert "start 1:b" not in log  # tp1's own batch is still under way
        await asyncio.wait_for(runner.run_batch({tp0: ["d"]}), 1)  # waits behind "bc"
        for name in ("1:a", "0:bc"):
            gates[name].set()
        await asyncio.sleep(0.01)
        for name in ("1:b", "0:d"):
            gates[name].set()
        await runner.drain()
        assert not runner.in_flight and not runner.tasks and not runner.waiting

    asyncio.run(scenario())
    assert [line for line in log if line.startswith("start 0")] == [
        "start 0:a", "start 0:bc", "start 0:d"
    ]  # fmt: skip
    assert log.index("done 0:a") < log.index("start 0:bc") < log.index("done 0:bc")


def _timed(runner: StageRunner) -> list[tuple[float, TopicPartition, str]]:
    """Replace `runner`'s transactions by an instant one that notes when each batch started,
    its partition and its records."""
    import time

    started: list[tuple[float, TopicPartition, str]] = []

    async def instant(tp: TopicPartition, records: list) -> None:
        started.append((time.monotonic(), tp, "".join(records)))

    runner.run_partition = instant  # type: ignore[method-assign]
    return started


def test_a_lightly_loaded_partitions_next_batch_waits_out_the_interval_and_takes_all_that_came():
    from pipeline.topics import TopicNames

    runner = _bare_runner(transaction_interval_s=1.0)
    tp = TopicPartition(TopicNames("", "newspipe").raw_comments, 0)
    started = _timed(runner)

    async def scenario() -> None:
        await runner.run_batch({tp: ["a"]})
        await asyncio.sleep(0.05)  # "a" committed at once; the next batch may not start yet
        await runner.run_batch({tp: ["b"]})
        await asyncio.sleep(0.05)
        await runner.run_batch({tp: ["c"]})  # joins "b" while it waits
        await asyncio.sleep(0.05)
        assert [name for _, _, name in started] == ["a"]
        while runner.tasks:
            await asyncio.sleep(0.01)  # not `drain`: a drain starts a paced batch at once

    asyncio.run(scenario())
    assert [name for _, _, name in started] == ["a", "bc"]
    assert started[1][0] - started[0][0] >= 1.0 - 0.01


def test_a_partitions_next_batch_starts_at_once_when_a_full_share_of_a_batch_waits():
    from pipeline.stream.runner import PACE_SHARE
    from pipeline.topics import TopicNames

    runner = _bare_runner(transaction_interval_s=5.0, batch_size=2 * PACE_SHARE)
    tp = TopicPartition(TopicNames("", "newspipe").raw_comments, 0)
    started = _timed(runner)

    async def scenario() -> None:
        await runner.run_batch({tp: ["a"]})
        await asyncio.sleep(0.01)
        await runner.run_batch({tp: ["b"]})  # one record: waits for the interval ...
        await asyncio.sleep(0.01)
        assert [name for _, _, name in started] == ["a"]
        await runner.run_batch({tp: ["c"]})  # ... two (batch_size / PACE_SHARE): no longer
        await asyncio.wait_for(asyncio.gather(*runner.tasks.values()), 1)

    asyncio.run(scenario())
    assert [name for _, _, name in started] == ["a", "bc"]


def test_a_drain_starts_a_paced_batch_at_once():
    # a rebalance, the expiry sweep and stopping must not wait out the interval
    from pipeline.topics import TopicNames

    runner = _bare_runner(transaction_interval_s=5.0)
    tp0, tp1 = (TopicPartition(TopicNames("", "newspipe").raw_comments, p) for p in (0, 1))
    started = _timed(runner)

    async def scenario() -> None:
        await runner.run_batch({tp0: ["a"], tp1: ["a"]})
        await asyncio.sleep(0.01)
        await runner.run_batch({tp0: ["b"], tp1: ["b"]})
        await asyncio.sleep(0.01)
        await asyncio.wait_for(runner.drain(), 1)

    asyncio.run(scenario())
    assert sorted(name for _, _, name in started) == ["a", "a", "b", "b"]


def test_the_raw_articles_are_not_paced_so_a_comment_fetched_with_its_article_comes_after_it():
    # run_batch starts a fetch's articles before its comments; a paced articles batch would let
    # the comments run first, without their article's tags
    from pipeline.topics import TopicNames

    names = TopicNames("", "newspipe")
    runner = _bare_runner(transaction_interval_s=5.0)
    articles, comments = (TopicPartition(t, 0) for t in (names.raw_articles, names.raw_comments))
    started = _timed(runner)

    async def scenario() -> None:
        await runner.run_batch({articles: ["a"], comments: ["a"]})
        await asyncio.sleep(0.01)
        await runner.run_batch({articles: ["b"], comments: ["b"]})
        await asyncio.sleep(0.05)
        order = [(tp, name) for _, tp, name in started]
        assert order == [(articles, "a"), (comments, "a"), (articles, "b")]  # comments' b waits
        await asyncio.wait_for(runner.drain(), 1)

    asyncio.run(scenario())


def test_records_enough_waiting_over_many_paced_partitions_start_their_batches():
    # back-pressure holds the fetch until a waiting batch gets under way: the paced ones must
    # not wait out their interval meanwhile
    from pipeline.stream.runner import PACE_SHARE
    from pipeline.topics import TopicNames

    size = 10 * PACE_SHARE  # a paced batch starts early from 10 records; 9 partitions of 9 wait
    runner = _bare_runner(transaction_interval_s=5.0, batch_size=size)
    tps = [TopicPartition(TopicNames("", "newspipe").raw_comments, p) for p in range(9)]
    started = _timed(runner)

    async def scenario() -> None:
        await runner.run_batch({tp: ["a"] for tp in tps})
        await asyncio.sleep(0.01)
        await asyncio.wait_for(runner.run_batch({tp: ["b"] * 9 for tp in tps}), 1)
        await asyncio.wait_for(asyncio.gather(*runner.tasks.values()), 1)

    asyncio.run(scenario())
    assert sorted(name for _, _, name in started) == ["a"] * 9 + ["b" * 9] * 9


def test_the_stages_fetch_waits_for_data_only_while_batches_are_paced():
    from pipeline.stream.runner import PACED_FETCH_MIN_BYTES, paced_fetch

    assert paced_fetch(replace(Settings(), transaction_interval_s=0.0)) == {}  # Kafka's defaults
    assert paced_fetch(replace(Settings(), transaction_interval_s=0.1)) == {
        "fetch_min_bytes": PACED_FETCH_MIN_BYTES, "fetch_max_wait_ms": 50}  # fmt: skip
    assert paced_fetch(replace(Settings(), transaction_interval_s=5.0))["fetch_max_wait_ms"] == 500


def test_fetching_waits_once_the_records_waiting_reach_the_batch_size():

    from pipeline.topics import TopicNames

    runner = _bare_runner(batch_size=4)
    tp = TopicPartition(TopicNames("", "newspipe").raw_comments, 0)
    gates: dict[int, asyncio.Event] = {}

    async def slow(tp_: TopicPartition, records: list) -> None:
        gates[len(gates)] = gate = asyncio.Event()
        await gate.wait()

    runner.run_partition = slow  # type: ignore[method-assign]

    async def scenario() -> None:
        await runner.run_batch({tp: ["a"]})
        await asyncio.sleep(0)  # "a" is under way: nothing waits
        await asyncio.wait_for(runner.run_batch({tp: ["b", "c"]}), 1)  # 2 waiting: goes on
        full = asyncio.ensure_future(runner.run_batch({tp: ["d", "e"]}))  # 4 waiting
        await asyncio.sleep(0.01)
        assert not full.done()  # back-pressure: the fetch waits ...
        gates[0].set()
        await asyncio.wait_for(full, 1)  # ... until the waiting batch got under way
        gates[1].set()
        await runner.drain()

    asyncio.run(scenario())


def test_batches_fetched_before_a_rewind_are_dropped():
    from pipeline.topics import TopicNames

    runner = _bare_runner()
    tp = TopicPartition(TopicNames("", "newspipe").raw_comments, 0)
    seen: list[str] = []

    async def first_rewinds(tp_: TopicPartition, records: list) -> None:
        seen.append(records[0])
        if records[0] == "a":
            await asyncio.sleep(0.01)
            runner._rewind(tp_, 0)

    runner.run_partition = first_rewinds  # type: ignore[method-assign]

    async def scenario() -> None:
        await runner.run_batch({tp: ["a"]})
        await runner.run_batch({tp: ["b"]})  # chained behind "a", fetched before its rewind
        await runner.drain()
        await runner.run_batch({tp: ["c"]})  # fetched after it
        await runner.drain()

    asyncio.run(scenario())
    assert seen == ["a", "c"]


@pytest.mark.kafka
def test_a_transaction_sends_each_record_where_the_producer_would_with_its_timestamp(
    pipeline_settings,
):
    """Records go as whole batches per partition: a keyed record lands where the producer's
    own partitioner puts it, timestamps stay, a batch over the size limit is split, and the
    returned offset is the last record's."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from pipeline import kafka_io
    from pipeline.stream.state import OutRecord, send_in_transaction

    settings = pipeline_settings
    topic = f"{settings.topic_prefix}txn-shape"

    async def scenario() -> tuple[list, list, object]:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 3, 1)])
        finally:
            await admin.close()
        producer = kafka_io.producer(settings, transactional_id=f"{topic}-txn")
        plain = kafka_io.producer(settings)
        await producer.start()
        await plain.start()
        try:
            big = b"x" * 200_000  # two of them overflow one 256 KiB batch
            records = [OutRecord(topic, f"k{i}".encode(), b"v%d" % i, None, 1_700_000_000_000 + i)
                       for i in range(30)]  # fmt: skip
            records += [OutRecord(topic, None, big, 1), OutRecord(topic, None, big, 1),
                        OutRecord(topic, b"last", b"end", 2)]  # fmt: skip
            last = await send_in_transaction(producer, records)
            expected = [(await plain.send_and_wait(topic, b"probe", key=r.key)).partition
                        for r in records[:30]]  # fmt: skip
        finally:
            await producer.stop()
            await plain.stop()
        consumer = kafka_io.consumer(settings, isolation_level="read_committed",
                                     auto_offset_reset="earliest")  # fmt: skip
        await consumer.start()
        try:
            await kafka_io.assign_from_beginning(consumer, [topic])
            got: list = []
            while len(got) < len(records) + 30:
                batch = await consumer.getmany(timeout_ms=2000)
                assert batch, f"only {len(got)} records came back"
                for recs in batch.values():
                    got.extend(recs)
        finally:
            await consumer.stop()
        return got, expected, last

    try:
        got, expected, last = asyncio.run(scenario())
        sent = {r.value: r for r in got if r.value != b"probe"}
        for i, partition in enumerate(expected):
            rec = sent[b"v%d" % i]
            assert (rec.partition, rec.timestamp) == (partition, 1_700_000_000_000 + i)
        assert sum(1 for r in got if r.value == b"x" * 200_000) == 2
        end = sent[b"end"]
        assert (last.partition, last.offset) == (end.partition, end.offset) == (2, end.offset)
    finally:
        asyncio.run(kafka_io.delete_topics(settings, [topic]))


class _FakeBatch:
    """A record batch as `send_in_transaction` uses it: holds `room` records, then refuses."""

    def __init__(self, room: int) -> None:
        self.room, self.records, self.closed = room, [], False

    def append(self, *, key, value, timestamp, headers):
        assert not self.closed, "a closed batch took a record"
        if len(self.records) == self.room:
            return None
        self.records.append(value)
        return type("Meta", (), {"offset": len(self.records) - 1})()

    def close(self) -> None:
        self.closed = True


class _Delivered(NamedTuple):
    offset: int


class _FakeProducer:
    """Records what a transaction hands over, in order, and whether each batch was closed."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.calls: list[tuple] = []

    async def begin_transaction(self) -> None:
        self.calls.append(("begin",))

    async def partitions_for(self, topic):
        return {0, 1, 2}

    def create_batch(self) -> _FakeBatch:
        return _FakeBatch(self.room)

    async def send_batch(self, batch, topic, partition):
        self.calls.append(("send", topic, partition, tuple(batch.records), batch.closed))
        # the batch's base offset: 10 per batch already sent to this partition
        base = 10 * (sum(1 for c in self.calls if c[:3] == ("send", topic, partition)) - 1)
        done = asyncio.get_running_loop().create_future()
        done.set_result(_Delivered(base))
        return done

    async def commit_transaction(self) -> None:
        self.calls.append(("commit",))


def test_a_transaction_hands_over_every_partitions_first_batch_before_any_second_one_closed():
    """Batches go closed (sent at once, no linger), and the first batch of every partition goes
    before any partition's second one: aiokafka holds a partition's second batch until its first
    has left, which held back the partitions after it (and cost an extra AddPartitionsToTxn
    round trip for them). The returned offset is still the last record's."""
    from pipeline.stream.state import OutRecord, send_in_transaction

    producer = _FakeProducer(room=2)
    records = [OutRecord("clean", None, b"a%d" % i, 0) for i in range(5)]  # three batches
    records += [OutRecord("queue", None, b"q0", 1), OutRecord("state", None, b"s0", 2)]
    records += [OutRecord("clean", None, b"a5", 0)]  # the last record, in the third batch
    last = asyncio.run(send_in_transaction(producer, records))

    sends = [c[1:] for c in producer.calls if c[0] == "send"]
    assert producer.calls[0] == ("begin",) and producer.calls[-1] == ("commit",)
    assert all(closed for *_, closed in sends)
    assert [(t, p, recs) for t, p, recs, _ in sends] == [
        ("clean", 0, (b"a0", b"a1")),
        ("queue", 1, (b"q0",)),
        ("state", 2, (b"s0",)),
        ("clean", 0, (b"a2", b"a3")),
        ("clean", 0, (b"a4", b"a5")),
    ]
    assert last == _Delivered(20 + 1)  # partition 0's third batch (base 20), its second record


def test_a_rewind_while_records_wait_drops_them_and_frees_the_fetch():

    from pipeline.topics import TopicNames

    runner = _bare_runner(batch_size=4)
    tp = TopicPartition(TopicNames("", "newspipe").raw_comments, 0)
    seen: list[str] = []
    gate = asyncio.Event()

    async def first_rewinds(tp_: TopicPartition, records: list) -> None:
        seen.append("".join(records))
        if records[0] == "a":
            await gate.wait()
            runner._rewind(tp_, 0)

    runner.run_partition = first_rewinds  # type: ignore[method-assign]

    async def scenario() -> None:
        await runner.run_batch({tp: ["a"]})
        await asyncio.sleep(0)
        full = asyncio.ensure_future(runner.run_batch({tp: ["b", "c", "d", "e"]}))
        await asyncio.sleep(0.01)
        assert not full.done()  # back-pressure
        gate.set()  # "a" rewinds: what waits behind it is dropped ...
        await asyncio.wait_for(full, 1)  # ... and the fetch goes on
        await runner.drain()
        assert not runner.waiting
        await runner.run_batch({tp: ["f"]})  # fetched after the rewind
        await runner.drain()

    asyncio.run(scenario())
    assert seen == ["a", "f"]


def test_records_fetched_before_a_rewind_that_came_while_they_waited_for_the_lock_are_dropped():
    from pipeline.topics import TopicNames

    runner = _bare_runner()
    tp = TopicPartition(TopicNames("", "newspipe").raw_comments, 0)
    seen: list[str] = []

    async def record(tp_: TopicPartition, records: list) -> None:
        seen.append("".join(records))

    runner.run_partition = record  # type: ignore[method-assign]

    async def scenario() -> None:
        fetched_at = {tp: runner.generation.get(tp, 0)}  # as `_consume` notes it
        runner._rewind(tp, 0)  # a batch before them failed meanwhile
        await runner.run_batch({tp: ["late"]}, fetched_at)
        await runner.run_batch({tp: ["again"]}, {tp: runner.generation.get(tp, 0)})
        await runner.drain()

    asyncio.run(scenario())
    assert seen == ["again"]


def test_a_batch_that_fails_for_good_rewinds_so_the_batch_behind_it_does_not_commit_past_it():
    from pipeline.topics import TopicNames

    runner = _bare_runner()
    tp = TopicPartition(TopicNames("", "newspipe").raw_comments, 0)
    seen: list[str] = []
    gate = asyncio.Event()
    rewound: list[int] = []
    real_rewind = runner._rewind

    def rewind(tp_: TopicPartition, offset: int) -> None:
        rewound.append(offset)
        real_rewind(tp_, offset)

    async def fails(tp_: TopicPartition, records: list) -> None:
        seen.append("".join(str(r.offset) for r in records))
        if records[0].offset == 0:
            await gate.wait()
            raise RuntimeError("the dead-letter commit failed too")

    runner.run_partition = fails  # type: ignore[method-assign]
    runner._rewind = rewind  # type: ignore[method-assign]

    from types import SimpleNamespace

    def recs(*offsets: int) -> list:
        return [SimpleNamespace(offset=o) for o in offsets]

    async def scenario() -> None:
        await runner.run_batch({tp: recs(0, 1)})
        await asyncio.sleep(0)
        await runner.run_batch({tp: recs(2, 3)})  # waits behind 0-1
        gate.set()
        await runner.drain()

    asyncio.run(scenario())
    assert rewound == [0] and seen == ["01"]  # 2-3 dropped: fetched again from 0
