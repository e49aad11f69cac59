"""The stream shell's state, without a broker: partition selection, the batch overlay, changelog
records and applying them (the end-to-end guarantee is in test_stream_dedup.py)."""

from __future__ import annotations

import orjson
import pytest

from pipeline.settings import Settings
from pipeline.statelog import MAX_RECORD_BYTES, PartitionedMap, PartitionState, StageState


def stage(**settings: object) -> StageState:
    maps = {"comments": PartitionedMap("comments"), "tags": PartitionedMap("tags")}
    st = StageState("comments", maps, "state.comments", Settings(**settings), lambda **_: None)
    for p in (0, 1):
        st._new_part(p)
    return st


def test_each_partition_sees_only_its_own_entries() -> None:
    st = stage()
    m = st.maps["comments"]
    st.select(0)
    m["c:1"] = [1, "h"]
    st.select(1)
    assert m.get("c:1") is None and "c:1" not in m
    st.select(0)
    assert m["c:1"] == [1, "h"]


def test_writes_stay_in_the_overlay_until_the_batch_commits() -> None:
    st = stage()
    m = st.maps["comments"]
    st.select(0)
    m["c:1"] = [1, "h"]
    assert m.stores[0] == {} and m.overlays[0] == {"c:1": [1, "h"]}
    st.discard(0)  # an aborted transaction
    assert m.get("c:1") is None


def test_a_changelog_record_rebuilds_the_state_and_the_mark() -> None:
    st = stage()
    st.select(1)
    st.maps["comments"]["c:9"] = [5, "x"]
    st.maps["tags"]["a"] = {"t": 5}
    (value,) = st.changelog_records(1, mark=41)
    fresh = stage()
    part = PartitionState()
    fresh._apply(1, part, orjson.loads(value), offset=7)
    assert fresh.maps["comments"].stores[1] == {"c:9": [5, "x"]}
    assert fresh.maps["tags"].stores[1] == {"a": {"t": 5}}
    assert (part.mark, part.applied) == (41, 7)


def test_a_large_batch_is_split_into_records_under_the_size_limit() -> None:
    st = stage()
    st.select(0)
    m = st.maps["comments"]
    for i in range(30_000):
        m[f"c:{i:08d}"] = [1_700_000_000 + i, f"{i:016x}" * 3]
    values = st.changelog_records(0, mark=99)
    assert len(values) > 1
    assert all(len(v) <= MAX_RECORD_BYTES for v in values)
    fresh = stage()
    part = PartitionState()
    for offset, value in enumerate(values):
        fresh._apply(0, part, orjson.loads(value), offset)
    assert fresh.maps["comments"].stores[0] == m.overlays[0]
    assert part.mark == 99


def test_the_expiry_sweep_deletes_from_whichever_partition_holds_the_key() -> None:
    st = stage()
    m = st.maps["comments"]
    m.stores[0]["c:a"] = [1, "h"]
    m.stores[1]["c:b"] = [2, "h"]
    assert dict(m.items()) == {"c:a": [1, "h"], "c:b": [2, "h"]} and len(m) == 2
    del m["c:b"]
    assert m.stores[1] == {} and m.stores[0] == {"c:a": [1, "h"]}


def test_changing_a_value_read_from_the_store_does_not_change_committed_state() -> None:
    st = stage()
    m = st.maps["comments"]
    m.stores[0]["a:1"] = {"t": 1, "h": ["x"], "r": 1}
    st.select(0)
    entry = m.get("a:1")
    entry["r"] = 2  # what the deduper does to a revision before writing it back
    entry["h"] = ["x", "y"]
    assert m.stores[0]["a:1"] == {"t": 1, "h": ["x"], "r": 1}
    st.discard(0)
    assert m.get("a:1")["r"] == 1


def test_the_sweep_judges_a_key_on_each_partition_by_its_own_value() -> None:
    st = stage()
    m = st.maps["comments"]
    m.stores[0]["s:spam"] = [100, 2]  # stale here
    m.stores[1]["s:spam"] = [900, 5]  # live on the other partition
    assert m.sweep(lambda v: v[0] < 500) == ["s:spam"]
    assert "s:spam" not in m.stores[0] and m.stores[1]["s:spam"] == [900, 5]


def test_state_changelogs_outlive_the_raw_topics_and_twice_their_horizon():
    # the mark in a changelog's last record must still be there when the input it covers is
    from dataclasses import replace

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

    from pipeline.metrics import Metrics
    from pipeline.stages import StageRunner
    from pipeline.topics import TopicNames

    names = TopicNames("", "newspipe")
    runner = StageRunner(Settings(), core=None, stages={}, metrics=Metrics())  # type: ignore[arg-type]
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
    asyncio.run(runner.run_batch(batch))
    assert seen == [names.raw_articles, names.neardup, names.raw_comments, names.raw_comments]
