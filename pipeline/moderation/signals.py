"""The cheap text signals: editors' words, links, shouting. Pure functions of a comment's text.

Each is written for the comment volume (thousands a second on one core): a quick test that
rules most comments out first, the exact work only for the rest. `SignalScanner.scan` finds all
three for a whole batch in one compiled call (`newspipe_native.TextSignals`,
native/src/modsignals.rs), so the policy's per-comment Python only combines them; `WordMatcher.
_py_find`, `link_domains` and `capitals` are its reference (`SignalScanner._py_scan`), kept for the
texts Rust cannot read (lone surrogates) and compared with it in the tests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import ahocorasick

from pipeline.moderation.chars import case_tables, spaces
from pipeline.moderation.rules import BANNED_WORDS, SUSPECT_WORDS, Rules


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class WordMatcher:
    """Banned and suspect entries found in a text on word boundaries, case-insensitively.

    One Aho-Corasick automaton holds both lists (one pass over the text, whatever the lists'
    length); entries may be phrases ("go to hell"). A match counts only when the characters on
    either side are not letters, digits or `_`, so "ass" is not found in "class" or "passed".
    The automaton is rebuilt only when the rules snapshot's lists change (`sync`), not per batch.

    `find` runs compiled (`newspipe_native.WordLists`, native/src/moderation.rs: the same
    lists in a Rust Aho-Corasick automaton over the text casefolded with Python's own tables);
    `_py_find` is its reference, kept for the texts Rust cannot read (lone surrogates) and
    compared with it in the tests.
    """

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._automaton: ahocorasick.Automaton | None = None
        self._native: Any = None
        self.builds = 0  # how many times an automaton was built (the tests read it)

    def sync(self, rules: Rules) -> None:
        """Use `rules`' lists; a no-op while its version and lists are the ones already built."""
        banned, suspect = rules.get(BANNED_WORDS), rules.get(SUSPECT_WORDS)
        key = (rules.version, banned, suspect)
        if key == self._key:
            return
        automaton = ahocorasick.Automaton()
        # an entry on both lists is banned: the stricter list wins
        for kind, entries in ((SUSPECT_WORDS, suspect), (BANNED_WORDS, banned)):
            for entry in entries:
                automaton.add_word(entry, (kind, entry))
        if len(automaton):
            automaton.make_automaton()
            self._automaton = automaton
        else:
            self._automaton = None
        from newspipe_native import WordLists

        # an entry with a lone surrogate can only occur in a text that has one, and such texts
        # go to `_py_find`: the compiled lists leave it out
        self._native = WordLists(case_tables(), _utf8(banned), _utf8(suspect))
        self._key = key
        self.builds += 1

    @property
    def compiled(self) -> Any:
        """The compiled lists of the last `sync` (`newspipe_native.WordLists`), None before."""
        return self._native

    def find(self, text: str) -> dict[str, list[str]]:
        """{list name: sorted entries found} for the lists with a match in `text`."""
        if self._automaton is None or not text:
            return {}
        found = self._native.find(text)
        if found is None:
            return self._py_find(text)
        banned, suspect = found
        out: dict[str, list[str]] = {}
        if banned:
            out[BANNED_WORDS] = banned
        if suspect:
            out[SUSPECT_WORDS] = suspect
        return out

    def _py_find(self, text: str) -> dict[str, list[str]]:
        """`find` with pyahocorasick and a Python loop over the matches: the reference."""
        automaton = self._automaton
        if automaton is None or not text:
            return {}
        folded = text.casefold()
        end_of_text = len(folded) - 1
        found: dict[str, set[str]] = {}
        for end, (kind, entry) in automaton.iter(folded):
            start = end - len(entry) + 1
            if start > 0 and _is_word_char(folded[start - 1]):
                continue
            if end < end_of_text and _is_word_char(folded[end + 1]):
                continue
            found.setdefault(kind, set()).add(entry)
        return {kind: sorted(words) for kind, words in found.items()}


def _utf8(entries: frozenset[str]) -> list[str]:
    return sorted(e for e in entries if e.isascii() or not _has_surrogate(e))


def _has_surrogate(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


# One whitespace-separated token as a link: a scheme or `www.`, then a host; or a bare host name
# ending in a common top-level domain. The host is what the evidence names (a moderator
# recognises a domain, not a tracking query string).
_LINK = re.compile(
    r"(?:(?:https?|ftp)://|www\.)(?:www\.)?([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)+)"
    r"|((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:com|net|org|info|biz|io|co|ly|me|gl|ru|cn|uk|"
    r"de|us|tv|xyz|top|site|online|club|link|click|gov|edu))(?![a-z0-9-])(?:[/?#:]|$)"
)
_EDGES = "()[]<>{}\"'`“”‘’,;!?*"
# what every link has and few sentences do: a scheme, or a dot followed by two letters
# ("example.com", but not "end. Next"); tokens are looked at only in texts that have it
_URL_HINT = re.compile(r"\.[a-zA-Z]{2}")  # a literal first character: the fast search path


def link_domains(text: str) -> list[str]:
    """The host names of the links in `text`, lowercased, in order of first appearance."""
    if "://" not in text and _URL_HINT.search(text) is None:
        return []
    out: list[str] = []
    for token in text.lower().split():
        if "." not in token:
            continue
        m = _LINK.match(token.strip(_EDGES))
        if m is None:
            continue
        host = (m.group(1) or m.group(2)).rstrip(".-")
        if host and host not in out:
            out.append(host)
    return out


# ASCII capitals -> "U", small letters -> "l", every other byte a space: then two counts
_LETTER_KINDS = bytes(85 if 65 <= c <= 90 else 108 if 97 <= c <= 122 else 32 for c in range(256))


def capitals(text: str, min_capitals: int = 0) -> tuple[float, int]:
    """(capitals / letters, letters) over the ASCII letters of `text` (one bytes.translate and
    two counts, no Python loop per character). Letters outside ASCII are not counted: accented
    capitals are a minority of a Latin-script text's letters, and scripts without case cannot
    shout. With fewer than `min_capitals` capitals the answer is (0.0, 0) at once (the caller
    needs at least that many to call it shouting)."""
    raw = text.encode() if text.isascii() else text.encode("ascii", "ignore")
    kinds = raw.translate(_LETTER_KINDS)
    upper = kinds.count(b"U")
    if upper < min_capitals:
        return 0.0, 0
    letters = upper + kinds.count(b"l")
    return (upper / letters if letters else 0.0), letters


class Signals(NamedTuple):
    """What a comment's text alone says; None where a signal is absent."""

    banned: list[str] | None  # banned entries found, sorted
    suspect: list[str] | None  # suspect entries found, sorted
    domains: list[str] | None  # `link_domains`
    shouting: tuple[float, int] | None  # `capitals`' (ratio, letters) when the text shouts


class SignalScanner:
    """The text signals of a batch of comments: a comment's entries of the matcher's lists, its
    link domains, and whether it shouts (at least `ratio` capitals among at least `min_letters`
    ASCII letters)."""

    def __init__(self, matcher: WordMatcher, min_letters: int, ratio: float) -> None:
        from newspipe_native import TextSignals

        self.matcher = matcher
        self.min_letters = min_letters
        self.ratio = ratio
        # shouting needs ratio x min letters capitals at least: fewer, and no need to count more
        self.min_capitals = int(ratio * min_letters)
        self._native = TextSignals(case_tables(), spaces(), self.min_capitals, min_letters, ratio)

    def scan(self, texts: Sequence[str]) -> dict[int, Signals]:
        """{index in `texts`: its signals} for the texts with any (most have none)."""
        hits, left = self._native.scan(texts, self.matcher.compiled)
        found: dict[int, Any] = dict(hits)
        for i in left:
            signals = self._py_signals(texts[i])
            if signals is not None:
                found[i] = signals
        return found

    def _py_scan(self, texts: Sequence[str]) -> dict[int, Signals]:
        """`scan` with the Python functions: the reference."""
        found = {}
        for i, text in enumerate(texts):
            signals = self._py_signals(text)
            if signals is not None:
                found[i] = signals
        return found

    def _py_signals(self, text: str) -> Signals | None:
        words = self.matcher._py_find(text)
        domains = link_domains(text)
        ratio, letters = capitals(text, self.min_capitals)
        shouting = (ratio, letters) if letters >= self.min_letters and ratio >= self.ratio else None
        banned, suspect = words.get(BANNED_WORDS), words.get(SUSPECT_WORDS)
        if not (banned or suspect or domains or shouting):
            return None
        return Signals(banned or None, suspect or None, domains or None, shouting)
