"""Per-event cost of the dedup core on real texts, in memory (DictState) and on RocksDB
(RocksState), against the orjson loads + dumps floor of the same records.

Comments: the 1,528 Fox News comments replicated with fresh ids to 20,000; articles: the 7,600
AG News items (title + description). Each pass starts from empty state; a second pass feeds the
same records again (every one a redelivery: the cheap path). Median of RUNS runs.
Run: .venv/bin/python bench/bench_dedup.py
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.datasets import ag_articles, fox_comments, replicate
from devtools.samples import clean_article, clean_comment
from pipeline.dedup import Deduper, DictState, RocksState
from pipeline.settings import Settings

N_COMMENTS = 20_000
RUNS = 5
SETTINGS = Settings(near_dup_threshold=0.30)  # chosen by scripts/near_dup_eval.py


def comment_records() -> list[dict[str, Any]]:
    raws = replicate(fox_comments(), N_COMMENTS, "source_comment_id")
    return [clean_comment(raw, offset_s=i) for i, raw in enumerate(raws)]


def article_records() -> list[dict[str, Any]]:
    out = []
    for i, raw in enumerate(ag_articles()):
        aid = f"a-{raw['source_id']}"
        out.append(clean_article(aid, raw["title"], raw["standfirst"], offset_s=i))
    return out


def floor_us(records: list[dict[str, Any]]) -> float:
    """orjson loads + dumps of the same records: the cheapest per-event work possible."""
    blobs = [orjson.dumps(r) for r in records]
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        for b in blobs:
            orjson.dumps(orjson.loads(b))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / len(blobs) * 1e6


def run_pass(
    records: list[dict[str, Any]],
    make_states: Callable[[], tuple[Any, Any, Any, Callable[[], None]]],
    method: str,
) -> dict[str, Any]:
    first, second, kinds, sizes = [], [], Counter(), {}
    for _ in range(RUNS):
        articles, comments, index, close = make_states()
        dd = Deduper(SETTINGS, articles, comments, index)
        check = getattr(dd, method)
        batch = [dict(r) for r in records]
        again = [dict(r) for r in records]
        gc.collect()
        t0 = time.perf_counter()
        outs = [check(r) for r in batch]
        t1 = time.perf_counter()
        for r in again:
            check(r)
        t2 = time.perf_counter()
        first.append(t1 - t0)
        second.append(t2 - t1)
        kinds = Counter(o.kind for o in outs)
        sizes = dd.size()
        t3 = time.perf_counter()
        removed = len(dd.expire(dd.watermark + 365 * 24 * 3600))
        sweep = time.perf_counter() - t3
        close()
    n = len(records)
    return {
        "first_us": statistics.median(first) / n * 1e6,
        "again_us": statistics.median(second) / n * 1e6,
        "kinds": dict(kinds),
        "sizes": sizes,
        "sweep_s": sweep,
        "swept": removed,
    }


def dict_states() -> tuple[Any, Any, Any, Callable[[], None]]:
    return DictState(), DictState(), DictState(), lambda: None


def rocks_states() -> tuple[Any, Any, Any, Callable[[], None]]:
    tmp = tempfile.TemporaryDirectory(prefix="bench-dedup-")
    made = [RocksState(Path(tmp.name) / n) for n in ("articles", "comments", "index")]

    def close() -> None:
        for s in made:
            s.close()
        tmp.cleanup()

    return made[0], made[1], made[2], close


def state_bytes(records: list[dict[str, Any]], method: str) -> tuple[int, int]:
    """Entries and serialized bytes (key + orjson value) after one pass, in memory."""
    a, c, i = DictState(), DictState(), DictState()
    dd = Deduper(SETTINGS, a, c, i)
    check = getattr(dd, method)
    for r in records:
        check(dict(r))
    entries = len(a) + len(c) + len(i)
    size = sum(len(k) + len(orjson.dumps(v)) for s in (a, c, i) for k, v in s.data.items())
    return entries, size


def main() -> None:
    comments = comment_records()
    articles = article_records()
    print(f"dedup benchmark: {len(comments)} comments (Fox News, replicated with fresh ids), "
          f"{len(articles)} articles (AG News); median of {RUNS} runs; us per event")  # fmt: skip
    for label, records, method in (
        ("check_comment", comments, "check_comment"),
        ("check_article", articles, "check_article"),
    ):
        floor = floor_us(records)
        entries, size = state_bytes(records, method)
        per_event = size / len(records)
        print(f"\n{label}: orjson loads+dumps floor {floor:.2f} us; "
              f"state after one pass {entries} entries, {per_event:.0f} B/event")  # fmt: skip
        for store, make in (("DictState", dict_states), ("RocksState", rocks_states)):
            res = run_pass(records, make, method)
            us = res["first_us"]
            print(
                f"  {store:10} first pass {us:7.1f} us ({us / floor:5.1f}x "
                f"floor, {1e6 / us:8,.0f} ev/s)   redelivery pass "
                f"{res['again_us']:6.1f} us ({res['again_us'] / floor:4.1f}x)   "
                f"expire sweep {res['swept']} keys in {res['sweep_s'] * 1000:.0f} ms"
            )
        print(f"  outcomes of the first pass: {res['kinds']}")


if __name__ == "__main__":
    main()
