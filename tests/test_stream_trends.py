"""Through the real broker: clean records with known event times and topics are counted per
top-level topic in 1-minute and 1-hour tumbling windows, emitted to topic.trends and served on
the worker's /trends page."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from pipeline.contracts import validate_record
from pipeline.ingest import page_article_id
from pipeline.kafka_io import producer
from pipeline.show import read_topics
from pipeline.topics import TopicNames
from pipeline.trends import trend_key

pytestmark = pytest.mark.kafka

SPORT = "medtop:15000000"
POLITICS = "medtop:11000000"
SPORT_TEXT = (
    "Arsenal beat Chelsea in Premier League derby",
    "The striker scored twice as Arsenal won the match at the stadium, moving top of the league.",
)
POLITICS_TEXT = (
    "Parliament passes election reform bill",
    "Lawmakers voted for the bill, which the prime minister said would modernise voting.",
)


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_trends_count_topics_per_event_time_window(topics, worker_factory):
    settings = topics
    names = TopicNames(settings.topic_prefix)
    # an hour-aligned base a little in the past, so every event falls in known windows
    base = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    plan = [  # (minute offset + seconds, text)
        (timedelta(minutes=5, seconds=10), SPORT_TEXT),
        (timedelta(minutes=5, seconds=40), SPORT_TEXT),
        (timedelta(minutes=6, seconds=1), SPORT_TEXT),
        (timedelta(minutes=5, seconds=30), POLITICS_TEXT),
    ]
    events = []
    for n, (offset, (title, body)) in enumerate(plan):
        art = {
            "schema_version": "1.0",
            "source": "trendtest",
            "url": f"https://example.com/trend/{n}",
            "title": f"{title} ({n})",
            "body": body,
            "published_at": iso(base + offset),
        }
        events.append((names.raw_articles, page_article_id(art), art))
    # a comment on the first sport article inherits sport, counted in the comments stream
    comment = {
        "schema_version": "1.0",
        "source": "trendtest",
        "article_url": "https://example.com/trend/0",
        "source_comment_id": "1",
        "author": "fan",
        "text": "What a win, and what a goal in that match.",
        "posted_at": iso(base + timedelta(minutes=5, seconds=50)),
    }
    events.append((names.raw_comments, events[0][1], comment))

    worker = worker_factory(settings).start()
    worker.wait_ready()

    async def feed() -> None:
        prod = producer(settings)
        await prod.start()
        try:
            for topic, key, value in events:
                await prod.send_and_wait(topic, orjson.dumps(value), key=key.encode())
        finally:
            await prod.stop()

    asyncio.run(feed())

    def m(minute: int) -> str:
        return iso(base + timedelta(minutes=minute))

    expected = {
        ("1m", "articles", SPORT, m(5)): 2,
        ("1m", "articles", SPORT, m(6)): 1,
        ("1m", "articles", POLITICS, m(5)): 1,
        ("1h", "articles", SPORT, m(0)): 3,
        ("1h", "articles", POLITICS, m(0)): 1,
        ("1m", "comments", SPORT, m(5)): 1,
        ("1h", "comments", SPORT, m(0)): 1,
    }
    expected_keys = {"|".join(k) for k in expected}

    def latest(out: dict) -> dict[str, dict]:
        last: dict[str, dict] = {}
        for record in out[names.trends]:
            last[trend_key(record)] = record
        return last

    def done(out: dict) -> bool:
        last = latest(out)
        return all(
            key in last and last[key]["count"] == n
            for key, n in zip(["|".join(k) for k in expected], expected.values(), strict=True)
        )

    out = asyncio.run(read_topics(settings, [names.trends], until=done, timeout=90, idle=1.5))
    last = latest(out)
    got = {key: last[key]["count"] for key in expected_keys if key in last}
    assert got == {"|".join(k): n for k, n in expected.items()}
    for record in out[names.trends]:
        record.pop("_kafka")
        validate_record("trend", record)

    # the worker serves the same counts
    deadline = time.monotonic() + 10
    while True:
        url = f"http://127.0.0.1:{settings.web_port}/trends?window=1m"
        rows = json.loads(urllib.request.urlopen(url, timeout=5).read())["trends"]
        served = {trend_key(r): r["count"] for r in rows}
        want = {k: n for k, n in got.items() if k.startswith("1m|")}
        if all(served.get(k) == n for k, n in want.items()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {k: served.get(k) for k in want} == want
