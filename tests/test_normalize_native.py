"""The compiled common paths of normalize_text (native/src/text.rs) and of the language look
before the classifier (native/src/firstlook.rs) against their Python references.

The compiled paths answer only for the texts they are sure of and decline the others (which then
take `_py_normalize_text` / `_py_first_look`), so every comparison here is exact: the same
strings, the same records.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from newspipe_native import nfc_inert_ranges, normalize_plain

from devtools.datasets import ag_articles, fox_comments
from devtools.paths import SEED
from pipeline.extract import extract_file
from pipeline.normalize import normalize_article, normalize_comment, records, text
from pipeline.normalize.language import _first_look, _native_first_look, _Pending, _py_first_look
from pipeline.normalize.text import _py_normalize_text, normalize_text

NOW = "2026-11-26T10:00:00Z"
# pieces that touch every branch of the path choice: entities and remnants, markup, escapes,
# script URLs (with the letters Python's re.IGNORECASE folds), mojibake leads, characters NFC
# composes, every kind of whitespace and invisible character the passes map or drop
PIECES = [
    "a", "b", " ", "  ", "\n", "\n\n", "\r", "\r\n", "\t", "\x0b", "\x0c", "\x1c", "\x1f", "\x85",
    "\xa0", "\u2028", "\u2029", "\u3000", "\u200b", "\u2060", "\ufeff", "\u202e", "\x00", "\x7f",
    "\x9d", "&", "amp;", "#36;", "#x27;", "quot;", ";", "#", "<b>", "<", "\\", "\\$", "é", "e",
    "\u0301", "\u1100", "\u1161", "\u11a8", "\u00c5", "\u212b", "Ã", "©", "â", "€", "\ufffd",
    "script", "SCRİPT", "ſcript", "scrıpt", "java", ":", " :", "İ", "ß", "\U0001f600", "“", "”",
]  # fmt: skip


def _nfc_inert_ranges() -> list[tuple[int, int]]:
    """Non-ASCII characters NFC never changes wherever they stand (see native/src/text.rs):
    NFC of the character is itself, combining class 0, never the second of a composing pair
    (canonical pairs that recompose, and Hangul medial vowels and final consonants)."""
    second = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    for cp in range(0x110000):
        dec = unicodedata.decomposition(chr(cp))
        if dec and not dec.startswith("<"):
            parts = [int(x, 16) for x in dec.split()]
            if len(parts) == 2 and unicodedata.normalize("NFC", "".join(map(chr, parts))) == chr(
                cp
            ):
                second.add(parts[1])

    def inert(cp: int) -> bool:
        c = chr(cp)
        if 0xD800 <= cp < 0xE000:
            return False
        return (
            cp not in second
            and unicodedata.combining(c) == 0
            and unicodedata.is_normalized("NFC", c)
        )

    out: list[tuple[int, int]] = []
    start = None
    for cp in range(0x80, 0x110000):
        if inert(cp):
            if start is None:
                start = cp
        elif start is not None:
            out.append((start, cp - 1))
            start = None
    if start is not None:
        out.append((start, 0x10FFFF))
    return out


def _same(s: str) -> None:
    got = normalize_plain(s)
    if got is not None:
        assert got == _py_normalize_text(s), repr(s)
    assert normalize_text(s) == _py_normalize_text(s), repr(s)


def test_the_compiled_nfc_table_is_the_one_python_unicodedata_gives():
    assert nfc_inert_ranges() == _nfc_inert_ranges()


def test_every_code_point_alone_and_between_words_normalizes_as_in_python():
    for block in range(0, 0x110000, 256):
        chars = [chr(cp) for cp in range(block, block + 256)]
        together = "".join(f"ab {c}cd\n" for c in chars)
        if normalize_plain(together) is not None:  # one comparison for a block it answers
            _same(together)
            continue
        for c in chars:
            _same(c)
            _same(f"ab {c}cd\n")


@settings(max_examples=1000, deadline=None)
@given(st.text())
def test_any_text_normalizes_as_the_python_reference(s):
    _same(s)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30))
def test_artefact_soup_normalizes_as_the_python_reference(parts):
    _same("".join(parts))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=40), st.integers(100, 3000))
def test_huge_texts_normalize_as_the_python_reference(parts, times):
    _same("".join(parts) * times)


def test_lone_surrogates_and_non_strings_are_left_to_the_python_path():
    assert normalize_plain("a\ud800b") is None
    assert normalize_text("a\ud800 b\udfff") == _py_normalize_text("a\ud800 b\udfff") == "a b"
    assert normalize_plain(42) is None  # type: ignore[arg-type]

    class Text(str):
        pass

    assert normalize_plain(Text("a  b")) is None  # a str subclass: the reference's answer is str


def test_clean_ascii_text_comes_back_as_the_same_object():
    s = "A plain comment.\n\nSecond paragraph."
    assert normalize_plain(s) is s


@pytest.fixture
def python_only(monkeypatch):
    """normalize_text with the compiled path declining every text: the reference records."""

    def run(fn, *args, **kwargs):
        with monkeypatch.context() as m:
            m.setattr(text, "normalize_plain", lambda s: None)
            m.setattr(records, "_build_comment", lambda *a: None)  # it cleans texts itself
            return fn(*args, **kwargs)

    return run


def test_fox_news_comments_are_the_same_records_as_with_the_python_path(python_only):
    fox = fox_comments()
    assert len(fox) == 1528
    plain = 0
    for raw in fox:
        assert normalize_comment(raw, now=NOW) == python_only(normalize_comment, raw, now=NOW)
        plain += normalize_plain(raw["text"]) is not None
    assert plain > 0.8 * len(fox)  # the compiled path is the common one


def test_ag_news_items_are_the_same_records_as_with_the_python_path(python_only):
    ag = ag_articles()
    for raw in ag:
        assert normalize_article(raw, now=NOW) == python_only(normalize_article, raw, now=NOW)


def test_the_seed_page_gives_the_same_records_as_with_the_python_path(python_only):
    page = extract_file(SEED)
    reference = python_only(extract_file, SEED)
    assert page.article == reference.article
    assert page.comments == reference.comments
    assert normalize_article(page.article, now=NOW) == python_only(
        normalize_article, page.article, now=NOW
    )
    for raw in page.comments:
        assert normalize_comment(raw, now=NOW) == python_only(normalize_comment, raw, now=NOW)


# --- language: the look before the classifier -------------------------------------------------


def _looks(first: object) -> object:
    return (first.guess, first.clean, first.long_clean) if isinstance(first, _Pending) else first


def _same_look(s: str) -> None:
    assert _looks(_first_look(s)) == _looks(_py_first_look(s)), repr(s)


WORDS = [
    "the", "and", "of", "der", "und", "le", "la", "de", "el", "il", "het", "een", "que", "is",
    "http://x.io/a", "https://", "www.a.b", "@bob", "#tag", "#", "@", "12", "3.5", "x_y", "a-b",
    "Hello", "WORLD", "zzz", "lol", " ", "\n", "\t", "\x1c", "\x1f", "\x0b", "!", ".", "-", "_",
    "abcdefghij", "e", "THE", "Und",
]  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=120).map(" ".join))
def test_word_soup_gets_the_first_look_of_the_python_reference(s):
    _same_look(s)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text())
def test_any_text_gets_the_first_look_of_the_python_reference(s):
    _same_look(s)


def test_real_texts_get_the_first_look_of_the_python_reference():
    texts = [r["text"] for r in fox_comments()]
    texts += [f"{r.get('title')} {r.get('standfirst')}" for r in ag_articles()]
    page = extract_file(SEED)
    texts += [c["text"] for c in page.comments] + [page.article.get("body") or ""]
    for s in texts:
        _same_look(s)
        _same_look(normalize_text(s))
    assert sum(_native_first_look().look(s) is not None for s in texts) > 0.8 * len(texts)
