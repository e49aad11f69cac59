"""The near-dup stage in the worker's shape, per state store: the index as an `OverlayMap` over
a dict, a plain RocksDB store or the band-mirrored one (`BandMirroredRocks`), batches of 300
articles, each batch's changelog record built and its writes applied, as `StageState.commit`
does. CPU µs per article, stores alternating within each round.

    .venv/bin/python -m bench.bench_neardup_store [--articles 20000] [--rounds 5]

AG News has 7,600 items: past that, `replicate` makes marked copies, which the stage finds as
near duplicates (more band hits than fresh articles give).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.datasets import ag_articles, replicate  # noqa: E402
from pipeline.core import Core, Meta, Result, States  # noqa: E402
from pipeline.dedup import DictState  # noqa: E402
from pipeline.dedup.state import BandMirroredRocks, RocksState  # noqa: E402
from pipeline.ingest import page_article_id  # noqa: E402
from pipeline.runtime import settle_heap  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.stream.batch import state_view  # noqa: E402
from pipeline.stream.state import OverlayMap, PartitionState  # noqa: E402
from pipeline.stream.topology import BY_NAME, NEARDUP  # noqa: E402
from pipeline.tagging.tagger import Tagger  # noqa: E402

BATCH = 300
STORES: dict[str, Callable[[Path], MutableMapping[str, Any]]] = {
    "dict": lambda path: {},
    "rocksdb": RocksState,
    "rocksdb-mirrored": BandMirroredRocks,
}


def staged_articles(n: int, core: Core) -> list[Result]:
    """`n` AG articles through the first stage (what the near-dup stage receives)."""
    items = []
    for i, art in enumerate(replicate(ag_articles(), n, "source_id")):
        art.pop("label", None)
        meta = Meta("raw.articles", 0, i, page_article_id(art).encode(), [],
                    1_700_000_000_000 + i * 1000)  # fmt: skip
        items.append((orjson.dumps(art), meta))
    states = States(DictState(), DictState(), DictState(), DictState())
    out = []
    for at in range(0, len(items), 500):
        out += [r for r in core.process_batch("articles", items[at : at + 500], states)
                if r.status == "clean"]  # fmt: skip
    return out


def one_pass(kind: str, staged: list[Result], settings: Settings, tagger: Tagger) -> float:
    """CPU seconds of the near-dup stage over `staged` on a fresh store of `kind`."""
    with tempfile.TemporaryDirectory(prefix="bench-neardup-") as tmp:
        store = STORES[kind](Path(tmp) / "index")
        part = PartitionState({"index": OverlayMap(store)})
        view = state_view(BY_NAME[NEARDUP], part.maps)
        core = Core(settings, States(DictState(), DictState(), DictState(), DictState()), tagger)
        c0 = time.process_time()
        for at in range(0, len(staged), BATCH):
            core.finish_batch(staged[at : at + BATCH], view)
            part.changelog_records(at)
            part.committed(at, at)
        cpu = time.process_time() - c0
        if isinstance(store, RocksState):
            store.close()
    return cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--articles", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    settings, tagger = Settings(), Tagger.load()
    staged = staged_articles(args.articles, Core(settings, tagger=tagger))
    settle_heap()  # as `newspipe worker` does: the staged articles are not the GC's to scan
    print(f"near-dup stage, worker shape: {len(staged):,} articles, batches of {BATCH}, "
          f"{args.rounds} rounds, stores alternating; CPU us/article")  # fmt: skip
    runs: dict[str, list[float]] = {kind: [] for kind in STORES}
    for _ in range(args.rounds):
        for kind in STORES:
            runs[kind].append(one_pass(kind, staged, settings, tagger) / len(staged) * 1e6)
    for kind, values in runs.items():
        print(f"  {kind:17} min {min(values):7.1f}  median {statistics.median(values):7.1f}")


if __name__ == "__main__":
    main()
