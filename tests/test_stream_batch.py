"""The pure batch step (`pipeline.stream.batch.process_batch`) without a broker: what a stage
sends for one partition's records, what it writes to that partition's state, what it skips and
what the metrics take afterwards."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.core import Core
from pipeline.settings import Settings
from pipeline.stream.batch import (
    DEAD,
    DUP,
    FORWARDED,
    IN,
    OUT,
    TAG,
    process_batch,
    state_view,
)
from pipeline.stream.state import OverlayMap
from pipeline.stream.topology import BY_NAME, NEARDUP, STAGES
from pipeline.topics import ARTICLES, COMMENTS, REPLAY_HEADER, TopicNames

NAMES = TopicNames("t.", "app")
TS = 1_790_000_000_000  # 2026-09-21, Kafka timestamps in ms


@dataclass
class Rec:
    """A consumed record as the batch step reads it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None = TS
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def article(n: int, body: str | None = None) -> bytes:
    return orjson.dumps({
        "schema_version": "1.0", "source": "t", "url": f"https://example.com/{n}",
        "title": f"Football club wins the league title, story {n}",
        "body": body or f"The striker scored in the final match of the season. Story {n}.",
    })  # fmt: skip


def comment(n: int, article_n: int = 0, text: str | None = None, author: str = "") -> bytes:
    return orjson.dumps({
        "schema_version": "1.0", "source": "t", "article_url": f"https://example.com/{article_n}",
        "source_comment_id": str(n), "author": author or f"reader{n}",
        "text": text or f"Comment {n}: what a match that was, a great goal to win it.",
    })  # fmt: skip


def maps_for(*stage_names: str) -> dict[str, OverlayMap]:
    return {m: OverlayMap() for name in stage_names for m in BY_NAME[name].owns}


@pytest.fixture(scope="module")
def core() -> Core:
    return Core(Settings())


def test_the_topology_names_each_stage_once_with_its_topics_and_state() -> None:
    assert [s.name for s in STAGES] == [ARTICLES, NEARDUP, COMMENTS]
    owned = [m for s in STAGES for m in s.owns]
    assert len(owned) == len(set(owned)) == 4  # every core state map has exactly one owner
    assert (
        BY_NAME[ARTICLES].forwards(NAMES) == BY_NAME[NEARDUP].source(NAMES) == "t.articles.neardup"
    )
    assert BY_NAME[COMMENTS].reads == (ARTICLES,)
    assert BY_NAME[COMMENTS].changelog(NAMES) == "t.app-state.comments"


def test_comments_go_to_the_clean_topic_on_their_partition_with_trend_events(core) -> None:
    stage = BY_NAME[COMMENTS]
    maps = maps_for(COMMENTS, ARTICLES)
    articles = BY_NAME[ARTICLES]  # their article first: the comments inherit its sport tags
    process_batch(articles, core, state_view(articles, maps), -1,
                  [Rec("t.raw.articles", 2, 0, b"k", article(0))], NAMES)  # fmt: skip
    maps["articles"].overlay.clear()
    recs = [Rec("t.raw.comments", 2, 10 + i, b"k", comment(i)) for i in range(3)]
    out = process_batch(stage, core, state_view(stage, maps), -1, recs, NAMES)
    clean = [r for r in out.records if r.topic == "t.clean.comments"]
    assert len(clean) == 3 and {r.partition for r in clean} == {2}
    assert [orjson.loads(r.value)["source_comment_id"] for r in clean] == ["0", "1", "2"]
    assert any(r.topic == "t.trend.events" for r in out.records)
    assert out.last_offset == 12 and out.already_committed == 0
    # what the metrics take once the transaction committed: label sets and numbers
    assert {k: n for k, n in out.tallies.counts.items() if k[0] != TAG} == {
        (IN, COMMENTS, "t", "live"): 3,
        (OUT, COMMENTS, "live"): 3,
    }
    # a comment's own level-1 tags count, the ones it inherited from its article do not
    records = [orjson.loads(r.value) for r in clean]
    inherited = [t for c in records for t in c["tags"] if t["level"] == 1 and t.get("inherited")]
    own = Counter((TAG, COMMENTS, t["code"]) for c in records for t in c["tags"]
                  if t["level"] == 1 and not t.get("inherited"))  # fmt: skip
    assert inherited and {k: n for k, n in out.tallies.counts.items() if k[0] == TAG} == own
    assert len(out.tallies.event_ts[COMMENTS]) == 3
    assert {stage for _, stage in out.tallies.stage_seconds} >= {"validate", "dedup", "moderate"}
    assert all(len(v) == 3 for v in out.tallies.stage_seconds.values())
    # the batch's state writes wait in the overlay of the partition's own map
    assert maps["comments"].overlay and not maps["comments"].store
    assert not maps["articles"].overlay  # comments only read their article's state


def test_records_at_or_below_the_mark_are_skipped_and_counted(core) -> None:
    stage = BY_NAME[COMMENTS]
    recs = [Rec("t.raw.comments", 0, o, b"k", comment(o)) for o in range(5)]
    out = process_batch(stage, core, state_view(stage, maps_for(COMMENTS, ARTICLES)), 2, recs,
                        NAMES)  # fmt: skip
    assert out.already_committed == 3 and out.last_offset == 4
    assert sum(n for k, n in out.tallies.counts.items() if k[0] == IN) == 2  # the two after it
    nothing = process_batch(stage, core, state_view(stage, maps_for(COMMENTS, ARTICLES)), 9,
                            recs, NAMES)  # fmt: skip
    assert (nothing.last_offset, nothing.records, nothing.already_committed) == (-1, [], 5)


def test_clean_articles_are_forwarded_to_the_near_dup_stage_not_emitted(core) -> None:
    stage = BY_NAME[ARTICLES]
    maps = maps_for(ARTICLES)
    recs = [Rec("t.raw.articles", 1, 0, b"k", article(0)),
            Rec("t.raw.articles", 1, 1, b"k", article(0)),  # redelivered: a duplicate
            Rec("t.raw.articles", 1, 2, b"k", b"{not json")]  # fmt: skip
    out = process_batch(stage, core, state_view(stage, maps), -1, recs, NAMES)
    topics = [r.topic for r in out.records]
    assert topics == ["t.articles.neardup", "t.dlq"]
    forward = orjson.loads(out.records[0].value)
    assert forward["record"]["title"].startswith("Football club") and forward["mode"] == "live"
    assert out.tallies.counts == {
        (IN, ARTICLES, "t", "live"): 2, (IN, ARTICLES, "unknown", "live"): 1,  # unreadable
        (FORWARDED, ARTICLES, "sent"): 1, (DUP, ARTICLES, "duplicate.exact", "live"): 1,
        (DEAD, ARTICLES, "not_json", "live"): 1,
    }  # fmt: skip
    assert maps["articles"].overlay and maps["article_tags"].overlay  # its tags, for comments


def test_the_near_dup_stage_emits_forwarded_articles_counted_in_already(core) -> None:
    articles, neardup = BY_NAME[ARTICLES], BY_NAME[NEARDUP]
    body = (
        "Heavy rain flooded the old town on Tuesday and the river rose above its banks near "
        "the bridge, where firefighters moved families to the school hall overnight. "
    ) * 3
    forwards = []
    for n, p in ((0, 0), (1, 1)):  # a syndicated copy under another URL, on another partition
        rec = Rec("t.raw.articles", p, 0, b"k", article(n, body))
        out = process_batch(articles, core, state_view(articles, maps_for(ARTICLES)), -1, [rec],
                            NAMES)  # fmt: skip
        forwards.extend(out.records)
    index = maps_for(NEARDUP)
    recs = [Rec("t.articles.neardup", 0, i, r.key, r.value) for i, r in enumerate(forwards)]
    out = process_batch(neardup, core, state_view(neardup, index), -1, recs, NAMES)
    clean = [orjson.loads(r.value) for r in out.records if r.topic == "t.clean.articles"]
    assert len(clean) == 2 and clean[1]["duplicate_of"] == clean[0]["article_id"]
    assert out.tallies.counts[(FORWARDED, ARTICLES, "received")] == 2
    assert not any(k[0] == IN for k in out.tallies.counts)  # the articles stage counted them in
    assert index["index"].overlay
    # a tally carries what the metrics count (the record's own level-1 tags), not the record:
    # the batch's records are freed once sent instead of living until the transaction commits
    own = [tuple(t["code"] for t in c["tags"] if t["level"] == 1 and not t.get("inherited"))
           for c in clean]  # fmt: skip
    assert own[0] and {k: n for k, n in out.tallies.counts.items() if k[0] == TAG} == Counter(
        (TAG, ARTICLES, code) for codes in own for code in codes
    )
    assert all(type(item) is str for key in out.tallies.counts for item in key)


def test_a_comment_inherits_the_tags_its_article_left_in_the_same_partition(core) -> None:
    articles, comments = BY_NAME[ARTICLES], BY_NAME[COMMENTS]
    maps = maps_for(ARTICLES, COMMENTS)
    process_batch(articles, core, state_view(articles, maps), -1,
                  [Rec("t.raw.articles", 0, 0, b"k", article(7))], NAMES)  # fmt: skip
    out = process_batch(comments, core, state_view(comments, maps), -1,
                        [Rec("t.raw.comments", 0, 0, b"k", comment(1, 7, text="Nice."))],
                        NAMES)  # fmt: skip
    tags = orjson.loads(out.records[0].value)["tags"]
    assert tags and all(t.get("inherited") for t in tags)
    # another partition's state knows nothing of that article
    alone = process_batch(comments, core, state_view(comments, maps_for(ARTICLES, COMMENTS)), -1,
                          [Rec("t.raw.comments", 1, 0, b"k", comment(2, 7, text="Nice."))],
                          NAMES)  # fmt: skip
    assert not orjson.loads(alone.records[0].value)["tags"]


def test_a_double_post_in_the_same_batch_is_dropped_and_replays_are_labelled(core) -> None:
    stage = BY_NAME[COMMENTS]
    text = "I could not agree more with the referee's decision in the second half."
    replay = [(REPLAY_HEADER, b"run-1")]
    recs = [
        Rec("t.raw.comments", 0, n - 1, b"k", comment(n, text=text, author="ann"), headers=replay)
        for n in (1, 2)
    ]
    out = process_batch(stage, core, state_view(stage, maps_for(COMMENTS, ARTICLES)), -1, recs,
                        NAMES)  # fmt: skip
    counts = out.tallies.counts
    assert counts[(OUT, COMMENTS, "replay")] == 1 and counts[(IN, COMMENTS, "t", "replay")] == 2
    assert [k for k in counts if k[0] == DUP] == [(DUP, COMMENTS, "duplicate.comment", "replay")]
    assert sum(r.topic == "t.clean.comments" for r in out.records) == 1


def test_a_stage_writing_state_it_does_not_own_fails_loudly(core) -> None:
    view = state_view(BY_NAME[COMMENTS], maps_for(COMMENTS))  # forgot the articles' maps
    with pytest.raises(RuntimeError, match="wrote to article_tags, which it does not own"):
        view.article_tags["a-1"] = {"t": 1}
    assert view.article_tags.get("a-1") is None and len(view.article_tags) == 0


def test_state_passed_in_is_the_only_state_touched(core) -> None:
    """The core's own maps stay untouched while a partition's batch runs against its maps."""
    before: dict[str, Any] = {f: dict(getattr(core.states, f)) for f in ("articles", "comments")}
    stage = BY_NAME[COMMENTS]
    process_batch(stage, core, state_view(stage, maps_for(COMMENTS, ARTICLES)), -1,
                  [Rec("t.raw.comments", 0, 0, b"k", comment(99))], NAMES)  # fmt: skip
    assert {f: dict(getattr(core.states, f)) for f in ("articles", "comments")} == before
    assert core.deduper.comments is core.states.comments


def test_failures_are_told_apart_by_what_can_fix_them() -> None:
    from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, ProducerFenced

    from pipeline.dedup import StateCorrupted
    from pipeline.stream.runner import BATCH, BROKER, STATE, failure_kind

    assert failure_kind(KafkaConnectionError("down")) == BROKER
    assert failure_kind(ProducerFenced()) == BROKER  # a new producer fixes it
    assert failure_kind(TimeoutError()) == BROKER
    assert failure_kind(StateCorrupted(Path("/x"), Exception("Corruption"))) == STATE
    assert failure_kind(MessageSizeTooLargeError()) == BATCH  # the record, every time
    assert failure_kind(KeyError("bug")) == BATCH


def test_the_runner_moves_each_counter_once_per_label_set_after_a_batch(core) -> None:
    from pipeline.metrics import Metrics
    from pipeline.stream.runner import StageRunner

    letters: list[tuple[str, str]] = []
    metrics = Metrics()
    runner = StageRunner(Settings(), core, metrics, lambda **_: None,
                         on_dead_letter=lambda code, s: letters.append((code, s)))  # fmt: skip

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    articles, neardup, comments = BY_NAME[ARTICLES], BY_NAME[NEARDUP], BY_NAME[COMMENTS]
    maps = maps_for(ARTICLES, COMMENTS)
    recs = [Rec("t.raw.articles", 1, 0, b"k", article(0)),
            Rec("t.raw.articles", 1, 1, b"k", article(0)),
            Rec("t.raw.articles", 1, 2, b"k", b"{not json"),
            Rec("t.raw.articles", 1, 3, b"k", b"{not json either"),
            Rec("t.raw.articles", 1, 4, b"k", b"[]")]  # fmt: skip
    out = process_batch(articles, core, state_view(articles, maps), -1, recs, NAMES)
    runner.count(out.tallies)
    assert value("newspipe_records_in_total", stream=ARTICLES, source="t", mode="live") == 2
    assert value("newspipe_records_in_total", stream=ARTICLES, source="unknown", mode="live") == 3
    assert value("newspipe_forwarded_total", stream=ARTICLES, direction="sent") == 1
    assert value("newspipe_duplicates_total", stream=ARTICLES, kind="duplicate.exact",
                 mode="live") == 1  # fmt: skip
    # each dead letter once to the log's burst counter, and to the counter by its code
    assert sorted(letters) == [("not_json", ARTICLES)] * 2 + [("not_object", ARTICLES)]
    assert value("newspipe_dead_letters_total", stream=ARTICLES, code="not_json",
                 mode="live") == 2  # fmt: skip
    # each stage a record finished, one observation each (the dead letters failed in validate)
    assert value("newspipe_stage_seconds_count", stage="validate", stream=ARTICLES) == 2
    assert value("newspipe_stage_seconds_count", stage="tag", stream=ARTICLES) == 1
    assert value("newspipe_records_out_total", stream=ARTICLES, mode="live") is None  # forwarded

    # the forwarded article ends in the near-dup stage: counted in there, out and by its tags
    forward = [Rec("t.articles.neardup", 0, 0, r.key, r.value) for r in out.records
               if r.topic == "t.articles.neardup"]  # fmt: skip
    done = process_batch(neardup, core, state_view(neardup, maps_for(NEARDUP)), -1, forward,
                         NAMES)  # fmt: skip
    runner.count(done.tallies)
    assert value("newspipe_forwarded_total", stream=ARTICLES, direction="received") == 1
    assert value("newspipe_records_in_total", stream=ARTICLES, source="t", mode="live") == 2
    assert value("newspipe_records_out_total", stream=ARTICLES, mode="live") == 1
    clean = orjson.loads(next(r.value for r in done.records if r.topic == "t.clean.articles"))
    codes = [t["code"] for t in clean["tags"] if t["level"] == 1 and not t.get("inherited")]
    assert codes and all(value("newspipe_tags_total", stream=ARTICLES, topic=c) == 1
                         for c in codes)  # fmt: skip
    assert value("newspipe_event_to_emit_seconds_count", stream=ARTICLES) == 1

    # replayed comments: their own mode label, their age from their Kafka timestamp (event time)
    replay = [(REPLAY_HEADER, b"run-1")]
    recs = [Rec("t.raw.comments", 1, i, b"k", comment(i), headers=replay) for i in range(3)]
    runner.count(process_batch(comments, core, state_view(comments, maps), -1, recs,
                               NAMES).tallies)  # fmt: skip
    assert value("newspipe_records_in_total", stream=COMMENTS, source="t", mode="replay") == 3
    assert value("newspipe_records_out_total", stream=COMMENTS, mode="replay") == 3
    assert value("newspipe_event_to_emit_seconds_count", stream=COMMENTS) == 3
    # TS is in 2026-09: every age is at least the time since, none is floored at 0
    assert value("newspipe_event_to_emit_seconds_sum", stream=COMMENTS) > 3 * 60 * 86_400
    # a Kafka timestamp ahead of this clock (producers' clocks drift) counts as no age at all
    total = value("newspipe_event_to_emit_seconds_sum", stream=COMMENTS)
    ahead = int(time.time() * 1000) + 3_600_000
    runner.count(process_batch(comments, core, state_view(comments, maps), -1,
                               [Rec("t.raw.comments", 1, 9, b"k", comment(9), ahead)],
                               NAMES).tallies)  # fmt: skip
    assert value("newspipe_event_to_emit_seconds_count", stream=COMMENTS) == 4
    assert value("newspipe_event_to_emit_seconds_sum", stream=COMMENTS) == total
