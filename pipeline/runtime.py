"""Process-wide tuning of the long-running processes (the worker, the offline replay).

Python's cyclic garbage collector runs a young collection every 700 container allocations and,
now and then, a full one over every object alive. A worker allocates several containers per
record (the state's entries are tuples the collector lets go, pipeline/dedup/deduper.py), and
its records are freed by reference counting, not by the collector: with the defaults it took
about a sixth of the core's time in `python -m bench.run`'s comment runs. So the models and
tables loaded at start are moved out of its sight (`gc.freeze`) and young collections run 70
times less often.
Cycles are still collected; they are just found later.

A middle-generation collection walks every object promoted since the last one (mostly the
records of the batches in flight), with the event loop stopped; so it runs after two young
collections instead of ten: the same objects are walked in all, in shorter pauses
(`newspipe_gc_pause_seconds`; figures in docs/performance.md).
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000
GEN1_THRESHOLD = 2


def settle_heap() -> None:
    """Call once everything loaded at start is loaded (the Core's models, the tagger)."""
    gc.collect()
    gc.freeze()
    gen2 = gc.get_threshold()[2]
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, gen2)
