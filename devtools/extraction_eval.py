"""Page extraction quality, called directly and through the event path (`{"html": ...}` events).

Usage: python -m devtools.extraction_eval

Pages: the newspaper4k test pages (data/extraction-pages/, real news pages of 30 KB to 2.9 MB
with the text that extractor is expected to give) and this repository's HTML fixtures. For each
page: the body `extract_html` gives (direct), and the body of the clean record the pure core
makes of a raw article event carrying the page as `html` (door, extraction, normalization,
dedup, tags: what a worker does), or the dead-letter code. Quality is token-level F1 against the
expected text (bag of lower-cased words, both sides normalized alike). The two must be equal:
the event path may not lose pages or text that the extractor finds.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass

import orjson

from devtools.datasets import HtmlPage, html_pages
from pipeline.core import ARTICLES, CLEAN, Core, Meta
from pipeline.extract import extract_html
from pipeline.normalize import normalize_text

_WORD = re.compile(r"\w+")


def tokens(text: str) -> Counter[str]:
    """Lower-cased word tokens of the normalized text, as a multiset."""
    return Counter(_WORD.findall(normalize_text(text).lower()))


def token_f1(found: str, expected: str) -> float:
    """Token-level F1 of `found` against `expected` (1.0 when both are empty)."""
    got, want = tokens(found), tokens(expected)
    if not got and not want:
        return 1.0
    overlap = sum((got & want).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(got.values()), overlap / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def html_event(page: HtmlPage) -> bytes:
    """The raw article event a producer sends for a whole page."""
    event = {"schema_version": "1.1", "source": "html", "html": page.html}
    if page.url:
        event["url"] = page.url
    return orjson.dumps(event)


@dataclass
class Row:
    name: str
    payload_bytes: int
    outcome: str
    direct_f1: float | None
    event_f1: float | None
    seconds: float


def evaluate(pages: list[HtmlPage] | None = None, core: Core | None = None) -> list[Row]:
    """One row per page: the event's outcome and both F1 figures."""
    core = core or Core()
    rows = []
    for page in pages if pages is not None else html_pages():
        direct = normalize_text(extract_html(page.html, page.url).get("body", ""))
        payload = html_event(page)
        t0 = time.perf_counter()
        result = core.process(ARTICLES, payload, Meta("raw.articles", key=page.name.encode()))
        seconds = time.perf_counter() - t0
        clean = result.status == CLEAN
        body = result.record["body"] if clean else ""
        outcome = "clean" if clean else f"{result.status}:{result.reason}"
        expected = page.expected_text
        rows.append(
            Row(
                page.name,
                len(payload),
                outcome,
                token_f1(direct, expected) if expected is not None else None,
                token_f1(body, expected) if expected is not None else None,
                seconds,
            )
        )
    return rows


def main() -> None:
    rows = evaluate()
    print(f"{'page':22s} {'bytes':>9s} {'outcome':24s} {'direct F1':>9s} {'event F1':>9s}  s")
    for r in rows:
        d = "-" if r.direct_f1 is None else f"{r.direct_f1:.3f}"
        e = "-" if r.event_f1 is None else f"{r.event_f1:.3f}"
        print(f"{r.name:22s} {r.payload_bytes:9d} {r.outcome:24s} {d:>9s} {e:>9s}  {r.seconds:.2f}")
    scored = [r for r in rows if r.direct_f1 is not None]
    direct = sum(r.direct_f1 or 0.0 for r in scored) / len(scored)
    event = sum(r.event_f1 or 0.0 for r in scored) / len(scored)
    lost = [r.name for r in rows if r.outcome != "clean"]
    print(f"\n{len(rows)} pages ({len(scored)} with expected text), "
          f"{sum(r.payload_bytes > 1024 * 1024 for r in rows)} over 1 MiB")  # fmt: skip
    print(f"mean token F1: direct {direct:.3f}, through the event path {event:.3f}")
    print(f"not clean through the event path: {len(lost)} {lost}")


if __name__ == "__main__":
    main()
