"""Batched metric updates: the same exposition as one update per record."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from pipeline.metrics import LATENCY_BUCKETS, STAGE_BUCKETS, observe_many


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
