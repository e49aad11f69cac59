"""What the record's shape costs before any of the core's logic: per event, decode the raw
event, build the clean record as Python objects (orjson building it from the clean record's own
JSON, so every dict, list and string the real record holds is made), write the three state
entries a comment writes, encode the record. Beside the orjson floor of the core bench (decode
and encode of the raw event), it says how much of a per-event budget stated as a multiple of
that floor goes to holding records as Python dicts at all, whatever the stages do.

    .venv/bin/python -m bench.shape --comments 20000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import against_floor, core_batches, core_payloads, fastest  # noqa: E402
from pipeline.core import COMMENTS, Core  # noqa: E402
from pipeline.runtime import settle_heap  # noqa: E402
from pipeline.settings import Settings  # noqa: E402


def clean_records(payloads: list[tuple[bytes, bytes]]) -> list[bytes]:
    """The clean comments the core makes of `payloads` (in the core bench's batches), as JSON;
    a duplicate or dead letter gives its record too, as the shell would handle one."""
    core = Core(Settings())
    out = []
    for items in core_batches(COMMENTS, payloads):
        out += [orjson.dumps(r.record) for r in core.process_batch(COMMENTS, items, core.states)]
    return out


def shape_pass(payloads: list[tuple[bytes, bytes]], clean: list[bytes]) -> float:
    """Seconds of one pass: raw decoded, clean record built, three entries written, encoded."""
    loads, dumps = orjson.loads, orjson.dumps
    state: dict[str, Any] = {}
    t0 = time.perf_counter()
    for (_, raw), made in zip(payloads, clean, strict=True):
        loads(raw)
        record = loads(made)
        cid, h = record["comment_id"], record["content_hash"]
        state["c:" + cid] = (1, h)
        state["p:" + cid + h] = (1, cid)
        state["s:" + h] = (1, 1, ())
        dumps(record)
    return time.perf_counter() - t0


def measure(n_comments: int, rounds: int = 5) -> dict[str, Any]:
    payloads = core_payloads(n_comments, 0)[COMMENTS]
    clean = clean_records(payloads)
    settle_heap()
    shape_pass(payloads, clean)  # warm
    n = len(payloads)
    passes, windows = against_floor(payloads, lambda: shape_pass(payloads, clean), rounds)
    shape = statistics.median(passes) / n * 1e6
    floor = fastest(windows)[0] / n * 1e6
    return {
        "comments": n,
        "clean_record_bytes": sum(map(len, clean)) / n,
        "raw_bytes": sum(len(v) for _, v in payloads) / n,
        "floor_us": floor,
        "shape_us": shape,
        "shape_to_floor": shape / floor,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comments", type=int, default=20_000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    res = measure(args.comments)
    if args.json:
        print(orjson.dumps(res).decode())
        return 0
    print(f"{res['comments']:,} comments: raw {res['raw_bytes']:.0f} B, clean record "
          f"{res['clean_record_bytes']:.0f} B")  # fmt: skip
    print(f"orjson floor (raw decode + encode): {res['floor_us']:.2f} us")
    print(f"the record's shape (raw decoded, clean record built, 3 entries, encoded): "
          f"{res['shape_us']:.2f} us = {res['shape_to_floor']:.1f}x the floor")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
