"""The caches of the normalize stage (authors, mentions, article ids, canonical URLs, times) give
the records the uncached reference functions give: on the real data sets and on generated raw
comments and articles, cold and warm."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.datasets import ag_articles, fox_comments
from devtools.paths import SEED
from pipeline import ids
from pipeline.errors import Rejected
from pipeline.extract import extract_file
from pipeline.normalize import normalize_article, normalize_comment, records, times
from pipeline.normalize.authors import clean_author
from pipeline.normalize.text import normalize_text

NOW = "2026-11-26T10:00:00Z"


def _clear_caches() -> None:
    for fn in (
        records._author,
        records._cached_mentions,
        records._cached_article_id,
        ids._cached_canonical_url,
        times._parse_time_str,
    ):
        fn.cache_clear()


def reference(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn`'s outcome with every cache of the stage replaced by the function it caches."""
    with pytest.MonkeyPatch.context() as m:
        # the expressions normalize_comment had before the caches, spelled out here
        m.setattr(records, "_author", lambda a: clean_author(normalize_text(a)) or None)
        m.setattr(records, "_cached_mentions", lambda v: tuple(records._mentions(v)))
        m.setattr(records, "_cached_article_id", records.make_article_id)
        m.setattr(records, "canonical_url", ids._py_canonical_url)
        m.setattr(ids, "canonical_url", ids._py_canonical_url)
        m.setattr(records, "parse_time", times._py_parse_time)
        m.setattr(records, "_build_comment", lambda *a: None)  # the compiled path calls the caches
        return _outcome(fn, *args, **kwargs)


def _outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Rejected as exc:
        return ("rejected", exc.code, exc.message, exc.field, exc.stage)
    except Exception as exc:  # the same failure either way is what is compared
        return ("error", type(exc).__name__, str(exc))


def _same_records(fn, raws: list[dict[str, Any]]) -> None:
    expected = [reference(fn, raw, now=NOW) for raw in raws]
    _clear_caches()
    cold = [_outcome(fn, raw, now=NOW) for raw in raws]
    order = list(range(len(raws)))
    random.Random(7).shuffle(order)
    warm = {i: _outcome(fn, raws[i], now=NOW) for i in order}
    assert cold == expected
    assert [warm[i] for i in range(len(raws))] == expected


def test_fox_news_comments_are_the_same_records_as_without_the_caches():
    fox = fox_comments()
    assert len(fox) == 1528
    _same_records(normalize_comment, fox)


def test_ag_news_items_are_the_same_records_as_without_the_caches():
    _same_records(normalize_article, ag_articles())


def test_the_seed_page_gives_the_same_records_as_without_the_caches():
    page = extract_file(SEED)
    _same_records(normalize_article, [page.article])
    _same_records(normalize_comment, page.comments)


_FURNITURE = st.sampled_from(
    ["says:", "Reply", "Report", "Avatar of ", "'s avatar", "by ", "Posted by ", "wrote", " ",
     "|", "-", "·", "(reply)", "Log in to reply", "profile picture", "@", ":", "&amp;", "\u200b"]
)  # fmt: skip
_NAMES = st.sampled_from(["Ann", "Bob Smith", "x", "Reply Guy", "said", "María", "李", ""])
_WORDY = st.lists(st.one_of(_FURNITURE, _NAMES, st.text(max_size=8)), max_size=6).map("".join)
_TIMES = st.one_of(
    st.none(),
    st.just(""),
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S +0100")),
    st.sampled_from(["2024-01-01T00:00:00Z", "2031-01-01", "1989-12-31", "junk", " 2020-02-02 "]),
    st.integers(-(10**13), 10**13),
    st.floats(allow_nan=True),
    st.booleans(),
    st.text(max_size=12),
)
_MENTIONS = st.one_of(
    st.none(),
    st.just([]),
    _WORDY,
    st.lists(st.one_of(_WORDY, _NAMES.map(lambda n: "@" + n)), max_size=4),
    st.lists(st.one_of(st.integers(), _NAMES), max_size=3),
)
_REPLY = st.sampled_from(
    ["", "@Ann ", "@Ann: ", "(In reply to Bob) ", "(In reply to: their words -- Bob) ",
     "In reply to Ann: ", "Replying to @x ", "Bob wrote: \"quoted\" ", "Bob wrote:\n> q\n"]
)  # fmt: skip
_URLS = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(
        ["https://Example.com:443/a//b?utm_source=x&b=2&a=1#frag", "http://e.org:8080/x?fbclid=1",
         "example.com/path", "HTTPS://EXAMPLE.COM", "https://e.com/?a=&b=%20"]
    ),
    st.text(max_size=20),
)  # fmt: skip


@st.composite
def raw_comments(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = {"source": draw(st.sampled_from(["foxnews", "site", ""]))}
    for key, strategy in (
        ("author", st.one_of(st.none(), _WORDY, st.integers())),
        ("mentions", _MENTIONS),
        ("posted_at", _TIMES),
        ("captured_at", _TIMES),
        ("article_url", _URLS),
        ("article_title", st.one_of(st.none(), _WORDY, st.integers())),
        ("source_comment_id", st.one_of(st.none(), st.text(max_size=4), st.integers(0, 9))),
        ("number", st.one_of(st.none(), st.integers(0, 99))),
        ("notes", st.one_of(st.none(), st.lists(_WORDY, max_size=2))),
        ("removed", st.booleans()),
    ):
        if draw(st.booleans()):
            raw[key] = draw(strategy)
    raw["text"] = draw(_REPLY) + draw(st.one_of(_WORDY, st.text(max_size=40)))
    return raw


@st.composite
def raw_articles(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = {"source": draw(st.sampled_from(["ag-news", "site", ""]))}
    for key, strategy in (
        ("url", _URLS),
        ("source_id", st.one_of(st.none(), st.text(max_size=4), st.integers(0, 9))),
        ("title", st.one_of(st.none(), _WORDY)),
        ("standfirst", st.one_of(st.none(), _WORDY)),
        ("body", st.one_of(st.none(), st.text(max_size=60))),
        ("published_at", _TIMES),
        ("captured_at", _TIMES),
        ("notes", st.one_of(st.none(), st.lists(_WORDY, max_size=2))),
    ):
        if draw(st.booleans()):
            raw[key] = draw(strategy)
    return raw


@settings(max_examples=300, deadline=None)
@given(st.lists(raw_comments(), min_size=1, max_size=6))
def test_generated_comments_are_the_same_records_as_without_the_caches(raws):
    # repeats inside a batch are the cache hits: each list is also run twice over
    _same_records(normalize_comment, raws + raws[:2])


@settings(max_examples=200, deadline=None)
@given(st.lists(raw_articles(), min_size=1, max_size=6))
def test_generated_articles_are_the_same_records_as_without_the_caches(raws):
    _same_records(normalize_article, raws + raws[:2])


@given(_TIMES, st.sampled_from([NOW, "2019-06-01T00:00:00Z", "1995-01-01T00:00:00Z"]))
@settings(deadline=None)
def test_a_time_parses_as_the_uncached_reference_under_any_now(value, now):
    for _ in range(2):
        assert _outcome(times.parse_time, value, "posted_at", now) == _outcome(
            times._py_parse_time, value, "posted_at", now
        )


def test_fields_too_long_to_cache_give_the_same_records_as_without_the_caches():
    long_name = "Avatar of " + "Ann " * 300 + "says:"
    raws = [
        {
            "source": "site",
            "author": long_name,
            "mentions": "@" + "x" * 2000,
            "article_url": "https://e.com/" + "a" * 3000 + "?utm_source=x",
            "article_title": "T " * 600,
            "posted_at": "2024-01-01T00:00:00Z" + " " * 60,
            "text": "hello",
        },
        {"source": "site", "mentions": ["@a"] * 20, "article_title": "T " * 600, "text": "hi"},
        {"source": "site", "mentions": ["@" + "b" * 200], "article_title": "x", "text": "hi"},
    ]
    _same_records(normalize_comment, raws)
