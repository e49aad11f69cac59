"""How long a worker takes to read the moderation history back at start, and what it holds.

Writes N history events (40,000 authors) to a fresh `moderation.history` topic of the broker in
NEWSPIPE_BROKER (3 partitions), then times the global-table reader from start to ready (every
record fetched read_committed and folded into the AuthorHistory) and measures the memory the
folded history takes (tracemalloc, a separate pass without Kafka). Deletes its topics after.
Run: NEWSPIPE_BROKER=kafka://127.0.0.1:9092 .venv/bin/python bench/bench_tables.py [N]
"""

from __future__ import annotations

import asyncio
import sys
import time
import tracemalloc
import uuid
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.kafka_io import create_topics, delete_topics, producer
from pipeline.moderation.folds import HistoryFold
from pipeline.moderation.history import HistoryEvent
from pipeline.settings import Settings
from pipeline.stream.tables import HISTORY, moderation_tables
from pipeline.topics import TopicNames


def events(n: int, now: float) -> list[HistoryEvent]:
    return [HistoryEvent(f"author{i % 40_000}", f"c{i:09d}", now - i, "review") for i in range(n)]


async def read_back(n: int) -> None:
    tag = uuid.uuid4().hex[:6]
    settings = replace(Settings.from_env(), topic_prefix=f"bench{tag}.", app_id=f"bench{tag}",
                       partitions=3)  # fmt: skip
    names = TopicNames(settings.topic_prefix, settings.app_id)
    await create_topics(settings)
    try:
        prod = producer(settings, linger_ms=50)
        await prod.start()
        pending = []
        for event in events(n, time.time()):
            pending.append(await prod.send(names.moderation_history, event.value(),
                                           key=event.key()))  # fmt: skip
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        await prod.stop()
        started = time.monotonic()
        tables = moderation_tables(settings, names)
        await tables.start()
        await tables.wait_ready()
        took = time.monotonic() - started
        held = len(tables.value(HISTORY))
        await tables.stop()
        print(f"read back at start: {n:,} events in {took:.1f} s ({took / n * 1e6:.0f} us/event), "
              f"{held:,} held")  # fmt: skip
    finally:
        await delete_topics(settings, names.all())


def memory(n: int) -> None:
    values = [(e.key(), e.value()) for e in events(n, time.time())]
    tracemalloc.start()
    fold = HistoryFold(30 * 24 * 3600)
    for key, value in values:
        fold.apply(key, value)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"memory: {size / n:.0f} bytes per event held ({n:,} events, 40,000 authors)")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    memory(count)
    asyncio.run(read_back(count))
