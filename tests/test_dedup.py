"""Dedup rules as specifications: redelivery, revisions, syndicated copies, double posts, spam
clusters, horizons, and state backends (dict and rocksdict)."""

from __future__ import annotations

import gc
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from newspipe_native import stale_entries

from devtools.datasets import fox_comments
from devtools.neardup_eval import build_articles, follow_up, load_items, wire_copy
from devtools.samples import clean_article, clean_comment
from pipeline.dedup import (
    DUPLICATE_COMMENT,
    DUPLICATE_EXACT,
    DUPLICATE_NEAR,
    NEAR_DUPLICATE,
    NEW,
    REVISION,
    SPAM_SUSPECT,
    Deduper,
    DictState,
    RocksState,
)
from pipeline.dedup.state import entry_time, expire_before, open_rocks, raw_entry_time
from pipeline.settings import Settings

SETTINGS = Settings(near_dup_threshold=0.3)
DAY = 24 * 3600

BODY = (
    "The city council voted on Tuesday to close the old harbour bridge for repairs.\n\n"
    "Engineers found cracks in two of the steel supports during an inspection last month.\n\n"
    "Traffic will be diverted through the tunnel for at least six weeks, officials said."
)


@pytest.fixture(scope="module")
def stories() -> list[Any]:
    """Fake articles of six real AG News items each (see neardup_eval for why)."""
    return build_articles(load_items(), random.Random(7), 6)


def as_record(aid: str, doc: Any, offset_s: float = 0.0) -> dict[str, Any]:
    return clean_article(aid, doc.title, "\n\n".join(doc.paragraphs), offset_s=offset_s)


def comment(cid: str, aid: str, author: str | None, text: str, offset_s: float = 0.0) -> dict:
    raw = {"source": "test", "article_id": aid, "source_comment_id": cid, "author": author,
           "text": text}  # fmt: skip
    return clean_comment(raw, offset_s=offset_s)


SPAM = "Make 500 dollars a day working from home, click my profile now"


# -- articles ---------------------------------------------------------------------------------
def test_first_article_is_new_with_revision_one():
    out = Deduper(SETTINGS).check_article(clean_article("a1", "Bridge closes", BODY))
    assert (out.kind, out.emit) == (NEW, True)
    rec = out.record
    assert rec["revision"] == 1
    assert rec["previous_content_hash"] is None
    assert rec["duplicate_of"] is None and rec["cluster_id"] is None


def test_exact_redelivery_is_dropped():
    dd = Deduper(SETTINGS)
    dd.check_article(clean_article("a1", "Bridge closes", BODY))
    out = dd.check_article(clean_article("a1", "Bridge closes", BODY, offset_s=60))
    assert (out.kind, out.emit) == (DUPLICATE_EXACT, False)


def test_revision_increments_and_records_previous_hash():
    dd = Deduper(SETTINGS)
    first = dd.check_article(clean_article("a1", "Bridge closes", BODY)).record
    edited = clean_article("a1", "Bridge closes for six weeks", BODY + " More to follow.")
    out = dd.check_article(edited)
    assert (out.kind, out.emit) == (REVISION, True)
    assert out.record["revision"] == 2
    assert out.record["previous_content_hash"] == first["content_hash"]
    third = dd.check_article(clean_article("a1", "Bridge closed", BODY, offset_s=5))
    assert third.record["revision"] == 3
    assert third.record["previous_content_hash"] == edited["content_hash"]


def test_whitespace_only_change_is_not_a_revision():
    dd = Deduper(SETTINGS)
    dd.check_article(clean_article("a1", "Bridge closes", BODY))
    spaced = clean_article("a1", "Bridge   closes ", BODY.replace(" ", "  "))
    assert spaced["body"] != BODY  # the text differs, normalization made the hash equal
    out = dd.check_article(spaced)
    assert (out.kind, out.emit) == (DUPLICATE_EXACT, False)


def test_older_revision_redelivered_is_a_duplicate_not_a_new_revision():
    dd = Deduper(SETTINGS)
    a = clean_article("a1", "Bridge closes", BODY)
    b = clean_article("a1", "Bridge closes", BODY + " Update.")
    assert dd.check_article(dict(a)).kind == NEW
    assert dd.check_article(dict(b)).kind == REVISION
    out = dd.check_article(dict(a))
    assert (out.kind, out.emit) == (DUPLICATE_EXACT, False)
    assert dd.check_article(clean_article("a1", "Bridge", BODY)).record["revision"] == 3


def test_syndicated_copy_is_flagged_with_duplicate_of_and_cluster(stories):
    dd = Deduper(SETTINGS)
    rng = random.Random(1)
    titles = [s.title for s in stories]
    vocab = sorted({w for s in stories[:50] for w in s.text().split()})
    assert dd.check_article(as_record("orig", stories[0])).kind == NEW
    copy = wire_copy(stories[0], rng, titles, vocab)
    out = dd.check_article(as_record("copy", copy, offset_s=600))
    assert (out.kind, out.emit) == (NEAR_DUPLICATE, True)
    assert out.record["duplicate_of"] == "orig"
    assert out.record["cluster_id"] == "orig"
    assert out.similarity is not None and out.similarity >= SETTINGS.near_dup_threshold


def _follow_up(stories: list[Any], n: int, seed: int) -> Any:
    rng = random.Random(seed)
    titles = [s.title for s in stories]
    vocab = sorted({w for s in stories[:50] for w in s.text().split()})
    donors = [s for s in stories if s.label == stories[n].label and s is not stories[n]][:3]
    return follow_up(stories[n], rng, titles, donors, vocab)


def test_a_follow_up_of_the_same_story_is_related_not_a_copy(stories):
    linked = 0
    for seed in range(20):
        dd = Deduper(SETTINGS)
        assert dd.check_article(as_record("orig", stories[5])).kind == NEW
        out = dd.check_article(as_record("next", _follow_up(stories, 5, seed), offset_s=3600))
        assert out.emit and out.kind == NEW, seed
        assert out.record["duplicate_of"] is None and out.record["cluster_id"] is None, seed
        if out.record["related_to"] is not None:
            assert (out.record["related_to"], out.record["story_id"]) == ("orig", "orig")
            linked += 1
    assert linked >= 15  # a follow-up with little text left in common may go unlinked


def test_a_copy_and_a_follow_up_share_the_story_of_the_first_article(stories):
    rng = random.Random(3)
    titles = [s.title for s in stories]
    vocab = sorted({w for s in stories[:50] for w in s.text().split()})
    linked = 0
    for seed in range(10):
        dd = Deduper(SETTINGS)
        first = dd.check_article(as_record("orig", stories[8])).record
        assert first["story_id"] is None and first["related_to"] is None
        copy = wire_copy(stories[8], rng, titles, vocab)
        out = dd.check_article(as_record("copy", copy, 60)).record
        assert out["duplicate_of"] == "orig" and out["story_id"] == "orig"
        assert out["related_to"] is None
        later = dd.check_article(as_record("later", _follow_up(stories, 8, seed), 7200)).record
        assert later["duplicate_of"] is None
        if later["related_to"] is not None:
            assert later["related_to"] in {"orig", "copy"} and later["story_id"] == "orig"
            linked += 1
    assert linked >= 7


def test_an_indexed_article_without_an_opening_is_judged_on_jaccard_alone(stories):
    # state written before 1.1 has no opening in its `g:` entry: a copy is still found
    dd = Deduper(SETTINGS)
    rng = random.Random(5)
    titles = [s.title for s in stories]
    vocab = sorted({w for s in stories[:50] for w in s.text().split()})
    dd.check_article(as_record("old", stories[11]))
    dd.index["g:old"] = dd.index["g:old"][:5]
    out = dd.check_article(as_record("copy", wire_copy(stories[11], rng, titles, vocab), 60))
    assert out.record["duplicate_of"] == "old" and out.record["story_id"] == "old"


def test_a_revision_keeps_its_story_links(stories):
    dd = Deduper(SETTINGS)
    dd.check_article(as_record("orig", stories[5]))
    later = _follow_up(stories, 5, 1)
    first = dd.check_article(as_record("next", later, 600)).record
    assert first["related_to"] == "orig"
    later.paragraphs.append("A paragraph added in an update of the follow-up.")
    out = dd.check_article(as_record("next", later, 900))
    assert out.kind == REVISION
    assert (out.record["related_to"], out.record["story_id"]) == ("orig", "orig")


def test_copy_of_a_copy_joins_the_first_articles_cluster(stories):
    dd = Deduper(SETTINGS)
    rng = random.Random(2)
    titles = [s.title for s in stories]
    vocab = sorted({w for s in stories[:50] for w in s.text().split()})
    copy1 = wire_copy(stories[3], rng, titles, vocab)
    copy2 = wire_copy(copy1, rng, titles, vocab)
    dd.check_article(as_record("orig", stories[3]))
    assert dd.check_article(as_record("copy1", copy1)).record["cluster_id"] == "orig"
    out = dd.check_article(as_record("copy2", copy2))
    assert out.kind == NEAR_DUPLICATE
    assert out.record["duplicate_of"] in {"orig", "copy1"}
    assert out.record["cluster_id"] == "orig"


def test_syndicated_copy_is_dropped_when_setting_says_so(stories):
    dd = Deduper(replace(SETTINGS, drop_near_duplicates=True))
    dd.check_article(as_record("orig", stories[1]))
    out = dd.check_article(as_record("copy", stories[1]))
    assert (out.kind, out.emit) == (DUPLICATE_NEAR, False)
    assert out.duplicate_of == "orig"
    again = dd.check_article(as_record("copy", stories[1]))
    assert (again.kind, again.emit) == (DUPLICATE_EXACT, False)


def test_different_story_on_same_topic_is_not_flagged(stories):
    dd = Deduper(SETTINGS)
    same_class = [s for s in stories if s.label == stories[0].label][:40]
    outs = [dd.check_article(as_record(f"s{i}", s)) for i, s in enumerate(same_class)]
    assert [o.kind for o in outs] == [NEW] * len(same_class)


def test_revision_keeps_its_cluster_and_is_not_rejudged(stories):
    dd = Deduper(SETTINGS)
    dd.check_article(as_record("orig", stories[2]))
    dd.check_article(as_record("copy", stories[2]))
    revised = as_record("copy", stories[2])
    revised["body"] += "\n\nCorrection: an earlier version misstated the date."
    revised["content_hash"] = "0" * 16
    out = dd.check_article(revised)
    assert out.kind == REVISION
    assert (out.record["duplicate_of"], out.record["cluster_id"]) == ("orig", "orig")


def test_split_stages_decide_like_the_single_call(stories):
    """The recommended deployment: exact check on the article partitions, near-dup on one."""
    exact_stage = Deduper(SETTINGS, articles=DictState())
    near_stage = Deduper(SETTINGS, index=DictState())
    kinds = []
    for aid, doc in [("orig", stories[5]), ("copy", stories[5]), ("copy", stories[5])]:
        rec = as_record(aid, doc)
        out = exact_stage.check_article_exact(rec)
        if out.emit:
            out = near_stage.check_near_duplicate(rec, out)
        kinds.append(out.kind)
    assert kinds == [NEW, NEAR_DUPLICATE, DUPLICATE_EXACT]
    assert exact_stage.size()["index"] == 0 and near_stage.size()["articles"] == 0


def test_a_syndicated_copy_after_the_horizon_is_new(stories):
    dd = Deduper(replace(SETTINGS, article_horizon_s=DAY))
    dd.check_article(as_record("orig", stories[6]))
    out = dd.check_article(as_record("copy", stories[6], offset_s=2 * DAY))
    assert (out.kind, out.record["duplicate_of"]) == (NEW, None)


# -- comments ---------------------------------------------------------------------------------
def test_comment_redelivery_is_dropped():
    dd = Deduper(SETTINGS)
    c = comment("1", "a1", "ann", "I think the bridge should have been fixed years ago")
    assert dd.check_comment(dict(c)).kind == NEW
    out = dd.check_comment(dict(c))
    assert (out.kind, out.emit) == (DUPLICATE_EXACT, False)


def test_comment_edit_is_a_revision():
    dd = Deduper(SETTINGS)
    dd.check_comment(comment("1", "a1", "ann", "I think the bridge should have been fixed"))
    out = dd.check_comment(comment("1", "a1", "ann", "I think the bridge should be fixed now"))
    assert (out.kind, out.emit) == (REVISION, True)


def test_comment_double_post_is_dropped():
    dd = Deduper(SETTINGS)
    text = "I think the bridge should have been fixed years ago"
    dd.check_comment(comment("1", "a1", "ann", text))
    out = dd.check_comment(comment("2", "a1", "ann", text, offset_s=3))
    assert (out.kind, out.emit) == (DUPLICATE_COMMENT, False)
    assert out.duplicate_of == comment("1", "a1", "ann", text)["comment_id"]


def test_same_text_by_several_authors_is_flagged_spam_with_cluster_size():
    dd = Deduper(SETTINGS)
    first = dd.check_comment(comment("1", "a1", "bot1", SPAM))
    assert (first.kind, first.record["spam_suspect"], first.record["spam_cluster_size"]) == (
        NEW, False, 1)  # fmt: skip
    sizes = []
    for i, author in enumerate(["bot2", "bot3", "bot4"], start=2):
        out = dd.check_comment(comment(str(i), "a1", author, SPAM))
        assert (out.kind, out.emit, out.record["spam_suspect"]) == (SPAM_SUSPECT, True, True)
        sizes.append(out.record["spam_cluster_size"])
    assert sizes == [2, 3, 4]


def test_same_text_by_one_author_across_articles_is_flagged_spam():
    dd = Deduper(SETTINGS)
    dd.check_comment(comment("1", "a1", "bot", SPAM))
    out = dd.check_comment(comment("1", "a2", "bot", SPAM))
    assert out.kind == SPAM_SUSPECT and out.record["spam_cluster_size"] == 2


def test_double_post_does_not_grow_the_spam_cluster():
    dd = Deduper(SETTINGS)
    dd.check_comment(comment("1", "a1", "bot", SPAM))
    dd.check_comment(comment("2", "a1", "bot", SPAM))
    out = dd.check_comment(comment("3", "a1", "other", SPAM))
    assert out.record["spam_cluster_size"] == 2


@pytest.mark.parametrize("text", ["lol", "+1", "so true", "This. Exactly this."])
def test_short_generic_comments_never_form_spam_clusters_or_double_posts(text):
    dd = Deduper(SETTINGS)
    outs = [dd.check_comment(comment(str(i), f"a{i % 3}", f"user{i % 2}", text))
            for i in range(10)]  # fmt: skip
    assert all(o.emit and o.kind == NEW for o in outs)
    assert all(o.record["spam_suspect"] is False for o in outs)
    assert all(o.record["spam_cluster_size"] == 0 for o in outs)


# -- horizons ---------------------------------------------------------------------------------
def test_entries_expire_after_the_horizon_and_a_late_copy_is_new():
    s = replace(SETTINGS, article_horizon_s=DAY, comment_horizon_s=DAY)
    dd = Deduper(s)
    dd.check_article(clean_article("a1", "Bridge closes", BODY))
    c = comment("1", "a1", "ann", "I think the bridge should have been fixed years ago")
    dd.check_comment(dict(c))
    # a later, unrelated event moves the event-time watermark past the horizon
    dd.check_article(clean_article("a2", "Something else", "Entirely different.", offset_s=2 * DAY))
    removed = dd.expire(dd.watermark)
    assert "a:a1" in removed and "c:" + c["comment_id"] in removed
    assert not any(k == "a:a2" for k in removed)
    late = dd.check_article(clean_article("a1", "Bridge closes", BODY, offset_s=2 * DAY))
    assert (late.kind, late.record["revision"]) == (NEW, 1)
    assert dd.check_comment(comment("1", "a1", "ann", c["text"], offset_s=2 * DAY)).kind == NEW


def test_expired_entries_are_absent_even_before_the_sweep():
    dd = Deduper(replace(SETTINGS, article_horizon_s=DAY))
    dd.check_article(clean_article("a1", "Bridge closes", BODY))
    dd.check_article(clean_article("a2", "Other", "Different text here.", offset_s=3 * DAY))
    late = dd.check_article(clean_article("a1", "Bridge closes", BODY, offset_s=3 * DAY))
    assert late.kind == NEW


def test_redelivery_within_the_horizon_keeps_the_entry_alive():
    dd = Deduper(replace(SETTINGS, article_horizon_s=DAY))
    for day in range(4):  # seen every day: never older than the horizon
        out = dd.check_article(clean_article("a1", "Bridge closes", BODY, offset_s=day * DAY))
    assert out.kind == DUPLICATE_EXACT
    assert "a:a1" not in dd.expire(dd.watermark)


def test_expire_sweeps_every_state_and_leaves_nothing_stale(stories):
    dd = Deduper(replace(SETTINGS, article_horizon_s=DAY, comment_horizon_s=DAY))
    dd.check_article(as_record("orig", stories[0]))
    dd.check_comment(comment("1", "orig", "ann", "I think the bridge should have been fixed"))
    before = dd.size()
    assert before["index"] > 0 and before["comments"] == 3
    removed = dd.expire(10 * DAY + dd.watermark)
    assert len(removed) == sum(before.values())
    assert dd.size() == {"articles": 0, "comments": 0, "index": 0}


# -- state backends ---------------------------------------------------------------------------
@pytest.fixture(params=["dict", "plain-dict", "rocksdict", "rocksdict-mirrored"])
def states(request, tmp_path: Path):
    if request.param == "dict":
        yield DictState(), DictState(), DictState()
    elif request.param == "plain-dict":
        yield {}, {}, {}
    else:
        make = (
            open_rocks
            if request.param == "rocksdict-mirrored"
            else lambda _, path: RocksState(path)
        )
        made = [make(name, tmp_path / name) for name in ("articles", "comments", "index")]
        yield tuple(made)
        for s in made:
            s.close()


def test_rules_hold_on_every_state_backend(states, stories):
    dd = Deduper(SETTINGS, *states)
    assert dd.check_article(as_record("orig", stories[0])).kind == NEW
    assert dd.check_article(as_record("orig", stories[0])).kind == DUPLICATE_EXACT
    assert dd.check_article(as_record("copy", stories[0])).kind == NEAR_DUPLICATE
    text = "I think the bridge should have been fixed years ago"
    assert dd.check_comment(comment("1", "orig", "ann", text)).kind == NEW
    assert dd.check_comment(comment("2", "orig", "ann", text)).kind == DUPLICATE_COMMENT
    assert dd.check_comment(comment("3", "orig", "bob", text)).kind == SPAM_SUSPECT
    sizes = dd.size()
    assert sizes["articles"] == 2 and sizes["comments"] == 6  # c: x3, p: x2, s: x1
    removed = dd.expire(dd.watermark + 30 * DAY)
    assert len(removed) == sum(sizes.values())
    assert dd.size() == {"articles": 0, "comments": 0, "index": 0}


def _entries(n: int) -> dict[str, Any]:
    """State entries of every shape the core writes (and a few it does not), times 0..n-1."""
    rng = random.Random(7)
    out: dict[str, Any] = {}
    for i in range(n):
        t = rng.randrange(n)
        shape = i % 6
        if shape == 0:
            out[f"b:{i % 42}:{i:012x}"] = (t, f"a-{i}")  # a band entry (the mirror holds it)
        elif shape == 1:
            out[f"c:{i}"] = (t, "h")
        elif shape == 2:
            out[f"s:{i}"] = (t + 0.5, 2, (("x", "c1"),))
        elif shape == 3:
            out[f"t:{i}"] = {"t": t, "tags": [{"code": "medtop:1", "level": 1}]}
        elif shape == 4:
            out[f"a:{i}"] = {"h": ["x"], "t": t}  # `t` not first: read the slow way
        else:
            out[f"o:{i}"] = [True] if i % 12 == 5 else {"h": "no time"}  # 1.0 and 0.0
    return out


def test_the_sweep_removes_exactly_the_entries_last_seen_before_the_cutoff(states):
    entries = _entries(600)
    index = states[2]  # the mirrored RocksDB store holds its band entries in memory too
    for key, value in entries.items():
        index[key] = value
    cutoff = 300
    expected = sorted(k for k, v in entries.items() if entry_time(v) < cutoff)
    assert 0 < len(expected) < len(entries)
    assert sorted(expire_before(index, cutoff)) == expected
    left = {k: index.get(k) for k in entries}
    assert sorted(k for k, v in left.items() if v is None) == expected
    assert expire_before(index, cutoff) == []  # nothing left to sweep


def test_compiled_entry_times_agree_with_the_reference() -> None:
    odd = [(1e9, "x"), (-3, "y"), [2.5], {"t": 7}, {"t": True}, (False, 1), {"t": 4, "u": [1]}]
    values: list[Any] = [*_entries(120).values(), *odd]
    raws = [*(orjson.dumps(v) for v in values), b'[1e3,"x"]', b'{"t":0.5e1}', b"[1E1]"]
    for cutoff in (0.0, 1.0, 5.0, 60.0, 1e12):
        # RocksDB's bytes: compiled, with the unread ones left to `raw_entry_time`
        reference = sorted(i for i, raw in enumerate(raws) if raw_entry_time(raw) < cutoff)
        stale, unread = stale_entries([(str(i).encode(), raw) for i, raw in enumerate(raws)],
                                      cutoff)  # fmt: skip
        stale += [k for k, raw in unread if raw_entry_time(raw) < cutoff]
        assert sorted(int(k) for k in stale) == reference
        # a dict store's objects: compiled, with the unread ones left to `entry_time`
        data = {str(i): v for i, v in enumerate(values)}
        reference = sorted(k for k, v in data.items() if entry_time(v) < cutoff)
        assert sorted(expire_before(dict(data), cutoff)) == reference
    # the bytes say what the decoded value says
    for raw in raws:
        assert raw_entry_time(raw) == entry_time(orjson.loads(raw))


def test_rocks_state_survives_a_reopen(tmp_path: Path):
    state = RocksState(tmp_path / "articles")
    dd = Deduper(SETTINGS, state)
    dd.check_article(clean_article("a1", "Bridge closes", BODY))
    state.close()
    reopened = RocksState(tmp_path / "articles")
    out = Deduper(SETTINGS, reopened).check_article(clean_article("a1", "Bridge closes", BODY))
    reopened.close()
    assert out.kind == DUPLICATE_EXACT


def _decide(dd: Deduper, articles: list[dict], comments: list[dict]) -> list[tuple]:
    outs = [dd.check_article(a) for a in articles] + [dd.check_comment(c) for c in comments]
    return [(o.kind, o.emit, o.duplicate_of, o.similarity, o.record) for o in outs]


def _events(stories: list[Any], start: int, stop: int) -> tuple[list[dict], list[dict]]:
    articles = [as_record(f"a{i}", stories[i % len(stories)], i) for i in range(start, stop)]
    raws = fox_comments()[start * 40 : stop * 40]
    return articles, [clean_comment(r, offset_s=start * 40 + n) for n, r in enumerate(raws)]


def test_entries_read_back_as_json_lists_decide_as_the_written_tuples(stories):
    """The deduper writes tuples; state restored from the changelog or RocksDB holds the JSON
    lists they became. The same events decide alike on either, and write the same state."""
    written = Deduper(SETTINGS)
    _decide(written, *_events(stories, 0, 40))
    restored = Deduper(SETTINGS, *(DictState() for _ in range(3)))
    for name in ("articles", "comments", "index"):
        for key, value in getattr(written, name).items():
            getattr(restored, name)[key] = orjson.loads(orjson.dumps(value))
    restored.watermark = written.watermark
    later = _events(stories, 40, 80)
    copies = [[dict(r) for r in part] for part in later]
    assert _decide(written, *later) == _decide(restored, *copies)
    for name in ("articles", "comments", "index"):
        mine, theirs = getattr(written, name), getattr(restored, name)
        assert {k: orjson.dumps(v) for k, v in mine.items()} == {
            k: orjson.dumps(v) for k, v in theirs.items()
        }


def test_written_entries_drop_out_of_the_collectors_sight(stories):
    """Collections stop tracking the entries written (tuples of plain values), so the
    collector's pauses do not grow with the state the worker holds."""
    dd = Deduper(SETTINGS)
    _decide(dd, *_events(stories, 0, 40))
    # a tuple is let go when its items already were, and one collection may look at a spam
    # cluster's entry before its posters (a tuple of pairs): three nest, so three collections
    for _ in range(3):
        gc.collect()
    tracked = [k for name in ("comments", "index") for k, v in getattr(dd, name).items()
               if gc.is_tracked(v)]  # fmt: skip
    assert sum(dd.size().values()) > 1000
    assert tracked == []


# -- real comments ----------------------------------------------------------------------------
def test_all_fox_comments_pass_and_counts_add_up():
    raws = fox_comments()
    dd = Deduper(SETTINGS)
    kinds: Counter[str] = Counter()
    emitted = dropped = 0
    for i, raw in enumerate(raws):
        out = dd.check_comment(clean_comment(raw, offset_s=i))
        kinds[out.kind] += 1
        emitted += out.emit
        dropped += not out.emit
    assert emitted + dropped == len(raws) == 1528
    assert kinds[NEW] + kinds[SPAM_SUSPECT] + kinds[REVISION] == emitted
    assert kinds[DUPLICATE_COMMENT] + kinds[DUPLICATE_EXACT] == dropped
    # the data holds a few real double posts and repeated texts
    assert 0 < kinds[DUPLICATE_COMMENT] < 20
    assert 0 < kinds[SPAM_SUSPECT] < 50
    # feeding them again drops every one as a redelivery
    again = [dd.check_comment(clean_comment(raw, offset_s=i)) for i, raw in enumerate(raws)]
    assert all(o.kind == DUPLICATE_EXACT for o in again)


def test_shipped_thresholds_meet_the_duplicate_of_target_on_held_out_labelled_pairs():
    from devtools.neardup_eval import ARTICLE_ITEMS, SEED, build_pairs, relations

    rng = random.Random(SEED)
    docs = build_articles(load_items(), rng, ARTICLE_ITEMS)
    pairs = build_pairs(docs, rng)
    assert sum(kind == "follow_up" for *_, kind in pairs) > 500
    rel = relations(pairs, Settings().near_dup_threshold, Settings().related_threshold)
    precision, recall, _ = rel.deployed["duplicate_of"]
    assert precision >= 0.99 and recall >= 0.95
    assert rel.shares["follow_up"]["duplicate_of"] <= 0.01
    assert rel.before[0] < 0.9  # Jaccard alone linked follow-ups as copies
    related_precision, related_recall, _ = rel.deployed["related_to"]
    assert related_precision >= 0.9 and related_recall >= 0.85


def test_the_related_threshold_comes_from_the_settings(monkeypatch):
    assert Deduper().related_threshold == Settings().related_threshold
    monkeypatch.setenv("NEWSPIPE_RELATED_THRESHOLD", "0.4")
    assert Deduper(Settings.from_env()).related_threshold == 0.4
