"""The replay's sends as whole record batches: one open batch per partition, handed to the
producer (`send_batch`) when it is full, when it has lingered, or at the end.

A replay is a producer loop, and aiokafka's per-record `send` (a coroutine, a future and a
callback a record) cost more than reading and parsing the archive did. Here a record is one
compiled `append`, and a batch has one future whose callback settles all its records, as the
worker's transactions already send (`pipeline.stream.state.send_in_transaction`).

Order: every batch is handed over by the one coroutine that fills them, in the order they were
opened, and aiokafka queues a partition's next batch only after the last one has left, so each
partition receives its records in the order they were added.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# what the caller tracks per record (the replay: its origin and position), in order
Mark = Any
# called once per batch when the broker has answered (or the send failed): its records' marks
# and its future
Settled = Callable[[list[Mark], "asyncio.Future[Any]"], None]


@dataclass
class _Open:
    """A batch being filled for one partition."""

    topic: str
    partition: int
    batch: Any  # aiokafka BatchBuilder
    opened: float
    marks: list[Mark] = field(default_factory=list)


class Outbox:
    """Open batches per (topic, partition); at most `window` records in flight before the
    oldest batch is awaited (the producer's memory stays bounded on a fast source)."""

    def __init__(
        self,
        producer: Any,
        settled: Settled,
        linger_s: float,
        window: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.producer = producer
        self.settled = settled
        self.linger_s = linger_s
        self.window = max(1, window)
        self.clock = clock
        self._open: dict[tuple[str, int], _Open] = {}  # insertion order: the oldest first
        self._in_flight: deque[tuple[asyncio.Future[Any], int]] = deque()
        self.records_in_flight = 0

    async def add(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None,
        headers: list[tuple[str, bytes]],
        mark: Mark,
    ) -> None:
        """Add one record to its partition's open batch; hand over batches that filled up or
        have waited `linger_s`. Never raises for a send: a batch the producer refuses settles
        its records as failed. `headers` is a list (aiokafka's compiled builder takes no
        other sequence)."""
        now = self.clock()
        slot = self._open.get((topic, partition))
        if slot is None:
            slot = self._start(topic, partition, now)
        if slot.batch.append(key=key, value=value, timestamp=timestamp_ms, headers=headers) is None:
            await self._ship(slot)  # full: the record starts the next one (a first always fits)
            slot = self._start(topic, partition, now)
            slot.batch.append(key=key, value=value, timestamp=timestamp_ms, headers=headers)
        slot.marks.append(mark)
        oldest = next(iter(self._open.values()))
        if now - oldest.opened >= self.linger_s:
            await self.ship_aged(now)

    async def ship_aged(self, now: float | None = None) -> None:
        """Hand over every open batch that has waited `linger_s` or longer."""
        now = self.clock() if now is None else now
        while self._open:
            oldest = next(iter(self._open.values()))
            if now - oldest.opened < self.linger_s:
                break
            await self._ship(oldest)

    async def ship_all(self) -> None:
        """Hand over every open batch, the oldest first."""
        while self._open:
            await self._ship(next(iter(self._open.values())))

    async def flush(self) -> None:
        """Hand over every open batch, then wait for every batch in flight to be answered
        (failures are settled, not raised)."""
        await self.ship_all()
        while self._in_flight:
            fut, n = self._in_flight.popleft()
            self.records_in_flight -= n
            await _answered(fut)

    def abandon(self, reason: str) -> None:
        """Settle the records of every batch still open as failed (a flush that ran out of
        time): they were never sent, and the summary must still add up."""
        while self._open:
            slot = self._open.pop(next(iter(self._open)))
            self._fail(slot.marks, RuntimeError(reason))

    def _start(self, topic: str, partition: int, now: float) -> _Open:
        slot = _Open(topic, partition, self.producer.create_batch(), now)
        self._open[(topic, partition)] = slot
        return slot

    async def _ship(self, slot: _Open) -> None:
        del self._open[(slot.topic, slot.partition)]
        # closed, it is ready at once; an open one would linger again in the producer and hold
        # back the next batch of its partition, and with it this loop
        slot.batch.close()
        try:
            fut = await self.producer.send_batch(slot.batch, slot.topic, partition=slot.partition)
        except asyncio.CancelledError as exc:  # stopped while waiting for its partition
            self._fail(slot.marks, exc)
            raise
        except Exception as exc:  # never queued (producer closed, timed out)
            self._fail(slot.marks, exc)
            return
        n = len(slot.marks)
        fut.add_done_callback(lambda f, marks=slot.marks: self.settled(marks, f))
        self._in_flight.append((fut, n))
        self.records_in_flight += n
        while self._in_flight and (
            self._in_flight[0][0].done() or self.records_in_flight >= self.window
        ):
            oldest, done = self._in_flight.popleft()
            self.records_in_flight -= done
            await _answered(oldest)

    def _fail(self, marks: list[Mark], exc: BaseException) -> None:
        """Settle `marks` as failed with `exc` (a batch that never reached the producer)."""
        failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failed.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
        self.settled(marks, failed)
        failed.exception()  # retrieved: no "never retrieved" warning


async def _answered(fut: asyncio.Future[Any]) -> None:
    """Wait for a batch's answer without ever cancelling it: a flush cut short by its timeout
    leaves the batch to the producer, which may still deliver it (and settle it then)."""
    await asyncio.wait([fut])
