"""Replay through the real broker: archive and replay into a fresh pipeline gives the same clean
records; a second replay into a live pipeline is all duplicates (mode="replay"); --resume after
SIGKILL loses nothing and repeats nothing acknowledged; bad lines are reported and skipped."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devtools.datasets import ag_articles, fox_comments, replicate
from pipeline.kafka_io import create_topics, delete_topics, producer
from pipeline.replay.events import key_for
from pipeline.settings import Settings
from pipeline.show import read_topics
from pipeline.topics import REPLAY_HEADER, TopicNames
from tests.conftest import ROOT, free_port, settings_env

pytestmark = pytest.mark.kafka

N_ARTICLES = 300
N_COMMENTS = 1_700


def events() -> list[tuple[str, bytes, bytes]]:
    """Real texts with fresh ids, keyed as ingest keys them."""
    out = []
    for art in replicate(ag_articles(), N_ARTICLES, "source_id"):
        art.pop("label", None)
        out.append(("articles", key_for("articles", art), orjson.dumps(art)))
    for com in replicate(fox_comments(), N_COMMENTS, "source_comment_id"):
        out.append(("comments", key_for("comments", com), orjson.dumps(com)))
    return out


async def feed(settings: Settings, items: list[tuple[str, bytes, bytes]]) -> None:
    names = TopicNames(settings.topic_prefix)
    topic = {"articles": names.raw_articles, "comments": names.raw_comments}
    prod = producer(settings, linger_ms=20)
    await prod.start()
    try:
        futures = [await prod.send(topic[s], v, key=k) for s, k, v in items]
        await asyncio.gather(*futures)
    finally:
        await prod.stop()


@pytest.fixture
def one_partition(pipeline_settings: Settings):
    """One partition per topic, so the clean output's order-dependent fields (near-duplicate
    links, spam clusters) are a function of the input alone and two runs can be compared."""
    made: list[Settings] = []

    def make() -> Settings:
        tag = uuid.uuid4().hex[:8]
        s = replace(pipeline_settings, partitions=1, topic_prefix=f"t{tag}.",
                    app_id=f"newspipe-test-{tag}", web_port=free_port(),
                    state_dir=pipeline_settings.state_dir.parent / f"state-{tag}")  # fmt: skip
        asyncio.run(create_topics(s))
        made.append(s)
        return s

    yield make
    for s in made:
        asyncio.run(delete_topics(s, TopicNames(s.topic_prefix).all()))


def cli(settings: Settings, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.replay.cli", *args],
                          env=settings_env(settings), cwd=ROOT, capture_output=True,
                          timeout=timeout)  # fmt: skip


def scrape(settings: Settings) -> list[tuple[str, dict[str, str], float]]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=5)
    samples = []
    for line in text.read().decode().splitlines():
        if line.startswith("newspipe_") and "_total{" in line:
            name, rest = line.split("{", 1)
            labels_text, value = rest.rsplit("} ", 1)
            labels = dict(p.split("=", 1) for p in labels_text.split(",") if p)
            samples.append((name, {k: v.strip('"') for k, v in labels.items()}, float(value)))
    return samples


def total(samples: list, name: str, **labels: str) -> float:
    return sum(v for n, ls, v in samples
               if n == name and all(ls.get(k) == x for k, x in labels.items()))  # fmt: skip


def wait_in(settings: Settings, n_in: int, timeout: float = 240) -> list:
    deadline = time.monotonic() + timeout
    samples: list = []
    while time.monotonic() < deadline:
        try:
            samples = scrape(settings)
        except OSError:
            samples = []
        n = total(samples, "newspipe_records_in_total")
        done = sum(
            total(samples, name)
            for name in (
                "newspipe_records_out_total",
                "newspipe_duplicates_total",
                "newspipe_dead_letters_total",
            )
        )
        # drained: every record read has also left its last stage (articles pass two)
        if n >= n_in and done == n:
            return samples
        time.sleep(0.5)
    raise AssertionError(f"worker counted {total(samples, 'newspipe_records_in_total')} of {n_in}")


def clean_by_id(settings: Settings, expected: int) -> dict[str, dict[str, Any]]:
    names = TopicNames(settings.topic_prefix)
    out = asyncio.run(
        read_topics(
            settings,
            [names.clean_articles, names.clean_comments],
            until=lambda o: sum(len(v) for v in o.values()) >= expected,
            timeout=120,
            idle=2.0,
        )
    )
    by_id: dict[str, dict[str, Any]] = {}
    for rec in out[names.clean_articles] + out[names.clean_comments]:
        rid = rec.get("comment_id") or rec["article_id"]
        assert rid not in by_id, f"{rid} emitted twice"
        key = rec.pop("_kafka")["key"]
        rec.pop("processed_at")
        by_id[rid] = {**rec, "_key": key}
    return by_id


def differences(a: dict[str, dict], b: dict[str, dict], limit: int = 5) -> list:
    """The first few (id, field, left, right) that differ, for a readable failure."""
    out = []
    for rid in sorted(a.keys() & b.keys()):
        for field in sorted(a[rid].keys() | b[rid].keys()):
            if a[rid].get(field) != b[rid].get(field):
                out.append((rid, field, a[rid].get(field), b[rid].get(field)))
        if len(out) >= limit:
            break
    return out


def read_raw(settings: Settings, topic: str, timeout: float = 60) -> list[Any]:
    """Every record of `topic` with headers and timestamps (read_topics drops them)."""

    async def run() -> list[Any]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            records: list[Any] = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for msgs in batch.values():
                    records.extend(msgs)
                positions = [await consumer.position(tp) for tp in tps]
                if all(p >= end[tp] for p, tp in zip(positions, tps, strict=True)):
                    return records
            raise AssertionError(f"{topic}: read {len(records)} records, not to the end")
        finally:
            await consumer.stop()

    return asyncio.run(run())


def make_topic(settings: Settings, name: str, partitions: int = 3) -> None:
    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            await admin.close()

    asyncio.run(run())


def drop_topic(settings: Settings, name: str) -> None:
    asyncio.run(delete_topics(settings, [name]))


def test_archive_then_replay_into_a_fresh_pipeline_gives_the_same_clean_records(
    one_partition, worker_factory, tmp_path: Path
):
    live = one_partition()
    items = events()
    worker = worker_factory(live, "live").start()
    worker.wait_ready()
    archive_dir = tmp_path / "archive"
    archiver = subprocess.Popen(
        [sys.executable, "-m", "pipeline.replay.cli", "archive", "--dir", str(archive_dir),
         "--idle-exit", "6", "--max-bytes", "40000"],
        env=settings_env(live), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    asyncio.run(feed(live, items))
    samples = wait_in(live, len(items))
    out, _ = archiver.communicate(timeout=120)
    assert archiver.returncode == 0, out.decode()
    assert f"archived {len(items)} records" in out.decode()
    parts = sorted(archive_dir.rglob("part-*.jsonl.gz"))
    names = TopicNames(live.topic_prefix)
    assert {p.parent.parent.name for p in parts} == {names.raw_articles, names.raw_comments}
    assert len(parts) > 2  # rotation happened
    again = cli(live, "archive", "--dir", str(archive_dir), "--idle-exit", "2")
    assert "archived 0 records" in again.stdout.decode()  # the group continues where it committed
    n_clean = int(total(samples, "newspipe_records_out_total"))
    original = clean_by_id(live, n_clean)
    assert len(original) == n_clean > 0.9 * len(items)

    fresh = one_partition()
    worker2 = worker_factory(fresh, "fresh").start()
    worker2.wait_ready()
    done = cli(fresh, "replay", str(archive_dir), "--json")
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert summary["produced"] == len(items) and summary["invalid"] == {}
    samples2 = wait_in(fresh, len(items))
    assert total(samples2, "newspipe_records_in_total", mode="replay") == len(items)
    replayed = clean_by_id(fresh, n_clean)
    assert replayed.keys() == original.keys()
    # same content, keys and event times; only processed_at differs
    assert replayed == original, differences(replayed, original)

    offline_dir = tmp_path / "offline"
    done = cli(live, "replay", str(archive_dir), "--offline", str(offline_dir))
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    offline = {}
    for name in ("clean.articles.jsonl", "clean.comments.jsonl"):
        for line in (offline_dir / name).read_bytes().splitlines():
            rec = orjson.loads(line)
            rec.pop("processed_at")
            offline[rec.get("comment_id") or rec["article_id"]] = rec
    expected = {rid: {k: v for k, v in rec.items() if k != "_key"}
                for rid, rec in original.items()}  # fmt: skip
    assert offline == expected, differences(offline, expected)


def test_replaying_into_the_live_pipeline_again_adds_nothing_and_counts_replay_duplicates(
    topics, worker_factory, tmp_path: Path
):
    live = topics
    items = events()[:1200]
    worker = worker_factory(live, "live").start()
    worker.wait_ready()
    asyncio.run(feed(live, items))
    first = wait_in(live, len(items))
    archive_dir = tmp_path / "archive"
    done = cli(live, "archive", "--dir", str(archive_dir), "--idle-exit", "3", "--from-beginning")
    assert done.returncode == 0, done.stdout.decode()

    done = cli(live, "replay", str(archive_dir), "--json")
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    second = wait_in(live, 2 * len(items))
    out_before = total(first, "newspipe_records_out_total")
    assert total(second, "newspipe_records_out_total") == out_before
    dups = total(second, "newspipe_duplicates_total", mode="replay")
    dlq = total(second, "newspipe_dead_letters_total", mode="replay")
    assert dups + dlq == len(items) and dups > 0
    assert total(second, "newspipe_records_out_total", mode="replay") == 0
    assert len(clean_by_id(live, int(out_before))) == out_before


def test_resume_after_sigkill_sends_nothing_acknowledged_twice_and_misses_nothing(
    pipeline_settings: Settings, tmp_path: Path
):
    settings = pipeline_settings
    target = f"{settings.topic_prefix}backfill.target"
    make_topic(settings, target)
    try:
        src = tmp_path / "comments.jsonl"
        rows = list(replicate(fox_comments(), 2_500, "source_comment_id"))
        src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        line_of = {r["source_comment_id"]: n for n, r in enumerate(rows, 1)}
        checkpoint = tmp_path / "cp.json"
        args = [sys.executable, "-m", "pipeline.replay.cli", "replay", str(src), "--topic",
                target, "--resume", str(checkpoint), "--checkpoint-every", "50", "--rate", "800",
                "--run-id", "first"]  # fmt: skip
        proc = subprocess.Popen(args, env=settings_env(settings), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 60
        mark = 0
        while time.monotonic() < deadline and mark < 600:
            time.sleep(0.2)
            if checkpoint.exists():
                mark = json.loads(checkpoint.read_text())["done"].get(str(src), 0)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        mark = json.loads(checkpoint.read_text())["done"][str(src)]
        assert 600 <= mark < len(rows), "killed midway"

        other = cli(settings, "replay", str(src), "--topic", target, "--resume", str(checkpoint),
                    "--run-id", "second")  # fmt: skip
        assert other.returncode == 2 and b"run id: checkpoint first, now second" in other.stderr
        # resumed by a relative path from the file's folder: the same backfill, the same run id
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.replay.cli", "replay", src.name, "--topic", target,
             "--resume", str(checkpoint), "--json"],
            env=settings_env(settings), cwd=tmp_path, capture_output=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
        assert summary["skipped_resume"] == mark
        assert summary["produced"] == len(rows) - mark
        assert json.loads(checkpoint.read_text())["done"][str(src)] == len(rows)

        records = read_raw(settings, target)
        seen = Counter(line_of[orjson.loads(m.value)["source_comment_id"]] for m in records)
        assert set(seen) == set(range(1, len(rows) + 1))  # nothing missed
        assert all(seen[n] == 1 for n in range(1, mark + 1))  # nothing acked sent again
        assert max(seen.values()) <= 2
        runs = {m.headers and dict(m.headers).get(REPLAY_HEADER) for m in records}
        assert runs == {b"first"}  # one backfill, one run id across the resume
    finally:
        drop_topic(settings, target)


def test_bad_lines_are_reported_with_file_and_line_and_the_rest_is_replayed(
    pipeline_settings: Settings, tmp_path: Path
):
    settings = pipeline_settings
    target = f"{settings.topic_prefix}backfill.bad"
    make_topic(settings, target, partitions=1)
    try:
        rows = list(replicate(fox_comments(), 40, "source_comment_id"))
        posted_ms = (int(time.time()) // 60 - 24 * 60) * 60_000  # a day ago, whole minute
        posted = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(posted_ms / 1000))
        for r in rows:
            r["posted_at"] = posted
        lines = [orjson.dumps(r) for r in rows]
        lines[4] = b'{"text": "cut off'
        lines[17] = b"[1, 2, 3]"
        lines[30] = b"\xff\xfe not utf8"
        src = tmp_path / "bad.jsonl"
        src.write_bytes(b"\n".join(lines) + b"\n")

        done = cli(settings, "replay", str(src), "--topic", target, "--json")
        assert done.returncode == 1  # invalid lines fail the run without --allow-invalid
        err = done.stderr.decode()
        for n in (5, 18, 31):
            assert f"{src}:{n}:" in err, err
        summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
        assert summary["produced"] == 37 and sum(summary["invalid"].values()) == 3

        records = read_raw(settings, target)
        assert len(records) == 37
        sent = [orjson.loads(m.value)["source_comment_id"] for m in records]
        assert sent == [r["source_comment_id"] for i, r in enumerate(rows) if i not in (4, 17, 30)]
        # original event time kept as the Kafka timestamp
        assert {m.timestamp for m in records} == {posted_ms}
        again = cli(settings, "replay", str(src), "--topic", target, "--dry-run",
                    "--allow-invalid")  # fmt: skip
        assert again.returncode == 0, again.stderr.decode()[-2000:]
    finally:
        drop_topic(settings, target)


def test_a_topic_time_range_replays_into_another_topic_with_its_timestamps(
    pipeline_settings: Settings,
):
    settings = pipeline_settings
    source, target = f"{settings.topic_prefix}old.raw", f"{settings.topic_prefix}backfill.range"
    make_topic(settings, source)
    make_topic(settings, target)
    day = 24 * 3600 * 1000
    base = (int(time.time() * 1000) // day - 3) * day  # three days ago, midnight UTC
    rows = list(replicate(fox_comments(), 300, "source_comment_id"))

    async def fill() -> None:
        prod = producer(settings)
        await prod.start()
        try:
            futures = [await prod.send(source, orjson.dumps(r), key=b"a-1",
                                       timestamp_ms=base + (i % 3) * day + i)
                       for i, r in enumerate(rows)]  # fmt: skip
            await asyncio.gather(*futures)
        finally:
            await prod.stop()

    try:
        asyncio.run(fill())
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((base + day) / 1000))
        iso_to = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((base + 2 * day) / 1000))
        done = cli(settings, "replay", "--from-topic", source, "--from", iso, "--to", iso_to,
                   "--topic", target, "--json")  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        records = read_raw(settings, target)
        expected = {base + day + i for i in range(len(rows)) if i % 3 == 1}
        assert {m.timestamp for m in records} == expected and len(records) == len(expected)
        assert all(m.key == b"a-1" for m in records)
        summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
        assert summary["produced"] == len(expected)
    finally:
        drop_topic(settings, source)
        drop_topic(settings, target)


def test_sigterm_stops_cleanly_flushing_and_checkpointing_exactly_what_was_acked(
    pipeline_settings: Settings, tmp_path: Path
):
    settings = pipeline_settings
    target = f"{settings.topic_prefix}backfill.term"
    make_topic(settings, target)
    try:
        src = tmp_path / "comments.jsonl"
        rows = list(replicate(fox_comments(), 2_000, "source_comment_id"))
        src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        checkpoint = tmp_path / "cp.json"
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.replay.cli", "replay", str(src), "--topic", target,
             "--resume", str(checkpoint), "--rate", "500", "--json"],
            env=settings_env(settings), cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(4)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err.decode()[-2000:]
        summary = json.loads(out.decode().strip().splitlines()[-1])
        assert summary["interrupted"] and 0 < summary["produced"] < len(rows)
        mark = json.loads(checkpoint.read_text())["done"][str(src)]
        records = read_raw(settings, target)
        # every send was flushed and acked before exit: the mark is exactly what is in the topic
        assert mark == summary["produced"] == len(records)
        ids = {orjson.loads(m.value)["source_comment_id"] for m in records}
        assert ids == {r["source_comment_id"] for r in rows[:mark]}
    finally:
        drop_topic(settings, target)


def test_a_dry_run_refuses_a_target_whose_prefix_was_forgotten(pipeline_settings: Settings,
                                                                tmp_path: Path):  # fmt: skip
    settings = pipeline_settings
    make_topic(settings, f"{settings.topic_prefix}raw.comments")
    try:
        src = tmp_path / "c.jsonl"
        src.write_bytes(orjson.dumps(fox_comments()[0]) + b"\n")
        done = cli(settings, "replay", str(src), "--topic", "raw.comments", "--dry-run")
        err = done.stderr.decode()
        assert done.returncode == 2, err
        assert "target topic raw.comments does not exist" in err
        assert f"did you mean {settings.topic_prefix}raw.comments? NEWSPIPE_TOPIC_PREFIX" in err
    finally:
        drop_topic(settings, f"{settings.topic_prefix}raw.comments")


def test_a_topic_range_counts_read_as_file_mode_does(pipeline_settings: Settings, tmp_path: Path):
    """Records outside [--from, --to) are read and filtered, as lines outside --since/--until are:
    the same source replayed from a file or from its topic reports the same counts."""
    settings = pipeline_settings
    source, target = f"{settings.topic_prefix}old.raw", f"{settings.topic_prefix}backfill.count"
    make_topic(settings, source, partitions=1)
    make_topic(settings, target, partitions=1)
    day = 24 * 3600 * 1000
    base = (int(time.time() * 1000) // day - 3) * day
    rows = list(replicate(fox_comments(), 60, "source_comment_id"))

    async def fill() -> None:
        prod = producer(settings)
        await prod.start()
        try:
            futures = [await prod.send(source, orjson.dumps(r), key=b"a-1",
                                       timestamp_ms=base + (i % 3) * day)
                       for i, r in enumerate(rows)]  # fmt: skip
            await asyncio.gather(*futures)
        finally:
            await prod.stop()

    try:
        asyncio.run(fill())
        frm = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((base + day) / 1000))
        to = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((base + 2 * day) / 1000))
        done = cli(settings, "replay", "--from-topic", source, "--from", frm, "--to", to,
                   "--topic", target, "--dry-run", "--json", "--log-every", "0")  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        assert ": 100.0% of input records |" in done.stderr.decode()  # progress counts records
        summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
        # offsets_for_times(--from) skips day 0 unread only where it is all before day 1; the
        # records it does read outside the window are counted as read and filtered
        assert summary["would_produce"] == 20
        assert summary["read"] == summary["would_produce"] + summary["skipped_filter"]
        assert summary["skipped_filter"] >= 20  # day 2 interleaves with day 1: read, filtered
    finally:
        drop_topic(settings, source)
        drop_topic(settings, target)


def test_after_ctrl_c_the_printed_command_resumes_exactly(pipeline_settings: Settings,
                                                          tmp_path: Path):  # fmt: skip
    settings = pipeline_settings
    target = f"{settings.topic_prefix}backfill.int"
    make_topic(settings, target)
    try:
        src = tmp_path / "comments.jsonl"
        rows = list(replicate(fox_comments(), 1_500, "source_comment_id"))
        src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.replay.cli", "replay", "comments.jsonl", "--topic",
             target, "--resume", "cp.json", "--rate", "300", "--log-every", "0.5",
             "--checkpoint-every", "100"],
            env=settings_env(settings), cwd=tmp_path, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not (tmp_path / "cp.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # a few progress lines
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        text = err.decode()
        assert proc.returncode == 130, text[-2000:]
        assert "| produced " in text and "produced rate" in text and "ETA" in text
        assert f"checkpoint: {tmp_path / 'cp.json'}" in text
        command = next(ln for ln in text.splitlines() if ln.startswith("resume with: "))
        argv = shlex.split(command.removeprefix("resume with: "))
        assert argv[:3] == ["newspipe", "replay", str(src)]
        # the printed command, run from elsewhere (absolute paths), finishes the backfill
        done = subprocess.run([sys.executable, "-m", "pipeline.replay.cli", *argv[1:], "--json"],
                              env=settings_env(settings), cwd=ROOT, capture_output=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        records = read_raw(settings, target)
        ids = Counter(orjson.loads(m.value)["source_comment_id"] for m in records)
        assert set(ids) == {r["source_comment_id"] for r in rows} and max(ids.values()) == 1
    finally:
        drop_topic(settings, target)


def test_a_record_too_large_to_send_fails_alone_and_holds_the_checkpoint_before_it(
    pipeline_settings: Settings, tmp_path: Path
):
    from pipeline.kafka_io import raw_record_limit
    from pipeline.replay.runner import ReplayOptions, replay
    from pipeline.topics import RAW_ARTICLES

    settings = replace(pipeline_settings, max_event_bytes=8_000, max_html_bytes=8_000)
    target = f"{settings.topic_prefix}backfill.large"
    make_topic(settings, target, partitions=1)
    try:
        rows = list(replicate(fox_comments(), 30, "source_comment_id"))
        rows[9]["text"] = "x" * (raw_record_limit(settings, RAW_ARTICLES) + 1)
        src = tmp_path / "comments.jsonl"
        src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        checkpoint = tmp_path / "cp.json"
        opts = ReplayOptions(sources=[str(src)], topic=target, resume=checkpoint, tty=False,
                             log_every=1e9)  # fmt: skip
        summary = asyncio.run(replay(settings, opts))
        assert (summary.read, summary.produced, summary.failed) == (30, 29, 1)
        (reason,) = summary.failures
        assert reason.startswith(f"{src}:10: MessageSizeTooLargeError"), reason
        # the rest went, in order; a resume starts again at the record that failed
        sent = [orjson.loads(m.value)["source_comment_id"] for m in read_raw(settings, target)]
        assert sent == [r["source_comment_id"] for i, r in enumerate(rows) if i != 9]
        assert json.loads(checkpoint.read_text())["done"][str(src)] == 9
    finally:
        drop_topic(settings, target)
