"""Throughput of the topic tagger against the orjson loads+dumps floor (one core, one process).

Why: the pipeline's floors are >= 500 articles/s and >= 20,000 comments/s per core; this shows how
far the tagger is from them and from the cheapest possible per-event work (ratio to the floor).

Usage: python bench/bench_tagging.py [--runs 5] [--comments 20000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.paths import FOX_COMMENTS as FOX  # noqa: E402
from devtools.tagging_eval import DEFAULT_CSV, load  # noqa: E402
from pipeline.tagging import Tagger  # noqa: E402


def _median_us(fn: Callable[[], int], runs: int) -> tuple[float, float]:
    """Median over runs of the whole batch, per event, in microseconds: (wall, process CPU).

    CPU time is reported too because this machine is shared: wall time swings with other load.
    """
    wall: list[float] = []
    cpu: list[float] = []
    n = 1
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        n = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return 1e6 * statistics.median(wall) / n, 1e6 * statistics.median(cpu) / n


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Print us/event and events/s for tag_article, tag_comment and the orjson floor."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--comments", type=int, default=20_000)
    args = ap.parse_args(argv)

    tagger = Tagger.load()
    articles = [
        orjson.dumps({"title": t, "standfirst": d, "body": ""}) for _, t, d in load(DEFAULT_CSV)
    ]
    texts = [orjson.loads(line)["text"] for line in FOX.read_bytes().splitlines() if line.strip()]
    comments = [
        orjson.dumps({"id": i, "text": texts[i % len(texts)]}) for i in range(args.comments)
    ]
    inherited = tagger.tag_article("Merkel backs new law", None, "German lawmakers passed a bill.")

    def floor(events: list[bytes]) -> Callable[[], int]:
        def run() -> int:
            for raw in events:
                orjson.dumps(orjson.loads(raw))
            return len(events)

        return run

    def tag_articles() -> int:
        for raw in articles:
            ev = orjson.loads(raw)
            ev["tags"] = tagger.tag_article(ev["title"], ev["standfirst"], ev["body"])
            orjson.dumps(ev)
        return len(articles)

    def tag_comments() -> int:
        for raw in comments:
            ev = orjson.loads(raw)
            ev["tags"] = tagger.tag_comment(ev["text"], inherited)
            orjson.dumps(ev)
        return len(comments)

    out: dict[str, float] = {}
    print(f"tagger: {tagger.term_count} lexicon entries; median of {args.runs} runs, one core")
    print(
        f"{'step':44s} {'wall us':>8s} {'ev/s':>8s} {'cpu us':>7s} {'ev/s':>8s} "
        f"{'x floor':>7s} {'target':>7s}"
    )
    for name, events, fn, target in (
        (f"articles: tag_article ({len(articles)} AG items)", articles, tag_articles, 500),
        (f"comments: tag_comment ({len(comments)} Fox texts)", comments, tag_comments, 20_000),
    ):
        key = name.split(":")[0]
        base, base_cpu = _median_us(floor(events), args.runs)
        us, cpu = _median_us(fn, args.runs)
        out[f"{key}_us"] = us
        out[f"{key}_cpu_us"] = cpu
        out[f"{key}_floor_us"] = base
        label = f"{key}: orjson loads+dumps (floor)"
        print(f"{label:44s} {base:8.2f} {1e6 / base:8,.0f} {base_cpu:7.2f} {1e6 / base_cpu:8,.0f}")
        ok = "ok" if 1e6 / us >= target else "BELOW (wall)"
        print(
            f"{name:44s} {us:8.2f} {1e6 / us:8,.0f} {cpu:7.2f} {1e6 / cpu:8,.0f} "
            f"{us / base:7.1f} {target:>7,} {ok}"
        )
    return out


if __name__ == "__main__":
    main()
