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
from collections import Counter
from dataclasses import replace

import orjson
import pytest

from pipeline.kafka_io import producer
from pipeline.moderation.history import HistoryEvent
from pipeline.moderation.rules import BANNED_WORDS, PREMOD_AUTHORS, SUSPECT_WORDS, Rules
from pipeline.show import read_topics
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


def _comment(n: int, text: str, author: str = "") -> tuple[bytes, bytes]:
    event = {"schema_version": "1.0", "source": "t", "article_url": "https://example.com/mod",
             "source_comment_id": f"m{n}-{uuid.uuid4().hex[:6]}",
             "author": author or f"reader{n}", "text": text}  # fmt: skip
    from pipeline.ingest import page_article_id

    key = page_article_id({"source": "t", "url": "https://example.com/mod"})
    return key.encode(), orjson.dumps(event)


def _feed_comment(settings, n: int, text: str, author: str = "") -> None:
    names = TopicNames(settings.topic_prefix, settings.app_id)
    key, value = _comment(n, text, author)

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


# -- statuses on real comments, with the moderation core ------------------------------------


def _read(settings, topics: list[str], until, timeout: float = 120.0) -> dict[str, list[dict]]:
    return asyncio.run(read_topics(settings, topics, until=until, timeout=timeout, idle=3.0))


def _by_text(settings, needle: str, expected: int, timeout: float = 60.0) -> list[dict]:
    """The clean comments whose text holds `needle`, once `expected` of them are there."""
    topic = TopicNames(settings.topic_prefix, settings.app_id).clean_comments

    def hits(out: dict[str, list[dict]]) -> list[dict]:
        return [r for r in out[topic] if needle in r["text"]]

    out = _read(settings, [topic], lambda o: len(hits(o)) >= expected, timeout)
    found = hits(out)
    assert len(found) >= expected, f"{len(found)} of {expected} comments with {needle!r}"
    return sorted(found, key=lambda r: r["_kafka"]["offset"])


def test_the_queue_holds_exactly_the_clean_comments_not_approved(topics, worker_factory):
    """The seed page and the 1,528 Fox News comments go in; moderation.queue holds each clean
    comment whose status is not approved once, the same record, and nothing else."""
    from devtools.datasets import fox_comments
    from pipeline.ingest import ingest_paths, page_article_id
    from tests.conftest import SEED

    names = TopicNames(topics.topic_prefix, topics.app_id)
    worker = worker_factory(topics).start()
    worker.wait_ready(timeout=120)
    asyncio.run(ingest_paths(topics, [SEED]))
    fox = fox_comments()

    async def feed() -> None:
        prod = producer(topics, linger_ms=20)
        await prod.start()
        try:
            pending = []
            for com in fox:
                key = page_article_id({"source": com["source"], "title": com["article_title"]})
                pending.append(await prod.send(names.raw_comments, orjson.dumps(com),
                                               key=key.encode()))  # fmt: skip
            await asyncio.gather(*pending)
        finally:
            await prod.stop()

    asyncio.run(feed())
    topics_read = [names.clean_comments, names.moderation_queue, names.dlq]
    # a few double posts are dropped: wait for most, then until nothing came for a while
    out = _read(topics, topics_read,
                lambda o: len(o[names.clean_comments]) + len(o[names.dlq]) >= 20 + len(fox) - 50,
                timeout=300)  # fmt: skip
    clean = out[names.clean_comments]
    queue = out[names.moderation_queue]
    flagged = {r["comment_id"]: r for r in clean if r["moderation"]["status"] != "approved"}
    queued = [r["comment_id"] for r in queue]
    assert len(queued) == len(set(queued))  # each once
    assert set(queued) == set(flagged)  # exactly the non-approved ones
    strip = lambda r: {k: v for k, v in r.items() if k != "_kafka"}  # noqa: E731
    for rec in queue:
        assert strip(rec) == strip(flagged[rec["comment_id"]])
        assert rec["_kafka"]["key"] == rec["article_id"]
        assert rec["_kafka"]["partition"] == flagged[rec["comment_id"]]["_kafka"]["partition"]
    statuses = Counter(r["moderation"]["status"] for r in clean)
    print(f"{len(clean)} clean comments: {dict(statuses)}; {len(queue)} queued")
    assert 0 < len(queue) < len(clean)


def test_a_banned_word_added_while_the_worker_runs_rejects_the_next_comments_with_it(
    topics, worker_factory
):
    worker = worker_factory(topics).start()
    worker.wait_ready(timeout=120)
    text = "The match yesterday was a fine one, the referee said zorkle to the coach afterwards."
    _feed_comment(topics, 0, text)
    (before,) = _by_text(topics, "zorkle", 1)
    assert before["moderation"]["status"] == "approved", before["moderation"]

    done = newspipe(topics, "moderation", "add", BANNED_WORDS, "zorkle")
    assert done.returncode == 0, done.stderr
    asyncio.run(
        _until(lambda: _scrape(worker, 'newspipe_table_records{table="moderation.rules"}') == 1,
               30, 0.05)
    )  # fmt: skip
    _feed_comment(topics, 1, text.replace("yesterday", "on Sunday"))
    after = _by_text(topics, "zorkle", 2)[-1]
    assert after["moderation"]["status"] == "rejected", after["moderation"]
    flags = {f["reason"]: f for f in after["moderation"]["flags"]}
    assert flags["banned_word"]["evidence"]["words"] == ["zorkle"]
    assert worker.alive()


def test_an_authors_rejected_comments_count_after_a_worker_restart(topics, worker_factory):
    """An author's rejected comments, processed by one worker, are history for the next worker
    after a restart: their events come back from moderation.history."""
    from pipeline.settings import Settings

    needed = Settings().moderation_history_review
    assert newspipe(topics, "moderation", "add", BANNED_WORDS, "zorkle").returncode == 0
    first = worker_factory(topics, "first").start()
    first.wait_ready(timeout=120)
    for n in range(needed):
        _feed_comment(topics, 100 + n, f"Post {n}: zorkle, says the same reader again.",
                      author="repeat offender")  # fmt: skip
    rejected = _by_text(topics, "says the same reader", needed)
    assert all(r["moderation"]["status"] == "rejected" for r in rejected)
    key = 'newspipe_table_records{table="moderation.history"}'
    asyncio.run(_until(lambda: (_scrape(first, key) or 0) >= needed, 30, 0.1))
    first.stop()

    second = worker_factory(topics, "second").start()
    second.wait_ready(timeout=120)
    _feed_comment(topics, 200, "A calm and friendly remark about the game from the same reader.",
                  author="repeat offender")  # fmt: skip
    (calm,) = _by_text(topics, "calm and friendly", 1)
    flags = {f["reason"]: f for f in calm["moderation"]["flags"]}
    assert "recent_history" in flags, calm["moderation"]
    assert sum(flags["recent_history"]["evidence"]["counts"].values()) == needed
    assert calm["moderation"]["status"] == "review"
