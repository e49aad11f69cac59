"""What the core leaves for the garbage collector: after N events through the core the worker
runs (in-memory state, the loaded heap settled as the worker settles it), how many objects the
collector tracks beyond the settled heap, of which types, and how long a full collection over
them takes (the event loop stands still that long when one runs in the worker).

A state entry the collector tracks is walked by every collection of the generation holding it;
one it let go (a tuple of plain values) is not. So this is the figure that says whether the
state stays out of the collector's sight.

    .venv/bin/python -m bench.heap --comments 100000 --articles 10000
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import core_batches, core_payloads  # noqa: E402
from pipeline.core import ARTICLES, COMMENTS, Core, States  # noqa: E402
from pipeline.runtime import settle_heap  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.stream.state import OverlayMap  # noqa: E402
from pipeline.tagging import Tagger  # noqa: E402


def measure(n_comments: int, n_articles: int, collections: int = 3) -> dict[str, Any]:
    """Articles first (comments inherit their tags), then comments, in the core bench's batches;
    the state is kept. Returns the tracked objects beyond the settled heap and the full
    collections' times (median and each)."""
    payloads = core_payloads(n_comments, n_articles)
    tagger = Tagger.load()
    # the worker's memory:// shape: each map an overlay over a dict, the overlay committed into
    # the dict after each batch (pipeline/stream/state.py, which also takes the committed
    # entries out of the collector's sight)
    maps = [OverlayMap({}) for _ in range(4)]
    states = States(*maps)
    core = Core(Settings(), states, tagger)
    settle_heap()
    base = len(gc.get_objects())
    for stream in (ARTICLES, COMMENTS):
        for items in core_batches(stream, payloads[stream]):  # the core bench's batches
            core.process_whole_batch(stream, items, states)
            for m in maps:
                m.apply()
    times = []
    for _ in range(collections):
        t0 = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - t0) * 1e3)
    objects = gc.get_objects()
    by_type = Counter(type(o).__name__ for o in objects).most_common(8)
    tracked = len(objects) - base
    del objects
    names = ("articles", "comments", "index", "article_tags")
    entries = {name: len(getattr(states, name)) for name in names}
    return {
        "comments": n_comments,
        "articles": n_articles,
        "state_entries": entries,
        "tracked_beyond_settled_heap": tracked,
        "tracked_by_type": dict(by_type),
        "full_collection_ms": statistics.median(times),
        "full_collections_ms": times,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--comments", type=int, default=100_000)
    ap.add_argument("--articles", type=int, default=10_000)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    res = measure(args.comments, args.articles)
    if args.json:
        print(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"heap: {args.comments:,} comments and {args.articles:,} articles through the core")
    print(f"  state entries: {res['state_entries']}")
    print(f"  objects the collector tracks beyond the settled heap: "
          f"{res['tracked_beyond_settled_heap']:,}")  # fmt: skip
    print(f"  of which: {res['tracked_by_type']}")
    print(f"  a full collection: {res['full_collection_ms']:.1f} ms (median of "
          f"{len(res['full_collections_ms'])})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
