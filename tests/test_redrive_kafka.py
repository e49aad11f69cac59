"""`newspipe replay --from-dlq` through the real broker: records refused under a limit land in
the DLQ; once the limit is raised the redrive turns them clean, a record still broken is reported
as still failing and not sent, and redriving again adds nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from typing import Any

import orjson
import pytest

from pipeline.kafka_io import producer
from pipeline.replay.events import key_for
from pipeline.settings import Settings
from pipeline.show import read_topics
from pipeline.topics import TopicNames
from tests.conftest import ROOT, settings_env

pytestmark = pytest.mark.kafka

LONG_BODY = " ".join(f"Harbour works continued on day {i} with new cranes." for i in range(120))


def article(n: int, body: str) -> dict[str, Any]:
    return {"schema_version": "1.0", "source": "redrive-test", "source_id": str(n),
            "title": f"Harbour story number {n} about the port", "body": body}  # fmt: skip


async def feed(settings: Settings, records: list[tuple[bytes | None, bytes]]) -> None:
    topic = TopicNames(settings.topic_prefix).raw_articles
    prod = producer(settings)
    await prod.start()
    try:
        futures = [await prod.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await prod.stop()


def counters(settings: Settings) -> dict[str, float]:
    """Sum of each newspipe_*_total counter over its labels."""
    out: dict[str, float] = {}
    url = f"http://127.0.0.1:{settings.web_port}/metrics"
    for line in urllib.request.urlopen(url, timeout=5).read().decode().splitlines():
        if line.startswith("newspipe_") and "_total{" in line:
            name = line.split("{", 1)[0]
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def wait_drained(settings: Settings, n_in: int, timeout: float = 120) -> dict[str, float]:
    """Counters once the worker has read `n_in` records and every one has left the pipeline."""
    deadline = time.monotonic() + timeout
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        try:
            seen = counters(settings)
        except OSError:
            seen = {}
        done = sum(
            seen.get(f"newspipe_{n}_total", 0.0)
            for n in ("records_out", "duplicates", "dead_letters")
        )
        if seen.get("newspipe_records_in_total", 0) >= n_in and done == seen.get(
            "newspipe_records_in_total"
        ):
            return seen
        time.sleep(0.5)
    raise AssertionError(f"not drained at {n_in} records in: {seen}")


def read(settings: Settings, topic: str) -> list[dict[str, Any]]:
    return asyncio.run(read_topics(settings, [topic], timeout=15, idle=2.0))[topic]


def redrive(settings: Settings, *args: str) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "replay", "--from-dlq", "--json", *args],
        env=settings_env(settings), cwd=ROOT, capture_output=True, timeout=180,
    )  # fmt: skip
    lines = done.stdout.decode().strip().splitlines()
    return done.returncode, orjson.loads(lines[-1]), done.stderr.decode()


def test_a_redrive_after_raising_a_limit_turns_dead_letters_clean_once(
    topics: Settings, worker_factory, tmp_path
) -> None:
    strict = replace(topics, max_field_chars=2000)
    names = TopicNames(strict.topic_prefix, strict.app_id)
    good = [article(n, "The port reopened on Monday after the storm.") for n in range(3)]
    long = [article(n, LONG_BODY) for n in range(10, 12)]
    assert len(LONG_BODY) > 2000
    records = [(key_for("articles", a), orjson.dumps(a)) for a in good + long]
    records.append((b"broken-1", b'{"schema_version": "1.0", "title": '))  # not JSON, ever

    worker = worker_factory(strict, "strict").start()
    worker.wait_ready()
    asyncio.run(feed(strict, records))
    wait_drained(strict, len(records))
    worker.stop()
    letters = read(strict, names.dlq)
    assert sorted(d["error_code"] for d in letters) == ["field.too_long", "field.too_long",
                                                        "not_json"]  # fmt: skip
    assert len(read(strict, names.clean_articles)) == 3

    # the planned redrive with a code filter sends nothing and says what it would send
    relaxed = replace(strict, max_field_chars=Settings().max_field_chars)
    code, plan, _ = redrive(relaxed, "--dry-run", "--code", "field.too_long")
    assert code == 0
    assert plan["would_produce"] == 2
    assert plan["skipped"] == {"error code not asked for (--code)": 1}

    # the limit is raised (the worker restarts with it), then the redrive
    worker = worker_factory(relaxed, "relaxed").start()
    worker.wait_ready()
    checkpoint = str(tmp_path / "redrive.ckpt")
    code, first, err = redrive(relaxed, "--resume", checkpoint)
    assert code == 1, err  # a letter still fails: exit 1 without --allow-invalid
    assert first["produced"] == 2
    assert first["invalid"] == {"not_json": 1}
    assert first["skipped"] == {}
    assert "still failing (refused at the door)" in err
    after = wait_drained(relaxed, 2)
    assert after["newspipe_records_out_total"] == 2
    clean = read(relaxed, names.clean_articles)
    assert sorted(a["source_id"] for a in clean) == ["0", "1", "10", "11", "2"]
    assert len(read(relaxed, names.dlq)) == 3  # nothing was dead-lettered again

    # the same redrive resumed from its checkpoint: everything is already done
    code, again, _ = redrive(relaxed, "--resume", checkpoint, "--allow-invalid")
    assert code == 0
    assert again["produced"] == 0 and again["read"] == 0  # it starts after its checkpoint

    # redriven again from scratch: the worker counts the copies as duplicates, emits nothing
    code, fresh, _ = redrive(relaxed, "--allow-invalid")
    assert code == 0 and fresh["produced"] == 2
    after = wait_drained(relaxed, 4)
    assert after["newspipe_records_out_total"] == 2
    assert after["newspipe_duplicates_total"] == 2
    assert len(read(relaxed, names.clean_articles)) == 5
    assert len(read(relaxed, names.dlq)) == 3
