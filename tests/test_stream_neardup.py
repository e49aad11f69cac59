"""Through the real broker, several partitions: a syndicated copy under another URL is linked to
the first article wherever its partition is, because near-dup runs in a one-partition stage."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from pipeline.ingest import page_article_id
from pipeline.kafka_io import producer
from pipeline.show import read_topics
from pipeline.topics import TopicNames

pytestmark = pytest.mark.kafka

SENTENCES = [
    "The central bank raised its main interest rate by half a point on Thursday.",
    "It was the third increase this year as officials try to bring inflation under control.",
    "Consumer prices rose 6.2 percent in the year to October, the fastest pace in a decade.",
    "The governor said further rises could not be ruled out if wage growth stayed strong.",
    "Markets had expected a smaller move, and the currency jumped against the dollar.",
    "Mortgage lenders said they would pass the higher cost on to borrowers within weeks.",
    "Business groups warned that small firms were already struggling with energy bills.",
    "The finance minister welcomed the decision and promised restraint in the next budget.",
]


def event(url: str, title: str, sentences: list[str]) -> dict:
    return {
        "schema_version": "1.0",
        "source": "wire",
        "url": url,
        "title": title,
        "body": " ".join(sentences),
    }


async def send(settings, events: list[dict]) -> None:
    names = TopicNames(settings.topic_prefix)
    prod = producer(settings)
    await prod.start()
    try:
        for ev in events:
            key = page_article_id(ev).encode()
            await prod.send_and_wait(names.raw_articles, orjson.dumps(ev), key=key)
    finally:
        await prod.stop()


def test_syndicated_copies_on_other_partitions_link_to_the_first_article(topics, worker_factory):
    settings = topics
    names = TopicNames(settings.topic_prefix)
    worker = worker_factory(settings).start()
    worker.wait_ready()
    original = event("https://bank.example/rates", "Central bank raises rates again", SENTENCES)
    asyncio.run(send(settings, [original]))
    asyncio.run(
        read_topics(
            settings,
            [names.clean_articles],
            until=lambda o: len(o[names.clean_articles]) >= 1,
            timeout=60,
            idle=0.5,
        )
    )

    copies = []
    for n in range(6):
        reordered = SENTENCES[2:] + SENTENCES[:2] if n % 2 else SENTENCES[:-1]
        copies.append(
            event(
                f"https://paper{n}.example/business/story-{n}?utm_source=wire",
                f"Rates up again as bank fights inflation ({n})",
                ["(Reuters) -", *reordered],
            )
        )
    other = event(
        "https://sport.example/match",
        "Late goal wins the derby",
        [
            "The striker scored in the last minute to win the match for the home side.",
            "The visitors had led for most of the second half after a penalty.",
        ],
    )
    asyncio.run(send(settings, [*copies, other]))
    out = asyncio.run(
        read_topics(
            settings,
            [names.clean_articles],
            until=lambda o: len(o[names.clean_articles]) >= 8,
            timeout=90,
        )
    )
    records = {r["article_id"]: r for r in out[names.clean_articles]}
    first = page_article_id(original)
    partitions = {out_rec["_kafka"]["partition"] for out_rec in out[names.clean_articles]}
    assert len(partitions) > 1, "the copies should spread over several partitions"
    assert records[first]["duplicate_of"] is None
    cluster = {first} | {page_article_id(c) for c in copies}
    for copy in copies:
        rec = records[page_article_id(copy)]
        # linked to the original or to a copy seen before it, always in the original's cluster
        assert rec["duplicate_of"] in cluster - {rec["article_id"]}, rec["title"]
        assert rec["cluster_id"] == first
    assert records[page_article_id(other)]["duplicate_of"] is None
