"""The pure core: one decision per record, state that forgets after the horizon."""

from __future__ import annotations

import copy
from dataclasses import replace

import orjson

from pipeline.core import CLEAN, DLQ, DUPLICATE, Core, Meta
from pipeline.settings import Settings
from pipeline.topics import ARTICLES, COMMENTS


def article(n: int, when: str) -> bytes:
    return orjson.dumps(
        {
            "schema_version": "1.0",
            "source": "t",
            "url": f"https://example.com/{n}",
            "title": f"Football club wins the league title, story {n}",
            "body": f"The striker scored in the final match of the season. Story number {n}.",
            "published_at": when,
        }
    )


def comment(n: int, when: str) -> bytes:
    return orjson.dumps(
        {
            "schema_version": "1.0",
            "source": "t",
            "article_url": "https://example.com/0",
            "source_comment_id": str(n),
            "author": f"reader{n}",
            "text": f"Comment {n}: what a match that was, a great goal to win it.",
            "posted_at": when,
        }
    )


def test_every_record_gets_exactly_one_outcome() -> None:
    core = Core()
    results = [
        core.process(ARTICLES, article(0, "2026-11-01T10:00:00Z"), Meta("raw.articles")),
        core.process(ARTICLES, article(0, "2026-11-01T10:00:00Z"), Meta("raw.articles")),
        core.process(ARTICLES, b"{not json", Meta("raw.articles", partition=0, offset=7)),
        core.process(COMMENTS, comment(1, "2026-11-01T10:01:00Z"), Meta("raw.comments")),
    ]
    assert [r.status for r in results] == [CLEAN, DUPLICATE, DLQ, CLEAN]
    assert results[1].reason == "duplicate.exact"
    assert results[2].record["error_code"] == "not_json"
    assert results[2].record["offset"] == 7


def test_comment_inherits_the_tags_of_its_article() -> None:
    core = Core()
    core.process(ARTICLES, article(0, "2026-11-01T10:00:00Z"), Meta("raw.articles"))
    res = core.process(COMMENTS, comment(1, "2026-11-01T10:01:00Z"), Meta("raw.comments"))
    inherited = [t for t in res.record["tags"] if t["inherited"]]
    assert any(t["code"] == "medtop:15000000" for t in inherited)


class CountingReads(dict):
    """A state map that counts reads and hands out a copy each time, as RocksDB does."""

    reads = 0

    def get(self, key, default=None):  # type: ignore[override]
        CountingReads.reads += 1
        value = super().get(key, default)
        return copy.deepcopy(value)


def test_a_comments_batch_reads_each_article_s_tags_once_and_tags_as_one_by_one() -> None:
    """A batch's comments share their article's tags, read from state once even when every
    read returns a new object (RocksDB), and get the same tags as comments taken one by one."""
    core = Core()
    core.process(ARTICLES, article(0, "2026-11-01T10:00:00Z"), Meta("raw.articles"))
    tags = CountingReads(core.states.article_tags)
    states = replace(core.states, article_tags=tags)
    items = [(comment(n, "2026-11-01T10:01:00Z"), Meta("raw.comments", 0, n)) for n in range(1, 6)]
    CountingReads.reads = 0
    batch = core.process_batch(COMMENTS, items, states)
    assert CountingReads.reads == 1
    alone = Core()
    alone.process(ARTICLES, article(0, "2026-11-01T10:00:00Z"), Meta("raw.articles"))
    one_by_one = [alone.process(COMMENTS, p, m) for p, m in items]
    assert [r.record["tags"] for r in batch] == [r.record["tags"] for r in one_by_one]
    assert any(t["inherited"] for t in batch[0].record["tags"])
    CountingReads.reads = 0
    core.process(COMMENTS, comment(9, "2026-11-01T10:02:00Z"), Meta("raw.comments"))
    with core.using(states):  # one record a call: read every time (the state may have moved)
        core.process(COMMENTS, comment(10, "2026-11-01T10:02:00Z"), Meta("raw.comments"))
        core.process(COMMENTS, comment(11, "2026-11-01T10:02:00Z"), Meta("raw.comments"))
    assert CountingReads.reads == 2


def test_expire_forgets_state_older_than_the_horizon_and_a_late_copy_is_new() -> None:
    settings = replace(Settings(), article_horizon_s=3600, comment_horizon_s=3600)
    core = Core(settings)
    core.process(ARTICLES, article(0, "2026-11-01T10:00:00Z"), Meta("raw.articles"))
    core.process(COMMENTS, comment(1, "2026-11-01T10:00:00Z"), Meta("raw.comments"))
    for n in range(1, 4):  # event time moves on by a day
        core.process(ARTICLES, article(n, "2026-11-02T10:00:00Z"), Meta("raw.articles"))
    before = {k: len(v) for k, v in vars(core.states).items()}
    removed = core.expire()
    after = {k: len(v) for k, v in vars(core.states).items()}
    assert removed > 0
    assert after["article_tags"] == 3 and before["article_tags"] == 4
    assert after["articles"] < before["articles"]
    late = core.process(ARTICLES, article(0, "2026-11-02T10:00:00Z"), Meta("raw.articles"))
    assert late.status == CLEAN and late.record["revision"] == 1


def test_a_bug_in_a_stage_becomes_an_internal_dead_letter_not_a_crash() -> None:
    core = Core()

    def broken(*args: object, **kwargs: object) -> list:
        raise KeyError("boom")

    core.tagger = copy.copy(core.tagger)  # Tagger.load() is shared: patch a copy
    core.tagger.tag_article = broken  # type: ignore[method-assign]
    res = core.process(ARTICLES, article(5, "2026-11-01T10:00:00Z"), Meta("raw.articles"))
    assert res.status == DLQ and res.reason == "internal"
    assert "KeyError" in res.record["error_message"]
    assert res.record["payload"]


def test_a_comment_whose_clean_record_would_not_fit_in_a_kafka_record_is_a_too_large_dead_letter():
    # 200,000 three-byte characters: a 600 KB event passes the door, but the clean record holds
    # the text twice (`text`, `own_text`), 1.2 MB, over what a Kafka record may hold
    core = Core()
    big = orjson.loads(comment(1, "2026-11-01T10:01:00Z"))
    big["text"] = "新闻" * 100_000
    res = core.process(COMMENTS, orjson.dumps(big), Meta("raw.comments", 0, 7))
    assert (res.status, res.reason) == (DLQ, "too_large")
    assert res.record["stage"] == "normalize" and res.record["offset"] == 7
    # nothing of it reached the dedup state: the same event is rejected again, not a duplicate
    again = core.process(COMMENTS, orjson.dumps(big), Meta("raw.comments", 0, 8))
    assert (again.status, again.reason) == (DLQ, "too_large")
    # a big event that does fit is clean
    big["text"] = "新闻" * 40_000
    assert core.process(COMMENTS, orjson.dumps(big), Meta("raw.comments", 0, 9)).status == CLEAN


def _html_event(published_meta: str, **fields: object) -> bytes:
    from pathlib import Path

    page = Path(__file__).parent / "fixtures" / "html" / "wordpress_comments.html"
    html = page.read_text().replace("2019-11-18 17:19:53 GMT", published_meta)
    html = html.replace('datetime="2019-11-18T17:19:53+00:00"', "")
    return orjson.dumps({"schema_version": "1.1", "source": "html", "html": html, **fields})


def test_an_extracted_date_in_any_shape_keeps_the_article() -> None:
    core = Core()
    shapes = {
        "2019-11-18 17:19:53 GMT": "2019-11-18T17:19:53Z",
        "Mon, 18 Nov 2019 17:19:53 +0000": "2019-11-18T17:19:53Z",
        "18 November 2019": "2019-11-18T00:00:00Z",
        "2019-11-18T18:19:53+01:00": "2019-11-18T17:19:53Z",
        "1574097593": "2019-11-18T17:19:53Z",
    }
    for n, (shape, expected) in enumerate(shapes.items()):
        res = core.process(ARTICLES, _html_event(shape, url=f"https://x.example/{n}"),
                           Meta("raw.articles"))  # fmt: skip
        assert res.status == CLEAN, (shape, res.record)
        assert res.record["published_at"] == expected, shape


def test_an_unreadable_extracted_date_is_a_note_not_a_dead_letter() -> None:
    res = Core().process(ARTICLES, _html_event("sometime last week"), Meta("raw.articles"))
    assert res.status == CLEAN
    assert res.record["published_at"] is None
    assert any("sometime last week" in note for note in res.record["notes"])


def test_a_date_the_producer_sent_keeps_the_strict_rule() -> None:
    event = _html_event("2019-11-18 17:19:53 GMT", published_at="2019-11-18 17:19:53 GMT")
    res = Core().process(ARTICLES, event, Meta("raw.articles"))
    assert res.status == DLQ
    assert res.record["error_code"] == "time.invalid"


def _without_times(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("processed_at", "failed_at")}


def test_a_whole_batch_gives_what_the_records_give_one_at_a_time() -> None:
    """`process_whole_batch` (offline replay, benchmarks): each article through near-dup as
    `process` does, the same statuses and records, and every stage's time on the result."""
    arts = [article(n % 3, f"2026-11-01T10:0{n}:00Z") for n in range(5)] + [b"{bad"]
    coms = [comment(n % 4, f"2026-11-01T10:1{n}:00Z") for n in range(6)]
    one, whole = Core(), Core()
    singles = [one.process(ARTICLES, p, Meta("raw.articles", 0, i)) for i, p in enumerate(arts)]
    singles += [one.process(COMMENTS, p, Meta("raw.comments", 0, i)) for i, p in enumerate(coms)]
    batch = [(p, Meta("raw.articles", 0, i)) for i, p in enumerate(arts)]
    batched = whole.process_whole_batch(ARTICLES, batch, whole.states)
    batch = [(p, Meta("raw.comments", 0, i)) for i, p in enumerate(coms)]
    batched += whole.process_whole_batch(COMMENTS, batch, whole.states)
    assert [(r.status, r.reason) for r in batched] == [(r.status, r.reason) for r in singles]
    assert [_without_times(r.record) for r in batched] == [
        _without_times(r.record) for r in singles
    ]
    clean_article = next(r for r in batched if r.stream == ARTICLES and r.status == CLEAN)
    assert {"validate", "normalize", "tag", "neardup"} <= set(clean_article.stage_seconds)
