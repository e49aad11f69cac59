"""The compiled moderation loops (native/src/moderation.rs) answer as their Python references:
`ToxicityModel._py_score_many` / `_py_term_ids` (the same floats, bit for bit) and
`WordMatcher._py_find` (pyahocorasick), on the real data sets and on generated text, and a
moderated comment is the same record either way."""

from __future__ import annotations

import copy
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.datasets import ag_articles, fox_comments
from devtools.paths import ROOT
from pipeline.moderation.chars import case_tables
from pipeline.moderation.policy import ModerationContext, Moderator
from pipeline.moderation.rules import Rules
from pipeline.moderation.signals import WordMatcher
from pipeline.moderation.toxicity import ToxicityModel
from pipeline.settings import Settings

# every code point a str holds, lone surrogates too
ANY_TEXT = st.text(
    st.one_of(st.characters(exclude_categories=()), st.characters(categories=["Cs"])),
    max_size=300,
)
# texts where the tricky characters meet: case expansions (ß, İ, ﬁ), sigma, combining marks,
# digits of other scripts, `_`, punctuation between words
TRICKY = st.text(st.sampled_from([*"aAsSΣσςßİi̇ﬁ_-. \t\n0٣²Ⅻ'é", "\u0301", "\ud800"]), max_size=60)


@pytest.fixture(scope="module")
def model() -> ToxicityModel:
    return ToxicityModel.load()


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    texts = [c["text"] for c in fox_comments()]
    texts += [f"{a['title']} {a['standfirst']}" for a in ag_articles()[:2000]]
    texts += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "data" / "seed").glob("*.txt"))]
    return texts


def test_the_compiled_tables_are_pythons_own_word_characters_lower_and_casefold():
    """Every code point: `\\w` as `str.isalnum() or "_"`, and the lower / casefold maps
    reproduce Python's per-character answers."""
    from pipeline.moderation import chars

    tables = case_tables()
    planes = chars._all_code_points()
    lower = dict(chars.char_map(planes, str.lower))
    fold = dict(chars.char_map(planes, str.casefold))
    for c in range(0x110000):
        ch = chr(c)
        assert tables.is_word(c) == (ch.isalnum() or ch == "_"), hex(c)
        if 0xD800 <= c < 0xE000:
            continue
        assert lower.get(c, ch) == ch.lower(), hex(c)
        assert fold.get(c, ch) == ch.casefold(), hex(c)
    assert unicodedata.unidata_version  # the tables are of this interpreter's Unicode version


def test_compiled_toxicity_scores_are_the_python_scorers_on_the_real_texts(model, real_texts):
    """Bit for bit: the same tokens, sums in the same order, numpy's exp on the same arguments.
    Also batch by batch as the core calls it (500), and one text at a time."""
    assert model.score_many(real_texts) == model._py_score_many(real_texts)
    assert [model.term_ids(t) for t in real_texts] == [model._py_term_ids(t) for t in real_texts]
    fox = real_texts[:1528]
    for size in (1, 7, 500):
        for at in range(0, len(fox), size * 13 if size == 1 else size):
            batch = fox[at : at + size]
            assert model.score_many(batch) == model._py_score_many(batch)
    assert model.score_many([]) == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(ANY_TEXT, TRICKY), max_size=8))
def test_compiled_toxicity_scores_are_the_python_scorers_on_any_text(model, texts):
    assert model.score_many(texts) == model._py_score_many(texts)
    assert [model.term_ids(t) for t in texts] == [model._py_term_ids(t) for t in texts]


def test_texts_the_compiled_tokenizer_cannot_read_exactly_are_scored_in_python(model):
    """A capital sigma (final or not, by its neighbours) and lone surrogates are left to Python
    (`decisions` names them), and still scored with everything else in their batch."""
    texts = ["ΑΣ idiot", "fine words", "idiot \ud800 moron", "", "x" * 100_000 + " stupid"]
    _, left = model._native.decisions(texts)
    assert left == [0, 2]
    assert model.score_many(texts) == model._py_score_many(texts)
    assert model._native.term_columns("ΣΑΣ") is None
    assert model._native.term_columns("idiot\ud800") is None


def _lists(banned: list[str], suspect: list[str]) -> Rules:
    return Rules.seed().with_list("banned_words", banned).with_list("suspect_words", suspect)


def test_compiled_word_lists_find_what_pyahocorasick_finds_in_the_real_texts(real_texts):
    """Lists of frequent words and phrases of the comments, overlapping ones, one on both lists,
    entries with punctuation and non-ASCII: the same entries per list in every text."""
    matcher = WordMatcher()
    banned = ["idiot", "go to hell", "obama", "muslims", "the", "a-a", "straße", "don't"]
    suspect = ["idiot", "liberal", "liberals", "hell", "of the", "isis", "fi", "ﬁne", "!"]
    matcher.sync(_lists(banned, suspect))
    found = [matcher.find(t) for t in real_texts]
    assert found == [matcher._py_find(t) for t in real_texts]
    assert sum(bool(f) for f in found) > 1000  # the lists do match
    assert matcher.find("ba-a-a, Go to HELL") == {"banned_words": ["a-a", "go to hell"],
                                                  "suspect_words": ["hell"]}  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(TRICKY, max_size=4),
    st.lists(TRICKY, max_size=4),
    st.lists(st.one_of(TRICKY, ANY_TEXT), max_size=6),
)
def test_compiled_word_lists_find_what_pyahocorasick_finds_in_any_text(banned, suspect, texts):
    matcher = WordMatcher()
    matcher.sync(_lists(banned, suspect))
    for text in texts:
        assert matcher.find(text) == matcher._py_find(text)
        doubled = f"{text} {' '.join(banned)} {text}"
        assert matcher.find(doubled) == matcher._py_find(doubled)


def test_a_comment_is_moderated_to_the_same_record_by_the_python_references(monkeypatch):
    """Status, flags and evidence of all 1,528 Fox comments, with word lists that match, are
    those the Python scorer and matcher give."""
    records = [
        {"comment_id": f"c{i}", "own_text": c["text"], "author": f"a{i % 40}",
         "event_time": f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}+00:00"}
        for i, c in enumerate(fox_comments())
    ]  # fmt: skip
    settings_ = Settings()
    rules = _lists(["idiots", "stupid", "scum", "go to hell"], ["liberals", "muslims", "obama"])

    def moderated(python: bool) -> list[dict]:
        batch = copy.deepcopy(records)
        context = ModerationContext(rules, ModerationContext.offline(settings_).history)
        moderator = Moderator(settings_)
        if python:
            with monkeypatch.context() as m:
                m.setattr(ToxicityModel, "score_many", ToxicityModel._py_score_many)
                m.setattr(WordMatcher, "find", WordMatcher._py_find)
                for at in range(0, len(batch), 500):
                    moderator.moderate(batch[at : at + 500], context)
        else:
            for at in range(0, len(batch), 500):
                moderator.moderate(batch[at : at + 500], context)
        return [r["moderation"] for r in batch]

    native, python = moderated(False), moderated(True)
    assert native == python
    reasons = {f["reason"] for m in native for f in m["flags"]}
    assert {"toxic", "banned_word", "suspect_word", "recent_history"} <= reasons
