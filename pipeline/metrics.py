"""Prometheus metrics: the names operators alert on. Label sets are bounded by design.

`stream` is articles|comments, `mode` is live|replay, `code` comes from pipeline.errors,
`kind` from the deduper, `topic` is one of 17 IPTC top-level codes. No ids or authors in labels.
"""

from __future__ import annotations

import gc
import time
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pipeline import __version__

STAGE_BUCKETS = (1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 2.5e-2, 0.1, 1.0)
BATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
GC_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """One registry per worker (tests make their own, so nothing leaks between them)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.records_in = Counter(
            "newspipe_records_in", "Raw records read", ["stream", "source", "mode"], registry=r
        )
        self.records_out = Counter(
            "newspipe_records_out", "Clean records emitted", ["stream", "mode"], registry=r
        )
        self.duplicates = Counter(
            "newspipe_duplicates",
            "Records dropped as duplicates",
            ["stream", "kind", "mode"],
            registry=r,
        )
        self.dead_letters = Counter(
            "newspipe_dead_letters",
            "Records sent to the DLQ",
            ["stream", "code", "mode"],
            registry=r,
        )
        self.already_committed = Counter(
            "newspipe_already_committed",
            "Records read again after a restart or rebalance whose batch had committed (skipped)",
            ["stream"],
            registry=r,
        )
        # An article is counted in by the worker that reads it and out by the worker that owns the
        # near-dup stage: per worker, in + received == out + duplicates + dead letters + sent;
        # over the group sent == received, so sum(in) == sum(out + duplicates + dead letters).
        self.forwarded = Counter(
            "newspipe_forwarded",
            "Records handed from one stage to the next (articles to near-dup): sent or received",
            ["stream", "direction"],
            registry=r,
        )
        self.transaction_retries = Counter(
            "newspipe_transaction_retries",
            "Batches whose transaction failed and was retried (or fenced)",
            ["stage", "outcome"],
            registry=r,
        )
        self.tags = Counter(
            "newspipe_tags", "Top-level tags on emitted records", ["stream", "topic"], registry=r
        )
        self.stage_seconds = Histogram(
            "newspipe_stage_seconds",
            "Processing time per stage and record",
            ["stage", "stream"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "newspipe_batch_seconds",
            "One partition's share of a batch: `process` (the pure batch step) and `commit` (its "
            "transaction, output and changelog, until the broker committed it)",
            ["stage", "step"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.event_to_emit = Histogram(
            "newspipe_event_to_emit_seconds",
            "Kafka timestamp of the raw record to emit",
            ["stream"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.gc_pause = Histogram(
            "newspipe_gc_pause_seconds",
            "How long each run of the cyclic garbage collector held the worker, by generation",
            ["generation"],
            buckets=GC_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "newspipe_consumer_lag",
            "Records behind the log end",
            ["topic", "partition"],
            registry=r,
        )
        self.state_entries = Gauge(
            "newspipe_state_entries", "Entries in a state table", ["table"], registry=r
        )
        self.partition_stalled = Gauge(
            "newspipe_partition_stalled",
            "1 while an input partition's batch keeps failing (readiness turns 503)",
            ["topic", "partition"],
            registry=r,
        )
        self.state_rebuilds = Counter(
            "newspipe_state_rebuilds",
            "Partitions whose unreadable local state was set aside and rebuilt from the changelog",
            ["stage"],
            registry=r,
        )
        self.moderation_queued = Counter(
            "newspipe_moderation_queued",
            "Clean records also sent to the moderation queue (status not approved)",
            ["stream"],
            registry=r,
        )
        # the global tables every worker reads whole (pipeline.stream.tables): `table` is
        # moderation.rules or moderation.history
        self.table_lag = Gauge(
            "newspipe_table_lag",
            "Records of a global table's topic not yet applied (to its last stable offset)",
            ["table"],
            registry=r,
        )
        self.table_age = Gauge(
            "newspipe_table_age_seconds",
            "Seconds since the broker last answered a fetch of a global table (-1: not yet)",
            ["table"],
            registry=r,
        )
        self.table_ready = Gauge(
            "newspipe_table_ready",
            "1 once a global table caught up with its topic's end at start",
            ["table"],
            registry=r,
        )
        self.table_records = Gauge(
            "newspipe_table_records",
            "Records a global table applied since the worker started",
            ["table"],
            registry=r,
        )
        self.table_bad_records = Gauge(
            "newspipe_table_bad_records",
            "Records of a global table's topic skipped as unreadable",
            ["table"],
            registry=r,
        )
        self.moderation_rules_version = Gauge(
            "newspipe_moderation_rules_version",
            "Changes applied to the moderation rules snapshot the last comments batch used",
            registry=r,
        )
        self.ready = Gauge(
            "newspipe_ready", "1 when partitions are assigned and recovered", registry=r
        )
        self.worker_info = Gauge("newspipe_worker_info", "Worker build", ["version"], registry=r)
        self.worker_info.labels(__version__).set(1)

    def watch_gc(self) -> Callable[[], None]:
        """Observe every garbage collection's pause in `gc_pause` (a full collection walks every
        object alive, the state's entries included, with the event loop stopped); returns the
        function that stops watching. The worker watches; tests and tools need not."""
        children = [self.gc_pause.labels(str(g)) for g in range(3)]
        started = [0.0]

        def callback(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                children[min(info["generation"], 2)].observe(time.perf_counter() - started[0])

        gc.callbacks.append(callback)
        return lambda: gc.callbacks.remove(callback)

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, cached: `labels()` validates and hashes its arguments on
        every call, and the worker calls it several times per record."""
        key = (id(metric), labels)
        got = self._children.get(key)
        if got is None:
            got = self._children[key] = metric.labels(*labels)
        return got


# from this many values on, the buckets are found by numpy in one call rather than one bisect each
_NUMPY_FROM = 64


def observe_many(child: Any, values: Sequence[float]) -> None:
    """`child.observe(v)` for every value, with one lock round per bucket instead of per value:
    a worker observes several stage times for every record, and `observe` walks the buckets in
    Python. Uses the histogram's own bucket counters; an unknown client falls back to observe."""
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in values:
            child.observe(value)
        return
    total.inc(sum(values))
    if len(values) < _NUMPY_FROM:
        for i, n in Tally(bisect_left(bounds, v) for v in values).items():
            buckets[i].inc(n)
        return
    import numpy as np  # a worker has it loaded already (the toxicity model)

    # bisect_left for every value at once (side="left"); NaN sorts last, as observe() puts it
    where = np.searchsorted(np.asarray(bounds), np.asarray(values, dtype=np.float64), "left")
    counts = np.bincount(np.minimum(where, len(bounds) - 1), minlength=len(bounds))
    for i in np.flatnonzero(counts).tolist():
        buckets[i].inc(int(counts[i]))
