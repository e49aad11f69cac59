"""The compiled builder of common clean comments (native/src/records.rs) against the Python
reference `_py_normalize_comment`: the same records (the same keys in the same order, so the
same JSON), the same rejections and errors, on the real data sets and on generated raw comments
with every optional field present or absent and of any type JSON can give it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from newspipe_native import epoch_of_iso, iso_utc

from devtools.datasets import fox_comments
from devtools.paths import SEED
from pipeline.extract import extract_file
from pipeline.normalize import normalize_comment, records, times
from tests.test_normalize_native import PIECES
from tests.test_normalize_records import _REPLY, _TIMES, _outcome, raw_comments

NOW = "2026-11-26T10:00:00Z"


def _same(raw: dict[str, Any], *, detect: bool = False, event_time: str | None = None) -> None:
    kwargs = {"now": NOW, "detect": detect, "event_time": event_time}
    expected = _outcome(records._py_normalize_comment, raw, **kwargs)
    got = _outcome(normalize_comment, raw, **kwargs)
    assert got == expected, raw
    if isinstance(expected, dict):  # the same JSON: the same keys in the same order
        assert list(got) == list(expected), raw
        assert list(got["moderation"]) == list(expected["moderation"]), raw


def _built(raw: dict[str, Any]) -> bool:
    return records._build_comment(raw, None, NOW) is not None


def test_fox_news_comments_are_the_same_records_as_the_python_reference():
    fox = fox_comments()
    assert len(fox) == 1528
    for raw in fox:
        _same(raw, event_time="2026-11-26T09:00:00Z")
    kwargs = {"now": NOW, "detect": False}
    assert orjson.dumps([normalize_comment(raw, **kwargs) for raw in fox]) == orjson.dumps(
        [records._py_normalize_comment(raw, **kwargs) for raw in fox]
    )
    assert sum(map(_built, fox)) > 0.95 * len(fox)  # the compiled path is the common one


def test_fox_news_comments_get_the_reference_languages_when_detected_here():
    for raw in fox_comments()[:300]:
        _same(raw, detect=True)


def test_the_seed_page_comments_are_the_same_records_as_the_python_reference():
    comments = extract_file(SEED).comments
    assert comments
    for raw in comments:
        _same(raw)
        _same(raw, detect=True)
    assert sum(map(_built, comments)) > len(comments) // 2  # removed, quoting, "&": Python


# every field of the raw comment schema, with the values the schema allows and some it does not
# (the core validates first, but the replay tool and the tests call normalize_comment directly)
_ODD = st.one_of(
    st.none(),
    st.just(""),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=4), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    st.text(max_size=10),
)
_TEXTS = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(PIECES), max_size=12).map("".join),
    st.tuples(_REPLY, st.text(max_size=30)).map("".join),
    st.sampled_from(["@Ann hi", "@Ann: hi", "@a.b: yes", "@ann", "@ née x", "@x!? y", "(hi) you",
                     "Ann wrote:\n\nquoted\n\nmine", "ann WROTE: 'q' mine", "x" * 90 + " wrote: a",
                     "İn reply to Bob: hi", "Replyıng to @x hi", "In reply to", "I agree: wrote:"]),
)  # fmt: skip


@st.composite
def unusual_raw_comments(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = {"source": draw(st.one_of(st.sampled_from(["foxnews", "", None]), _ODD))}
    for key, strategy in (
        ("article_id", st.one_of(st.sampled_from(["a-1", ""]), _ODD)),
        ("article_url", st.one_of(st.sampled_from(["https://e.com/a?utm_source=x", ""]), _ODD)),
        ("article_title", st.one_of(st.sampled_from(["A title", "x" * 1100]), _ODD)),
        ("source_comment_id", st.one_of(st.sampled_from(["7", ""]), _ODD)),
        ("number", st.one_of(st.integers(0, 10**6), _ODD)),
        ("author", st.one_of(st.sampled_from(["Ann", "Avatar of Bob", "x" * 1100]), _ODD)),
        ("mentions", st.one_of(st.lists(st.sampled_from(["@Ann", "Bob:", "x" * 200]), max_size=20),
                               st.sampled_from(["@Ann @Bob", "y" * 1100]), _ODD)),
        ("removed", st.one_of(st.booleans(), _ODD)),
        ("quotes", st.one_of(st.sampled_from(["3", ""]), _ODD)),
        ("quoted_text", st.one_of(st.sampled_from(["their words", ""]), _ODD)),
        ("language", st.one_of(st.sampled_from(["en", "de", ""]), _ODD)),
        ("notes", st.one_of(st.lists(st.sampled_from(["dropped a date", "", " "]), max_size=2),
                            _ODD)),
        ("posted_at", st.one_of(_TIMES, _ODD)),
        ("captured_at", st.one_of(_TIMES, _ODD)),
    ):  # fmt: skip
        if draw(st.booleans()):
            raw[key] = draw(strategy)
    if draw(st.integers(0, 9)):
        raw["text"] = draw(st.one_of(_TEXTS, _ODD))
    return raw


_POSTED = ["2024-01-01T00:00:00Z", "2024-01-01 10:00+02:00", "Thu, 04 Jul 2013 10:15:00 +0100"]
_PLAIN_TEXTS = st.one_of(
    st.text(min_size=1, max_size=80),
    st.lists(st.sampled_from([*PIECES[:25], "é", "İ", "ß", "“", "\U0001f600", "I", "x:"]),
             min_size=1, max_size=16).map("".join),
    st.sampled_from(["@Ann hi", "@Ann: hi", "@a.b: yes", "@ann", "@ née x", "@x!? y", "@@x y"]),
)  # fmt: skip


@st.composite
def common_raw_comments(draw: st.DrawFn) -> dict[str, Any]:
    """Raw comments of the shape the builder takes (the usual types), with their variations."""
    raw: dict[str, Any] = {"source": draw(st.sampled_from(["foxnews", "site", ""]))}
    identity = draw(st.sampled_from(["title", "id", "url", "long title"]))
    if identity == "title":
        raw["article_title"] = draw(st.sampled_from(["A  Title", "Ünïcode title", "t"]))
    elif identity == "id":
        raw["article_id"] = draw(st.sampled_from(["a-0123456789abcdef", "x"]))
    elif identity == "url":
        raw["article_url"] = "https://Example.com/a?utm_source=x"
    else:
        raw["article_title"] = "T " * 600
    for key, strategy in (
        ("author", st.one_of(st.none(), st.just(""), st.sampled_from(["Ann", "Avatar of Bob says:",
                                                                      "李", "@x"]))),
        ("mentions", st.one_of(st.none(), st.just([]), st.just(""), st.sampled_from(["@A @B", "x"]),
                               st.lists(st.sampled_from(["@Ann", "Ann", "Bob:", "", "@"]),
                                        max_size=4))),
        ("source_comment_id", st.one_of(st.none(), st.just(""), st.text(max_size=4))),
        ("number", st.one_of(st.none(), st.integers(0, 10**20))),
        ("posted_at", st.one_of(st.none(), st.just(""), st.sampled_from(_POSTED))),
        ("captured_at", st.one_of(st.none(), st.just(""), st.just("2025-05-05T05:05:05Z"))),
        ("language", st.one_of(st.none(), st.just(""), st.just("en"))),
        ("notes", st.one_of(st.none(), st.just([]))),
        ("removed", st.one_of(st.none(), st.just(False))),
        ("quotes", st.one_of(st.none(), st.just(""))),
    ):  # fmt: skip
        if draw(st.booleans()):
            raw[key] = draw(strategy)
    raw["text"] = draw(_PLAIN_TEXTS)
    return raw


@settings(max_examples=600, deadline=None)
@given(common_raw_comments())
def test_common_comments_are_built_as_the_python_reference_builds_them(raw):
    _same(raw)
    _same(raw, detect=True, event_time="2026-11-26T09:00:00Z")


def test_the_generated_common_comments_mostly_take_the_compiled_path():
    built = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(common_raw_comments())
    def count(raw):
        built.append(_built(raw))

    count()
    assert sum(built) > 0.6 * len(built)


@settings(max_examples=400, deadline=None)
@given(raw_comments())
def test_generated_comments_are_the_same_records_as_the_python_reference(raw):
    _same(raw)
    _same(raw, detect=True, event_time="2026-11-26T09:00:00Z")


@settings(max_examples=600, deadline=None)
@given(unusual_raw_comments())
def test_comments_with_any_field_of_any_type_are_the_reference_records_or_errors(raw):
    _same(raw)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({"source": st.just("site"), "article_id": st.just("a-1")}), _TEXTS)
def test_any_comment_text_gives_the_reference_text_words_hash_and_reply(raw, text):
    raw["text"] = text
    _same(raw)
    raw["mentions"] = ["Ann"]
    _same(raw)


def test_no_non_ascii_character_lowercases_to_a_character_of_a_reply_phrase():
    # records.rs reads " wrote:" and the reply phrases in ASCII-lowercased bytes and lets a
    # non-ASCII character stand for no match: right only if no such character lowercases to
    # one of theirs ("İ" gives "i" + a combining dot: a non-ASCII character in the phrase's
    # place sends the text to the reference)
    wanted = set(" wrote:inreplytog")
    for cp in range(0x80, 0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        lowered = set(chr(cp).lower())
        assert not lowered & (wanted - {"i"}), hex(cp)
        if "i" in lowered:
            assert cp == 0x130, hex(cp)


def test_a_comment_that_is_not_a_dict_is_left_to_the_reference():
    assert records._build_comment(["text"], None, NOW) is None
    assert _outcome(normalize_comment, ["text"], now=NOW) == _outcome(
        records._py_normalize_comment, ["text"], now=NOW
    )


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.integers(0, 253402300799),
        st.integers(1_600_000_000, 1_900_000_000),
        st.sampled_from([0, 86399, 86400, 951782400, 951868800, 253402300799, 253402300800]),
        st.integers(-(2**40), 2**40),
    )
)
def test_epoch_seconds_format_as_strftime_formats_them(seconds):
    expected = _outcome(times._py_iso_of_epoch, seconds)
    assert _outcome(times.iso_of_epoch, seconds) == expected
    got = iso_utc(seconds)
    assert got is None or got == expected
    assert (got is not None) == (0 <= seconds < 253402300800)
    if got is not None:  # and read back to the same second, as fromisoformat reads it
        assert times.epoch_of(got) == datetime.fromisoformat(got).timestamp() == seconds


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z"),
        st.sampled_from(
            [
                "2024-02-29T00:00:00Z",
                "2023-02-29T00:00:00Z",
                "1969-12-31T23:59:59Z",
                "2023-11-14T22:13:20+02:00",
                "2023-11-14T22:13:20",
                "2023-11-14",
                "2023-11-14T22:13:20.5Z",
                "2023-11-14 22:13:20Z",
                "0000-01-01T00:00:00Z",
                "2023-11-14T24:00:00Z",
                "2023-11-14T22:13:60Z",
                "not a time",
                "",
            ]
        ),
        st.text(max_size=24),
    )
)
def test_event_times_read_as_fromisoformat_reads_them_naive_as_utc(text):
    """`epoch_of` (compiled for the pipeline's own format) agrees with `fromisoformat`, naive
    times taken as UTC, and refuses what it refuses."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        with pytest.raises(ValueError):
            times.epoch_of(text)
        return
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        expected = parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        return  # a year Python cannot take to epoch seconds either
    assert times.epoch_of(text) == expected
    fast = epoch_of_iso(text)
    assert fast is None or fast == expected


def test_epoch_seconds_of_other_types_are_left_to_strftime():
    for value in (True, 1.0, 2**70, -1):
        assert iso_utc(value) is None
