"""Targets a replay must not write to without `--force`: outputs and internals of the pipeline.

Writing raw events into a clean topic, the DLQ or a changelog corrupts what consumers and state
recovery trust; it is almost always a typo, so it is refused rather than warned about.
"""

from __future__ import annotations

import math

from pipeline.topics import CLEAN, DLQ, NEARDUP, STATE, TOPIC_TRENDS, TREND_EVENTS

PROTECTED = (*CLEAN, DLQ, TOPIC_TRENDS, TREND_EVENTS, NEARDUP)
# Faust's changelogs and repartition topics, Kafka's own, and the stages' state changelogs
INTERNAL_MARKERS = ("-changelog", "-repartition", "__", *(f"-{t}" for t in STATE))


class ReplayRefused(Exception):
    """Raised before anything is read or produced."""


def protected_reason(topic: str) -> str | None:
    """Why `topic` is protected (with any deployment prefix), or None when it is fair game."""
    dotted = "." + topic
    for name in PROTECTED:
        if dotted.endswith("." + name):
            return f"{topic} is the pipeline's {name} output"
    if ".clean." in dotted + ".":
        return f"{topic} is a clean topic"
    for marker in INTERNAL_MARKERS:
        if marker in topic:
            return f"{topic} is an internal topic ({marker})"
    return None


def check_targets(topics: list[str], force: bool = False) -> None:
    for topic in topics:
        reason = protected_reason(topic)
        if reason and not force:
            raise ReplayRefused(f"refusing to replay into {topic}: {reason} (use --force)")


def check_source_topic(topic: str, force: bool = False) -> None:
    """`--from-topic` must hold raw events: a clean or internal topic would be re-fed as raw."""
    reason = protected_reason(topic)
    if reason and not force:
        raise ReplayRefused(
            f"refusing to read --from-topic {topic}: {reason}; its records are not raw events "
            "and would be fed back into the pipeline as raw (use --force if that is meant)"
        )


def check_window(name_from: str, start: int | None, name_to: str, end: int | None) -> None:
    """An inverted or empty window would read everything and send nothing: refuse it."""
    if start is not None and end is not None and start >= end:
        raise ReplayRefused(
            f"empty time window: {name_from} {iso(start)} is not before {name_to} {iso(end)}"
        )


def check_flags(*, has_files: bool, from_topic: str | None, from_ms: int | None,
                from_dlq: bool = False, codes: bool = False,
                to_ms: int | None, since_ms: int | None, until_ms: int | None,
                topic: str | None, offline: bool, dry_run: bool, resume: bool,
                new_run: bool, rate: float | None) -> None:  # fmt: skip
    """Refuse flags that do not apply to the chosen source or target, rather than ignore them."""
    if not has_files and not from_topic and not from_dlq:
        raise ReplayRefused("give SOURCES, --from-topic or --from-dlq")
    if from_dlq and (has_files or from_topic):
        raise ReplayRefused("--from-dlq reads the DLQ: give no SOURCES and no --from-topic with it")
    if from_dlq and topic:
        raise ReplayRefused(
            "--to-topic does not apply with --from-dlq: each dead letter goes back to the raw "
            "topic it came from"
        )
    if codes and not from_dlq:
        raise ReplayRefused("--code selects dead letters: it needs --from-dlq")
    if (from_ms is not None or to_ms is not None) and not (from_topic or from_dlq):
        raise ReplayRefused(
            "--from/--to select a Kafka-timestamp range of --from-topic or --from-dlq and do not "
            "apply to files; for files use --since/--until (event time)"
        )
    check_window("--since", since_ms, "--until", until_ms)
    check_window("--from", from_ms, "--to", to_ms)
    if offline and topic:
        raise ReplayRefused(
            "--to-topic does not apply with --offline (it writes files, not topics)"
        )
    if offline and dry_run:
        raise ReplayRefused("--dry-run and --offline: choose one (--dry-run plans a Kafka replay)")
    if new_run and not resume:
        raise ReplayRefused("--new-run starts a checkpoint over: it needs --resume FILE")
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise ReplayRefused(f"--rate must be a positive number of events per second, got {rate:g}")


def iso(ms: int) -> str:
    """Epoch ms as the ISO-8601 UTC text the options take."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
