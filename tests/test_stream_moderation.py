"""Through the real broker: the moderation tables every worker reads whole (rules, history), a
rule changed while a worker runs, the history surviving a restart, and `newspipe moderation`.

The delays printed here (a committed record to a reader's table) are the figures the README's
Moderation section quotes.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import uuid
from dataclasses import replace

import orjson
import pytest

from pipeline.kafka_io import producer
from pipeline.moderation.history import HistoryEvent
from pipeline.moderation.rules import BANNED_WORDS, PREMOD_AUTHORS, SUSPECT_WORDS, Rules
from pipeline.stream.tables import HISTORY, RULES, moderation_tables
from pipeline.topics import TopicNames
from tests.conftest import ROOT, settings_env

pytestmark = pytest.mark.kafka


def newspipe(settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, env=settings_env(settings),
        input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def send(settings, topic: str, items: list[tuple[bytes, bytes | None, int | None]],
               abort: bool = False) -> None:  # fmt: skip
    """Write `(key, value, timestamp_ms)` records in one transaction (committed or aborted), as
    a comments batch writes its history events."""
    prod = producer(settings, transactional_id=f"test-{uuid.uuid4().hex[:8]}")
    await prod.start()
    try:
        await prod.begin_transaction()
        for key, value, ts in items:
            await prod.send(topic, value, key=key, timestamp_ms=ts)
        if abort:
            await prod.abort_transaction()
        else:
            await prod.commit_transaction()
    finally:
        await prod.stop()


async def _until(check, timeout: float = 10.0, step: float = 0.01) -> float:
    """Seconds until `check()` is true; fails at `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s")
        await asyncio.sleep(step)
    return time.monotonic() - started


def test_a_committed_record_reaches_a_running_reader_in_well_under_a_second_aborted_never(topics):
    """The table reader applies what a transaction committed as soon as its fetch returns it;
    what an aborted batch wrote is never applied (read_committed)."""
    names = TopicNames(topics.topic_prefix, topics.app_id)

    async def run() -> dict[str, list[float]]:
        history_before = [(b"ann", HistoryEvent("ann", "old", 1.0e9, "review").value(), None)]
        await send(topics, names.moderation_history, history_before)
        tables = moderation_tables(topics, names)
        await tables.start()
        delays: dict[str, list[float]] = {RULES: [], HISTORY: []}
        try:
            assert await asyncio.wait_for(tables.wait_ready(), 30)
            history = tables.value(HISTORY)
            assert history.count("ann", now=1.0e9) == {"review": 1}  # read at start
            await send(topics, names.moderation_rules,
                       [(BANNED_WORDS.encode(), Rules.record(BANNED_WORDS, ["aborted"], "t", "t"),
                         None)], abort=True)  # fmt: skip
            for n in range(5):
                version = tables.value(RULES).version
                record = Rules.record(BANNED_WORDS, [f"word{n}"], "t", "t")
                await send(topics, names.moderation_rules, [(BANNED_WORDS.encode(), record, None)])
                delays[RULES].append(
                    await _until(lambda v=version: tables.value(RULES).version > v)
                )
                assert tables.value(RULES).get(BANNED_WORDS) == {f"word{n}"}
                event = HistoryEvent(f"author{n}", f"c{n}", 1.0e9 + n, "rejected")
                await send(topics, names.moderation_history, [(event.key(), event.value(), None)])
                delays[HISTORY].append(
                    await _until(lambda a=event.author: bool(history.count(a, now=1.0e9 + 10)))
                )
            assert tables.value(RULES).version == 5  # the aborted record never counted
            status = tables.status()
            assert status[RULES].applied == 5 and status[HISTORY].applied == 6
            assert status[RULES].lag == 0 and status[RULES].age_s is not None
            assert status[RULES].age_s < 2
        finally:
            await tables.stop()
        return delays

    delays = asyncio.run(run())
    for name, values in delays.items():
        print(f"{name}: committed -> applied by a running reader: "
              f"median {sorted(values)[len(values) // 2] * 1000:.0f} ms, "
              f"max {max(values) * 1000:.0f} ms over {len(values)}")  # fmt: skip
        assert max(values) < 3.0


def _scrape(worker, name: str) -> float | None:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", worker.metrics(), re.M)
    return float(match.group(1)) if match else None


def _comment(n: int, text: str) -> tuple[bytes, bytes]:
    event = {"schema_version": "1.0", "source": "t", "article_url": "https://example.com/mod",
             "source_comment_id": f"m{n}-{uuid.uuid4().hex[:6]}", "author": f"reader{n}",
             "text": text}  # fmt: skip
    from pipeline.ingest import page_article_id

    key = page_article_id({"source": "t", "url": "https://example.com/mod"})
    return key.encode(), orjson.dumps(event)


def _feed_comment(settings, n: int, text: str) -> None:
    names = TopicNames(settings.topic_prefix, settings.app_id)
    key, value = _comment(n, text)

    async def run() -> None:
        prod = producer(settings)
        await prod.start()
        try:
            await prod.send_and_wait(names.raw_comments, value, key=key)
        finally:
            await prod.stop()

    asyncio.run(run())


def test_a_rule_changed_while_the_worker_runs_is_in_the_next_batchs_snapshot(
    topics, worker_factory
):
    """`newspipe moderation add` while a worker runs: the next comments batch gets the new rules
    snapshot, no restart (newspipe_moderation_rules_version: the snapshot the last comments
    batch was handed)."""
    worker = worker_factory(topics).start()
    worker.wait_ready(timeout=120)
    _feed_comment(topics, 0, "A first comment about the match, before any rule changed.")
    asyncio.run(_until(lambda: _scrape(worker, "newspipe_moderation_rules_version") == 0, 60))

    done = newspipe(topics, "moderation", "add", BANNED_WORDS, "zorkle")
    assert done.returncode == 0, done.stderr
    changed = time.monotonic()
    asyncio.run(
        _until(lambda: _scrape(worker, 'newspipe_table_records{table="moderation.rules"}') == 1,
               30, 0.05)
    )  # fmt: skip
    applied = time.monotonic() - changed
    _feed_comment(topics, 1, "A second comment that says zorkle, after the rule changed.")
    asyncio.run(_until(lambda: _scrape(worker, "newspipe_moderation_rules_version") == 1, 30))
    print(f"rule written by the CLI -> in the worker's table: {applied * 1000:.0f} ms")
    assert applied < 5.0
    assert worker.alive()


def test_an_authors_history_survives_a_worker_restart(topics, worker_factory):
    """History events committed to moderation.history are read back whole by a new worker (the
    events a comments batch writes take the same path), and the table stays ready."""
    names = TopicNames(topics.topic_prefix, topics.app_id)
    now_ms = int(time.time() * 1000)
    events = [HistoryEvent("troll", f"c{n}", now_ms / 1000 - n, "rejected") for n in range(4)]
    asyncio.run(send(topics, names.moderation_history,
                     [(e.key(), e.value(), int(e.t * 1000)) for e in events[:3]]))  # fmt: skip
    first = worker_factory(topics, "first").start()
    first.wait_ready(timeout=120)
    key = 'newspipe_table_records{table="moderation.history"}'
    assert _scrape(first, key) == 3
    asyncio.run(send(topics, names.moderation_history,
                     [(events[3].key(), events[3].value(), int(events[3].t * 1000))]))  # fmt: skip
    asyncio.run(_until(lambda: _scrape(first, key) == 4, 30, 0.05))
    first.stop()
    second = worker_factory(topics, "second").start()
    second.wait_ready(timeout=120)
    assert _scrape(second, key) == 4
    assert _scrape(second, 'newspipe_table_ready{table="moderation.history"}') == 1


def test_the_moderation_command_round_trip(topics):
    """show (seed), add, remove, set from stdin, reset (a tombstone: back to the seed), and the
    errors: an unknown list (exit 2), no rules topic (exit 1)."""
    seed = Rules.seed()
    shown = newspipe(topics, "moderation", "show", SUSPECT_WORDS)
    assert shown.returncode == 0, shown.stderr
    assert f"{SUSPECT_WORDS}: {len(seed.get(SUSPECT_WORDS))} entries, seed" in shown.stdout

    assert newspipe(topics, "moderation", "add", BANNED_WORDS, "Zorkle", "big  bad",
                    "--by", "ed").returncode == 0  # fmt: skip
    removed = newspipe(topics, "moderation", "remove", BANNED_WORDS, "ZORKLE", "absent")
    assert removed.returncode == 0 and "not in banned_words: absent" in removed.stderr
    authors = "Troll One\n# a comment\ntroll two  # note\n\n"
    done = newspipe(topics, "moderation", "set", PREMOD_AUTHORS, "--file", "-", stdin=authors)
    assert done.returncode == 0, done.stderr
    shown = newspipe(topics, "moderation", "show")
    assert shown.returncode == 0, shown.stderr
    lists = _parse_show(shown.stdout)
    assert lists[BANNED_WORDS] == sorted(seed.get(BANNED_WORDS) | {"big bad"})
    assert lists[PREMOD_AUTHORS] == ["troll one", "troll two"]
    assert "premod_authors: 2 entries, set by" in shown.stdout

    assert newspipe(topics, "moderation", "reset", BANNED_WORDS).returncode == 0
    lists = _parse_show(newspipe(topics, "moderation", "show", BANNED_WORDS).stdout)
    assert lists[BANNED_WORDS] == sorted(seed.get(BANNED_WORDS))

    unknown = newspipe(topics, "moderation", "add", "bad_words", "x")
    assert unknown.returncode == 2 and "invalid choice: 'bad_words'" in unknown.stderr
    elsewhere = replace(topics, topic_prefix=f"none{uuid.uuid4().hex[:6]}.")
    missing = newspipe(elsewhere, "moderation", "show")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr + unknown.stderr


def _parse_show(text: str) -> dict[str, list[str]]:
    lists: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("  "):
            lists[current].append(line.strip())  # type: ignore[index]
        elif ":" in line:
            current = line.split(":", 1)[0]
            lists[current] = []
    return lists
