"""The core's steps, each run alone over the same payloads: what the core would cost a comment or
an article if nothing happened between its steps.

`make bench` prints their sum beside the whole core of the same run. The difference is what
runs between the steps (the chain's bookkeeping, the results, a mixed loop's cache misses and
collections): the most that fusing the steps into one compiled pass could win. The sum is
the least this design costs a comment, whatever is done to the glue.

Each step is called through the public function the core calls, over the whole set (batches of
`CORE_BATCH` where the core batches), the collector off while it is timed; the fastest of
`rounds` passes counts. Run alone: `python -m bench.steps [--comments N] [--articles M]`.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from pipeline.dedup import Deduper, DictState
from pipeline.moderation.policy import ModerationContext, Moderator
from pipeline.normalize import normalize_article, normalize_comment
from pipeline.normalize.language import detect_languages
from pipeline.normalize.records import LANGUAGE_TEXT
from pipeline.settings import Settings
from pipeline.tagging import Tagger
from pipeline.topics import ARTICLES, COMMENTS
from pipeline.validate import DoorValidator

Payload = tuple[bytes, bytes]  # (key, value), as bench.run makes them
CORE_BATCH = 500  # the core's batch (bench.run.CORE_BATCH)
STEPS = {
    COMMENTS: ("validate", "normalize", "language", "dedup", "tag", "moderate", "serialize"),
    ARTICLES: ("validate", "normalize", "language", "dedup", "tag", "neardup", "serialize"),
}
EVENT_TIME = "2023-11-14T22:13:20Z"
NOW = "2026-01-01T00:00:00Z"


def _fastest(step: Callable[[], Any], rounds: int) -> float:
    """Seconds of the fastest of `rounds` calls of `step`, the collector off while it runs."""
    best = float("inf")
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - t0)
    finally:
        if enabled:
            gc.enable()
    return best


def _batches(items: Sequence[Any]) -> list[Sequence[Any]]:
    """`items` in the core's batches. Each step keeps one batch's outputs at a time, as the
    core does: keeping a whole pass's would time the allocator's growth, not the step."""
    return [items[i : i + CORE_BATCH] for i in range(0, len(items), CORE_BATCH)]


def _each(items: Sequence[Any], step: Callable[[Any], Any]) -> None:
    """`step` over `items`, one batch's outputs kept at a time (`_batches`)."""
    for batch in _batches(items):
        [step(item) for item in batch]


def _timed(
    timed: dict[str, Callable[[], Any]], copies: Sequence[dict[str, Any]], n: int, rounds: int
) -> dict[str, float]:
    """µs per event of each of `timed` (in its order) and their "sum". The dedup steps write to
    the record they get, so they get copies of `copies`: the copying is taken off again."""
    out = {name: _fastest(step, rounds) / n * 1e6 for name, step in timed.items()}
    copying = _fastest(lambda: [dict(r) for r in copies], rounds) / n * 1e6
    for name in ("dedup", "neardup"):
        if name in out:
            out[name] -= copying
    out["sum"] = sum(out[name] for name in timed)
    return out


def comment_steps(
    payloads: Sequence[Payload], settings: Settings, tagger: Tagger, rounds: int = 5
) -> dict[str, float]:
    """µs per comment of each step of the comment core, alone over `payloads`, in
    `STEPS[COMMENTS]` order; "sum" is their total. Each step's inputs are what the steps before
    it made."""
    validator = DoorValidator(settings)
    raws = [validator.raw_comment(value) for _, value in payloads]
    records = [normalize_comment(raw, event_time=EVENT_TIME, now=NOW, detect=False)
               for raw in raws]  # fmt: skip
    pending = [r[LANGUAGE_TEXT] for r in records if LANGUAGE_TEXT in r]
    texts = [r["text"] for r in records]
    moderator = Moderator(settings)

    def dedup() -> None:
        deduper = Deduper(settings, DictState(), DictState(), DictState())
        for record in records:
            deduper.check_comment(dict(record))

    def moderate() -> None:
        context = ModerationContext.offline(settings)
        for batch in _batches(records):
            moderator.moderate(batch, context)

    timed = {
        "validate": lambda: _each(payloads, lambda p: validator.raw_comment(p[1])),
        "normalize": lambda: _each(raws, lambda raw: normalize_comment(
            raw, event_time=EVENT_TIME, now=NOW, detect=False)),
        "language": lambda: [detect_languages(batch) for batch in _batches(pending)],
        "dedup": dedup,
        "tag": lambda: _each(texts, lambda text: tagger.tag_comment(text, inherited_ready=[])),
        "moderate": moderate,
        "serialize": lambda: _each(records, orjson.dumps),
    }  # fmt: skip
    return _timed(timed, records, len(payloads), rounds)


def article_steps(
    payloads: Sequence[Payload], settings: Settings, tagger: Tagger, rounds: int = 5
) -> dict[str, float]:
    """`comment_steps` for articles (`STEPS[ARTICLES]`): the near-dup stage's fingerprint,
    band lookups and judgment over an index the pass fills in order, as the stage does."""
    validator = DoorValidator(settings)
    raws = [validator.raw_article(value) for _, value in payloads]
    records = [normalize_article(raw, event_time=EVENT_TIME, now=NOW, detect=False)
               for raw in raws]  # fmt: skip
    pending = [r[LANGUAGE_TEXT] for r in records if LANGUAGE_TEXT in r]
    exact = Deduper(settings, DictState(), DictState(), DictState())
    checked = [exact.check_article_exact(dict(r)) for r in records]

    def dedup() -> None:
        deduper = Deduper(settings, DictState(), DictState(), DictState())
        for record in records:
            deduper.check_article_exact(dict(record))

    def neardup() -> None:
        deduper = Deduper(settings, DictState(), DictState(), DictState())
        for outcome in checked:
            deduper.check_near_duplicate(dict(outcome.record), outcome)

    timed = {
        "validate": lambda: _each(payloads, lambda p: validator.raw_article(p[1])),
        "normalize": lambda: _each(raws, lambda raw: normalize_article(
            raw, event_time=EVENT_TIME, now=NOW, detect=False)),
        "language": lambda: [detect_languages(batch) for batch in _batches(pending)],
        "dedup": dedup,
        "tag": lambda: _each(records, lambda r: tagger.tag_article(
            r["title"], r.get("standfirst"), r["body"])),
        "neardup": neardup,
        "serialize": lambda: _each(records, orjson.dumps),
    }  # fmt: skip
    return _timed(timed, records, len(payloads), rounds)


STEP_FUNCTIONS = {COMMENTS: comment_steps, ARTICLES: article_steps}


def main(argv: list[str] | None = None) -> int:
    from bench.run import core_payloads, fastest, floor_pass

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--comments", type=int, default=20_000)
    ap.add_argument("--articles", type=int, default=7_600)
    args = ap.parse_args(argv)
    settings, tagger = Settings(), Tagger.load()
    for stream, payloads in core_payloads(args.comments, args.articles).items():
        windows = [floor_pass(payloads, 0.25) for _ in range(5)]
        floor = fastest(windows)[0] / len(payloads) * 1e6
        steps = STEP_FUNCTIONS[stream](payloads, settings, tagger)
        print(f"{stream}: " + ", ".join(f"{name} {steps[name]:.2f}" for name in STEPS[stream])
              + f" us; sum {steps['sum']:.1f} us = {steps['sum'] / floor:.1f}x the orjson floor "
              f"({floor:.2f} us)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
