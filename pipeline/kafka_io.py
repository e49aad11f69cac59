"""Small aiokafka helpers shared by the CLI, ingest, replay and tests: admin and producing.

Kept apart from the Faust shell so tools that only produce do not start a Faust app.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from pipeline.settings import Settings
from pipeline.topics import (
    CLEAN,
    DLQ,
    MODERATION_HISTORY,
    MODERATION_QUEUE,
    MODERATION_RULES,
    NEARDUP,
    RAW,
    RAW_ARTICLES,
    SINGLE_PARTITION,
    STATE,
    STATE_COMMENTS,
    TOPIC_TRENDS,
    TREND_EVENTS,
    TopicNames,
)


def raw_record_limit(settings: Settings, base: str) -> int:
    """The largest record a raw topic takes: twice the event limit (an article's `html` adds its
    own), so an oversized event reaches the worker and the DLQ as `too_large` instead of
    failing in the producer."""
    largest = settings.max_event_bytes
    if base == RAW_ARTICLES:
        largest += settings.max_html_bytes
    return 2 * largest + 64 * 1024


def topic_specs(settings: Settings) -> list[NewTopic]:
    """Partitions and retention per topic; the DLQ keeps longer so rejects can be replayed.

    Moderation: the queue is partitioned and kept like the clean comments (a queued comment goes
    to its clean comment's partition number); the rules are compacted (the last record per list
    name is the list; one partition, every worker reads it whole); the history keeps its events
    a day longer than the history horizon (every worker reads it whole at start)."""
    names = TopicNames(settings.topic_prefix, settings.app_id)
    specs = []
    # A state changelog keeps each batch for twice its horizon (what is older can only hold
    # entries the core ignores, see pipeline.stream.state), and at least a day longer than the raw
    # topics: its last record holds the mark, which must outlive every input it covers, or an
    # idle partition re-read from lost offsets would be emitted again.
    horizon_s = {t: settings.article_horizon_s for t in STATE}
    horizon_s[STATE_COMMENTS] = settings.comment_horizon_s
    floor_ms = settings.raw_retention_ms + 24 * 3600 * 1000
    state_retention = {t: max(2 * 1000 * h, floor_ms) for t, h in horizon_s.items()}
    history_ms = 1000 * settings.moderation_history_horizon_s + 24 * 3600 * 1000
    moderation = (MODERATION_QUEUE, MODERATION_RULES, MODERATION_HISTORY)
    for base in (*RAW, *CLEAN, DLQ, TOPIC_TRENDS, TREND_EVENTS, NEARDUP, *STATE, *moderation):
        retention = {
            DLQ: settings.dlq_retention_ms,
            **{t: settings.raw_retention_ms for t in RAW},
            **state_retention,
            MODERATION_HISTORY: history_ms,
        }.get(base, settings.clean_retention_ms)
        configs = {"retention.ms": str(retention)}
        if base in STATE or base == MODERATION_HISTORY:
            configs["cleanup.policy"] = "delete"
        if base == MODERATION_RULES:
            configs = {"cleanup.policy": "compact"}
        if base in RAW:
            configs["max.message.bytes"] = str(raw_record_limit(settings, base))
        specs.append(
            NewTopic(
                name=names.name(base),
                num_partitions=1 if base in SINGLE_PARTITION else settings.partitions,
                replication_factor=settings.replication_factor,
                topic_configs=configs,
            )
        )
    return specs


async def create_topics(settings: Settings, ready_timeout_s: float = 60.0) -> list[str]:
    """Create the pipeline's topics; existing ones are left as they are. Returns names created.

    Returns only once every partition of every topic has a leader: a consumer that joins its
    group before that is assigned nothing of the missing topic until its next metadata refresh.
    """
    admin = admin_client(settings)
    await admin.start()
    try:
        specs = topic_specs(settings)
        existing = set(await admin.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
        counts = await _wait_for_leaders(
            admin, {s.name: s.num_partitions for s in specs}, ready_timeout_s
        )
        _check_layout(settings, counts)
        return [s.name for s in wanted]
    finally:
        await admin.close()


class TopicLayoutError(Exception):
    """Existing topics whose partition counts break the stages' co-partitioning."""


def _check_layout(settings: Settings, counts: dict[str, int]) -> None:
    """Partition p of the raw comments reads the articles state of partition p, so the raw
    topics and their state changelogs must have one partition count; the near-dup index must
    be whole, so its topics have one partition."""
    names = TopicNames(settings.topic_prefix, settings.app_id)
    together = [names.raw_articles, names.raw_comments, names.state_articles, names.state_comments]
    found = {name: counts[name] for name in together if name in counts}
    if len(set(found.values())) > 1:
        raise TopicLayoutError(
            f"these topics must have the same number of partitions: {found} (add partitions to "
            "the smaller ones with kafka-topics.sh --alter, or start over with new topics)"
        )
    for name in (names.neardup, names.state_neardup):
        if counts.get(name, 1) != 1:
            raise TopicLayoutError(f"{name} must have 1 partition, it has {counts[name]}")
    # a queued comment goes to its raw comment's partition number, like its clean record
    raw, queue = counts.get(names.raw_comments), counts.get(names.moderation_queue)
    if raw is not None and queue is not None and queue < raw:
        raise TopicLayoutError(
            f"{names.moderation_queue} has {queue} partitions, fewer than the {raw} of "
            f"{names.raw_comments} (add partitions with kafka-topics.sh --alter)"
        )


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, partitions: dict[str, int], timeout_s: float
) -> dict[str, int]:
    """Wait until the metadata shows each topic with a leader for `partitions[topic]` partitions
    (an existing topic may have more); returns each topic's partition count. Raises TimeoutError
    naming the topics still not ready."""
    deadline = time.monotonic() + timeout_s
    pending = dict(partitions)
    counts: dict[str, int] = {}
    while True:
        for desc in await admin.describe_topics(list(pending)):
            name = desc["topic"]
            led = [p for p in desc["partitions"] if p["error_code"] == 0 and p["leader"] >= 0]
            if desc["error_code"] == 0 and len(led) >= pending.get(name, 0):
                pending.pop(name, None)
                counts[name] = len(desc["partitions"])
        if not pending:
            return counts
        if time.monotonic() >= deadline:
            raise TimeoutError(f"topics without a leader after {timeout_s:.0f}s: {sorted(pending)}")
        await asyncio.sleep(0.2)


def app_topic_names(settings: Settings) -> list[str]:
    """Every topic a deployment's worker and tools create: the pipeline's own (pipeline/topics.py)
    and those Faust makes for the app (the trend tables' changelogs, its assignor's topic)."""
    from pipeline.trends import WINDOWS

    names = TopicNames(settings.topic_prefix, settings.app_id).all()
    # Faust names them `<app id>-<table>-changelog` with no prefix; tables `trends-<window>`
    # (pipeline/app.py)
    faust = [f"{settings.app_id}-trends-{window}-changelog" for window in WINDOWS]
    faust.append(f"{settings.app_id}-__assignor-__leader")
    return [*names, *faust]


async def delete_topics(settings: Settings, names: Iterable[str]) -> tuple[list[str], list[str]]:
    """Delete those of `names` that exist; returns (deleted, did not exist)."""
    admin = admin_client(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = list(names)
        doomed = [n for n in wanted if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
        return doomed, [n for n in wanted if n not in existing]
    finally:
        await admin.close()


def consumer(settings: Settings, **options: object) -> AIOKafkaConsumer:
    """A consumer of the cluster in `settings`, with its security options: every consumer the
    project makes comes from here (tests/test_packaging.py), so none misses SASL or TLS."""
    return AIOKafkaConsumer(  # type: ignore[arg-type]
        bootstrap_servers=settings.bootstrap_servers, **settings.aiokafka_security(), **options
    )


def admin_client(settings: Settings, **options: object) -> AIOKafkaAdminClient:
    """An admin client of the cluster in `settings`, with its security options."""
    return AIOKafkaAdminClient(  # type: ignore[arg-type]
        bootstrap_servers=settings.bootstrap_servers, **settings.aiokafka_security(), **options
    )


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


def raw_producer(settings: Settings, **overrides: object) -> AIOKafkaProducer:
    """`producer` for the raw topics: records as large as a whole-page article event, zstd
    compressed (HTML shrinks several times: a 2.6 MB page travels as a few hundred KB)."""
    options: dict[str, object] = {
        "compression_type": "zstd",
        "max_request_size": raw_record_limit(settings, RAW_ARTICLES),
    }
    options.update(overrides)
    return producer(settings, **options)


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
