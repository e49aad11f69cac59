"""Small aiokafka helpers shared by the CLI, ingest, replay and tests: admin and producing.

Kept apart from the Faust shell so tools that only produce do not start a Faust app.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from pipeline.settings import Settings
from pipeline.topics import (
    CLEAN,
    DLQ,
    NEARDUP,
    RAW,
    SINGLE_PARTITION,
    TOPIC_TRENDS,
    TREND_EVENTS,
    TopicNames,
)


def topic_specs(settings: Settings) -> list[NewTopic]:
    """Partitions and retention per topic; the DLQ keeps longer so rejects can be replayed."""
    names = TopicNames(settings.topic_prefix)
    specs = []
    for base in (*RAW, *CLEAN, DLQ, TOPIC_TRENDS, TREND_EVENTS, NEARDUP):
        retention = {
            DLQ: settings.dlq_retention_ms,
            **{t: settings.raw_retention_ms for t in RAW},
        }.get(base, settings.clean_retention_ms)
        configs = {"retention.ms": str(retention)}
        if base in RAW:
            # Raw topics take records up to twice the event limit, so an oversized event reaches
            # the worker and the DLQ with `too_large` instead of failing in the producer.
            configs["max.message.bytes"] = str(2 * settings.max_event_bytes + 64 * 1024)
        specs.append(
            NewTopic(
                name=names.name(base),
                num_partitions=1 if base in SINGLE_PARTITION else settings.partitions,
                replication_factor=settings.replication_factor,
                topic_configs=configs,
            )
        )
    return specs


async def create_topics(settings: Settings) -> list[str]:
    """Create the pipeline's topics; existing ones are left as they are. Returns names created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.aiokafka_security()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [s for s in topic_specs(settings) if s.name not in existing]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
        return [s.name for s in wanted]
    finally:
        await admin.close()


async def delete_topics(settings: Settings, names: Iterable[str]) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **settings.aiokafka_security()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


def producer(settings: Settings, **overrides: object) -> AIOKafkaProducer:
    """An idempotent, acks=all producer: nothing acknowledged is lost, retries never duplicate."""
    options: dict[str, object] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "compression_type": None,
        **settings.aiokafka_security(),
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)  # type: ignore[arg-type]


async def assign_from_beginning(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> None:
    """Assign every partition of `topics` (no consumer group) and seek to the start."""
    tps = []
    for topic in topics:
        parts = consumer.partitions_for_topic(topic)
        if parts is None:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps.extend(TopicPartition(topic, p) for p in parts)
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)


async def read_tail(
    settings: Settings, topic: str, partitions: Iterable[int] | None, last: int
) -> list[bytes]:
    """The values of the last `last` records of each given partition (all when None)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        **settings.aiokafka_security(),
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if parts is None:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        wanted = set(parts) if partitions is None else set(partitions) & set(parts)
        tps = [TopicPartition(topic, p) for p in sorted(wanted)]
        if not tps:
            return []
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        todo = {}
        for tp in tps:
            if ends[tp] > starts[tp]:
                consumer.seek(tp, max(starts[tp], ends[tp] - last))
                todo[tp] = ends[tp]
        values: list[bytes] = []
        deadline = time.monotonic() + 60
        while todo and time.monotonic() < deadline:
            batch = await consumer.getmany(*todo, timeout_ms=500)
            for tp, messages in batch.items():
                values.extend(m.value for m in messages if m.offset < todo[tp] and m.value)
            for tp in list(todo):
                if await consumer.position(tp) >= todo[tp]:
                    del todo[tp]
        if todo:
            raise TimeoutError(f"could not read the tail of {topic} within 60 s")
        return values
    finally:
        await consumer.stop()
