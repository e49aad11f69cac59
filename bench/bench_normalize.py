"""Per-event cost of normalization against the orjson loads+dumps floor, in one process.

Run: .venv/bin/python bench/bench_normalize.py  (compare ratios; absolute us drift by machine)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.datasets import ag_articles, fox_comments
from pipeline.normalize import detect_language, normalize_article, normalize_comment

NOW = "2026-11-26T10:00:00Z"
RUNS = 5


def per_event_us(fn: Callable[[Any], Any], items: list[Any]) -> float:
    """Median over RUNS of the whole batch, divided by its size."""
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        times.append(time.perf_counter() - t0)
    return sorted(times)[RUNS // 2] / len(items) * 1e6


def main() -> None:
    comments, articles = fox_comments(), ag_articles()
    comment_bytes = [orjson.dumps(c) for c in comments]
    article_bytes = [orjson.dumps(a) for a in articles]
    rows = [
        (
            "comments: orjson loads+dumps (floor)",
            per_event_us(lambda b: orjson.dumps(orjson.loads(b)), comment_bytes),
            len(comments),
        ),
        (
            "comments: normalize_comment",
            per_event_us(lambda c: normalize_comment(c, now=NOW), comments),
            len(comments),
        ),
        (
            "comments: detect_language (own text)",
            per_event_us(
                detect_language, [normalize_comment(c, now=NOW)["own_text"] for c in comments]
            ),
            len(comments),
        ),
        (
            "articles: orjson loads+dumps (floor)",
            per_event_us(lambda b: orjson.dumps(orjson.loads(b)), article_bytes),
            len(articles),
        ),
        (
            "articles: normalize_article",
            per_event_us(lambda a: normalize_article(a, now=NOW), articles),
            len(articles),
        ),
    ]
    for name, us, n in rows:
        print(f"{name:<40} {us:8.2f} us/event  {1e6 / us:>10,.0f} ev/s  (n={n})")
    print(f"comment / floor: {rows[1][1] / rows[0][1]:.1f}x   article / floor: "
          f"{rows[4][1] / rows[3][1]:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
