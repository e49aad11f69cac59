"""Keyword tagger: one Aho-Corasick automaton over every topic's weighted term list.

Why term lists: they cost tens of microseconds per text on one core, need no model download, and the
matched terms are the explanation. Lists live in ``pipeline/data/lexicon/*.txt`` (data, not code):

    [medtop:15000000]        section header: the terms below are evidence for this code
    goalkeeper<TAB>2         weight (default 1); matching is case-insensitive on word boundaries
    =AP                      a leading '=' makes the term case-sensitive (acronyms such as US, AP)
    @weight 2                default weight for the following terms of this section
    new jersey<TAB>0         weight 0: a blocker, so the longer phrase hides "jersey" (sport)
    ~force                   a leading '~' marks an ambiguous word ("force", "cartel"): it counts,
                             but a topic whose only evidence is one such word ranks below any
                             topic with other evidence (LONE_AMBIGUOUS)

Two top-level topics with the same evidence mass are ordered by evidence, never by code: more
evidence in the headline first, then more distinct terms, then the single strongest term.

Evidence for a code also counts for all its ancestors, so a second-level section feeds its top
level. Extra ``*.txt`` files dropped into the directory (e.g. one per source) are merged in;
``sections.json`` maps a source's section names (e.g. "sport") to a prior for ``tag_article``.

``tag_comment`` and ``tag_article`` match and score in compiled code (native/src/tagger.rs, a trie
over the automaton's keys word by word, fed the same tables): per hit and per term the Python
steps were most of the core's time on a comment. The Python path stays as ``_py_tag_comment`` and
``_py_tag_article``, the reference the tests compare it with; ``explain`` still uses the automaton.
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypedDict, cast

import ahocorasick

from pipeline.tagging.taxonomy import DATA_DIR, Taxonomy

LEXICON_DIR = DATA_DIR / "lexicon"

# Field weights: a headline term says more about the topic than one deep in the body (a title
# hit with sqrt damping counts ~1.7x a body hit).
TITLE_WEIGHT = 3.0
STANDFIRST_WEIGHT = 1.5
BODY_WEIGHT = 1.0
# Raw-evidence thresholds. Articles need one decent term; a comment must say a lot on its own.
ARTICLE_MIN_TOP = 1.0
COMMENT_MIN_TOP = 4.0
COMMENT_MIN_TERMS = 2  # one name-drop ("Merkel would never...") is not a topic of its own
RELATIVE_TOP = 0.35  # a secondary top-level topic needs this share of the best one's evidence
MIN_SUB = 1.0
RELATIVE_SUB = 0.25
MAX_TOP = 3
MAX_SUB_PER_TOP = 2
MAX_EVIDENCE = 5
SCORE_SCALE = 4.0  # strength = 1 - exp(-raw / SCORE_SCALE): ~0.22 for one weight-1 term, 0.92 at 10
SECTION_PRIOR = 3.0
PHRASE_BONUS = 1.5  # a multi-word term ("interest rates") is more specific than any one word
# a topic resting on one ambiguous word ("force" -> conflict, "cartel" -> crime) keeps this share
# of its evidence: enough to be a tag when nothing else is said, never ahead of real evidence
LONE_AMBIGUOUS = 0.3


class _Contrib(NamedTuple):
    """One matched term's share of the evidence, and where it was seen."""

    term: str
    contrib: float
    chain: tuple[str, ...]
    ambiguous: bool = False
    in_title: bool = False


class Tag(TypedDict):
    """One tag as emitted on events."""

    code: str
    label: str
    level: int
    score: float
    evidence: list[str]
    inherited: bool


@dataclass(frozen=True, slots=True)
class _Entry:
    term: str
    code: str
    weight: float
    case_sensitive: bool
    chain: tuple[str, ...]
    ambiguous: bool = False


def _parse_lexicon(path: Path, taxonomy: Taxonomy) -> list[tuple[str, str, float, bool, bool]]:
    """Read one term file into (term, code, weight, case_sensitive, ambiguous) rows; bad codes
    fail loudly."""
    rows: list[tuple[str, str, float, bool, bool]] = []
    code: str | None = None
    default = 1.0
    for lineno, raw_line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            code = line[1:-1].strip()
            if code not in taxonomy:
                raise ValueError(f"{path.name}:{lineno}: unknown or retired code {code}")
            default = 1.0
            continue
        if line.startswith("@weight"):
            default = float(line.split()[1])
            continue
        if code is None:
            raise ValueError(f"{path.name}:{lineno}: term before any [medtop:...] section")
        term, _, weight_s = raw_line.strip().partition("\t")
        weight = float(weight_s) if weight_s.strip() else default
        ambiguous = term.startswith("~")
        if ambiguous:
            term = term[1:]
        case_sensitive = term.startswith("=")
        if case_sensitive:
            term = term[1:]
        term = " ".join(term.split())
        if not case_sensitive:
            term = term.lower()
        if term:
            rows.append((term, code, weight, case_sensitive, ambiguous))
    return rows


_SEPARATORS = {c: " " for c in map(chr, range(128)) if not c.isalnum()}
_UNICODE_SEPARATORS = (
    "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00ab\u00bb\u00b7\u2022\u00b4\u00a0"
)
_SEPARATORS.update({c: " " for c in _UNICODE_SEPARATORS})
_TABLE = str.maketrans(_SEPARATORS)


# The same mapping as bytes: bytes.translate is ~10x faster than str.translate for ASCII text.
_BYTE_TABLE = bytes(b if b >= 128 or chr(b).isalnum() else 32 for b in range(256))

# The non-ASCII characters at which `_norm` splits words: the separators above and what
# str.split() takes for whitespace (none lies above U+3000; a test checks every code point).
_WORD_BREAKS = _UNICODE_SEPARATORS + "".join(
    c for c in map(chr, range(0x80, 0x3001)) if c.isspace() and c not in _UNICODE_SEPARATORS
)


def _norm(text: str) -> str:
    """Lower-case, punctuation to spaces, single spaces, padded: " inter korean talks "."""
    low = text.lower()
    if low.isascii():
        return f" {b' '.join(low.encode('ascii').translate(_BYTE_TABLE).split()).decode('ascii')} "
    for c in _UNICODE_SEPARATORS:
        if c in low:
            low = low.replace(c, " ")
    # UTF-8 multi-byte sequences are all >= 0x80, which the byte table leaves alone
    return f" {' '.join(low.encode('utf-8').translate(_BYTE_TABLE).decode('utf-8').split())} "


def _norm_with_offsets(text: str) -> tuple[str, list[int]]:
    """``_norm`` plus, for each normalised character, its index in ``text`` (for explain)."""
    low = text.lower()
    if len(low) != len(text):  # rare characters whose lower case is longer: keep 1:1
        low = "".join(c.lower()[:1] for c in text)
    chars = [" "]
    offsets = [0]
    for i, c in enumerate(low.translate(_TABLE)):
        if c.isspace():
            if chars[-1] != " ":
                chars.append(" ")
                offsets.append(i)
        else:
            chars.append(c)
            offsets.append(i)
    if chars[-1] != " ":
        chars.append(" ")
        offsets.append(len(text))
    return "".join(chars), offsets


def _stem(term: str) -> str:
    """One key for a word's forms ("force", "forces", "forced"): enough to count distinct words."""
    for suffix in ("ies", "es", "ed", "s", "d"):
        if term.endswith(suffix) and len(term) - len(suffix) >= 3:
            return term[: -len(suffix)]
    return term


def _plural(word: str) -> str:
    """Regular English plural of the last word ("ban" -> "bans", "tax" -> "taxes")."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if len(word) > 2 and word[-1] == "y" and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


class Tagger:
    """Tags articles and comments with IPTC Media Topics from weighted term evidence."""

    _default: Tagger | None = None
    _lock = threading.Lock()

    def __init__(self, taxonomy: Taxonomy, lexicon_dir: Path = LEXICON_DIR) -> None:
        self.taxonomy = taxonomy
        self._entries: list[_Entry] = []
        by_key: dict[str, list[int]] = {}
        seen: dict[tuple[str, str, bool], int] = {}
        for path in sorted(lexicon_dir.glob("*.txt")):
            for term, code, weight, cs, amb in _parse_lexicon(path, taxonomy):
                key = (term, code, cs)
                if key in seen:  # a later file (e.g. a source's own list) overrides the weight
                    old = self._entries[seen[key]]
                    weight *= PHRASE_BONUS if " " in term else 1.0
                    self._entries[seen[key]] = _Entry(term, code, weight, cs, old.chain, amb)
                    continue
                if " " in term:
                    weight *= PHRASE_BONUS
                seen[key] = len(self._entries)
                by_key.setdefault(term.lower(), []).append(len(self._entries))
                self._entries.append(_Entry(term, code, weight, cs, taxonomy.chain(code), amb))
        # Keys are padded, punctuation-free forms (" north korea "), matched against the text
        # normalised the same way: every automaton hit is then a whole-word match, which keeps
        # the per-hit Python work (the bulk of the cost on short comments) minimal.
        keys: dict[str, list[int]] = {}
        for term_key, ids in by_key.items():
            key = _norm(term_key)
            if key.strip():
                keys.setdefault(key, []).extend(ids)
        plurals: dict[str, list[int]] = {}
        for key, ids in keys.items():
            plain = [i for i in ids if not self._entries[i].case_sensitive]
            if plain and key[-2].isalpha():
                plural = _plural(key[1:-1])
                if f" {plural} " not in keys:
                    plurals.setdefault(f" {plural} ", []).extend(plain)
        keys.update(plurals)
        self._automaton = ahocorasick.Automaton()
        native_keys: list[tuple[str, list[int], bool, float]] = []
        for key, ids in keys.items():
            has_cs = any(self._entries[i].case_sensitive for i in ids)
            # the most evidence one hit of this key can add: the weights of all its entries
            most = sum(max(0.0, self._entries[i].weight) for i in ids)
            self._automaton.add_word(key, (len(key), tuple(ids), has_cs, most))
            native_keys.append((key, ids, has_cs, most))
        self._automaton.make_automaton()
        self._cs_patterns: dict[int, re.Pattern[str]] = {}
        self._level = {c: k.level for c, k in taxonomy.concepts.items()}
        self._top = {c: taxonomy.chain(c)[-1] for c in taxonomy.concepts}
        self._native = self._native_index(native_keys)
        sections = lexicon_dir / "sections.json"
        self._sections: dict[str, str] = {}
        if sections.exists():
            raw = json.loads(sections.read_text(encoding="utf-8"))
            for name, code in raw.get("sections", {}).items():
                if code not in taxonomy:
                    raise ValueError(f"sections.json: unknown code {code} for {name!r}")
                self._sections[name.lower()] = code

    def _native_index(self, keys: list[tuple[str, list[int], bool, float]]) -> Any:
        """The lexicon, taxonomy and constants copied into the compiled tagger
        (native/src/tagger.rs), which runs tag_comment's and tag_article's matching and scoring."""
        from newspipe_native import TagIndex

        codes = list(self.taxonomy.concepts)
        self._code_index = {c: n for n, c in enumerate(codes)}
        ix = self._code_index
        concepts = self.taxonomy.concepts
        params = {
            name: float(globals()[name])
            for name in (
                "TITLE_WEIGHT", "STANDFIRST_WEIGHT", "BODY_WEIGHT", "ARTICLE_MIN_TOP",
                "COMMENT_MIN_TOP", "COMMENT_MIN_TERMS", "RELATIVE_TOP", "MIN_SUB", "RELATIVE_SUB",
                "MAX_TOP", "MAX_SUB_PER_TOP", "MAX_EVIDENCE", "SCORE_SCALE", "SECTION_PRIOR",
                "LONE_AMBIGUOUS",
            )
        }  # fmt: skip
        return TagIndex(
            [(c, concepts[c].label, concepts[c].level, ix[self._top[c]]) for c in codes],
            [
                (e.term, e.weight, e.case_sensitive, e.ambiguous, [ix[c] for c in e.chain])
                for e in self._entries
            ],
            keys,
            _WORD_BREAKS,
            sys.version_info >= (3, 12),  # builtin sum() of floats compensates from 3.12 on
            params,
        )

    @classmethod
    def load(cls) -> Tagger:
        """The process-wide tagger built from the shipped data (built once, then reused)."""
        if cls._default is None:
            with cls._lock:
                if cls._default is None:
                    cls._default = cls(Taxonomy.load())
        return cls._default

    @property
    def term_count(self) -> int:
        """Number of (term, code) entries loaded."""
        return len(self._entries)

    # -- matching -----------------------------------------------------------------------------

    def _select(
        self, norm: str, text: str, hits: list[Any] | None = None
    ) -> list[tuple[int, int, tuple[int, ...]]]:
        """Leftmost-longest whole-word matches in ``norm`` as (start, end_exclusive, entry ids).

        A case-sensitive entry (acronyms such as SEC, IT) counts only if its exact form occurs in
        the original text as a whole word. ``hits``: the automaton's hits on ``norm``, when the
        caller has them already.
        """
        # Hits arrive ordered by end position, longest first at each end. Keep leftmost-longest:
        # a later hit that starts at or before the previous kept one contains it and replaces it;
        # one that only partly overlaps it loses (the leftmost match wins).
        kept: list[tuple[int, int, tuple[int, ...]]] = []
        entries = self._entries
        for end, (length, ids, has_cs, _) in self._automaton.iter(norm) if hits is None else hits:
            if has_cs:
                ids = tuple(i for i in ids if not entries[i].case_sensitive or self._cs_ok(i, text))
                if not ids:
                    continue
            start = end - length + 2
            if kept:
                if start >= kept[-1][1]:
                    kept.append((start, end, ids))
                    continue
                if start > kept[-1][0]:
                    continue
                while kept and kept[-1][0] >= start:
                    kept.pop()
                if kept and kept[-1][1] > start:
                    continue
            kept.append((start, end, ids))
        return kept

    def _cs_ok(self, i: int, text: str) -> bool:
        """Whether case-sensitive entry ``i`` occurs in ``text`` as a whole word, in its case."""
        term = self._entries[i].term
        if term not in text:  # cheap C-level test first; most hits on "it", "us" end here
            return False
        pattern = self._cs_patterns.get(i)
        if pattern is None:
            pattern = re.compile(rf"(?<![^\W_]){re.escape(term)}(?![^\W_])")
            self._cs_patterns[i] = pattern
        return pattern.search(text) is not None

    def _accumulate(self, parts: list[tuple[str, float]]) -> dict[int, float]:
        """Field-weighted occurrence mass per entry id."""
        mass: dict[int, float] = {}
        for text, factor in parts:
            if not text:
                continue
            for _, _, ids in self._select(_norm(text), text):
                for i in ids:
                    mass[i] = mass.get(i, 0.0) + factor
        return mass

    def _score(
        self, mass: dict[int, float], in_title: frozenset[int] = frozenset()
    ) -> tuple[dict[str, float], list[_Contrib]]:
        """Roll entry evidence up to every ancestor; repeats count sub-linearly (sqrt)."""
        raw: dict[str, float] = {}
        contribs: list[_Contrib] = []
        entries = self._entries
        for i, m in mass.items():
            e = entries[i]
            if not e.weight:  # a weight-0 term only blocks shorter terms inside it
                continue
            contrib = e.weight * m**0.5
            contribs.append(_Contrib(e.term, contrib, e.chain, e.ambiguous, i in in_title))
            for code in e.chain:
                raw[code] = raw.get(code, 0.0) + contrib
        return raw, contribs

    def _rank_tops(
        self, raw: dict[str, float], contribs: list[_Contrib]
    ) -> list[tuple[float, str, float]]:
        """Top-level topics best first, as (ranked evidence, code, whole evidence).

        A topic whose only evidence is one ambiguous word keeps LONE_AMBIGUOUS of it (and so do
        its sub-topics in ``raw``). Equal evidence is ordered by headline evidence, then distinct
        terms, then the strongest single term; the code only keeps the order reproducible when
        all of those are equal too.
        """
        evidence: dict[str, list[_Contrib]] = {}
        for c in contribs:
            evidence.setdefault(c.chain[-1], []).append(c)
        level = self._level
        ranked = []
        for code, v in raw.items():
            if level[code] != 1:
                continue
            whole = v
            own = evidence.get(code)
            if own and all(c.ambiguous for c in own) and len({_stem(c.term) for c in own}) == 1:
                v *= LONE_AMBIGUOUS
                for sub in [c for c in raw if self._top[c] == code]:
                    raw[sub] *= LONE_AMBIGUOUS
            ranked.append((round(v, 9), code, v, whole))
        ranked.sort(key=lambda r: -r[0])
        if len({r[0] for r in ranked}) < len(ranked):  # a tie: order it on the evidence

            def evidence_first(r: tuple[float, str, float, float]) -> tuple[float, ...]:
                own = evidence.get(r[1], [])
                title = round(sum(c.contrib for c in own if c.in_title), 9)
                strongest = max((c.contrib for c in own), default=0.0)
                return (-r[0], -title, -len({_stem(c.term) for c in own}), -strongest)

            ranked.sort(key=lambda r: (*evidence_first(r), r[1]))
        return [(v, code, whole) for _, code, v, whole in ranked]

    def _tags(
        self, raw: dict[str, float], contribs: list[_Contrib], min_top: float, min_terms: int = 1
    ) -> list[Tag]:
        """Select top-level topics and their best-supported sub-topics."""
        level = self._level
        tops = self._rank_tops(raw, contribs)
        # the thresholds read the whole evidence: a lone ambiguous word still tags a text that
        # says nothing else, it only loses its rank (and score) to real evidence
        if not tops or tops[0][2] < min_top:
            return []
        best = tops[0][0]
        out: list[Tag] = []
        for v, top, whole in tops[:MAX_TOP]:
            if whole < min_top or v < RELATIVE_TOP * best:
                break
            if min_terms > 1 and sum(1 for c in contribs if c.chain[-1] == top) < min_terms:
                continue
            out.append(self._make(top, v, best, contribs))
            floor = max(MIN_SUB, RELATIVE_SUB * v)
            subs = sorted(
                (
                    (sv, c)
                    for c, sv in raw.items()
                    if sv >= floor and level[c] >= 2 and self._top[c] == top
                ),
                key=lambda x: (-x[0], level[x[1]], x[1]),
            )
            for sv, c in subs[:MAX_SUB_PER_TOP]:
                out.append(self._make(c, sv, best, contribs))
        # stable: equal scores keep the evidence order of _rank_tops, never the code order
        out.sort(key=lambda t: (-t["score"], t["level"]))
        return out

    def _make(self, code: str, raw: float, best: float, contribs: list[_Contrib]) -> Tag:
        """Build one tag; evidence = the strongest terms whose chain passes through ``code``.

        score = strength of the best topic's evidence (saturating) x this code's share of it, so
        secondary topics rank below the main one even when a long text saturates the strength.
        """
        concept = self.taxonomy[code]
        ev: dict[str, float] = {}
        for c in contribs:
            if code in c.chain:
                ev[c.term] = ev.get(c.term, 0.0) + c.contrib
        terms = sorted(ev, key=lambda t: (-ev[t], t))[:MAX_EVIDENCE]
        return {
            "code": code,
            "label": concept.label,
            "level": concept.level,
            "score": round((1.0 - math.exp(-best / SCORE_SCALE)) * min(1.0, raw / best), 4),
            "evidence": terms,
            "inherited": False,
        }

    # -- public API ---------------------------------------------------------------------------

    def tag_article(
        self, title: str, standfirst: str | None, body: str, section: str | None = None
    ) -> list[Tag]:
        """Tags for an article; ``section`` (a source's own section name) adds a prior if mapped.

        Matching and scoring run compiled (the same steps as ``_py_tag_article``).
        """
        prior = None
        if section:
            code = self._sections.get(section.lower())
            if code is not None:
                chain = [self._code_index[c] for c in self.taxonomy.chain(code)]
                prior = (f"section:{section.lower()}", chain)
        return cast(list[Tag], self._native.tag_article(title, standfirst, body, prior))

    def _py_tag_article(
        self, title: str, standfirst: str | None, body: str, section: str | None = None
    ) -> list[Tag]:
        """The reference implementation of ``tag_article`` (the compiled path must agree)."""
        mass = self._accumulate([(title, TITLE_WEIGHT)])
        in_title = frozenset(mass)
        for i, m in self._accumulate(
            [(standfirst or "", STANDFIRST_WEIGHT), (body, BODY_WEIGHT)]
        ).items():
            mass[i] = mass.get(i, 0.0) + m
        raw, contribs = self._score(mass, in_title)
        if section:
            code = self._sections.get(section.lower())
            if code is not None:
                chain = self.taxonomy.chain(code)
                contribs.append(_Contrib(f"section:{section.lower()}", SECTION_PRIOR, chain))
                for c in chain:
                    raw[c] = raw.get(c, 0.0) + SECTION_PRIOR
        return self._tags(raw, contribs, ARTICLE_MIN_TOP)

    def inherit(self, tags: list[Tag] | list[dict]) -> list[Tag]:
        """An article's tags as its comments carry them (copies, inherited=True)."""
        return [cast(Tag, {**t, "inherited": True, "evidence": list(t.get("evidence", ()))})
                for t in tags]  # fmt: skip

    def tag_comment(
        self,
        text: str,
        inherited: list[Tag] | list[dict] | None = None,
        *,
        inherited_ready: list[Tag] | None = None,
    ) -> list[Tag]:
        """Article tags (copied, inherited=True) plus the comment's own tags on strong evidence.

        `inherited_ready`: the article's tags already through `inherit`, shared read-only by the
        comments of one batch (the core copies an article's tags once, not once per comment).
        Matching and scoring run compiled (the same steps as ``_py_tag_comment``).
        """
        out: list[Tag] = (
            list(inherited_ready) if inherited_ready is not None else self.inherit(inherited or [])
        )
        own = self._native.tag_comment(text)
        if own is None:  # no topic of the comment's own can reach the threshold
            return out
        codes = {t["code"] for t in out}
        out.extend(t for t in own if t["code"] not in codes)
        if len(out) > len(codes):
            out.sort(key=lambda t: (-t["score"], t["level"]))
        return out

    def _py_tag_comment(
        self,
        text: str,
        inherited: list[Tag] | list[dict] | None = None,
        *,
        inherited_ready: list[Tag] | None = None,
    ) -> list[Tag]:
        """The reference implementation of ``tag_comment`` (the compiled path must agree)."""
        out: list[Tag] = (
            list(inherited_ready) if inherited_ready is not None else self.inherit(inherited or [])
        )
        # Cheapest bound first: every raw hit's whole weight, before the leftmost-longest
        # selection (which only drops hits) and before repeats count sub-linearly. Most comments
        # cannot reach the own-tag threshold even so, and pay for one automaton pass only.
        norm = _norm(text)
        hits = list(self._automaton.iter(norm))
        if not hits:
            return out
        most = 0.0
        for _, value in hits:
            most += value[3]
        if most * BODY_WEIGHT < COMMENT_MIN_TOP:
            return out
        mass: dict[int, float] = {}
        for _, _, ids in self._select(norm, text, hits):
            for i in ids:
                mass[i] = mass.get(i, 0.0) + BODY_WEIGHT
        # Then an exact test on the selected evidence: `_tags` gives a comment own tags only if
        # some top-level topic has COMMENT_MIN_TOP evidence from COMMENT_MIN_TERMS terms (summed
        # in `_score`'s order, so the floats are the same); scoring is skipped otherwise.
        entries = self._entries
        per_top: dict[str, list[float]] = {}
        for i, m in mass.items():
            e = entries[i]
            if e.weight:
                acc = per_top.setdefault(e.chain[-1], [0.0, 0.0])
                acc[0] += e.weight * m**0.5
                acc[1] += 1
        if not any(v >= COMMENT_MIN_TOP and n >= COMMENT_MIN_TERMS for v, n in per_top.values()):
            return out
        codes = {t["code"] for t in out}
        raw, contribs = self._score(mass)
        own = self._tags(raw, contribs, COMMENT_MIN_TOP, COMMENT_MIN_TERMS)
        out.extend(t for t in own if t["code"] not in codes)
        if len(out) > len(codes):
            out.sort(key=lambda t: (-t["score"], t["level"]))
        return out

    def explain(self, text: str) -> list[dict]:
        """Every term match with its position in ``text``, code and weight: the why behind a tag."""
        norm, offsets = _norm_with_offsets(text)
        out: list[dict] = []
        for start, stop, ids in self._select(norm, text):
            a, b = offsets[start], offsets[stop - 1] + 1
            for i in ids:
                e = self._entries[i]
                out.append(
                    {
                        "term": e.term,
                        "text": text[a:b],
                        "start": a,
                        "end": b,
                        "code": e.code,
                        "label": self.taxonomy[e.code].label,
                        "top": e.chain[-1],
                        "weight": e.weight,
                    }
                )
        return out

    def top_level(self, tags: list[Tag] | list[dict]) -> str | None:
        """The highest-scoring level-1 code among tags (what the evaluation predicts)."""
        for t in tags:
            if t["level"] == 1:
                return t["code"]
        return None
