"""The core's steps, each run alone over the same payloads: what the core would cost a comment or
an article if nothing happened between its steps.

`make bench` prints their sum beside the whole core of the same run. The difference is what
runs between the steps (the chain's bookkeeping, the results, a mixed loop's cache misses and
collections): the most that fusing the steps into one compiled pass could win. The sum is
the least this design costs a comment, whatever is done to the glue.

Each step is called through the public function the core calls, over the whole set (batches of
`CORE_BATCH` where the core batches), the collector off while it is timed; the fastest of
`rounds` passes counts. Each step gets what the core gives it: what the steps before it made,
prepared outside the timing (moderation the comments dedup let through, with its repeat lookup;
the near-dup stage the articles the exact check let through; the encoder the core's own output
records). The sum errs low in that the collector is off and the language step gets `CORE_BATCH`
texts at a time where the core gives it a batch's records (some carry their language already),
and high by what a timed pass holds besides the calls (a fresh deduper, the moderation context).
Run alone: `python -m bench.steps [--comments N] [--articles M] [--rounds K]`.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from pipeline.core import Core, States
from pipeline.dedup import Deduper, DictState
from pipeline.moderation.policy import ModerationContext, Moderator
from pipeline.normalize import normalize_article, normalize_comment
from pipeline.normalize.language import detect_languages
from pipeline.normalize.records import LANGUAGE_TEXT
from pipeline.settings import Settings
from pipeline.tagging import Tagger
from pipeline.topics import ARTICLES, COMMENTS
from pipeline.validate import DoorValidator

# bench.run's (it imports this module, so they are repeated; a test checks CORE_BATCH agrees)
Payload = tuple[bytes, bytes]  # (key, value)
CORE_BATCH = 500  # the core's batch
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


def _copy_each(records: Sequence[dict[str, Any]]) -> None:
    """A copy of each record, dropped at once, as the dedup steps make and drop theirs."""
    for record in records:
        dict(record)


def _per_event(
    steps: dict[str, Callable[[], Any]], copied: Sequence[dict[str, Any]], n: int, rounds: int
) -> dict[str, float]:
    """µs per event of each of `steps` (in its order) and their "sum". The dedup steps write to
    the record they get, so they get copies of `copied`: the copying is taken off again."""
    out = {name: _fastest(step, rounds) / n * 1e6 for name, step in steps.items()}
    copying = _fastest(lambda: _copy_each(copied), rounds) / n * 1e6
    for name in ("dedup", "neardup"):
        if name in out:
            out[name] -= copying
    out["sum"] = sum(out[name] for name in steps)
    return out


def _core_records(
    stream: str, payloads: Sequence[Payload], settings: Settings, tagger: Tagger
) -> list[dict[str, Any]]:
    """What the core hands the encoder for `payloads`, one record per event (`bench.run`'s
    pass encodes every result's record, clean or not)."""
    from bench.run import core_batches  # bench.run imports this module

    states = States(DictState(), DictState(), DictState(), DictState())
    core = Core(settings, states, tagger)
    return [result.record for items in core_batches(stream, list(payloads))
            for result in core.process_whole_batch(stream, items, states)]  # fmt: skip


def _deduper(settings: Settings) -> Deduper:
    """A deduper over empty state, as a stage's first batch has."""
    return Deduper(settings, DictState(), DictState(), DictState())


def _dedup_pass(
    settings: Settings, records: Sequence[dict[str, Any]], check: str
) -> Callable[[], None]:
    """A timed pass of the deduper's `check` over copies of `records`, from empty state: the
    check writes to the record it gets, and every round must start as the first did."""

    def run() -> None:
        method = getattr(_deduper(settings), check)
        for record in records:
            method(dict(record))

    return run


def _first_steps(
    stream: str, payloads: Sequence[Payload], settings: Settings
) -> tuple[dict[str, Callable[[], Any]], list[dict[str, Any]]]:
    """The steps every stream starts with (validate, normalize, language), each over what the
    one before it made, and the normalized records (language left open, as the core leaves
    it): the later steps' inputs."""
    validator = DoorValidator(settings)
    door = validator.raw_comment if stream == COMMENTS else validator.raw_article
    normalize = normalize_comment if stream == COMMENTS else normalize_article
    raws = [door(value) for _, value in payloads]
    records = [normalize(raw, event_time=EVENT_TIME, now=NOW, detect=False) for raw in raws]
    pending = [r[LANGUAGE_TEXT] for r in records if LANGUAGE_TEXT in r]
    first = {
        "validate": lambda: _each(payloads, lambda p: door(p[1])),
        "normalize": lambda: _each(raws, lambda raw: normalize(
            raw, event_time=EVENT_TIME, now=NOW, detect=False)),
        "language": lambda: [detect_languages(batch) for batch in _batches(pending)],
    }  # fmt: skip
    return first, records


def comment_steps(
    payloads: Sequence[Payload], settings: Settings, tagger: Tagger, rounds: int = 5
) -> dict[str, float]:
    """µs per comment of each step of the comment core, alone over `payloads`, in
    `STEPS[COMMENTS]` order; "sum" is their total. Each step's inputs are what the steps before
    it made."""
    first, records = _first_steps(COMMENTS, payloads, settings)
    texts = [r["text"] for r in records]
    moderator = Moderator(settings)
    seen = _deduper(settings)
    let_through = [o.record for o in (seen.check_comment(dict(r)) for r in records) if o.emit]
    encoded = _core_records(COMMENTS, payloads, settings, tagger)

    def moderate() -> None:
        context = ModerationContext.offline(settings)
        for batch in _batches(let_through):
            moderator.moderate(batch, context, seen.repeat_of)

    steps = {
        **first,
        "dedup": _dedup_pass(settings, records, "check_comment"),
        "tag": lambda: _each(texts, lambda text: tagger.tag_comment(text, inherited_ready=[])),
        "moderate": moderate,
        "serialize": lambda: _each(encoded, orjson.dumps),
    }  # fmt: skip
    return _per_event(steps, records, len(payloads), rounds)


def article_steps(
    payloads: Sequence[Payload], settings: Settings, tagger: Tagger, rounds: int = 5
) -> dict[str, float]:
    """`comment_steps` for articles (`STEPS[ARTICLES]`): the near-dup stage's fingerprint,
    band lookups and judgment over an index the pass fills in order, as the stage does."""
    first, records = _first_steps(ARTICLES, payloads, settings)
    exact = _deduper(settings)
    checked = [o for o in (exact.check_article_exact(dict(r)) for r in records) if o.emit]
    encoded = _core_records(ARTICLES, payloads, settings, tagger)

    def neardup() -> None:
        deduper = _deduper(settings)
        for outcome in checked:
            deduper.check_near_duplicate(dict(outcome.record), outcome)

    steps = {
        **first,
        "dedup": _dedup_pass(settings, records, "check_article_exact"),
        "tag": lambda: _each(records, lambda r: tagger.tag_article(
            r["title"], r.get("standfirst"), r["body"])),
        "neardup": neardup,
        "serialize": lambda: _each(encoded, orjson.dumps),
    }  # fmt: skip
    return _per_event(steps, records, len(payloads), rounds)


STEP_FUNCTIONS = {COMMENTS: comment_steps, ARTICLES: article_steps}


def main(argv: list[str] | None = None) -> int:
    """Each stream's steps alone and the whole core (in memory), alternating, each round right
    after a floor window: the medians, and the share of the whole core that is not the steps."""
    from bench.run import FLOOR_WINDOW_S, core_pass, core_payloads, fastest, floor_pass

    ap = argparse.ArgumentParser(description="Time each step of the core alone, and their sum.")
    ap.add_argument("--comments", type=int, default=20_000)
    ap.add_argument("--articles", type=int, default=7_600)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (median counts)")
    args = ap.parse_args(argv)
    settings, tagger = Settings(), Tagger.load()
    for stream, payloads in core_payloads(args.comments, args.articles).items():
        n, windows, wholes, alone = len(payloads), [], [], []
        for _ in range(args.rounds):
            windows.append(floor_pass(payloads, FLOOR_WINDOW_S))
            wholes.append(core_pass(settings, tagger, "dict", stream, payloads)["wall"] / n * 1e6)
            alone.append(STEP_FUNCTIONS[stream](payloads, settings, tagger))
        floor = fastest(windows)[0] / n * 1e6
        steps = sorted(alone, key=lambda a: a["sum"])[len(alone) // 2]
        whole = sorted(wholes)[len(wholes) // 2]
        sums = ", ".join(f"{a['sum']:.1f}" for a in alone)
        print(f"{stream}: " + ", ".join(f"{name} {steps[name]:.2f}" for name in STEPS[stream])
              + f" us; sum {steps['sum']:.1f} us = {steps['sum'] / floor:.1f}x the orjson floor "
              f"({floor:.2f} us); the whole core {whole:.1f} us = {whole / floor:.1f}x, "
              f"{1 - steps['sum'] / whole:.0%} of it between the steps "
              f"(rounds: sums {sums}; "
              f"whole {', '.join(f'{w:.1f}' for w in wholes)})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
