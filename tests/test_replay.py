"""The replay tool's pure parts, without a broker: readers, filters, rate, checkpoint, safety,
the archive line format, and offline mode giving exactly what the core gives."""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import json
import re
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
                   "value_bytes": len(raw), "value": COMMENT}  # fmt: skip
    assert line.endswith(b',"value":' + raw + b"}\n")  # the topic's bytes, verbatim
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


def test_archive_line_keeps_non_canonical_json_text_and_binary_byte_for_byte():
    spaced = b'{"source": "x",  "text": "a", "text": "b"}'  # duplicate key must survive
    array = b"[1, 2]"  # JSON but not an event: replayed as it was, the worker rejects it
    multiline = b'{\n  "source": "x",\n  "text": "a"\n}'  # cannot sit on one line raw
    cut = b'{"text": "cut off'
    binary = b"\xff\xfe\x00junk"
    cases = ((spaced, "value_bytes"), (array, "value_bytes"), (multiline, "value_text"),
             (cut, "value_text"), (binary, "value_b64"))  # fmt: skip
    for value, field in cases:
        line, _ = archive_line("raw.comments", 0, 1, 5, b"\xff", [("k", b"\xff")], value)
        assert line.count(b"\n") == 1 and line.endswith(b"\n")
        obj = orjson.loads(line)
        assert field in obj
        assert obj["key"] is None and base64.b64decode(obj["key_b64"]) == b"\xff"
        event = parse_line(line, "f", 3)
        assert isinstance(event, Event), (value, event)
        assert event.value == value and event.key == b"\xff" and event.headers == [("k", b"\xff")]


def test_raw_values_make_the_archive_no_larger_than_its_input_plus_metadata():
    pretty = orjson.dumps(COMMENT, option=orjson.OPT_INDENT_2).replace(b"\n", b" ")
    line, _ = archive_line("raw.comments", 0, 1, 5, b"a-1", [], pretty)
    meta = orjson.dumps({"topic": "raw.comments", "partition": 0, "offset": 1, "timestamp": 5,
                         "key": "a-1", "headers": [], "value_bytes": len(pretty)})  # fmt: skip
    # no escaping: exactly the metadata, the value tag and the value
    assert len(line) == len(meta) + len(b',"value":') + len(pretty) + 1


def test_archives_written_before_raw_values_still_replay_byte_for_byte(tmp_path: Path):
    """Old lines: a re-serializable object in `value`, else `value_text` or `value_b64`."""
    spaced = b'{"source": "x",  "posted_at": "2026-11-26T10:00:00Z", "text": "a"}'
    old = [
        {"topic": "raw.comments", "partition": 0, "offset": 0, "timestamp": 5, "key": "a-1",
         "headers": [["h", "v"]], "value": COMMENT},
        {"topic": "raw.comments", "partition": 0, "offset": 1, "timestamp": 5, "key": "a-1",
         "headers": [], "value_text": spaced.decode()},
        {"topic": "raw.comments", "partition": 0, "offset": 2, "timestamp": 5, "key": None,
         "key_b64": base64.b64encode(b"\xff").decode(), "headers": [["k", None, "/w=="]],
         "value_b64": base64.b64encode(b"\xff\x00").decode()},
    ]  # fmt: skip
    path = tmp_path / "part-0000.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(orjson.dumps(o) + b"\n" for o in old)))
    first, second, third = read_file(path)
    assert (first.value, first.key, first.headers) == (orjson.dumps(COMMENT), b"a-1", [("h", b"v")])
    assert second.value == spaced
    # the text is parsed for filters: its posted_at decides, as it decided the date folder
    assert second.event_time_ms() == 1795687200000
    assert (third.value, third.key, third.headers) == (b"\xff\x00", b"\xff", [("k", b"\xff")])


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
    for dry_run in (False, True):  # a plan of a refused replay is refused too
        opts = ReplayOptions(sources=[str(src)], topic="clean.comments", dry_run=dry_run)
        with pytest.raises(ReplayRefused, match=r"refusing to replay into clean\.comments"):
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
    assert summary.read == 4 and summary.would_produce == 2 and summary.produced == 0
    assert summary.as_dict()["produced"] == 0 and summary.as_dict()["would_produce"] == 2
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
    assert (summary.read, summary.would_produce, summary.skipped_filter) == (3, 1, 2)


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
    assert (summary.skipped_resume, summary.would_produce) == (2, 3)
    assert json.loads(cp.read_text())["done"] == {str(src): 2}


def test_stream_option_filters_an_archive_and_never_relabels_its_records(tmp_path: Path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(archived(ARTICLE, 0, "raw.articles") + archived(COMMENT, 1))
    items = list(read_file(path, stream=COMMENTS))
    assert [i.stream for i in items] == [ARTICLES, COMMENTS]
    assert [EventFilter(stream=COMMENTS).keeps(i) for i in items] == [False, True]


# --- resume safety: a checkpoint belongs to one backfill ------------------------------------


def _comments_file(path: Path, n: int = 6) -> Path:
    days = ["2026-11-24", "2026-11-25", "2026-11-26"]
    rows = [dict(COMMENT, source_comment_id=str(i), posted_at=f"{days[i % 3]}T10:00:00Z")
            for i in range(n)]  # fmt: skip
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _offline(src: str, out: Path, **kw) -> object:
    from pipeline.replay.runner import ReplayOptions, replay
    from pipeline.settings import Settings

    opts = ReplayOptions(sources=[src], offline=out, tty=False, **kw)
    return asyncio.run(replay(Settings(), opts))


def test_a_checkpoint_reused_without_its_window_is_refused_not_taken_as_done(tmp_path: Path):
    from pipeline.replay.checkpoint import Mismatch

    src = _comments_file(tmp_path / "c.jsonl")
    cp = tmp_path / "cp.json"
    window = EventFilter.from_text(since="2026-11-26T00:00:00Z", until="2026-11-27T00:00:00Z")
    first = _offline(str(src), tmp_path / "o1", resume=cp, event_filter=window)
    assert (first.produced, first.skipped_filter) == (2, 4)
    saved = json.loads(cp.read_text())
    assert saved["covers"]["since"] == "2026-11-26T00:00:00Z"
    assert saved["covers"]["sources"] == [str(src.absolute())]
    with pytest.raises(Mismatch) as refused:
        _offline(str(src), tmp_path / "o1", resume=cp)
    assert ("(since: checkpoint 2026-11-26T00:00:00Z, now none; until: checkpoint "
            "2026-11-27T00:00:00Z, now none)") in str(refused.value)  # fmt: skip
    assert json.loads(cp.read_text()) == saved  # untouched
    # an explicit --new-run starts over: everything is sent, the checkpoint is replaced
    again = _offline(str(src), tmp_path / "o3", resume=cp, new_run=True)
    assert (again.produced, again.skipped_resume) == (6, 0)
    assert json.loads(cp.read_text())["covers"]["since"] is None
    assert json.loads(cp.read_text())["run_id"] == again.run_id != first.run_id


@pytest.mark.parametrize("change", [
    {"event_filter": EventFilter(source="bbc")},
    {"event_filter": EventFilter(stream=ARTICLES)},
    {"validate": True},
    {"run_id": "another"},
])  # fmt: skip
def test_resuming_with_other_filters_or_run_id_is_refused(tmp_path: Path, change: dict):
    from pipeline.replay.checkpoint import Mismatch

    src = _comments_file(tmp_path / "c.jsonl")
    cp = tmp_path / "cp.json"
    _offline(str(src), tmp_path / "o1", resume=cp)
    with pytest.raises(Mismatch, match="belongs to another backfill"):
        _offline(str(src), tmp_path / "o1", resume=cp, **change)


def test_resuming_by_a_relative_path_matches_and_keeps_the_run_id(tmp_path: Path, monkeypatch):
    src = _comments_file(tmp_path / "c.jsonl")
    cp = tmp_path / "cp.json"
    first = _offline(str(src), tmp_path / "o", resume=cp)
    assert first.produced == 6
    monkeypatch.chdir(tmp_path)
    second = _offline("c.jsonl", tmp_path / "o", resume=cp)
    assert (second.skipped_resume, second.produced, second.read) == (6, 0, 0)
    assert second.run_id == first.run_id  # one backfill, one run id


def test_a_version_1_checkpoint_resumes_with_its_origins_made_absolute(tmp_path: Path, monkeypatch):
    src = _comments_file(tmp_path / "c.jsonl")
    cp = tmp_path / "cp.json"
    cp.write_text(json.dumps({"version": 1, "run_id": "old", "done": {"c.jsonl": 4}}))
    monkeypatch.chdir(tmp_path)
    summary = _offline(str(src), tmp_path / "o", resume=cp)
    assert (summary.skipped_resume, summary.produced, summary.run_id) == (4, 2, "old")
    assert any("old checkpoint" in w for w in summary.warnings)


# --- flags that do not apply, empty windows, risky sources ---------------------------------


@pytest.mark.parametrize("kw, message", [
    ({"from_ms": 1}, "--from/--to select a Kafka-timestamp range of --from-topic"),
    ({"to_ms": 1}, "do not apply to files"),
    ({"event_filter": EventFilter.from_text(since="2026-11-27T00:00:00Z",
                                            until="2026-11-26T00:00:00Z")},
     "empty time window: --since 2026-11-27T00:00:00Z is not before --until"),
    ({"event_filter": EventFilter.from_text(since="2026-11-27T00:00:00Z",
                                            until="2026-11-27T00:00:00Z")}, "empty time window"),
    ({"from_topic": "raw.comments", "sources": [], "from_ms": 10, "to_ms": 5},
     "--from 1970-01-01T00:00:00Z is not before --to"),
    ({"from_topic": "p.clean.comments", "sources": []}, "refusing to read --from-topic"),
    ({"offline": Path("out"), "topic": "x"}, "--to-topic does not apply with --offline"),
    ({"offline": Path("out"), "dry_run": True}, "choose one"),
    ({"new_run": True}, "--new-run starts a checkpoint over: it needs --resume"),
    ({"rate": 0.0}, "--rate must be a positive number"),
    ({"sources": []}, "give SOURCES, --from-topic or --from-dlq"),
])  # fmt: skip
def test_flags_that_do_not_apply_and_empty_windows_are_refused(tmp_path: Path, kw, message):
    from pipeline.replay.runner import ReplayOptions, replay
    from pipeline.settings import Settings

    src = _comments_file(tmp_path / "c.jsonl")
    opts = ReplayOptions(**{"sources": [str(src)], "dry_run": True, "tty": False, **kw})
    with pytest.raises(ReplayRefused, match=re.escape(message)):
        asyncio.run(replay(Settings(broker="kafka://127.0.0.1:1"), opts))


def test_the_cli_refuses_from_on_files_with_exit_2_and_one_line(tmp_path: Path, capsys):
    from pipeline.replay.cli import main

    src = _comments_file(tmp_path / "c.jsonl")
    code = main(["replay", str(src), "--from", "2026-11-01T00:00:00Z", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("newspipe replay: error: --from/--to select")
    assert len(err.strip().splitlines()) == 1


def test_a_clean_source_topic_is_allowed_only_with_force():
    from pipeline.replay.safety import check_source_topic

    with pytest.raises(ReplayRefused, match="not raw events"):
        check_source_topic("prod.clean.articles")
    check_source_topic("prod.clean.articles", force=True)
    check_source_topic("old.raw.articles")


# --- what the broker says about the targets -------------------------------------------------


def test_a_missing_target_is_an_error_with_the_close_names():
    from pipeline.replay.probe import TargetInfo, target_findings

    info = TargetInfo(topics={"prod.raw.comments", "prod.raw.articles", "prod.clean.comments"})
    errors, warnings = target_findings(["raw.comments"], info, {"prod.raw.comments"})
    assert len(errors) == 1 and warnings == []
    assert "target topic raw.comments does not exist" in errors[0]
    assert "did you mean prod.raw.comments" in errors[0]
    # with the deployment's prefix known, that one is named, whatever else is on the cluster
    info.topics |= {"a.raw.comments", "b.raw.comments", "c.raw.comments"}
    errors, _ = target_findings(["raw.comments"], info, set(), prefix="prod.")
    assert "(did you mean prod.raw.comments? NEWSPIPE_TOPIC_PREFIX is prod.)" in errors[0]


def test_raw_targets_no_consumer_group_reads_are_warned_about():
    from pipeline.replay.probe import TargetInfo, target_findings

    raw = {"raw.articles", "raw.comments"}
    info = TargetInfo(topics={"raw.articles", "raw.comments", "other"},
                      readers={"raw.articles": ["newspipe"]})  # fmt: skip
    errors, warnings = target_findings(["raw.articles", "raw.comments", "other"], info, raw)
    assert errors == []
    assert warnings == ["no consumer group reads raw.comments: the replayed records will wait in "
                        "Kafka (up to its retention) until a worker starts"]  # fmt: skip
    info.readers_unknown = "GroupAuthorizationFailedError"
    _, warnings = target_findings(["raw.articles"], info, raw)
    assert warnings == ["could not tell whether a consumer group reads raw.articles "
                        "(GroupAuthorizationFailedError)"]  # fmt: skip


# --- the plan -------------------------------------------------------------------------------


def test_a_dry_run_is_a_plan_that_does_not_sleep_for_the_rate(tmp_path: Path):
    from pipeline.replay.runner import ReplayOptions, replay
    from pipeline.settings import Settings

    src = tmp_path / "mixed.jsonl"
    rows = [dict(COMMENT, source_comment_id=str(i), posted_at=f"2026-11-26T{i % 3:02d}:30:00Z")
            for i in range(30)]  # fmt: skip
    rows += [dict(ARTICLE, source_id=str(i), published_at="2026-11-25T23:00:00Z")
             for i in range(10)]  # fmt: skip
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    opts = ReplayOptions(sources=[str(src)], dry_run=True, rate=2, tty=False)
    summary = asyncio.run(replay(Settings(broker="kafka://127.0.0.1:1"), opts))
    assert summary.seconds < 10  # at --rate 2 a sleeping dry run would take 20 s
    plan = summary.as_dict()["plan"]
    assert plan["would_produce"] == 40 and plan["estimated_seconds"] == 20.0
    assert plan["targets"] == ["raw.articles", "raw.comments"]
    assert plan["by_stream"] == {"articles": 10, "comments": 30}
    assert plan["by_target"] == {"raw.articles": 10, "raw.comments": 30}
    assert plan["by_hour"] == {"2026-11-25T23:00Z": 10, "2026-11-26T00:00Z": 10,
                               "2026-11-26T01:00Z": 10, "2026-11-26T02:00Z": 10}  # fmt: skip
    assert plan["targets_checked"].startswith("targets NOT checked: broker 127.0.0.1:1")
    out = io.StringIO()
    summary.render(out)
    text = out.getvalue()
    assert "would produce 40 events" in text and "into raw.comments: 30" in text
    assert "estimated duration at --rate 2/s: 0:20" in text


def test_a_plan_over_many_days_counts_per_day():
    from pipeline.replay.plan import Plan

    plan = Plan(targets=["t"])
    for day in (1, 1, 2, 5):
        plan.add(COMMENTS, "t", 1795651200000 + day * 86_400_000)
    plan.add(COMMENTS, "t", None)
    unit, counts = plan.by_time()
    assert unit == "day" and counts == {"2026-11-27": 2, "2026-11-28": 1, "2026-12-01": 1}
    assert plan.as_dict()["undated"] == 1 and plan.estimated_seconds() is None


# --- progress and summary -------------------------------------------------------------------


def test_the_progress_line_labels_every_figure_and_rates_what_was_produced():
    from pipeline.replay.report import Summary, progress_line, progress_text

    s = Summary(mode="kafka", run_id="r1", read=6841, produced=3952, skipped_filter=2889,
                started=100.0, finished=101.0)  # fmt: skip
    line = progress_line(s, done=25.0, total=100.0)
    assert line == ("replay r1: 25.0% of input bytes | read 6,841 | produced 3,952 | "
                    "produced rate 3,952/s | filtered 2,889 | elapsed 0:01 | ETA 0:03")  # fmt: skip
    assert progress_text(s, 25.0, 100.0) == (
        "produced 3,952 | 3,952/s produced | ETA 0:03 | elapsed 0:01 | read 6,841"
    )
    offline = Summary(mode="offline", run_id="r1", read=10, produced=10, started=0.0, finished=2.0)
    assert progress_text(offline, 1.0, None).startswith("processed 10 | 5/s processed | ETA -")


def test_an_interrupted_summary_prints_the_checkpoint_and_the_command_that_resumes(
    tmp_path: Path, monkeypatch
):
    from pipeline.replay.cli import build_parser, resume_command
    from pipeline.replay.report import Summary

    monkeypatch.chdir(tmp_path)
    argv = ["replay", "a.jsonl", "--rate", "5000", "--resume", "cp.json", "--new-run"]
    args = build_parser().parse_args(argv)
    command = resume_command(argv, args)
    assert command == (f"newspipe replay {tmp_path / 'a.jsonl'} --rate 5000 "
                       f"--resume {tmp_path / 'cp.json'}")  # fmt: skip
    s = Summary(mode="kafka", run_id="r1", produced=10, interrupted=True,
                checkpoint=str(tmp_path / "cp.json"), resume_command=command)  # fmt: skip
    out = io.StringIO()
    s.render(out)
    assert f"checkpoint: {tmp_path / 'cp.json'} (run id r1)" in out.getvalue()
    assert f"resume with: {command}" in out.getvalue()
    bare = Summary(mode="kafka", run_id="r1", interrupted=True)
    out = io.StringIO()
    bare.render(out)
    assert "no checkpoint was kept (no --resume)" in out.getvalue()


def test_a_summary_into_the_raw_topics_points_at_the_duplicate_counters():
    from pipeline.replay.report import Summary

    out = io.StringIO()
    Summary(mode="kafka", run_id="r", produced=5, into_raw=True).render(out)
    assert 'newspipe_duplicates_total{mode="replay"}' in " ".join(out.getvalue().split())


def test_files_a_folder_scan_does_not_read_are_listed_for_the_summary(tmp_path: Path):
    from pipeline.replay.sources import passed_over

    (tmp_path / "a" / "_manifests").mkdir(parents=True)
    (tmp_path / "a" / "part-0000.jsonl").write_bytes(archived(COMMENT))
    (tmp_path / "a" / "photo.bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "a" / "_manifests" / "run-1.json").write_text("{}")
    assert passed_over([str(tmp_path / "a")]) == [tmp_path / "a" / "photo.bin"]


@pytest.mark.parametrize("rate", [0.0, -5.0, float("nan"), float("inf")])
def test_a_rate_that_is_not_a_positive_number_is_refused(rate: float):
    from pipeline.replay.safety import ReplayRefused, check_flags

    with pytest.raises(ReplayRefused, match="--rate must be a positive number"):
        check_flags(has_files=True, from_topic=None, from_ms=None, to_ms=None, since_ms=None,
                    until_ms=None, topic=None, offline=False, dry_run=True, resume=False,
                    new_run=False, rate=rate)  # fmt: skip


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"[]", "is not a replay checkpoint"), (b'{"bad', "cannot be read"),
     (b"\xff\xfe\x00", "cannot be read"), (b'{"version": 2, "done": []}', "is not a replay")],
)  # fmt: skip
def test_a_resume_file_that_is_no_checkpoint_is_named_with_what_is_wrong(
    tmp_path: Path, content: bytes, says: str
):
    from pipeline.replay.checkpoint import Checkpoint, CheckpointError

    path = tmp_path / "ck.json"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        Checkpoint(path)
    assert str(path) in str(err.value) and says in str(err.value)
