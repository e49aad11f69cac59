"""Memory and state over a long run: RSS and state entries every N events, with a short horizon.

In process (not through Kafka, which does not fit the 15-minute budget for 1,000,000 events on
this machine): the same `Core` the worker runs, in batches of consecutive events of one stream,
on in-memory `DictState` tables, with the dedup horizons set short (60 s of event time by
default) and event times advancing (10 ms apart, so the horizon holds ~6,000 events).
`Core.expire()` runs every `--sweep-every` events, which is what the worker's sweep does every
NEWSPIPE_EXPIRY_SWEEP_S. `--no-expire` is the control: the same run
with no sweep, to show what the state does when nothing calls it.

Runs in its own process (the caller starts `python -m bench.memory`), so RSS is the core's alone;
events are generated lazily so the benchmark's own data do not count.

    .venv/bin/python -m bench.memory --events 1000000 [--no-expire] [--json]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.datasets import ag_articles, fox_comments, replicate  # noqa: E402
from pipeline.core import Core, Meta, States  # noqa: E402
from pipeline.dedup import DictState  # noqa: E402
from pipeline.dedup.state import RocksState  # noqa: E402
from pipeline.ingest import page_article_id  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.topics import ARTICLES, COMMENTS  # noqa: E402

BATCH = 500  # records of one stream through the core at once, as the offline replay does


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def events(n: int, article_every: int) -> Iterator[tuple[str, bytes, bytes]]:
    """n raw events, one article every `article_every`, real texts with fresh ids, lazily."""
    n_art = n // article_every
    arts = replicate(ag_articles(), n_art, "source_id")
    coms = replicate(fox_comments(), n - n_art, "source_comment_id")
    for i in range(n):
        if i % article_every == 0 and n_art:
            art = next(arts)
            art.pop("label", None)
            yield ARTICLES, page_article_id(art).encode(), orjson.dumps(art)
        else:
            com = next(coms)
            key = page_article_id({"source": com["source"], "title": com["article_title"]})
            yield COMMENTS, key.encode(), orjson.dumps(com)


def dir_mib(path: str) -> float:
    """On-disk size of a RocksDB directory tree (SST files, WAL, manifest)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20


def state_entries(states: States) -> dict[str, int]:
    return {
        "articles": len(states.articles),
        "comments": len(states.comments),
        "index": len(states.index),
        "article_tags": len(states.article_tags),
    }


def state_bytes(states: States) -> int:
    """Serialized size (key + orjson value), what a changelog or RocksDB would hold."""
    return sum(
        len(k) + len(orjson.dumps(v))
        for s in (states.articles, states.comments, states.index, states.article_tags)
        for k, v in s.items()
    )


def run(
    n: int = 1_000_000,
    *,
    horizon_s: int = 60,
    step_ms: int = 10,
    sweep_every: int = 10_000,
    sample_every: int = 50_000,
    article_every: int = 20,
    expire: bool = True,
    store: str = "memory",
) -> dict[str, Any]:
    settings = replace(Settings(), comment_horizon_s=horizon_s, article_horizon_s=horizon_s)
    tmp = None
    if store == "rocksdb":
        tmp = tempfile.mkdtemp(prefix="bench-memory-rocks-")
        states = States(*(RocksState(Path(tmp) / n) for n in ("a", "c", "i", "t")))
    else:
        states = States(DictState(), DictState(), DictState(), DictState())
    core = Core(settings, states)
    gc.collect()
    base_ms = int(time.time() * 1000) - 2 * 24 * 3600 * 1000  # in the past: no future clamp
    samples: list[dict[str, Any]] = [{"events": 0, "rss_mib": rss_mib(), "entries": 0}]
    statuses: dict[str, int] = {}
    swept = 0
    sweep_s = 0.0
    t0 = time.perf_counter()
    pending: list[tuple[bytes, Meta]] = []
    pending_stream = ""

    def flush() -> None:
        for res in core.process_whole_batch(pending_stream, pending, states):
            orjson.dumps(res.record)
            statuses[res.status] = statuses.get(res.status, 0) + 1
        pending.clear()

    for i, (stream, key, value) in enumerate(events(n, article_every), start=1):
        # consecutive events of one stream as one batch, as the worker and the offline replay
        # run the core; a batch also ends where the sweep or a sample comes
        if pending and stream != pending_stream:
            flush()
        pending_stream = stream
        pending.append((value, Meta(f"raw.{stream}", 0, i, key, [], base_ms + i * step_ms)))
        if len(pending) >= BATCH or i % sweep_every == 0 or i % sample_every == 0 or i == n:
            flush()
        if expire and i % sweep_every == 0:
            s0 = time.perf_counter()
            swept += core.expire()
            sweep_s += time.perf_counter() - s0
        if i % sample_every == 0 or i == n:
            entries = state_entries(states)
            total = sum(entries.values())
            samples.append(
                {
                    "events": i,
                    "rss_mib": round(rss_mib(), 1),
                    "entries": total,
                    "by_table": entries,
                    "state_mb": round(state_bytes(states) / 1e6, 2) if total <= 400_000 else None,
                    "rocksdb_mib": round(dir_mib(tmp), 1) if tmp else None,
                    "elapsed_s": round(time.perf_counter() - t0, 1),
                }
            )
    elapsed = time.perf_counter() - t0
    warm = [s for s in samples if s["events"] >= max(n // 5, sample_every)]
    if tmp:
        for state in (states.articles, states.comments, states.index, states.article_tags):
            state.close()  # type: ignore[attr-defined]
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "mode": f"in-process Core, {'RocksState' if tmp else 'DictState'}",
        "events": n,
        "articles_share": 1 / article_every,
        "horizon_s": horizon_s,
        "event_time_step_ms": step_ms,
        "expire": expire,
        "sweep_every_events": sweep_every if expire else None,
        "swept_entries": swept,
        "sweep_seconds_total": round(sweep_s, 2),
        "events_per_s": n / elapsed,
        "statuses": statuses,
        "samples": samples,
        "rss_mib_after_warmup_min": min((s["rss_mib"] for s in warm), default=None),
        "rss_mib_after_warmup_max": max((s["rss_mib"] for s in warm), default=None),
        "rss_mib_end": samples[-1]["rss_mib"],
        "entries_end": samples[-1]["entries"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--horizon", type=int, default=60, help="dedup horizon, s of event time")
    ap.add_argument("--sweep-every", type=int, default=10_000)
    ap.add_argument("--sample-every", type=int, default=50_000)
    ap.add_argument("--no-expire", action="store_true", help="control: never call expire()")
    ap.add_argument("--store", choices=("memory", "rocksdb"), default="memory")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args(argv)
    res = run(
        args.events,
        horizon_s=args.horizon,
        sweep_every=args.sweep_every,
        sample_every=args.sample_every,
        expire=not args.no_expire,
        store=args.store,
    )
    if args.json:
        print(orjson.dumps(res).decode())
        return 0
    print(f"{res['events']:,} events, horizon {res['horizon_s']} s, expire={res['expire']}, "
          f"{res['events_per_s']:,.0f} events/s")  # fmt: skip
    for s in res["samples"]:
        disk = f"  RocksDB {s['rocksdb_mib']:7.1f} MiB" if s.get("rocksdb_mib") is not None else ""
        print(f"  {s['events']:>9,} events  RSS {s['rss_mib']:7.1f} MiB  "
              f"{s['entries']:>9,} entries{disk}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
