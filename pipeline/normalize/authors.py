"""Comment author names without the comment system's furniture around them.

Extractors read the author block of a comment as text, and that block carries more than the name:
WordPress prints `<span class="says">says:</span>` after it, themes put `Reply` / `Report` links
and avatar images (whose alt text is "Avatar of NAME" or "NAME's avatar") beside it. The name is
what is left; a block that is only furniture has no author.
"""

from __future__ import annotations

import re

_WORDS = r"says|said|wrote|writes|commented|replied"
_ACTIONS = r"reply|report(?: abuse| comment)?|flag|permalink|log in to reply"
_TRAILING = re.compile(
    rf"(?:\s*[\-|·•]?\s*(?:(?:{_WORDS})\s*:?|(?:{_ACTIONS})\b\.?|\(\s*(?:{_ACTIONS})\s*\)))+\s*$",
    re.IGNORECASE,
)
_LEADING = re.compile(
    r"^\s*(?:(?:avatar|photo|picture|profile (?:picture|photo|image)|image)\s+(?:of|for)\s+"
    r"|(?:posted|written|comment)\s+by\s+|by\s+(?=\S))",
    re.IGNORECASE,
)
_AVATAR_SUFFIX = re.compile(
    r"(?:['’]s)?\s+(?:avatar|profile (?:picture|photo|image))$", re.IGNORECASE
)
_ONLY_FURNITURE = re.compile(
    rf"^(?:avatar|anonymous avatar|(?:{_WORDS})|(?:{_ACTIONS}))?\s*:?$", re.IGNORECASE
)


# any furniture at all? (most names have none: one search instead of the loop below)
_HINT = re.compile(
    rf"{_WORDS}|{_ACTIONS}|avatar|photo|picture|profile|image|posted|written|comment|\bby\b",
    re.IGNORECASE,
)


def clean_author(name: str) -> str:
    """`name` without "says:", "Reply", "Report" and avatar alt text; "" when nothing is left.

    Expects normalized text (one line). Only edges are touched: "Reply Guy" keeps its name
    unless the whole of it is furniture, and a name with "says" inside is left alone.
    """
    previous = None
    out = name.strip()
    if not _HINT.search(out):
        previous = out
    while out != previous:
        previous = out
        out = _TRAILING.sub("", out)
        out = _LEADING.sub("", out)
        out = _AVATAR_SUFFIX.sub("", out).strip(" \t:|-·•")
    if _ONLY_FURNITURE.match(out):
        return ""
    words = out.split()
    half = len(words) // 2
    if half and len(words) % 2 == 0 and words[:half] == words[half:]:
        return " ".join(words[:half])  # the avatar's alt text and the name link, side by side
    return out
