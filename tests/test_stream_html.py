"""Through the real broker: whole real pages as raw `html` article events, produced the way the
raw producer sends them (zstd), come out as clean articles; a page over the limit is a dead
letter that says so."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from devtools.datasets import html_pages
from devtools.extraction_eval import html_event
from pipeline.contracts import validate_record
from pipeline.kafka_io import raw_producer
from pipeline.show import read_topics
from pipeline.topics import TopicNames

pytestmark = pytest.mark.kafka


async def produce(settings, payloads: list[tuple[bytes, bytes]]) -> None:
    names = TopicNames(settings.topic_prefix)
    producer = raw_producer(settings)
    await producer.start()
    try:
        for key, payload in payloads:
            await producer.send_and_wait(names.raw_articles, payload, key=key)
    finally:
        await producer.stop()


def test_whole_pages_of_several_mb_come_out_clean_and_an_oversized_one_is_a_dead_letter(
    topics, worker_factory
):
    settings = topics
    names = TopicNames(settings.topic_prefix)
    pages = {p.name: p for p in html_pages()}
    big = [pages["cnn_001"], pages["cnn_002"], pages["wired_001"]]  # 2.6, 2.7 and 0.97 MB
    over = pages["cnn_test_nlp"].html.replace(
        "</head>", f"<script>var s='{'x' * settings.max_html_bytes}';</script></head>", 1
    )
    payloads = [(p.name.encode(), html_event(p)) for p in big]
    payloads.append(
        (b"over", orjson.dumps({"schema_version": "1.1", "source": "html", "html": over}))
    )
    worker = worker_factory(settings).start()
    worker.wait_ready()
    asyncio.run(produce(settings, payloads))

    out = asyncio.run(
        read_topics(
            settings,
            [names.clean_articles, names.dlq],
            until=lambda o: len(o[names.clean_articles]) >= len(big) and len(o[names.dlq]) >= 1,
            timeout=120,
        )
    )
    articles, dlq = out[names.clean_articles], out[names.dlq]
    assert len(articles) == len(big)
    urls = {a["canonical_url"] for a in articles}
    assert {p.url for p in big} <= urls | {None} and all(a["word_count"] > 500 for a in articles)
    for record in articles:
        record.pop("_kafka")
        validate_record("clean-article", record)
    assert len(dlq) == 1
    letter = dlq[0]
    letter.pop("_kafka")
    validate_record("dead-letter", letter)
    assert letter["error_code"] == "too_large" and letter["field"] == "html"
    assert letter["payload_bytes"] > settings.max_html_bytes
