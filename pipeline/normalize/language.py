"""Language of a text: a stopword count when it is sure, py3langid (model in its package) else.

Two steps because they cost so differently. Most comments and articles have enough stopwords of
one language for a scan of the first words to be sure (a few microseconds); only the rest pays
for the classifier (tens of microseconds). py3langid knows 97 languages and is right on short
texts where the stopword list cannot be (it knows seven languages and needs two hits); its model
loads once per process, on first use. "und" is kept for texts too short to tell.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

_STOPWORDS: dict[str, str] = {
    "en": "a an the of and to in is that it for was on are with as be at by this have from or not "
    "but they his her we you he she would will their has been which were what can i my me "
    "if all there so no about just do don't it's who than them more when your",
    "de": "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als "
    "auch es an werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über "
    "so zum war haben nur oder aber vor zur bis mehr durch man",
    "fr": "le la les de des et en un une du est que qui dans pour pas au sur ne se plus par "
    "avec ce il elle sont ont aux cette mais ou nous vous leur été être son sa ses je",
    "es": "el la los las de del y en un una que es por para con no se su al lo como más "
    "pero sus le ya o este sí porque esta entre cuando muy sin sobre también fue han hay",
    "it": "il lo la i gli le di del della e è in un una che per non con si da al sono "
    "alla anche come più ma ha nel questo dei delle ci nella essere sul",
    "pt": "o a os as de do da dos das e em um uma que é não para com se por no na mais "
    "ao como mas foi ele ela são seu sua também já pelo pela está",
    "nl": "de het een en van in is dat op te zijn met voor niet die aan er ook als bij "
    "door maar om dan wat nog wordt heeft naar uit hij zij worden deze",
}
_LANGS = tuple(_STOPWORDS)
# word -> language index, only for words that belong to exactly one language (unambiguous)
_OWNERS: dict[str, list[int]] = {}
for _n, _words in enumerate(_STOPWORDS.values()):
    for _w in _words.split():
        _OWNERS.setdefault(_w, []).append(_n)
_INDEX = {w: owners[0] for w, owners in _OWNERS.items() if len(owners) == 1}
_MAX_CHARS = 300  # ~45 words decide it; longer texts cost no more
# sure: three different stopwords, all of one language, a fifth of the words (a Danish "er"
# three times is one German-looking word, not three)
_SURE_DISTINCT = 3
_SURE_SHARE = 0.2
# ... or four different ones at a tenth of the words: news prose full of names (on AG News the
# classifier agreed with every such guess, and it was called for half the items)
_SURE_DISTINCT_MANY = 4
_SURE_SHARE_MANY = 0.1
_MIN_HITS = 2

_MODEL_CHARS = 300  # the classifier's cost grows with length (a Python loop over bytes)
_MORE_CHARS = 900  # ... unless the first 300 leave it unsure and the text has much more
_SURE_CONFIDENCE = 0.7
_MIN_CONFIDENCE = 0.3  # normalized probability over 97 languages
_MIN_LETTERS = 8  # "lol", "Amen", "+1": too short to tell
_MIN_DISTINCT_LETTERS = 5  # "hahahahaha", "!!!!", "zzzzzz": not language
_MIN_WORDS_TO_GUESS = 5  # a low-confidence best guess is still taken from five words up
_NOISE = re.compile(r"https?://\S+|www\.\S+|[@#][\w.\-]+|\d+")
_NOT_A_LANGUAGE = frozenset({"zxx", "und"})
_DIGIT = re.compile(r"\d").search
_ASCII_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))
_LOWER_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")


def _stopwords(text: str) -> tuple[str | None, bool]:
    """(best stopword language or None, whether it is sure) from the first ~45 words."""
    words = text[:_MAX_CHARS].lower().split()
    if len(text) > _MAX_CHARS and words:
        words.pop()  # probably cut in the middle
    found = [w for w in words if w in _INDEX]
    if len(found) < _MIN_HITS:
        return None, False
    hits = list(map(_INDEX.__getitem__, found))
    kinds = set(hits)
    if len(kinds) == 1:
        distinct = len(set(found))
        sure = (distinct >= _SURE_DISTINCT and len(found) >= _SURE_SHARE * len(words)) or (
            distinct >= _SURE_DISTINCT_MANY and len(found) >= _SURE_SHARE_MANY * len(words)
        )
        return _LANGS[hits[0]], sure
    ranked = sorted((hits.count(k), k) for k in kinds)
    if ranked[-1][0] == ranked[-2][0]:
        return None, False  # a tie: no clear winner
    top, lang = ranked[-1]
    if top * 10 < len(words):  # under 10% stopwords: not one of our languages
        return None, False
    return _LANGS[lang], False


@functools.cache
def _identifier() -> Any:
    """py3langid's model with normalized probabilities, loaded once (about a second)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def preload() -> None:
    """Load the classifier now (a worker's start) rather than on the first unsure text."""
    _native()


class _Pending:
    """What the stopword pass left a text for the classifier: its cleaned head (and longer
    cleaned text, for a second look when the head leaves the classifier unsure)."""

    __slots__ = ("clean", "guess", "long_clean")

    def __init__(self, guess: str | None, clean: str, long_clean: str) -> None:
        self.guess, self.clean, self.long_clean = guess, clean, long_clean


def _noise_free(text: str) -> str:
    """`text` without links, mentions, hashtags and numbers (none of them says the language)."""
    if "http" in text or "www." in text or "@" in text or "#" in text or _DIGIT(text):
        return _NOISE.sub(" ", text)
    return text


def _letters(text: str) -> tuple[int, int]:
    """(letters, distinct letters ignoring case): bytes.translate counts ASCII text in C."""
    if text.isascii():
        raw = text.encode("ascii")
        return len(raw) - len(raw.translate(None, _ASCII_LETTERS)), len(
            _LOWER_LETTERS.intersection(text.lower())
        )
    return sum(map(str.isalpha, text)), sum(map(str.isalpha, set(text.lower())))


@functools.cache
def _native_first_look() -> Any:
    """The stopword index copied into compiled code (native/src/firstlook.rs), once."""
    from newspipe_native import FirstLook

    return FirstLook(_INDEX, list(_LANGS))


def _first_look(text: str) -> str | _Pending:
    """The answer when stopwords or shape decide it, else what the classifier must look at.

    ASCII texts (most) are looked at in compiled code, which declines the others: their
    lowercasing, splitting and regex classes are Unicode's, as in `_py_first_look`."""
    first = _native_first_look().look(text)
    if first is None:
        return _py_first_look(text)
    if isinstance(first, str):
        return first
    return _Pending(*first)


def _py_first_look(text: str) -> str | _Pending:
    """`_first_look` in Python: the reference for all texts, the path for non-ASCII ones."""
    guess, sure = _stopwords(text)
    if sure:
        return guess  # type: ignore[return-value]
    long_clean = _noise_free(text[: _MORE_CHARS + 200])[:_MORE_CHARS]
    clean = long_clean[:_MODEL_CHARS]
    letters, distinct = _letters(clean)
    if letters < _MIN_LETTERS or distinct < _MIN_DISTINCT_LETTERS:
        return "und"
    return _Pending(guess, clean, long_clean)


def _decide(pending: _Pending, lang: str, confidence: float) -> str:
    if lang in _NOT_A_LANGUAGE:
        return pending.guess or "und"
    if confidence >= _MIN_CONFIDENCE:
        return lang
    if pending.guess:
        return pending.guess
    return lang if len(pending.clean.split()) >= _MIN_WORDS_TO_GUESS else "und"


def detect_language(text: str) -> str:
    """ISO 639 code of the text's language, or "und" when it is too short to tell."""
    return detect_languages([text])[0]


def detect_languages(texts: Sequence[str]) -> list[str]:
    """`detect_language` of each text, with the classifier run once over the batch's unsure
    texts (`classify_many`), which is what made the classifier the costliest step of a comment."""
    out: list[str | None] = [None] * len(texts)
    todo: list[tuple[int, _Pending]] = []
    for i, text in enumerate(texts):
        first = _first_look(text)
        if isinstance(first, str):
            out[i] = first
        else:
            todo.append((i, first))
    if todo:
        again: list[tuple[int, _Pending]] = []
        for (i, pending), (lang, confidence) in zip(
            todo, classify_many([p.clean for _, p in todo]), strict=True
        ):
            if confidence < _SURE_CONFIDENCE and len(pending.long_clean) > len(pending.clean):
                again.append((i, pending))
            else:
                out[i] = _decide(pending, lang, confidence)
        if again:
            for (i, pending), (lang, confidence) in zip(
                again, classify_many([p.long_clean for _, p in again]), strict=True
            ):
                out[i] = _decide(pending, lang, confidence)
    return out  # type: ignore[return-value]


@functools.cache
def _native() -> Any:
    """py3langid's model copied into the compiled classifier (native/src/lang.rs), once."""
    from newspipe_native import LangModel

    ident = _identifier()
    return LangModel(
        np.frombuffer(ident.tk_nextmove, dtype=np.uint32).astype("<u4").tobytes(),
        np.asarray(ident._rowbase, dtype="<u4").tobytes(),
        np.asarray(ident.tk_output, dtype="<i4").tobytes(),
        np.asarray(ident.nb_ptc, dtype="<f2").tobytes(),
        np.asarray(ident.nb_pc, dtype="<f4").tobytes(),
        list(ident._alias_pairs),
    )


def classify_many(texts: Sequence[str]) -> list[tuple[str, float]]:
    """py3langid's `classify` (normalized probabilities) of each text: the same model and
    arithmetic (float32, as py3langid), its byte automaton walked in compiled code, which is
    where py3langid spends a Python step per byte. (language, confidence) per text."""
    ident = _identifier()
    classes = ident.nb_classes
    found = _native().classify_many([ident._encode(t) for t in texts])
    return [(str(classes[k]), conf) for k, conf in found]
