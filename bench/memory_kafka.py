"""Memory and state through Kafka: one `newspipe worker` on the RocksDB store over 1,000,000 events.

The in-process run (`bench.memory`) shows the core's state staying flat; this one shows the
worker's: RSS of the worker process and the size of its RocksDB directory, sampled while it works
through 1,000,000 pre-loaded events (5% articles, real texts with fresh ids) with both dedup
horizons at 60 s of event time and event times 10 ms apart (~6,000 events per horizon), the
sweep every 5 s. Flat means: after warm-up neither grows with the number of events. Not part of
`make bench` (it takes ~6 minutes on its own):

    .venv/bin/python -m bench.memory_kafka [--events 1000000] [--store rocksdb://] [--out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.e2e import Worker, counter, free_port, preload, settled  # noqa: E402
from devtools import broker  # noqa: E402
from devtools.datasets import ag_articles, fox_comments, replicate  # noqa: E402
from pipeline.ingest import page_article_id  # noqa: E402
from pipeline.kafka_io import create_topics, delete_topics  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.topics import TopicNames  # noqa: E402

BASE = datetime(2016, 5, 1, 10, 0, tzinfo=UTC)  # in the past: the watermark ignores the future


def timed_events(n: int, article_every: int = 20, step_ms: int = 10) -> Iterator[tuple]:
    """(stream, key, value, source id) for n events, event times `step_ms` apart, lazily."""
    n_art = n // article_every
    arts = replicate(ag_articles(), n_art, "source_id")
    coms = replicate(fox_comments(), n - n_art, "source_comment_id")
    for i in range(n):
        when = (BASE + timedelta(milliseconds=i * step_ms)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if i % article_every == 0 and n_art:
            art = next(arts)
            art.pop("label", None)
            art["published_at"] = when
            yield "articles", page_article_id(art).encode(), orjson.dumps(art), art["source_id"]
        else:
            com = next(coms)
            com["posted_at"] = when
            key = page_article_id({"source": com["source"], "title": com["article_title"]})
            yield "comments", key.encode(), orjson.dumps(com), com["source_comment_id"]


def dir_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def run(n: int, store: str, timeout: float) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="bench-memk-") as tmp:
        settings = replace(
            Settings.from_env(),
            topic_prefix=f"benchm{tag}.",
            app_id=f"benchm{tag}",
            partitions=6,
            store=store,
            state_dir=Path(tmp) / "state",
            web_port=free_port(),
            comment_horizon_s=60,
            article_horizon_s=60,
            expiry_sweep_s=5.0,
        )
        names = TopicNames(settings.topic_prefix, settings.app_id)
        asyncio.run(create_topics(settings))
        try:
            print(f"memory through Kafka: pre-loading {n:,} events", flush=True)
            rate = asyncio.run(preload(settings, timed_events(n)))
            worker = Worker(settings, Path(tmp) / "worker.log").start()
            samples: list[dict[str, float]] = []
            t0 = time.monotonic()
            try:
                while time.monotonic() - t0 < timeout:
                    if not worker.alive():
                        raise RuntimeError(f"worker exited:\n{worker.log.read_text()[-2000:]}")
                    page = worker.metrics()
                    done = counter(page, "newspipe_records_in_total")
                    samples.append({
                        "t_s": round(time.monotonic() - t0, 1),
                        "events": done,
                        "rss_mib": round(worker.rss_mib() or 0.0, 1),
                        "disk_mib": round(dir_mib(settings.state_dir), 1),
                        "entries": counter(page, "newspipe_state_entries"),  # all tables
                    })  # fmt: skip
                    if settled(page) >= n:
                        break
                    time.sleep(2.0)
                else:
                    raise RuntimeError(f"not settled in {timeout}s: {samples[-1:]}")
            finally:
                worker.stop()
        finally:
            asyncio.run(delete_topics(settings, names.all()))
    elapsed = samples[-1]["t_s"]
    after = [s for s in samples if s["events"] >= n * 0.3]  # warm-up: the first 30%
    return {
        "events": n,
        "store": store,
        "horizon_s": 60,
        "preload_events_per_s": rate,
        "seconds": elapsed,
        "events_per_s": n / elapsed if elapsed else None,
        "rss_mib_after_warmup": [
            min(s["rss_mib"] for s in after),
            max(s["rss_mib"] for s in after),
        ],
        "disk_mib_after_warmup": [
            min(s["disk_mib"] for s in after),
            max(s["disk_mib"] for s in after),
        ],
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--store", default="rocksdb://")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    paths = broker.BrokerPaths(broker.DEFAULT_HOME)
    if not broker.status(paths, 9092)[0]:
        print(broker.start(paths, 9092, 9093))
    result = run(args.events, args.store, args.timeout)
    step = max(1, len(result["samples"]) // 12)
    for s in result["samples"][::step] + result["samples"][-1:]:
        print(f"  {s['events']:>10,.0f} events  RSS {s['rss_mib']:7.1f} MiB  "
              f"RocksDB {s['disk_mib']:6.1f} MiB  entries {s['entries']:,.0f}")  # fmt: skip
    lo, hi = result["rss_mib_after_warmup"]
    dlo, dhi = result["disk_mib_after_warmup"]
    print(f"{result['events']:,} events in {result['seconds']:.0f} s "
          f"({result['events_per_s']:,.0f}/s): after 30% RSS {lo:.0f}-{hi:.0f} MiB, "
          f"state on disk {dlo:.1f}-{dhi:.1f} MiB")  # fmt: skip
    if args.out:
        args.out.write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
