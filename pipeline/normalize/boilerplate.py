"""Page furniture that is never content: widget, pagination and footer lines of captured pages.

Shared by the extractors (to drop lines) and by `normalize_article` (a body made only of these is
empty). Patterns match a whole normalized paragraph or line, case-insensitively.
"""

from __future__ import annotations

import re

BOILERPLATE_PATTERNS: tuple[str, ...] = (
    r"(?:•\s*)?rate this",
    r"(?:•\s*)?comment number \d+\.?",
    r"jump to comments(?: pagination)?",
    r"this entry is now closed for comments\.?",
    r"comments? (?:are|is) (?:now )?closed\.?",
    r"more on this story",
    r"more [\w ]{1,40} stories",
    r"page \d+ of \d+",
    r"(?:share|print|email) this (?:page|story|article)",
    r"advertisement",
    r"related (?:stories|topics|links|content)",
    r"read more\.?",
    r".{0,20}© \d{4}\b.{0,200}read more\.?",
    r"this page is best viewed in an up-to-date web browser.*",
    r"(?:please )?(?:enable|upgrade) (?:javascript|your browser).*",
)
BOILERPLATE_LINE = re.compile("|".join(f"(?:{p})" for p in BOILERPLATE_PATTERNS), re.IGNORECASE)


def is_boilerplate(line: str) -> bool:
    """True when the whole (stripped) line is page furniture."""
    return BOILERPLATE_LINE.fullmatch(line.strip()) is not None
