"""Captured text pages (a browser's "save as text"): headline, caption, body, fact boxes,
related links, reader comments and footer, told apart by the source's `TextRules`.
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.contracts import SCHEMA_VERSION
from pipeline.extract.base import (
    TEXT_SOURCES,
    Page,
    TextRules,
    register_format,
)
from pipeline.extract.quotes import mark_quotes
from pipeline.ids import article_id

GENERIC = TextRules(source="captured-text", detect=lambda text: True)
_BULLET = "•"
_SENTENCE_END = tuple(".!?\"'”’)…:")


def _blocks(lines: list[str]) -> list[list[str]]:
    """Consecutive non-blank (stripped) lines; a blank line ends a block."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        line = line.strip()
        if line:
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _is_heading(block: list[str]) -> bool:
    text = " ".join(block)
    return len(block) == 1 and len(text) <= 80 and not text.endswith(_SENTENCE_END)


def _article_parts(lines: list[str], furniture: re.Pattern[str], rules: TextRules
                   ) -> dict[str, Any]:  # fmt: skip
    blocks = [
        kept
        for block in _blocks(lines)
        if (kept := [line for line in block if not furniture.fullmatch(line)])
    ]
    parts: dict[str, Any] = {"title": "", "captions": [], "body": "", "fact_boxes": []}
    if not blocks:
        return parts
    parts["title"] = " ".join(blocks.pop(0))
    if rules.caption_after_title and len(blocks) > 1 and _is_caption(blocks[0]):
        parts["captions"].append(" ".join(blocks.pop(0)))
    body: list[str] = []
    for block in blocks:
        if all(line.startswith(_BULLET) for line in block):
            title = body.pop() if body and _is_heading(body[-1].split("\n")) else ""
            items = [line.lstrip(_BULLET).strip() for line in block]
            parts["fact_boxes"].append({"title": title, "items": items})
        else:
            body.append("\n".join(block))
    parts["body"] = "\n\n".join(body)
    return parts


def _is_caption(block: list[str]) -> bool:
    """A picture caption right under the headline: no sentence-final punctuation at its end."""
    return not block[-1].endswith(_SENTENCE_END)


def _comments(lines: list[str], rules: TextRules, furniture: re.Pattern[str]
              ) -> list[dict[str, Any]]:  # fmt: skip
    start = re.compile(rules.comment_start, re.IGNORECASE)
    removed = re.compile(rules.removed_notice, re.IGNORECASE | re.DOTALL)
    comments: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    body: list[str] = []

    def close() -> None:
        if current is None:
            return
        text = "\n\n".join("\n".join(block) for block in _blocks(body))
        if removed.fullmatch(" ".join(text.split())):
            current.update(removed=True, text="")
        else:
            current.update(removed=False, text=text)
        comments.append(current)

    for line in lines:
        stripped = line.strip()
        m = start.fullmatch(stripped)
        if m:
            close()
            number = int(m.group(1))
            current, body = {"source_comment_id": str(number), "number": number}, []
        elif current is not None and not furniture.fullmatch(stripped):
            body.append(stripped)
    close()
    return comments


def _first(lines: list[str], patterns: tuple[str, ...], start: int = 0) -> int | None:
    regex = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    for i in range(start, len(lines)):
        if regex.fullmatch(lines[i].strip()):
            return i
    return None


class CapturedText:
    """The catch-all format: anything that is not markup is a captured text page."""

    name = "captured-text"

    def detect(self, text: str) -> bool:
        return True

    def extract(self, text: str, url: str | None, source: str | None) -> Page:
        rules = next((r for r in TEXT_SOURCES if r.detect(text)), GENERIC)
        furniture = rules.furniture_re()
        lines = text.splitlines()
        first_comment = _first(lines, (rules.comment_start,))
        footer = _first(lines, rules.footer_start, first_comment or 0)
        end = _first(lines, (rules.article_end,))
        if end is None:
            end = min(i for i in (first_comment, footer, len(lines)) if i is not None)
        article_lines = lines[:end]
        comment_lines = lines[first_comment:footer] if first_comment is not None else []
        pagination = None
        page_re = re.compile(rules.pagination, re.IGNORECASE)
        for line in lines[footer or 0 :]:
            m = page_re.fullmatch(line.strip())
            if m:
                pagination = {"page": int(m.group(1)), "pages": int(m.group(2))}
                break
        name = source or rules.source
        parts = _article_parts(article_lines, furniture, rules)
        article: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "source": name}
        if url:
            article["url"] = url
        article.update(parts)
        if pagination:
            article["pagination"] = pagination
        comments = _comments(comment_lines, rules, furniture)
        mark_quotes(comments)
        article["comment_count"] = len(comments)
        for comment in comments:
            comment.update(schema_version=SCHEMA_VERSION, source=name)
            if url:
                # with a URL the id is final; without one `ingest` may still add a URL, so the
                # comment names its article by title and the id is derived later (the same way)
                comment["article_url"] = url
                comment["article_id"] = article_id(url)
            else:
                comment["article_title"] = article["title"]
        return Page(article=article, comments=comments)


register_format(CapturedText())
