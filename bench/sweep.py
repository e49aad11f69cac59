"""The expiry sweep: how long the worker's once-a-minute sweep of its state takes, and so how
long its event loop stands still (the sweep waits for the batches in flight, then runs in one
piece). Its cost grows with the state, not with the traffic: every entry is read to find the
few that are older than their horizon.

N events go through the core into the worker's shape of state (each map an overlay over the
store, committed after each batch), on `memory://` and `rocksdb://`; then `Core.expire` runs
twice: with nothing old enough to go (a live stream's sweep: a full scan for little), and a
year later (everything goes). It prints each sweep's time per entry and what that makes for the
state a year's backfill keeps (the horizons' worth of a large publisher's events).

    .venv/bin/python -m bench.sweep --comments 100000 --articles 10000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import core_batches, core_payloads  # noqa: E402
from pipeline.core import ARTICLES, COMMENTS, Core, States  # noqa: E402
from pipeline.dedup.state import open_rocks  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.stream.state import OverlayMap  # noqa: E402
from pipeline.tagging import Tagger  # noqa: E402

YEAR_EVENTS = 25_500_000  # a year of a large publisher (issue 14)
ARTICLE_SHARE = 1 / 11  # the e2e and backfill benches' mix: ten comments an article
NAMES = ("articles", "comments", "index", "article_tags")


def year_state(entries_per_article: float, entries_per_comment: float, s: Settings) -> int:
    """The entries a year's backfill keeps at once: each kind's horizon of its events."""
    per_day = YEAR_EVENTS / 365
    articles = per_day * ARTICLE_SHARE * s.article_horizon_s / 86400
    comments = per_day * (1 - ARTICLE_SHARE) * s.comment_horizon_s / 86400
    return round(articles * entries_per_article + comments * entries_per_comment)


def measure(store: str, n_comments: int, n_articles: int, tagger: Tagger) -> dict[str, Any]:
    """One store: the state after the events, and the two sweeps' times."""
    settings = Settings()
    payloads = core_payloads(n_comments, n_articles)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        stores = [
            open_rocks(name, Path(tmp) / name) if store == "rocksdb://" else {} for name in NAMES
        ]
        maps = [OverlayMap(s) for s in stores]
        states = States(*maps)
        core = Core(settings, states, tagger)
        counts = {}
        for stream in (ARTICLES, COMMENTS):
            for items in core_batches(stream, payloads[stream]):
                core.process_whole_batch(stream, items, states)
                for m in maps:
                    m.apply()
            counts[stream] = sum(len(m) for m in maps)
        entries = counts[COMMENTS]
        t0 = time.perf_counter()
        kept = core.expire()
        scan = time.perf_counter() - t0
        core.deduper.watermark += 365 * 86400
        t0 = time.perf_counter()
        removed = core.expire()
        drop = time.perf_counter() - t0
        for s in stores:
            if hasattr(s, "close"):
                s.close()
    per_article = counts[ARTICLES] / max(1, n_articles)
    per_comment = (counts[COMMENTS] - counts[ARTICLES]) / max(1, n_comments)
    year = year_state(per_article, per_comment, settings)
    scan_us = scan / max(1, entries) * 1e6
    return {
        "store": store,
        "entries": entries,
        "entries_per_article": per_article,
        "entries_per_comment": per_comment,
        "removed_by_the_first_sweep": kept,
        "scan_s": scan,
        "scan_us_per_entry": scan_us,
        "removed_by_the_second_sweep": removed,
        "drop_s": drop,
        "drop_us_per_entry": drop / max(1, entries) * 1e6,
        "year_state_entries": year,
        "year_state_scan_s": year * scan_us / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--comments", type=int, default=100_000)
    ap.add_argument("--articles", type=int, default=10_000)
    ap.add_argument("--stores", default="memory://,rocksdb://", help="comma-separated")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    tagger = Tagger.load()
    results = [measure(s, args.comments, args.articles, tagger) for s in args.stores.split(",")]
    if args.json:
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"sweep: {args.comments:,} comments and {args.articles:,} articles through the core")
    for r in results:
        print(f"  {r['store']:11} {r['entries']:,} entries "
              f"({r['entries_per_article']:.1f} an article, {r['entries_per_comment']:.1f} a "
              f"comment); nothing to go: {r['scan_s'] * 1e3:,.0f} ms "
              f"({r['scan_us_per_entry']:.2f} us an entry); everything goes: "
              f"{r['drop_s'] * 1e3:,.0f} ms ({r['drop_us_per_entry']:.2f} us)")  # fmt: skip
        print(f"  {'':11} a year's backfill keeps about {r['year_state_entries']:,} entries: "
              f"each minute's sweep stops the worker about "
              f"{r['year_state_scan_s']:.1f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
