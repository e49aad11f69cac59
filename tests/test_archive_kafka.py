"""`newspipe archive` against the real broker: each run writes a manifest that `archive verify`
checks, consecutive runs of the consumer group cover the offsets without a hole, values are stored
as the bytes that were on the topic, and a windowed replay reads only the files inside."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from pathlib import Path

import orjson
import pytest

from devtools.datasets import fox_comments, replicate
from pipeline.kafka_io import producer
from pipeline.replay.manifest import load
from pipeline.settings import Settings
from pipeline.topics import TopicNames
from tests.test_replay_kafka import cli

pytestmark = pytest.mark.kafka

DAY = 86_400_000


def send(settings: Settings, values: list[tuple[bytes, int]]) -> None:
    """(value, Kafka timestamp) pairs into the raw comments topic."""
    topic = TopicNames(settings.topic_prefix).raw_comments

    async def run() -> None:
        prod = producer(settings, linger_ms=5)
        await prod.start()
        try:
            futures = [await prod.send(topic, v, key=b"a-1", timestamp_ms=ts) for v, ts in values]
            await asyncio.gather(*futures)
        finally:
            await prod.stop()

    asyncio.run(run())


def test_archive_runs_write_manifests_that_verify_and_a_window_reads_only_its_files(
    topics: Settings, tmp_path: Path
):
    settings = topics
    day0 = (int(time.time() * 1000) // DAY - 3) * DAY  # three days ago, midnight UTC
    rows = list(replicate(fox_comments(), 90, "source_comment_id"))
    values = []
    for i, row in enumerate(rows):
        row.pop("posted_at", None)  # the Kafka timestamp dates them
        value = orjson.dumps(row, option=orjson.OPT_INDENT_2).replace(b"\n", b" ")
        values.append((value, day0 + (i % 3) * DAY + i))
    send(settings, values[:60])
    archive = tmp_path / "archive"
    first = cli(settings, "archive", "--dir", str(archive), "--idle-exit", "3")
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    assert b"archived 60 records" in first.stdout and b"manifest: " in first.stdout
    send(settings, values[60:])
    second = cli(settings, "archive", "--dir", str(archive), "--idle-exit", "3")
    assert b"archived 30 records" in second.stdout

    manifests = load(archive)
    assert [m["status"] for m in manifests] == ["complete", "complete"]
    assert sum(m["records"] for m in manifests) == 90
    done = cli(settings, "archive", "verify", str(archive))
    out = done.stdout.decode()
    assert done.returncode == 0, out
    assert "2 runs" in out and "90 records" in out and ": complete" in out
    # non-compact JSON is kept as it was on the topic: no escaping, replayed byte for byte
    line = next(p for p in archive.rglob("part-*.jsonl.gz"))
    first_line = gzip.decompress(line.read_bytes()).splitlines()[0]
    assert b'"value_bytes":' in first_line and b"value_text" not in first_line

    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((day0 + DAY) / 1000))
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((day0 + 2 * DAY) / 1000))
    plan = cli(settings, "replay", str(archive), "--since", since, "--until", until, "--dry-run",
               "--json")  # fmt: skip
    assert plan.returncode == 0, plan.stderr.decode()[-2000:]
    summary = json.loads(plan.stdout.decode().strip().splitlines()[-1])
    assert summary["would_produce"] == summary["read"] == 30  # only the middle day's files
    assert summary["pruned_files"] == 4 and summary["pruned_records"] == 60
    assert summary["produced"] == 0
    assert "no consumer group reads" in " ".join(summary["warnings"])  # no worker runs here

    # one part lost: verify says which, and fails
    victim = sorted(archive.rglob("part-*.jsonl.gz"))[0]
    victim.unlink()
    broken = cli(settings, "archive", "verify", str(archive))
    assert broken.returncode == 1
    assert f"{victim.relative_to(archive).as_posix()}: missing" in broken.stdout.decode()
