"""What the broker says about a replay's targets before anything is sent: do they exist, and does
any consumer group read them. A thin Kafka shell; `target_findings` is the pure decision.

"Reads" means has committed offsets on the topic. Whether a member is running now would need
DescribeGroups, whose response aiokafka 0.14 fails to decode from Kafka 4.x (the connection is
dropped), so it is not asked."""

from __future__ import annotations

import asyncio
import difflib
from dataclasses import dataclass, field
from typing import Any

from pipeline import kafka_io
from pipeline.settings import Settings


@dataclass
class TargetInfo:
    """One snapshot of the cluster: topic names, and per topic the groups with offsets on it."""

    topics: set[str] = field(default_factory=set)
    readers: dict[str, list[str]] = field(default_factory=dict)  # topic -> groups with offsets
    readers_unknown: str | None = None  # why the groups could not be listed, if they could not


def target_findings(targets: list[str], info: TargetInfo, raw_targets: set[str],
                    prefix: str = "") -> tuple[list[str], list[str]]:  # fmt: skip
    """(errors, warnings): a missing target is an error (a typo or a forgotten prefix would
    otherwise auto-create a topic nobody reads); raw targets nobody reads get a warning."""
    errors, warnings = [], []
    for topic in targets:
        if topic not in info.topics:
            close = difflib.get_close_matches(topic, sorted(info.topics), n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            if prefix and prefix + topic in info.topics:  # the deployment's own, named first
                hint = f" (did you mean {prefix}{topic}? NEWSPIPE_TOPIC_PREFIX is {prefix})"
            errors.append(f"target topic {topic} does not exist{hint}; create it first "
                          "(`newspipe topics create` for the pipeline's own)")  # fmt: skip
            continue
        if topic not in raw_targets:
            continue
        if info.readers_unknown is not None:
            warnings.append(f"could not tell whether a consumer group reads {topic} "
                            f"({info.readers_unknown})")  # fmt: skip
        elif not info.readers.get(topic):
            warnings.append(f"no consumer group reads {topic}: the replayed records will wait in "
                            "Kafka (up to its retention) until a worker starts")  # fmt: skip
    return errors, warnings


async def probe(settings: Settings, targets: list[str], raw: set[str],
                timeout: float = 15.0) -> TargetInfo:  # fmt: skip
    """Ask the broker which `targets` exist and which groups read those in `raw`. Raises what
    aiokafka raises (or TimeoutError) when the topics cannot be listed; the groups are only
    worth a warning, so failing or slow group look-ups (one request per group) leave
    `readers_unknown` set instead."""
    from aiokafka.errors import KafkaError

    admin = kafka_io.admin_client(settings)
    await asyncio.wait_for(admin.start(), timeout)
    try:
        info = TargetInfo(topics=set(await asyncio.wait_for(admin.list_topics(), timeout)))
        wanted = {t for t in targets if t in info.topics and t in raw}
        if wanted:
            try:
                info.readers = await asyncio.wait_for(_readers(admin, wanted), timeout)
            except (KafkaError, TimeoutError) as exc:  # e.g. not authorized to list groups
                info.readers_unknown = f"{type(exc).__name__}: {exc}"[:200]
        return info
    finally:
        await admin.close()


async def _readers(admin: Any, wanted: set[str]) -> dict[str, list[str]]:
    """Topic -> the consumer groups with committed offsets on it."""
    readers: dict[str, list[str]] = {}
    for group, *_ in await admin.list_consumer_groups():
        for tp, meta in (await admin.list_consumer_group_offsets(group)).items():
            if tp.topic in wanted and meta.offset >= 0 and group not in readers.get(tp.topic, []):
                readers.setdefault(tp.topic, []).append(group)
    return readers
