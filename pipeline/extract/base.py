"""The extraction contract: a `Page` out, and registries so a new format or source is one file.

Formats (captured text, HTML) register a `detect` + `extract` pair; captured-text *sources*
(BBC, ...) register a `TextRules` value saying which lines are furniture and how comments look.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.normalize.boilerplate import BOILERPLATE_PATTERNS


@dataclass
class Page:
    """One captured page: a raw article event and its raw comment events (schemas/README.md)."""

    article: dict[str, Any]
    comments: list[dict[str, Any]] = field(default_factory=list)


class Format(Protocol):
    """A page format (captured text, HTML): `detect` looks at the content, not the file name."""

    name: str

    def detect(self, text: str) -> bool: ...

    def extract(self, text: str, url: str | None, source: str | None) -> Page: ...


FORMATS: list[Format] = []


def register_format(fmt: Format) -> Format:
    """Later registrations are tried first (a specific format before a catch-all)."""
    FORMATS.insert(0, fmt)
    return fmt


@dataclass(frozen=True)
class TextRules:
    """How one source's captured text pages look. Adding a source = one file with one of these."""

    source: str
    detect: Callable[[str], bool]
    # lines (whole, stripped) that are page furniture, on top of the shared boilerplate list
    furniture: tuple[str, ...] = ()
    # a line that ends the article text; what follows up to the comments is related links
    article_end: str = r"More on This Story"
    # a line that starts one comment and carries its number
    comment_start: str = r"(?:•\s*)?Comment number (\d+)\.?"
    # a line that precedes a comment start ("rate this" widget)
    comment_widget: str = r"(?:•\s*)?rate this"
    # the moderator notice of a removed comment (the whole comment text)
    removed_notice: str = r"This comment was removed because the moderators found it broke .*"
    # lines after which nothing is content any more
    footer_start: tuple[str, ...] = (r"Page \d+ of \d+",)
    pagination: str = r"Page (\d+) of (\d+)"
    caption_after_title: bool = True

    def furniture_re(self) -> re.Pattern[str]:
        patterns = (*BOILERPLATE_PATTERNS, *self.furniture)
        return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


TEXT_SOURCES: list[TextRules] = []


def register_text_source(rules: TextRules) -> TextRules:
    TEXT_SOURCES.insert(0, rules)
    return rules
