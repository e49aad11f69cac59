"""The replay's outbox against a stand-in producer: records go in whole batches per partition,
in the order added; a batch goes when full, when it has lingered, or at the flush; a refused
batch fails its records without stopping the replay; the records in flight stay bounded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipeline.replay.outbox import Outbox


class FakeBatch:
    """aiokafka's BatchBuilder as the outbox uses it: a list of headers only (its compiled
    builder takes no other sequence); closed when full or by `close()`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[Any, ...]] = []
        self.closed = False

    def append(self, *, key: Any, value: Any, timestamp: Any, headers: Any) -> object | None:
        assert type(headers) is list
        if self.closed or len(self.records) >= self.capacity:
            self.closed = True
            return None
        self.records.append((key, value, timestamp, tuple(headers)))
        return object()

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    """Batches of `capacity` records; `send_batch` answers at once unless `hold` is set, and
    raises `refuse` when that is set."""

    def __init__(self, capacity: int = 3, one_at_a_time: bool = False) -> None:
        self.capacity = capacity
        self.sent: list[tuple[str, int, list[tuple[Any, ...]]]] = []
        self.futures: list[asyncio.Future[Any]] = []
        self.hold = False
        self.refuse: Exception | None = None
        # as aiokafka's add_batch: a partition's next batch waits until its last one has left
        self.one_at_a_time = one_at_a_time
        self.last: dict[tuple[str, int], asyncio.Future[Any]] = {}

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        if self.refuse is not None:
            raise self.refuse
        assert batch.closed, "an open batch would linger again in the producer"
        previous = self.last.get((topic, partition))
        if self.one_at_a_time and previous is not None:
            await asyncio.wait([previous])
        self.sent.append((topic, partition, batch.records))
        fut = asyncio.get_running_loop().create_future()
        self.futures.append(fut)
        self.last[(topic, partition)] = fut
        if not self.hold:
            fut.set_result(None)
        return fut


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def outbox(prod: FakeProducer, settled: list[tuple[list[Any], bool]], clock: Clock,
           window: int = 1000, linger_s: float = 0.02) -> Outbox:  # fmt: skip
    def note(marks: list[Any], fut: asyncio.Future[Any]) -> None:
        settled.append((marks, fut.exception() is None))

    return Outbox(prod, note, linger_s=linger_s, window=window, clock=clock)


def test_records_go_in_whole_batches_per_partition_in_the_order_added():
    prod, settled, clock = FakeProducer(capacity=3), [], Clock()

    async def go() -> None:
        box = outbox(prod, settled, clock)
        for i in range(8):
            await box.add("raw", i % 2, b"k", str(i).encode(), 1000 + i, [("h", b"v")], i)
        await box.flush()

    run(go())
    by_partition: dict[int, list[bytes]] = {0: [], 1: []}
    for topic, partition, records in prod.sent:
        assert topic == "raw" and 1 <= len(records) <= 3
        by_partition[partition] += [value for _, value, _, _ in records]
    assert by_partition == {0: [b"0", b"2", b"4", b"6"], 1: [b"1", b"3", b"5", b"7"]}
    assert prod.sent[0][2][0] == (b"k", b"0", 1000, (("h", b"v"),))
    # one callback a batch, with its records' marks in order; every record settles once
    assert sorted(m for marks, ok in settled for m in marks) == list(range(8))
    assert all(ok for _, ok in settled) and len(settled) == len(prod.sent)


def test_a_batch_goes_when_full_or_lingered_and_the_rest_at_the_flush():
    prod, settled, clock = FakeProducer(capacity=2), [], Clock()

    async def go() -> None:
        box = outbox(prod, settled, clock, linger_s=0.02)
        await box.add("raw", 0, None, b"a", None, [], "a")
        await box.add("raw", 0, None, b"b", None, [], "b")
        assert prod.sent == []  # full, but it goes when the next record does not fit
        await box.add("raw", 0, None, b"c", None, [], "c")
        assert [r[1] for r in prod.sent[0][2]] == [b"a", b"b"]
        await box.add("raw", 1, None, b"x", None, [], "x")
        clock.now = 0.019
        await box.add("raw", 2, None, b"y", None, [], "y")
        assert len(prod.sent) == 1  # nothing has lingered 20 ms yet
        clock.now = 0.021
        await box.add("raw", 2, None, b"z", None, [], "z")
        # "c" and "x" (opened at 0) lingered; "y" and "z" (opened at 0.019) wait
        assert [(p, [r[1] for r in recs]) for _, p, recs in prod.sent[1:]] == [
            (0, [b"c"]), (1, [b"x"])
        ]  # fmt: skip
        await box.flush()
        assert [r[1] for r in prod.sent[-1][2]] == [b"y", b"z"]

    run(go())
    assert [marks for marks, _ in settled] == [["a", "b"], ["c"], ["x"], ["y", "z"]]


def test_a_refused_batch_fails_its_records_and_the_replay_goes_on():
    prod, settled, clock = FakeProducer(capacity=2), [], Clock()

    async def go() -> None:
        box = outbox(prod, settled, clock)
        await box.add("raw", 0, None, b"a", None, [], "a")
        prod.refuse = RuntimeError("producer closed")
        await box.flush()  # does not raise
        prod.refuse = None
        await box.add("raw", 0, None, b"b", None, [], "b")
        await box.flush()

    run(go())
    assert settled == [(["a"], False), (["b"], True)]
    assert [[r[1] for r in recs] for _, _, recs in prod.sent] == [[b"b"]]


def test_at_most_window_records_are_in_flight_before_the_oldest_is_awaited():
    prod, settled, clock = FakeProducer(capacity=2), [], Clock()
    prod.hold = True  # the broker has not answered any batch yet

    async def go() -> None:
        box = outbox(prod, settled, clock, window=4, linger_s=0.0)

        async def answer_later() -> None:
            await asyncio.sleep(0.05)
            assert box.records_in_flight <= 4 and len(prod.sent) == 4
            prod.hold = False
            for fut in prod.futures:
                if not fut.done():
                    fut.set_result(None)

        answering = asyncio.create_task(answer_later())
        for i in range(6):  # linger 0: every record goes as its own batch
            await box.add("raw", i % 3, None, b"v", None, [], i)
        await box.flush()
        await answering

    run(go())
    assert sorted(m for marks, _ in settled for m in marks) == list(range(6))


@pytest.mark.parametrize("capacity", [1, 5])
def test_every_record_settles_exactly_once_whatever_the_batch_size(capacity: int):
    prod, settled, clock = FakeProducer(capacity=capacity), [], Clock()

    async def go() -> None:
        box = outbox(prod, settled, clock)
        for i in range(23):
            clock.now += 0.007
            await box.add("raw", i % 4, None, b"v", None, [], i)
        await box.flush()

    run(go())
    assert sorted(m for marks, _ in settled for m in marks) == list(range(23))
    assert sum(len(recs) for _, _, recs in prod.sent) == 23


def test_a_batch_that_fails_after_it_was_queued_settles_its_records_as_failed():
    prod, settled, clock = FakeProducer(capacity=2), [], Clock()
    prod.hold = True

    async def go() -> None:
        box = outbox(prod, settled, clock, linger_s=0.0)
        await box.add("raw", 0, None, b"a", None, [], "a")
        await box.add("raw", 1, None, b"b", None, [], "b")
        prod.futures[0].set_exception(RuntimeError("NotEnoughReplicas after retries"))
        prod.futures[1].set_result(None)
        await box.flush()

    run(go())
    assert sorted(settled) == [(["a"], False), (["b"], True)]


def test_a_partition_waiting_for_its_last_batch_keeps_its_order():
    prod, settled, clock = FakeProducer(capacity=2, one_at_a_time=True), [], Clock()
    prod.hold = True

    async def go() -> None:
        box = outbox(prod, settled, clock, linger_s=0.0)

        async def answer() -> None:  # the broker answers one batch every few milliseconds
            while len(settled) < 6:
                await asyncio.sleep(0.002)
                for fut in prod.futures:
                    if not fut.done():
                        fut.set_result(None)
                        break

        answering = asyncio.create_task(answer())
        for i in range(6):
            await box.add("raw", 0, None, str(i).encode(), None, [], i)
        await box.flush()
        await answering

    run(go())
    assert [r[1] for _, _, recs in prod.sent for r in recs] == [str(i).encode() for i in range(6)]
    assert [m for marks, _ in settled for m in marks] == list(range(6))


def test_a_flush_cut_short_leaves_what_is_in_flight_to_the_producer_and_fails_the_unsent():
    prod, settled, clock = FakeProducer(capacity=5, one_at_a_time=True), [], Clock()
    prod.hold = True

    async def go() -> None:
        box = outbox(prod, settled, clock, linger_s=1.0)
        await box.add("raw", 0, None, b"a", None, [], "a")
        await box.add("raw", 1, None, b"b", None, [], "b")
        await box.ship_all()  # both in flight, unanswered
        await box.add("raw", 0, None, b"c", None, [], "c")  # waits behind "a" when shipped
        await box.add("raw", 2, None, b"d", None, [], "d")
        try:
            await asyncio.wait_for(box.flush(), timeout=0.05)
        except TimeoutError:
            pass
        box.abandon("not sent")
        assert not any(f.cancelled() for f in prod.futures)  # the producer may still deliver
        assert sorted(m for marks, ok in settled for m in marks if not ok) == ["c", "d"]
        for fut in prod.futures:
            fut.set_result(None)
        await asyncio.sleep(0)

    run(go())
    assert sorted(m for marks, ok in settled for m in marks if ok) == ["a", "b"]
