"""normalize_text / normalize_article / normalize_comment on synthetic and real (Fox, AG) texts."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.datasets import ag_articles, fox_comments
from devtools.samples import SHORT_TEXTS
from pipeline.core import Core, Meta
from pipeline.errors import Rejected
from pipeline.normalize import (
    detect_language,
    language,
    normalize_article,
    normalize_comment,
    normalize_text,
    parse_found_time,
    parse_time,
)
from pipeline.normalize import text as text_module
from pipeline.normalize.language import detect_languages
from pipeline.settings import Settings
from pipeline.topics import COMMENTS

NOW = "2026-11-26T10:00:00Z"
SOUP = ["a", " ", "\n", "\\", "&", "amp;", "#36;", "quot;", "<b>", "é", "\u200b", "Ã", "©", "\t",
        "lt;", "#", "3", ";"]  # fmt: skip
BAD = ("#36;", "\\$", "\\", "&amp;", "quot;", "\u200b", "\u2060", "\ufeff", "  ")
ARTICLE_FIELDS = {
    "schema_version", "article_id", "canonical_url", "source", "source_id", "title", "standfirst",
    "body", "paragraphs", "captions", "fact_boxes", "quotes", "pagination", "language",
    "word_count", "content_hash", "published_at", "event_time", "processed_at",
    "pipeline_version", "revision", "previous_content_hash", "duplicate_of", "cluster_id", "tags",
    "notes", "related_to", "story_id",
}  # fmt: skip
COMMENT_FIELDS = {
    "schema_version", "comment_id", "article_id", "source", "source_comment_id", "number",
    "author", "text", "own_text", "quotes", "reply_to_author", "mentions", "removed", "language",
    "word_count", "content_hash", "posted_at", "event_time", "processed_at", "pipeline_version",
    "spam_suspect", "spam_cluster_size", "tags", "notes", "moderation",
}  # fmt: skip


def _texts(record: dict) -> list[str]:
    out = []
    for value in record.values():
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, str))
    return out


def _comment(**fields) -> dict:
    return {"schema_version": "1.0", "source": "test", "article_id": "a-1", **fields}


def _article(**fields) -> dict:
    return {"schema_version": "1.0", "source": "test", **fields}


# --- normalize_text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("for the  #36;10 million", "for the $10 million"),
        ("it #39;s  quot;fine quot; at J amp;J", 'it\'s "fine" at J&J'),
        ("Mills Grabs \\$1B Portfolio", "Mills Grabs $1B Portfolio"),
        ("A second\\team of rocketeers", "A second team of rocketeers"),
        ("end.\\\\Next paragraph", "end.\n\nNext paragraph"),
        ("Dell Inc. &lt;DELL.O&gt; said", "Dell Inc. <DELL.O> said"),
        ('&lt;A HREF="http://x"&gt;SPLS.O&lt;/A&gt;, the top', "SPLS.O, the top"),
        ("a new threat #151;prostate cancer", "a new threat—prostate cancer"),
        ("&amp;amp;quot;", '"'),
    ],
)
def test_entity_remnants_and_line_escapes_are_repaired(raw, clean):
    assert normalize_text(raw) == clean


def test_zero_width_and_control_characters_are_removed_but_newlines_kept():
    assert normalize_text("cr\u2060e\u2060epy fo\ufeffol\u200b\x00\x07") == "creepy fool"
    assert normalize_text("line one\r\nline two") == "line one\nline two"


def test_whitespace_collapses_but_paragraph_breaks_stay():
    assert normalize_text("  a   b\t c \n\n\n\n  d\u00a0 e  ") == "a b c\n\nd e"


def test_curly_quotes_and_dashes_are_not_folded_to_ascii():
    assert normalize_text("“Yes” — she said, ‘no’ – maybe") == "“Yes” — she said, ‘no’ – maybe"


def test_mojibake_is_repaired():
    assert normalize_text("cafÃ© â€œniceâ€\x9d") == "café “nice”"


def test_decomposed_accents_become_nfc():
    assert normalize_text("cafe\u0301") == "caf\u00e9"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_normalize_text_is_idempotent(text):
    once = normalize_text(text)
    assert normalize_text(once) == once


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SOUP), max_size=25))
def test_normalize_text_is_idempotent_on_artefact_soup(parts):
    once = normalize_text("".join(parts))
    assert normalize_text(once) == once


# --- times ------------------------------------------------------------------------------------


def test_times_are_parsed_to_utc_and_missing_stays_none():
    assert parse_time("2013-07-04T10:15:00+01:00", "published_at", NOW) == "2013-07-04T09:15:00Z"
    rfc = parse_time("Thu, 04 Jul 2013 10:15:00 GMT", "published_at", NOW)
    assert rfc == "2013-07-04T10:15:00Z"
    assert parse_time("2013-07-04", "published_at", NOW) == "2013-07-04T00:00:00Z"
    assert parse_time(None, "published_at", NOW) is None


def test_unparseable_time_is_rejected_as_time_invalid():
    with pytest.raises(Rejected) as err:
        normalize_article(_article(title="t", published_at="last Tuesday"), now=NOW)
    assert (err.value.code, err.value.field, err.value.stage) == (
        "time.invalid",
        "published_at",
        "normalize",
    )


@pytest.mark.parametrize("value", ["2031-01-01T00:00:00Z", "1970-01-01T00:00:00Z"])
def test_implausible_year_is_rejected_as_out_of_range(value):
    with pytest.raises(Rejected) as err:
        normalize_comment(_comment(text="hello", posted_at=value), now=NOW)
    assert err.value.code == "time.out_of_range"


# --- articles ---------------------------------------------------------------------------------


def test_clean_article_has_exactly_the_schema_fields_and_defaults():
    clean = normalize_article(_article(title="Hello", body="Some body text."), now=NOW)
    assert set(clean) == ARTICLE_FIELDS
    assert (clean["revision"], clean["previous_content_hash"]) == (1, None)
    assert clean["duplicate_of"] is None
    assert (clean["cluster_id"], clean["tags"], clean["processed_at"]) == (None, [], NOW)
    assert clean["published_at"] is None  # never invented
    assert clean["event_time"] == NOW  # schema needs one: processing time is the last resort


def test_event_time_prefers_published_then_captured_then_given():
    given_time = "2026-11-26T09:00:00Z"
    raw = _article(title="t", captured_at="2026-11-25T08:00:00Z")
    assert normalize_article(raw, event_time=given_time, now=NOW)["event_time"] == (
        "2026-11-25T08:00:00Z"
    )
    assert normalize_article(_article(title="t"), event_time=given_time, now=NOW)["event_time"] == (
        given_time
    )


def test_content_hash_ignores_whitespace_and_entity_differences():
    raw = _article(title="Tom  &amp; Jerry", body="He said  hi.\n\n\nBye.")
    a = normalize_article(raw, now=NOW)
    b = normalize_article(_article(title="Tom & Jerry", body="He said hi.\n\nBye."), now=NOW)
    assert a["content_hash"] == b["content_hash"]
    assert a["paragraphs"] == ["He said hi.", "Bye."]


def test_direct_quotes_are_found_in_straight_and_curly_quotes():
    body = 'He said "we will win" and she replied “not today”.'
    quotes = normalize_article(_article(title="t", body=body))["quotes"]
    assert quotes == ["we will win", "not today"]


@pytest.mark.parametrize(
    "raw",
    [_article(title="", body=""), _article(title="  \u200b "),
     _article(body="rate this\n\nPage 1 of 2\n\nComment number 3.")],
)  # fmt: skip
def test_article_empty_after_normalization_is_rejected(raw):
    with pytest.raises(Rejected) as err:
        normalize_article(raw, now=NOW)
    assert (err.value.code, err.value.stage) == ("content.empty", "normalize")


def test_article_id_comes_from_canonical_url_when_there_is_one():
    a = normalize_article(_article(title="t", url="https://Ex.com/a?utm_source=x#top"), now=NOW)
    b = normalize_article(_article(title="other", url="https://ex.com/a"), now=NOW)
    assert a["article_id"] == b["article_id"]
    assert a["canonical_url"] == "https://ex.com/a"


@pytest.mark.parametrize(
    ("lang", "text"), [(lang, t) for lang, texts in SHORT_TEXTS.items() for t in texts]
)
def test_short_comments_in_sixteen_languages_are_identified(lang, text):
    assert detect_language(text) == lang


@pytest.mark.parametrize(
    "text",
    [
        "Jeg er helt enig med dig, det er en god idé og vi er glade for den",  # "er" is German too
        "Jag tycker att det är en bra idé och vi är glada för den",
        "El govern ha dit que la situació és greu per als ciutadans del país",
    ],
)
def test_nordic_and_catalan_texts_are_not_taken_for_a_stopword_language(text):
    assert detect_language(text) not in {"de", "en", "fr", "es", "it", "pt", "nl"}


@pytest.mark.parametrize("text", ["lol", "Amen", "+1", "hahahahahahaha", "@bob !!!", "12345 !!!"])
def test_texts_too_short_to_tell_stay_undetermined(text):
    assert detect_language(text) == "und"


def test_fox_news_comments_are_undetermined_only_when_short(fox):
    languages = [(normalize_comment(raw, now=NOW)) for raw in fox]
    undetermined = [c for c in languages if c["language"] == "und"]
    assert len(undetermined) < 0.08 * len(fox)
    assert all(len(c["own_text"].split()) <= 6 for c in undetermined), [
        c["own_text"] for c in undetermined if len(c["own_text"].split()) > 6
    ]


def test_language_is_detected_cheaply_or_undetermined():
    assert detect_language("The government said that it would not change the plan") == "en"
    assert detect_language("Die Regierung hat gesagt, dass sie den Plan nicht ändern wird") == "de"
    assert detect_language("Le gouvernement a dit qu'il ne changera pas le plan pour les") == "fr"
    assert detect_language("12345 !!!") == "und"


def _language_texts(fox: list[dict]) -> list[str]:
    texts = [t for ts in SHORT_TEXTS.values() for t in ts]
    texts += [normalize_comment(raw, now=NOW)["own_text"] for raw in fox[:600]]
    texts += ["", "lol", "THE GOVERNMENT SAID IT WILL NOT CHANGE ITS PLAN " * 30, "é" * 50]
    texts += ["Jeg er helt enig med dig, det er en god idé og vi er glade " * 20]
    return [*texts, "\ud800 lone surrogate", "日本語のテキストです。" * 40, "\x00\x01 bytes"]


def test_the_compiled_classifier_answers_as_py3langid_does(fox):
    """native/src/lang.rs walks py3langid's own model; py3langid's `classify` is the reference:
    the same language, the same probability up to float32 rounding."""
    texts = _language_texts(fox)
    ident = language._identifier()
    reference = [ident.classify(t) for t in texts]
    found = language.classify_many(texts)
    assert [lang for lang, _ in found] == [str(lang) for lang, _ in reference]
    assert all(abs(a - b) < 1e-5 for (_, a), (_, b) in zip(found, reference, strict=True))
    assert language.classify_many([]) == []


def test_a_batch_gets_the_languages_its_texts_get_one_by_one(fox, monkeypatch):
    """Batched detection decides as detection text by text with py3langid's classifier."""
    texts = _language_texts(fox)
    batched = detect_languages(texts)
    ident = language._identifier()
    monkeypatch.setattr(language, "classify_many", lambda ts: [ident.classify(t) for t in ts])
    assert batched == [detect_language(t) for t in texts]
    assert detect_languages(texts[:3]) == [detect_language(t) for t in texts[:3]]
    assert detect_languages([]) == []


def test_core_detects_a_batch_languages_and_leaves_no_working_field(fox):
    core = Core(Settings())
    items = [(orjson.dumps(raw), Meta("raw.comments", 0, i)) for i, raw in enumerate(fox[:200])]
    results = core.process_batch(COMMENTS, items, core.states)
    clean = [r.record for r in results if r.status == "clean"]
    assert clean and all(set(r) == COMMENT_FIELDS for r in clean)
    assert [r["language"] for r in clean] == [detect_language(r["own_text"]) for r in clean]


# --- comments ---------------------------------------------------------------------------------


def test_clean_comment_has_exactly_the_schema_fields_and_defaults():
    clean = normalize_comment(_comment(text="Nice  one", number=3), now=NOW)
    assert set(clean) == COMMENT_FIELDS
    assert (clean["spam_suspect"], clean["spam_cluster_size"], clean["tags"]) == (False, 1, [])
    assert clean["text"] == clean["own_text"] == "Nice one"


def test_comment_id_falls_back_from_source_id_to_number_to_author_and_text():
    by_id = normalize_comment(_comment(text="x y", source_comment_id="7", number=9))
    by_number = normalize_comment(_comment(text="x y", number=7))
    assert by_id["comment_id"] == by_number["comment_id"]
    hashed = normalize_comment(_comment(text="x y", author="bob"))
    same = normalize_comment(_comment(text="x  y", author="bob"))
    assert hashed["comment_id"] == same["comment_id"]
    assert hashed["comment_id"] != by_id["comment_id"]


def test_leading_mention_becomes_reply_to_author_and_mentions_are_parsed():
    clean = normalize_comment(_comment(text="@someuser: blah blah", mentions="@other @someuser"))
    assert clean["reply_to_author"] == "someuser"
    assert clean["mentions"] == ["other", "someuser"]
    assert normalize_comment(_comment(text="hi", mentions=""))["mentions"] == []
    assert normalize_comment(_comment(text="hi", mentions=["@a", "b"]))["mentions"] == ["a", "b"]


def test_non_removed_comment_with_empty_text_is_rejected():
    with pytest.raises(Rejected) as err:
        normalize_comment(_comment(text=" \u200b\n "))
    assert err.value.code == "content.empty"


def test_comment_article_id_from_title_matches_the_article():
    article = normalize_article({"schema_version": "1.0", "source": "foxnews", "title": "T x"})
    comment = normalize_comment({"schema_version": "1.0", "source": "foxnews", "text": "hi",
                                 "article_title": "T x"})  # fmt: skip
    assert comment["article_id"] == article["article_id"]


# --- real data --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fox():
    return fox_comments()


@pytest.fixture(scope="module")
def ag():
    return ag_articles()


def test_all_fox_news_comments_normalize_without_artefacts(fox):
    assert len(fox) == 1528
    for raw in fox:
        clean = normalize_comment(raw, now=NOW)
        assert set(clean) == COMMENT_FIELDS
        for text in _texts(clean):
            assert not any(bad in text for bad in BAD), (raw["text"], text)


def test_all_ag_news_items_normalize_without_artefacts(ag):
    assert len(ag) == 7600
    for raw in ag:
        clean = normalize_article(raw, now=NOW)
        assert set(clean) == ARTICLE_FIELDS
        assert clean["standfirst"]
        for text in _texts(clean):
            assert not any(bad in text for bad in BAD), (raw["standfirst"], text)


def test_ag_news_is_mostly_english(ag):
    langs = [normalize_article(raw, now=NOW)["language"] for raw in ag[:1000]]
    assert langs.count("en") > 990
    assert "und" not in langs


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ("2019-11-18 17:19:53 GMT", "2019-11-18T17:19:53Z"),
        ("Mon, 18 Nov 2019 17:19:53 GMT", "2019-11-18T17:19:53Z"),
        ("18 November 2019", "2019-11-18T00:00:00Z"),
        ("November 18, 2019 at 5:19 pm", "2019-11-18T17:19:00Z"),
        ("2019-11-18T17:19:53.250-05:00", "2019-11-18T22:19:53Z"),
        ("Nov 18 2019 5:19PM EST", "2019-11-18T22:19:00Z"),
        ("Updated: 18 Nov 2019 12:00 BST", "2019-11-18T11:00:00Z"),
        ("1574097593", "2019-11-18T17:19:53Z"),
        (1574097593000, "2019-11-18T17:19:53Z"),
    ],
)
def test_found_dates_in_the_shapes_pages_print_are_read(found, expected):
    assert parse_found_time(found, "published_at", NOW) == (expected, None)


@pytest.mark.parametrize("found", ["last Tuesday", "18 November", "yesterday, 5pm", "1850-01-01"])
def test_found_dates_without_a_year_or_out_of_range_are_dropped_with_a_note(found):
    parsed, note = parse_found_time(found, "published_at", NOW)
    assert parsed is None
    assert note is not None and note.startswith("published_at dropped")


def test_notes_from_the_producer_reach_the_clean_record():
    raw = _article(title="t", body="b", notes=["published_at dropped: cannot parse 'soon'"])
    assert normalize_article(raw, now=NOW)["notes"] == ["published_at dropped: cannot parse 'soon'"]


@pytest.mark.parametrize(
    ("author", "expected"),
    [
        ("Rosie Tran says:", "Rosie Tran"),
        ("Avatar of Dev Patel Dev Patel says: Report", "Dev Patel"),
        ("harbourwatcher Reply", "harbourwatcher"),
        ("Jane's avatar", "Jane"),
        ("Reply Guy", "Reply Guy"),
        ("says:", None),
    ],
)
def test_comment_authors_lose_comment_system_furniture(author, expected):
    comment = normalize_comment(_comment(text="Good piece.", author=author), now=NOW)
    assert comment["author"] == expected


_REMNANT_PIECES = st.sampled_from([
    " ", "&", "#", ";", "x", "X", "1", "39", "1234567", "fF", "a", "_", "é", "٣", "\n",
    "amp", "lt", "gt", "quot", "apos", "nbsp", "mdash", "ndash", "hellip", "mp", "t;", "#x",
])  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(st.lists(_REMNANT_PIECES, max_size=24).map("".join))
def test_entity_remnants_are_found_and_restored_as_their_patterns_say(s):
    """AG News's "&"-less entities ("it #39;s", "AT amp;T"): the anchored scan finds and
    restores exactly what the two regexes (the definition) do, leading space, lookbehind and
    all, on texts dense with near misses."""
    for kind, pattern, repl in (
        (text_module._NUMERIC, text_module._NUMERIC_REMNANT, r"&#\1;"),
        (text_module._NAMED, text_module._NAMED_REMNANT, r"&\1;"),
    ):
        assert text_module._sub_remnants(s, kind) == pattern.sub(repl, s), repr(s)
        assert text_module._has_remnant(s, kind) == (pattern.search(s) is not None), repr(s)
