"""The compiled near-duplicate fingerprints (native/src/dedup.rs) against their numpy reference
(pipeline.dedup.fingerprint): bit-identical signatures, band keys, leads and SimHashes, so
state written by either is valid for the other; and the deduper's native band scan against the
Python loop it replaced: the same decisions and the same state, write for write."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.datasets import ag_articles, fox_comments
from devtools.neardup_eval import build_articles, follow_up, load_items, wire_copy
from devtools.paths import SEED
from devtools.samples import clean_article
from pipeline.dedup import NEW, REVISION, Deduper, DictState, Outcome, StateCorrupted
from pipeline.dedup import deduper as deduper_module
from pipeline.dedup.deduper import article_text, lead_text
from pipeline.dedup.fingerprint import (
    LEAD_WORDS,
    MinHasher,
    _py_band_hashes,
    _py_encode_signature,
    _py_lead_shingles,
    _py_simhash64,
    band_hashes,
    encode_lead,
    encode_signature,
    encode_signature_le,
    lead_shingles,
    shingle_hashes,
    simhash64,
    text_shingles,
    words,
)
from pipeline.extract import extract_file
from pipeline.settings import Settings
from pipeline.stream.state import OverlayMap

HASHER = MinHasher(128)
# the deduper's layout first; the others are the eval's (short and long bands)
LAYOUTS = ((42, 3), (32, 4), (16, 8), (64, 2))


def assert_same_fingerprints(
    text: str, hasher: MinHasher = HASHER, layouts: tuple[tuple[int, int], ...] = LAYOUTS
) -> None:
    """Every native fingerprint of `text` equals the reference's, bit for bit; a text the
    reference cannot encode (a lone surrogate) fails the same way natively."""
    try:
        ref_shingles = shingle_hashes(words(text))
    except UnicodeEncodeError:
        for native in (text_shingles, hasher.text_signature, lead_shingles):
            with pytest.raises(UnicodeEncodeError):
                native(text)
        return
    shingles = text_shingles(text)
    assert shingles.dtype == np.uint32
    assert np.array_equal(shingles, ref_shingles)
    ref_sig = hasher.signature(ref_shingles)
    sig = hasher.text_signature(text)
    assert sig.dtype == np.uint32 and sig.tobytes() == ref_sig.astype("<u4").tobytes()
    assert encode_signature(sig) == encode_signature(ref_sig) == _py_encode_signature(ref_sig)
    assert encode_signature_le(sig.astype("<u4").tobytes()) == _py_encode_signature(ref_sig)
    low = sig.astype(np.uint16)
    assert encode_signature(low) == _py_encode_signature(low) == encode_signature(ref_sig)
    for bands, rows in layouts:
        if bands * rows <= hasher.num_perm:
            assert band_hashes(sig, bands, rows) == _py_band_hashes(ref_sig, bands, rows)
    lead, ref_lead = lead_shingles(text), _py_lead_shingles(text)
    assert lead.dtype == np.uint16 and np.array_equal(lead, ref_lead)
    assert encode_lead(lead) == encode_lead(ref_lead)
    assert np.array_equal(text_shingles(text, LEAD_WORDS), shingle_hashes(words(text)[:LEAD_WORDS]))
    assert simhash64(ref_shingles) == _py_simhash64(ref_shingles)


def test_fingerprints_of_every_ag_item_equal_the_numpy_reference():
    """All 7,600 AG items: the text the deduper hashes and its lead (the description)."""
    for item in ag_articles():
        assert_same_fingerprints(article_text(item), layouts=LAYOUTS[:1])
        assert_same_fingerprints(lead_text(item), layouts=LAYOUTS[:1])


def test_fingerprints_of_the_seed_page_and_the_fox_comments_equal_the_reference():
    page = extract_file(SEED)
    article = page.article
    assert_same_fingerprints(article_text(article))
    assert_same_fingerprints(lead_text(article))
    for com in page.comments:
        assert_same_fingerprints(com.get("text") or "")
    for com in fox_comments():
        assert_same_fingerprints(com.get("text") or "")


def test_the_eval_layouts_and_smaller_hashers_give_the_reference_signatures():
    for num_perm in (64, 96):
        hasher = MinHasher(num_perm)
        for item in ag_articles()[:300]:
            assert_same_fingerprints(article_text(item), hasher)


# Separators and near-separators: every typographic mark the reference replaces, the ASCII
# whitespace bytes.split() splits on and the characters it does not (\x1c-\x1f, Unicode spaces),
# characters whose lowercase changes length (İ) or depends on context (final sigma).
TRICKY = (
    " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x00\x85\xa0\u2028\u2009\u3000"
    "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00ab\u00bb\u2012\u2015\u201a\u201e\u2039\u203a"
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "AaZzÉéİıΣσςẞßǅ\u0130\u0307\u00c2\u00e2\u20ac\U0001f600"
)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(TRICKY) | st.characters(), max_size=300))  # surrogates too
def test_fingerprints_of_any_text_equal_the_reference(text: str):
    assert_same_fingerprints(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["Σ", "ΑΣ", "word", "İstanbul", "a", "\u2014", " ", "."]),
                max_size=40).map("".join))  # fmt: skip
def test_fingerprints_of_word_soups_equal_the_reference(text: str):
    assert_same_fingerprints(text)


@pytest.mark.parametrize("text", ["", " ", "\u2014\u2026", "one", "one two", "one two three"])
def test_texts_of_fewer_than_three_words_hash_as_the_reference_does(text: str):
    assert_same_fingerprints(text)


def test_a_huge_text_hashes_as_the_reference_does():
    rng = random.Random(3)
    vocab = [w.decode() for w in words(" ".join(i["standfirst"] for i in ag_articles()[:500]))]
    text = " ".join(rng.choice(vocab) for _ in range(200_000))
    assert_same_fingerprints(text)


def test_a_lone_surrogate_fails_as_in_the_reference():
    """A str can hold one; UTF-8 cannot: both paths raise UnicodeEncodeError (never a panic)."""
    text = "abc \ud800 def"
    with pytest.raises(UnicodeEncodeError):
        words(text)
    with pytest.raises(UnicodeEncodeError):
        HASHER.text_signature(text)
    with pytest.raises(UnicodeEncodeError):
        lead_shingles(text)


def test_band_keys_of_short_or_odd_signatures_are_those_of_the_reference():
    """Inputs the deduper never makes (fewer values than bands x rows) slice as in Python."""
    sig = HASHER.text_signature("a short text of a few words")
    for n in (0, 1, 5, 126):
        assert band_hashes(sig[:n], 42, 3) == _py_band_hashes(sig[:n], 42, 3)
    assert band_hashes(sig, 0, 3) == [] == _py_band_hashes(sig, 0, 3)
    assert band_hashes(sig.astype(np.uint16), 42, 3) == _py_band_hashes(
        sig.astype(np.uint16), 42, 3
    )


def test_the_native_permutations_refuse_malformed_arrays():
    import newspipe_native

    for a, b in ((b"", b""), (b"abc", b"abc"), (b"abcd", b"abcdabcd")):
        with pytest.raises(ValueError):
            newspipe_native.MinHashPerms(a, b)


# -- the deduper's band scan ---------------------------------------------------------------------
def _reference_deduper(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every Deduper created from here on use the numpy fingerprints and the Python loop."""
    monkeypatch.setattr(deduper_module, "scan_bands", deduper_module._py_scan_bands)
    monkeypatch.setattr(deduper_module, "claim_bands", deduper_module._py_claim_bands)
    monkeypatch.setattr(deduper_module, "judge_candidates", lambda *args: None)
    monkeypatch.setattr(deduper_module, "lead_shingles", _py_lead_shingles)
    monkeypatch.setattr(
        deduper_module,
        "encode_signature_le",
        lambda sig_le: _py_encode_signature(np.frombuffer(sig_le, dtype="<u4")),
    )
    monkeypatch.setattr(
        Deduper,
        "fingerprint",
        lambda self, record: self.hasher.signature(shingle_hashes(words(article_text(record)))),
    )


class LoggedState(DictState):
    """A dict state that logs every write, in order (what a changelog would carry)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[bytes] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.log.append(orjson.dumps([key, value]))
        super().__setitem__(key, value)


def _article_stream() -> list[dict[str, Any]]:
    """Originals, wire copies (easy and hard), follow-ups, revisions, redeliveries, AG items and
    copies that arrive after the horizon (band take-overs), in event-time order."""
    rng = random.Random(11)
    docs = build_articles(load_items(), rng, 6)[:150]
    titles = [d.title for d in docs]
    vocab = sorted({w for d in docs for w in d.text().split() if w.isalpha()})
    day = 24 * 3600
    out: list[dict[str, Any]] = []
    for i, doc in enumerate(docs):
        out.append(clean_article(f"o{i}", doc.title, "\n\n".join(doc.paragraphs), offset_s=i))
    for i, doc in enumerate(docs):
        for kind in ("w", "h"):
            copy = wire_copy(doc, rng, titles, vocab, hard=kind == "h")
            out.append(clean_article(f"{kind}{i}", copy.title, copy.body(), offset_s=200 + i))
        donors = [d for d in rng.sample(docs, 4) if d is not doc][:3]
        f = follow_up(doc, rng, titles, donors, vocab)
        out.append(clean_article(f"f{i}", f.title, f.body(), offset_s=400 + i))
        if i % 5 == 0:  # a revision of the original and a redelivery of the copy
            out.append(clean_article(f"o{i}", doc.title + " (updated)", doc.body(), offset_s=600))
            out.append(dict(out[len(docs) + 2 * i]))
    for n, item in enumerate(ag_articles()[:400]):
        out.append(clean_article(f"ag{n}", item["title"], "", standfirst=item["standfirst"],
                                 offset_s=700 + n))  # fmt: skip
    settings = Settings()
    late = settings.article_horizon_s + 3 * day
    for i, doc in enumerate(docs[:40]):
        copy = wire_copy(doc, rng, titles, vocab)
        out.append(clean_article(f"late{i}", copy.title, copy.body(), offset_s=late + i))
        out.append(clean_article(f"o{i}", doc.title, doc.body(), offset_s=late + 100 + i))
    return out


def _run(records: list[dict[str, Any]], index: LoggedState, dd: Deduper | None = None) -> list:
    dd = dd or Deduper(Settings(), index=index)
    got = []
    for rec in records:
        record = dict(rec)
        outcome = dd.check_article_exact(record)
        if outcome.kind in (NEW, REVISION):
            outcome = dd.check_near_duplicate(record, outcome)
        got.append((outcome.kind, outcome.emit, outcome.duplicate_of, outcome.similarity, record))
    return got


def test_the_deduper_decides_and_writes_exactly_as_the_python_reference(monkeypatch):
    stream = _article_stream()
    native_index = LoggedState()
    native = _run(stream, native_index)
    with monkeypatch.context() as m:
        _reference_deduper(m)
        reference_index = LoggedState()
        reference = _run(stream, reference_index)
    assert native == reference
    assert native_index.log == reference_index.log  # same writes, same order, same bytes
    kinds = {k for k, *_ in native}
    assert {"new", "near_duplicate", "revision", "duplicate.exact"} <= kinds
    assert any(r["related_to"] for *_, r in native)


def test_state_written_by_the_python_path_is_read_alike_by_the_native_path(monkeypatch):
    """Old state stays valid: half the stream indexed by the reference, then the native path
    decides the rest as the reference would have."""
    stream = _article_stream()
    half = len(stream) // 2
    with monkeypatch.context() as m:
        _reference_deduper(m)
        reference_index = LoggedState()
        reference_dd = Deduper(Settings(), index=reference_index)
        reference = _run(stream, reference_index, reference_dd)
        mixed_index = LoggedState()
        mixed_dd = Deduper(Settings(), index=mixed_index)
        first = _run(stream[:half], mixed_index, mixed_dd)
    second = _run(stream[half:], mixed_index, mixed_dd)
    assert first + second == reference
    assert mixed_index.log == reference_index.log


class _Mapping(DictState):
    """A DictState the compiled loops must reach through `get` and item assignment."""


def _overlaid(data: dict[str, Any]) -> OverlayMap:
    """Half the entries committed, half written by the batch: reads must see both."""
    index = OverlayMap({})
    for n, (key, value) in enumerate(data.items()):
        (index.overlay if n % 2 else index.store)[key] = value
    return index


_TIMES = st.sampled_from([0, 5, 10, 10.0, 99.5, 100, 101])
_IDS = st.sampled_from(["me", "x", "y", "z"])


@settings(max_examples=300, deadline=None)
@given(
    hits=st.lists(st.none() | st.tuples(_TIMES, _IDS), min_size=8, max_size=8),
    owners=st.dictionaries(_IDS, _TIMES),
    cutoff=st.sampled_from([0, 10, 10.0, 100.5]),
    revision=st.booleans(),
)
def test_the_native_band_scan_equals_the_python_loop(hits, owners, cutoff, revision):
    """Free, taken-over, own, expired and repeated owners of the bands, revisions or not; read
    as dicts (a dict, a DictState, a batch's OverlayMap over a dict: no Python call per band)
    or through `get` (any other mapping), the same free bands and owners."""
    sig = HASHER.text_signature("the band scan sees whatever the index holds")
    keys = band_hashes(sig, 8, 3)
    data: dict[str, Any] = {}
    for i, (band, hit) in enumerate(zip(keys, hits, strict=True)):
        if hit is not None:
            data[f"b:{i}:{band}"] = list(hit)
    for owner, t in owners.items():
        data["g:" + owner] = [t, "sig"]
    args = (sig.tobytes(), 8, 3, "me", cutoff, revision)
    reference = deduper_module._py_scan_bands(DictState(dict(data)), *args)
    assert _Mapping().dict_layers() is None
    for index in (DictState(dict(data)), _Mapping(dict(data)), _overlaid(data), dict(data)):
        assert deduper_module.scan_bands(index, *args) == reference


def test_the_band_scan_raises_what_the_state_raises():
    """A corrupt state surfaces as the same exception, from the native loop as from Python."""
    sig = HASHER.text_signature("corrupt state must not be mistaken for an empty one")
    raw = sig.tobytes()

    class Corrupt:
        def get(self, key: str, default: Any = None) -> Any:
            raise StateCorrupted(SEED, RuntimeError("bad block"))

    for scan in (deduper_module.scan_bands, deduper_module._py_scan_bands):
        with pytest.raises(StateCorrupted):
            scan(Corrupt(), raw, 42, 3, "me", 0.0, False)
        first = band_hashes(sig, 1, 3)[0]
        with pytest.raises(TypeError):  # a value that is not a [t, id] list
            scan(DictState({f"b:0:{first}": 7}), raw, 42, 3, "me", 0.0, False)


def test_claimed_bands_are_written_in_order_sharing_one_immutable_entry():
    native, reference = LoggedState(), LoggedState()
    keys = ["b:0:aaa", "b:3:bbb", "b:1:ccc"]
    deduper_module.claim_bands(native, keys, 17, "me")
    deduper_module._py_claim_bands(reference, keys, 17, "me")
    assert native.log == reference.log
    entry = native.data["b:0:aaa"]
    assert entry == (17, "me") and all(native.data[k] is entry for k in keys)


def test_owner_entries_read_from_the_committed_store_are_copies():
    """What the batch does with an entry it read must not reach the committed store before the
    batch commits, as with `OverlayMap.get`."""
    sig = HASHER.text_signature("copies keep the committed store as it was")
    first = band_hashes(sig, 1, 3)[0]
    index = OverlayMap({f"b:0:{first}": [50, "x"], "g:x": [50, "sig"]})
    _, found = deduper_module.scan_bands(index, sig.tobytes(), 1, 3, "me", 0.0, False)
    assert found == [("x", [50, "sig"])]
    found[0][1].append("changed")
    assert index.store["g:x"] == [50, "sig"]


def test_claimed_bands_go_to_the_batch_not_to_the_committed_store():
    index = OverlayMap({"b:0:aaa": [1, "old"]})
    deduper_module.claim_bands(index, ["b:0:aaa", "b:1:bbb"], 17, "me")
    assert index.overlay == {"b:0:aaa": (17, "me"), "b:1:bbb": (17, "me")}
    assert index.store == {"b:0:aaa": [1, "old"]}
    logged = LoggedState()  # a subclass: its writes are seen one by one
    deduper_module.claim_bands(logged, ["b:0:aaa"], 17, "me")
    assert logged.log == [orjson.dumps(["b:0:aaa", [17, "me"]])]


def _entries(rng: random.Random) -> list[tuple[str, list[Any]]]:
    """Candidates as the deduper indexes them, their texts near, far and in between of a base
    text, their openings present or not, stories and clusters set or not."""
    items = [i["standfirst"] for i in ag_articles()[:300] if len(i["standfirst"].split()) > 25]
    base = rng.choice(items)
    out = []
    for n in range(rng.randint(0, 6)):
        words_ = base.split()
        kind = rng.random()
        if kind < 0.3:
            text = rng.choice(items)  # another story
        else:  # the base text with some of its words changed
            cut = rng.randint(0, len(words_) // 2)
            text = " ".join(words_[:cut] + ["new"] * rng.randint(0, 5) + words_[cut:])
            if kind > 0.8:
                text = "Today something else happened first. " + text
        sig = HASHER.text_signature(text)
        entry: list[Any] = [
            100, encode_signature(sig), rng.choice([None, "", "c1"]), None, "h",
            rng.choice([encode_lead(lead_shingles(text)), "", None]),
            rng.choice([None, "", "s1"]), None,
        ]  # fmt: skip
        out.append((f"a{n}", entry[: rng.choice([3, 5, 6, 7, 8])]))
    return out


@pytest.mark.parametrize("seed", range(300))
def test_the_native_judgment_equals_the_python_loop(seed: int):
    """Copies, follow-ups and other stories among the candidates, entries of every length the
    index held across versions: the same similarity, copy and related article."""
    rng = random.Random(seed)
    base = _entries(random.Random(seed + 1000))
    text = rng.choice([i["standfirst"] for i in ag_articles()[:300]])
    sig, lead = HASHER.text_signature(text), lead_shingles(text)
    if base and rng.random() < 0.5:  # judge an article against copies of itself
        sig = deduper_module.decode_signature(base[0][1][1]).astype("<u4")
    thresholds = rng.choice([(0.5, 0.3, 0.5), (0.8, 0.2, 0.5), (0.3, 0.6, 0.9)])
    native = deduper_module.judge_candidates(
        sig.astype("<u4").tobytes(), lead.tobytes(), base, *thresholds
    )
    assert native == deduper_module._py_judge(sig, lead, base, *thresholds)


_SIG_TEXT = encode_signature(HASHER.text_signature("the opening of a story told twice"))


@pytest.mark.parametrize(
    "bad",
    [
        [100, "not base64!", None, None, "h"],
        [100, _SIG_TEXT.rstrip("=") + "A", None, None, "h"],
        [100, _SIG_TEXT[:-4], None, None, "h"],  # 125 values, not 128
        [100, 12345, None, None, "h"],
        [100, _SIG_TEXT, None, None, "h", 7],
        [100, _SIG_TEXT, None, None, "h", "x="],
        [100, _SIG_TEXT],
    ],
)
def test_entries_the_native_judgment_cannot_read_go_to_the_python_loop(bad: list[Any]):
    """It declines what it was not written for, and the Python loop judges them (and raises the
    error it always raised on a value it cannot decode)."""
    sig = HASHER.text_signature("the opening of a story told twice")
    lead = lead_shingles("the opening of a story told twice")
    found = [("ok", [100, encode_signature(sig)]), ("bad", bad)]
    args = (found, 0.0, 0.0, 0.5)
    assert deduper_module.judge_candidates(sig.tobytes(), lead.tobytes(), *args) is None
    try:
        _, copy, _ = deduper_module._py_judge(sig, lead, *args)
    except (ValueError, TypeError, IndexError):  # binascii.Error is a ValueError
        return
    assert copy is not None and copy[1] == "ok"


def test_a_record_without_text_is_fingerprinted_as_the_reference_does(monkeypatch):
    empty = {"article_id": "e", "title": None, "body": None, "content_hash": "h",
             "event_time": "2026-11-26T10:00:00Z"}  # fmt: skip
    native = Deduper(Settings()).fingerprint(empty)
    with monkeypatch.context() as m:
        _reference_deduper(m)
        reference = Deduper(Settings()).fingerprint(empty)
    assert native.tobytes() == reference.astype("<u4").tobytes()
    dd = Deduper(Settings())
    out = dd.check_near_duplicate(dict(empty), Outcome(NEW, True, dict(empty)))
    assert out.kind == NEW
