"""Targets a replay must not write to without `--force`: outputs and internals of the pipeline.

Writing raw events into a clean topic, the DLQ or a changelog corrupts what consumers and state
recovery trust; it is almost always a typo, so it is refused rather than warned about.
"""

from __future__ import annotations

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
