"""Through the real broker: a mixed stream of valid and broken events. Nothing crashes, nothing is
lost: each broken event is in the DLQ once with its code, each valid one is clean, and
in == clean + duplicates + dlq holds by count and by id."""

from __future__ import annotations

import asyncio
import urllib.request

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from pipeline.contracts import validate_record
from pipeline.show import read_topics
from pipeline.topics import TopicNames

pytestmark = pytest.mark.kafka

GOOD_ARTICLE = {
    "schema_version": "1.0",
    "source": "test",
    "url": "https://example.com/news/{n}",
    "title": "Valid article number {n}",
    "body": "A perfectly ordinary body paragraph about article {n} and its news.",
}
GOOD_COMMENT = {
    "schema_version": "1.0",
    "source": "test",
    "article_url": "https://example.com/news/1",
    "source_comment_id": "{n}",
    "author": "reader{n}",
    "text": "An ordinary reader comment, number {n}, with a few words.",
}


def fill(template: dict, n: int) -> dict:
    return {k: v.format(n=n) if isinstance(v, str) else v for k, v in template.items()}


def bad_events() -> list[tuple[str, bytes | None, bytes | None, str]]:
    """(stream, key, payload, expected code) for every kind of bad input the issue lists."""
    art = fill(GOOD_ARTICLE, 999)
    com = fill(GOOD_COMMENT, 999)
    deep_arrays = b"[" * 10_000 + b"]" * 10_000
    deep_objects = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    return [
        ("articles", b"k", b"this is not json", "not_json"),
        ("articles", b"k", b'{"schema_version": "1.0", "source": "x", "title": "tru', "not_json"),
        ("comments", b"k", b'{"text": "\xff\xfe broken utf8"}', "not_utf8"),
        ("articles", b"k", b"[1, 2, 3]", "not_object"),
        ("articles", b"k", b"42", "not_object"),
        ("comments", b"k", b"null", "not_object"),
        (
            "comments",
            b"k",
            orjson.dumps({k: v for k, v in com.items() if k != "text"}),
            "schema.missing_field",
        ),
        ("comments", b"k", orjson.dumps({**com, "number": "seven"}), "schema.wrong_type"),
        ("articles", b"k", b"", "empty"),
        ("articles", b"k", b"   \n\t  ", "empty"),
        (
            "articles",
            b"k",
            orjson.dumps({**art, "title": "", "body": "rate this\n\nComment number 3."}),
            "content.empty",
        ),
        ("comments", b"k", orjson.dumps({**com, "text": "   "}), "content.empty"),
        ("articles", b"k", orjson.dumps({**art, "body": "x" * (1024 * 1024 + 10)}), "too_large"),
        ("articles", b"k", deep_arrays, "json.too_deep"),
        ("comments", b"k", deep_objects, "json.too_deep"),
        ("comments", b"k", orjson.dumps({**com, "text": "nul \x00 inside"}), "field.control_chars"),
        (
            "articles",
            b"k",
            orjson.dumps({**art, "published_at": "3000-01-01T00:00:00Z"}),
            "time.out_of_range",
        ),
        (
            "articles",
            b"k",
            orjson.dumps({**art, "published_at": "the day after tomorrow"}),
            "time.invalid",
        ),
        ("articles", b"k", orjson.dumps({**art, "schema_version": "9.0"}), "unknown_schema_major"),
        (
            "comments",
            b"k",
            b'{"schema_version": "1.0", "source": "t", "text": "a", "text": "b"}',
            "json.duplicate_key",
        ),
        ("comments", b"", orjson.dumps(fill(GOOD_COMMENT, 998)), "key.invalid"),
        ("comments", b"k" * 5000, orjson.dumps(fill(GOOD_COMMENT, 997)), "key.invalid"),
    ]


async def produce(settings, events: list[tuple[str, bytes | None, bytes | None]]) -> None:
    names = TopicNames(settings.topic_prefix)
    topic = {"articles": names.raw_articles, "comments": names.raw_comments}
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, acks="all", max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        for i, (stream, key, payload) in enumerate(events):
            headers = [("test-seq", str(i).encode())]
            await producer.send_and_wait(topic[stream], payload, key=key, headers=headers)
    finally:
        await producer.stop()


def test_mixed_bad_and_good_stream_accounts_for_every_record(topics, worker_factory):
    settings = topics
    names = TopicNames(settings.topic_prefix)
    worker = worker_factory(settings).start()
    worker.wait_ready()

    good = [("articles", b"a1", orjson.dumps(fill(GOOD_ARTICLE, n))) for n in range(5)]
    good += [("comments", b"a1", orjson.dumps(fill(GOOD_COMMENT, n))) for n in range(10)]
    bad = bad_events()
    events: list[tuple[str, bytes | None, bytes | None]] = []
    for i in range(max(len(good), len(bad))):  # interleave, so bad input sits between good
        if i < len(bad):
            events.append(bad[i][:3])
        if i < len(good):
            events.append(good[i])
    # and a good record after all the bad ones: the worker must still be consuming
    events.append(("comments", b"a1", orjson.dumps(fill(GOOD_COMMENT, 500))))
    asyncio.run(produce(settings, events))

    expected_clean = len(good) + 1
    out = asyncio.run(
        read_topics(
            settings,
            [names.clean_articles, names.clean_comments, names.dlq],
            until=lambda o: (
                len(o[names.dlq]) >= len(bad)
                and len(o[names.clean_articles]) + len(o[names.clean_comments]) >= expected_clean
            ),
            timeout=90,
        )
    )
    dlq = out[names.dlq]
    clean = out[names.clean_articles] + out[names.clean_comments]

    # each bad event is in the DLQ exactly once, with the expected code
    by_seq = {}
    for letter in dlq:
        seq = dict(letter["headers"])["test-seq"]
        assert seq not in by_seq, f"dead-lettered twice: {letter}"
        by_seq[seq] = letter
    got_codes = sorted(letter["error_code"] for letter in dlq)
    assert got_codes == sorted(code for *_, code in bad), got_codes
    for letter in dlq:
        letter.pop("_kafka")
        validate_record("dead-letter", letter)
        assert letter["error_message"]
        assert letter["original_topic"] in (names.raw_articles, names.raw_comments)
        assert letter["offset"] is not None

    # each good one is clean, once
    assert len(clean) == expected_clean
    ids = [c.get("comment_id") or c["article_id"] for c in clean]
    assert len(set(ids)) == len(ids)

    # in == clean + duplicates + dlq, from the worker's own counters
    text = (
        urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=5)
        .read()
        .decode()
    )
    totals = {"in": 0.0, "out": 0.0, "dup": 0.0, "dlq": 0.0}
    for line in text.splitlines():
        for prefix, name in (
            ("newspipe_records_in_total", "in"),
            ("newspipe_records_out_total", "out"),
            ("newspipe_duplicates_total", "dup"),
            ("newspipe_dead_letters_total", "dlq"),
        ):
            if line.startswith(prefix + "{"):
                totals[name] += float(line.rsplit(" ", 1)[1])
    assert totals["in"] == len(events)
    assert totals["in"] == totals["out"] + totals["dup"] + totals["dlq"]
    assert totals["dlq"] == len(bad)
