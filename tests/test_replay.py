"""The replay tool's pure parts, without a broker: readers, filters, rate, checkpoint, safety,
the archive line format, and offline mode giving exactly what the core gives."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from pathlib import Path

import orjson
import pytest

from pipeline.replay.archive import ArchiveWriter, archive_line, date_of
from pipeline.replay.bucket import TokenBucket
from pipeline.replay.checkpoint import Checkpoint
from pipeline.replay.events import BadLine, Event
from pipeline.replay.filters import EventFilter
from pipeline.replay.safety import ReplayRefused, check_targets, protected_reason
from pipeline.replay.sources import expand_sources, parse_line, read_file
from pipeline.topics import ARTICLES, COMMENTS

COMMENT = {"schema_version": "1.0", "source": "foxnews", "article_title": "T", "text": "hi",
           "source_comment_id": "1", "posted_at": "2026-11-26T10:00:00Z"}  # fmt: skip
ARTICLE = {"schema_version": "1.0", "source": "ag-news", "source_id": "7", "title": "A title",
           "standfirst": "Some words about it."}  # fmt: skip


def archived(value: dict, offset: int = 0, topic: str = "raw.comments", ts: int = 1795687200000,
             key: bytes | None = b"a-1") -> bytes:  # fmt: skip
    line, _ = archive_line(topic, 0, offset, ts, key, [("h", b"v")], orjson.dumps(value))
    return line


# --- archive line format -------------------------------------------------------------------


def test_archive_line_keeps_json_objects_and_round_trips_the_exact_bytes():
    raw = orjson.dumps(COMMENT)
    line, event_ms = archive_line("raw.comments", 2, 41, 1795687200123, b"a-1", [("x", b"1")], raw)
    obj = orjson.loads(line)
    assert obj == {"topic": "raw.comments", "partition": 2, "offset": 41,
                   "timestamp": 1795687200123, "key": "a-1", "headers": [["x", "1"]],
                   "value": COMMENT}  # fmt: skip
    assert date_of(event_ms) == "2026-11-26"  # posted_at decides the folder
    event = parse_line(line, "f", 1)
    assert isinstance(event, Event)
    assert (event.stream, event.value, event.key, event.timestamp_ms) == (
        COMMENTS,
        raw,
        b"a-1",
        1795687200123,
    )
    assert event.headers == [("x", b"1")]


def test_archive_line_keeps_non_canonical_text_and_binary_byte_for_byte():
    spaced = b'{"source": "x",  "text": "a", "text": "b"}'  # duplicate key must survive
    binary = b"\xff\xfe\x00junk"
    for value, field in ((spaced, "value_text"), (binary, "value_b64")):
        line, _ = archive_line("raw.comments", 0, 1, 5, b"\xff", [("k", b"\xff")], value)
        obj = orjson.loads(line)
        assert field in obj and "value" not in obj
        assert obj["key"] is None and base64.b64decode(obj["key_b64"]) == b"\xff"
        event = parse_line(line, "f", 3)
        assert isinstance(event, Event)
        assert event.value == value and event.key == b"\xff" and event.headers == [("k", b"\xff")]


def test_archive_writer_partitions_by_topic_and_date_and_rotates(tmp_path: Path):
    writer = ArchiveWriter(tmp_path, max_bytes=2_000)
    for i in range(300):
        value = dict(COMMENT, source_comment_id=str(i), text=f"comment number {i} " * 5)
        line, ms = archive_line("raw.comments", 0, i, 1795687200000, b"a-1", [],
                                orjson.dumps(value))  # fmt: skip
        writer.write("raw.comments", line, ms)
        writer.flush()
    writer.close()
    parts = sorted((tmp_path / "raw.comments" / "2026-11-26").glob("part-*.jsonl.gz"))
    assert len(parts) > 1 and parts[0].name == "part-0000.jsonl.gz"
    events = [e for p in parts for e in read_file(p)]
    assert [orjson.loads(e.value)["source_comment_id"] for e in events] == [
        str(i) for i in range(300)
    ]
    # a second writer never appends to existing parts
    again = ArchiveWriter(tmp_path)
    again.write("raw.comments", archived(COMMENT), 1795687200000)
    again.close()
    assert again.files[0].name == f"part-{len(parts):04d}.jsonl.gz"


# --- readers ------------------------------------------------------------------------------


def test_reader_reports_bad_lines_with_file_line_and_reason_and_reads_the_rest(tmp_path: Path):
    path = tmp_path / "mixed.jsonl.gz"
    lines = [archived(COMMENT, 0), b"{not json\n", b"\n", b"[1, 2]\n", archived(COMMENT, 4),
             b'{"topic": "raw.comments", "partition": 0, "offset": 9, "value_b64": "@@"}\n',
             archived(ARTICLE, 6, "raw.articles")]  # fmt: skip
    with gzip.open(path, "wb") as fh:
        fh.write(b"".join(lines))
    items = list(read_file(path))
    bad = [i for i in items if isinstance(i, BadLine)]
    good = [i for i in items if isinstance(i, Event)]
    assert [(b.where, b.code) for b in bad] == [
        (f"{path}:2", "not_json"),
        (f"{path}:4", "not_object"),
        (f"{path}:6", "archive.bad_field"),
    ]
    assert [(e.position, e.stream) for e in good] == [(1, COMMENTS), (5, COMMENTS), (7, ARTICLES)]


def test_truncated_gzip_from_a_crashed_archiver_reads_every_flushed_line(tmp_path: Path):
    path = tmp_path / "part-0000.jsonl.gz"
    raw = open(path, "wb")
    gz = gzip.GzipFile(fileobj=raw, mode="wb")
    gz.write(archived(COMMENT, 0) + archived(COMMENT, 1))
    gz.flush()
    raw.close()  # no gzip trailer, as after SIGKILL
    items = list(read_file(path))
    assert [type(i).__name__ for i in items] == ["Event", "Event", "BadLine"]
    assert items[-1].code == "truncated"


def test_expand_sources_globs_folders_and_reports_what_matched_nothing(tmp_path: Path):
    (tmp_path / "a" / "2026-11-26").mkdir(parents=True)
    f1 = tmp_path / "a" / "2026-11-26" / "part-0000.jsonl.gz"
    f2 = tmp_path / "b.jsonl"
    f1.write_bytes(gzip.compress(archived(COMMENT)))
    f2.write_bytes(b"")
    (tmp_path / "a" / "notes.md").write_text("ignored")
    files, missing = expand_sources([str(tmp_path / "a"), str(tmp_path / "*.jsonl"),
                                     str(tmp_path / "nope*.jsonl")])  # fmt: skip
    assert files == [f1, f2]
    assert missing == [str(tmp_path / "nope*.jsonl")]


def test_plain_lines_guess_the_stream_and_key_by_article_id(tmp_path: Path):
    from pipeline.ingest import page_article_id

    path = tmp_path / "events.jsonl"
    path.write_bytes(orjson.dumps(ARTICLE) + b"\n" + orjson.dumps(COMMENT) + b"\n")
    art, com = read_file(path)
    assert (art.stream, com.stream) == (ARTICLES, COMMENTS)
    assert art.key == page_article_id(ARTICLE).encode()
    assert com.key == page_article_id({"source": "foxnews", "title": "T"}).encode()
    assert art.value == orjson.dumps(ARTICLE)
    forced = list(read_file(path, stream=COMMENTS))
    assert {e.stream for e in forced} == {COMMENTS}


# --- filters ------------------------------------------------------------------------------


def _event(record: dict, ts: int | None = None, stream: str = COMMENTS) -> Event:
    return Event(stream, orjson.dumps(record), None, ts, "f", 1, record)


def test_filters_use_event_time_else_the_archived_timestamp():
    f = EventFilter.from_text(since="2026-11-26T00:00:00Z", until="2026-11-27T00:00:00Z")
    assert f.keeps(_event(COMMENT))  # posted_at 2026-11-26T10:00
    assert not f.keeps(_event(dict(COMMENT, posted_at="2026-11-27T00:00:00Z")))  # until exclusive
    no_time = {k: v for k, v in COMMENT.items() if k != "posted_at"}
    assert f.keeps(_event(no_time, ts=1795687200000))  # 2026-11-26T10:00 Kafka timestamp
    assert not f.keeps(_event(no_time, ts=1795651100000))
    assert not f.keeps(_event(no_time))  # a window was asked and nothing shows the time


def test_filters_by_source_and_stream():
    assert EventFilter(source="foxnews").keeps(_event(COMMENT))
    assert not EventFilter(source="bbc").keeps(_event(COMMENT))
    assert not EventFilter(stream=ARTICLES).keeps(_event(COMMENT))
    with pytest.raises(ValueError):
        EventFilter.from_text(since="yesterday")


# --- token bucket -------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_holds_the_rate_over_time_with_a_fake_clock():
    clock = FakeClock()
    bucket = TokenBucket(rate=200, burst=10, clock=clock)
    sent = 0
    while clock.now < 110.0:  # ten simulated seconds
        wait = bucket.take()
        clock.now += wait  # the caller sleeps exactly what it is told
        sent += 1
    assert 200 * 10 <= sent <= 200 * 10 + 10 + 1


def test_token_bucket_allows_a_burst_then_asks_to_wait():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    assert [bucket.take() for _ in range(5)] == [0.0] * 5
    assert bucket.take() == pytest.approx(0.1)
    clock.now += 1.0  # idle time refills at most `burst`
    assert [bucket.take() == 0.0 for _ in range(6)] == [True] * 5 + [False]


# --- checkpoint ---------------------------------------------------------------------------


def test_checkpoint_watermark_waits_for_the_oldest_unacked_send(tmp_path: Path):
    cp = Checkpoint(tmp_path / "cp.json", "run1", every=1000)
    for pos in (1, 2, 3, 4):
        cp.sent("f", pos)
    cp.passed("f", 5)  # filtered: needs no ack
    cp.acked("f", 2)
    cp.acked("f", 3)
    assert cp.done_through("f") == 0  # 1 still in flight
    cp.acked("f", 1)
    assert cp.done_through("f") == 3
    cp.acked("f", 4)
    assert cp.done_through("f") == 5


def test_checkpoint_is_written_atomically_and_resumes(tmp_path: Path, monkeypatch):
    path = tmp_path / "cp.json"
    cp = Checkpoint(path, "run1", every=2)
    cp.sent("f", 1)
    cp.sent("f", 2)
    assert cp.acked("f", 1) is False
    assert cp.acked("f", 2) is True  # time to save
    cp.save()
    assert json.loads(path.read_text())["done"] == {"f": 2}
    assert not list(tmp_path.glob(".cp.json*"))  # no temporary left behind

    # a crash between writing the temporary and the rename leaves the old checkpoint whole
    import pipeline.replay.checkpoint as mod

    def boom(src, dst):
        raise OSError("crash before rename")

    cp.sent("f", 3)
    cp.acked("f", 3)
    monkeypatch.setattr(mod.os, "replace", boom)
    with pytest.raises(OSError):
        cp.save()
    monkeypatch.undo()
    assert json.loads(path.read_text())["done"] == {"f": 2}

    resumed = Checkpoint(path)
    assert resumed.already_done("f", 2) and not resumed.already_done("f", 3)
    assert not resumed.already_done("other", 1)


def test_a_failed_send_holds_the_watermark_so_a_resume_sends_it_again():
    cp = Checkpoint(None)
    cp.sent("f", 1)
    cp.sent("f", 2)
    cp.acked("f", 2)  # 1 failed: never acked
    assert cp.done_through("f") == 0


# --- safety -------------------------------------------------------------------------------


@pytest.mark.parametrize("topic", ["clean.articles", "p1.clean.comments", "dlq", "x.dlq",
                                   "topic.trends", "newspipe-articles-changelog",
                                   "newspipe-state.comments", "p.articles.neardup",
                                   "__consumer_offsets", "app-__assignor-__leader",
                                   "p.clean.other"])  # fmt: skip
def test_refuses_clean_and_internal_topics_unless_forced(topic: str):
    assert protected_reason(topic)
    with pytest.raises(ReplayRefused):
        check_targets([topic])
    check_targets([topic], force=True)


@pytest.mark.parametrize("topic", ["raw.articles", "p1.raw.comments", "backfill.target",
                                   "uncleaned"])  # fmt: skip
def test_raw_and_other_topics_are_allowed(topic: str):
    assert protected_reason(topic) is None
    check_targets([topic])


def test_replay_refuses_before_reading_anything(tmp_path: Path):
    from pipeline.replay.runner import ReplayOptions, replay
    from pipeline.settings import Settings

    src = tmp_path / "a.jsonl"
    src.write_bytes(orjson.dumps(COMMENT) + b"\n")
    opts = ReplayOptions(sources=[str(src)], topic="clean.comments")
    with pytest.raises(ReplayRefused):
        asyncio.run(replay(Settings(broker="kafka://127.0.0.1:1"), opts))


# --- offline mode -------------------------------------------------------------------------


def _fox_and_ag(n_articles: int = 60, n_comments: int = 300) -> list[tuple[str, dict]]:
    from devtools.datasets import ag_articles, fox_comments, replicate

    items = []
    for art in replicate(ag_articles(), n_articles, "source_id"):
        art.pop("label", None)
        items.append((ARTICLES, art))
    for com in replicate(fox_comments(), n_comments, "source_comment_id"):
        items.append((COMMENTS, com))
    return items


def _strip(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "processed_at"}


def test_offline_replay_writes_exactly_what_the_core_returns(tmp_path: Path):
    from pipeline.core import Core, Meta
    from pipeline.replay.events import key_for
    from pipeline.replay.runner import ReplayOptions, replay
    from pipeline.settings import Settings

    items = _fox_and_ag()
    items.append((COMMENTS, {"schema_version": "1.0", "source": "x", "text": 5}))  # a DLQ case
    items.append((COMMENTS, items[70][1]))  # an exact duplicate
    ts = 1795687200000
    archive = tmp_path / "archive.jsonl"
    with open(archive, "wb") as fh:
        for i, (stream, rec) in enumerate(items):
            topic = "raw.articles" if stream == ARTICLES else "raw.comments"
            line, _ = archive_line(topic, 0, i, ts + i, key_for(stream, rec), [],
                                   orjson.dumps(rec))  # fmt: skip
            fh.write(line)

    out = tmp_path / "out"
    opts = ReplayOptions(sources=[str(archive)], offline=out, tty=False)
    summary = asyncio.run(replay(Settings(), opts))
    assert summary.read == len(items) and summary.invalid_total == 0

    core = Core(Settings())
    expected: dict[str, list[dict]] = {"articles": [], "comments": [], "dlq": []}
    for i, (stream, rec) in enumerate(items):
        topic = "raw.articles" if stream == ARTICLES else "raw.comments"
        res = core.process(
            stream, orjson.dumps(rec), Meta(topic, None, None, key_for(stream, rec), [], ts + i)
        )
        if res.status == "clean":
            expected[stream].append(_strip(res.record))
        elif res.status == "dlq":
            expected["dlq"].append(res.record["error_code"])

    def lines(name: str) -> list[dict]:
        return [orjson.loads(x) for x in (out / name).read_bytes().splitlines()]

    assert [_strip(r) for r in lines("clean.articles.jsonl")] == expected["articles"]
    assert [_strip(r) for r in lines("clean.comments.jsonl")] == expected["comments"]
    assert [r["error_code"] for r in lines("dlq.jsonl")] == expected["dlq"] != []
    assert summary.outcomes["comments duplicate"] >= 1


def test_dry_run_counts_and_reports_invalid_events_with_file_and_line(tmp_path: Path):
    from pipeline.replay.runner import ReplayOptions, replay
    from pipeline.settings import Settings

    src = tmp_path / "events.jsonl"
    src.write_bytes(b"\n".join([orjson.dumps(COMMENT), b"{oops", orjson.dumps({"source": "x"}),
                                orjson.dumps(ARTICLE)]) + b"\n")  # fmt: skip
    opts = ReplayOptions(sources=[str(src)], dry_run=True, tty=False)
    summary = asyncio.run(replay(Settings(broker="kafka://127.0.0.1:1"), opts))
    assert summary.read == 4 and summary.produced == 2
    assert [b.where for b in summary.invalid_where] == [f"{src}:2", f"{src}:3"]
    assert summary.invalid["not_json"] == 1 and summary.exit_code() == 1
    assert summary.exit_code(allow_invalid=True) == 0


def test_captured_pages_replay_as_ingest_sends_them():
    from devtools.paths import SEED
    from pipeline.extract import extract_file
    from pipeline.ingest import page_events

    seed = SEED
    aid, article, comments = page_events(extract_file(seed))
    items = list(read_file(seed))
    assert all(isinstance(i, Event) for i in items)
    assert [i.stream for i in items] == [ARTICLES] + [COMMENTS] * len(comments)
    assert {i.key for i in items} == {aid.encode()}
    assert [orjson.loads(i.value) for i in items] == [article, *comments]
    assert [i.position for i in items] == list(range(1, len(comments) + 2))


def test_sources_filter_on_stream_and_time_in_one_pass(tmp_path: Path):
    from pipeline.replay.runner import ReplayOptions, replay
    from pipeline.settings import Settings

    src = tmp_path / "a.jsonl"
    old = dict(COMMENT, posted_at="2026-10-01T00:00:00Z")
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in (COMMENT, old, ARTICLE)))
    opts = ReplayOptions(sources=[str(src)], dry_run=True, tty=False,
                         event_filter=EventFilter.from_text(since="2026-11-01T00:00:00Z",
                                                            stream=COMMENTS))  # fmt: skip
    summary = asyncio.run(replay(Settings(broker="kafka://127.0.0.1:1"), opts))
    assert (summary.read, summary.produced, summary.skipped_filter) == (3, 1, 2)


def test_a_dry_run_reads_a_checkpoint_but_never_advances_it(tmp_path: Path):
    from pipeline.replay.runner import ReplayOptions, replay
    from pipeline.settings import Settings

    src = tmp_path / "a.jsonl"
    src.write_bytes(b"".join(orjson.dumps(dict(COMMENT, source_comment_id=str(i))) + b"\n"
                             for i in range(5)))  # fmt: skip
    cp = tmp_path / "cp.json"
    cp.write_text(json.dumps({"version": 1, "done": {str(src): 2}}))
    opts = ReplayOptions(sources=[str(src)], dry_run=True, resume=cp, tty=False)
    summary = asyncio.run(replay(Settings(broker="kafka://127.0.0.1:1"), opts))
    assert (summary.skipped_resume, summary.produced) == (2, 3)
    assert json.loads(cp.read_text())["done"] == {str(src): 2}


def test_stream_option_filters_an_archive_and_never_relabels_its_records(tmp_path: Path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(archived(ARTICLE, 0, "raw.articles") + archived(COMMENT, 1))
    items = list(read_file(path, stream=COMMENTS))
    assert [i.stream for i in items] == [ARTICLES, COMMENTS]
    assert [EventFilter(stream=COMMENTS).keeps(i) for i in items] == [False, True]
