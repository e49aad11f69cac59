"""What the broker says about a replay's targets before anything is sent: do they exist, and does
any consumer group read them. A thin Kafka shell; `target_findings` is the pure decision."""

from __future__ import annotations

import asyncio
import difflib
from dataclasses import dataclass, field
from typing import Any

from pipeline.settings import Settings


@dataclass
class TargetInfo:
    """One snapshot of the cluster: topic names, and per topic the groups with offsets on it."""

    topics: set[str] = field(default_factory=set)
    readers: dict[str, list[str]] = field(default_factory=dict)  # topic -> groups with offsets
    active: set[str] = field(default_factory=set)  # groups with members now


def target_findings(targets: list[str], info: TargetInfo,
                    raw_targets: set[str]) -> tuple[list[str], list[str]]:  # fmt: skip
    """(errors, warnings): a missing target is an error (a typo or a forgotten prefix would
    otherwise auto-create a topic nobody reads); raw targets nobody reads get a warning."""
    errors, warnings = [], []
    for topic in targets:
        if topic not in info.topics:
            close = difflib.get_close_matches(topic, sorted(info.topics), n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            errors.append(f"target topic {topic} does not exist{hint}; create it first "
                          "(`newspipe topics create` for the pipeline's own)")  # fmt: skip
            continue
        if topic not in raw_targets:
            continue
        groups = info.readers.get(topic, [])
        running = [g for g in groups if g in info.active]
        if not groups:
            warnings.append(f"no consumer group reads {topic}: the replayed records will wait in "
                            "Kafka (up to its retention) until a worker starts")  # fmt: skip
        elif not running:
            warnings.append(f"{topic} is read by {', '.join(groups)} but no member is running "
                            "now: the records wait in Kafka until a worker starts")  # fmt: skip
    return errors, warnings


async def probe(settings: Settings, targets: list[str], timeout: float = 15.0) -> TargetInfo:
    """Ask the broker; raises what aiokafka raises when it cannot be reached."""
    return await asyncio.wait_for(_probe(settings, targets), timeout)


async def _probe(settings: Settings, targets: list[str]) -> TargetInfo:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.aiokafka_security()
    )
    await admin.start()
    try:
        info = TargetInfo(topics=set(await admin.list_topics()))
        wanted = {t for t in targets if t in info.topics}
        if not wanted:
            return info
        groups = [g[0] for g in await admin.list_consumer_groups()]
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            for tp, meta in offsets.items():
                if tp.topic in wanted and meta.offset >= 0:
                    readers = info.readers.setdefault(tp.topic, [])
                    if group not in readers:
                        readers.append(group)
        if groups:
            for response in await admin.describe_consumer_groups(groups):
                for described in response.groups:
                    group_id, members = _group_and_members(described)
                    if group_id and members:
                        info.active.add(group_id)
        return info
    finally:
        await admin.close()


def _group_and_members(described: Any) -> tuple[str | None, list[Any]]:
    """DescribeGroups rows are tuples whose layout grows with the API version: (error_code,
    group_id, state, protocol_type, protocol, members, ...)."""
    try:
        return str(described[1]), list(described[5])
    except (IndexError, TypeError):
        return None, []
