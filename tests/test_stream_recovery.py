"""Through the real broker: a worker heals what retrying cannot fix. Unreadable local state is
set aside and rebuilt from the state changelog; a record Kafka refuses becomes an `internal`
dead letter and its partition moves on. Every id stays exactly once and readiness comes back."""

from __future__ import annotations

import asyncio
import signal
import urllib.request
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from pipeline.topics import TopicNames
from tests.test_stream_dedup import (
    assert_exactly_once,
    events,
    feed,
    read_clean,
    reference_ids,
    scrape,
    scrape_until,
)

pytestmark = pytest.mark.kafka


def corrupt(state_dir: Path) -> list[Path]:
    """What a full disk or a crashed host leaves: truncated tables and logs, an empty MANIFEST,
    no CURRENT. Returns the databases it damaged."""
    damaged = []
    for db in sorted(p.parent for p in state_dir.rglob("CURRENT")):
        for f in [*db.glob("*.sst"), *db.glob("*.log")]:
            with open(f, "r+b") as fh:
                fh.truncate(f.stat().st_size // 3)
        for manifest in db.glob("MANIFEST-*"):
            manifest.write_bytes(b"")
        (db / "CURRENT").unlink()
        damaged.append(db)
    return damaged


def test_corrupted_local_state_is_set_aside_and_rebuilt_from_the_changelog(topics, worker_factory):
    settings = replace(topics, store="rocksdb://")
    items = events()
    first, second = items[::2], items[1::2]
    worker = worker_factory(settings, "first").start()
    worker.wait_ready(timeout=120)
    asyncio.run(feed(settings, first))
    scrape_until(settings, len(first))
    worker.kill(signal.SIGTERM)

    damaged = corrupt(Path(settings.state_dir) / settings.app_id)
    assert len(damaged) >= 3, damaged
    # the first half again (only the rebuilt state knows it was emitted) and the second half
    asyncio.run(feed(settings, first + second))
    restarted = worker_factory(settings, "restarted").start()
    restarted.wait_ready(timeout=180)
    expected = reference_ids(first + second)  # double posts: the order fed decides which stays
    out = read_clean(settings, len(expected))
    assert_exactly_once(out, settings, expected)

    aside = [p for p in (Path(settings.state_dir) / settings.app_id).iterdir()
             if ".corrupt-" in p.name]  # fmt: skip
    assert len(aside) >= 3, aside  # kept for forensics
    assert scrape(settings).get("newspipe_state_rebuilds", 0) >= 3
    log = restarted.log.read_text(errors="replace")
    assert log.count('"state_set_aside"') == len(aside)
    assert restarted.ready()


def test_a_record_kafka_refuses_becomes_a_dead_letter_and_its_partition_moves_on(
    topics, worker_factory
):
    """clean.comments takes records of at most 1,500 bytes here: a long comment's clean record
    is refused by the broker on every attempt. It must end in the DLQ as `internal`, and the
    short comments around it in the clean topic, instead of the partition looping for ever."""
    settings = topics
    names = TopicNames(settings.topic_prefix)
    asyncio.run(_limit_message_bytes(settings, names.clean_comments, 1500))
    comment = {
        "schema_version": "1.0", "source": "test", "article_url": "https://example.com/a",
        "author": "reader",
    }  # fmt: skip
    items = []
    for n in range(60):
        text = (
            ("A long comment about the match that goes on and on. " * 40)
            if n % 20 == 7
            else (f"Short comment number {n} about the match.")
        )
        value = orjson.dumps({**comment, "source_comment_id": str(n), "text": text})
        items.append(("comments", b"a-key", value))
    worker = worker_factory(settings).start()
    worker.wait_ready(timeout=120)
    asyncio.run(feed(settings, items))
    totals = scrape_until(settings, len(items), timeout=180)
    assert totals["newspipe_dead_letters"] == 3 and totals["newspipe_records_out"] == 57

    out = read_clean(settings, 57)
    letters = out[names.dlq]
    assert [d["error_code"] for d in letters] == ["internal"] * 3
    assert all("could not commit" in d["error_message"] for d in letters)
    assert sorted(d["offset"] for d in letters) == [7, 27, 47]
    assert len(out[names.clean_comments]) == 57
    with urllib.request.urlopen(worker.url("/readyz"), timeout=5) as resp:
        assert resp.status == 200
    metrics = worker.metrics()
    assert "newspipe_partition_stalled{" not in metrics  # cleared once the partition moved on


async def _limit_message_bytes(settings, topic: str, limit: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(limit)})]
        )
    finally:
        await admin.close()
