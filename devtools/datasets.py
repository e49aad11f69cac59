"""Real texts from data/ (devtools.paths) turned into raw events, replicated with fresh ids.

Used by the benchmarks, the dedup proofs and the replay tests: one loader so every measurement
and test feeds the pipeline the same shape of events.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from devtools.paths import AG_NEWS, EXTRACTION_PAGES, FIXTURES, FOX_COMMENTS

FOX = FOX_COMMENTS


def fox_comments() -> list[dict[str, Any]]:
    """The 1,528 Fox News comments as raw comment events (thread = article)."""
    events = []
    with open(FOX, "rb") as fh:
        for n, line in enumerate(fh):
            row = orjson.loads(line)
            event: dict[str, Any] = {
                "schema_version": "1.0",
                "source": "foxnews",
                "article_title": row["title"],
                "source_comment_id": str(n),
                "author": row["user"],
                "text": row["text"],
            }
            if row.get("mentions"):
                event["mentions"] = row["mentions"].split()
            events.append(event)
    return events


def ag_articles() -> list[dict[str, Any]]:
    """The 7,600 AG News items as raw article events (title + description only)."""
    events = []
    with open(AG_NEWS, newline="", encoding="utf-8") as fh:
        for n, (label, title, description) in enumerate(csv.reader(fh)):
            events.append(
                {
                    "schema_version": "1.0",
                    "source": "ag-news",
                    "source_id": str(n),
                    "title": title,
                    "standfirst": description,
                    "label": int(label),
                }
            )
    return events


def replicate(events: list[dict[str, Any]], count: int, id_field: str) -> Iterator[dict[str, Any]]:
    """`count` events cycling through `events`, each copy with a fresh id in `id_field`.

    Copies after the first round get a round marker in the text too, so they are distinct
    content rather than exact duplicates (which dedup would rightly drop).
    """
    n = len(events)
    for i in range(count):
        base = events[i % n]
        event = dict(base)
        rnd = i // n
        event[id_field] = f"{base.get(id_field, '')}-r{rnd}-{i}"
        if rnd:
            text_field = "text" if "text" in event else "title"
            event[text_field] = f"{event[text_field]} (copy {rnd})"
        yield event


@dataclass(frozen=True)
class HtmlPage:
    """A whole real news page, its URL and (for the extraction test pages) the expected text."""

    name: str
    html: str
    url: str | None
    expected_text: str | None


def html_pages() -> list[HtmlPage]:
    """The newspaper4k test pages (gzip, with the text its extractor is expected to give) and
    this repository's own HTML fixtures (no expected text)."""
    urls = orjson.loads((EXTRACTION_PAGES / "urls.json").read_bytes())
    pages = []
    for path in sorted((EXTRACTION_PAGES / "html").glob("*.html.gz")):
        name = path.name.removesuffix(".html.gz")
        html = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
        expected = (EXTRACTION_PAGES / "txt" / f"{name}.txt").read_text(encoding="utf-8")
        pages.append(HtmlPage(name, html, urls.get(name), expected))
    for path in sorted((FIXTURES / "html").glob("*.html")):
        pages.append(HtmlPage(path.stem, path.read_text(encoding="utf-8"), None, None))
    return pages
