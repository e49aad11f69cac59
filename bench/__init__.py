"""Benchmarks: `make bench` (= `python -m bench.run`) runs them all; see docs/performance.md."""
