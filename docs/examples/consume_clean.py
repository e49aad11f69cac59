"""A read_committed consumer of newspipe's clean topics: the starting point docs/consumers.md
explains. Needs only aiokafka (and the broker); no newspipe import.

    python docs/examples/consume_clean.py --group my-reader            # runs until Ctrl-C
    python docs/examples/consume_clean.py --group my-reader --idle 5   # stops after 5 s idle

Reads NEWSPIPE_BROKER (kafka://host:port) and NEWSPIPE_TOPIC_PREFIX like the pipeline does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

from aiokafka import AIOKafkaConsumer


def handle_article(record: dict, articles: dict[str, dict]) -> str:
    """Keep the newest revision per article id; say what kind of record it was."""
    aid = record["article_id"]
    known = articles.get(aid)
    if known is not None and known["revision"] >= record["revision"]:
        return "older revision, ignored"  # cannot happen within one partition; be safe anyway
    articles[aid] = record
    if record["duplicate_of"]:
        return f"syndicated copy of {record['duplicate_of']} (cluster {record['cluster_id']})"
    if record["revision"] > 1:
        return f"revision {record['revision']}: replaces the earlier version"
    return "new article"


def handle_comment(record: dict) -> str:
    if record["removed"]:
        return "removed by the site (text empty)"
    if record["spam_suspect"]:
        return f"spam suspect: same text {record['spam_cluster_size']} times"
    return "comment"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", required=True, help="your consumer group")
    parser.add_argument("--idle", type=float, help="stop after this many seconds without records")
    args = parser.parse_args()
    broker = os.environ.get("NEWSPIPE_BROKER", "kafka://127.0.0.1:9092")
    prefix = os.environ.get("NEWSPIPE_TOPIC_PREFIX", "")
    consumer = AIOKafkaConsumer(
        f"{prefix}clean.articles",
        f"{prefix}clean.comments",
        bootstrap_servers=",".join(b.split("://", 1)[-1] for b in broker.split(";")),
        group_id=args.group,
        isolation_level="read_committed",  # only records of committed transactions: exactly once
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    articles: dict[str, dict] = {}
    last = time.monotonic()
    try:
        while args.idle is None or time.monotonic() - last < args.idle:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for msg in messages:
                    record = json.loads(msg.value)  # unknown fields: ignore them, never fail
                    if tp.topic.endswith("clean.articles"):
                        what = handle_article(record, articles)
                        print(f"article {record['article_id']} {what}: {record['title'][:60]}")
                    else:
                        what = handle_comment(record)
                        print(f"comment {record['comment_id']} on {record['article_id']}: {what}")
                    last = time.monotonic()
            if batch:
                await consumer.commit()  # after handling: a crash re-delivers, never skips
    finally:
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(main())
