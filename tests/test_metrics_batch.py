"""Batched metric updates: the same exposition as one update per record."""

from __future__ import annotations

import gc
import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from pipeline.metrics import LATENCY_BUCKETS, STAGE_BUCKETS, Metrics, observe_many


def _pair(
    buckets: tuple[float, ...],
) -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    one, many = CollectorRegistry(), CollectorRegistry()
    return (one, Histogram("h", "h", ["s"], buckets=buckets, registry=one),
            many, Histogram("h", "h", ["s"], buckets=buckets, registry=many))  # fmt: skip


def _samples(registry: CollectorRegistry) -> list[str]:
    """Bucket and count lines (the sum is compared apart: float addition order differs, and
    `_created` is when each histogram was made)."""
    lines = generate_latest(registry).decode().splitlines()
    return [ln for ln in lines if ln.startswith(("h_bucket", "h_count"))]


def test_observing_many_values_at_once_exposes_what_observing_each_does():
    rng = random.Random(7)
    for buckets in (STAGE_BUCKETS, LATENCY_BUCKETS):
        one, h1, many, h2 = _pair(buckets)
        values = [rng.choice(buckets) for _ in range(50)]  # exactly on a bound: `<=` wins
        values += [rng.uniform(0, buckets[-1] * 2) for _ in range(500)] + [0.0, 1e9]
        for v in values:
            h1.labels("x").observe(v)
        observe_many(h2.labels("x"), values[:10])  # few: one bisect each
        observe_many(h2.labels("x"), values[10:100])  # many: numpy at once
        observe_many(h2.labels("x"), values[100:])
        assert _samples(one) == _samples(many)
        assert abs(h1.labels("x")._sum.get() - h2.labels("x")._sum.get()) < 1e-6 * sum(values)


def test_a_histogram_without_the_known_internals_is_observed_value_by_value():
    seen: list[float] = []

    class Plain:
        def observe(self, value: float) -> None:
            seen.append(value)

    observe_many(Plain(), [1.0, 2.0])
    assert seen == [1.0, 2.0]


def test_each_garbage_collection_pause_is_observed_by_generation_until_unwatched():
    """The worker's full collections walk the whole state with the loop stopped: operators see
    each pause in newspipe_gc_pause_seconds{generation}."""
    m = Metrics()
    stop = m.watch_gc()
    try:
        gc.collect()
        gc.collect(0)
    finally:
        stop()
    full = m.registry.get_sample_value("newspipe_gc_pause_seconds_count", {"generation": "2"})
    young = m.registry.get_sample_value("newspipe_gc_pause_seconds_count", {"generation": "0"})
    assert full is not None and full >= 1 and young is not None and young >= 1
    gc.collect()
    after = m.registry.get_sample_value("newspipe_gc_pause_seconds_count", {"generation": "2"})
    assert after == full  # no longer watched
