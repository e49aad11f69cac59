"""Which comment quotes an earlier one: only an extractor that sees the whole page can tell."""

from __future__ import annotations

from typing import Any

from pipeline.normalize.text import normalize_text

MIN_QUOTE_CHARS = 40  # shorter repeats ("I agree.") are coincidence, not quotation


def _order(comment: dict[str, Any], position: int) -> int:
    number = comment.get("number")
    return number if isinstance(number, int) else position


def mark_quotes(comments: list[dict[str, Any]]) -> None:
    """Set `quotes` / `quoted_text` on each comment containing the whole text of an earlier one.

    Earlier means a lower comment number (pages list newest first), else an earlier position.
    The longest quoted comment wins. O(n^2) over one page's comments, which is small.
    """
    texts = [normalize_text(c.get("text")) for c in comments]
    orders = [_order(c, i) for i, c in enumerate(comments)]
    for i, comment in enumerate(comments):
        if comment.get("removed") or comment.get("quotes") or not texts[i]:
            continue
        best: int | None = None
        for j, earlier in enumerate(texts):
            if (
                j == i
                or orders[j] >= orders[i]
                or len(earlier) < MIN_QUOTE_CHARS
                or earlier == texts[i]
                or earlier not in texts[i]
            ):
                continue
            if best is None or len(earlier) > len(texts[best]):
                best = j
        if best is not None:
            quoted = comments[best]
            comment["quotes"] = str(quoted.get("source_comment_id") or quoted.get("number"))
            comment["quoted_text"] = texts[best]
