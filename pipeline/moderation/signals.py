"""The cheap text signals: editors' words, links, shouting. Pure functions of a comment's text.

Each is written for the comment volume (thousands a second on one core): a quick test that
rules most comments out first, the exact work only for the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ahocorasick

from pipeline.moderation.rules import BANNED_WORDS, SUSPECT_WORDS, Rules


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class WordMatcher:
    """Banned and suspect entries found in a text on word boundaries, case-insensitively.

    One Aho-Corasick automaton holds both lists (one pass over the text, whatever the lists'
    length); entries may be phrases ("go to hell"). A match counts only when the characters on
    either side are not letters, digits or `_`, so "ass" is not found in "class" or "passed".
    The automaton is rebuilt only when the rules snapshot's lists change (`sync`), not per batch.
    """

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._automaton: ahocorasick.Automaton | None = None
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
        self._key = key
        self.builds += 1

    def find(self, text: str) -> dict[str, list[str]]:
        """{list name: sorted entries found} for the lists with a match in `text`."""
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


# A URL with a scheme or `www.`, or a bare host name ending in a common top-level domain; the
# host is what the evidence names (a moderator recognises a domain, not a tracking query string).
_URL = re.compile(
    r"(?:\b(?:https?|ftp)://|\bwww\.)([a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)+)"
    r"|\b((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:com|net|org|info|biz|io|co|ly|me|gl|ru|cn|"
    r"uk|de|us|tv|xyz|top|site|online|club|link|click|gov|edu)\b)(?![.-]?[a-z0-9])",
    re.IGNORECASE,
)
_URL_HINTS = ("://", "www.", ".com", ".net", ".org", ".io", ".ly", ".co", ".ru", ".xyz", ".gl",
              ".info", ".biz", ".me", ".cn", ".uk", ".de", ".us", ".tv", ".top", ".site",
              ".online", ".club", ".link", ".click", ".gov", ".edu")  # fmt: skip


def link_domains(text: str) -> list[str]:
    """The host names of the links in `text`, lowercased, in order of first appearance."""
    lowered = text.lower()
    if not any(h in lowered for h in _URL_HINTS):
        return []
    out: list[str] = []
    for m in _URL.finditer(lowered):
        host = (m.group(1) or m.group(2)).rstrip(".")
        host = host.removeprefix("www.")
        if host and host not in out:
            out.append(host)
    return out


# ASCII letters kept, everything else deleted; and only the capitals kept
_NOT_LETTERS = bytes(c for c in range(256) if not (65 <= c <= 90 or 97 <= c <= 122))
_NOT_CAPITALS = bytes(c for c in range(256) if not 65 <= c <= 90)


@dataclass(frozen=True, slots=True)
class Shouting:
    ratio: float  # capitals / letters
    letters: int


def capitals(text: str) -> Shouting:
    """The share of capitals among the letters of `text` (bytes.translate for ASCII text)."""
    if text.isascii():
        raw = text.encode()
        letters = len(raw.translate(None, _NOT_LETTERS))
        upper = len(raw.translate(None, _NOT_CAPITALS))
    else:
        letters = upper = 0
        for ch in text:
            if ch.isalpha():
                letters += 1
                upper += ch.isupper()
    return Shouting(upper / letters if letters else 0.0, letters)
