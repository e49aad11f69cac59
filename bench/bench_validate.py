"""What validation at the door costs per event, next to orjson.loads alone (the floor).

Real texts: the Fox News comments (replicated with fresh ids to 20,000 events) as raw comments,
and the 7,600 AG News items as raw articles, each serialized once with orjson up front.
Best and median of 7 runs over the whole batch (the three take turns); compare ratios within
one run (absolute figures drift between machines and with load).

    .venv/bin/python -m bench.bench_validate        # or: .venv/bin/python bench/bench_validate.py
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.datasets import ag_articles, fox_comments, replicate
from pipeline.contracts import validator
from pipeline.settings import Settings
from pipeline.validate import DoorValidator

RUNS = 7
COMMENTS = 20_000


def per_event_us(
    fns: dict[str, Callable[[bytes], object]], payloads: list[bytes], runs: int = RUNS
) -> dict[str, tuple[float, float]]:
    """(best, median) over `runs` of the whole batch, in us per event; the functions take turns
    within each run so that load from other processes hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for p in payloads:
                fn(p)
            times[name].append(time.perf_counter() - t0)
    n = len(payloads)
    return {k: (min(v) / n * 1e6, statistics.median(v) / n * 1e6) for k, v in times.items()}


def payload_sets() -> dict[str, list[bytes]]:
    comments = [orjson.dumps(e) for e in replicate(fox_comments(), COMMENTS, "source_comment_id")]
    articles = [orjson.dumps(e) for e in ag_articles()]
    return {"comments": comments, "articles": articles}


def measure() -> dict[str, dict[str, float]]:
    door = DoorValidator(Settings())
    out: dict[str, dict[str, float]] = {}
    for stream, payloads in payload_sets().items():
        decode = door.raw_comment if stream == "comments" else door.raw_article
        schema = validator("raw-comment" if stream == "comments" else "raw-article")
        for p in payloads:  # every real event must pass the door
            decode(p)
        loads = orjson.loads

        def loads_schema(p: bytes, loads=loads, schema=schema) -> None:
            schema(loads(p))

        timings = per_event_us(
            {
                "orjson.loads": loads,
                "loads + fastjsonschema": loads_schema,
                "DoorValidator": decode,
            },
            payloads,
        )
        # the duplicate-key check alone: a ':' count, then orjson re-serialization for the events
        # whose key count differs from it (what _py_decode, the door's Python path, does)
        parsed = [(p, orjson.loads(p)) for p in payloads]
        slow = [(p, o, p.count(b":")) for p, o in parsed if p.count(b":") != len(o)]

        def dup_check(item, door=door) -> None:
            p, o = item
            colons = p.count(b":")
            if colons and colons != len(o):
                door._check_duplicates(p, o, colons)

        dup = per_event_us({"dup": dup_check}, parsed)["dup"]  # type: ignore[dict-item]
        out[stream] = {
            "dup check best": dup[0],
            "dup slow share": len(slow) / len(payloads),
            "events": len(payloads),
            "bytes_avg": sum(map(len, payloads)) / len(payloads),
            **{f"{k} best": v[0] for k, v in timings.items()},
            **{f"{k} median": v[1] for k, v in timings.items()},
        }
    return out


def main() -> None:
    results = measure()
    print(
        f"validation at the door, best and median of {RUNS} runs, Python {sys.version.split()[0]}"
    )
    for stream, r in results.items():
        print(f"\n{stream}: {int(r['events'])} events, {r['bytes_avg']:.0f} bytes on average")
        print(f"  {'':<24} {'best us':>8} {'median us':>10} {'ev/s (best)':>12} {'x loads':>8}")
        floor = r["orjson.loads best"]
        for name in ("orjson.loads", "loads + fastjsonschema", "DoorValidator"):
            best, median = r[f"{name} best"], r[f"{name} median"]
            print(
                f"  {name:<24} {best:8.2f} {median:10.2f} {1e6 / best:12,.0f} {best / floor:8.2f}"
            )
        print(
            f"  duplicate-key check alone: {r['dup check best']:.2f} us/event; "
            f"{r['dup slow share']:.0%} of events need the re-serialization"
        )


if __name__ == "__main__":
    main()
