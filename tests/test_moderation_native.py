"""The compiled moderation loops (native/src/moderation.rs, native/src/modsignals.rs) answer as
their Python references: `ToxicityModel._py_score_many` / `_py_term_ids` (the same floats, bit for
bit), `WordMatcher._py_find` (pyahocorasick), and `SignalScanner._py_scan` (`_py_find`,
`link_domains`, `capitals`), on the real data sets and on generated text, and a moderated comment
is the same record either way."""

from __future__ import annotations

import copy
import math
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.datasets import ag_articles, fox_comments
from devtools.paths import ROOT
from pipeline.moderation.chars import case_tables
from pipeline.moderation.policy import ModerationContext, Moderator
from pipeline.moderation.rules import Rules
from pipeline.moderation.signals import SignalScanner, WordMatcher, capitals, link_domains
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
                m.setattr(SignalScanner, "scan", SignalScanner._py_scan)
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


# tokens where links and their edges meet: schemes, `www.`, top-level domains and their prefixes,
# hyphens and dots at label ends, the characters that end a bare host, Python's whitespace of
# other scripts, quotes `strip` takes off, and the non-ASCII letters that lower to ASCII (K, İ)
LINKY = st.lists(
    st.sampled_from([*"aZ0-._/:?#@w ", "http://", "https://", "ftp://", "www.", "com", "co",
                     ".io", "click", "\u212a", "İ", "\u3000", "\x85", "\x1c", "(", "“", "’", "*",
                     "ΑΣ", "é", "\n", "\ud800"]),
    max_size=40,
).map("".join)  # fmt: skip


def _scanner(banned: list[str], suspect: list[str], min_letters: int = 20, ratio: float = 0.7):
    matcher = WordMatcher()
    matcher.sync(_lists(banned, suspect))
    return SignalScanner(matcher, min_letters, ratio)


def test_the_compiled_whitespace_is_what_str_split_splits_on():
    scanner = _scanner([], [])
    for c in range(0x110000):
        assert scanner._native.is_space(c) == chr(c).isspace(), hex(c)
        if chr(c).isspace():
            assert f"a{chr(c)}b".split() == ["a", "b"], hex(c)


def test_compiled_text_signals_are_the_python_functions_on_the_real_texts(real_texts):
    """Words, link domains and shouting of every real text, alone and in the core's batches."""
    scanner = _scanner(["idiots", "stupid", "go to hell", "a-a", "you"],
                       ["liberals", "obama", "ﬁne", "merkel"])  # fmt: skip
    linked = [f"{t} see http://WWW.Ex-ample.co.uk/x?y and (bit.ly/q), www.a--b.org." for t in
              real_texts[:300]]  # fmt: skip
    texts = real_texts + linked + [t.upper() for t in real_texts[:300]]
    native = scanner._native
    assert [native.link_domains(t) for t in texts] == [link_domains(t) for t in texts]
    for m in (0, 14):
        assert [native.capitals(t, m) for t in texts] == [capitals(t, m) for t in texts]
    found = scanner.scan(texts)
    assert found == scanner._py_scan(texts)
    assert sum(f[0] is not None for f in found.values()) > 100  # banned words
    assert sum(f[1] is not None for f in found.values()) > 100  # suspect words
    assert sum(f[2] is not None for f in found.values()) >= 300  # links
    assert sum(f[3] is not None for f in found.values()) > 250  # shouting
    for at in range(0, len(texts), 500):
        batch = texts[at : at + 500]
        assert scanner.scan(batch) == scanner._py_scan(batch)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(LINKY, TRICKY, ANY_TEXT), max_size=8),
    st.lists(TRICKY, max_size=3),
    st.integers(0, 30),
    st.floats(0.0, 1.0),
)
def test_compiled_text_signals_are_the_python_functions_on_any_text(texts, banned, min_letters,
                                                                    ratio):  # fmt: skip
    scanner = _scanner(banned, [], min_letters, ratio)
    assert scanner.scan(texts) == scanner._py_scan(texts)
    for text in texts:
        assert scanner._native.link_domains(text) in (None, link_domains(text))
        assert scanner._native.capitals(text, min_letters) in (None, capitals(text, min_letters))


def test_link_domains_follow_the_patterns_backtracking():
    """The cases where the compiled matcher takes the one path the regular expression's
    backtracking can succeed on: a second `www.`, hyphens and dots at a host's end, a bare
    host's top-level domain and what may follow it, a label ending in a hyphen."""
    scanner = _scanner([], [])
    cases = {
        "www.www.example.com": ["example.com"],
        "www.com": ["www.com"],
        "https://a.b-": ["a.b"],
        "http://a.b.-/x": ["a.b"],
        "http://a-.b x.co:80 y.com. z.comx": ["x.co"],
        "a-.com b.c-d.io/ x.y-.com": ["b.c-d.io"],
        "www.\u212a\u212a.\u212a": [],  # no link to the hint on the text as written
        "www.\u212a\u212a.\u212a\u212a x.\u212aa.org": ["kk.kk", "x.ka.org"],
        "foo.com.evil.net foo.com.evil.xyzzy": ["foo.com.evil.net"],
        "(“Example.COM”) example.com?": ["example.com"],
        "ftp://x.y\u3000ftp://x.y": ["x.y"],
        "İ.com i\u0307.com": [],
    }
    for text, domains in cases.items():
        assert link_domains(text) == domains, text
        assert scanner._native.link_domains(text) == domains, text


def test_texts_the_compiled_scanner_cannot_read_are_scanned_in_python():
    scanner = _scanner(["idiot"], [])
    texts = ["fine", "idiot \ud800 see bit.ly", "IDIOT! SHOUTING LOUDLY AT EVERYONE HERE\ud800"]
    hits, left = scanner._native.scan(texts, scanner.matcher.compiled)
    assert hits == [] and left == [1, 2]
    assert (
        scanner.scan(texts)
        == scanner._py_scan(texts)
        == {
            1: (["idiot"], None, ["bit.ly"], None),
            2: (["idiot"], None, None, (1.0, 33)),
        }
    )


def test_the_batch_loop_moderates_as_the_policy_does_comment_by_comment():
    """`moderate` writes most records itself (nothing to flag) and sends the rest to `_one`:
    every record and history event is the one `_one` gives for every comment in order, with
    toxic comments, word lists, links, shouting, pre-moderated authors, authors' history,
    spam clusters, repeat posts, removed comments and comments without text."""
    settings_ = Settings()
    rules = _lists(["idiots", "stupid", "scum"], ["liberals", "muslims", "obama"]).with_list(
        "premod_authors", ["A3", "a7"]
    )
    records = []
    for i, c in enumerate(fox_comments()):
        record = {"comment_id": f"c{i}", "own_text": c["text"], "author": f"a{i % 40}",
                  "event_time": f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}+00:00"}  # fmt: skip
        if i % 97 == 0:
            record["own_text"] = "SEE WWW.EXAMPLE.COM FOR THE FULL STORY, FOLKS"
        if i % 31 == 0:
            record["spam_suspect"], record["spam_cluster_size"] = True, 3
        elif i % 29 == 0:
            record["spam_cluster_size"] = 2
        if i % 53 == 0:
            del record["author"]
        if i % 71 == 0:
            record["removed"] = True
        if i % 89 == 0:
            record["own_text"] = ""
        records.append(record)

    def repeat_of(record: dict) -> str | None:
        return "c0" if int(record["comment_id"][1:]) % 2 else None

    def moderated(reference: bool) -> tuple[list[dict], list]:
        batch = copy.deepcopy(records)
        context = ModerationContext(rules, ModerationContext.offline(settings_).history)
        moderator = Moderator(settings_)
        events = []
        for at in range(0, len(batch), 500):
            part = batch[at : at + 500]
            if not reference:
                events += moderator.moderate(part, context, repeat_of)
                continue
            moderator.matcher.sync(rules)
            live = [r for r in part if not r.get("removed") and r.get("own_text")]
            texts = [r["own_text"] for r in live]
            scores = iter(moderator.model._py_score_many(texts))
            found = moderator.scanner._py_scan(texts)
            k = 0
            for record in part:
                if record.get("removed") or not record.get("own_text"):
                    record["moderation"] = {"status": "approved", "toxicity": 0.0, "flags": []}
                    events.append(None)
                    continue
                signals = found.get(k, (None, None, None, None))
                event = moderator._one(record, next(scores), signals, context, repeat_of)
                k += 1
                if event is not None:
                    context.history.add(event)
                events.append(event)
        return [r["moderation"] for r in batch], events

    (native, native_events), (python, python_events) = moderated(False), moderated(True)
    assert native == python
    assert native_events == python_events
    reasons = {f["reason"] for m in native for f in m["flags"]}
    assert reasons == {"toxic", "banned_word", "suspect_word", "premod_author", "recent_history",
                       "links", "spam", "repeat_post", "shouting"}  # fmt: skip
    assert sum(e is None for e in native_events) > 500


def _same_floats(a: list[float], b: list[float]) -> bool:
    return [(x, math.copysign(1.0, x)) for x in a] == [(x, math.copysign(1.0, x)) for x in b]


def test_scores_are_rounded_as_pythons_round_to_four_places(model, real_texts):
    """The real scores, every tie of four places in [0, 1] that a double holds exactly (k/20000
    with 625 dividing 2k+1: 0.03125 goes to even, 0.0312), their neighbours, and what is left
    to Python (not finite, too large)."""
    from newspipe_native import round4

    ties = [k / 20000 for k in range(20001)]
    near = [math.nextafter(x, d) for x in ties for d in (0.0, 2.0)]
    values = model.score_many(real_texts) + ties + near + [0.0, -0.0, 5e-324, 2.0**39 - 1]
    rounded, left = round4(values)
    assert left == []
    assert _same_floats(rounded, [round(x, 4) for x in values])
    assert round4([0.03125, 0.09375])[0] == [0.0312, 0.0938]
    odd = [math.inf, -math.inf, 2.0**39, 1e300, -1e20]
    assert round4(odd)[1] == [0, 1, 2, 3, 4]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=20))
def test_any_float_is_rounded_as_pythons_round_to_four_places(values):
    from pipeline.moderation.policy import _round4

    assert _same_floats(_round4(values), [round(x, 4) for x in values])
