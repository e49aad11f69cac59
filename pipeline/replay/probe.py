"""What the broker says about a replay's targets before anything is sent: do they exist, and does
any consumer group read them. A thin Kafka shell; `target_findings` is the pure decision.

"Reads" means has committed offsets on the topic. Whether a member is running now would need
DescribeGroups, whose response aiokafka 0.14 fails to decode from Kafka 4.x (the connection is
dropped), so it is not asked."""

from __future__ import annotations

import asyncio
import difflib
from dataclasses import dataclass, field

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
    """Ask the broker which `targets` exist and which groups read those in `raw`; raises what
    aiokafka raises when it cannot be reached."""
    return await asyncio.wait_for(_probe(settings, targets, raw), timeout)


async def _probe(settings: Settings, targets: list[str], raw: set[str]) -> TargetInfo:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.aiokafka_security()
    )
    await admin.start()
    try:
        info = TargetInfo(topics=set(await admin.list_topics()))
        wanted = {t for t in targets if t in info.topics and t in raw}
        if not wanted:
            return info
        try:
            for group, *_ in await admin.list_consumer_groups():
                offsets = await admin.list_consumer_group_offsets(group)
                for tp, meta in offsets.items():
                    if tp.topic in wanted and meta.offset >= 0:
                        readers = info.readers.setdefault(tp.topic, [])
                        if group not in readers:
                            readers.append(group)
        except KafkaError as exc:  # e.g. not authorized to list groups: worth a warning only
            info.readers_unknown = f"{type(exc).__name__}: {exc}"[:200]
        return info
    finally:
        await admin.close()
